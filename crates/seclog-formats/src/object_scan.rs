//! One pass over a JSON document that validates it and reads the event time.
//!
//! ```text
//! {"eventVersion":"1.08", "userIdentity":{...}, "eventTime":"2023-07-10T11:45:00Z", ...}
//!  `-- skipped --------'  `-- skipped -------'  `-- parsed -------------------'  skipped
//! ```
//!
//! Only the five recognized top-level keys have their values looked at; everything else goes
//! through [`IgnoredAny`], which serde_json implements as an iterative, allocation-free
//! syntax check. No `serde_json::Value` is ever built, so nesting depth costs no stack and a
//! CloudTrail record costs one linear scan.

use std::fmt;

use seclog_model::Timestamp;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::time_value::{parse_epoch_f64, parse_epoch_i64, parse_epoch_u64, parse_time_str};

/// Recognized time fields, highest priority first.
const TIME_KEYS: [&str; 5] = ["@timestamp", "eventTime", "timestamp", "time", "ts"];

/// What a scanned JSON document turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// A JSON object, with the time of its first parseable recognized field.
    Object(Option<Timestamp>),
    /// Valid JSON, but an array or a scalar.
    NotObject,
}

/// Validates `json` completely (trailing whitespace allowed) and extracts the event time.
pub(crate) fn scan_json(json: &str) -> Result<Scanned, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let scanned = deserializer.deserialize_any(DocumentVisitor)?;
    deserializer.end()?;
    Ok(scanned)
}

/// Event time from a JSON object's first recognized timestamp field, in priority order
/// `@timestamp`, `eventTime`, `timestamp`, `time`, `ts` (top-level keys only).
///
/// A recognized field whose value [`parse_time_value`](crate::parse_time_value) cannot read is
/// skipped in favour of the next key; for a duplicated key the first occurrence counts.
/// Returns `None` when there is no usable field or `json_object` is not a valid JSON object.
///
/// ```
/// use seclog_formats::extract_event_time;
/// let record = br#"{"ts":1,"eventTime":"2023-07-10T11:45:00Z","detail":{"time":2}}"#;
/// let time = extract_event_time(record).unwrap();
/// assert_eq!(time.to_rfc3339(), "2023-07-10T11:45:00.000000000Z");
/// ```
pub fn extract_event_time(json_object: &[u8]) -> Option<Timestamp> {
    let json = std::str::from_utf8(json_object).ok()?;
    match scan_json(json) {
        Ok(Scanned::Object(time)) => time,
        Ok(Scanned::NotObject) | Err(_) => None,
    }
}

