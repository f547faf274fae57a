//! Loki push: `POST /loki/api/v1/push` with JSON (optionally gzip) or snappy-compressed
//! protobuf, answered `204 No Content` once durable, as Loki does.
//!
//! Credentials: basic auth with a seclog ingest token as the password (what Promtail's and the
//! clients' `basic_auth` send), or `Bearer`. The group of a stream is `loki/<job>` (else its
//! `service_name`, `app` or `application` label, else `loki/default`). The line is `@message`;
//! the stream's labels and the entry's structured metadata are fields.

// The error of these helpers is the HTTP reply itself, built once per request.
#![allow(clippy::result_large_err)]

use axum::extract::{Extension, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seclog_formats::loki::{LokiEntry, decode_loki_json, decode_loki_protobuf};
use seclog_meta::TokenInfo;
use seclog_model::{GroupName, Timestamp};
use serde_json::json;

use crate::AppState;
use crate::auth::{Caller, Denial};
use crate::committer::{GroupBatch, SubmitError};
use crate::ingest::{content_encoding, decompress_body, peer_address, read_body};
use crate::protocol::{Batches, group_named, line_record, writable};

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", message.into()),
    )
        .into_response()
}

/// A refused request, as Loki's plain-text errors.
pub(crate) fn denial(denial: Denial) -> Response {
    match denial {
        Denial::Missing | Denial::Invalid => {
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                "unauthorized: basic auth with a seclog token as the password, or a bearer token",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"seclog\""),
            );
            response
        }
        Denial::Forbidden => text(StatusCode::FORBIDDEN, "this token may not ingest"),
        Denial::Throttled(seconds) => {
            let mut response = text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed authentications from this address; retry later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        Denial::Unavailable => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "authentication is unavailable",
        ),
    }
}

/// The group of a stream.
fn group_for(labels: &[(String, String)]) -> GroupName {
    let pick = ["job", "service_name", "app", "application"]
        .iter()
        .find_map(|wanted| {
            labels
                .iter()
                .find(|(name, value)| name == wanted && !value.is_empty())
                .map(|(_, value)| value.as_str())
        })
        .unwrap_or("default");
    group_named("loki", pick, "default")
}

/// `POST /loki/api/v1/push`.
pub(crate) async fn push(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let token = caller.token;
    let protobuf = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-protobuf"));
    let Ok(encoding) = content_encoding(&parts.headers) else {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Encoding",
        );
    };
    let body = match read_body(body, state.limits.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => return text(error.status(), "the body is too large or unreadable"),
    };
    let received = Timestamp::now();
    let source = format!("loki:{}", peer_address(&parts.extensions));
    let limits = state.limits.clone();
    let Ok(slot) = state.decode_slots.acquire().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let prepared = tokio::task::spawn_blocking(move || {
        let decoded =
            decompress_body(encoding, &body, limits.max_decompressed_bytes).and_then(|plain| {
                let plain = plain.as_deref().unwrap_or(&body);
                if protobuf {
                    decode_loki_protobuf(plain, limits.max_decompressed_bytes)
                } else {
                    decode_loki_json(plain)
                }
            });
        match decoded {
            Ok(entries) => prepare(entries, &token, received, &source),
            Err(reason) => Err((
                vec![dead_letter(&body, &reason, received, &source)],
                text(StatusCode::BAD_REQUEST, reason),
            )),
        }
    })
    .await;
    drop(slot);
    let counters = state.metrics.listener("loki_push");
    let (batches, response, accepted, rejected) = match prepared {
        Ok(Ok((batches, accepted))) => {
            (batches, StatusCode::NO_CONTENT.into_response(), accepted, 0)
        }
        Ok(Err((batches, response))) => {
            let rejected = batches.iter().map(|batch| batch.records.len() as u64).sum();
            (batches, response, 0, rejected)
        }
        Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "push worker failed"),
    };
    if !batches.is_empty() {
        match state.commit.submit(batches, state.submit_wait).await {
            Ok(_) => {}
            Err(SubmitError::Busy) => {
                let mut response =
                    text(StatusCode::TOO_MANY_REQUESTS, "the journal is busy; retry");
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            Err(SubmitError::Closed | SubmitError::Failed(_)) => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the journal cannot write; nothing was stored",
                );
            }
        }
    }
    counters.stored(accepted, rejected);
    response
}

fn dead_letter(raw: &[u8], reason: &str, received: Timestamp, source: &str) -> GroupBatch {
    crate::protocol::dead_letter_batch(raw, reason, "loki_push", received, source)
}

type Refused = (Vec<GroupBatch>, Response);

fn prepare(
    entries: Vec<LokiEntry>,
    token: &TokenInfo,
    received: Timestamp,
    source: &str,
) -> Result<(Vec<GroupBatch>, u64), Refused> {
    let mut batches = Batches::default();
    let mut accepted = 0u64;
    for entry in entries {
        let group = group_for(&entry.labels);
        if let Err(reason) = writable(token, &group) {
            return Err((Vec::new(), text(StatusCode::FORBIDDEN, reason)));
        }
        let mut attrs = serde_json::Map::new();
        for (name, value) in entry.labels.iter().chain(entry.metadata.iter()) {
            attrs.insert(name.clone(), json!(value));
        }
        let time = if entry.time.unix_nanos() == 0 {
            received
        } else {
            entry.time
        };
        let record = line_record(
            entry.line,
            time,
            received,
            source,
            &serde_json::Value::Object(attrs),
        );
        batches.push(&group, record);
        accepted += 1;
    }
    Ok((batches.into_inner(), accepted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn groups_follow_the_job_label() {
        assert_eq!(
            group_for(&labels(&[("job", "varlogs")])).as_str(),
            "loki/varlogs"
        );
        assert_eq!(
            group_for(&labels(&[
                ("application", "my app"),
                ("service_name", "api")
            ]))
            .as_str(),
            "loki/api"
        );
        assert_eq!(
            group_for(&labels(&[("job", "ns/pod")])).as_str(),
            "loki/ns/pod"
        );
        assert_eq!(group_for(&[]).as_str(), "loki/default");
    }
}
