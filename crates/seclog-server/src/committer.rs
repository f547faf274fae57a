//! The commit thread: the only owner of the [`JournalWriter`]. It batches concurrent requests into
//! one group commit (append everything, one fsync per dirty segment), replies only after the
//! fsync, signs a checkpoint within `seal_delay` of the first unsealed acknowledgement (and a
//! heartbeat while idle), and applies retention periodically.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use seclog_journal::{JournalWriter, SignedCheckpoint};
use seclog_meta::MetaStore;
use seclog_model::{GroupName, Timestamp};
use tokio::sync::{Semaphore, oneshot};

use crate::clock::{ClockState, Reading, RetentionClock};
use crate::health;

/// Records to append to one group.
pub(crate) struct GroupBatch {
    pub(crate) group: GroupName,
    pub(crate) records: Vec<Vec<u8>>,
}

/// Sequence ranges assigned to each [`GroupBatch`] of a request, in order.
pub(crate) type Assigned = Vec<Option<(u64, u64)>>;

/// Records of one durable group commit, handed over in memory by the commit thread (see
/// [`CommitHandle::tap`]): per group, the sequence number of the first record and the records
/// as appended. Dropping it releases its share of the tap's memory budget.
pub(crate) struct Tapped {
    pub(crate) groups: Vec<(GroupName, u64, Vec<Vec<u8>>)>,
    bytes: usize,
    pending: Arc<AtomicUsize>,
}

impl Drop for Tapped {
    fn drop(&mut self) {
        self.pending.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// The sending side of a tap, owned by the commit thread.
struct Tap {
    sender: Sender<Tapped>,
    wanted: fn(&GroupName) -> bool,
    pending: Arc<AtomicUsize>,
    limit: usize,
}

impl Tap {
    /// Hands the records of a durable commit over, unless the receiver holds `limit` bytes
    /// already (then it reads them back from the journal). `false` once the receiver is gone.
    fn send(
        &self,
        merged: BTreeMap<GroupName, Vec<Vec<u8>>>,
        firsts: &BTreeMap<GroupName, u64>,
    ) -> bool {
        let groups: Vec<_> = merged
            .into_iter()
            .filter(|(group, _)| (self.wanted)(group))
            .filter_map(|(group, records)| {
                let first = *firsts.get(&group)?;
                Some((group, first, records))
            })
            .collect();
        if groups.is_empty() {
            return true;
        }
        let bytes: usize = groups
            .iter()
            .flat_map(|(_, _, records)| records)
            .map(Vec::len)
            .sum();
        if self.pending.load(Ordering::Relaxed) + bytes > self.limit {
            return true;
        }
        self.pending.fetch_add(bytes, Ordering::Relaxed);
        self.sender
            .send(Tapped {
                groups,
                bytes,
                pending: Arc::clone(&self.pending),
            })
            .is_ok()
    }
}

enum Message {
    Append {
        batches: Vec<GroupBatch>,
        reply: oneshot::Sender<Result<Assigned, String>>,
    },
    Sweep,
    /// An admin confirmed the wall clock (see [`crate::clock`]).
    ConfirmClock(oneshot::Sender<Reading>),
    Shutdown,
}

/// Timing of the commit thread.
#[derive(Debug, Clone)]
pub struct CommitSettings {
    /// How long the first request of a group commit waits for others to join it when the
    /// previous commit is less than this old and gathered several requests (concurrent
    /// senders); otherwise it commits at once, and requests arriving during that fsync join
    /// the next commit.
    pub commit_interval: Duration,
    /// Longest time between an acknowledgement and the checkpoint that covers it.
    pub seal_delay: Duration,
    /// A checkpoint is signed at least this often while idle.
    pub heartbeat: Duration,
    /// How often retention policies are applied.
    pub retention_sweep: Duration,
    /// How far the wall clock may be from the trusted time before expiry stops trusting it.
    pub clock_tolerance: Duration,
    /// Plaintext bytes that may wait for the commit thread at once (more wait, then get 503).
    pub max_pending_bytes: usize,
}

impl Default for CommitSettings {
    fn default() -> Self {
        CommitSettings {
            commit_interval: Duration::from_millis(5),
            seal_delay: Duration::from_millis(500),
            heartbeat: Duration::from_secs(30),
            retention_sweep: Duration::from_secs(300),
            clock_tolerance: Duration::from_secs(3600),
            max_pending_bytes: 512 << 20,
        }
    }
}

/// Counters and the distribution of acknowledgement-to-checkpoint latency.
#[derive(Debug, Default)]
pub struct CommitStats {
    inner: Mutex<StatsInner>,
}

#[derive(Debug, Default)]
struct StatsInner {
    commits: u64,
    records: u64,
    checkpoints: u64,
    seal_latencies_us: VecDeque<u64>,
    last_checkpoint: Option<(u64, Timestamp)>,
    /// The newest checkpoint known to be durable (set only after its fsync).
    durable_checkpoint: Option<SignedCheckpoint>,
    last_error: Option<String>,
    clock: Option<Reading>,
}

const LATENCY_SAMPLES: usize = 100_000;

/// A snapshot of [`CommitStats`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatsSnapshot {
    /// Group commits done.
    pub commits: u64,
    /// Records committed.
    pub records: u64,
    /// Checkpoints signed.
    pub checkpoints: u64,
    /// Newest checkpoint seq.
    pub last_checkpoint_seq: Option<u64>,
    /// Newest checkpoint time.
    pub last_checkpoint_time: Option<String>,
    /// Acknowledgement-to-checkpoint latency samples.
    pub seal_latency_samples: usize,
    /// Median, milliseconds.
    pub seal_latency_p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub seal_latency_p99_ms: f64,
    /// Maximum, milliseconds.
    pub seal_latency_max_ms: f64,
    /// Last journal error, if any.
    pub last_error: Option<String>,
    /// The retention clock at the last sweep.
    pub retention_clock: Option<Reading>,
}

impl CommitStats {
    /// The newest checkpoint whose append was fsynced (what a witness may safely pin).
    pub fn durable_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.inner
            .lock()
            .ok()
            .and_then(|inner| inner.durable_checkpoint.clone())
    }

