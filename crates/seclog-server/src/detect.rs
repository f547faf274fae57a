//! Detection over stored records: the bridge between journal records and the Sigma engine
//! (`seclog-detect`), used by the streaming detector and by `seclog hunt --data`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use seclog_detect::event::{Shape, detection_event, projected_event};
use seclog_detect::finding::detection_finding;
use seclog_detect::{Detector, Match, SigmaEngine};
use seclog_journal::{DurableHeads, JournalReader, MasterKey, Record, RecordKind, RecordView};
use seclog_meta::MetaStore;
use seclog_model::{GroupName, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::committer::{CommitHandle, GroupBatch, Tapped};

/// Evaluates one stored record of `group` (sequence number `seq`), parsing only the fields the
/// rules read; matches name it `group:seq`. Records no rule reads, dead letters and records
/// whose JSON does not parse give nothing.
pub fn evaluate_record(
    detector: &mut dyn Detector,
    group: &str,
    seq: u64,
    record: RecordView<'_>,
) -> Vec<Match> {
    let Some(reads) = detector.reads(group) else {
        return Vec::new();
    };
    let shape = match record.kind {
        RecordKind::Json => Shape::Json,
        RecordKind::Text => Shape::Text,
        RecordKind::Invalid => return Vec::new(),
    };
    let evidence = format!("{group}:{seq}");
    let time = record.time.unix_seconds();
    match (shape, reads.fields.as_deref()) {
        // Of a JSON record, only the fields the rules read, borrowed from the record.
        (Shape::Json, Some(fields)) => {
            match projected_event(record.raw, record.attrs, reads.ocsf, fields) {
                Some(event) => detector.process_event(group, (&event).into(), time, &evidence),
                None => Vec::new(),
            }
        }
        // A text line's fields are all kept: its sshd and PAM facts are derived from them.
        _ => {
            let attrs = record_attrs(record.attrs, reads.ocsf);
            match detection_event(shape, record.raw, &attrs, reads.ocsf) {
                Some(event) => detector.process(group, &event, time, &evidence),
                None => Vec::new(),
            }
        }
    }
}

/// Evaluates the stored events of `group` at or after `since`, in sequence order, and hands
/// each event with matches to `each` (its sequence number, its view, the matches); `each`
/// returns `false` to stop. Returns how many events were evaluated. (`seclog hunt --data` and
/// `POST /api/v1/hunt`.)
pub fn hunt_group(
    detector: &mut dyn Detector,
    reader: &JournalReader,
    group: &GroupName,
    since: Option<Timestamp>,
    each: &mut dyn FnMut(u64, Value, Vec<Match>) -> bool,
) -> seclog_journal::Result<u64> {
    let mut events = 0;
    let mut position = 0;
    loop {
        let batch = reader.read(group, position, 10_000, None)?;
        let Some(last) = batch.last() else {
            return Ok(events);
        };
        position = last.seq + 1;
        for stored in &batch {
            if since.is_some_and(|since| stored.record.time < since) {
                continue;
            }
            events += 1;
            let matches =
                evaluate_record(detector, group.as_str(), stored.seq, stored.record.view());
            if matches.is_empty() {
                continue;
            }
            let view = seclog_journal::proof::event_view(group, stored.seq, &stored.record);
            if !each(stored.seq, view, matches) {
                return Ok(events);
            }
        }
    }
}

/// A record's attributes, leaving the OCSF event unparsed unless the rules read it (for
/// CloudTrail it is as large as the record, and the rules use CloudTrail's own fields).
fn record_attrs(attrs: &[u8], with_ocsf: bool) -> Map<String, Value> {
    if attrs.is_empty() {
        return Map::new();
    }
    let Ok(raw) = serde_json::from_slice::<BTreeMap<String, &serde_json::value::RawValue>>(attrs)
    else {
        return Map::new();
    };
    raw.into_iter()
        .filter(|(key, _)| with_ocsf || key != seclog_detect::event::OCSF_ATTR)
        .filter_map(|(key, value)| {
            serde_json::from_str::<Value>(value.get())
                .ok()
                .map(|value| (key, value))
        })
        .collect()
}

/// One line of hunt output: the rule, where the event is (`origin`: `input` and
/// `record_index`, or `group` and `seq`), the correlation when there is one, and the event.
pub fn match_line(matched: &Match, origin: Map<String, Value>, event: Value) -> Value {
    let mut line = Map::new();
    line.insert(
        "rule".into(),
        serde_json::json!({
            "id": matched.rule.id,
            "title": matched.rule.title,
            "level": matched.rule.level.as_str(),
        }),
    );
    line.extend(origin);
    let group_by: Map<String, Value> = matched
        .group_key
        .iter()
        .map(|(key, value)| (key.clone(), Value::String(value.clone())))
        .collect();
    match &matched.kind {
        seclog_detect::MatchKind::Correlation(kind) => {
            line.insert(
                "correlation".into(),
                serde_json::json!({
                    "type": kind,
                    "group_by": group_by,
                    "value": matched.value,
                    "timespan_secs": matched.timespan_secs,
                    "evidence": matched.evidence,
                }),
            );
        }
        seclog_detect::MatchKind::Anomaly => {
            let fields: Map<String, Value> = matched.fields.iter().cloned().collect();
            line.insert(
                "anomaly".into(),
                serde_json::json!({
                    "group_by": group_by,
                    "values": fields,
                    "evidence": matched.evidence,
                }),
            );
        }
        seclog_detect::MatchKind::Detection => {}
    }
    line.insert("event".into(), event);
    Value::Object(line)
}

/// The group findings are stored in.
pub const ALERTS_GROUP: &str = "seclog/alerts";

/// Re-seals the detector's saved state under `new` (a master-key rotation); `keyring` opens
/// it under either key. False when there is no saved state.
pub fn reseal_state(
    meta: &MetaStore,
    keyring: &MasterKey,
    new: &MasterKey,
) -> Result<bool, String> {
    let Some(sealed) = meta
        .consumer_state(CONSUMER)
        .map_err(|error| error.to_string())?
    else {
        return Ok(false);
    };
    let plain = keyring
        .open(&sealed, STATE_CONTEXT)
        .map_err(|error| format!("the detector state does not open: {error}"))?;
    let resealed = new
        .seal(&plain, STATE_CONTEXT)
        .map_err(|error| error.to_string())?;
    meta.set_consumer_state(CONSUMER, &resealed)
        .map_err(|error| error.to_string())?;
    Ok(true)
}

/// True for the groups the detector evaluates: every group but seclog's own, except
/// `seclog/access` (attempts on seclog itself are detected like any others) and
/// `seclog/health` (what seclog notices about itself).
fn evaluated(group: &GroupName) -> bool {
    !group.is_internal() || group.is_access_log() || group.as_str() == crate::health::HEALTH_GROUP
}

/// The consumer name under which the detector's state is kept.
const CONSUMER: &str = "detector";
/// Sealing context of the detector's state (it holds user names and addresses from events).
const STATE_CONTEXT: &[u8] = b"seclog detector state v1";
/// Events evaluated between two stores of their findings, at most; and the most read back from
/// the journal at once.
const BATCH: u64 = 50_000;
/// Longest time between evaluating an event and storing its findings while events keep coming
/// (when they stop, findings are stored at once).
const STORE_EVERY: Duration = Duration::from_secs(1);
/// How often the positions and windows are saved while events flow (a crash re-evaluates at
/// most this much, recognising the findings it stored meanwhile), and how soon once they stop.
const SAVE_EVERY: Duration = Duration::from_secs(10);
const SAVE_WHEN_IDLE: Duration = Duration::from_secs(1);
/// How long the detector waits for the commit thread's hand-over before it looks at the
/// journal's heads itself.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How often a busy detector still looks for groups whose newest records it was not handed.
const SCAN_EVERY: Duration = Duration::from_secs(5);
/// Plaintext bytes of committed records the commit thread hands over in memory before a lagging
/// detector must read them back from the journal.
const TAP_BYTES: usize = 256 << 20;

/// Counters of the streaming detector.
#[derive(Debug, Default)]
pub struct DetectionStats {
    /// Events evaluated, their findings stored, since start.
    pub events: AtomicU64,
    /// Findings stored since start.
    pub findings: AtomicU64,
    /// Findings recognised as already stored (re-evaluation after a crash).
    pub duplicates_skipped: AtomicU64,
    /// Errors since start.
    pub errors: AtomicU64,
    /// Durable events not evaluated yet or whose findings are not stored yet, as of the
    /// detector's last look.
    pub behind: AtomicU64,
}

/// What the detector keeps durably, sealed with the master key, in one transaction: where it is
/// in every group, the window state at exactly that point, and how far `seclog/alerts` was
/// written then.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedState {
    version: u32,
    positions: BTreeMap<String, u64>,
    alerts_next: u64,
    snapshot: Value,
}

