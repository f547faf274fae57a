//! Splunk HTTP Event Collector: `POST /services/collector[/event][/1.0]`,
//! `POST /services/collector/raw[/1.0]` and `GET /services/collector/health`, with HEC's
//! replies (`{"text":"Success","code":0}` and its error codes).
//!
//! `Authorization: Splunk <seclog token>` (or basic auth with the token as the password). The
//! group of an event is its `index`, else the `index` query parameter, else
//! `hec/<sourcetype>`, else `hec/default`.

// The error of these helpers is the HTTP reply itself, built once per request.
#![allow(clippy::result_large_err)]

use axum::extract::{Extension, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seclog_formats::hec::decode_hec_events;
use seclog_journal::{Record, RecordKind};
use seclog_meta::TokenInfo;
use seclog_model::{GroupName, Timestamp};
use serde_json::json;

use crate::AppState;
use crate::auth::{Caller, Denial};
use crate::committer::{GroupBatch, SubmitError};
use crate::ingest::{content_encoding, decompress_body, peer_address, read_body};
use crate::protocol::Batches;

fn reply(status: StatusCode, code: u16, text: &str) -> Response {
    (status, axum::Json(json!({ "text": text, "code": code }))).into_response()
}

/// `GET /services/collector/health`.
pub(crate) async fn health() -> Response {
    reply(StatusCode::OK, 17, "HEC is healthy")
}

/// A refused request, with HEC's status codes.
pub(crate) fn denial(denial: Denial) -> Response {
    match denial {
        Denial::Missing => reply(StatusCode::UNAUTHORIZED, 2, "Token is required"),
        Denial::Invalid => reply(StatusCode::FORBIDDEN, 4, "Invalid token"),
        Denial::Forbidden => reply(StatusCode::FORBIDDEN, 1, "Token disabled"),
        Denial::Throttled(seconds) => {
            let mut response = reply(StatusCode::SERVICE_UNAVAILABLE, 9, "Server is busy");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        Denial::Unavailable => reply(StatusCode::SERVICE_UNAVAILABLE, 9, "Server is busy"),
    }
}

/// Query parameters HEC clients pass.
#[derive(Default)]
struct Params {
    index: Option<String>,
    sourcetype: Option<String>,
    source: Option<String>,
    host: Option<String>,
}

fn params(query: Option<&str>) -> Params {
    let mut params = Params::default();
    for pair in query.unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = crate::ingest::percent_decode(&value.replace('+', " "));
        match name {
            "index" => params.index = value,
            "sourcetype" => params.sourcetype = value,
            "source" => params.source = value,
            "host" => params.host = value,
            _ => {}
        }
    }
    params
}

fn group_for(index: Option<&str>, sourcetype: Option<&str>) -> Result<GroupName, String> {
    let name = match (index, sourcetype) {
        (Some(index), _) if !index.is_empty() => index.to_string(),
        (_, Some(sourcetype)) if !sourcetype.is_empty() => format!("hec/{sourcetype}"),
        _ => "hec/default".to_string(),
    };
    GroupName::parse(&name).map_err(|error| format!("{name:?}: {error}"))
}

/// `POST /services/collector/event` (and `/services/collector`).
pub(crate) async fn event(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    receive(state, caller.token, request, false).await
}

/// `POST /services/collector/raw`.
pub(crate) async fn raw(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    receive(state, caller.token, request, true).await
}

async fn receive(state: AppState, token: TokenInfo, request: Request, raw: bool) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(encoding) = content_encoding(&parts.headers) else {
        return reply(StatusCode::BAD_REQUEST, 6, "Invalid data format");
    };
    let body = match read_body(body, state.limits.max_body_bytes).await {
        Ok(body) => body,
        Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return reply(StatusCode::PAYLOAD_TOO_LARGE, 27, "Content too large");
        }
        Err(_) => return reply(StatusCode::BAD_REQUEST, 6, "Invalid data format"),
    };
    let received = Timestamp::now();
    let source = format!("hec:{}", peer_address(&parts.extensions));
    let params = params(parts.uri.query());
    let counters = state.metrics.listener("splunk_hec");
    let limits = state.limits.clone();
    let Ok(slot) = state.decode_slots.acquire().await else {
        return reply(StatusCode::SERVICE_UNAVAILABLE, 9, "Server is busy");
    };
    let prepared = tokio::task::spawn_blocking(move || {
        let plain = decompress_body(encoding, &body, limits.max_decompressed_bytes)?;
        let plain = plain.as_deref().unwrap_or(&body);
        Ok::<_, String>(if raw {
            prepare_raw(plain, &params, &token, received, &source)
        } else {
            prepare_events(plain, &params, &token, received, &source)
        })
    })
    .await;
    drop(slot);
    let (batches, result) = match prepared {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(reason)) => {
            tracing::debug!(reason, "HEC body not decompressed");
            return reply(StatusCode::BAD_REQUEST, 6, "Invalid data format");
        }
        Err(_) => return reply(StatusCode::SERVICE_UNAVAILABLE, 9, "Server is busy"),
    };
    let stored: u64 = batches
        .iter()
        .filter(|batch| !batch.group.is_internal())
        .map(|batch| batch.records.len() as u64)
        .sum();
    let dead = batches
        .iter()
        .filter(|batch| batch.group.is_internal())
        .map(|batch| batch.records.len() as u64)
        .sum::<u64>();
    match state.commit.submit(batches, state.submit_wait).await {
        Ok(_) => {}
        Err(SubmitError::Busy) => {
            let mut response = reply(StatusCode::SERVICE_UNAVAILABLE, 9, "Server is busy");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        Err(SubmitError::Closed | SubmitError::Failed(_)) => {
            return reply(StatusCode::SERVICE_UNAVAILABLE, 9, "Server is busy");
        }
    }
    counters.stored(stored, dead);
    result
}

