//! Reading stored events back (needs the master key), and following a group from a durable cursor.

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use seclog_model::GroupName;

use crate::crypto::MasterKey;
use crate::error::{JournalError, Result};
use crate::frame::{self, FrameEnd};
use crate::layout::Layout;
use crate::record::Record;
use crate::segment::{self, BlockView, SegmentHeader, TAG_BLOCK};
use crate::store::list_group_files;
use crate::writer::DurableHeads;

/// One stored event with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its group.
    pub group: GroupName,
    /// Its sequence number (the Merkle leaf index).
    pub seq: u64,
    /// The decrypted record.
    pub record: Record,
}

/// A decrypted record with what a proof needs.
#[derive(Debug, Clone)]
pub(crate) struct OpenedRecord {
    pub(crate) seq: u64,
    pub(crate) salt: [u8; 32],
    pub(crate) bytes: Vec<u8>,
    /// `body_digest` of the block holding the record.
    pub(crate) body_digest: [u8; 32],
    /// Position of the record in its block, and every commitment of the block.
    pub(crate) index: u32,
    pub(crate) commitments: std::sync::Arc<Vec<[u8; 32]>>,
}

/// Decrypts events of a data directory. Safe to use while a writer appends.
#[derive(Debug, Clone)]
pub struct JournalReader {
    layout: Layout,
    master: MasterKey,
}

impl JournalReader {
    /// A reader for `layout` using `master` to unwrap data keys.
    pub fn new(layout: &Layout, master: MasterKey) -> Self {
        JournalReader {
            layout: layout.clone(),
            master,
        }
    }

    /// Reads up to `limit` events of `group` from `from_seq`, stopping before `end_seq` if given.
    pub fn read(
        &self,
        group: &GroupName,
        from_seq: u64,
        limit: usize,
        end_seq: Option<u64>,
    ) -> Result<Vec<StoredEvent>> {
        let mut events = Vec::new();
        if limit == 0 {
            return Ok(events);
        }
        self.for_each(group, from_seq, end_seq, |event| {
            events.push(event);
            Ok(events.len() < limit)
        })?;
        Ok(events)
    }

    /// Calls `visit` with each event of `group` from `from_seq` (before `end_seq` if given),
    /// in order, until it returns `Ok(false)`; each segment file is read once.
    pub fn for_each(
        &self,
        group: &GroupName,
        from_seq: u64,
        end_seq: Option<u64>,
        mut visit: impl FnMut(StoredEvent) -> Result<bool>,
    ) -> Result<()> {
        self.visit(group, from_seq, end_seq, |opened| {
            let record = Record::decode(&opened.bytes).map_err(|reason| {
                JournalError::Invalid(format!("record {}: {reason}", opened.seq))
            })?;
            visit(StoredEvent {
                group: group.clone(),
                seq: opened.seq,
                record,
            })
        })
    }

    /// Reads a segment file, its header and its data key.
    fn open_segment(
        &self,
        group: &GroupName,
        path: &std::path::Path,
    ) -> Result<(Vec<u8>, usize, [u8; 32], crate::crypto::SecretKey)> {
        let bytes = fs::read(path).map_err(JournalError::io("read", path))?;
        let (header, header_len) =
            SegmentHeader::parse(&bytes).map_err(|reason| JournalError::corrupt(path, reason))?;
        let header_digest = segment::header_digest(bytes.get(..header_len).unwrap_or_default());
        let key_path = self.layout.data_key(group, header.first_seq);
        let wrapped = fs::read(&key_path).map_err(JournalError::io("read data key", &key_path))?;
        let key = self
            .master
            .unwrap_key(&wrapped, format!("{group}/{}", header.first_seq).as_bytes())?;
        Ok((bytes, header_len, header_digest, key))
    }