    /// Current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        let Ok(inner) = self.inner.lock() else {
            return StatsSnapshot {
                commits: 0,
                records: 0,
                checkpoints: 0,
                last_checkpoint_seq: None,
                last_checkpoint_time: None,
                seal_latency_samples: 0,
                seal_latency_p50_ms: 0.0,
                seal_latency_p99_ms: 0.0,
                seal_latency_max_ms: 0.0,
                last_error: Some("statistics unavailable".into()),
                retention_clock: None,
            };
        };
        let mut sorted: Vec<u64> = inner.seal_latencies_us.iter().copied().collect();
        sorted.sort_unstable();
        let quantile = |q: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
            sorted.get(index).copied().unwrap_or(0) as f64 / 1000.0
        };
        StatsSnapshot {
            commits: inner.commits,
            records: inner.records,
            checkpoints: inner.checkpoints,
            last_checkpoint_seq: inner.last_checkpoint.map(|(seq, _)| seq),
            last_checkpoint_time: inner.last_checkpoint.map(|(_, time)| time.to_rfc3339()),
            seal_latency_samples: sorted.len(),
            seal_latency_p50_ms: quantile(0.5),
            seal_latency_p99_ms: quantile(0.99),
            seal_latency_max_ms: sorted.last().copied().unwrap_or(0) as f64 / 1000.0,
            last_error: inner.last_error.clone(),
            retention_clock: inner.clock,
        }
    }

    fn update(&self, change: impl FnOnce(&mut StatsInner)) {
        if let Ok(mut inner) = self.inner.lock() {
            change(&mut inner);
        }
    }
}

/// Why a submission was not committed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    #[error("the journal is busy; retry shortly")]
    Busy,
    #[error("the journal is shutting down")]
    Closed,
    #[error("journal write failed: {0}")]
    Failed(String),
}

/// Batches handed to the commit thread, not yet known to be durable.
pub(crate) struct Queued {
    receive: oneshot::Receiver<Result<Assigned, String>>,
    /// Holds the batches' share of the pending-bytes budget until they are committed.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Queued {
    /// Waits until the batches are durable.
    pub(crate) async fn committed(self) -> Result<Assigned, SubmitError> {
        let result = self.receive.await.map_err(|_| SubmitError::Closed)?;
        result.map_err(SubmitError::Failed)
    }
}

