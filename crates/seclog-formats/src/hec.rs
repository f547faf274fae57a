//! Splunk HTTP Event Collector bodies.
//!
//! `/services/collector/event` takes JSON objects one after another (newlines between them are
//! optional), each with the event and its metadata:
//!
//! ```text
//! {"time": 1764237600.5, "host": "web-1", "sourcetype": "access", "index": "web", "event": {"path": "/"}}
//! {"event": "plain text", "fields": {"region": "eu"}}
//! ```
//!
//! `/services/collector/raw` takes text, one event per line, with the metadata in the query
//! string. A body that does not decode is refused as a whole, with the number of the first
//! event that could not be read, as Splunk does.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::parse_time_value;
use seclog_model::Timestamp;

/// One event of an `/event` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HecEvent<'a> {
    /// The whole object as sent (the event and its metadata).
    pub raw: &'a [u8],
    /// `time`, epoch seconds (with a fraction) or any time `parse_time_value` reads.
    pub time: Option<Timestamp>,
    /// `index`, when given.
    pub index: Option<String>,
    /// `sourcetype`, when given.
    pub sourcetype: Option<String>,
}

/// Why an `/event` body was refused: Splunk's reply code and text, and the 0-based number of
/// the event at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HecError {
    /// Splunk's code (5 no data, 6 invalid data format, 12 event field required, 13 event
    /// field blank).
    pub code: u16,
    /// Splunk's text.
    pub text: &'static str,
    /// The event at fault.
    pub event_number: usize,
    /// A reason for people (the dead letter's).
    pub reason: String,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    index: Option<String>,
    sourcetype: Option<String>,
}

/// Decodes an `/event` body.
pub fn decode_hec_events(body: &[u8]) -> Result<Vec<HecEvent<'_>>, HecError> {
    if body.trim_ascii().is_empty() {
        return Err(HecError {
            code: 5,
            text: "No data",
            event_number: 0,
            reason: "the body holds no events".into(),
        });
    }
    let mut events = Vec::new();
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<&RawValue>();
    for (number, value) in stream.enumerate() {
        let invalid = |reason: String| HecError {
            code: 6,
            text: "Invalid data format",
            event_number: number,
            reason,
        };
        let value = value.map_err(|error| invalid(format!("event {number}: {error}")))?;
        let envelope: Envelope<'_> = serde_json::from_str(value.get())
            .map_err(|error| invalid(format!("event {number}: {error}")))?;
        let event = match envelope.event {
            None => {
                return Err(HecError {
                    code: 12,
                    text: "Event field is required",
                    event_number: number,
                    reason: format!("event {number} has no \"event\" field"),
                });
            }
            Some(event) => event.get().trim(),
        };
        if event == "\"\"" {
            return Err(HecError {
                code: 13,
                text: "Event field cannot be blank",
                event_number: number,
                reason: format!("event {number} has a blank \"event\" field"),
            });
        }
        let time = envelope
            .time
            .and_then(|time| serde_json::from_str::<serde_json::Value>(time.get()).ok())
            .and_then(|time| parse_time_value(&time));
        events.push(HecEvent {
            raw: value.get().as_bytes(),
            time,
            index: envelope.index,
            sourcetype: envelope.sourcetype,
        });
    }
    Ok(events)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn reads_concatenated_events_with_their_metadata() {
        let body = br#"{"time": 1764237600.5, "index": "web", "sourcetype": "access", "event": {"path": "/"}}{"event": "plain"}
{"time": "1764237601", "event": "x"}"#;
        let events = decode_hec_events(body).expect("decoded");
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].index.as_deref(), Some("web"));
        assert_eq!(events[0].sourcetype.as_deref(), Some("access"));
        assert_eq!(
            events[0].time.map(Timestamp::to_rfc3339).as_deref(),
            Some("2025-11-27T10:00:00.500000000Z")
        );
        assert_eq!(events[1].raw, br#"{"event": "plain"}"#);
        assert!(events[1].time.is_none());
        assert!(events[2].time.is_some());
    }

    #[test]
    fn refuses_bodies_as_splunk_does() {
        let code = |body: &[u8]| {
            decode_hec_events(body)
                .map(|_| 0)
                .unwrap_or_else(|e| e.code)
        };
        assert_eq!(code(b"  "), 5);
        assert_eq!(code(br#"{"event":"a"}{"event":"#), 6);
        assert_eq!(code(br#"{"event":"a"}{"host":"h"}"#), 12);
        assert_eq!(code(br#"{"event":""}"#), 13);
        assert_eq!(code(br#"{"event":null}"#), 12);
        let error = decode_hec_events(br#"{"event":"a"}{"host":"h"}"#).expect_err("refused");
        assert_eq!(error.event_number, 1);
    }
}
