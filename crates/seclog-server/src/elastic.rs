//! The Elasticsearch endpoints log shippers use: `GET /` (product and version), and
//! `POST|PUT /_bulk` and `/{index}/_bulk` (Filebeat, Logstash, Fluent Bit, Vector, the
//! official clients' bulk helpers).
//!
//! Every reply carries `X-Elastic-Product: Elasticsearch` (clients refuse servers without it)
//! and errors have Elasticsearch's shape. The index of each action (from the action line, else
//! the URL) is the group its source goes to. Credentials map onto seclog tokens: `ApiKey`
//! (base64 of `id:token`, or of the token alone), basic auth with the token as the password,
//! or `Bearer`.

// The error of these helpers is the HTTP reply itself, built once per request.
#![allow(clippy::result_large_err)]

use std::time::Instant;

use axum::extract::{Extension, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seclog_formats::bulk::{BulkAction, decode_bulk};
use seclog_journal::{Record, RecordKind};
use seclog_meta::TokenInfo;
use seclog_model::{GroupName, Timestamp};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Caller, Denial};
use crate::committer::{GroupBatch, SubmitError};
use crate::ingest::{Encoding, content_encoding, decompress_body, read_body};
use crate::metrics::ListenerCounters;
use crate::protocol::{Batches, dead_letter};

/// The Elasticsearch version reported: what current clients (8.x and 9.x) accept.
const VERSION: &str = "9.1.0";

/// An error reply in Elasticsearch's shape.
fn es_error(status: StatusCode, kind: &str, reason: impl Into<String>) -> Response {
    let reason = reason.into();
    let body = json!({
        "error": {
            "root_cause": [{ "type": kind, "reason": reason }],
            "type": kind,
            "reason": reason,
        },
        "status": status.as_u16(),
    });
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("ApiKey, Basic realm=\"seclog\""),
        );
    }
    response
}

/// Adds the product header to a reply.
pub(crate) fn with_product(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// A refused request, in Elasticsearch's shape.
pub(crate) fn denial(denial: Denial) -> Response {
    with_product(match denial {
        Denial::Missing | Denial::Invalid => es_error(
            StatusCode::UNAUTHORIZED,
            "security_exception",
            "missing or unknown credentials: use an API key, basic auth or a bearer token holding a seclog token",
        ),
        Denial::Forbidden => es_error(
            StatusCode::FORBIDDEN,
            "security_exception",
            "this token may not do this",
        ),
        Denial::Throttled(seconds) => {
            let mut response = es_error(
                StatusCode::TOO_MANY_REQUESTS,
                "security_exception",
                "too many failed authentications from this address; retry later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        Denial::Unavailable => es_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "authentication is unavailable",
        ),
    })
}

/// `GET /` and `HEAD /`: who this is, as clients check on connect.
pub(crate) async fn info() -> Response {
    with_product(
        axum::Json(json!({
            "name": "seclog",
            "cluster_name": "seclog",
            "cluster_uuid": "seclog",
            "version": {
                "number": VERSION,
                "build_flavor": "default",
                "build_type": "seclog",
                "lucene_version": "10.2.2",
                "minimum_wire_compatibility_version": "8.19.0",
                "minimum_index_compatibility_version": "8.0.0",
            },
            "tagline": "You Know, for Search",
        }))
        .into_response(),
    )
}

/// `POST|PUT /_bulk` and `/{index}/_bulk`.
pub(crate) async fn bulk(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    with_product(match bulk_inner(state, caller.token, request).await {
        Ok(response) | Err(response) => response,
    })
}

async fn bulk_inner(
    state: AppState,
    token: TokenInfo,
    request: Request,
) -> Result<Response, Response> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let url_index = parts
        .uri
        .path()
        .strip_suffix("/_bulk")
        .map(|prefix| prefix.trim_start_matches('/'))
        .filter(|index| !index.is_empty())
        .and_then(crate::ingest::percent_decode);
    let encoding = content_encoding(&parts.headers).map_err(|_| {
        es_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "Content-Encoding must be gzip, zstd or identity",
        )
    })?;
    let body = read_body(body, state.limits.max_body_bytes)
        .await
        .map_err(|error| {
            es_error(
                error.status(),
                "illegal_argument_exception",
                "the request body is too large or could not be read",
            )
        })?;
    let received = Timestamp::now();
    let peer = crate::ingest::peer_address(&parts.extensions);
    let source = format!("elasticsearch:{peer}");
    let limits = state.limits.clone();
    let compatible = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .and_then(|accept| accept.split("compatible-with=").nth(1))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .map(str::to_string);
    let slot = state.decode_slots.acquire().await.map_err(|_| {
        es_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "exception",
            "seclog is shutting down",
        )
    })?;
    let prepared = tokio::task::spawn_blocking(move || {
        prepare(
            &body,
            encoding,
            &limits,
            url_index.as_deref(),
            &token,
            received,
            &source,
        )
    })
    .await
    .map_err(|_| {
        es_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "bulk worker failed",
        )
    })?;
    drop(slot);
    let mut prepared = prepared?;
    let counters = state.metrics.listener("elasticsearch_bulk");
    let batches = std::mem::take(&mut prepared.batches);
    let assigned = match state.commit.submit(batches, state.submit_wait).await {
        Ok(assigned) => assigned,
        Err(SubmitError::Busy) => {
            let mut response = es_error(
                StatusCode::TOO_MANY_REQUESTS,
                "es_rejected_execution_exception",
                "the journal is busy; retry shortly",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Err(response);
        }
        Err(SubmitError::Closed) => {
            return Err(es_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "exception",
                "seclog is shutting down",
            ));
        }
        Err(SubmitError::Failed(reason)) => {
            tracing::error!(error = %reason, "bulk not committed");
            return Err(es_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "exception",
                "the journal cannot write; nothing was stored",
            ));
        }
    };
    let mut items = Vec::with_capacity(prepared.items.len());
    let mut errors = false;
    for item in prepared.items {
        let result = match item.outcome {
            Outcome::Stored { batch, offset } => {
                let seq = assigned
                    .get(batch)
                    .copied()
                    .flatten()
                    .map(|(first, _)| first + offset as u64);
                json!({
                    "_index": item.index,
                    "_id": item.id.or_else(|| seq.map(|seq| format!("{}-{seq}", item.index))),
                    "_version": 1,
                    "result": "created",
                    "_shards": { "total": 1, "successful": 1, "failed": 0 },
                    "_seq_no": seq,
                    "_primary_term": 1,
                    "status": 201,
                })
            }
            Outcome::Failed {
                status,
                kind,
                reason,
            } => {
                errors = true;
                json!({
                    "_index": item.index,
                    "_id": item.id,
                    "status": status,
                    "error": { "type": kind, "reason": reason },
                })
            }
        };
        items.push(json!({ item.action.name(): result }));
    }
    ListenerCounters::add(
        &counters.received,
        (prepared.accepted + prepared.rejected) as u64,
    );
    ListenerCounters::add(&counters.accepted, prepared.accepted as u64);
    ListenerCounters::add(&counters.rejected, prepared.rejected as u64);
    let mut response = axum::Json(json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": items,
    }))
    .into_response();
    if let Some(version) = compatible
        && let Ok(value) = HeaderValue::from_str(&format!(
            "application/vnd.elasticsearch+json;compatible-with={version}"
        ))
    {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Ok(response)
}

