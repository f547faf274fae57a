//! CloudTrail digest files: each names the log files a trail delivered in one hour, with their
//! SHA-256, and chains to the previous digest by its hash and signature.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

/// A digest file's fields (the names are AWS's).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct DigestFile {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    #[serde(default)]
    pub digest_public_key_fingerprint: Option<String>,
    #[serde(default)]
    pub digest_signature_algorithm: Option<String>,
    #[serde(default)]
    pub newest_event_time: Option<String>,
    #[serde(default)]
    pub oldest_event_time: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_object: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_algorithm: Option<String>,
    #[serde(default)]
    pub previous_digest_signature: Option<String>,
    #[serde(default)]
    pub log_files: Vec<DigestLogFile>,
}

/// One log file a digest covers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct DigestLogFile {
    pub s3_bucket: String,
    pub s3_object: String,
    pub hash_value: String,
    pub hash_algorithm: String,
    #[serde(default)]
    pub newest_event_time: Option<String>,
    #[serde(default)]
    pub oldest_event_time: Option<String>,
}

/// Parses a digest file (its JSON text).
pub fn parse_digest(bytes: &[u8]) -> Result<DigestFile, String> {
    serde_json::from_slice(bytes).map_err(|error| format!("not a CloudTrail digest file: {error}"))
}

/// A digest file, when `bytes` look like one.
pub(crate) fn sniff_digest(bytes: &[u8]) -> Option<DigestFile> {
    let head = bytes.get(..bytes.len().min(4096)).unwrap_or_default();
    let looks = head
        .windows(b"\"digestStartTime\"".len())
        .any(|window| window == b"\"digestStartTime\"");
    if !looks {
        return None;
    }
    parse_digest(bytes).ok()
}

/// A digest file as stored: where it was read from, its (uncompressed) bytes, and the
/// signature S3 kept in its metadata (`x-amz-meta-signature`), when it was read from S3.
#[derive(Debug, Clone)]
pub struct StoredDigest {
    /// The object it was imported from (`s3://bucket/key` or a path).
    pub object: String,
    /// The digest file's content.
    pub bytes: Vec<u8>,
    /// Hex signature from the object's metadata.
    pub signature: Option<String>,
}

/// A CloudTrail public key (one entry of `aws cloudtrail list-public-keys`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicKey {
    /// Base64 of the DER (PKCS#1) RSA public key.
    pub value: String,
    /// Hex fingerprint, as digests name it.
    pub fingerprint: String,
}

/// Parses the JSON `aws cloudtrail list-public-keys` prints (`{"PublicKeyList":[…]}`).
pub fn parse_public_keys(bytes: &[u8]) -> Result<Vec<PublicKey>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct List {
        public_key_list: Vec<PublicKey>,
    }
    serde_json::from_slice::<List>(bytes)
        .map(|list| list.public_key_list)
        .map_err(|error| format!("not the output of list-public-keys: {error}"))
}

/// An imported log file: its object name and the SHA-256 of its content.
#[derive(Debug, Clone)]
pub struct ImportedLog {
    /// `s3://bucket/key` or a path.
    pub object: String,
    /// Hex SHA-256 of the uncompressed content.
    pub sha256: String,
}

/// What validation found. Every list names objects; `problems()` is empty when all is well.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ValidationReport {
    /// Digests whose signature verified.
    pub digests_valid: Vec<String>,
    /// Digests that failed, with why.
    pub digests_invalid: Vec<(String, String)>,
    /// Digests whose signature is not known (the newest digest read from local files: its
    /// signature lives in the S3 object's metadata).
    pub digests_unverified: Vec<String>,
    /// Log files whose hash matches their digest.
    pub logs_valid: Vec<String>,
    /// Log files whose content differs from what their digest says.
    pub logs_invalid: Vec<(String, String)>,
    /// Log files a digest names that were never imported.
    pub logs_not_imported: Vec<String>,
    /// Imported log files no digest names (added, or delivered while validation was off).
    pub logs_uncovered: Vec<String>,
    /// Breaks in the digest chain.
    pub gaps: Vec<String>,
    /// Log files whose hash matches a digest whose signature is not known.
    pub logs_unverified: Vec<String>,
    /// End time of the newest digest.
    pub newest_digest_end: Option<String>,
    /// Chains (account/region) whose newest digest is more than two hours old.
    pub stale_chains: Vec<String>,
    /// The newest digest of some chain is older than two hours before `now`: newer digests
    /// (and their logs) may have been removed.
    pub newest_digest_stale: bool,
}

impl ValidationReport {
    /// Findings that make the evidence fail.
    pub fn problems(&self) -> usize {
        self.digests_invalid.len()
            + self.digests_unverified.len()
            + self.logs_invalid.len()
            + self.logs_not_imported.len()
            + self.gaps.len()
            + usize::from(self.newest_digest_stale)
    }
}

struct Parsed<'a> {
    stored: &'a StoredDigest,
    file: DigestFile,
    sha256: String,
    location: String,
}

