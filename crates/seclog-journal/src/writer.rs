//! The journal writer: appends records to per-group segments, commits them durably, signs
//! checkpoints and applies retention. One writer per data directory, driven by one thread.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use seclog_model::{GroupName, Timestamp};

use crate::checkpoint::{CheckpointLog, GroupHead, SignedCheckpoint};
use crate::crypto::{MasterKey, SecretKey};
use crate::error::{JournalError, Result};
use crate::frame::{self, FrameEnd, TAG_FOOTER};
use crate::fsutil;
use crate::layout::{Layout, display_relative};
use crate::merkle::{Frontier, Hash};
use crate::segment::{self, BlockView, Footer, SegmentHeader, TAG_BLOCK};
use crate::signer::Signer;
use crate::store::{list_group_files, list_groups};
use crate::tombstone::Tombstone;

/// Tunables of the writer.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// zstd level for blocks.
    pub zstd_level: i32,
    /// A segment is sealed once it holds this many bytes.
    pub segment_max_bytes: u64,
    /// ... or once it is this old.
    pub segment_max_age: Duration,
    /// Records are cut into blocks of about this many plaintext bytes.
    pub block_max_bytes: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            zstd_level: 3,
            segment_max_bytes: 64 << 20,
            segment_max_age: Duration::from_secs(24 * 3600),
            block_max_bytes: 4 << 20,
        }
    }
}

/// Durable sizes per group, shared with readers and followers, with change notification.
#[derive(Debug, Default)]
pub struct DurableHeads {
    sizes: Mutex<BTreeMap<GroupName, u64>>,
    changed: Condvar,
}

impl DurableHeads {
    /// Number of durable records in `group` (0 if unknown).
    pub fn size(&self, group: &GroupName) -> u64 {
        self.sizes
            .lock()
            .map(|sizes| sizes.get(group).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Every group with its durable size.
    pub fn snapshot(&self) -> BTreeMap<GroupName, u64> {
        self.sizes
            .lock()
            .map(|sizes| sizes.clone())
            .unwrap_or_default()
    }

    /// Waits until `group` holds more than `seen` records or `timeout` passes; returns the size.
    pub fn wait_beyond(&self, group: &GroupName, seen: u64, timeout: Duration) -> u64 {
        let Ok(guard) = self.sizes.lock() else {
            return 0;
        };
        let result = self.changed.wait_timeout_while(guard, timeout, |sizes| {
            sizes.get(group).copied().unwrap_or(0) <= seen
        });
        match result {
            Ok((sizes, _)) => sizes.get(group).copied().unwrap_or(0),
            Err(_) => 0,
        }
    }

    fn publish(&self, updates: impl IntoIterator<Item = (GroupName, u64)>) {
        if let Ok(mut sizes) = self.sizes.lock() {
            sizes.extend(updates);
        }
        self.changed.notify_all();
    }
}

struct OpenSegment {
    file: fs::File,
    path: PathBuf,
    header_digest: Hash,
    key: SecretKey,
    first_seq: u64,
    bytes: u64,
    created_at: Timestamp,
    last_written: Option<Timestamp>,
}

struct GroupState {
    segment: Option<OpenSegment>,
    /// Digest of the last sealed segment (or tombstone), for the next header.
    prev_digest: Hash,
    frontier: Frontier,
    dirty: bool,
}

/// Appends, commits, seals and expires. Not thread-safe by design: one thread owns it.
pub struct JournalWriter {
    layout: Layout,
    master: MasterKey,
    signer: Signer,
    checkpoints: CheckpointLog,
    config: JournalConfig,
    groups: BTreeMap<GroupName, GroupState>,
    heads: Arc<DurableHeads>,
    poisoned: Option<String>,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("JournalWriter")
            .field("root", &self.layout.root())
            .finish_non_exhaustive()
    }
}

impl JournalWriter {
    /// Opens the journal for writing, repairing an interrupted append. Returns notes on what
    /// recovery did (for the log).
    pub fn open(
        layout: &Layout,
        master: MasterKey,
        config: JournalConfig,
    ) -> Result<(Self, Vec<String>)> {
        let signer = Signer::open(layout, &master)?;
        let (mut checkpoints, mut notes) = CheckpointLog::open(layout)?;
        let mut signer = signer;
        if checkpoints.last().is_none() && signer.epoch() == 0 {
            // `init` signs the genesis checkpoint; a crash right after it wrote the verification
            // key leaves none, and it can still be signed while epoch 0's key exists.
            let genesis_time = signer.epoch_start();
            checkpoints.append(&mut signer, genesis_time, BTreeMap::new())?;
            notes.push("recovery: signed the missing genesis checkpoint".to_string());
        }
        fsutil::create_dir_all_private(&layout.groups_dir())?;
        let mut writer = JournalWriter {
            layout: layout.clone(),
            master,
            signer,
            checkpoints,
            config,
            groups: BTreeMap::new(),
            heads: Arc::new(DurableHeads::default()),
            poisoned: None,
        };
        let (groups, _) = list_groups(layout)?;
        for (name, _) in groups {
            let state = writer.recover_group(&name, &mut notes)?;
            writer.groups.insert(name, state);
        }
        if let Some(last) = writer.checkpoints.last() {
            for (name, head) in &last.body.groups {
                let present = writer
                    .groups
                    .get(name)
                    .map_or(0, |state| state.frontier.size());
                if present < head.size {
                    return Err(JournalError::Corrupt {
                        path: layout.group_dir(name),
                        reason: format!(
                            "group {name} holds {present} records but signed checkpoint #{} covers {}; run `seclog verify`",
                            last.body.seq, head.size
                        ),
                    });
                }
            }
        }
        writer.heads.publish(
            writer
                .groups
                .iter()
                .map(|(name, state)| (name.clone(), state.frontier.size())),
        );
        Ok((writer, notes))
    }

