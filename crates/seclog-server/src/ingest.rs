//! `POST /api/v1/ingest/{group}`: NDJSON, JSON arrays or text lines, optionally gzip or zstd,
//! acknowledged only once durable. Lines that cannot be parsed go, byte for byte and with the
//! reason, to `seclog/dead-letter`; the good lines of the same request are still accepted.

use std::io::Read;
use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Extension, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seclog_formats::{BodyError, EventKind, IngestEvent, decode_ingest_body};
use seclog_journal::{Record, RecordKind};
use seclog_model::{GroupName, Timestamp};
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::committer::{GroupBatch, SubmitError};
use crate::error::ApiError;

/// Body size limits.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    /// Largest request body as sent (compressed or not).
    pub max_body_bytes: usize,
    /// Largest body after decompression.
    pub max_decompressed_bytes: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_body_bytes: 32 << 20,
            max_decompressed_bytes: 256 << 20,
        }
    }
}

pub(crate) async fn ingest(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let token = caller.token;
    let group_text = parts
        .uri
        .path()
        .strip_prefix("/api/v1/ingest/")
        .unwrap_or_default();
    let group_text = percent_decode(group_text)
        .ok_or_else(|| ApiError::bad_request("invalid_group", "group name is not valid UTF-8"))?;
    let group = GroupName::parse(&group_text)
        .map_err(|error| ApiError::bad_request("invalid_group", error.to_string()))?;
    if !token.covers(group.as_str()) {
        return Err(ApiError::forbidden(format!(
            "this token may not write to group {group}"
        )));
    }
    if group.is_internal() {
        return Err(ApiError::forbidden(
            "groups beginning with seclog/ are written by seclog only",
        ));
    }
    let batch_id = BatchId::from_headers(&parts.headers)?;
    let encoding = content_encoding(&parts.headers)?;
    let body = read_body(body, state.limits.max_body_bytes).await?;
    let received_at = Timestamp::now();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string());
    let source = format!("http:{}", peer.as_deref().unwrap_or("unknown"));
    let limits = state.limits.clone();
    // Decompression and parsing hold up to a decompressed body and its records in memory: only a
    // few run at once, whatever the number of connections.
    let slot = state
        .decode_slots
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("seclog is shutting down", 5))?;
    let stamp = batch_id.as_ref().map(BatchId::attrs);
    let prepared = {
        let group = group.clone();
        tokio::task::spawn_blocking(move || {
            let origin = Origin {
                received_at,
                source: &source,
                stamp: stamp.as_ref(),
            };
            prepare(&group, encoding, &body, &limits, &origin)
        })
        .await
        .map_err(|_| ApiError::internal("ingest worker failed"))?
    };
    drop(slot);
    let (batches, outcome) = prepared;
    if let (Some(id), Outcome::Accepted { accepted, rejected }) = (&batch_id, &outcome) {
        // In a task of its own: a client that gives up while the batch is being committed must
        // not release the producer's claim before the commit has resolved (its retry would find
        // nothing durable yet and commit the batch a second time).
        let stored = {
            let (state, group, id) = (state.clone(), group.clone(), id.clone());
            let token_id = token.id.clone();
            tokio::spawn(async move {
                crate::producer::store_once(&state, &group, &token_id, &id, batches).await
            })
            .await
            .map_err(|_| ApiError::internal("ingest worker failed"))??
        };
        if !stored.duplicate {
            let (accepted, rejected) = (*accepted as u64, *rejected as u64);
            state
                .metrics
                .listener("http_ingest")
                .stored(accepted, rejected);
        }
        return Ok(axum::Json(json!({
            "accepted": accepted,
            "rejected": rejected,
            "first_seq": stored.range.map(|(first, _)| first),
            "last_seq": stored.range.map(|(_, last)| last),
            "duplicate": stored.duplicate,
            "last_batch": stored.last_batch,
        }))
        .into_response());
    }
    let assigned = commit(&state, batches, "ingest").await?;
    let range = assigned.first().copied().flatten();
    let counters = state.metrics.listener("http_ingest");
    match &outcome {
        Outcome::Accepted { accepted, rejected } => {
            let (accepted, rejected) = (*accepted as u64, *rejected as u64);
            counters.stored(accepted, rejected);
        }
        Outcome::Refused(_) => {
            counters.stored(0, 1);
        }
    }
    match outcome {
        Outcome::Accepted { accepted, rejected } => Ok(axum::Json(json!({
            "accepted": accepted,
            "rejected": rejected,
            "first_seq": range.map(|(first, _)| first),
            "last_seq": range.map(|(_, last)| last),
        }))
        .into_response()),
        Outcome::Refused(error) => Err(error),
    }
}

