//! Detection over stored records: the bridge between journal records and the Sigma engine
//! (`seclog-detect`), used by the streaming detector and by `seclog hunt --data`.

use seclog_detect::event::{Shape, detection_event};
use seclog_detect::{Detector, Match};
use seclog_journal::{Record, RecordKind};
use serde_json::{Map, Value};

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
    let attrs: Map<String, Value> = if record.attrs.is_empty() {
        Map::new()
    } else {
        serde_json::from_slice(&record.attrs).unwrap_or_default()
    };
    let Some(event) = detection_event(shape, &record.raw, &attrs, with_ocsf) else {
        return Vec::new();
    };
    let evidence = format!("{group}:{seq}");
    detector.process(group, &event, record.time.unix_seconds(), &evidence)
}