    fn recover_group(&mut self, group: &GroupName, notes: &mut Vec<String>) -> Result<GroupState> {
        let files = list_group_files(&self.layout.group_dir(group))?;
        let mut state = GroupState {
            segment: None,
            prev_digest: [0; 32],
            frontier: Frontier::new(),
            dirty: false,
        };
        // Leftovers of an interrupted atomic write (a tombstone being written) hold nothing yet.
        for path in &files.unexpected {
            if path.extension().is_some_and(|extension| extension == "tmp") {
                notes.push(format!(
                    "recovery: removed {}, left by an interrupted write",
                    display_relative(&self.layout, path)
                ));
                fsutil::remove_durable(path)?;
            }
        }
        let tombstones = files
            .tombstones
            .iter()
            .map(|(seq, _)| *seq)
            .collect::<Vec<_>>();
        // Finish a deletion interrupted after its tombstone was written.
        let mut segments = files.segments.clone();
        if let Some((_, tomb_path)) = files.tombstones.last() {
            let text =
                fs::read_to_string(tomb_path).map_err(JournalError::io("read", tomb_path))?;
            let tombstone = Tombstone::parse_and_verify(&text, self.signer.verification_key())
                .map_err(|reason| JournalError::corrupt(tomb_path, reason))?;
            segments.retain(|(seq, path)| {
                if tombstones.contains(seq) {
                    let _ = fsutil::remove_durable(path);
                    false
                } else {
                    true
                }
            });
            state.prev_digest = tombstone.digest;
            state.frontier = Frontier::from_parts(tombstone.next_seq, tombstone.frontier)
                .map_err(|error| JournalError::corrupt(tomb_path, error.to_string()))?;
        }
        // A crash while a segment was being created leaves a file shorter than its header:
        // nothing in it was ever acknowledged, so it is removed and created again on demand.
        if let Some((seq, path)) = segments.last().cloned() {
            let len = fs::metadata(&path)
                .map_err(JournalError::io("stat", &path))?
                .len();
            let full_header = SegmentHeader::encoded_len(group.as_str()) as u64;
            let bytes = fs::read(&path).map_err(JournalError::io("read", &path))?;
            if len < full_header || (len == full_header && SegmentHeader::parse(&bytes).is_err()) {
                notes.push(format!(
                    "recovery: removed {}, a segment whose creation was interrupted ({len} bytes)",
                    display_relative(&self.layout, &path)
                ));
                fsutil::remove_durable(&path)?;
                fsutil::remove_durable(&self.layout.data_key(group, seq))?;
                segments.pop();
            }
        }
        let Some((last_seq, last_path)) = segments.last().cloned() else {
            return Ok(state);
        };
        if let Some((_, sealed_path)) = segments.iter().rev().nth(1) {
            let bytes = fs::read(sealed_path).map_err(JournalError::io("read", sealed_path))?;
            let footer = find_footer(&bytes).ok_or_else(|| {
                JournalError::corrupt(sealed_path, "sealed segment has no footer")
            })?;
            state.prev_digest = footer.segment_digest;
            state.frontier = Frontier::from_parts(footer.next_seq, footer.frontier)
                .map_err(|error| JournalError::corrupt(sealed_path, error.to_string()))?;
        }
        let bytes = fs::read(&last_path).map_err(JournalError::io("read", &last_path))?;
        let (header, header_len) = SegmentHeader::parse(&bytes)
            .map_err(|reason| JournalError::corrupt(&last_path, reason))?;
        if header.first_seq != last_seq || header.first_seq != state.frontier.size() {
            return Err(JournalError::corrupt(
                &last_path,
                "segment does not start where the previous one ended",
            ));
        }
        let header_digest = segment::header_digest(bytes.get(..header_len).unwrap_or_default());
        let mut frames = frame::frames(&bytes, header_len);
        let mut leaves = Vec::new();
        let mut last_written = None;
        let mut footer = None;
        for frame in frames.by_ref() {
            match frame.tag {
                TAG_BLOCK => {
                    let block = BlockView::parse(frame.payload)
                        .map_err(|reason| JournalError::corrupt(&last_path, reason))?;
                    if block.first_seq != state.frontier.size() + leaves.len() as u64 {
                        return Err(JournalError::corrupt(
                            &last_path,
                            format!("block {} out of sequence", block.first_seq),
                        ));
                    }
                    block.leaves(&header_digest, &mut leaves);
                    last_written = Some(block.written_at);
                }
                TAG_FOOTER => {
                    footer = Some(
                        Footer::parse(frame.payload)
                            .map_err(|reason| JournalError::corrupt(&last_path, reason))?,
                    )
                }
                other => {
                    return Err(JournalError::corrupt(
                        &last_path,
                        format!("unknown frame tag {other:#x}"),
                    ));
                }
            }
        }
        let valid_len = frames.offset();
        match frames.end() {
            FrameEnd::Clean => {}
            // After a power loss the unsynced tail of the last commit can come back torn, zeroed
            // or out of order, so a bad frame may be followed by more bytes. None of it was
            // acknowledged as long as no checkpoint covers it: quarantine and cut it.
            FrameEnd::Torn { offset, reason } | FrameEnd::Corrupt { offset, reason } => {
                let kept = state.frontier.size() + leaves.len() as u64;
                let last = self.checkpoints.last();
                let sealed = last
                    .and_then(|last| last.body.groups.get(group))
                    .map_or(0, |head| head.size);
                if kept < sealed {
                    // The damaged bytes hold records a checkpoint covers: they were acknowledged,
                    // so this is damage, not an interrupted append. Keep the evidence.
                    return Err(JournalError::corrupt(
                        &last_path,
                        format!(
                            "at byte {offset}: {reason}; records {kept}.. are covered by signed checkpoint #{}; run `seclog verify`",
                            last.map_or(0, |last| last.body.seq)
                        ),
                    ));
                }
                let quarantine = self.quarantine(
                    group,
                    header.first_seq,
                    bytes.get(offset..).unwrap_or_default(),
                )?;
                notes.push(format!(
                    "recovery: truncated {} bytes of an unacknowledged, interrupted append at the end of {} ({reason}); a copy is kept in {}",
                    bytes.len() - offset,
                    display_relative(&self.layout, &last_path),
                    display_relative(&self.layout, &quarantine)
                ));
                fsutil::truncate_durable(&last_path, offset as u64)?;
            }
        }
        for leaf in leaves {
            state.frontier.push(leaf);
        }
        if let Some(footer) = footer {
            state.prev_digest = footer.segment_digest;
            return Ok(state);
        }
        let key = self.load_data_key(group, header.first_seq)?;
        let file = fs::OpenOptions::new()
            .append(true)
            .open(&last_path)
            .map_err(JournalError::io("open", &last_path))?;
        state.segment = Some(OpenSegment {
            file,
            path: last_path,
            header_digest,
            key,
            first_seq: header.first_seq,
            bytes: valid_len as u64,
            created_at: header.created_at,
            last_written,
        });
        Ok(state)
    }