/// The streaming detector: evaluates every durable event of every group (but seclog's own) and
/// stores each match as an OCSF Detection Finding in `seclog/alerts`.
///
/// The commit thread hands it the records of each durable commit in memory; what it was not
/// handed (before it started, or while it lagged more than [`TAP_BYTES`] behind) it reads back
/// from the journal, so every event is evaluated once, in sequence order per group.
///
/// Exactly once across crashes: findings are made durable (at least every [`STORE_EVERY`])
/// before the state that says their events were evaluated (saved every [`SAVE_EVERY`]); after a
/// crash the events since the saved state are evaluated again from the saved windows, which
/// gives the same findings with the same ids, and those already in `seclog/alerts` past the
/// saved point are not stored twice.
pub struct DetectionService {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Its counters.
    pub stats: Arc<DetectionStats>,
}

impl std::fmt::Debug for DetectionService {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DetectionService")
            .finish_non_exhaustive()
    }
}

struct Detection {
    engine: SigmaEngine,
    reader: JournalReader,
    heads: Arc<DurableHeads>,
    meta: Arc<MetaStore>,
    master: MasterKey,
    commit: CommitHandle,
    tap: Receiver<Tapped>,
    runtime: tokio::runtime::Handle,
    stats: Arc<DetectionStats>,
    /// As last saved.
    state: SavedState,
    /// The next sequence number to evaluate, per group (ahead of the saved positions).
    next: BTreeMap<String, u64>,
    /// Per group, the position before which every event's findings are stored (between the
    /// saved positions and `next`).
    stored: BTreeMap<String, u64>,
    /// Encoded findings of the events evaluated since findings were last stored.
    findings: Vec<Vec<u8>>,
    /// Events evaluated since findings were last stored.
    unstored: u64,
    /// The end of `seclog/alerts` after the findings last stored.
    alerts_end: u64,
    last_store: Instant,
    last_save: Instant,
    last_scan: Option<Instant>,
    /// Groups handed over since the last scan (their gaps are filled as their records come).
    handed: HashSet<GroupName>,
    /// Ids of findings stored after the saved state and not found again yet (read when
    /// evaluation restarts from the saved state).
    stored_after_save: HashSet<String>,
    /// While those are being found again: the group ends when evaluation restarted (every one
    /// of them is from an event before these). Until evaluation passes them, saves keep the
    /// older end of `seclog/alerts`, so that another crash still finds them all.
    replay_until: Option<BTreeMap<String, u64>>,
    /// Storing findings failed: evaluation goes back to the saved state before going on.
    resume: bool,
}

