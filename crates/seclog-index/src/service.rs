//! The indexing thread: follows every group's durable head and keeps the index within a
//! moment of it, applies journal retention to index pieces, and stops cleanly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use seclog_journal::{DurableHeads, JournalReader, Layout, first_retained};
use seclog_model::GroupName;

use crate::catalog::Catalog;
use crate::indexer::Indexer;

/// Records indexed per commit at most (a commit makes them searchable).
const BATCH: usize = 1_000_000;
/// How often expired pieces are looked for.
const RETENTION_CHECK: Duration = Duration::from_secs(60);

/// Counters of the indexing thread.
#[derive(Debug, Default)]
pub struct IndexStats {
    /// Records indexed since start.
    pub indexed: AtomicU64,
    /// Commits since start.
    pub commits: AtomicU64,
    /// Errors since start.
    pub errors: AtomicU64,
    /// The last error, if any.
    pub last_error: Mutex<Option<String>>,
}

/// A running indexing thread.
pub struct IndexService {
    stop: Arc<AtomicBool>,
    heads: Arc<DurableHeads>,
    thread: Option<JoinHandle<()>>,
    /// Its counters.
    pub stats: Arc<IndexStats>,
}

impl std::fmt::Debug for IndexService {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("IndexService")
            .finish_non_exhaustive()
    }
}

impl IndexService {
    /// Starts indexing `catalog` from the journal as `heads` advance.
    pub fn start(
        layout: Layout,
        catalog: Arc<Catalog>,
        reader: JournalReader,
        heads: Arc<DurableHeads>,
    ) -> std::io::Result<IndexService> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(IndexStats::default());
        let thread = {
            let (stop, stats, heads) = (Arc::clone(&stop), Arc::clone(&stats), Arc::clone(&heads));
            std::thread::Builder::new()
                .name("seclog-index".into())
                .spawn(move || {
                    lower_priority();
                    run(layout, catalog, reader, heads, stop, stats)
                })?
        };
        Ok(IndexService {
            stop,
            heads,
            thread: Some(thread),
            stats,
        })
    }

    /// Stops after the current batch and commits.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the thread if it waits for new records.
        let _ = &self.heads;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the indexing thread panicked");
        }
    }
}

fn run(
    layout: Layout,
    catalog: Arc<Catalog>,
    reader: JournalReader,
    heads: Arc<DurableHeads>,
    stop: Arc<AtomicBool>,
    stats: Arc<IndexStats>,
) {
    let mut indexer = Indexer::new(catalog, reader);
    let mut last_retention = Instant::now() - RETENTION_CHECK;
    let mut failing: BTreeMap<GroupName, Instant> = BTreeMap::new();
    let mut last_refresh = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let sizes = heads.snapshot();
        let mut busy = false;
        for (group, durable) in &sizes {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if failing
                .get(group)
                .is_some_and(|since| since.elapsed() < Duration::from_secs(5))
            {
                continue;
            }
            match indexer.index_group(group, *durable, BATCH) {
                Ok(0) => {}
                Ok(count) => {
                    busy = true;
                    failing.remove(group);
                    stats.indexed.fetch_add(count as u64, Ordering::Relaxed);
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(group = %group, error = %error, "indexing failed; retrying in 5 s");
                    if let Ok(mut last) = stats.last_error.lock() {
                        *last = Some(format!("{group}: {error}"));
                    }
                    failing.insert(group.clone(), Instant::now());
                }
            }
        }
        if last_retention.elapsed() >= RETENTION_CHECK {
            last_retention = Instant::now();
            for group in indexer.catalog().groups() {
                match first_retained(&layout, &group) {
                    Ok(first) if first > 0 => {
                        if let Err(error) = indexer.drop_expired(&group, first) {
                            tracing::error!(group = %group, error = %error, "dropping expired index pieces failed");
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(group = %group, error = %error, "reading the journal extent failed")
                    }
                }
            }
            if let Err(error) = indexer.close_idle() {
                tracing::warn!(error = %error, "closing idle index writers failed");
            }
        }
        if !busy {
            if last_refresh.elapsed() >= REFRESH_INTERVAL {
                last_refresh = Instant::now();
                if let Err(error) = indexer.refresh_merged() {
                    tracing::warn!(error = %error, "reloading merged index segments failed");
                }
            }
            heads.wait_changed(&sizes, Duration::from_millis(250));
        }
    }
    if let Err(error) = indexer.close() {
        tracing::error!(error = %error, "closing the index failed");
    }
}

/// How often, while idle, searches are moved onto segments that merges have made.
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Nice value of the indexing thread (and of tantivy's threads, which inherit it): when the
/// machine is saturated, storing what senders send comes before indexing it; the index catches
/// up as soon as there is room.
const INDEXING_NICENESS: i32 = 10;

fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(thread), INDEXING_NICENESS) {
            tracing::debug!(error = %error, "could not lower the indexing thread's priority");
        }
    }
}