/// The async side of the commit thread.
#[derive(Clone)]
pub(crate) struct CommitHandle {
    sender: Sender<Message>,
    permits: Arc<Semaphore>,
    tap: Arc<Mutex<Option<Tap>>>,
    pub(crate) stats: Arc<CommitStats>,
    pub(crate) settings: CommitSettings,
}

impl CommitHandle {
    /// Appends and waits until durable. Waits up to `wait` for a slot when the journal lags.
    pub(crate) async fn submit(
        &self,
        batches: Vec<GroupBatch>,
        wait: Duration,
    ) -> Result<Assigned, SubmitError> {
        self.enqueue(batches, wait).await?.committed().await
    }

    /// Queues `batches` for the commit thread and returns once they are queued (in the order of
    /// the calls), with a handle that resolves once they are durable: a sender can keep reading
    /// while its previous batches are committed.
    pub(crate) async fn enqueue(
        &self,
        batches: Vec<GroupBatch>,
        wait: Duration,
    ) -> Result<Queued, SubmitError> {
        // Permits are KiB of plaintext waiting for the commit thread: memory stays bounded
        // however many clients send at once.
        let budget = self.settings.max_pending_bytes >> 10;
        let kib = u32::try_from((batch_bytes(&batches) >> 10).clamp(1, budget.max(1)))
            .unwrap_or(u32::MAX);
        let permit =
            match tokio::time::timeout(wait, Arc::clone(&self.permits).acquire_many_owned(kib))
                .await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(SubmitError::Closed),
                Err(_) => return Err(SubmitError::Busy),
            };
        let (reply, receive) = oneshot::channel();
        self.sender
            .send(Message::Append { batches, reply })
            .map_err(|_| SubmitError::Closed)?;
        Ok(Queued {
            receive,
            _permit: permit,
        })
    }

    /// Asks for a retention sweep now.
    pub(crate) fn sweep(&self) {
        let _ = self.sender.send(Message::Sweep);
    }

    /// Makes the wall clock the trusted time (an admin confirmed it); `None` if the commit
    /// thread has stopped.
    pub(crate) async fn confirm_clock(&self) -> Option<Reading> {
        let (reply, answer) = oneshot::channel();
        self.sender.send(Message::ConfirmClock(reply)).ok()?;
        answer.await.ok()
    }

    /// From now on, hands the records of every durable commit to `wanted` groups to the
    /// returned receiver (replacing an earlier tap), as long as it holds less than `limit`
    /// bytes of them; what it does not get it reads back from the journal. This spares a
    /// consumer that follows the newest records (the streaming detector) reading, decrypting
    /// and decompressing what was just written.
    pub(crate) fn tap(&self, wanted: fn(&GroupName) -> bool, limit: usize) -> Receiver<Tapped> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let tap = Tap {
            sender,
            wanted,
            pending: Arc::new(AtomicUsize::new(0)),
            limit,
        };
        if let Ok(mut slot) = self.tap.lock() {
            *slot = Some(tap);
        }
        receiver
    }
}

/// Owns the commit thread; dropping it without [`Committer::shutdown`] leaves a final seal undone.
pub(crate) struct Committer {
    handle: CommitHandle,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub(crate) fn start(
        writer: JournalWriter,
        meta: Arc<MetaStore>,
        settings: CommitSettings,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let stats = Arc::new(CommitStats::default());
        let recovered = writer.last_checkpoint().cloned();
        stats.update(|inner| inner.durable_checkpoint = recovered);
        let thread_stats = Arc::clone(&stats);
        let thread_settings = settings.clone();
        let tap = Arc::new(Mutex::new(None));
        let thread_tap = Arc::clone(&tap);
        let thread = std::thread::Builder::new()
            .name("seclog-commit".into())
            .spawn(move || {
                run(
                    writer,
                    meta,
                    receiver,
                    thread_settings,
                    thread_stats,
                    &thread_tap,
                )
            })?;
        let permits = Arc::new(Semaphore::new(
            (settings.max_pending_bytes >> 10).clamp(1, Semaphore::MAX_PERMITS),
        ));
        Ok(Committer {
            handle: CommitHandle {
                sender,
                permits,
                tap,
                stats,
                settings,
            },
            thread: Some(thread),
        })
    }

    pub(crate) fn handle(&self) -> CommitHandle {
        self.handle.clone()
    }

