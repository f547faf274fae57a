//! The spool: closed batches waiting for seclog, in numbered files (or in memory), with the
//! producer's name and the reserved batch numbers beside them.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Stats, report};
use crate::{Error, SeclogConfig};

/// One closed batch waiting to be sent.
struct Batch {
    number: u64,
    events: u64,
    bytes: u64,
    /// The lines, when the spool is in memory only.
    memory: Option<Arc<Vec<u8>>>,
}

struct SpoolState {
    batches: VecDeque<Batch>,
    bytes: u64,
    next_number: u64,
    /// Numbers below this are reserved in the `sequence` file.
    reserved: u64,
    /// The batch the sender is sending (not dropped when the spool is full).
    in_flight: Option<u64>,
    stop_at: Option<Instant>,
}

/// Batches waiting for seclog, on disk or in memory.
pub(super) struct Spool {
    dir: Option<PathBuf>,
    pub(super) producer: String,
    max_bytes: u64,
    state: Mutex<SpoolState>,
    changed: Condvar,
    pub(super) stats: Arc<Stats>,
    /// Held while the process runs: one process per spool directory.
    _lock: Option<File>,
}

const RESERVE: u64 = 1024;

impl Spool {
    pub(super) fn open(config: &SeclogConfig, stats: Arc<Stats>) -> Result<Spool, Error> {
        let mut state = SpoolState {
            batches: VecDeque::new(),
            bytes: 0,
            next_number: 1,
            reserved: 1,
            in_flight: None,
            stop_at: None,
        };
        let Some(dir) = &config.spool_dir else {
            return Ok(Spool {
                dir: None,
                producer: format!("mem-{}", uuid::Uuid::new_v4().simple()),
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
        let producer = match fs::read_to_string(dir.join("producer")) {
            Ok(text) if !text.trim().is_empty() => text.trim().to_string(),
            _ => {
                let name = uuid::Uuid::new_v4().simple().to_string();
                write_durably(dir, "producer", name.as_bytes())?;
                name
            }
        };
        let reserved = fs::read_to_string(dir.join("sequence"))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(1);
        let mut found = Vec::new();
        for entry in fs::read_dir(dir.join("batches")).map_err(Error::Io)? {
            let entry = entry.map_err(Error::Io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(number) = name
                .strip_suffix(".ndjson")
                .and_then(|stem| stem.parse::<u64>().ok())
            {
                let bytes = entry.metadata().map_err(Error::Io)?.len();
                let events = count_lines(&entry.path()).map_err(Error::Io)?;
                found.push(Batch {
                    number,
                    events,
                    bytes,
                    memory: None,
                });
            } else if name.ends_with(".tmp") {
                // A batch whose write did not finish: it was never in the spool.
                let _ = fs::remove_file(entry.path());
            }
        }
        found.sort_by_key(|batch| batch.number);
        let after_found = found.last().map_or(1, |batch| batch.number + 1);
        state.next_number = reserved.max(after_found);
        state.reserved = state.next_number;
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
        let number = {
            let mut state = self.lock();
            let number = state.next_number;
            state.next_number += 1;
            if let Some(dir) = &self.dir
                && number >= state.reserved
            {
                let reserved = number + RESERVE;
                if let Err(error) = write_durably(dir, "sequence", reserved.to_string().as_bytes())
                {
                    report(&format!("spool sequence not written: {error}"));
                } else {
                    state.reserved = reserved;
                }
            }
            number
        };
        let bytes = lines.len() as u64;
        let memory = match &self.dir {
            Some(dir) => {
                let name = format!("{number:020}.ndjson");
                if let Err(error) = write_durably(&dir.join("batches"), &name, &lines) {
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
            number,
            events,
            bytes,
            memory,
        });
        state.bytes += bytes;
        // Over the limit: the oldest batches go (not the one being sent).
        while state.bytes > self.max_bytes {
            let in_flight = state.in_flight;
            let position = state
                .batches
                .iter()
                .position(|batch| Some(batch.number) != in_flight);
            let Some(oldest) = position.and_then(|position| state.batches.remove(position)) else {
                break;
            };
            state.bytes -= oldest.bytes;
            self.remove_file(oldest.number);
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

    fn remove_file(&self, number: u64) {
        if let Some(dir) = &self.dir {
            let _ = fs::remove_file(dir.join("batches").join(format!("{number:020}.ndjson")));
        }
    }

    /// The oldest batch and its lines, waiting for one; `None` once stopping and nothing more
    /// will be sent.
    pub(super) fn next(&self) -> Option<(u64, u64, Arc<Vec<u8>>)> {
        loop {
            let mut state = self.lock();
            loop {
                if state.stop_at.is_some_and(|at| Instant::now() >= at) {
                    return None;
                }
                if let Some(batch) = state.batches.front() {
                    let (number, events, memory) =
                        (batch.number, batch.events, batch.memory.clone());
                    state.in_flight = Some(number);
                    drop(state);
                    let lines = match memory {
                        Some(lines) => lines,
                        None => match self.read_batch(number) {
                            Ok(lines) => Arc::new(lines),
                            Err(error) => {
                                report(&format!("spooled batch {number} not readable: {error}"));
                                self.finish(number, Finish::Lost);
                                break;
                            }
                        },
                    };
                    return Some((number, events, lines));
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

    fn read_batch(&self, number: u64) -> std::io::Result<Vec<u8>> {
        let dir = self.dir.as_ref().ok_or(std::io::ErrorKind::NotFound)?;
        fs::read(dir.join("batches").join(format!("{number:020}.ndjson")))
    }

    pub(super) fn finish(&self, number: u64, how: Finish) {
        let mut state = self.lock();
        state.in_flight = None;
        let Some(position) = state
            .batches
            .iter()
            .position(|batch| batch.number == number)
        else {
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
                self.remove_file(number);
            }
            Finish::Refused => {
                self.stats
                    .dropped
                    .fetch_add(batch.events, Ordering::Relaxed);
                if let Some(dir) = &self.dir {
                    let name = format!("{number:020}.ndjson");
                    let _ = fs::rename(
                        dir.join("batches").join(&name),
                        dir.join("rejected").join(&name),
                    );
                }
            }
            Finish::Lost => {
                self.stats
                    .dropped
                    .fetch_add(batch.events, Ordering::Relaxed);
                self.remove_file(number);
            }
        }
    }

    /// Waits `delay` unless stopping comes first; false once the stop time has passed.
    pub(super) fn pause(&self, delay: Duration) -> bool {
        let state = self.lock();
        let until = Instant::now() + delay;
        let limit = state.stop_at.map_or(until, |at| at.min(until));
        let state = self
            .changed
            .wait_timeout_while(
                state,
                limit.saturating_duration_since(Instant::now()),
                |state| {
                    state.stop_at.is_none_or(|at| Instant::now() < at) && Instant::now() < limit
                },
            )
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        state.stop_at.is_none_or(|at| Instant::now() < at)
    }

    pub(super) fn stop_at(&self, deadline: Instant) {
        self.lock().stop_at = Some(deadline);
        self.changed.notify_all();
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

    /// Batch numbers never repeat: a restart after every batch was sent continues above them
    /// (seclog would take a repeated number for a batch it has).
    #[test]
    fn batch_numbers_survive_restarts_and_unsent_batches_are_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let (producer, sent_numbers) = {
            let spool = Spool::open(&config(dir.path(), 1 << 20), Arc::default()).unwrap();
            for _ in 0..3 {
                spool.close_batch(b"{}\n{}\n".to_vec(), 2);
            }
            let mut numbers = Vec::new();
            for _ in 0..3 {
                let (number, events, lines) = spool.next().unwrap();
                assert_eq!((events, lines.as_slice()), (2, &b"{}\n{}\n"[..]));
                spool.finish(number, Finish::Sent);
                numbers.push(number);
            }
            assert_eq!(spool.stats.sent.load(Ordering::Relaxed), 6);
            (spool.producer, numbers)
        };
        assert_eq!(sent_numbers, [1, 2, 3]);
        {
            let spool = Spool::open(&config(dir.path(), 1 << 20), Arc::default()).unwrap();
            assert_eq!(spool.producer, producer, "the producer keeps its name");
            assert!(spool.lock().batches.is_empty());
            spool.close_batch(b"{}\n".to_vec(), 1);
            let number = spool.lock().batches.front().unwrap().number;
            assert!(number > 3, "{number} repeats an earlier batch number");
            // A second process on the same spool is refused while this one runs.
            assert!(Spool::open(&config(dir.path(), 1 << 20), Arc::default()).is_err());
        }
        let spool = Spool::open(&config(dir.path(), 1 << 20), Arc::default()).unwrap();
        let state = spool.lock();
        assert_eq!(state.batches.len(), 1, "the unsent batch is found again");
        assert_eq!(state.batches.front().unwrap().events, 1);
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
            .map(|batch| batch.number)
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