fn dead_letter(raw: &[u8], reason: &str, received: Timestamp, source: &str) -> GroupBatch {
    crate::protocol::dead_letter_batch(raw, reason, "splunk_hec", received, source)
}

fn refuse_index(
    body: &[u8],
    reason: String,
    received: Timestamp,
    source: &str,
) -> (Vec<GroupBatch>, Response) {
    (
        vec![dead_letter(body, &reason, received, source)],
        reply(StatusCode::BAD_REQUEST, 7, "Incorrect index"),
    )
}

/// The group an event goes to, if the token may write it.
fn target(
    token: &TokenInfo,
    index: Option<&str>,
    sourcetype: Option<&str>,
) -> Result<GroupName, String> {
    let group = group_for(index, sourcetype)?;
    crate::protocol::writable(token, &group)?;
    Ok(group)
}

fn prepare_events(
    body: &[u8],
    params: &Params,
    token: &TokenInfo,
    received: Timestamp,
    source: &str,
) -> (Vec<GroupBatch>, Response) {
    let events = match decode_hec_events(body) {
        Ok(events) => events,
        Err(error) => {
            let mut response = (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({
                    "text": error.text,
                    "code": error.code,
                    "invalid-event-number": error.event_number,
                })),
            )
                .into_response();
            if error.code == 5 {
                response = reply(StatusCode::BAD_REQUEST, 5, "No data");
                return (Vec::new(), response);
            }
            return (
                vec![dead_letter(body, &error.reason, received, source)],
                response,
            );
        }
    };
    let mut batches = Batches::default();
    for event in &events {
        let group = match target(
            token,
            event.index.as_deref().or(params.index.as_deref()),
            event.sourcetype.as_deref().or(params.sourcetype.as_deref()),
        ) {
            Ok(group) => group,
            Err(reason) => return refuse_index(body, reason, received, source),
        };
        let record = Record {
            time: event.time.unwrap_or(received),
            observed_time: received,
            kind: RecordKind::Json,
            source: source.to_string(),
            attrs: Vec::new(),
            raw: event.raw.to_vec(),
        };
        batches.push(&group, record.encode());
    }
    (batches.into_inner(), reply(StatusCode::OK, 0, "Success"))
}

fn prepare_raw(
    body: &[u8],
    params: &Params,
    token: &TokenInfo,
    received: Timestamp,
    source: &str,
) -> (Vec<GroupBatch>, Response) {
    let group = match target(token, params.index.as_deref(), params.sourcetype.as_deref()) {
        Ok(group) => group,
        Err(reason) => return refuse_index(body, reason, received, source),
    };
    let mut attrs = serde_json::Map::new();
    for (name, value) in [
        ("sourcetype", &params.sourcetype),
        ("source", &params.source),
        ("host", &params.host),
    ] {
        if let Some(value) = value {
            attrs.insert(name.into(), json!(value));
        }
    }
    let attrs = serde_json::Value::Object(attrs).to_string().into_bytes();
    let mut records = Vec::new();
    let mut dead = Vec::new();
    for line in body.split(|byte| *byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        if std::str::from_utf8(line).is_err() {
            dead.push(line);
            continue;
        }
        records.push(
            Record {
                time: received,
                observed_time: received,
                kind: RecordKind::Text,
                source: source.to_string(),
                attrs: attrs.clone(),
                raw: line.to_vec(),
            }
            .encode(),
        );
    }
    if records.is_empty() && dead.is_empty() {
        return (Vec::new(), reply(StatusCode::BAD_REQUEST, 5, "No data"));
    }
    let mut batches = Vec::new();
    if !records.is_empty() {
        batches.push(GroupBatch { group, records });
    }
    for line in dead {
        batches.push(dead_letter(
            line,
            "a raw HEC line is not UTF-8",
            received,
            source,
        ));
    }
    (batches, reply(StatusCode::OK, 0, "Success"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_index_then_sourcetype() {
        assert_eq!(group_for(Some("web"), Some("x")).unwrap().as_str(), "web");
        assert_eq!(
            group_for(None, Some("access_combined")).unwrap().as_str(),
            "hec/access_combined"
        );
        assert_eq!(group_for(None, None).unwrap().as_str(), "hec/default");
        assert!(group_for(Some("no spaces"), None).is_err());
    }

    #[test]
    fn query_parameters_are_decoded() {
        let params = params(Some("sourcetype=my+type&index=app%2Fweb&channel=x"));
        assert_eq!(params.sourcetype.as_deref(), Some("my type"));
        assert_eq!(params.index.as_deref(), Some("app/web"));
    }
}
