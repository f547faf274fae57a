//! Import from S3 against `moto_server` (PyPI `moto[server]`, started here on 127.0.0.1):
//! objects uploaded with boto3 in the real `AWSLogs/…` layout (gzip) are imported by
//! `s3://` URL, a second import stores nothing new, and an object added later is picked up by
//! `serve --watch`.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Store, free_port, require_python, run};
use serde_json::json;

const CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

/// `moto_server` on a free port, stopped on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let agent = common::agent(Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(30);
        while agent.get(&endpoint).call().is_err() {
            assert!(Instant::now() < deadline, "moto_server did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint }
    }

    /// Uploads `body` gzip-compressed as `key` with boto3.
    fn upload(&self, bucket: &str, key: &str, body: &str) {
        self.upload_with_signature(bucket, key, body, "");
    }

    /// Uploads `body` gzip-compressed as `key`, with `x-amz-meta-signature` when `signature`
    /// is not empty (as CloudTrail stores digest files).
    fn upload_with_signature(&self, bucket: &str, key: &str, body: &str, signature: &str) {
        let script = r#"
import boto3, gzip, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
if sys.argv[2] not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=sys.argv[2])
extra = {"Metadata": {"signature": sys.argv[4], "signature-algorithm": "SHA256withRSA"}} if sys.argv[4] else {}
s3.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=gzip.compress(sys.stdin.buffer.read()), **extra)
"#;
        let mut child = Command::new("python3")
            .args(["-c", script, &self.endpoint, bucket, key, signature])
            .stdin(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), body.as_bytes())
            .expect("write");
        drop(child.stdin.take());
        assert!(
            child.wait().expect("wait").success(),
            "boto3 upload of {key}"
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn trail_file(names: &[&str], hour: u32) -> String {
    let records: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(n, name)| {
            json!({"eventVersion": "1.09", "eventTime": format!("2024-05-01T{hour:02}:{n:02}:00Z"),
                   "eventSource": "iam.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
                   "sourceIPAddress": "203.0.113.4", "userIdentity": {"type": "IAMUser", "userName": "ops"},
                   "eventID": format!("{hour}-{n}"), "recipientAccountId": "111122223333"})
        })
        .collect();
    json!({ "Records": records }).to_string()
}

fn import(server: &common::Server, token: &str, endpoint: &str, url: &str) -> String {
    let mut command = common::seclog();
    command
        .args([
            "import",
            "--server",
            &server.base,
            "--token",
            token,
            "--quiet",
        ])
        .args(["--s3-endpoint", endpoint, url])
        .envs(CREDENTIALS);
    let output = command.output().expect("seclog import runs");
    assert!(output.status.success(), "{}", common::describe(&output));
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn count(store_data: &Path, group: &str) -> u64 {
    let data = store_data.to_string_lossy().to_string();
    let output = run(["groups", "--data", &data]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            let (name, n) = line.rsplit_once(' ')?;
            (name == group).then(|| n.parse().ok()).flatten()
        })
        .unwrap_or(0)
}

