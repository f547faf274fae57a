//! Crypto-shredding a group (see [`crate::shred`]).

use seclog_model::{GroupName, Timestamp};

use super::JournalWriter;
use crate::crypto::sha256;
use crate::error::{JournalError, Result};
use crate::fsutil;
use crate::shred::Shred;
use crate::store::list_group_files;

impl JournalWriter {
    /// The date of a signed tombstone or shred: no earlier than the newest checkpoint (with the
    /// clock stepped back, it would fall in an epoch whose key is already erased), with the
    /// signer moved to its epoch.
    pub(super) fn signing_time(&mut self, now: Timestamp) -> Result<Timestamp> {
        let now = self
            .checkpoints
            .last()
            .map_or(now, |last| last.body.time.max(now));
        self.signer.advance_for(now)?;
        Ok(now.max(self.signer.epoch_start()))
    }

    /// Destroys the data keys a signed shred declares gone but a crash left behind.
    pub(super) fn finish_shred(&self, group: &GroupName, notes: &mut Vec<String>) -> Result<()> {
        let files = list_group_files(&self.layout.group_dir(group))?;
        let below = files.shredded_below();
        for (first, _) in files.segments.iter().filter(|(first, _)| *first < below) {
            let key = self.layout.data_key(group, *first);
            if key.exists() {
                fsutil::remove_durable(&key)?;
                notes.push(format!(
                    "recovery: destroyed the data key of {group} records {first}.. that an interrupted shred left"
                ));
            }
        }
        Ok(())
    }

    /// Makes every record of `group` written so far unreadable for good: seals what is
    /// pending, signs a shred file covering the group's retained records, then destroys their
    /// data keys. Later appends start a new segment under a new key. Run again after a crash,
    /// it finishes destroying the keys. `None` when there was nothing (left) to shred.
    pub fn shred(
        &mut self,
        group: &GroupName,
        reason: &str,
        now: Timestamp,
    ) -> Result<Option<Shred>> {
        self.check_poison()?;
        if !self.groups.contains_key(group) {
            return Err(JournalError::NotFound(format!("group {group}")));
        }
        self.commit()?;
        self.seal_segment(group)?;
        if self.has_unsealed() {
            self.seal(now)?;
        }
        let files = list_group_files(&self.layout.group_dir(group))?;
        let upto = self
            .groups
            .get(group)
            .map_or(0, |state| state.frontier.size());
        let from = files.segments.first().map_or(upto, |(first, _)| *first);
        let already = files.shredded_below();
        let shred = if upto > already.max(from) {
            let now = self.signing_time(now)?;
            let shred = Shred {
                group: group.to_string(),
                from_seq: already.max(from),
                upto_seq: upto,
                segments: files
                    .segments
                    .iter()
                    .filter(|(first, _)| *first >= already && *first < upto)
                    .count() as u64,
                shredded_at: now,
                reason_digest: sha256(&[reason.as_bytes()]),
                epoch: self.signer.epoch(),
            };
            // Declared first: a crash before every key is gone leaves the records already
            // unreadable to seclog, and the next run finishes the job.
            fsutil::write_atomic(
                &self.layout.shred(group, upto),
                shred.sign(&self.signer).as_bytes(),
                0o644,
            )?;
            Some(shred)
        } else {
            None
        };
        let below = upto.max(already);
        for (first, _) in files.segments.iter().filter(|(first, _)| *first < below) {
            fsutil::remove_durable(&self.layout.data_key(group, *first))?;
        }
        Ok(shred)
    }
}