    /// Reads the events at `seqs` (sorted ascending) of `group`, reading each segment at most
    /// once and decrypting only the blocks that hold a wanted record. Missing sequence numbers
    /// (removed by retention, or not yet written) are skipped. Stops early when `visit` returns
    /// `Ok(false)`.
    pub fn fetch(
        &self,
        group: &GroupName,
        seqs: &[u64],
        mut visit: impl FnMut(StoredEvent) -> Result<bool>,
    ) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        debug_assert!(seqs.is_sorted());
        let dir = self.layout.group_dir(group);
        let files = list_group_files(&dir)?;
        let mut wanted = seqs.iter().copied().peekable();
        while wanted
            .next_if(|seq| *seq < files.shredded_below())
            .is_some()
        {}
        let Some(first) = wanted.peek().copied() else {
            return Ok(());
        };
        let start_index = files
            .segments
            .iter()
            .rposition(|(segment_first, _)| *segment_first <= first)
            .unwrap_or(0);
        let segments = files.segments.get(start_index..).unwrap_or_default();
        for (index, (segment_first, path)) in segments.iter().enumerate() {
            let segment_end = segments.get(index + 1).map(|(next, _)| *next);
            while wanted.next_if(|seq| seq < segment_first).is_some() {}
            match wanted.peek() {
                None => return Ok(()),
                Some(seq) if segment_end.is_some_and(|end| *seq >= end) => continue,
                Some(_) => {}
            }
            let (bytes, header_len, header_digest, key) = self.open_segment(group, path)?;
            for frame in frame::frames(&bytes, header_len) {
                if frame.tag != TAG_BLOCK {
                    continue;
                }
                let block = BlockView::parse(frame.payload)
                    .map_err(|reason| JournalError::corrupt(path, reason))?;
                while wanted.next_if(|seq| *seq < block.first_seq).is_some() {}
                let Some(next) = wanted.peek().copied() else {
                    return Ok(());
                };
                if next >= block.end_seq() {
                    continue;
                }
                let opened = block
                    .open(&key, &header_digest)
                    .map_err(|reason| JournalError::corrupt(path, reason))?;
                let mut records = opened.records.into_iter().map(|(_, record)| record);
                let mut at = block.first_seq;
                while let Some(seq) = wanted.next_if(|seq| *seq < block.end_seq()) {
                    let skip = usize::try_from(seq - at).unwrap_or(usize::MAX);
                    let Some(bytes) = records.nth(skip) else {
                        break;
                    };
                    at = seq + 1;
                    let record = Record::decode(&bytes).map_err(|reason| {
                        JournalError::Invalid(format!("record {seq}: {reason}"))
                    })?;
                    if !visit(StoredEvent {
                        group: group.clone(),
                        seq,
                        record,
                    })? {
                        return Ok(());
                    }
                    // Duplicate requests for one record are served once.
                    while wanted.next_if(|next| *next == seq).is_some() {}
                }
            }
        }
        Ok(())
    }

    /// Decrypts records from `from_seq`, calling `visit` until it returns `Ok(false)`.
    pub(crate) fn visit(
        &self,
        group: &GroupName,
        from_seq: u64,
        end_seq: Option<u64>,
        mut visit: impl FnMut(OpenedRecord) -> Result<bool>,
    ) -> Result<()> {
        let dir = self.layout.group_dir(group);
        let files = match list_group_files(&dir) {
            Ok(files) => files,
            Err(JournalError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(JournalError::NotFound(format!("group {group}")));
            }
            Err(error) => return Err(error),
        };
        // Crypto-shredded records are skipped as expired ones are: nothing can read them.
        let from_seq = from_seq.max(files.shredded_below());
        let start_index = files
            .segments
            .iter()
            .rposition(|(first, _)| *first <= from_seq)
            .unwrap_or(0);
        for (first_seq, path) in files.segments.iter().skip(start_index) {
            if end_seq.is_some_and(|end| *first_seq >= end) {
                break;
            }
            if *first_seq < files.shredded_below() {
                continue;
            }
            let (bytes, header_len, header_digest, key) = self.open_segment(group, path)?;
            let mut frames = frame::frames(&bytes, header_len);
            for frame in frames.by_ref() {
                if frame.tag != TAG_BLOCK {
                    continue;
                }
                let block = BlockView::parse(frame.payload)
                    .map_err(|reason| JournalError::corrupt(path, reason))?;
                if block.end_seq() <= from_seq {
                    continue;
                }
                let opened = block
                    .open(&key, &header_digest)
                    .map_err(|reason| JournalError::corrupt(path, reason))?;
                let commitments = std::sync::Arc::new(opened.commitments);
                for (index, (salt, record)) in opened.records.into_iter().enumerate() {
                    let seq = block.first_seq + index as u64;
                    if seq < from_seq {
                        continue;
                    }
                    if end_seq.is_some_and(|end| seq >= end) {
                        return Ok(());
                    }
                    if !visit(OpenedRecord {
                        seq,
                        salt,
                        bytes: record,
                        body_digest: opened.body_digest,
                        index: index as u32,
                        commitments: std::sync::Arc::clone(&commitments),
                    })? {
                        return Ok(());
                    }
                }
            }
            // A torn tail is an append in progress (or an unrecovered crash): stop quietly there.
            if let FrameEnd::Corrupt { offset, reason } = frames.end() {
                return Err(JournalError::corrupt(
                    path,
                    format!("at byte {offset}: {reason}"),
                ));
            }
        }
        Ok(())
    }
}

/// Where a consumer stands in a group, kept durably by the consumer's store.
pub trait CursorStore: Send + Sync {
    /// The next sequence number `consumer` should process in `group` (0 when new).
    fn load_cursor(&self, consumer: &str, group: &GroupName) -> Result<u64>;
    /// Durably records that `consumer` has processed everything before `next_seq` in `group`.
    fn save_cursor(&self, consumer: &str, group: &GroupName, next_seq: u64) -> Result<()>;
}

/// Follows one group for one consumer: at-least-once delivery from a durable cursor; a consumer
/// that commits after processing sees each event exactly once across crashes.
pub struct Follower {
    reader: JournalReader,
    heads: Arc<DurableHeads>,
    cursors: Arc<dyn CursorStore>,
    consumer: String,
    group: GroupName,
    position: u64,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Follower")
            .field("consumer", &self.consumer)
            .field("group", &self.group)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// Starts from the consumer's saved cursor.
    pub fn new(
        reader: JournalReader,
        heads: Arc<DurableHeads>,
        cursors: Arc<dyn CursorStore>,
        consumer: &str,
        group: GroupName,
    ) -> Result<Self> {
        let position = cursors.load_cursor(consumer, &group)?;
        Ok(Follower {
            reader,
            heads,
            cursors,
            consumer: consumer.to_string(),
            group,
            position,
        })
    }

    /// Next sequence number this follower will return.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Returns up to `max` durable events after the position, waiting up to `timeout` for some.
    pub fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<StoredEvent>> {
        let durable = self.heads.wait_beyond(&self.group, self.position, timeout);
        if durable <= self.position {
            return Ok(Vec::new());
        }
        let events = self
            .reader
            .read(&self.group, self.position, max, Some(durable))?;
        if let Some(last) = events.last() {
            self.position = last.seq + 1;
        }
        Ok(events)
    }

    /// Durably records that everything returned so far has been processed.
    pub fn commit(&self) -> Result<()> {
        self.cursors
            .save_cursor(&self.consumer, &self.group, self.position)
    }
}