    /// Saves bytes that recovery cuts (encrypted blocks, never plaintext) outside `journal/`.
    fn quarantine(&self, group: &GroupName, first_seq: u64, bytes: &[u8]) -> Result<PathBuf> {
        let dir = self.layout.root().join("quarantine");
        fsutil::create_dir_all_private(&dir)?;
        let name = format!(
            "{}-{first_seq:020}-{}.bin",
            group.to_dir_name(),
            Timestamp::now().unix_nanos()
        );
        let path = dir.join(name);
        fsutil::write_atomic(&path, bytes, 0o600)?;
        Ok(path)
    }

    fn key_context(group: &GroupName, first_seq: u64) -> Vec<u8> {
        format!("{group}/{first_seq}").into_bytes()
    }

    fn load_data_key(&self, group: &GroupName, first_seq: u64) -> Result<SecretKey> {
        let path = self.layout.data_key(group, first_seq);
        let wrapped = fs::read(&path).map_err(JournalError::io("read data key", &path))?;
        self.master
            .unwrap_key(&wrapped, &Self::key_context(group, first_seq))
    }

    /// Shared durable sizes, for readers and followers.
    pub fn heads(&self) -> Arc<DurableHeads> {
        Arc::clone(&self.heads)
    }

    /// The newest signed checkpoint.
    pub fn last_checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.checkpoints.last()
    }

