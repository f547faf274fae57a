//! Signed retention tombstones: proof that a segment was deleted by policy, not by an attacker.
//!
//! `journal/groups/<group>/<first-seq>.tomb` is a text file:
//! ```text
//! seclog tombstone v1
//! group <name>
//! records <first_seq> <next_seq>
//! digest <hex segment_digest of the deleted segment>
//! last-written <RFC 3339>
//! retention-days <n>
//! deleted-at <RFC 3339>
//! epoch <k>
//! frontier <hex>,<hex>,... | -
//!
//! — epoch-key <base64>
//! — signature <base64>
//! ```
//! The frontier is the group's Merkle frontier after the deleted records: enough to recompute
//! every later root and to prove every retained record.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use seclog_model::Timestamp;

use crate::codec::ByteReader;
use crate::merkle::Hash;
use crate::signer::{EpochKeyProof, Signer, VerificationKey};
use crate::textform::{FieldLines, parse_hash};

/// What a tombstone records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The group.
    pub group: String,
    /// First deleted record.
    pub first_seq: u64,
    /// One past the last deleted record.
    pub next_seq: u64,
    /// `segment_digest` of the deleted segment.
    pub digest: Hash,
    /// When the newest deleted record was written.
    pub last_written: Timestamp,
    /// The policy that expired it.
    pub retention_days: u32,
    /// When it was deleted.
    pub deleted_at: Timestamp,
    /// Signing epoch.
    pub epoch: u32,
    /// Merkle frontier at `next_seq`.
    pub frontier: Vec<Hash>,
}

impl Tombstone {
    /// Canonical body text (the signed bytes).
    pub fn body_text(&self) -> String {
        let frontier = if self.frontier.is_empty() {
            "-".to_string()
        } else {
            self.frontier
                .iter()
                .map(hex::encode)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "seclog tombstone v1\ngroup {}\nrecords {} {}\ndigest {}\nlast-written {}\nretention-days {}\ndeleted-at {}\nepoch {}\nfrontier {}\n",
            self.group,
            self.first_seq,
            self.next_seq,
            hex::encode(self.digest),
            self.last_written,
            self.retention_days,
            self.deleted_at,
            self.epoch,
            frontier
        )
    }

    /// Signs the tombstone with the signer's current epoch (which must match `deleted_at`).
    pub fn sign(&self, signer: &Signer) -> String {
        sign_text(&self.body_text(), signer)
    }

    /// Parses a signed tombstone and checks its signature; any non-canonical byte is an error.
    pub fn parse_and_verify(text: &str, key: &VerificationKey) -> Result<Tombstone, String> {
        let (body, proof, signature) = split_signed(text)?;
        let tombstone = Self::parse_body(&body)?;
        if proof.epoch != tombstone.epoch {
            return Err("tombstone epoch does not match its signing key".into());
        }
        key.verify_signature(&proof, tombstone.deleted_at, body.as_bytes(), &signature)?;
        Ok(tombstone)
    }

    fn parse_body(body: &str) -> Result<Tombstone, String> {
        let mut fields = FieldLines::new(body, "seclog tombstone v1")?;
        let mut field = |name: &str| fields.field(name).map(str::to_string);
        let group = field("group")?;
        let records = field("records")?;
        let (first, next) = records.split_once(' ').ok_or("malformed records line")?;
        let hash = |text: &str| parse_hash(text).ok_or_else(|| format!("invalid hash {text:?}"));
        let time =
            |text: String| Timestamp::parse_rfc3339(&text).map_err(|error| error.to_string());
        let digest = hash(&field("digest")?)?;
        let last_written = time(field("last-written")?)?;
        let retention_days = field("retention-days")?
            .parse()
            .map_err(|_| "invalid retention-days")?;
        let deleted_at = time(field("deleted-at")?)?;
        let epoch = field("epoch")?.parse().map_err(|_| "invalid epoch")?;
        let frontier_text = field("frontier")?;
        let frontier = if frontier_text == "-" {
            Vec::new()
        } else {
            frontier_text
                .split(',')
                .map(hash)
                .collect::<Result<_, _>>()?
        };
        let tombstone = Tombstone {
            group,
            first_seq: first.parse().map_err(|_| "invalid first record")?,
            next_seq: next.parse().map_err(|_| "invalid next record")?,
            digest,
            last_written,
            retention_days,
            deleted_at,
            epoch,
            frontier,
        };
        if tombstone.body_text() != body {
            return Err("tombstone body is not in canonical form".into());
        }
        Ok(tombstone)
    }
}

/// `body` followed by the signature section of the signer's current epoch.
pub(crate) fn sign_text(body: &str, signer: &Signer) -> String {
    let signature = signer.sign(body.as_bytes());
    format!(
        "{body}\n— epoch-key {}\n— signature {}\n",
        B64.encode(signer.epoch_proof().encode()),
        B64.encode(signature)
    )
}

/// Splits a signed text into its body, epoch-key proof and signature, refusing any byte that
/// is not in canonical form (the signature itself is checked by the caller).
pub(crate) fn split_signed(text: &str) -> Result<(String, EpochKeyProof, [u8; 64]), String> {
    let (body, signatures) = text.split_once("\n\n").ok_or("missing signature section")?;
    let body = format!("{body}\n");
    let mut lines = signatures.split('\n');
    let epoch_key = lines
        .next()
        .and_then(|line| line.strip_prefix("— epoch-key "))
        .and_then(|encoded| B64.decode(encoded).ok())
        .ok_or("missing or malformed epoch-key line")?;
    let signature = lines
        .next()
        .and_then(|line| line.strip_prefix("— signature "))
        .and_then(|encoded| B64.decode(encoded).ok())
        .and_then(|bytes| <[u8; 64]>::try_from(bytes.as_slice()).ok())
        .ok_or("missing or malformed signature line")?;
    if lines.next() != Some("") || lines.next().is_some() {
        return Err("unexpected bytes after the signature".into());
    }
    let mut reader = ByteReader::new(&epoch_key);
    let proof = EpochKeyProof::decode(&mut reader)?;
    if reader.remaining() != 0 || B64.encode(&epoch_key) != B64.encode(proof.encode()) {
        return Err("malformed epoch key".into());
    }
    let canonical = format!(
        "{body}\n— epoch-key {}\n— signature {}\n",
        B64.encode(proof.encode()),
        B64.encode(signature)
    );
    if canonical != text {
        return Err("not in canonical form".into());
    }
    Ok((body, proof, signature))
}
