//! The spool: closed batches waiting for seclog, one file each (or in memory).
//!
//! A batch is named by its producer and number, `<producer>-<number>.ndjson`. Every start of
//! the process is a new producer (a UUIDv7, so names sort in the order the runs began) whose
//! batches are numbered from 1; batches left by an earlier run keep the name they were given.
//! So no two batches ever share a name, even when the spool directory is restored from an
//! older copy, and seclog can tell a batch sent again from a new one.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Stats, report};
use crate::{Error, SeclogConfig};

/// A batch's name: who numbered it, and its number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct BatchId {
    pub(super) producer: Arc<str>,
    pub(super) number: u64,
}

impl BatchId {
    fn file_name(&self) -> String {
        format!("{}-{:020}.ndjson", self.producer, self.number)
    }

    fn parse(file_name: &str) -> Option<BatchId> {
        let (producer, number) = file_name.strip_suffix(".ndjson")?.rsplit_once('-')?;
        let valid_producer = !producer.is_empty()
            && producer.len() <= 64
            && producer.bytes().all(|byte| byte.is_ascii_alphanumeric());
        Some(BatchId {
            producer: valid_producer.then(|| Arc::from(producer))?,
            number: number.parse().ok()?,
        })
    }
}

/// One closed batch waiting to be sent.
struct Batch {
    id: BatchId,
    events: u64,
    bytes: u64,
    /// The lines, when the spool is in memory only.
    memory: Option<Arc<Vec<u8>>>,
}

struct SpoolState {
    batches: VecDeque<Batch>,
    bytes: u64,
    next_number: u64,
    /// The batch the sender is sending (not dropped when the spool is full).
    in_flight: Option<BatchId>,
    stop_at: Option<Instant>,
}

/// Batches waiting for seclog, on disk or in memory.
pub(super) struct Spool {
    dir: Option<PathBuf>,
    /// This run's producer name.
    producer: Arc<str>,
    max_bytes: u64,
    state: Mutex<SpoolState>,
    changed: Condvar,
    pub(super) stats: Arc<Stats>,
    /// Held while the process runs: one process per spool directory.
    _lock: Option<File>,
}