    /// Current number of records (durable or not) per group.
    pub fn sizes(&self) -> BTreeMap<GroupName, u64> {
        self.groups
            .iter()
            .map(|(name, state)| (name.clone(), state.frontier.size()))
            .collect()
    }

    fn check_poison(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(JournalError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    /// Appends encoded records to `group`; they are durable only after [`JournalWriter::commit`].
    /// Returns the first and last sequence numbers assigned.
    pub fn append(
        &mut self,
        group: &GroupName,
        records: &[Vec<u8>],
        now: Timestamp,
    ) -> Result<Option<(u64, u64)>> {
        self.check_poison()?;
        if records.is_empty() {
            return Ok(None);
        }
        if !self.groups.contains_key(group) {
            let dir = self.layout.group_dir(group);
            fsutil::create_dir_all_private(&dir)?;
            fsutil::sync_parent(&dir)?;
            self.groups.insert(
                group.clone(),
                GroupState {
                    segment: None,
                    prev_digest: [0; 32],
                    frontier: Frontier::new(),
                    dirty: false,
                },
            );
        }
        let first = self
            .groups
            .get(group)
            .map_or(0, |state| state.frontier.size());
        let mut start = 0;
        while start < records.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < records.len()
                && end - start < segment::MAX_BLOCK_RECORDS as usize
                && (end == start
                    || bytes + records.get(end).map_or(0, Vec::len) <= self.config.block_max_bytes)
            {
                bytes += records.get(end).map_or(0, Vec::len);
                end += 1;
            }
            let block: Vec<&[u8]> = records
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(Vec::as_slice)
                .collect();
            if let Err(error) = self.append_block(group, &block, now) {
                self.poisoned = Some(error.to_string());
                return Err(error);
            }
            start = end;
        }
        Ok(Some((first, first + records.len() as u64 - 1)))
    }

    fn append_block(&mut self, group: &GroupName, records: &[&[u8]], now: Timestamp) -> Result<()> {
        self.roll_if_due(group, now)?;
        if self
            .groups
            .get(group)
            .is_some_and(|state| state.segment.is_none())
        {
            self.create_segment(group, now)?;
        }
        let level = self.config.zstd_level;
        let state = self
            .groups
            .get_mut(group)
            .ok_or_else(|| JournalError::NotFound(group.to_string()))?;
        let segment = state
            .segment
            .as_mut()
            .ok_or_else(|| JournalError::NotFound(group.to_string()))?;
        let block = segment::build_block(
            &segment.key,
            &segment.header_digest,
            state.frontier.size(),
            now,
            records,
            level,
        )?;
        segment
            .file
            .write_all(&block.frame)
            .map_err(JournalError::io("append", segment.path.as_path()))?;
        segment.bytes += block.frame.len() as u64;
        segment.last_written = Some(now);
        for leaf in block.leaves {
            state.frontier.push(leaf);
        }
        state.dirty = true;
        Ok(())
    }

    fn roll_if_due(&mut self, group: &GroupName, now: Timestamp) -> Result<()> {
        let max_age = i64::try_from(self.config.segment_max_age.as_nanos()).unwrap_or(i64::MAX);
        let due = self
            .groups
            .get(group)
            .and_then(|state| state.segment.as_ref())
            .is_some_and(|segment| {
                segment.last_written.is_some()
                    && (segment.bytes >= self.config.segment_max_bytes
                        || now
                            .unix_nanos()
                            .saturating_sub(segment.created_at.unix_nanos())
                            >= max_age)
            });
        if due {
            self.seal_segment(group)
        } else {
            Ok(())
        }
    }

    /// Writes the footer of the group's open segment; the next append starts a new one.
    fn seal_segment(&mut self, group: &GroupName) -> Result<()> {
        let Some(state) = self.groups.get_mut(group) else {
            return Ok(());
        };
        let Some(mut segment) = state.segment.take() else {
            return Ok(());
        };
        let next_seq = state.frontier.size();
        let segment_digest =
            segment::segment_digest(&segment.header_digest, next_seq, &state.frontier.root());
        let footer = Footer {
            next_seq,
            frontier: state.frontier.nodes().to_vec(),
            segment_digest,
        };
        let result = segment
            .file
            .write_all(&footer.encode_frame())
            .and_then(|()| segment.file.sync_all())
            .map_err(JournalError::io("seal segment", segment.path.as_path()));
        if let Err(error) = result {
            self.poisoned = Some(error.to_string());
            return Err(error);
        }
        state.prev_digest = segment_digest;
        state.dirty = false;
        Ok(())
    }

    fn create_segment(&mut self, group: &GroupName, now: Timestamp) -> Result<()> {
        let Some(state) = self.groups.get(group) else {
            return Ok(());
        };
        let first_seq = state.frontier.size();
        let key = SecretKey::generate()?;
        let key_path = self.layout.data_key(group, first_seq);
        fsutil::create_dir_all_private(&self.layout.data_keys_dir(group))?;
        fsutil::write_atomic(
            &key_path,
            &self
                .master
                .wrap(&key, &Self::key_context(group, first_seq))?,
            0o600,
        )?;
        let header = SegmentHeader {
            group: group.to_string(),
            first_seq,
            created_at: now,
            prev_digest: state.prev_digest,
        };
        let header_bytes = header.encode();
        let path = self.layout.segment(group, first_seq);
        let mut file = fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(JournalError::io("create", &path))?;
        file.write_all(&header_bytes)
            .map_err(JournalError::io("write", &path))?;
        file.sync_all().map_err(JournalError::io("sync", &path))?;
        fsutil::sync_parent(&path)?;
        let segment = OpenSegment {
            file,
            path,
            header_digest: segment::header_digest(&header_bytes),
            key,
            first_seq,
            bytes: header_bytes.len() as u64,
            created_at: now,
            last_written: None,
        };
        if let Some(state) = self.groups.get_mut(group) {
            state.segment = Some(segment);
        }
        Ok(())
    }

    /// Makes every appended record durable (fsync) and visible to readers.
    pub fn commit(&mut self) -> Result<()> {
        self.check_poison()?;
        let mut published = Vec::new();
        for (name, state) in &mut self.groups {
            if !state.dirty {
                continue;
            }
            if let Some(segment) = &state.segment
                && let Err(error) = segment.file.sync_data()
            {
                let error = JournalError::io("fsync", segment.path.as_path())(error);
                self.poisoned = Some(error.to_string());
                return Err(error);
            }
            state.dirty = false;
            published.push((name.clone(), state.frontier.size()));
        }
        self.heads.publish(published);
        Ok(())
    }

    /// True when some group holds records that no checkpoint covers yet.
    pub fn has_unsealed(&self) -> bool {
        let sealed = self.checkpoints.last().map(|last| &last.body.groups);
        self.groups.iter().any(|(name, state)| {
            sealed
                .and_then(|groups| groups.get(name))
                .map_or(0, |head| head.size)
                != state.frontier.size()
        })
    }

    /// Signs a checkpoint of every group's tree (after a commit). Commits first.
    pub fn seal(&mut self, now: Timestamp) -> Result<SignedCheckpoint> {
        self.commit()?;
        let groups = self
            .groups
            .iter()
            .map(|(name, state)| {
                (
                    name.clone(),
                    GroupHead {
                        size: state.frontier.size(),
                        root: state.frontier.root(),
                    },
                )
            })
            .collect();
        let result = self.checkpoints.append(&mut self.signer, now, groups);
        if let Err(error) = &result {
            // Acknowledging what cannot be sealed would break the promise: stop accepting writes.
            self.poisoned = Some(format!("sealing failed: {error}"));
        }
        result
    }

    /// Deletes `group`'s segments whose newest record is older than `days`, writing a signed
    /// tombstone for each. Returns one note per deleted segment.
    pub fn apply_retention(
        &mut self,
        group: &GroupName,
        days: u32,
        now: Timestamp,
    ) -> Result<Vec<String>> {
        self.check_poison()?;
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
            let bytes = fs::read(&path).map_err(JournalError::io("read", &path))?;
            let Some(footer) = find_footer(&bytes) else {
                break;
            };
            let Some(last_written) = last_block_time(&bytes) else {
                break;
            };
            if last_written.unix_nanos() >= cutoff {
                break;
            }
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
        // A tombstone is dated no earlier than the newest checkpoint: with the clock stepped
        // back, its date would fall in an epoch whose key is already erased.
        let now = self
            .checkpoints
            .last()
            .map_or(now, |last| last.body.time.max(now));
        self.signer.advance_for(now)?;
        let now = now.max(self.signer.epoch_start());
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

    /// Seals open work: commits and signs a final checkpoint if anything is unsealed.
    pub fn close(mut self, now: Timestamp) -> Result<()> {
        if self.has_unsealed() {
            self.seal(now)?;
        }
        Ok(())
    }
}

/// The footer of a sealed segment, if the file ends with one.
pub(crate) fn find_footer(bytes: &[u8]) -> Option<Footer> {
    let (_, header_len) = SegmentHeader::parse(bytes).ok()?;
    frame::frames(bytes, header_len)
        .filter(|frame| frame.tag == TAG_FOOTER)
        .last()
        .and_then(|frame| Footer::parse(frame.payload).ok())
}

fn last_block_time(bytes: &[u8]) -> Option<Timestamp> {
    let (_, header_len) = SegmentHeader::parse(bytes).ok()?;
    frame::frames(bytes, header_len)
        .filter(|frame| frame.tag == TAG_BLOCK)
        .last()
        .and_then(|frame| BlockView::parse(frame.payload).ok())
        .map(|block| block.written_at)
}