impl DetectionService {
    pub(crate) fn start(
        engine: SigmaEngine,
        reader: JournalReader,
        heads: Arc<DurableHeads>,
        meta: Arc<MetaStore>,
        master: MasterKey,
        commit: CommitHandle,
    ) -> std::io::Result<DetectionService> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(DetectionStats::default());
        // Before the saved positions are read: a commit in between is either handed over or
        // already counted in them.
        let tap = commit.tap(evaluated, TAP_BYTES);
        let mut detection = Detection {
            engine,
            reader,
            heads,
            meta,
            master,
            commit,
            tap,
            runtime: tokio::runtime::Handle::current(),
            stats: Arc::clone(&stats),
            state: SavedState::default(),
            next: BTreeMap::new(),
            stored: BTreeMap::new(),
            findings: Vec::new(),
            unstored: 0,
            alerts_end: 0,
            last_store: Instant::now(),
            last_save: Instant::now(),
            last_scan: None,
            handed: HashSet::new(),
            stored_after_save: HashSet::new(),
            replay_until: None,
            resume: false,
        };
        detection.recover().map_err(std::io::Error::other)?;
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("seclog-detect".into())
                .spawn(move || detection.run(&stop))?
        };
        Ok(DetectionService {
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// Stops after storing the findings of what was evaluated (and saving the state).
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the detection thread panicked");
        }
    }
}

