//! Shipping to seclog: events go from a bounded in-memory queue into numbered batches, each
//! batch is made durable in the spool directory, then sent to seclog's ingest API with the
//! producer's name and the batch number (`Seclog-Producer`, `Seclog-Batch`), so seclog stores
//! each batch once however often it is sent. A batch leaves the spool only once seclog has
//! answered that it is durable.
//!
//! ```text
//!  on_event ──try_send──► queue (bounded) ──► batcher thread ──► spool/batches/<n>.ndjson
//!   (never waits;               full: counted        (1 s / 1 MiB / 10k events; fsync)
//!    serializes only)           as dropped                        │
//!                                                  sender thread ◄┘ POST /api/v1/ingest/{group}
//!                                                  (retries with backoff; 2xx → delete)
//! ```
//!
//! Spool layout: `producer` (this sender's name, made once), `sequence` (batch numbers
//! reserved so far: numbers never repeat, even when every batch was sent before a restart),
//! `batches/<number>.ndjson` (gzip-free NDJSON, one event per line), `rejected/` (batches
//! seclog refused as malformed, kept for inspection), `lock` (one process per spool).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Error, SeclogConfig};

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
    pub retries: u64,
    pub spool_bytes: u64,
}

enum Message {
    Line(Vec<u8>),
    /// Close the open batch, then answer.
    Flush(SyncSender<()>),
}

/// The sending half, owned by the layer.
#[derive(Clone)]
pub(crate) struct ShipQueue {
    queue: SyncSender<Message>,
    stats: Arc<Stats>,
}

