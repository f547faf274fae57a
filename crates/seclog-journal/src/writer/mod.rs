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
use crate::fsutil;
use crate::layout::Layout;
use crate::merkle::{Frontier, Hash};
use crate::segment::{self, Footer, SegmentHeader};
use crate::signer::Signer;
use crate::store::list_groups;

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

    /// Waits until some group's size differs from `seen` or `timeout` passes; returns the sizes.
    pub fn wait_changed(
        &self,
        seen: &BTreeMap<GroupName, u64>,
        timeout: Duration,
    ) -> BTreeMap<GroupName, u64> {
        let Ok(guard) = self.sizes.lock() else {
            return BTreeMap::new();
        };
        match self
            .changed
            .wait_timeout_while(guard, timeout, |sizes| sizes == seen)
        {
            Ok((sizes, _)) => sizes.clone(),
            Err(_) => BTreeMap::new(),
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
    /// Retention policies, recorded in every checkpoint so that a change is signed evidence.
    retention: BTreeMap<GroupName, u32>,
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
            retention: BTreeMap::new(),
        };
        let (groups, _) = list_groups(layout)?;
        for (name, _) in groups {
            let state = writer.recover_group(&name, &mut notes)?;
            writer.groups.insert(name.clone(), state);
            writer.finish_shred(&name, &mut notes)?;
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

    /// What a segment's data key is wrapped for: its group and first record.
    pub fn key_context(group: &GroupName, first_seq: u64) -> Vec<u8> {
        format!("{group}/{first_seq}").into_bytes()
    }

    fn load_data_key(&self, group: &GroupName, first_seq: u64) -> Result<SecretKey> {
        let path = self.layout.data_key(group, first_seq);
        let wrapped = fs::read(&path).map_err(JournalError::io("read data key", &path))?;
        self.master
            .unwrap_key(&wrapped, &Self::key_context(group, first_seq))
    }

    /// Sets the retention policies that the next checkpoints record (and that `apply_retention`
    /// callers use). A change is signed with the next checkpoint.
    pub fn set_retention_policies(&mut self, policies: BTreeMap<GroupName, u32>) {
        self.retention = policies;
    }

    /// Where the journal lives.
    pub fn layout(&self) -> &Layout {
        &self.layout
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
        let file = fsutil::create_append_durable(&path, &header_bytes)?;
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
            let head = sealed.and_then(|groups| groups.get(name));
            head.map_or(0, |head| head.size) != state.frontier.size()
                || head.and_then(|head| head.retention_days) != self.retention.get(name).copied()
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
                        retention_days: self.retention.get(name).copied(),
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

    /// Seals open work: commits and signs a final checkpoint if anything is unsealed.
    pub fn close(mut self, now: Timestamp) -> Result<()> {
        if self.has_unsealed() {
            self.seal(now)?;
        }
        Ok(())
    }
}

mod recovery;
mod retention;
mod shred;
