//! Shipping to seclog: events go from a bounded in-memory queue into numbered batches, each
//! batch is made durable in the spool directory, then sent to seclog's ingest API with the
//! producer's name and the batch number (`Seclog-Producer`, `Seclog-Batch`), so seclog stores
//! each batch once however often it is sent. A batch leaves the spool only once seclog has
//! answered that it is durable.
//!
//! ```text
//!  on_event ──append──► line buffer (bounded) ──► batcher thread ──► spool/batches/<n>.ndjson
//!   (never waits;           full: counted         (1 s / 1 MiB / 10k events; fsync)
//!    serializes only)       as dropped                            │
//!                                                  sender thread ◄┘ POST /api/v1/ingest/{group}
//!                                                  (retries with backoff; 2xx → delete)
//! ```
//!
//! Spool layout: `batches/<producer>-<number>.ndjson` (NDJSON, one event per line; every run
//! of the process is a new producer, see [`spool`]), `rejected/` (the last 100 batches seclog
//! refused as malformed, kept for inspection), `lock` (one process per spool).

mod client;
mod spool;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::buffer::LineBuffer;
use crate::{Error, SeclogConfig};
use client::{Client, Outcome};
use spool::{Finish, Spool};

/// Counters of one logging pipeline (all events since start).
#[derive(Debug, Default)]
pub struct Stats {
    /// Events written by the layer (before any output).
    pub events: AtomicU64,
    /// Events not written to stdout because its queue was full.
    pub stdout_dropped: AtomicU64,
    /// Events made durable in the spool (or, without a spool directory, batched in memory).
    pub spooled: AtomicU64,
    /// Events seclog acknowledged.
    pub sent: AtomicU64,
    /// Events dropped before reaching seclog: queue full, spool full, or refused by seclog.
    pub dropped: AtomicU64,
    /// Lines seclog took but could not parse (kept in its dead-letter group, counted in
    /// `sent` too).
    pub rejected: AtomicU64,
    /// Failed sends that will be retried.
    pub retries: AtomicU64,
    /// Bytes waiting in the spool.
    pub spool_bytes: AtomicU64,
}

impl Stats {
    /// A copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            events: read(&self.events),
            stdout_dropped: read(&self.stdout_dropped),
            spooled: read(&self.spooled),
            sent: read(&self.sent),
            dropped: read(&self.dropped),
            rejected: read(&self.rejected),
            retries: read(&self.retries),
            spool_bytes: read(&self.spool_bytes),
        }
    }
}

/// The counters at one moment (see [`Stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[allow(missing_docs)]
pub struct StatsSnapshot {
    pub events: u64,
    pub stdout_dropped: u64,
    pub spooled: u64,
    pub sent: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub retries: u64,
    pub spool_bytes: u64,
}

/// The sending half, owned by the layer.
#[derive(Clone)]
pub(crate) struct ShipQueue {
    buffer: Arc<LineBuffer>,
    stats: Arc<Stats>,
}