/// Commits `batches` and waits until they are durable; `what` names the work in the log.
pub(crate) async fn commit(
    state: &AppState,
    batches: Vec<GroupBatch>,
    what: &str,
) -> Result<crate::committer::Assigned, ApiError> {
    match state.commit.submit(batches, state.submit_wait).await {
        Ok(assigned) => Ok(assigned),
        Err(SubmitError::Busy) => Err(ApiError::unavailable(
            "the journal is busy; retry shortly",
            1,
        )),
        Err(SubmitError::Closed) => Err(ApiError::unavailable("seclog is shutting down", 5)),
        Err(SubmitError::Failed(reason)) => {
            tracing::error!(error = %reason, what, "events not committed");
            Err(ApiError::unavailable(
                "the journal cannot write; the events were not stored",
                30,
            ))
        }
    }
}

/// A producer's numbered batch (`Seclog-Producer` and `Seclog-Batch` headers): stored once
/// however often it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchId {
    /// The producer's stable name: 1-64 of `[A-Za-z0-9._:-]`.
    pub(crate) producer: String,
    /// The batch's number; a producer numbers its batches upwards.
    pub(crate) batch: u64,
}

impl BatchId {
    fn from_headers(headers: &HeaderMap) -> Result<Option<BatchId>, ApiError> {
        let text = |name: &str| {
            headers
                .get(name)
                .map(|value| value.to_str().map(str::trim).unwrap_or("\u{fffd}"))
        };
        let invalid = |reason: &str| ApiError::bad_request("invalid_batch_id", reason.to_string());
        match (text("seclog-producer"), text("seclog-batch")) {
            (None, None) => Ok(None),
            (Some(producer), Some(batch)) => {
                let valid_name = (1..=64).contains(&producer.len())
                    && producer
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(&byte));
                if !valid_name {
                    return Err(invalid(
                        "Seclog-Producer must be 1 to 64 letters, digits, '.', '_', ':' or '-'",
                    ));
                }
                let batch = batch.parse::<u64>().map_err(|_| {
                    invalid("Seclog-Batch must be a whole number from 0 to 18446744073709551615")
                })?;
                Ok(Some(BatchId {
                    producer: producer.to_string(),
                    batch,
                }))
            }
            _ => Err(invalid(
                "Seclog-Producer and Seclog-Batch go together: send both or neither",
            )),
        }
    }

    /// The attributes every record of the batch carries.
    fn attrs(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut attrs = serde_json::Map::new();
        attrs.insert("producer".into(), self.producer.clone().into());
        attrs.insert("batch".into(), self.batch.into());
        attrs
    }

    /// Whether a stored record belongs to this batch.
    pub(crate) fn stamped(&self, record: &Record) -> bool {
        let Ok(attrs) = serde_json::from_slice::<serde_json::Value>(&record.attrs) else {
            return false;
        };
        attrs.get("producer").and_then(serde_json::Value::as_str) == Some(self.producer.as_str())
            && attrs.get("batch").and_then(serde_json::Value::as_u64) == Some(self.batch)
    }
}

/// Where the records of one request come from.
struct Origin<'a> {
    received_at: Timestamp,
    source: &'a str,
    /// Attributes every record carries (a producer's batch id).
    stamp: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

enum Outcome {
    Accepted {
        accepted: usize,
        rejected: usize,
    },
    /// The whole body was unusable; it was kept in the dead-letter group and this error is returned.
    Refused(ApiError),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

pub(crate) fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    match value
        .to_str()
        .map(|text| text.trim().to_ascii_lowercase())
        .as_deref()
    {
        Ok("" | "identity") => Ok(Encoding::Identity),
        Ok("gzip" | "x-gzip") => Ok(Encoding::Gzip),
        Ok("zstd") => Ok(Encoding::Zstd),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            "Content-Encoding must be gzip, zstd or identity",
        )),
    }
}

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::too_large(format!("request body exceeds {limit} bytes"))
        } else {
            ApiError::bad_request("body_read_failed", "could not read the request body")
        }
    })
}

/// Decompression that stops at `limit`: a bomb costs at most `limit + 1` bytes of memory.
fn decompress(
    encoding: Encoding,
    body: &[u8],
    limit: usize,
) -> Result<Option<Vec<u8>>, DecodeFailure> {
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => return Ok(None),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
        Encoding::Zstd => Box::new(
            zstd::stream::read::Decoder::new(body)
                .map_err(|error| DecodeFailure::Invalid(error.to_string()))?,
        ),
    };
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| {
            DecodeFailure::Invalid(format!("{encoding:?} stream is invalid: {error}"))
        })?;
    if out.len() > limit {
        return Err(DecodeFailure::TooLarge);
    }
    Ok(Some(out))
}

/// Decompresses a body for another protocol's handler; the error is a reason for the client.
pub(crate) fn decompress_body(
    encoding: Encoding,
    body: &[u8],
    limit: usize,
) -> Result<Option<Vec<u8>>, String> {
    decompress(encoding, body, limit).map_err(|failure| match failure {
        DecodeFailure::Invalid(reason) => reason,
        DecodeFailure::TooLarge => format!("decompressed body exceeds {limit} bytes"),
    })
}

