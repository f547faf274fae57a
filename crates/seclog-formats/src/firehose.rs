//! Amazon Data Firehose HTTP endpoint delivery, and the CloudWatch Logs subscription payloads
//! Firehose carries.
//!
//! ```text
//! {"requestId": "ed4acda5-…", "timestamp": 1578090901599,
//!  "records": [{"data": "<base64>"}, …]}
//! ```
//!
//! A record's data is either the bytes a producer put (one event: a JSON object or text), or,
//! when a CloudWatch Logs subscription feeds the stream, a gzip-compressed JSON message:
//! `DATA_MESSAGE` with `logGroup`, `logStream` and `logEvents` (one event each), or a
//! `CONTROL_MESSAGE` (a connectivity check, ignored).

use std::io::Read;

use base64::Engine as _;
use serde::Deserialize;

use seclog_model::Timestamp;

/// Most bytes one record may expand to when decompressed.
const MAX_RECORD_BYTES: usize = 16 << 20;

/// A decoded delivery request.
#[derive(Debug, Clone, PartialEq)]
pub struct FirehoseRequest {
    /// `requestId`, echoed in the reply.
    pub request_id: String,
    /// What each record held, in order.
    pub records: Vec<FirehoseRecord>,
}

/// One record of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum FirehoseRecord {
    /// Data a producer put: one event.
    Data(Vec<u8>),
    /// A CloudWatch Logs subscription message: one event per log event.
    CloudWatch {
        /// The account that owns the log group.
        owner: String,
        /// `logGroup`.
        log_group: String,
        /// `logStream`.
        log_stream: String,
        /// The log events: CloudWatch's id, time and message.
        events: Vec<CloudWatchEvent>,
    },
    /// A CloudWatch Logs control message (ignored).
    Control,
    /// A record that could not be read: its bytes and why.
    Invalid {
        /// The record's data (decoded from base64 when possible).
        raw: Vec<u8>,
        /// Why.
        reason: String,
    },
}

/// One CloudWatch Logs event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchEvent {
    /// CloudWatch's event id.
    pub id: String,
    /// The event's time.
    pub time: Option<Timestamp>,
    /// The message as logged.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    request_id: String,
    #[serde(default)]
    records: Vec<RecordData>,
}

#[derive(Deserialize)]
struct RecordData {
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    message_type: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    log_group: String,
    #[serde(default)]
    log_stream: String,
    #[serde(default)]
    log_events: Vec<LogEvent>,
}

#[derive(Deserialize)]
struct LogEvent {
    #[serde(default)]
    id: String,
    timestamp: Option<i64>,
    message: String,
}

/// Decodes a delivery request body (already decompressed from its `Content-Encoding`).
///
/// # Errors
///
/// The body is not a delivery request (not JSON, or without `requestId`): the reason, for a
/// 400 reply. Bad records do not fail the request; they are [`FirehoseRecord::Invalid`].
pub fn decode_firehose(body: &[u8]) -> Result<FirehoseRequest, String> {
    let request: Request = serde_json::from_slice(body)
        .map_err(|error| format!("not a Firehose delivery request: {error}"))?;
    let records = request
        .records
        .into_iter()
        .map(|record| decode_record(&record.data))
        .collect();
    Ok(FirehoseRequest {
        request_id: request.request_id,
        records,
    })
}

fn decode_record(data: &str) -> FirehoseRecord {
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
        Ok(bytes) => bytes,
        Err(error) => {
            return FirehoseRecord::Invalid {
                raw: data.as_bytes().to_vec(),
                reason: format!("record data is not base64: {error}"),
            };
        }
    };
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return FirehoseRecord::Data(bytes);
    }
    let mut plain = Vec::new();
    let read = flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .take(MAX_RECORD_BYTES as u64 + 1)
        .read_to_end(&mut plain);
    if let Err(error) = read {
        return FirehoseRecord::Invalid {
            raw: bytes,
            reason: format!("record data is not valid gzip: {error}"),
        };
    }
    if plain.len() > MAX_RECORD_BYTES {
        return FirehoseRecord::Invalid {
            raw: bytes,
            reason: format!("record data expands beyond {MAX_RECORD_BYTES} bytes"),
        };
    }
    match serde_json::from_slice::<Subscription>(&plain) {
        Ok(message) if message.message_type == "CONTROL_MESSAGE" => FirehoseRecord::Control,
        Ok(message) if message.message_type == "DATA_MESSAGE" => FirehoseRecord::CloudWatch {
            owner: message.owner,
            log_group: message.log_group,
            log_stream: message.log_stream,
            events: message
                .log_events
                .into_iter()
                .map(|event| CloudWatchEvent {
                    id: event.id,
                    time: event
                        .timestamp
                        .and_then(|ms| ms.checked_mul(1_000_000))
                        .map(Timestamp::from_unix_nanos),
                    message: event.message,
                })
                .collect(),
        },
        // Gzip-compressed data that is not a subscription message is the producer's own.
        _ => FirehoseRecord::Data(plain),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn decodes_plain_records_and_cloudwatch_subscriptions() {
        let subscription = br#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/pay","logStream":"2026/11/27/[$LATEST]abc","subscriptionFilters":["all"],"logEvents":[{"id":"1","timestamp":1764237600000,"message":"START RequestId: 1"},{"id":"2","timestamp":1764237600500,"message":"{\"level\":\"error\"}"}]}"#;
        let control = br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1764237600000,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
        let body = format!(
            r#"{{"requestId":"r-1","timestamp":1764237601000,"records":[{{"data":"{}"}},{{"data":"{}"}},{{"data":"{}"}},{{"data":"%%%"}}]}}"#,
            b64(b"{\"plain\":true}"),
            b64(&gzip(subscription)),
            b64(&gzip(control)),
        );
        let request = decode_firehose(body.as_bytes()).expect("decoded");
        assert_eq!(request.request_id, "r-1");
        assert_eq!(
            request.records[0],
            FirehoseRecord::Data(b"{\"plain\":true}".to_vec())
        );
        let FirehoseRecord::CloudWatch {
            log_group,
            log_stream,
            events,
            owner,
        } = &request.records[1]
        else {
            panic!("a CloudWatch message: {:?}", request.records[1]);
        };
        assert_eq!(log_group, "/aws/lambda/pay");
        assert_eq!(log_stream, "2026/11/27/[$LATEST]abc");
        assert_eq!(owner, "123456789012");
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1].time.map(Timestamp::to_rfc3339).as_deref(),
            Some("2025-11-27T10:00:00.500000000Z")
        );
        assert_eq!(request.records[2], FirehoseRecord::Control);
        assert!(matches!(request.records[3], FirehoseRecord::Invalid { .. }));
        assert!(decode_firehose(b"{\"records\":[]}").is_err());
    }
}
