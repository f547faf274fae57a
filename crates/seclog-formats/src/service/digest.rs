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
