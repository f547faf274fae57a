//! Crypto-shredding: a group's data keys destroyed, its segments kept.
//!
//! The segments stay, so every Merkle leaf (which commits to encrypted bytes) and every
//! checkpoint still verifies; without their data keys nobody can read the records again, with
//! the master key or without. The shred is declared first, in a signed file
//! `journal/groups/<group>/<upto>.shred`, then the keys are deleted; readers skip the segments
//! below `upto`, and `verify` checks the signature and reports the shred.
//!
//! ```text
//! seclog shred v1
//! group <name>
//! records <from> <upto>
//! segments <count>
//! shredded-at <RFC 3339>
//! reason-sha256 <hex>
//! epoch <k>
//!
//! — epoch-key <base64>
//! — signature <base64>
//! ```
//! The reason itself is recorded in `seclog/access`; the file holds only its digest.

use seclog_model::Timestamp;

use crate::merkle::Hash;
use crate::signer::{Signer, VerificationKey};
use crate::textform::{FieldLines, parse_hash};
use crate::tombstone::{sign_text, split_signed};

/// What a shred records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shred {
    /// The group.
    pub group: String,
    /// First record made unreadable (records before it had expired).
    pub from_seq: u64,
    /// One past the last record made unreadable.
    pub upto_seq: u64,
    /// Segments whose data keys were destroyed.
    pub segments: u64,
    /// When.
    pub shredded_at: Timestamp,
    /// SHA-256 of the reason given.
    pub reason_digest: Hash,
    /// Signing epoch.
    pub epoch: u32,
}

impl Shred {
    /// Canonical body text (the signed bytes).
    pub fn body_text(&self) -> String {
        format!(
            "seclog shred v1\ngroup {}\nrecords {} {}\nsegments {}\nshredded-at {}\nreason-sha256 {}\nepoch {}\n",
            self.group,
            self.from_seq,
            self.upto_seq,
            self.segments,
            self.shredded_at,
            hex::encode(self.reason_digest),
            self.epoch
        )
    }

    /// Signs with the signer's current epoch.
    pub fn sign(&self, signer: &Signer) -> String {
        sign_text(&self.body_text(), signer)
    }

    /// Parses a signed shred and checks its signature.
    pub fn parse_and_verify(text: &str, key: &VerificationKey) -> Result<Shred, String> {
        let (body, proof, signature) =
            split_signed(text).map_err(|reason| format!("shred: {reason}"))?;
        let mut fields = FieldLines::new(&body, "seclog shred v1")?;
        let mut field = |name: &str| fields.field(name).map(str::to_string);
        let group = field("group")?;
        let records = field("records")?;
        let (from, upto) = records.split_once(' ').ok_or("malformed records line")?;
        let shred = Shred {
            group,
            from_seq: from.parse().map_err(|_| "invalid first record")?,
            upto_seq: upto.parse().map_err(|_| "invalid last record")?,
            segments: field("segments")?.parse().map_err(|_| "invalid segments")?,
            shredded_at: Timestamp::parse_rfc3339(&field("shredded-at")?)
                .map_err(|error| error.to_string())?,
            reason_digest: parse_hash(&field("reason-sha256")?).ok_or("invalid reason digest")?,
            epoch: field("epoch")?.parse().map_err(|_| "invalid epoch")?,
        };
        if shred.body_text() != body {
            return Err("shred body is not in canonical form".into());
        }
        if proof.epoch != shred.epoch {
            return Err("shred epoch does not match its signing key".into());
        }
        key.verify_signature(&proof, shred.shredded_at, body.as_bytes(), &signature)?;
        Ok(shred)
    }
}