impl ShipQueue {
    /// Queues one line; never waits.
    pub(crate) fn push(&self, line: Vec<u8>) {
        match self.queue.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The running shipper: its threads and spool.
pub(crate) struct Shipper {
    queue: ShipQueue,
    spool: Arc<Spool>,
    threads: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl Shipper {
    pub(crate) fn start(config: &SeclogConfig, stats: Arc<Stats>) -> Result<Shipper, Error> {
        let spool = Arc::new(Spool::open(config, Arc::clone(&stats))?);
        let (sender, receiver) = std::sync::mpsc::sync_channel(config.queue_capacity.max(1));
        let client = Client::new(config, spool.producer.clone())?;
        let batcher = {
            let spool = Arc::clone(&spool);
            let limits = BatchLimits {
                max_bytes: config.batch_max_bytes,
                max_events: config.batch_max_events,
                interval: config.flush_interval,
            };
            std::thread::Builder::new()
                .name("seclog-app-batch".into())
                .spawn(move || batch_loop(&receiver, &spool, &limits))
                .map_err(Error::Io)?
        };
        let sending = {
            let spool = Arc::clone(&spool);
            std::thread::Builder::new()
                .name("seclog-app-send".into())
                .spawn(move || send_loop(&spool, &client))
                .map_err(Error::Io)?
        };
        Ok(Shipper {
            queue: ShipQueue {
                queue: sender,
                stats,
            },
            spool,
            threads: vec![batcher, sending],
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    pub(crate) fn queue(&self) -> ShipQueue {
        self.queue.clone()
    }

    /// Closes the open batch (it is then in the spool).
    pub(crate) fn flush(&self) {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        if self.queue.queue.send(Message::Flush(answer)).is_ok() {
            let _ = answered.recv_timeout(Duration::from_secs(30));
        }
    }

    /// Flushes, gives the sender `shutdown_timeout` to deliver the spool, and stops. What is
    /// not delivered stays in the spool directory for the next start.
    pub(crate) fn shutdown(mut self) {
        self.flush();
        let deadline = Instant::now() + self.shutdown_timeout;
        self.spool.stop_at(deadline);
        // The batcher ends when every sender of its queue (the layer's copies too) is gone;
        // the sender thread is joined, the batcher left to end with the process.
        let sender_thread = self.threads.pop();
        if let Some(thread) = sender_thread {
            let _ = thread.join();
        }
    }
}

struct BatchLimits {
    max_bytes: usize,
    max_events: usize,
    interval: Duration,
}

fn batch_loop(receiver: &Receiver<Message>, spool: &Spool, limits: &BatchLimits) {
    let mut open: Vec<u8> = Vec::new();
    let mut events = 0u64;
    let mut opened_at = Instant::now();
    loop {
        let wait = if events == 0 {
            Duration::from_secs(3600)
        } else {
            limits.interval.saturating_sub(opened_at.elapsed())
        };
        let message = receiver.recv_timeout(wait);
        match message {
            Ok(Message::Line(line)) => {
                if events == 0 {
                    opened_at = Instant::now();
                }
                open.extend_from_slice(&line);
                events += 1;
                if open.len() >= limits.max_bytes || events >= limits.max_events as u64 {
                    spool.close_batch(std::mem::take(&mut open), std::mem::take(&mut events));
                }
            }
            Ok(Message::Flush(answer)) => {
                if events > 0 {
                    spool.close_batch(std::mem::take(&mut open), std::mem::take(&mut events));
                }
                let _ = answer.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                if events > 0 {
                    spool.close_batch(std::mem::take(&mut open), std::mem::take(&mut events));
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if events > 0 {
                    spool.close_batch(open, events);
                }
                return;
            }
        }
    }
}

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
struct Spool {
    dir: Option<PathBuf>,
    producer: String,
    max_bytes: u64,
    state: Mutex<SpoolState>,
    changed: Condvar,
    stats: Arc<Stats>,
    /// Held while the process runs: one process per spool directory.
    _lock: Option<File>,
}

const RESERVE: u64 = 1024;

impl Spool {
    fn open(config: &SeclogConfig, stats: Arc<Stats>) -> Result<Spool, Error> {
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
    fn close_batch(&self, lines: Vec<u8>, events: u64) {
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
    fn next(&self) -> Option<(u64, u64, Arc<Vec<u8>>)> {
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

    fn finish(&self, number: u64, how: Finish) {
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
    fn pause(&self, delay: Duration) -> bool {
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

    fn stop_at(&self, deadline: Instant) {
        self.lock().stop_at = Some(deadline);
        self.changed.notify_all();
    }
}

enum Finish {
    Sent,
    Refused,
    Lost,
}

fn send_loop(spool: &Spool, client: &Client) {
    let mut failures = 0u32;
    while let Some((number, events, lines)) = spool.next() {
        match client.send(number, &lines) {
            Outcome::Stored => {
                if failures > 0 {
                    report("seclog is reachable again; sending the spooled events");
                }
                failures = 0;
                spool.finish(number, Finish::Sent);
            }
            Outcome::Refused(reason) => {
                report(&format!(
                    "seclog refused batch {number} ({events} events), kept in the spool's rejected directory: {reason}"
                ));
                spool.finish(number, Finish::Refused);
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

enum Outcome {
    Stored,
    Refused(String),
    Retry(String),
}

struct Client {
    agent: ureq::Agent,
    url: String,
    authorization: String,
    producer: String,
}

impl Client {
    fn new(config: &SeclogConfig, producer: String) -> Result<Client, Error> {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        // rustls needs one process-wide crypto provider; an application may have chosen one.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let roots = match &config.ca_file {
            Some(path) => {
                use rustls::pki_types::pem::PemObject as _;
                let pem = fs::read(path).map_err(Error::Io)?;
                let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                    .map(|cert| cert.map(|cert| Certificate::from_der(cert.as_ref()).to_owned()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| Error::Config(format!("{} is not PEM", path.display())))?;
                RootCerts::Specific(Arc::new(certs))
            }
            None => RootCerts::PlatformVerifier,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        let base = config.url.trim_end_matches('/');
        let group = config.group.replace('/', "%2F");
        Ok(Client {
            agent,
            url: format!("{base}/api/v1/ingest/{group}"),
            authorization: format!("Bearer {}", config.token.as_str()),
            producer,
        })
    }

    fn send(&self, number: u64, lines: &[u8]) -> Outcome {
        let mut gzip = flate2::write::GzEncoder::new(
            Vec::with_capacity(lines.len() / 4),
            flate2::Compression::fast(),
        );
        if gzip.write_all(lines).is_err() {
            return Outcome::Retry("compression failed".into());
        }
        let Ok(body) = gzip.finish() else {
            return Outcome::Retry("compression failed".into());
        };
        let response = self
            .agent
            .post(&self.url)
            .header("authorization", &self.authorization)
            .header("content-type", "application/x-ndjson")
            .header("content-encoding", "gzip")
            .header("seclog-producer", &self.producer)
            .header("seclog-batch", &number.to_string())
            .send(&body[..]);
        let mut response = match response {
            Ok(response) => response,
            Err(error) => return Outcome::Retry(error.to_string()),
        };
        let status = response.status().as_u16();
        let mut reason = || {
            let mut text = String::new();
            let _ = response
                .body_mut()
                .as_reader()
                .take(512)
                .read_to_string(&mut text);
            format!("status {status}: {}", text.trim())
        };
        match status {
            200..=299 => Outcome::Stored,
            // Malformed or too large: sending it again cannot help.
            400 | 413 | 415 | 422 => Outcome::Refused(reason()),
            // A wrong or revoked token, an unreachable or busy server: the events wait in the
            // spool until it is fixed.
            _ => Outcome::Retry(reason()),
        }
    }
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

/// Reports a shipping problem on stderr (not through `tracing`, which would feed it back into
/// the queue it is about).
fn report(message: &str) {
    let _ = writeln!(std::io::stderr(), "seclog-app: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, max_spool_bytes: u64) -> SeclogConfig {
        let mut config = SeclogConfig::new(
            "http://127.0.0.1:9",
            crate::Secret::new("slt_test"),
            "test",
        );
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
            (spool.producer.clone(), numbers)
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
        let numbers: Vec<u64> = spool.lock().batches.iter().map(|batch| batch.number).collect();
        assert_eq!(numbers, [4, 5]);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 30);
        assert_eq!(stats.spool_bytes.load(Ordering::Relaxed), 200);
        assert_eq!(std::fs::read_dir(dir.path().join("batches")).unwrap().count(), 2);
    }

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
