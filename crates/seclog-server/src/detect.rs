//! Detection over stored records: the bridge between journal records and the Sigma engine
//! (`seclog-detect`), used by the streaming detector and by `seclog hunt --data`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use seclog_detect::event::{Shape, detection_event};
use seclog_detect::finding::{detection_finding, finding_id};
use seclog_detect::{Detector, Match, SigmaEngine};
use seclog_journal::{DurableHeads, JournalReader, MasterKey, Record, RecordKind};
use seclog_meta::MetaStore;
use seclog_model::{GroupName, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::committer::{CommitHandle, GroupBatch};

/// Evaluates one stored record of `group` (sequence number `seq`); matches name it
/// `group:seq`. Records no rule reads, dead letters and records whose JSON does not parse give
/// nothing.
pub fn evaluate_record(
    detector: &mut dyn Detector,
    group: &str,
    seq: u64,
    record: &Record,
) -> Vec<Match> {
    let Some(with_ocsf) = detector.wants_ocsf(group) else {
        return Vec::new();
    };
    let shape = match record.kind {
        RecordKind::Json => Shape::Json,
        RecordKind::Text => Shape::Text,
        RecordKind::Invalid => return Vec::new(),
    };
    let attrs = record_attrs(&record.attrs, with_ocsf);
    let Some(event) = detection_event(shape, &record.raw, &attrs, with_ocsf) else {
        return Vec::new();
    };
    let evidence = format!("{group}:{seq}");
    detector.process(group, &event, record.time.unix_seconds(), &evidence)
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
            let matches = evaluate_record(detector, group.as_str(), stored.seq, &stored.record);
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

/// The consumer name under which the detector's state is kept.
const CONSUMER: &str = "detector";
/// Sealing context of the detector's state (it holds user names and addresses from events).
const STATE_CONTEXT: &[u8] = b"seclog detector state v1";
/// Events evaluated between two durable saves of the detector's state, at most (fewer when
/// fewer are sealed). Each read opens the segment again, so larger batches read less.
const BATCH: usize = 50_000;

/// Counters of the streaming detector.
#[derive(Debug, Default)]
pub struct DetectionStats {
    /// Events evaluated since start.
    pub events: AtomicU64,
    /// Findings stored since start.
    pub findings: AtomicU64,
    /// Findings recognised as already stored (re-evaluation after a crash).
    pub duplicates_skipped: AtomicU64,
    /// Errors since start.
    pub errors: AtomicU64,
    /// Sealed events not yet evaluated, as of the detector's last pass over the groups.
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

/// The streaming detector: a journal consumer that evaluates every sealed event of every group
/// (but seclog's own) and stores each match as an OCSF Detection Finding in `seclog/alerts`.
///
/// Exactly once across crashes: findings are made durable before the state that says their
/// events were evaluated; after a crash the events since the saved state are evaluated again
/// from the saved windows, which gives the same findings with the same ids, and those already
/// in `seclog/alerts` past the saved point are not stored twice.
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
    runtime: tokio::runtime::Handle,
    stats: Arc<DetectionStats>,
    state: SavedState,
    /// Ids of findings stored after the saved state (found at start-up).
    stored_after_save: HashSet<String>,
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
        let mut detection = Detection {
            engine,
            reader,
            heads,
            meta,
            master,
            commit,
            runtime: tokio::runtime::Handle::current(),
            stats: Arc::clone(&stats),
            state: SavedState::default(),
            stored_after_save: HashSet::new(),
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

    /// Stops after the current batch (its findings and state are saved).
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
                self.save()?;
            }
        }
        // Findings stored after the saved state: a crash came between storing them and saving.
        let alerts = alerts_group();
        let mut position = self.state.alerts_next;
        loop {
            let stored = match self.reader.read(&alerts, position, 10_000, None) {
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
                    self.stored_after_save.insert(id);
                }
            }
        }
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
            let sizes = self.heads.snapshot();
            // Before the pass too: `behind` is never 0 while sealed events wait.
            self.report_behind(&sizes);
            let mut busy = false;
            for (group, durable) in &sizes {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                if group.is_internal() {
                    continue;
                }
                match self.step(group, *durable) {
                    Ok(true) => busy = true,
                    Ok(false) => {}
                    Err(error) => {
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(group = %group, error = %error, "detection failed; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            self.report_behind(&sizes);
            if !busy {
                self.heads.wait_changed(&sizes, Duration::from_millis(250));
            }
        }
    }

    /// Publishes how many sealed events (of `sizes`) are not evaluated yet.
    fn report_behind(&self, sizes: &BTreeMap<GroupName, u64>) {
        let behind: u64 = sizes
            .iter()
            .filter(|(group, _)| !group.is_internal())
            .map(|(group, durable)| {
                let position = self
                    .state
                    .positions
                    .get(group.as_str())
                    .copied()
                    .unwrap_or(0);
                durable.saturating_sub(position)
            })
            .sum();
        self.stats.behind.store(behind, Ordering::Relaxed);
    }

    /// Evaluates the next batch of `group`; `false` when there was nothing to do.
    fn step(&mut self, group: &GroupName, durable: u64) -> Result<bool, String> {
        let position = self
            .state
            .positions
            .get(group.as_str())
            .copied()
            .unwrap_or(0);
        if durable <= position {
            return Ok(false);
        }
        let events = self
            .reader
            .read(group, position, BATCH, Some(durable))
            .map_err(|error| error.to_string())?;
        let Some(last) = events.last() else {
            return Ok(false);
        };
        let next = last.seq + 1;
        let mut records = Vec::new();
        for stored in &events {
            let matches =
                evaluate_record(&mut self.engine, group.as_str(), stored.seq, &stored.record);
            for matched in matches {
                let time_ms = stored.record.time.unix_nanos() / 1_000_000;
                let finding = detection_finding(&matched, time_ms, time_ms);
                let id = finding_id(&matched);
                if self.stored_after_save.remove(&id) {
                    self.stats
                        .duplicates_skipped
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                records.push(
                    Record {
                        time: stored.record.time,
                        observed_time: Timestamp::now(),
                        kind: RecordKind::Json,
                        source: "detect".into(),
                        attrs: Vec::new(),
                        raw: serde_json::to_vec(&finding).map_err(|error| error.to_string())?,
                    }
                    .encode(),
                );
            }
        }
        self.stats
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        if !records.is_empty() {
            let count = records.len() as u64;
            let batch = vec![GroupBatch {
                group: alerts_group(),
                records,
            }];
            let assigned = self
                .runtime
                .block_on(self.commit.submit(batch, Duration::from_secs(60)))
                .map_err(|error| format!("storing findings: {error}"))?;
            if let Some(Some((_, last))) = assigned.first() {
                self.state.alerts_next = last + 1;
            }
            self.stats.findings.fetch_add(count, Ordering::Relaxed);
        }
        self.state
            .positions
            .insert(group.as_str().to_string(), next);
        self.state.snapshot = self.engine.snapshot();
        self.save()?;
        Ok(true)
    }
}