/// Validates digest files and the log files they name, as `aws cloudtrail validate-logs` does,
/// and reports what it leaves out: imported logs no digest names, gaps and restarts of the
/// chain, and a newest digest older than two hours before `now` (RFC 3339).
pub fn validate(
    digests: &[StoredDigest],
    keys: &[PublicKey],
    logs: &[ImportedLog],
    now: &str,
) -> ValidationReport {
    use base64::Engine as _;
    use sha2::Digest as _;
    let mut report = ValidationReport::default();
    let mut parsed: Vec<Parsed<'_>> = Vec::new();
    for stored in digests {
        match parse_digest(&stored.bytes) {
            Ok(file) => {
                let location = format!("{}/{}", file.digest_s3_bucket, file.digest_s3_object);
                parsed.push(Parsed {
                    stored,
                    sha256: hex::encode(sha2::Sha256::digest(&stored.bytes)),
                    location,
                    file,
                });
            }
            Err(reason) => report.digests_invalid.push((stored.object.clone(), reason)),
        }
    }
    parsed.sort_by(|a, b| a.file.digest_end_time.cmp(&b.file.digest_end_time));
    let keys: Vec<(String, Vec<u8>)> = keys
        .iter()
        .filter_map(|key| {
            base64::engine::general_purpose::STANDARD
                .decode(&key.value)
                .ok()
                .map(|der| (key.fingerprint.to_ascii_lowercase(), der))
        })
        .collect();
    // 2: signature verified, 1: signature unknown, 0: invalid.
    let mut standing: Vec<u8> = vec![0; parsed.len()];
    for (index, digest) in parsed.iter().enumerate() {
        let name = &digest.stored.object;
        if !same_object(
            name,
            &digest.file.digest_s3_bucket,
            &digest.file.digest_s3_object,
        ) {
            report.digests_invalid.push((
                name.clone(),
                format!("moved from its original location {}", digest.location),
            ));
            continue;
        }
        // The signature: from S3's metadata, else from the next digest's link to this one.
        let successor = parsed.iter().find(|next| {
            next.file.previous_digest_s3_bucket.as_deref() == Some(&digest.file.digest_s3_bucket)
                && next.file.previous_digest_s3_object.as_deref()
                    == Some(&digest.file.digest_s3_object)
        });
        if let Some(next) = successor
            && next.file.previous_digest_hash_value.as_deref() != Some(digest.sha256.as_str())
        {
            report.digests_invalid.push((
                name.clone(),
                format!(
                    "hash value doesn't match the one {} holds for it",
                    next.stored.object
                ),
            ));
            continue;
        }
        let signature = digest
            .stored
            .signature
            .clone()
            .or_else(|| successor.and_then(|next| next.file.previous_digest_signature.clone()));
        let Some(signature) = signature else {
            // Its log files are still checked against it, and reported apart.
            report.digests_unverified.push(name.clone());
            if let Some(flag) = standing.get_mut(index) {
                *flag = 1;
            }
            continue;
        };
        let fingerprint = digest
            .file
            .digest_public_key_fingerprint
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let Some((_, der)) = keys.iter().find(|(known, _)| *known == fingerprint) else {
            report.digests_invalid.push((
                name.clone(),
                format!("no public key with fingerprint {fingerprint:?}"),
            ));
            continue;
        };
        let message = format!(
            "{}\n{}\n{}\n{}",
            digest.file.digest_end_time,
            digest.location,
            digest.sha256,
            digest
                .file
                .previous_digest_signature
                .as_deref()
                .unwrap_or("null")
        );
        let verified = hex::decode(signature.trim()).is_ok_and(|signature| {
            aws_lc_rs::signature::UnparsedPublicKey::new(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                der,
            )
            .verify(message.as_bytes(), &signature)
            .is_ok()
        });
        if verified {
            report.digests_valid.push(name.clone());
            if let Some(flag) = standing.get_mut(index) {
                *flag = 2;
            }
        } else {
            report
                .digests_invalid
                .push((name.clone(), "invalid signature".into()));
        }
    }
    // Each region's trail has its own chain: every link leads to a digest present (the oldest
    // digest's link leads out of the window imported), and a restart leaves a period no digest
    // covers.
    let mut chains: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, digest) in parsed.iter().enumerate() {
        chains
            .entry(chain_of(&digest.file))
            .or_default()
            .push(index);
    }
    let mut chain_names: Vec<&String> = chains.keys().collect();
    chain_names.sort();
    let now = crate::time_value::parse_time_str(now);
    for chain in chain_names {
        let members = chains.get(chain).map(Vec::as_slice).unwrap_or_default();
        for (position, index) in members.iter().enumerate() {
            let Some(digest) = parsed.get(*index) else {
                continue;
            };
            match (
                &digest.file.previous_digest_s3_bucket,
                &digest.file.previous_digest_s3_object,
            ) {
                (Some(bucket), Some(object)) if position > 0 => {
                    let present = members.iter().filter_map(|i| parsed.get(*i)).any(|other| {
                        other.file.digest_s3_bucket == *bucket
                            && other.file.digest_s3_object == *object
                    });
                    if !present {
                        report.gaps.push(format!(
                            "digest {bucket}/{object} (named by {}) was not imported: the log files it covers cannot be checked",
                            digest.stored.object
                        ));
                    }
                }
                (None, _) if position > 0 => {
                    let before = members
                        .get(position - 1)
                        .and_then(|i| parsed.get(*i))
                        .map(|previous| previous.file.digest_end_time.clone())
                        .unwrap_or_default();
                    report.gaps.push(format!(
                        "the {chain} chain starts again at {}: no digest covers {before} to {} (logging or validation was stopped)",
                        digest.file.digest_start_time, digest.file.digest_start_time
                    ));
                }
                _ => {}
            }
        }
        if let Some(newest) = members.last().and_then(|i| parsed.get(*i)) {
            let end = crate::time_value::parse_time_str(&newest.file.digest_end_time);
            if let (Some(end), Some(now)) = (end, now)
                && now.unix_nanos().saturating_sub(end.unix_nanos()) > 2 * 3600 * 1_000_000_000
            {
                report.newest_digest_stale = true;
                report.stale_chains.push(format!(
                    "{chain}: newest digest ends {}",
                    newest.file.digest_end_time
                ));
            }
        }
    }
    // Log files named by digests, looked up by file name and by content hash.
    let mut by_file: HashMap<&str, Vec<&ImportedLog>> = HashMap::new();
    let mut by_hash: HashMap<&str, &ImportedLog> = HashMap::new();
    for imported in logs {
        by_file
            .entry(file_name(&imported.object))
            .or_default()
            .push(imported);
        by_hash.entry(imported.sha256.as_str()).or_insert(imported);
    }
    let mut covered: HashSet<&str> = HashSet::new();
    for (digest, standing) in parsed.iter().zip(&standing) {
        if *standing == 0 {
            continue;
        }
        for log in &digest.file.log_files {
            // Every version imported under the name must be the one the digest names.
            let by_name: Vec<&ImportedLog> = by_file
                .get(file_name(&log.s3_object))
                .map(|candidates| {
                    candidates
                        .iter()
                        .copied()
                        .filter(|imported| {
                            same_object(&imported.object, &log.s3_bucket, &log.s3_object)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let expected = log.hash_value.to_ascii_lowercase();
            let wrong = by_name.iter().find(|imported| imported.sha256 != expected);
            let found = match (by_name.first(), wrong) {
                (Some(imported), None) => Some(*imported),
                (Some(_), Some(imported)) => {
                    covered.insert(&imported.object);
                    report.logs_invalid.push((
                        imported.object.clone(),
                        format!(
                            "hash value doesn't match {}/{} (content {} was imported under this name)",
                            log.s3_bucket, log.s3_object, imported.sha256
                        ),
                    ));
                    None
                }
                (None, _) => match by_hash.get(expected.as_str()) {
                    Some(imported) => Some(*imported),
                    None => {
                        report
                            .logs_not_imported
                            .push(format!("{}/{}", log.s3_bucket, log.s3_object));
                        None
                    }
                },
            };
            if let Some(imported) = found {
                covered.insert(&imported.object);
                if *standing == 2 {
                    report.logs_valid.push(imported.object.clone());
                } else {
                    report.logs_unverified.push(imported.object.clone());
                }
            }
        }
    }
    for imported in logs {
        if !covered.contains(imported.object.as_str()) {
            report.logs_uncovered.push(imported.object.clone());
        }
    }
    report.newest_digest_end = parsed
        .last()
        .map(|newest| newest.file.digest_end_time.clone());
    report
}

/// The chain a digest belongs to: account and region (`…/CloudTrail-Digest/<region>/…`).
fn chain_of(file: &DigestFile) -> String {
    let region = file
        .digest_s3_object
        .split("/CloudTrail-Digest/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    format!("{}/{region}", file.aws_account_id)
}

/// The last segment of an object name, without `.gz`.
fn file_name(name: &str) -> &str {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    last.strip_suffix(".gz").unwrap_or(last)
}

/// Whether an imported object's name is the S3 object `bucket/key`: the same `s3://` URL, or a
/// local copy whose path ends with the key.
fn same_object(name: &str, bucket: &str, key: &str) -> bool {
    let key = key.trim_start_matches('/');
    if let Some(rest) = name.strip_prefix("s3://") {
        return rest.strip_prefix(bucket).and_then(|r| r.strip_prefix('/')) == Some(key)
            || rest.strip_prefix(bucket).and_then(|r| r.strip_prefix('/'))
                == key.strip_suffix(".gz");
    }
    let name = name.replace('\\', "/");
    let plain_key = key.strip_suffix(".gz").unwrap_or(key);
    name.ends_with(&format!("/{key}"))
        || name == key
        || name.ends_with(&format!("/{plain_key}"))
        || name == plain_key
}