impl Spool {
    pub(super) fn open(config: &SeclogConfig, stats: Arc<Stats>) -> Result<Spool, Error> {
        let mut state = SpoolState {
            batches: VecDeque::new(),
            bytes: 0,
            next_number: 1,
            in_flight: None,
            stop_at: None,
        };
        let producer: Arc<str> = Arc::from(uuid::Uuid::now_v7().simple().to_string());
        let Some(dir) = &config.spool_dir else {
            return Ok(Spool {
                dir: None,
                producer,
                max_bytes: config.max_spool_bytes,
                state: Mutex::new(state),
                changed: Condvar::new(),
                stats,
                _lock: None,
            });
        };
        fs::create_dir_all(dir.join("batches")).map_err(Error::Io)?;
        fs::create_dir_all(dir.join("rejected")).map_err(Error::Io)?;
        let lock = File::create(dir.join("lock")).map_err(Error::Io)?;
        if lock.try_lock().is_err() {
            return Err(Error::Config(format!(
                "the spool directory {} is in use by another process",
                dir.display()
            )));
        }
        let mut found = Vec::new();
        for entry in fs::read_dir(dir.join("batches")).map_err(Error::Io)? {
            let entry = entry.map_err(Error::Io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = BatchId::parse(&name) {
                let bytes = entry.metadata().map_err(Error::Io)?.len();
                let events = count_lines(&entry.path()).map_err(Error::Io)?;
                found.push(Batch {
                    id,
                    events,
                    bytes,
                    memory: None,
                });
            } else if name.ends_with(".tmp") {
                // A batch whose write did not finish: it was never in the spool.
                let _ = fs::remove_file(entry.path());
            }
        }
        // Earlier runs first (UUIDv7 names sort by time), each run's batches in order.
        found.sort_by(|a, b| a.id.cmp(&b.id));
        state.bytes = found.iter().map(|batch| batch.bytes).sum();
        stats.spool_bytes.store(state.bytes, Ordering::Relaxed);
        state.batches = found.into();
        Ok(Spool {
            dir: Some(dir.clone()),
            producer,
            max_bytes: config.max_spool_bytes,
            state: Mutex::new(state),
            changed: Condvar::new(),
            stats,
            _lock: Some(lock),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SpoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `lines` (`events` lines) the next batch.
    pub(super) fn close_batch(&self, lines: Vec<u8>, events: u64) {
        let id = {
            let mut state = self.lock();
            let number = state.next_number;
            state.next_number += 1;
            BatchId {
                producer: Arc::clone(&self.producer),
                number,
            }
        };
        let bytes = lines.len() as u64;
        let memory = match &self.dir {
            Some(dir) => {
                if let Err(error) = write_durably(&dir.join("batches"), &id.file_name(), &lines) {
                    report(&format!(
                        "a batch of {events} events could not be written to the spool: {error}"
                    ));
                    self.stats.dropped.fetch_add(events, Ordering::Relaxed);
                    return;
                }
                None
            }
            None => Some(Arc::new(lines)),
        };
        self.stats.spooled.fetch_add(events, Ordering::Relaxed);
        let mut state = self.lock();
        state.batches.push_back(Batch {
            id,
            events,
            bytes,
            memory,
        });
        state.bytes += bytes;
        // Over the limit: the oldest batches go (not the one being sent).
        while state.bytes > self.max_bytes {
            let in_flight = state.in_flight.clone();
            let position = state
                .batches
                .iter()
                .position(|batch| Some(&batch.id) != in_flight.as_ref());
            let Some(oldest) = position.and_then(|position| state.batches.remove(position)) else {
                break;
            };
            state.bytes -= oldest.bytes;
            self.remove_file(&oldest.id);
            self.stats
                .dropped
                .fetch_add(oldest.events, Ordering::Relaxed);
            report(&format!(
                "the spool is full: a batch of {} events was dropped",
                oldest.events
            ));
        }
        self.stats.spool_bytes.store(state.bytes, Ordering::Relaxed);
        drop(state);
        self.changed.notify_all();
    }

    fn remove_file(&self, id: &BatchId) {
        if let Some(dir) = &self.dir {
            let _ = fs::remove_file(dir.join("batches").join(id.file_name()));
        }
    }

    /// The oldest batch and its lines, waiting for one; `None` once stopping and nothing more
    /// will be sent.
    pub(super) fn next(&self) -> Option<(BatchId, u64, Arc<Vec<u8>>)> {
        loop {
            let mut state = self.lock();
            loop {
                if state.stop_at.is_some_and(|at| Instant::now() >= at) {
                    return None;
                }
                if let Some(batch) = state.batches.front() {
                    let (id, events, memory) =
                        (batch.id.clone(), batch.events, batch.memory.clone());
                    state.in_flight = Some(id.clone());
                    drop(state);
                    let lines = match memory {
                        Some(lines) => lines,
                        None => match self.read_batch(&id) {
                            Ok(lines) => Arc::new(lines),
                            Err(error) => {
                                report(&format!(
                                    "spooled batch {} not readable: {error}",
                                    id.file_name()
                                ));
                                self.finish(&id, Finish::Lost);
                                break;
                            }
                        },
                    };
                    return Some((id, events, lines));
                }
                if state.stop_at.is_some() {
                    return None;
                }
                state = self
                    .changed
                    .wait_timeout(state, Duration::from_secs(1))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
    }

    fn read_batch(&self, id: &BatchId) -> std::io::Result<Vec<u8>> {
        let dir = self.dir.as_ref().ok_or(std::io::ErrorKind::NotFound)?;
        fs::read(dir.join("batches").join(id.file_name()))
    }

    pub(super) fn finish(&self, id: &BatchId, how: Finish) {
        let mut state = self.lock();
        state.in_flight = None;
        let Some(position) = state.batches.iter().position(|batch| &batch.id == id) else {
            return;
        };
        let Some(batch) = state.batches.remove(position) else {
            return;
        };
        state.bytes -= batch.bytes;
        self.stats.spool_bytes.store(state.bytes, Ordering::Relaxed);
        drop(state);
        match how {
            Finish::Sent => {
                self.stats.sent.fetch_add(batch.events, Ordering::Relaxed);
                self.remove_file(id);
            }
            Finish::Refused => {
                self.stats
                    .dropped
                    .fetch_add(batch.events, Ordering::Relaxed);
                if let Some(dir) = &self.dir {
                    let name = id.file_name();
                    let _ = fs::rename(
                        dir.join("batches").join(&name),
                        dir.join("rejected").join(&name),
                    );
                    prune_rejected(&dir.join("rejected"));
                }
            }
            Finish::Lost => {
                self.stats
                    .dropped
                    .fetch_add(batch.events, Ordering::Relaxed);
                self.remove_file(id);
            }
        }
    }

    /// Waits `delay`, or until the stop time if that comes first (also when the stop time is
    /// set during the wait); false once the stop time has passed.
    pub(super) fn pause(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        let mut state = self.lock();
        loop {
            let limit = state.stop_at.map_or(until, |at| at.min(until));
            let left = limit.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return state.stop_at.is_none_or(|at| Instant::now() < at);
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Shutdown: the sender stops at `deadline` (or when the spool is empty, before).
    pub(super) fn stop_at(&self, deadline: Instant) {
        self.lock().stop_at = Some(deadline);
        self.changed.notify_all();
    }

    /// The time the sender must stop by, once shutdown began.
    pub(super) fn stop_time(&self) -> Option<Instant> {
        self.lock().stop_at
    }
}

pub(super) enum Finish {
    Sent,
    Refused,
    Lost,
}

/// Writes `dir/name` so that after a crash it is either absent or whole.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = dir.join(format!("{name}.tmp"));
    {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&temporary, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Refused batches kept for inspection, at most.
const MAX_REJECTED: usize = 100;

/// Keeps the newest [`MAX_REJECTED`] refused batches (their names sort by number).
fn prune_rejected(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    if names.len() <= MAX_REJECTED {
        return;
    }
    names.sort();
    for old in &names[..names.len() - MAX_REJECTED] {
        let _ = fs::remove_file(old);
    }
}

fn count_lines(path: &Path) -> std::io::Result<u64> {
    let bytes = fs::read(path)?;
    Ok(bytes.iter().filter(|&&byte| byte == b'\n').count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, max_spool_bytes: u64) -> SeclogConfig {
        let mut config =
            SeclogConfig::new("http://127.0.0.1:9", crate::Secret::new("slt_test"), "test");
        config.spool_dir = Some(dir.to_path_buf());
        config.max_spool_bytes = max_spool_bytes;
        config
    }

    /// No batch name repeats: each run is a new producer numbering from 1, and batches an
    /// earlier run left keep their names, earlier runs first.
    #[test]
    fn batch_names_never_repeat_and_unsent_batches_are_found_again_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let first_run = {
            let spool = Spool::open(&config(dir.path(), 1 << 20), Arc::default()).unwrap();
            for _ in 0..3 {
                spool.close_batch(b"{}\n{}\n".to_vec(), 2);
            }
            let (id, events, lines) = spool.next().unwrap();
            assert_eq!(
                (id.number, events, lines.as_slice()),
                (1, 2, &b"{}\n{}\n"[..])
            );
            spool.finish(&id, Finish::Sent);
            assert_eq!(spool.stats.sent.load(Ordering::Relaxed), 2);
            // A second process on the same spool is refused while this one runs.
            assert!(Spool::open(&config(dir.path(), 1 << 20), Arc::default()).is_err());
            Arc::clone(&spool.producer)
        };
        std::thread::sleep(Duration::from_millis(2));
        let spool = Spool::open(&config(dir.path(), 1 << 20), Arc::default()).unwrap();
        assert_ne!(spool.producer, first_run, "every run is a new producer");
        spool.close_batch(b"{}\n".to_vec(), 1);
        let order: Vec<(Arc<str>, u64)> = spool
            .lock()
            .batches
            .iter()
            .map(|batch| (Arc::clone(&batch.id.producer), batch.id.number))
            .collect();
        assert_eq!(
            order,
            [
                (Arc::clone(&first_run), 2),
                (Arc::clone(&first_run), 3),
                (Arc::clone(&spool.producer), 1)
            ],
            "the earlier run's unsent batches, under their own names, then this run's"
        );
        assert_eq!(spool.stats.spool_bytes.load(Ordering::Relaxed), 2 * 6 + 3);
    }

    /// Over its limit the spool drops its oldest batches, counted.
    #[test]
    fn a_full_spool_drops_the_oldest_batches_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(Stats::default());
        let spool = Spool::open(&config(dir.path(), 250), Arc::clone(&stats)).unwrap();
        for _ in 0..5 {
            spool.close_batch(vec![b'x'; 100], 10);
        }
        let numbers: Vec<u64> = spool
            .lock()
            .batches
            .iter()
            .map(|batch| batch.id.number)
            .collect();
        assert_eq!(numbers, [4, 5]);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 30);
        assert_eq!(stats.spool_bytes.load(Ordering::Relaxed), 200);
        assert_eq!(
            std::fs::read_dir(dir.path().join("batches"))
                .unwrap()
                .count(),
            2
        );
    }
}
