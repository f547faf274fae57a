//! CloudTrail digest validation with digests made per AWS's documented format and signed with
//! a test RSA key: a clean chain validates; a changed log file, a missing digest, a restarted
//! chain, a log file no digest names, a forged signature, a moved digest and a stale newest
//! digest are each reported.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use seclog_formats::service::{ImportedLog, PublicKey, StoredDigest, validate};
use serde_json::{Value, json};
use sha2::Digest as _;

const BUCKET: &str = "trail-bucket";
const FINGERPRINT: &str = "0123456789abcdef0123456789abcdef";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

struct Signer {
    key: KeyPair,
}

impl Signer {
    fn new() -> Signer {
        Signer {
            key: KeyPair::generate(KeySize::Rsa2048).expect("key"),
        }
    }

    fn public_key(&self) -> PublicKey {
        PublicKey {
            value: base64::engine::general_purpose::STANDARD.encode(self.key.public_key().as_ref()),
            fingerprint: FINGERPRINT.into(),
        }
    }

    /// The signature of a digest as CloudTrail makes it.
    fn sign(&self, digest: &Value, bytes: &[u8]) -> String {
        let message = format!(
            "{}\n{}/{}\n{}\n{}",
            digest["digestEndTime"].as_str().expect("end"),
            digest["digestS3Bucket"].as_str().expect("bucket"),
            digest["digestS3Object"].as_str().expect("object"),
            sha256(bytes),
            digest["previousDigestSignature"].as_str().unwrap_or("null")
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .expect("sign");
        hex::encode(signature)
    }
}

fn log_key(hour: u32) -> String {
    format!(
        "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T{hour:02}05Z_x.json.gz"
    )
}

fn digest_key(hour: u32) -> String {
    format!(
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/111122223333_CloudTrail-Digest_us-east-1_main_us-east-1_20240501T{hour:02}0000Z.json.gz"
    )
}

fn log_content(hour: u32) -> Vec<u8> {
    json!({"Records": [{"eventTime": format!("2024-05-01T{hour:02}:01:00Z"), "eventName": "ListUsers"}]})
        .to_string()
        .into_bytes()
}

/// Hourly digests for `hours`, chained (a digest whose predecessor is absent from `hours` or
/// listed in `restart_at` starts a new chain), each naming the log file of its hour.
struct Trail {
    digests: Vec<StoredDigest>,
    logs: Vec<ImportedLog>,
}

fn trail(signer: &Signer, hours: &[u32], restart_at: &[u32]) -> Trail {
    let mut digests = Vec::new();
    let mut previous: Option<(String, String, String)> = None; // key, sha, signature
    for &hour in hours {
        if restart_at.contains(&hour) {
            previous = None;
        }
        let log = log_content(hour);
        let mut digest = json!({
            "awsAccountId": "111122223333",
            "digestStartTime": format!("2024-05-01T{:02}:00:00Z", hour - 1),
            "digestEndTime": format!("2024-05-01T{hour:02}:00:00Z"),
            "digestS3Bucket": BUCKET,
            "digestS3Object": digest_key(hour),
            "digestPublicKeyFingerprint": FINGERPRINT,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": null,
            "oldestEventTime": null,
            "previousDigestS3Bucket": null,
            "previousDigestS3Object": null,
            "previousDigestHashValue": null,
            "previousDigestHashAlgorithm": null,
            "previousDigestSignature": null,
            "logFiles": [{"s3Bucket": BUCKET, "s3Object": log_key(hour), "hashValue": sha256(&log),
                          "hashAlgorithm": "SHA-256", "newestEventTime": null, "oldestEventTime": null}]
        });
        if let Some((key, sha, signature)) = &previous {
            digest["previousDigestS3Bucket"] = json!(BUCKET);
            digest["previousDigestS3Object"] = json!(key);
            digest["previousDigestHashValue"] = json!(sha);
            digest["previousDigestHashAlgorithm"] = json!("SHA-256");
            digest["previousDigestSignature"] = json!(signature);
        }
        let bytes = serde_json::to_vec(&digest).expect("json");
        let signature = signer.sign(&digest, &bytes);
        previous = Some((digest_key(hour), sha256(&bytes), signature.clone()));
        digests.push(StoredDigest {
            object: format!("s3://{BUCKET}/{}", digest_key(hour)),
            bytes,
            signature: Some(signature),
        });
    }
    let logs = hours
        .iter()
        .map(|hour| ImportedLog {
            object: format!("s3://{BUCKET}/{}", log_key(*hour)),
            sha256: sha256(&log_content(*hour)),
        })
        .collect();
    Trail { digests, logs }
}

const NOW: &str = "2024-05-01T13:30:00Z";

#[test]
fn a_clean_chain_validates() {
    let signer = Signer::new();
    let trail = trail(&signer, &[10, 11, 12], &[]);
    let report = validate(&trail.digests, &[signer.public_key()], &trail.logs, NOW);
    assert_eq!(report.problems(), 0, "{report:#?}");
    assert_eq!(report.digests_valid.len(), 3);
    assert_eq!(report.logs_valid.len(), 3);
    assert!(report.logs_uncovered.is_empty());
    // Without S3 metadata, older digests are verified through their successor's link; only
    // the newest stays unverified, and its log file is still checked.
    let mut local = trail.digests.clone();
    for digest in &mut local {
        digest.signature = None;
        digest.object = format!(
            "/tmp/copy/{}",
            digest.object.trim_start_matches(&format!("s3://{BUCKET}/"))
        );
    }
    let report = validate(&local, &[signer.public_key()], &trail.logs, NOW);
    assert_eq!(report.digests_valid.len(), 2, "{report:#?}");
    assert_eq!(report.digests_unverified.len(), 1);
    assert_eq!(report.logs_valid.len(), 2);
    assert_eq!(report.logs_unverified.len(), 1);
    // An unsigned digest could be forged: it counts against the evidence.
    assert_eq!(report.problems(), 1);

    // A window of the chain: the oldest digest's link leads out of it, which is no gap.
    let mut window = trail.digests.clone();
    window.remove(0);
    let report = validate(&window, &[signer.public_key()], &trail.logs[1..], NOW);
    assert_eq!(report.problems(), 0, "{report:#?}");
}

#[test]
fn tampering_and_what_validate_logs_misses_are_reported() {
    let signer = Signer::new();
    // A changed log file.
    let mut changed = trail(&signer, &[10, 11, 12], &[]);
    changed.logs[1].sha256 = sha256(b"{\"Records\":[]}");
    let report = validate(&changed.digests, &[signer.public_key()], &changed.logs, NOW);
    assert_eq!(report.logs_invalid.len(), 1, "{report:#?}");
    assert!(
        report.logs_invalid[0]
            .1
            .contains("hash value doesn't match")
    );

    // A digest removed from the middle of the chain.
    let mut missing = trail(&signer, &[10, 11, 12], &[]);
    missing.digests.remove(1);
    let report = validate(&missing.digests, &[signer.public_key()], &missing.logs, NOW);
    assert_eq!(report.gaps.len(), 1, "{report:#?}");
    assert!(report.gaps[0].contains("was not imported"));

    // A restarted chain (logging stopped) and a log file no digest names.
    let mut restarted = trail(&signer, &[10, 11, 12], &[12]);
    restarted.logs.push(ImportedLog {
        object: format!(
            "s3://{BUCKET}/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/planted.json.gz"
        ),
        sha256: sha256(b"planted"),
    });
    let report = validate(
        &restarted.digests,
        &[signer.public_key()],
        &restarted.logs,
        NOW,
    );
    assert_eq!(report.gaps.len(), 1, "{report:#?}");
    assert!(report.gaps[0].contains("starts again"), "{report:#?}");
    assert_eq!(report.logs_uncovered.len(), 1);
    assert!(report.logs_uncovered[0].ends_with("planted.json.gz"));

    // A forged digest: signed by another key.
    let forger = Signer::new();
    let forged = trail(&forger, &[10], &[]);
    let report = validate(&forged.digests, &[signer.public_key()], &forged.logs, NOW);
    assert_eq!(report.digests_invalid.len(), 1, "{report:#?}");
    assert_eq!(report.digests_invalid[0].1, "invalid signature");

    // A digest read from somewhere else than it claims.
    let mut moved = trail(&signer, &[10], &[]);
    moved.digests[0].object = format!("s3://other-bucket/{}", digest_key(10));
    let report = validate(&moved.digests, &[signer.public_key()], &moved.logs, NOW);
    assert!(report.digests_invalid[0].1.contains("moved"), "{report:#?}");

    // The newest digest is hours old: later digests may have been deleted.
    let clean = trail(&signer, &[10, 11], &[]);
    let report = validate(
        &clean.digests,
        &[signer.public_key()],
        &clean.logs,
        "2024-05-01T18:00:00Z",
    );
    assert!(report.newest_digest_stale, "{report:#?}");
    assert_eq!(report.problems(), 1);
}
