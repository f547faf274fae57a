//! Health events: what seclog notices about itself that an operator must hear of (the
//! retention clock disagreeing with the wall clock, and the logging-failure alarms). Each is
//! a JSON record in `seclog/health`; the built-in rules of `seclog-detect`
//! (`rules/seclog_health.yml`) turn them into findings in `seclog/alerts`, which alerting
//! delivers like any other.

use seclog_journal::JournalWriter;
use seclog_model::{GroupName, Timestamp};
use serde_json::{Map, Value, json};

/// The group health events are written to.
pub const HEALTH_GROUP: &str = "seclog/health";

/// The group, parsed.
pub fn health_group() -> GroupName {
    GroupName::parse(HEALTH_GROUP).expect("the health group name is valid")
}

/// One health event: its kind (what the rules match on), severity and message, and details.
#[derive(Debug, Clone)]
pub struct Event {
    fields: Map<String, Value>,
}

impl Event {
    /// An event of `kind` at `severity` (`info`, `medium`, `high`, `critical`).
    pub fn new(kind: &str, severity: &str, message: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("kind".into(), json!(kind));
        fields.insert("severity".into(), json!(severity));
        fields.insert("message".into(), json!(message));
        Event { fields }
    }

    /// Adds a detail.
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.fields.insert(name.into(), value);
        self
    }

    /// `kind state: subject`, for logs and tests.
    pub fn summary(&self) -> String {
        let text = |name: &str| {
            self.fields
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        format!("{} {}: {}", text("kind"), text("state"), text("subject"))
    }

    /// The encoded journal record, stamped now.
    pub fn record(&self) -> Vec<u8> {
        crate::access::own_record(Value::Object(self.fields.clone()))
    }
}

/// Appends and commits `event` from the commit thread (logged if the journal refuses: the
/// server log has it then).
pub(crate) fn append(writer: &mut JournalWriter, event: &Event) {
    let result = writer
        .append(&health_group(), &[event.record()], Timestamp::now())
        .and_then(|_| writer.commit());
    if let Err(error) = result {
        let event = Value::Object(event.fields.clone()).to_string();
        tracing::error!(error = %error, %event, "writing a health event failed");
    }
}