enum Outcome {
    Stored {
        batch: usize,
        offset: usize,
    },
    Failed {
        status: u16,
        kind: String,
        reason: String,
    },
}

struct PreparedItem {
    action: BulkAction,
    index: String,
    id: Option<String>,
    outcome: Outcome,
}

struct Prepared {
    batches: Vec<GroupBatch>,
    items: Vec<PreparedItem>,
    accepted: usize,
    rejected: usize,
}

fn prepare(
    body: &[u8],
    encoding: Encoding,
    limits: &crate::IngestLimits,
    url_index: Option<&str>,
    token: &TokenInfo,
    received: Timestamp,
    source: &str,
) -> Result<Prepared, Response> {
    let decompressed = decompress_body(encoding, body, limits.max_decompressed_bytes)
        .map_err(|reason| es_error(StatusCode::BAD_REQUEST, "parse_exception", reason))?;
    let plain = decompressed.as_deref().unwrap_or(body);
    let decoded = decode_bulk(plain);
    if decoded.is_empty() {
        return Err(es_error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
        ));
    }
    let mut prepared = Prepared {
        batches: Vec::new(),
        items: Vec::with_capacity(decoded.len()),
        accepted: 0,
        rejected: 0,
    };
    let mut batches = Batches::default();
    for item in decoded {
        let index = item
            .index
            .clone()
            .or_else(|| url_index.map(str::to_string))
            .unwrap_or_default();
        let failure = match (&item.error, &item.source) {
            (Some((kind, reason)), _) => Some((400, kind.to_string(), reason.clone())),
            (None, None) => Some((400, "parse_exception".into(), "no source".into())),
            (None, Some(_)) if index.is_empty() => Some((
                400,
                "action_request_validation_exception".into(),
                "no index: name one in the action or the URL".into(),
            )),
            (None, Some(_)) => match GroupName::parse(&index) {
                Err(error) => Some((
                    400,
                    "invalid_index_name_exception".into(),
                    format!("index {index:?} is not a valid seclog group: {error}"),
                )),
                Ok(group) if group.is_internal() => Some((
                    403,
                    "security_exception".into(),
                    "groups beginning with seclog/ are written by seclog only".into(),
                )),
                Ok(group) if !token.covers(group.as_str()) => Some((
                    403,
                    "security_exception".into(),
                    format!("this token may not write to {group}"),
                )),
                Ok(_) => None,
            },
        };
        let outcome = match (failure, item.source) {
            (None, Some(document)) => {
                let group = GroupName::parse(&index).map_err(|_| {
                    es_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "exception",
                        "group vanished",
                    )
                })?;
                let record = Record {
                    time: item.time.unwrap_or(received),
                    observed_time: received,
                    kind: RecordKind::Json,
                    source: source.to_string(),
                    attrs: Value::Object(
                        [("elasticsearch_id".to_string(), json!(item.id))]
                            .into_iter()
                            .filter(|(_, id)| !id.is_null())
                            .collect(),
                    )
                    .to_string()
                    .into_bytes(),
                    raw: document.to_vec(),
                };
                let (batch, offset) = batches.push(&group, record.encode());
                prepared.accepted += 1;
                Outcome::Stored { batch, offset }
            }
            (failure, _) => {
                let (status, kind, reason) =
                    failure.unwrap_or((400, "parse_exception".into(), "no source".into()));
                batches.push(
                    &GroupName::dead_letter(),
                    dead_letter(
                        item.raw,
                        &format!("bulk line {}, index {index:?}: {reason}", item.line),
                        "elasticsearch_bulk",
                        received,
                        source,
                    ),
                );
                prepared.rejected += 1;
                Outcome::Failed {
                    status,
                    kind,
                    reason,
                }
            }
        };
        prepared.items.push(PreparedItem {
            action: item.action,
            index,
            id: item.id,
            outcome,
        });
    }
    prepared.batches = batches.into_inner();
    Ok(prepared)
}