fn alerts_group() -> GroupName {
    GroupName::parse(ALERTS_GROUP).expect("the alerts group name is valid")
}

impl Detection {
    /// Loads the saved state; a first start begins at the groups' current ends (history is
    /// `seclog hunt`'s job).
    fn recover(&mut self) -> Result<(), String> {
        match self
            .meta
            .consumer_state(CONSUMER)
            .map_err(|error| error.to_string())?
        {
            Some(sealed) => {
                let plain = self
                    .master
                    .open(&sealed, STATE_CONTEXT)
                    .map_err(|error| format!("opening the detector state: {error}"))?;
                self.state = serde_json::from_slice(&plain)
                    .map_err(|error| format!("reading the detector state: {error}"))?;
                if !self.state.snapshot.is_null() && !self.engine.restore(&self.state.snapshot) {
                    tracing::warn!(
                        "the rules changed since the detector stopped: correlation windows start empty"
                    );
                }
            }
            None => {
                self.state.version = 1;
                for (group, size) in self.heads.snapshot() {
                    self.state
                        .positions
                        .insert(group.as_str().to_string(), size);
                }
                self.state.alerts_next = self.heads.size(&alerts_group());
                // Empty windows, to go back to should storing findings fail.
                self.state.snapshot = self.engine.snapshot();
                self.save()?;
            }
        }
        self.resume_from_saved()
    }

    /// Evaluation goes on from the saved positions and windows; the findings stored after them
    /// (before a crash, or before storing failed) are recognised when they are found again.
    fn resume_from_saved(&mut self) -> Result<(), String> {
        // Read first, change nothing until it is all read: a failure leaves the resume to be
        // tried again.
        let alerts = alerts_group();
        let end = self.heads.size(&alerts).max(self.state.alerts_next);
        let mut found = HashSet::new();
        let mut position = self.state.alerts_next;
        while position < end {
            let stored = match self.reader.read(&alerts, position, 10_000, Some(end)) {
                Ok(stored) => stored,
                Err(seclog_journal::JournalError::NotFound(_)) => break,
                Err(error) => return Err(error.to_string()),
            };
            let Some(last) = stored.last() else { break };
            position = last.seq + 1;
            for event in &stored {
                if let Some(id) = serde_json::from_slice::<Value>(&event.record.raw)
                    .ok()
                    .and_then(|finding| finding["metadata"]["uid"].as_str().map(str::to_string))
                {
                    found.insert(id);
                }
            }
        }
        if self.resume && !self.state.snapshot.is_null() {
            self.engine.restore(&self.state.snapshot);
        }
        self.next = self.state.positions.clone();
        self.stored = self.state.positions.clone();
        self.findings.clear();
        self.unstored = 0;
        self.alerts_end = end;
        self.replay_until = (!found.is_empty()).then(|| {
            self.heads
                .snapshot()
                .into_iter()
                .filter(|(group, _)| evaluated(group))
                .map(|(group, end)| (group.as_str().to_string(), end))
                .collect()
        });
        self.stored_after_save = found;
        self.resume = false;
        Ok(())
    }

