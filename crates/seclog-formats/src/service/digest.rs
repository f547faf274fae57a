//! CloudTrail digest files: each names the log files a trail delivered in one hour, with their
//! SHA-256, and chains to the previous digest by its hash and signature.

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
    /// End time of the newest digest.
    pub newest_digest_end: Option<String>,
    /// The newest digest is older than two hours before `now`: newer digests (and their logs)
    /// may have been removed.
    pub newest_digest_stale: bool,
}

impl ValidationReport {
    /// Findings that make the evidence fail.
    pub fn problems(&self) -> usize {
        self.digests_invalid.len()
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
    let mut trusted: Vec<bool> = vec![false; parsed.len()];
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
            // Its log files are still checked against it; the report names it unverified.
            report.digests_unverified.push(name.clone());
            if let Some(flag) = trusted.get_mut(index) {
                *flag = true;
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
            if let Some(flag) = trusted.get_mut(index) {
                *flag = true;
            }
        } else {
            report
                .digests_invalid
                .push((name.clone(), "invalid signature".into()));
        }
    }
    // The chain: every link leads to a digest present; a restart leaves an uncovered period.
    for (index, digest) in parsed.iter().enumerate() {
        match (
            &digest.file.previous_digest_s3_bucket,
            &digest.file.previous_digest_s3_object,
        ) {
            (Some(bucket), Some(object)) => {
                let present = parsed.iter().any(|other| {
                    other.file.digest_s3_bucket == *bucket && other.file.digest_s3_object == *object
                });
                if !present {
                    report.gaps.push(format!(
                        "digest {bucket}/{object} (named by {}) was not imported: the log files it covers cannot be checked",
                        digest.stored.object
                    ));
                }
            }
            _ if index > 0 => {
                let before = parsed
                    .get(index - 1)
                    .map(|previous| previous.file.digest_end_time.clone())
                    .unwrap_or_default();
                report.gaps.push(format!(
                    "the chain starts again at {}: no digest covers {before} to {} (logging or validation was stopped)",
                    digest.file.digest_start_time, digest.file.digest_start_time
                ));
            }
            _ => {}
        }
    }
    // Log files named by digests.
    let mut covered: Vec<&str> = Vec::new();
    for (digest, _) in parsed.iter().zip(&trusted).filter(|(_, trusted)| **trusted) {
        for log in &digest.file.log_files {
            // Every version imported under the name must be the one the digest names.
            let by_name: Vec<&ImportedLog> = logs
                .iter()
                .filter(|imported| same_object(&imported.object, &log.s3_bucket, &log.s3_object))
                .collect();
            let expected = log.hash_value.to_ascii_lowercase();
            let wrong = by_name.iter().find(|imported| imported.sha256 != expected);
            match (by_name.first(), wrong) {
                (Some(imported), None) => {
                    covered.push(&imported.object);
                    report.logs_valid.push(imported.object.clone());
                }
                (Some(_), Some(imported)) => {
                    covered.push(&imported.object);
                    report.logs_invalid.push((
                        imported.object.clone(),
                        format!(
                            "hash value doesn't match {}/{} (content {} was imported under this name)",
                            log.s3_bucket, log.s3_object, imported.sha256
                        ),
                    ));
                }
                (None, _) => match logs.iter().find(|imported| imported.sha256 == expected) {
                    Some(imported) => {
                        covered.push(&imported.object);
                        report.logs_valid.push(imported.object.clone());
                    }
                    None => report
                        .logs_not_imported
                        .push(format!("{}/{}", log.s3_bucket, log.s3_object)),
                },
            }
        }
    }
    for imported in logs {
        if !covered.contains(&imported.object.as_str()) {
            report.logs_uncovered.push(imported.object.clone());
        }
    }
    if let Some(newest) = parsed.last() {
        report.newest_digest_end = Some(newest.file.digest_end_time.clone());
        let end = crate::time_value::parse_time_str(&newest.file.digest_end_time);
        let now = crate::time_value::parse_time_str(now);
        if let (Some(end), Some(now)) = (end, now) {
            report.newest_digest_stale =
                now.unix_nanos().saturating_sub(end.unix_nanos()) > 2 * 3600 * 1_000_000_000;
        }
    }
    report
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