/// The client's address as recorded in `@logStream` (`unknown` without connection info).
pub(crate) fn peer_address(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |info| info.0.ip().to_string())
}

enum DecodeFailure {
    Invalid(String),
    TooLarge,
}

pub(crate) fn dead_letter(
    raw: &[u8],
    reason: &str,
    group: &GroupName,
    line: Option<usize>,
    received_at: Timestamp,
    source: &str,
) -> Vec<u8> {
    let attrs = dead_letter_attrs(reason, group, line);
    dead_record(raw, attrs, received_at, source).encode()
}

fn dead_letter_attrs(
    reason: &str,
    group: &GroupName,
    line: Option<usize>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut attrs = serde_json::Map::new();
    attrs.insert("reason".into(), reason.into());
    attrs.insert("group".into(), group.as_str().into());
    attrs.insert("line".into(), line.into());
    attrs
}

fn dead_record(
    raw: &[u8],
    attrs: serde_json::Map<String, serde_json::Value>,
    received_at: Timestamp,
    source: &str,
) -> Record {
    Record {
        time: received_at,
        observed_time: received_at,
        kind: RecordKind::Invalid,
        source: source.to_string(),
        attrs: serde_json::Value::Object(attrs).to_string().into_bytes(),
        raw: raw.to_vec(),
    }
}

fn prepare(
    group: &GroupName,
    encoding: Encoding,
    body: &[u8],
    limits: &IngestLimits,
    origin: &Origin<'_>,
) -> (Vec<GroupBatch>, Outcome) {
    let Origin {
        received_at,
        source,
        stamp,
    } = *origin;
    let refuse = |error: ApiError, reason: &str| {
        let batch = GroupBatch {
            group: GroupName::dead_letter(),
            records: vec![dead_letter(body, reason, group, None, received_at, source)],
        };
        (vec![batch], Outcome::Refused(error))
    };
    let decompressed = match decompress(encoding, body, limits.max_decompressed_bytes) {
        Ok(decompressed) => decompressed,
        Err(DecodeFailure::TooLarge) => {
            // Nothing is stored: the body is refused before anything in it was read as events.
            let error = ApiError::too_large(format!(
                "decompressed body exceeds {} bytes",
                limits.max_decompressed_bytes
            ));
            return (Vec::new(), Outcome::Refused(error));
        }
        Err(DecodeFailure::Invalid(reason)) => {
            return refuse(
                ApiError::bad_request("malformed_body", reason.clone()),
                &reason,
            );
        }
    };
    let plain = decompressed.as_deref().unwrap_or(body);
    let decoded = match decode_ingest_body(plain) {
        Ok(decoded) => decoded,
        Err(BodyError::Empty) => {
            return (
                Vec::new(),
                Outcome::Refused(ApiError::bad_request(
                    "empty_body",
                    "the body holds no events",
                )),
            );
        }
        Err(error) => {
            let reason = error.to_string();
            return refuse(
                ApiError::bad_request("malformed_body", reason.clone()),
                &reason,
            );
        }
    };
    let mut records = Vec::with_capacity(decoded.events.len());
    let stamp_bytes = stamp.map(|attrs| serde_json::Value::Object(attrs.clone()).to_string());
    for event in &decoded.events {
        let mut record = event_record(event, received_at, source);
        if let Some(stamp) = &stamp_bytes {
            record.attrs = stamp.clone().into_bytes();
        }
        records.push(record.encode());
    }
    let dead: Vec<Vec<u8>> = decoded
        .rejected
        .iter()
        .map(|rejected| {
            let mut attrs = dead_letter_attrs(&rejected.reason, group, Some(rejected.line));
            if let Some(stamp) = stamp {
                attrs.extend(stamp.clone());
            }
            dead_record(rejected.raw, attrs, received_at, source).encode()
        })
        .collect();
    let outcome = Outcome::Accepted {
        accepted: records.len(),
        rejected: dead.len(),
    };
    let mut batches = vec![GroupBatch {
        group: group.clone(),
        records,
    }];
    if !dead.is_empty() {
        batches.push(GroupBatch {
            group: GroupName::dead_letter(),
            records: dead,
        });
    }
    (batches, outcome)
}

/// The record of an event of an ingest body.
pub(crate) fn event_record(event: &IngestEvent<'_>, received: Timestamp, source: &str) -> Record {
    Record {
        time: event.time.unwrap_or(received),
        observed_time: received,
        kind: match event.kind {
            EventKind::Json => RecordKind::Json,
            EventKind::Text => RecordKind::Text,
        },
        source: source.to_string(),
        attrs: Vec::new(),
        raw: event.raw.to_vec(),
    }
}

pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok());
            let value = hex.and_then(|pair| u8::from_str_radix(pair, 16).ok())?;
            out.push(value);
            index += 3;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}