/// The top-level value: an object is scanned for time keys, anything else is only validated.
struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Scanned;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scanned, A::Error> {
        // `Some(parsed)` once a key has been seen: later duplicates are skipped, not errors.
        let mut seen: [Option<Option<Timestamp>>; TIME_KEYS.len()] = [None; TIME_KEYS.len()];
        while let Some(TimeKey(priority)) = map.next_key()? {
            let unseen_slot = priority
                .and_then(|index| seen.get_mut(index))
                .filter(|slot| slot.is_none());
            match unseen_slot {
                Some(slot) => *slot = Some(map.next_value::<FieldTime>()?.0),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // Priority order, skipping keys that were absent or unparseable.
        let time = seen.into_iter().flatten().flatten().next();
        Ok(Scanned::Object(time))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scanned, A::Error> {
        // Drain so that a broken array is reported as a syntax error, not as "not an object".
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scanned::NotObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Scanned, E> {
        Ok(Scanned::NotObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scanned, E> {
        Ok(Scanned::NotObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Scanned, E> {
        Ok(Scanned::NotObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Scanned, E> {
        Ok(Scanned::NotObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scanned, E> {
        Ok(Scanned::NotObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scanned, E> {
        Ok(Scanned::NotObject)
    }
}

/// An object key: its index in [`TIME_KEYS`], or `None` for any other key.
///
/// Matched from the parser's borrowed or unescaped buffer, so keys are never allocated.
struct TimeKey(Option<usize>);

impl<'de> Deserialize<'de> for TimeKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TimeKeyVisitor)
    }
}

struct TimeKeyVisitor;

impl Visitor<'_> for TimeKeyVisitor {
    type Value = TimeKey;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<TimeKey, E> {
        Ok(TimeKey(TIME_KEYS.iter().position(|known| *known == key)))
    }
}

/// A recognized field's value, parsed while it is still in the parser's buffer.
///
/// Parsing eagerly (rather than keeping a `serde_json::Value` per key) avoids any allocation;
/// the extra work only arises for objects carrying several time keys.
struct FieldTime(Option<Timestamp>);

impl<'de> Deserialize<'de> for FieldTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldTimeVisitor)
    }
}

struct FieldTimeVisitor;

impl<'de> Visitor<'de> for FieldTimeVisitor {
    type Value = FieldTime;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<FieldTime, E> {
        Ok(FieldTime(parse_time_str(text)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<FieldTime, E> {
        Ok(FieldTime(parse_epoch_u64(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<FieldTime, E> {
        Ok(FieldTime(parse_epoch_i64(value)))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<FieldTime, E> {
        Ok(FieldTime(parse_epoch_f64(value)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<FieldTime, E> {
        Ok(FieldTime(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<FieldTime, E> {
        Ok(FieldTime(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FieldTime, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(FieldTime(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldTime, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(FieldTime(None))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn time_of(json: &str) -> Option<String> {
        match scan_json(json).unwrap() {
            Scanned::Object(time) => time.map(Timestamp::to_rfc3339),
            Scanned::NotObject => panic!("{json} is an object"),
        }
    }

    #[test]
    fn priority_order_is_fixed_regardless_of_key_order() {
        let json = r#"{"ts":1,"time":2,"timestamp":3,"eventTime":4,"@timestamp":5}"#;
        assert_eq!(
            time_of(json).as_deref(),
            Some("1970-01-01T00:00:05.000000000Z")
        );
        let json = r#"{"ts":1,"time":2,"timestamp":3}"#;
        assert_eq!(
            time_of(json).as_deref(),
            Some("1970-01-01T00:00:03.000000000Z")
        );
        let json = r#"{"ts":1,"other":2}"#;
        assert_eq!(
            time_of(json).as_deref(),
            Some("1970-01-01T00:00:01.000000000Z")
        );
    }

    #[test]
    fn unparseable_field_falls_through_to_the_next_key() {
        let json =
            r#"{"@timestamp":"soon","eventTime":null,"timestamp":{"s":1},"time":[2],"ts":"7"}"#;
        assert_eq!(
            time_of(json).as_deref(),
            Some("1970-01-01T00:00:07.000000000Z")
        );
        assert_eq!(time_of(r#"{"time":"never","a":1}"#), None);
    }

    #[test]
    fn first_duplicate_wins_and_is_not_an_error() {
        assert_eq!(
            time_of(r#"{"ts":1,"ts":2}"#).as_deref(),
            Some("1970-01-01T00:00:01.000000000Z")
        );
        // The first occurrence is unparseable: the key is done, later duplicates don't count.
        assert_eq!(time_of(r#"{"ts":"bad","ts":2}"#), None);
        assert_eq!(time_of(r#"{"a":1,"a":2}"#), None);
    }

    #[test]
    fn nested_and_case_variant_keys_are_ignored() {
        assert_eq!(time_of(r#"{"detail":{"time":1},"Time":2,"TS":3}"#), None);
    }

    #[test]
    fn escaped_keys_and_values_are_recognized() {
        let json = r#"{"event\u0054ime":"2023-07-10T11:45:00\u005a"}"#;
        assert_eq!(
            time_of(json).as_deref(),
            Some("2023-07-10T11:45:00.000000000Z")
        );
    }

    #[test]
    fn validates_the_whole_document() {
        for broken in [
            r#"{"a":"#,
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":"\x"}"#,
            "{} x",
            "{}}",
            "[1,",
        ] {
            assert!(scan_json(broken).is_err(), "{broken}");
        }
        assert!(
            scan_json("{\"a\":\"\t\"}").is_err(),
            "raw control character in a string"
        );
        assert_eq!(scan_json(" {} \t").unwrap(), Scanned::Object(None));
        for other in ["[1,2]", "\"x\"", "1", "-1", "1.5", "true", "null"] {
            assert_eq!(scan_json(other).unwrap(), Scanned::NotObject, "{other}");
        }
    }

    #[test]
    fn deep_nesting_costs_no_recursion() {
        let depth = 100_000;
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let json = format!(r#"{{"a":{nested},"time":{nested},"ts":5}}"#);
        assert_eq!(
            time_of(&json).as_deref(),
            Some("1970-01-01T00:00:05.000000000Z")
        );
        assert!(scan_json(&"[".repeat(depth)).is_err());
        assert_eq!(scan_json(&nested).unwrap(), Scanned::NotObject);
    }

    #[test]
    fn extract_event_time_is_none_on_bad_input() {
        assert_eq!(extract_event_time(b"{\"ts\":1"), None);
        assert_eq!(extract_event_time(b"[{\"ts\":1}]"), None);
        assert_eq!(extract_event_time(b"{\"ts\":1,\"x\":\"\xff\"}"), None);
        assert!(extract_event_time(b"{\"ts\":1}").is_some());
    }
}
