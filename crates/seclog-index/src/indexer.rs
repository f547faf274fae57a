//! The indexing consumer: follows each group's journal into its pieces.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use seclog_journal::{JournalReader, StoredEvent};
use seclog_model::GroupName;
use tantivy::{IndexWriter, TantivyDocument};

use crate::catalog::{Catalog, Piece, PieceMeta};
use crate::error::Result;

const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;
/// Memory budget of one piece writer.
const WRITER_MEMORY: usize = 256 << 20;
/// Segments of one size merged at once: twice tantivy's default, so that while a piece fills an
/// event is rewritten by merges about half as often (more indexing throughput), for a few more
/// segments per query.
const MERGE_WIDTH: usize = 16;
/// Longest a catch-up keeps adding reads to one commit.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// A writer idle this long is closed (its memory returned).
const WRITER_IDLE: Duration = Duration::from_secs(120);

struct Active {
    piece: Arc<Piece>,
    writer: IndexWriter<TantivyDocument>,
    meta: PieceMeta,
    used: Instant,
}

/// Indexes journal records into the catalog. One thread owns it.
pub struct Indexer {
    catalog: Arc<Catalog>,
    reader: JournalReader,
    active: BTreeMap<GroupName, Active>,
}

impl std::fmt::Debug for Indexer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Indexer")
            .field("active", &self.active.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn receipt_day(event: &StoredEvent) -> i64 {
    event
        .record
        .observed_time
        .unix_nanos()
        .div_euclid(NANOS_PER_DAY)
}

impl Indexer {
    /// An indexer writing into `catalog`, reading with `reader`.
    pub fn new(catalog: Arc<Catalog>, reader: JournalReader) -> Self {
        Indexer {
            catalog,
            reader,
            active: BTreeMap::new(),
        }
    }

    /// The catalog it writes.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Indexes up to `max` records of `group` below `durable` and commits them; returns how
    /// many were indexed (0 when the index is caught up).
    pub fn index_group(&mut self, group: &GroupName, durable: u64, max: usize) -> Result<usize> {
        let result = self.index_batch(group, durable, max);
        if result.is_err() {
            // Whatever the writer holds beyond the last commit is dropped: the retry starts
            // again from the position that commit recorded.
            self.active.remove(group);
        }
        result
    }

    fn index_batch(&mut self, group: &GroupName, durable: u64, max: usize) -> Result<usize> {
        let started = Instant::now();
        let next = self.catalog.next_seq(group);
        let mut count = 0;
        if next < durable {
            // Behind the journal, up to `max` events or a second of work go into one commit
            // (fewer, larger segments to merge later); caught up, each commit is small.
            let reader = self.reader.clone();
            let mut failed = None;
            reader.for_each(group, next, Some(durable), |event| {
                if let Err(error) = self.add(group, &event) {
                    failed = Some(error);
                    return Ok(false);
                }
                count += 1;
                Ok(count < max && (count % 1024 != 0 || started.elapsed() < COMMIT_INTERVAL))
            })?;
            if let Some(error) = failed {
                return Err(error);
            }
        }
        self.commit(group)?;
        Ok(count)
    }

    fn add(&mut self, group: &GroupName, event: &StoredEvent) -> Result<()> {
        let day = receipt_day(event);
        let needs_new = match self.active.get(group) {
            Some(active) => active.meta.day != day,
            None => true,
        };
        if needs_new {
            self.switch_piece(group, event.seq, day)?;
        }
        let Some(active) = self.active.get_mut(group) else {
            return Ok(());
        };
        let doc = self.catalog.schema().document(event.seq, &event.record);
        active.writer.add_document(doc)?;
        let time = event.record.time.unix_nanos();
        active.meta.next_seq = event.seq + 1;
        active.meta.min_time = active.meta.min_time.min(time);
        active.meta.max_time = active.meta.max_time.max(time);
        active.meta.docs += 1;
        Ok(())
    }

    /// Makes the piece for `day` (reopening the newest one if it is that day's) the active one.
    fn switch_piece(&mut self, group: &GroupName, seq: u64, day: i64) -> Result<()> {
        if let Some(mut previous) = self.active.remove(group) {
            Self::commit_active(&mut previous)?;
            previous.writer.wait_merging_threads()?;
        }
        let newest = self.catalog.pieces(group).last().cloned();
        let piece = match newest {
            Some(piece) if piece.meta().day == day => piece,
            _ => self.catalog.create_piece(group, seq, day)?,
        };
        let writer = piece.index.writer_with_num_threads(2, WRITER_MEMORY)?;
        let mut policy = tantivy::indexer::LogMergePolicy::default();
        policy.set_min_num_segments(MERGE_WIDTH);
        writer.set_merge_policy(Box::new(policy));
        let meta = piece.meta();
        self.active.insert(
            group.clone(),
            Active {
                piece,
                writer,
                meta,
                used: Instant::now(),
            },
        );
        Ok(())
    }

    fn commit(&mut self, group: &GroupName) -> Result<()> {
        match self.active.get_mut(group) {
            Some(active) => Self::commit_active(active),
            None => Ok(()),
        }
    }

    /// Commits the documents added so far together with the position they reach.
    fn commit_active(active: &mut Active) -> Result<()> {
        active.used = Instant::now();
        if active.meta == active.piece.meta() {
            return Ok(());
        }
        let payload = serde_json::to_string(&active.meta)
            .map_err(|error| crate::IndexError::Invalid(error.to_string()))?;
        let mut prepared = active.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        active.piece.published(active.meta.clone())?;
        Ok(())
    }

    /// Lets searches see the segments that background merges of the open writers have made.
    pub fn refresh_merged(&mut self) -> Result<()> {
        for active in self.active.values() {
            active.piece.refresh()?;
        }
        Ok(())
    }

    /// Closes writers that have been idle for a while.
    pub fn close_idle(&mut self) -> Result<()> {
        let idle: Vec<GroupName> = self
            .active
            .iter()
            .filter(|(_, active)| active.used.elapsed() >= WRITER_IDLE)
            .map(|(group, _)| group.clone())
            .collect();
        for group in idle {
            if let Some(active) = self.active.remove(&group) {
                active.writer.wait_merging_threads()?;
                active.piece.refresh()?;
            }
        }
        Ok(())
    }

    /// Drops index pieces whose journal records retention has deleted.
    pub fn drop_expired(&mut self, group: &GroupName, first_retained: u64) -> Result<usize> {
        let active_first = self.active.get(group).map(|active| active.meta.first_seq);
        let dropped = self.catalog.drop_expired(group, first_retained)?;
        if dropped > 0
            && let Some(first) = active_first
            && !self
                .catalog
                .pieces(group)
                .iter()
                .any(|piece| piece.meta().first_seq == first)
            && let Some(active) = self.active.remove(group)
        {
            active.writer.wait_merging_threads()?;
        }
        Ok(dropped)
    }

    /// Forgets `group`'s index so that it is rebuilt from the journal.
    pub fn reset_group(&mut self, group: &GroupName) -> Result<()> {
        if let Some(active) = self.active.remove(group) {
            drop(active.writer);
        }
        self.catalog.remove_group(group)
    }

    /// Commits and closes every writer.
    pub fn close(mut self) -> Result<()> {
        let groups: Vec<GroupName> = self.active.keys().cloned().collect();
        for group in groups {
            self.commit(&group)?;
            if let Some(active) = self.active.remove(&group) {
                active.writer.wait_merging_threads()?;
                active.piece.refresh()?;
            }
        }
        Ok(())
    }
}
