//! Loki push requests (`POST /loki/api/v1/push`): JSON, or protobuf compressed with snappy's
//! block format (what Promtail, Grafana Alloy and the Loki clients send).
//!
//! ```text
//! {"streams": [{"stream": {"job": "varlogs", "host": "web-1"},
//!               "values": [["1764237600000000000", "line", {"trace_id": "0242ac"}]]}]}
//! ```
//!
//! The protobuf form (`logproto.PushRequest`) carries each stream's labels as one string in
//! Prometheus syntax (`{job="varlogs", host="web-1"}`), parsed here.

use prost::Message;
use serde::Deserialize;

use seclog_model::Timestamp;

/// One log line of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LokiEntry {
    /// The stream's labels, in order.
    pub labels: Vec<(String, String)>,
    /// The entry's time.
    pub time: Timestamp,
    /// The line.
    pub line: String,
    /// Structured metadata of the entry.
    pub metadata: Vec<(String, String)>,
}

#[derive(Clone, PartialEq, Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, Message)]
struct StreamAdapter {
    #[prost(string, tag = "1")]
    labels: String,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    hash: u64,
}

#[derive(Clone, PartialEq, Message)]
struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<ProtoTimestamp>,
    #[prost(string, tag = "2")]
    line: String,
    #[prost(message, repeated, tag = "3")]
    structured_metadata: Vec<LabelPair>,
}

#[derive(Clone, PartialEq, Message)]
struct LabelPair {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Message)]
struct ProtoTimestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[derive(Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: serde_json::Map<String, serde_json::Value>,
    values: Vec<Vec<serde_json::Value>>,
}

/// Decodes a JSON push body.
///
/// # Errors
///
/// The body is not a push request, or an entry is malformed (Loki refuses the whole push then
/// too): the reason.
pub fn decode_loki_json(body: &[u8]) -> Result<Vec<LokiEntry>, String> {
    let push: JsonPush = serde_json::from_slice(body)
        .map_err(|error| format!("not a Loki push request: {error}"))?;
    let mut entries = Vec::new();
    for (stream_index, stream) in push.streams.into_iter().enumerate() {
        let labels: Vec<(String, String)> = stream
            .stream
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                (name, value)
            })
            .collect();
        for (value_index, value) in stream.values.into_iter().enumerate() {
            let at = || format!("stream {stream_index}, value {value_index}");
            let mut parts = value.into_iter();
            let time = match parts.next() {
                Some(serde_json::Value::String(nanos)) => nanos
                    .parse::<i64>()
                    .map_err(|_| format!("{}: the time is not integer nanoseconds", at()))?,
                _ => {
                    return Err(format!(
                        "{}: the time must be a string of nanoseconds",
                        at()
                    ));
                }
            };
            let Some(serde_json::Value::String(line)) = parts.next() else {
                return Err(format!("{}: the line must be a string", at()));
            };
            let metadata = match parts.next() {
                Some(serde_json::Value::Object(map)) => map
                    .into_iter()
                    .map(|(name, value)| match value {
                        serde_json::Value::String(text) => (name, text),
                        other => (name, other.to_string()),
                    })
                    .collect(),
                None => Vec::new(),
                Some(_) => return Err(format!("{}: structured metadata must be an object", at())),
            };
            entries.push(LokiEntry {
                labels: labels.clone(),
                time: Timestamp::from_unix_nanos(time),
                line,
                metadata,
            });
        }
    }
    check_names(&entries)?;
    Ok(entries)
}

/// Whether `name` is a label name: letters, digits, `_` and `.` (what [`parse_labels`] reads;
/// Loki itself refuses names outside Prometheus' `[a-zA-Z_][a-zA-Z0-9_]*`). Names seclog gives
/// its own attributes (`@ocsf`) are not among them.
fn label_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
}

/// Refuses the push if a label or structured metadata name is not a label name.
fn check_names(entries: &[LokiEntry]) -> Result<(), String> {
    for entry in entries {
        if let Some((name, _)) = entry
            .labels
            .iter()
            .chain(&entry.metadata)
            .find(|(name, _)| !label_name(name))
        {
            return Err(format!(
                "{name:?} is not a valid label name (letters, digits, _ and . only)"
            ));
        }
    }
    Ok(())
}

