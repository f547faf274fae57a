//! Detection: Sigma rules compiled into matchers and evaluated as events are sealed or over
//! history, correlation windows on event time, log-source routing, and the OCSF Detection
//! Finding each match becomes. Pure and synchronous: no IO beyond reading rule files.
//!
//! The Sigma semantics seclog guarantees (tested in `tests/semantics.rs`): `field: null` also
//! matches a missing field; dotted paths walk nested objects and fan out over arrays (a flat key
//! with the dotted name wins); JSON booleans and numbers compare with their string forms
//! case-insensitively; an object value never matches a string modifier; regular expressions run
//! on the linear-time `regex` crate, and one it cannot compile makes the rule unsupported.

pub mod anomaly;
mod engine;
pub mod event;
pub mod finding;
pub mod projected;
pub mod projection;
pub mod rules;
pub mod sources;

use std::path::PathBuf;
use std::sync::Arc;

pub use anomaly::{AnomalyConfig, RateAnomalies};
pub use engine::{BuildReport, SigmaEngine};
pub use projected::EventRef;
pub use projection::FieldTree;
pub use rsigma_eval::Pipeline;
pub use rules::{RuleLibrary, Unsupported};
pub use sources::{Source, Sources};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule or configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A configuration file is not valid.
    #[error("invalid detection configuration: {0}")]
    Config(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Parses a pySigma processing pipeline (YAML).
pub fn parse_pipeline(text: &str) -> Result<Pipeline> {
    rsigma_eval::parse_pipeline(text).map_err(|error| Error::Config(error.to_string()))
}

/// Severity of a rule, as Sigma names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `informational`.
    Informational,
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `critical`.
    Critical,
}

impl Level {
    fn from_sigma(level: rsigma_parser::Level) -> Level {
        match level {
            rsigma_parser::Level::Informational => Level::Informational,
            rsigma_parser::Level::Low => Level::Low,
            rsigma_parser::Level::Medium => Level::Medium,
            rsigma_parser::Level::High => Level::High,
            rsigma_parser::Level::Critical => Level::Critical,
        }
    }

    /// The Sigma name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// Parses a Sigma level name.
    pub fn parse(name: &str) -> Option<Level> {
        match name.to_ascii_lowercase().as_str() {
            "informational" | "info" => Some(Level::Informational),
            "low" => Some(Level::Low),
            "medium" => Some(Level::Medium),
            "high" => Some(Level::High),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }

    /// OCSF `severity_id` (1 informational … 5 critical).
    pub fn ocsf_severity_id(self) -> u8 {
        match self {
            Level::Informational => 1,
            Level::Low => 2,
            Level::Medium => 3,
            Level::High => 4,
            Level::Critical => 5,
        }
    }

    /// OCSF `severity` caption.
    pub fn ocsf_severity(self) -> &'static str {
        match self {
            Level::Informational => "Informational",
            Level::Low => "Low",
            Level::Medium => "Medium",
            Level::High => "High",
            Level::Critical => "Critical",
        }
    }
}

/// The rule behind a match.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRef {
    /// The rule's `id` (absent in some rules).
    pub id: Option<String>,
    /// The rule's title.
    pub title: String,
    /// The rule's level (`medium` when it has none).
    pub level: Level,
    /// The rule's tags (`attack.t1078`, …).
    pub tags: Vec<String>,
    /// The log source (routing entry) that evaluated it.
    pub source: String,
}

/// What kind of rule matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchKind {
    /// A detection rule matched one event.
    Detection,
    /// A correlation rule's condition held (its Sigma type: `event_count`, …).
    Correlation(String),
    /// An API-rate anomaly against a learned baseline.
    Anomaly,
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The rule.
    pub rule: RuleRef,
    /// Detection, correlation or anomaly.
    pub kind: MatchKind,
    /// The events that are its evidence, as the ids the caller gave them (`group:seq`).
    pub evidence: Vec<String>,
    /// Fields that matched, with the event's value.
    pub fields: Vec<(String, serde_json::Value)>,
    /// For correlations: the group-by fields and their values.
    pub group_key: Vec<(String, String)>,
    /// For correlations: the aggregated value (count, distinct count, …); for anomalies the
    /// observed value.
    pub value: Option<f64>,
    /// For correlations: the window length.
    pub timespan_secs: Option<u64>,
}

/// What the rules of a group read of its events.
#[derive(Debug, Clone)]
pub struct Reads {
    /// Whether events carry their OCSF object (under `ocsf`).
    pub ocsf: bool,
    /// The fields of a JSON record the rules read (`None`: all of it); the rest need not be
    /// parsed.
    pub fields: Option<Arc<FieldTree>>,
}

/// Evaluates events one at a time, in journal order, keeping whatever windows it needs.
///
/// Called by the streaming detector for every sealed event and by `hunt` for every event it
/// reads. Deterministic: the same events at the same times give the same matches, which is what
/// lets the streaming detector re-run a batch after a crash and recognise what it already wrote.
pub trait Detector: Send {
    /// Whether any rule reads events of `group`, and if so what of them (`None`: skip the
    /// group's events).
    fn reads(&mut self, group: &str) -> Option<Reads>;

    /// Whether any rule reads events of `group`, and if so whether they should carry their
    /// OCSF object.
    fn wants_ocsf(&mut self, group: &str) -> Option<bool> {
        self.reads(group).map(|reads| reads.ocsf)
    }

    /// Evaluates one event of `group` whose time is `time_secs` (Unix seconds); `evidence` is
    /// how matches refer to it.
    fn process_event(
        &mut self,
        group: &str,
        event: EventRef<'_>,
        time_secs: i64,
        evidence: &str,
    ) -> Vec<Match>;

    /// [`Detector::process_event`] for a whole JSON event.
    fn process(
        &mut self,
        group: &str,
        event: &serde_json::Value,
        time_secs: i64,
        evidence: &str,
    ) -> Vec<Match> {
        self.process_event(group, EventRef::Json(event), time_secs, evidence)
    }

    /// The window state, to be stored with the consumer's position.
    fn snapshot(&self) -> serde_json::Value;

    /// Restores state from [`Detector::snapshot`]; `false` when it does not fit the rules.
    fn restore(&mut self, snapshot: &serde_json::Value) -> bool;
}
