//! Retention: whole segments whose records were sealed longer ago than the policy are deleted
//! behind signed tombstones.

use std::fs;

use seclog_model::{GroupName, Timestamp};

use super::JournalWriter;
use super::recovery::{last_block_time, read_tail_footer};
use crate::error::{JournalError, Result};
use crate::fsutil;
use crate::layout::display_relative;
use crate::segment::Footer;
use crate::store::list_group_files;
use crate::tombstone::Tombstone;

impl JournalWriter {
    /// Deletes `group`'s segments whose newest record is older than `days`, writing a signed
    /// tombstone for each. Returns one note per deleted segment.
    pub fn apply_retention(
        &mut self,
        group: &GroupName,
        days: u32,
        now: Timestamp,
    ) -> Result<Vec<String>> {
        self.check_poison()?;
        if group.is_access_log() {
            return Err(JournalError::Invalid(format!(
                "{group} records every read and admin action; no retention applies to it"
            )));
        }
        // The policy a deletion follows must be signed first: `verify` checks each tombstone
        // against the policy recorded by the checkpoints before it.
        self.retention.insert(group.clone(), days);
        let signed_policy = self
            .last_checkpoint()
            .and_then(|last| last.body.groups.get(group))
            .and_then(|head| head.retention_days);
        if self.groups.contains_key(group) && signed_policy != Some(days) {
            self.seal(now)?;
        }
        let cutoff = now
            .unix_nanos()
            .saturating_sub(i64::from(days).saturating_mul(86_400 * 1_000_000_000));
        let mut notes = Vec::new();
        let active_expired = self
            .groups
            .get(group)
            .and_then(|state| state.segment.as_ref())
            .is_some_and(|segment| {
                segment
                    .last_written
                    .is_some_and(|written| written.unix_nanos() < cutoff)
            });
        if active_expired {
            self.seal_segment(group)?;
        }
        let files = list_group_files(&self.layout.group_dir(group))?;
        let open_first = self
            .groups
            .get(group)
            .and_then(|state| state.segment.as_ref())
            .map(|segment| segment.first_seq);
        for (first_seq, path) in files.segments {
            if Some(first_seq) == open_first {
                break;
            }
            // Only the footer is read to decide; the whole file only for a segment that goes.
            let Some(footer) = read_tail_footer(&path)? else {
                break;
            };
            // Retention runs from the checkpoint that first sealed the records (what `verify`
            // checks), not from the unsigned write time.
            let Some(sealed_at) =
                crate::checkpoint::first_covering(&self.layout, group, footer.next_seq)?
            else {
                break;
            };
            if sealed_at.unix_nanos() >= cutoff {
                break;
            }
            let bytes = fs::read(&path).map_err(JournalError::io("read", &path))?;
            let Some(last_written) = last_block_time(&bytes) else {
                break;
            };
            self.delete_segment(
                group,
                first_seq,
                &footer,
                last_written,
                days,
                now,
                &mut notes,
            )?;
        }
        Ok(notes)
    }

    #[allow(clippy::too_many_arguments)]
    fn delete_segment(
        &mut self,
        group: &GroupName,
        first_seq: u64,
        footer: &Footer,
        last_written: Timestamp,
        days: u32,
        now: Timestamp,
        notes: &mut Vec<String>,
    ) -> Result<()> {
        let now = self.signing_time(now)?;
        let tombstone = Tombstone {
            group: group.to_string(),
            first_seq,
            next_seq: footer.next_seq,
            digest: footer.segment_digest,
            last_written,
            retention_days: days,
            deleted_at: now,
            epoch: self.signer.epoch(),
            frontier: footer.frontier.clone(),
        };
        let tomb_path = self.layout.tombstone(group, first_seq);
        fsutil::write_atomic(&tomb_path, tombstone.sign(&self.signer).as_bytes(), 0o644)?;
        let segment_path = self.layout.segment(group, first_seq);
        fsutil::remove_durable(&segment_path)?;
        fsutil::remove_durable(&self.layout.data_key(group, first_seq))?;
        notes.push(format!(
            "retention: group {group} records {first_seq}..{} (segment {}) expired after {days} days; tombstone {}",
            footer.next_seq,
            display_relative(&self.layout, &segment_path),
            display_relative(&self.layout, &tomb_path)
        ));
        Ok(())
    }
}