    fn save(&self) -> Result<(), String> {
        let plain = serde_json::to_vec(&self.state).map_err(|error| error.to_string())?;
        let sealed = self
            .master
            .seal(&plain, STATE_CONTEXT)
            .map_err(|error| error.to_string())?;
        self.meta
            .set_consumer_state(CONSUMER, &sealed)
            .map_err(|error| error.to_string())
    }

    fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            if let Err(error) = self.pass() {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %error, "detection failed; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if let Err(error) = self.save_state() {
            tracing::error!(error = %error, "storing the last findings failed; they are found again at the next start");
        }
    }

    /// Evaluates what the commit thread hands over, or (when it hands nothing over, and every
    /// [`SCAN_EVERY`]) what the journal holds beyond the detector's positions; stores findings
    /// and saves the state when due.
    fn pass(&mut self) -> Result<(), String> {
        if self.resume {
            self.resume_from_saved()?;
        }
        // Before evaluating too: `behind` is never 0 while durable events wait.
        self.report_behind();
        let idle = match self.tap.recv_timeout(IDLE_WAIT) {
            Ok(tapped) => {
                for (group, first, records) in &tapped.groups {
                    self.take(group, *first, records)?;
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => {
                // The commit thread is gone (shutting down): the journal is all there is.
                std::thread::sleep(IDLE_WAIT);
                true
            }
        };
        if idle
            || self
                .last_scan
                .is_none_or(|last| last.elapsed() >= SCAN_EVERY)
        {
            self.scan(idle)?;
        }
        if self.unstored > 0
            && (idle || self.unstored >= BATCH || self.last_store.elapsed() >= STORE_EVERY)
        {
            self.store()?;
        }
        let since_save = self.last_save.elapsed();
        if since_save >= SAVE_EVERY || (idle && since_save >= SAVE_WHEN_IDLE) {
            self.save_state()?;
        }
        self.report_behind();
        Ok(())
    }

    fn position(&self, group: &GroupName) -> u64 {
        self.next.get(group.as_str()).copied().unwrap_or(0)
    }

    /// Evaluates records `first..` of `group` handed over by the commit thread, reading back
    /// from the journal what came before them and was not evaluated yet.
    fn take(&mut self, group: &GroupName, first: u64, records: &[Vec<u8>]) -> Result<(), String> {
        self.handed.insert(group.clone());
        let end = first + records.len() as u64;
        if self.position(group) < first {
            self.read_back(group, first)?;
        }
        let position = self.position(group);
        if end <= position {
            return Ok(());
        }
        if self.engine.reads(group.as_str()).is_some() {
            let skip = usize::try_from(position - first).unwrap_or(usize::MAX);
            for (seq, bytes) in (first..).zip(records).skip(skip) {
                match RecordView::decode(bytes) {
                    Ok(record) => self.evaluate(group, seq, record)?,
                    Err(reason) => {
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(group = %group, seq, reason = %reason, "a committed record does not decode; not evaluated");
                    }
                }
            }
        }
        self.unstored += end - position;
        self.next.insert(group.as_str().to_string(), end);
        Ok(())
    }

    /// Reads back and evaluates the records of `group` before `end` not evaluated yet (records
    /// retention removed meanwhile are passed over).
    fn read_back(&mut self, group: &GroupName, end: u64) -> Result<(), String> {
        while self.position(group) < end {
            let position = self.position(group);
            let events = match self.reader.read(
                group,
                position,
                usize::try_from(BATCH).unwrap_or(usize::MAX),
                Some(end),
            ) {
                Ok(events) => events,
                Err(seclog_journal::JournalError::NotFound(_)) => Vec::new(),
                Err(error) => return Err(error.to_string()),
            };
            let next = events.last().map_or(end, |last| last.seq + 1);
            for stored in &events {
                self.evaluate(group, stored.seq, stored.record.view())?;
            }
            self.unstored += next.saturating_sub(position);
            self.next.insert(group.as_str().to_string(), next);
            if self.unstored >= BATCH {
                self.store()?;
            }
        }
        Ok(())
    }

    /// Catches up, from the journal, with every group beyond the detector's positions; while
    /// busy (`idle` false), only with groups not handed over since the last scan.
    fn scan(&mut self, idle: bool) -> Result<(), String> {
        for (group, durable) in self.heads.snapshot() {
            if !evaluated(&group) || (!idle && self.handed.contains(&group)) {
                continue;
            }
            if self.position(&group) < durable {
                self.read_back(&group, durable)?;
            }
        }
        self.handed.clear();
        self.last_scan = Some(Instant::now());
        Ok(())
    }

    /// Evaluates one event and keeps its findings for the next save.
    fn evaluate(
        &mut self,
        group: &GroupName,
        seq: u64,
        record: RecordView<'_>,
    ) -> Result<(), String> {
        for matched in evaluate_record(&mut self.engine, group.as_str(), seq, record) {
            let time_ms = record.time.unix_nanos() / 1_000_000;
            let finding = detection_finding(&matched, time_ms, time_ms);
            if self.stored_after_save.remove(finding.uid()) {
                self.stats
                    .duplicates_skipped
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.findings.push(
                Record {
                    time: record.time,
                    observed_time: Timestamp::now(),
                    kind: RecordKind::Json,
                    source: "detect".into(),
                    attrs: Vec::new(),
                    raw: finding.to_json()?,
                }
                .encode(),
            );
        }
        Ok(())
    }

    /// Stores the findings kept so far: the events evaluated until now are done. If they cannot
    /// be stored, evaluation goes back to the saved state.
    fn store(&mut self) -> Result<(), String> {
        if self.resume {
            // What was evaluated since the saved state is to be evaluated again, not saved.
            return Err("storing findings failed; evaluating again from the saved state".into());
        }
        if self.unstored == 0 && self.findings.is_empty() {
            return Ok(());
        }
        if !self.findings.is_empty() {
            let records = std::mem::take(&mut self.findings);
            let count = records.len() as u64;
            let batch = vec![GroupBatch {
                group: alerts_group(),
                records,
            }];
            match self
                .runtime
                .block_on(self.commit.submit(batch, Duration::from_secs(60)))
            {
                Ok(assigned) => {
                    if let Some(Some((_, last))) = assigned.first() {
                        self.alerts_end = last + 1;
                    }
                    self.stats.findings.fetch_add(count, Ordering::Relaxed);
                }
                Err(error) => {
                    // Not stored: evaluate again from the saved state (records handed over
                    // meanwhile are read back), from the next pass on.
                    self.resume = true;
                    return Err(format!("storing findings: {error}"));
                }
            }
        }
        self.stored = self.next.clone();
        self.stats
            .events
            .fetch_add(self.unstored, Ordering::Relaxed);
        self.unstored = 0;
        self.last_store = Instant::now();
        self.report_behind();
        Ok(())
    }

    /// Stores the findings kept so far, then saves the positions and windows they were found at
    /// (and where `seclog/alerts` ended then).
    fn save_state(&mut self) -> Result<(), String> {
        self.store()?;
        self.last_save = Instant::now();
        if self.state.positions == self.next && self.state.alerts_next == self.alerts_end {
            return Ok(());
        }
        if let Some(until) = &self.replay_until
            && until
                .iter()
                .all(|(group, end)| self.next.get(group).copied().unwrap_or(0) >= *end)
        {
            // Evaluated past every event found before: what was not found again never will be.
            self.stored_after_save.clear();
            self.replay_until = None;
        }
        self.state.positions = self.next.clone();
        if self.replay_until.is_none() {
            self.state.alerts_next = self.alerts_end;
        }
        self.state.snapshot = self.engine.snapshot();
        self.save()?;
        Ok(())
    }

    /// Publishes how many durable events are not evaluated or have their findings not stored.
    fn report_behind(&self) {
        let behind: u64 = self
            .heads
            .snapshot()
            .iter()
            .filter(|(group, _)| evaluated(group))
            .map(|(group, durable)| {
                let position = self.stored.get(group.as_str()).copied().unwrap_or(0);
                durable.saturating_sub(position)
            })
            .sum();
        self.stats.behind.store(behind, Ordering::Relaxed);
    }
}