impl ShipQueue {
    /// Queues one line; never waits.
    pub(crate) fn push(&self, line: &[u8]) {
        if !self.buffer.push(line) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The running shipper: its threads and spool.
pub(crate) struct Shipper {
    queue: ShipQueue,
    spool: Arc<Spool>,
    batcher: Option<JoinHandle<()>>,
    sender: Option<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl Shipper {
    pub(crate) fn start(config: &SeclogConfig, stats: Arc<Stats>) -> Result<Shipper, Error> {
        let group = seclog_model::GroupName::parse(&config.group)
            .map_err(|error| Error::Config(format!("group {:?}: {error}", config.group)))?;
        if group.is_internal() {
            return Err(Error::Config(format!(
                "group {group}: groups beginning with seclog/ are written by seclog only"
            )));
        }
        let spool = Arc::new(Spool::open(config, Arc::clone(&stats))?);
        let buffer = Arc::new(LineBuffer::new(
            config.queue_max_bytes.max(1),
            config.batch_max_bytes.clamp(1, 256 << 10),
            config.flush_interval.min(Duration::from_millis(100)),
        ));
        let client = Client::new(config)?;
        let batcher = {
            let spool = Arc::clone(&spool);
            let buffer = Arc::clone(&buffer);
            let limits = BatchLimits {
                max_bytes: config.batch_max_bytes,
                max_events: config.batch_max_events as u64,
                interval: config.flush_interval,
            };
            std::thread::Builder::new()
                .name("seclog-app-batch".into())
                .spawn(move || batch_loop(&buffer, &spool, &limits))?
        };
        let sender = {
            let spool = Arc::clone(&spool);
            std::thread::Builder::new()
                .name("seclog-app-send".into())
                .spawn(move || send_loop(&spool, &client))?
        };
        Ok(Shipper {
            queue: ShipQueue { buffer, stats },
            spool,
            batcher: Some(batcher),
            sender: Some(sender),
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    pub(crate) fn queue(&self) -> ShipQueue {
        self.queue.clone()
    }

    /// Closes the open batch (it is then in the spool).
    pub(crate) fn flush(&self) {
        self.queue.buffer.flush(Duration::from_secs(30));
    }

    /// Closes the open batch into the spool, gives the sender `shutdown_timeout` to deliver
    /// the spool, and stops. What is not delivered stays in the spool directory for the next
    /// start; lines logged after this are dropped (counted).
    pub(crate) fn shutdown(mut self) {
        self.queue.buffer.close();
        if let Some(batcher) = self.batcher.take() {
            let _ = batcher.join();
        }
        self.spool.stop_at(Instant::now() + self.shutdown_timeout);
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
    }
}

struct BatchLimits {
    max_bytes: usize,
    max_events: u64,
    interval: Duration,
}

/// Moves lines from the buffer into batches: a batch closes at its size or event limit, when
/// its first line is `interval` old, on a flush and on close.
fn batch_loop(buffer: &LineBuffer, spool: &Spool, limits: &BatchLimits) {
    let mut open: Vec<u8> = Vec::new();
    let mut events = 0u64;
    let mut opened_at = Instant::now();
    loop {
        let taken = buffer.take();
        if events == 0 && taken.lines > 0 {
            opened_at = Instant::now();
        }
        let fits = open.len() + taken.bytes.len() < limits.max_bytes
            && events + taken.lines < limits.max_events;
        if fits {
            open.extend_from_slice(&taken.bytes);
            events += taken.lines;
        }
        // Otherwise split what was taken at line ends, so that no batch passes its limits by
        // more than a line.
        let mut rest = if fits {
            &[][..]
        } else {
            taken.bytes.as_slice()
        };
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|&byte| byte == b'\n')
                .map_or(rest.len(), |newline| newline + 1);
            let (line, after) = rest.split_at(end);
            open.extend_from_slice(line);
            events += 1;
            rest = after;
            if open.len() >= limits.max_bytes || events >= limits.max_events {
                spool.close_batch(std::mem::take(&mut open), std::mem::take(&mut events));
                opened_at = Instant::now();
            }
        }
        let due = opened_at.elapsed() >= limits.interval;
        if events > 0 && (due || taken.flush.is_some() || taken.closed) {
            spool.close_batch(std::mem::take(&mut open), std::mem::take(&mut events));
        }
        if let Some(generation) = taken.flush {
            buffer.flush_done(generation);
        }
        if taken.closed {
            return;
        }
    }
}

fn send_loop(spool: &Spool, client: &Client) {
    let mut failures = 0u32;
    while let Some((id, events, lines)) = spool.next() {
        match client.send(&id.producer, id.number, &lines, spool.stop_time()) {
            Outcome::Stored { rejected } => {
                if failures > 0 {
                    report("seclog is reachable again; sending the spooled events");
                }
                failures = 0;
                if rejected > 0 {
                    spool.stats.rejected.fetch_add(rejected, Ordering::Relaxed);
                }
                spool.finish(&id, Finish::Sent);
            }
            Outcome::Refused(reason) => {
                report(&format!(
                    "seclog refused batch {} ({events} events), kept in the spool's rejected directory: {reason}",
                    id.number
                ));
                spool.finish(&id, Finish::Refused);
            }
            Outcome::Retry(reason) => {
                if failures == 0 {
                    report(&format!(
                        "seclog is not taking events ({reason}); they are kept in the spool and retried"
                    ));
                }
                failures = failures.saturating_add(1);
                spool.stats.retries.fetch_add(1, Ordering::Relaxed);
                if !spool.pause(backoff(failures)) {
                    return;
                }
            }
        }
    }
}

/// 100 ms doubling up to 30 s, with up to a quarter of jitter.
fn backoff(failures: u32) -> Duration {
    let base = 100u64
        .saturating_mul(1 << failures.min(10).saturating_sub(1))
        .min(30_000);
    let jitter = fastrand::u64(0..=base / 4);
    Duration::from_millis(base + jitter)
}

/// Reports a shipping problem on stderr (not through `tracing`, which would feed it back into
/// the queue it is about).
fn report(message: &str) {
    let _ = writeln!(std::io::stderr(), "seclog-app: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_thirty_seconds() {
        assert!(
            backoff(1) >= Duration::from_millis(100) && backoff(1) <= Duration::from_millis(125)
        );
        assert!(backoff(4) >= Duration::from_millis(800));
        assert!(
            backoff(40) >= Duration::from_secs(30) && backoff(40) <= Duration::from_millis(37_500)
        );
    }
}