    /// Stops accepting work, seals what is unsealed and waits for the thread.
    pub(crate) fn shutdown(mut self) {
        let _ = self.handle.sender.send(Message::Shutdown);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("commit thread panicked during shutdown");
        }
    }
}

fn run(
    mut writer: JournalWriter,
    meta: Arc<MetaStore>,
    receiver: Receiver<Message>,
    settings: CommitSettings,
    stats: Arc<CommitStats>,
    tap: &Mutex<Option<Tap>>,
) {
    let mut unsealed_acks: Vec<Instant> = Vec::new();
    let mut last_seal = Instant::now();
    let mut last_sweep = Instant::now();
    let mut sweep_requested = true;
    let mut last_commit = Instant::now()
        .checked_sub(settings.commit_interval)
        .unwrap_or_else(Instant::now);
    let mut last_commit_requests = 0usize;
    // Seal anything a previous run acknowledged but did not sign (a crash before its checkpoint).
    if writer.has_unsealed() {
        seal(&mut writer, &stats, &mut unsealed_acks);
    }
    let mut clock = start_clock(&writer, &meta, settings.clock_tolerance);
    loop {
        let seal_due = match unsealed_acks.first() {
            Some(first) => *first + settings.seal_delay,
            None => last_seal + settings.heartbeat,
        };
        let sweep_due = last_sweep + settings.retention_sweep;
        let wait = seal_due
            .min(sweep_due)
            .saturating_duration_since(Instant::now());
        let mut pending = Vec::new();
        let mut shutdown = false;
        match receiver.recv_timeout(wait) {
            Ok(message) => {
                let first_at = Instant::now();
                // Waiting pays only when requests come concurrently: a lone client sending one
                // request after another (a query's access record, a sequential shipper) would
                // wait the whole window for nobody.
                let window = if last_commit_requests > 1
                    && last_commit.elapsed() < settings.commit_interval
                {
                    settings.commit_interval
                } else {
                    Duration::ZERO
                };
                let mut pending_bytes = 0usize;
                let mut next = Some(message);
                while let Some(message) = next.take() {
                    match message {
                        Message::Append { batches, reply } => {
                            pending_bytes += batch_bytes(&batches);
                            pending.push((batches, reply));
                        }
                        Message::Sweep => sweep_requested = true,
                        Message::ConfirmClock(reply) => {
                            let reading =
                                clock.confirm(Timestamp::now().unix_nanos(), Instant::now());
                            clock_observed(&mut writer, &meta, &stats, reading);
                            let _ = reply.send(reading);
                            sweep_requested = true;
                        }
                        Message::Shutdown => shutdown = true,
                    }
                    // A bounded commit keeps the seal delay: a checkpoint is due between commits.
                    if shutdown || pending_bytes >= MAX_COMMIT_BYTES {
                        break;
                    }
                    let remaining = window.saturating_sub(first_at.elapsed());
                    next = match receiver.try_recv() {
                        Ok(message) => Some(message),
                        Err(_) if remaining.is_zero() || pending.is_empty() => None,
                        Err(_) => receiver.recv_timeout(remaining).ok(),
                    };
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => shutdown = true,
        }
        if !pending.is_empty() {
            last_commit_requests = pending.len();
            commit(&mut writer, &stats, pending, &mut unsealed_acks, tap);
            last_commit = Instant::now();
        }
        let now = Instant::now();
        if shutdown
            || unsealed_acks
                .first()
                .is_some_and(|first| now >= *first + settings.seal_delay)
            || now >= last_seal + settings.heartbeat
        {
            seal(&mut writer, &stats, &mut unsealed_acks);
            last_seal = Instant::now();
        }
        if shutdown {
            return;
        }
        if sweep_requested || now >= sweep_due {
            sweep(&mut writer, &meta, &stats, &mut unsealed_acks, &mut clock);
            last_sweep = Instant::now();
            sweep_requested = false;
        }
    }
}

/// Plaintext bytes one group commit takes at most (more waits for the next commit).
const MAX_COMMIT_BYTES: usize = 64 << 20;

fn batch_bytes(batches: &[GroupBatch]) -> usize {
    batches
        .iter()
        .flat_map(|batch| &batch.records)
        .map(Vec::len)
        .sum()
}

type Pending = Vec<(Vec<GroupBatch>, oneshot::Sender<Result<Assigned, String>>)>;

fn commit(
    writer: &mut JournalWriter,
    stats: &CommitStats,
    pending: Pending,
    unsealed_acks: &mut Vec<Instant>,
    tap: &Mutex<Option<Tap>>,
) {
    let now = Timestamp::now();
    // Merge every request's records per group, so that one commit writes few, large blocks
    // (better compression) whatever the request sizes; remember where each request's part went.
    let mut merged: BTreeMap<GroupName, Vec<Vec<u8>>> = BTreeMap::new();
    let mut placements = Vec::with_capacity(pending.len());
    let mut replies = Vec::with_capacity(pending.len());
    for (batches, reply) in pending {
        let mut placement = Vec::with_capacity(batches.len());
        for batch in batches {
            let records = merged.entry(batch.group.clone()).or_default();
            placement.push((
                batch.group,
                records.len() as u64,
                batch.records.len() as u64,
            ));
            records.extend(batch.records);
        }
        placements.push(placement);
        replies.push(reply);
    }
    let mut firsts = BTreeMap::new();
    let mut total = 0u64;
    let mut failure = None;
    for (group, records) in &merged {
        match writer.append(group, records, now) {
            Ok(Some((first, _))) => {
                firsts.insert(group.clone(), first);
                total += records.len() as u64;
            }
            Ok(None) => {}
            Err(error) => {
                failure = Some(error.to_string());
                break;
            }
        }
    }
    if failure.is_none()
        && let Err(error) = writer.commit()
    {
        failure = Some(error.to_string());
    }
    if let Some(error) = failure {
        tracing::error!(error = %error, "journal write failed; refusing further writes");
        stats.update(|inner| inner.last_error = Some(error.clone()));
        for reply in replies {
            let _ = reply.send(Err(error.clone()));
        }
        return;
    }
    stats.update(|inner| {
        inner.commits += 1;
        inner.records += total;
    });
    let acked_at = Instant::now();
    for (reply, placement) in replies.into_iter().zip(placements) {
        let assigned = placement
            .into_iter()
            .map(|(group, offset, len)| {
                let first = firsts.get(&group)? + offset;
                (len > 0).then(|| (first, first + len - 1))
            })
            .collect();
        unsealed_acks.push(acked_at);
        let _ = reply.send(Ok(assigned));
    }
    if let Ok(mut slot) = tap.lock()
        && let Some(receiver) = slot.as_ref()
        && !receiver.send(merged, &firsts)
    {
        *slot = None;
    }
}

fn seal(writer: &mut JournalWriter, stats: &CommitStats, unsealed_acks: &mut Vec<Instant>) {
    match writer.seal(Timestamp::now()) {
        Ok(checkpoint) => record_seal(stats, &checkpoint, unsealed_acks),
        Err(error) => {
            // The writer is now poisoned (ingest gets 503); retry only at the heartbeat.
            tracing::error!(error = %error, "signing a checkpoint failed; refusing further writes");
            stats.update(|inner| inner.last_error = Some(error.to_string()));
            unsealed_acks.clear();
        }
    }
}

fn record_seal(
    stats: &CommitStats,
    checkpoint: &SignedCheckpoint,
    unsealed_acks: &mut Vec<Instant>,
) {
    let sealed_at = Instant::now();
    stats.update(|inner| {
        inner.checkpoints += 1;
        inner.last_checkpoint = Some((checkpoint.body.seq, checkpoint.body.time));
        inner.durable_checkpoint = Some(checkpoint.clone());
        for acked in unsealed_acks.drain(..) {
            if inner.seal_latencies_us.len() == LATENCY_SAMPLES {
                inner.seal_latencies_us.pop_front();
            }
            inner
                .seal_latencies_us
                .push_back(sealed_at.duration_since(acked).as_micros() as u64);
        }
    });
}

/// Key of the trusted time in the metadata store.
const CLOCK_STATE: &str = "retention-clock";

/// The retention clock from the saved trusted time, else the newest checkpoint's time, else
/// the wall clock (a new store).
fn start_clock(writer: &JournalWriter, meta: &MetaStore, tolerance: Duration) -> RetentionClock {
    let saved = match meta.consumer_state(CLOCK_STATE) {
        Ok(Some(bytes)) => <[u8; 8]>::try_from(bytes.as_slice())
            .ok()
            .map(i64::from_le_bytes),
        Ok(None) => None,
        Err(error) => {
            tracing::error!(error = %error, "reading the trusted time failed");
            None
        }
    };
    let base = saved
        .or_else(|| {
            writer
                .last_checkpoint()
                .map(|checkpoint| checkpoint.body.time.unix_nanos())
        })
        .unwrap_or_else(|| Timestamp::now().unix_nanos());
    RetentionClock::new(base, Instant::now(), tolerance)
}

/// Saves a reading's trusted time, shows it in the statistics and raises a health event when
/// the wall clock stopped (or started again) agreeing with it.
fn clock_observed(
    writer: &mut JournalWriter,
    meta: &MetaStore,
    stats: &CommitStats,
    reading: Reading,
) {
    if let Err(error) = meta.set_consumer_state(CLOCK_STATE, &reading.trusted_nanos.to_le_bytes()) {
        tracing::error!(error = %error, "saving the trusted time failed");
    }
    stats.update(|inner| inner.clock = Some(reading));
    if !reading.changed {
        return;
    }
    let trusted = Timestamp::from_unix_nanos(reading.trusted_nanos).to_rfc3339();
    let wall = Timestamp::from_unix_nanos(reading.wall_nanos).to_rfc3339();
    let event = match reading.state {
        ClockState::Consistent => {
            tracing::info!(%wall, "the wall clock is trusted again for retention");
            health::Event::new(
                "retention_clock",
                "info",
                "the wall clock agrees with the trusted time again; expiry follows it",
            )
        }
        ClockState::Ahead | ClockState::Behind => {
            let direction = if reading.state == ClockState::Ahead {
                "ahead of"
            } else {
                "behind"
            };
            tracing::error!(%wall, %trusted, "the wall clock is {direction} the trusted time; expiry uses the trusted time until an admin confirms the clock (POST /api/v1/clock)");
            health::Event::new(
                "retention_clock",
                "high",
                &format!(
                    "the wall clock ({wall}) is {direction} the trusted time ({trusted}): a clock change or a long stop; nothing expires early, expiry uses the trusted time until an admin confirms the clock"
                ),
            )
        }
    }
    .with("state", serde_json::to_value(reading.state).unwrap_or_default())
    .with("wall", serde_json::Value::String(wall))
    .with("trusted", serde_json::Value::String(trusted));
    health::append(writer, &event);
}

fn sweep(
    writer: &mut JournalWriter,
    meta: &MetaStore,
    stats: &CommitStats,
    unsealed_acks: &mut Vec<Instant>,
    clock: &mut RetentionClock,
) {
    let reading = clock.read(Timestamp::now().unix_nanos(), Instant::now());
    clock_observed(writer, meta, stats, reading);
    let now = Timestamp::from_unix_nanos(reading.trusted_nanos);
    let held: std::collections::BTreeSet<String> = match meta.legal_holds() {
        Ok(holds) => holds.into_iter().map(|hold| hold.group).collect(),
        Err(error) => {
            tracing::warn!(error = %error, "cannot read legal holds; nothing expires this sweep");
            return;
        }
    };
    let policies = match meta.retention_policies() {
        Ok(policies) => policies,
        Err(error) => {
            tracing::warn!(error = %error, "cannot read retention policies");
            return;
        }
    };
    let policies: BTreeMap<GroupName, u32> = policies
        .into_iter()
        .filter_map(|policy| {
            GroupName::parse(&policy.group)
                .ok()
                .filter(|group| !group.is_access_log())
                .map(|group| (group, policy.days))
        })
        .collect();
    // A changed policy is signed before anything is deleted under it.
    writer.set_retention_policies(policies.clone());
    if writer.has_unsealed() {
        seal(writer, stats, unsealed_acks);
    }
    let groups = writer.sizes();
    for (group, days) in policies {
        if !groups.contains_key(&group) || held.contains(group.as_str()) {
            continue;
        }
        match writer.apply_retention(&group, days, now) {
            Ok(notes) => notes.iter().for_each(|note| tracing::info!("{note}")),
            Err(error) => {
                tracing::error!(error = %error, group = %group, "retention sweep failed");
                stats.update(|inner| inner.last_error = Some(error.to_string()));
            }
        }
    }
}