/// Decodes a snappy-compressed protobuf push body.
///
/// # Errors
///
/// Not snappy, not a `PushRequest`, or labels that do not parse: the reason.
pub fn decode_loki_protobuf(body: &[u8], max_len: usize) -> Result<Vec<LokiEntry>, String> {
    let length = snap::raw::decompress_len(body)
        .map_err(|error| format!("not snappy-compressed: {error}"))?;
    if length > max_len {
        return Err(format!("the push expands beyond {max_len} bytes"));
    }
    let plain = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|error| format!("not snappy-compressed: {error}"))?;
    let push = PushRequest::decode(plain.as_slice())
        .map_err(|error| format!("not a Loki PushRequest: {error}"))?;
    let mut entries = Vec::new();
    for stream in push.streams {
        let labels = parse_labels(&stream.labels)?;
        for entry in stream.entries {
            let time = entry.timestamp.map_or(0, |time| {
                time.seconds
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(time.nanos))
            });
            entries.push(LokiEntry {
                labels: labels.clone(),
                time: Timestamp::from_unix_nanos(time),
                line: entry.line,
                metadata: entry
                    .structured_metadata
                    .into_iter()
                    .map(|pair| (pair.name, pair.value))
                    .collect(),
            });
        }
    }
    check_names(&entries)?;
    Ok(entries)
}

/// Parses Prometheus label syntax: `{name="value", other="with \"quotes\""}`.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let fail = || format!("labels {text:?} are not in the form {{name=\"value\", ...}}");
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or_else(fail)?;
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            return Ok(labels);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| c.is_alphanumeric() || *c == '_' || *c == '.') {
            name.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if name.is_empty() || chars.next() != Some('=') {
            return Err(fail());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('"') {
            return Err(fail());
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => return Err(fail()),
                },
                Some(other) => value.push(other),
                None => return Err(fail()),
            }
        }
        labels.push((name, value));
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn names_seclog_reserves_are_refused() {
        let body = br#"{"streams":[{"stream":{"@ocsf":"x","job":"app"},"values":[["1","{}"]]}]}"#;
        assert!(
            decode_loki_json(body)
                .expect_err("refused")
                .contains("@ocsf")
        );
        let body = br#"{"streams":[{"stream":{"job":"app"},"values":[["1","l",{"@ocsf":"x"}]]}]}"#;
        assert!(decode_loki_json(body).is_err());
        let body = br#"{"streams":[{"stream":{"job":"app","k8s.pod":"p"},"values":[["1","l"]]}]}"#;
        assert!(decode_loki_json(body).is_ok());
    }

    #[test]
    fn json_pushes() {
        let body = br#"{"streams":[{"stream":{"job":"varlogs","host":"web-1"},"values":[["1764237600000000001","first"],["1764237600000000002","second",{"trace_id":"abc"}]]}]}"#;
        let entries = decode_loki_json(body).expect("decoded");
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].labels[0],
            ("job".to_string(), "varlogs".to_string())
        );
        assert_eq!(entries[0].time.unix_nanos(), 1_764_237_600_000_000_001);
        assert_eq!(
            entries[1].metadata,
            [("trace_id".to_string(), "abc".to_string())]
        );
        assert!(decode_loki_json(br#"{"streams":[{"stream":{},"values":[[1,"x"]]}]}"#).is_err());
    }

    #[test]
    fn protobuf_pushes_round_trip() {
        let push = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="varlogs", msg="say \"hi\""}"#.into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(ProtoTimestamp {
                        seconds: 1_764_237_600,
                        nanos: 5,
                    }),
                    line: "hello".into(),
                    structured_metadata: vec![LabelPair {
                        name: "pod".into(),
                        value: "p-1".into(),
                    }],
                }],
                hash: 0,
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&push.encode_to_vec())
            .expect("snappy");
        let entries = decode_loki_protobuf(&body, 1 << 20).expect("decoded");
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].labels,
            [
                ("job".to_string(), "varlogs".to_string()),
                ("msg".to_string(), "say \"hi\"".to_string())
            ]
        );
        assert_eq!(entries[0].time.unix_nanos(), 1_764_237_600_000_000_005);
        assert_eq!(entries[0].metadata[0].1, "p-1");
        assert!(decode_loki_protobuf(b"garbage", 1 << 20).is_err());
    }

    #[test]
    fn label_syntax() {
        assert_eq!(parse_labels("{}").expect("empty"), []);
        assert!(parse_labels("job=x").is_err());
        assert!(parse_labels("{job=x}").is_err());
        assert!(parse_labels("{job=\"x}").is_err());
    }
}