fn wait_for(store: &Store, group: &str, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = count(&store.data(), group);
        if n == expected {
            return;
        }
        assert!(n < expected, "{group}: {n} events, more than {expected}");
        assert!(
            Instant::now() < deadline,
            "{group}: {n} of {expected} events"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn bucket_imports_once_and_the_watcher_picks_up_new_objects() {
    require_python("import moto.server, boto3", "moto[server] and boto3");
    let moto = Moto::start();
    let prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/";
    moto.upload(
        "trail",
        &format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1000Z_a1.json.gz"),
        &trail_file(&["CreateUser", "AttachUserPolicy", "CreateAccessKey"], 10),
    );
    moto.upload(
        "trail",
        &format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1100Z_b2.json.gz"),
        &trail_file(&["ListUsers"], 11),
    );

    let store = Store::new();
    let admin = store.init();
    let server = common::Server::start_with_env(&store.data(), &store.logs(), &[], &CREDENTIALS);
    let first = import(&server, &admin, &moto.endpoint, "s3://trail/AWSLogs/");
    assert!(first.contains("2 objects: 2 imported"), "{first}");
    assert!(first.contains(" 4 events, 0 dead letters"), "{first}");
    let second = import(&server, &admin, &moto.endpoint, "s3://trail/AWSLogs/");
    assert!(
        second.contains("2 objects: 0 imported, 2 already imported"),
        "{second}"
    );
    assert_eq!(count(&store.data(), "aws/cloudtrail"), 4);
    drop(server);

    // The watcher: what is stored is not stored again; what lands later is picked up.
    let endpoint = moto.endpoint.clone();
    let server = common::Server::start_with_env(
        &store.data(),
        &store.logs(),
        &[
            "--watch",
            "s3://trail/AWSLogs/",
            "--watch-interval-secs",
            "1",
            "--s3-endpoint",
            &endpoint,
        ],
        &CREDENTIALS,
    );
    moto.upload(
        "trail",
        &format!("{prefix}111122223333_CloudTrail_us-east-1_20240501T1200Z_c3.json.gz"),
        &trail_file(&["DeleteTrail", "StopLogging"], 12),
    );
    moto.upload(
        "trail",
        "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/111122223333_vpcflowlogs_us-east-1_fl-1_20240501T1200Z_d4.log.gz",
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 111122223333 eni-1 10.0.0.1 10.0.0.2 40000 22 6 3 180 1714564800 1714564860 REJECT OK\n",
    );
    wait_for(&store, "aws/cloudtrail", 6);
    wait_for(&store, "aws/vpcflow", 1);
    // Two more listings: nothing is imported twice.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(count(&store.data(), "aws/cloudtrail"), 6);
    assert_eq!(count(&store.data(), "aws/vpcflow"), 1);
    let third = import(&server, &admin, &moto.endpoint, "s3://trail/AWSLogs/");
    assert!(
        third.contains("4 objects: 0 imported, 4 already imported"),
        "{third}"
    );
    let metrics = common::get(&server.url("/metrics"), None).text();
    assert!(metrics.contains("s3_watch"), "{metrics}");
}

/// Hex SHA-256.
fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn cloudtrail_digests_from_s3_validate_offline_and_tampering_is_found() {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};

    require_python("import moto.server, boto3", "moto[server] and boto3");
    let moto = Moto::start();
    let key = KeyPair::generate(KeySize::Rsa2048).expect("RSA key");
    let fingerprint = "00112233445566778899aabbccddeeff";
    // Two hourly digests ending at the last two full hours, so the newest is not stale.
    let now = seclog_model::Timestamp::now().unix_seconds();
    let hour = now - now % 3600;
    let ends = [hour - 3600, hour];
    let bucket = "trail-digests";
    let account = "AWSLogs/111122223333";
    let mut previous: Option<(String, String, String)> = None;
    let mut log_keys = Vec::new();
    for (n, end) in ends.iter().enumerate() {
        let stamp = rfc3339(*end);
        let log_key = format!(
            "{account}/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_{n}_log.json.gz"
        );
        let log = trail_file(&["ListUsers", "GetUser"], 10 + n as u32);
        moto.upload(bucket, &log_key, &log);
        log_keys.push((log_key.clone(), log.clone()));
        let digest_key = format!(
            "{account}/CloudTrail-Digest/us-east-1/2024/05/01/111122223333_CloudTrail-Digest_us-east-1_main_us-east-1_{n}.json.gz"
        );
        let mut digest = json!({
            "awsAccountId": "111122223333",
            "digestStartTime": rfc3339(end - 3600),
            "digestEndTime": stamp,
            "digestS3Bucket": bucket,
            "digestS3Object": digest_key,
            "digestPublicKeyFingerprint": fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": null, "oldestEventTime": null,
            "previousDigestS3Bucket": null, "previousDigestS3Object": null,
            "previousDigestHashValue": null, "previousDigestHashAlgorithm": null,
            "previousDigestSignature": null,
            "logFiles": [{"s3Bucket": bucket, "s3Object": log_key, "hashValue": sha256(log.as_bytes()),
                          "hashAlgorithm": "SHA-256", "newestEventTime": null, "oldestEventTime": null}]
        });
        if let Some((prev_key, prev_sha, prev_signature)) = &previous {
            digest["previousDigestS3Bucket"] = json!(bucket);
            digest["previousDigestS3Object"] = json!(prev_key);
            digest["previousDigestHashValue"] = json!(prev_sha);
            digest["previousDigestHashAlgorithm"] = json!("SHA-256");
            digest["previousDigestSignature"] = json!(prev_signature);
        }
        let text = digest.to_string();
        let message = format!(
            "{stamp}\n{bucket}/{digest_key}\n{}\n{}",
            sha256(text.as_bytes()),
            digest["previousDigestSignature"].as_str().unwrap_or("null")
        );
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            message.as_bytes(),
            &mut signature,
        )
        .expect("sign");
        let signature = hex::encode(signature);
        moto.upload_with_signature(bucket, &digest_key, &text, &signature);
        previous = Some((digest_key, sha256(text.as_bytes()), signature));
    }
    // A log file no digest names.
    moto.upload(
        bucket,
        &format!("{account}/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_planted.json.gz"),
        &trail_file(&["CreateUser"], 12),
    );
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let keys_path = keys_dir.path().join("keys.json");
    std::fs::write(
        &keys_path,
        json!({"PublicKeyList": [{
            "Value": base64_encode(key.public_key().as_ref()),
            "ValidityStartTime": "2024-01-01T00:00:00Z", "ValidityEndTime": "2030-01-01T00:00:00Z",
            "Fingerprint": fingerprint}]})
        .to_string(),
    )
    .expect("keys");

    let store = Store::new();
    store.init();
    let data = store.data_arg();
    let import = || {
        let mut command = common::seclog();
        command
            .args([
                "import",
                "--data",
                &data,
                "--quiet",
                "--s3-endpoint",
                &moto.endpoint,
            ])
            .arg(format!("s3://{bucket}/AWSLogs/"))
            .envs(CREDENTIALS);
        let output = command.output().expect("import");
        assert!(output.status.success(), "{}", common::describe(&output));
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let imported = import();
    assert!(imported.contains("2 digests"), "{imported}");
    let keys_arg = keys_path.to_string_lossy().to_string();
    let validate = || {
        run([
            "validate-cloudtrail",
            "--data",
            &data,
            "--public-keys",
            &keys_arg,
            "--json",
        ])
    };
    let output = validate();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json report");
    assert!(output.status.success(), "{report:#}");
    assert_eq!(
        report["digests_valid"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    assert_eq!(
        report["digests_unverified"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(report["logs_valid"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["logs_uncovered"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["newest_digest_stale"], false);

    // Someone rewrites a delivered log file; the next import stores the new version, and
    // validation names it.
    let (first_key, _) = &log_keys[0];
    moto.upload(bucket, first_key, &trail_file(&["ListUsers"], 10));
    import();
    let output = validate();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json report");
    assert!(!output.status.success(), "{report:#}");
    assert_eq!(
        report["logs_invalid"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    assert!(
        report["logs_invalid"][0][0]
            .as_str()
            .is_some_and(|name| name.ends_with(first_key.as_str())),
        "{report:#}"
    );
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time, as digests write times.
fn rfc3339(secs: i64) -> String {
    let text = seclog_model::Timestamp::from_unix_nanos(secs * 1_000_000_000).to_rfc3339();
    format!("{}Z", text.split('.').next().unwrap_or_default())
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
