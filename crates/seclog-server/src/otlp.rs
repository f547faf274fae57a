//! OTLP/HTTP logs: `POST /v1/logs`, protobuf (`application/x-protobuf`) or JSON
//! (`application/json`), optionally gzip, answered in the request's encoding with an
//! `ExportLogsServiceResponse` (and `partialSuccess` when records were refused) or a
//! `google.rpc.Status`, as the OTLP specification asks.
//!
//! `Authorization: Bearer <seclog ingest token>` (the exporters' `headers` option). The group
//! of a record is `otlp/<service.name>` of its resource (`otlp/unknown_service` without one).

// The error of these helpers is the HTTP reply itself, built once per request.
#![allow(clippy::result_large_err)]

use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use seclog_formats::otlp::{OtlpLog, decode_otlp_json, decode_otlp_protobuf};
use seclog_journal::{Record, RecordKind};
use seclog_meta::TokenInfo;
use seclog_model::{GroupName, Timestamp};
use serde_json::json;

use crate::AppState;
use crate::auth::{Caller, Denial};
use crate::committer::{GroupBatch, SubmitError};
use crate::ingest::{content_encoding, decompress_body, peer_address, read_body};
use crate::protocol::{Batches, group_named};

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// `ExportLogsPartialSuccess`.
#[derive(Clone, PartialEq, Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected_log_records: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// `ExportLogsServiceResponse`.
#[derive(Clone, PartialEq, Message)]
struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

/// gRPC status codes used in replies.
const INVALID_ARGUMENT: i32 = 3;
const PERMISSION_DENIED: i32 = 7;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

fn status(protobuf: bool, http: StatusCode, code: i32, message: &str) -> Response {
    let mut response = if protobuf {
        let body = RpcStatus {
            code,
            message: message.to_string(),
        }
        .encode_to_vec();
        (
            http,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            body,
        )
            .into_response()
    } else {
        (
            http,
            axum::Json(json!({ "code": code, "message": message })),
        )
            .into_response()
    };
    if matches!(
        http,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn success(protobuf: bool, rejected: i64, message: &str) -> Response {
    let partial = (rejected > 0).then(|| PartialSuccess {
        rejected_log_records: rejected,
        error_message: message.to_string(),
    });
    if protobuf {
        let body = ExportResponse {
            partial_success: partial,
        }
        .encode_to_vec();
        ([(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
    } else {
        let body = match partial {
            Some(partial) => json!({
                "partialSuccess": {
                    "rejectedLogRecords": partial.rejected_log_records.to_string(),
                    "errorMessage": partial.error_message,
                }
            }),
            None => json!({}),
        };
        axum::Json(body).into_response()
    }
}

/// A refused request, as a `google.rpc.Status` in the request's encoding.
pub(crate) fn denial(headers: &HeaderMap, denial: Denial) -> Response {
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("application/x-protobuf")
        });
    match denial {
        Denial::Missing | Denial::Invalid => status(
            protobuf,
            StatusCode::UNAUTHORIZED,
            UNAUTHENTICATED,
            "Authorization: Bearer <seclog ingest token> is required",
        ),
        Denial::Forbidden => status(
            protobuf,
            StatusCode::FORBIDDEN,
            PERMISSION_DENIED,
            "this token may not ingest",
        ),
        Denial::Throttled(seconds) => {
            let mut response = status(
                protobuf,
                StatusCode::TOO_MANY_REQUESTS,
                RESOURCE_EXHAUSTED,
                "too many failed authentications from this address; retry later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        Denial::Unavailable => status(
            protobuf,
            StatusCode::SERVICE_UNAVAILABLE,
            UNAVAILABLE,
            "authentication is unavailable",
        ),
    }
}

/// The group of a service.
fn group_for(service: Option<&str>) -> GroupName {
    group_named("otlp", service.unwrap_or_default(), "unknown_service")
}

/// `POST /v1/logs`.
pub(crate) async fn logs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let protobuf = content_type.starts_with("application/x-protobuf");
    if !protobuf && !content_type.starts_with("application/json") {
        return status(
            false,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            INVALID_ARGUMENT,
            "Content-Type must be application/x-protobuf or application/json",
        );
    }
    let token = caller.token;
    let Ok(encoding) = content_encoding(&parts.headers) else {
        return status(
            protobuf,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            INVALID_ARGUMENT,
            "Content-Encoding must be gzip, zstd or identity",
        );
    };
    let body = match read_body(body, state.limits.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => {
            return status(
                protobuf,
                error.status(),
                RESOURCE_EXHAUSTED,
                "the body is too large or unreadable",
            );
        }
    };
    let received = Timestamp::now();
    let source = format!("otlp:{}", peer_address(&parts.extensions));
    let limits = state.limits.clone();
    let Ok(slot) = state.decode_slots.acquire().await else {
        return status(
            protobuf,
            StatusCode::SERVICE_UNAVAILABLE,
            UNAVAILABLE,
            "shutting down",
        );
    };
    let prepared = tokio::task::spawn_blocking(move || {
        let decoded =
            decompress_body(encoding, &body, limits.max_decompressed_bytes).and_then(|plain| {
                let plain = plain.as_deref().unwrap_or(&body);
                if protobuf {
                    decode_otlp_protobuf(plain)
                } else {
                    decode_otlp_json(plain)
                }
            });
        match decoded {
            Ok(logs) => Ok(prepare(logs, &token, received, &source)),
            Err(reason) => Err((
                crate::protocol::dead_letter_batch(&body, &reason, "otlp", received, &source),
                reason,
            )),
        }
    })
    .await;
    drop(slot);
    let counters = state.metrics.listener("otlp");
    let (batches, reply, accepted, rejected) = match prepared {
        Ok(Ok((batches, accepted, refused))) => {
            let reply = success(
                protobuf,
                refused,
                "some services are outside the groups this token may write",
            );
            (batches, reply, accepted, 0)
        }
        Ok(Err((dead, reason))) => (
            vec![dead],
            status(protobuf, StatusCode::BAD_REQUEST, INVALID_ARGUMENT, &reason),
            0,
            1,
        ),
        Err(_) => {
            return status(
                protobuf,
                StatusCode::INTERNAL_SERVER_ERROR,
                UNAVAILABLE,
                "worker failed",
            );
        }
    };
    if !batches.is_empty() {
        match state.commit.submit(batches, state.submit_wait).await {
            Ok(_) => {}
            Err(SubmitError::Busy) => {
                return status(
                    protobuf,
                    StatusCode::SERVICE_UNAVAILABLE,
                    UNAVAILABLE,
                    "the journal is busy; retry",
                );
            }
            Err(SubmitError::Closed | SubmitError::Failed(_)) => {
                return status(
                    protobuf,
                    StatusCode::SERVICE_UNAVAILABLE,
                    UNAVAILABLE,
                    "the journal cannot write; nothing was stored",
                );
            }
        }
    }
    counters.stored(accepted, rejected);
    reply
}

fn prepare(
    logs: Vec<OtlpLog>,
    token: &TokenInfo,
    received: Timestamp,
    source: &str,
) -> (Vec<GroupBatch>, u64, i64) {
    let mut batches = Batches::default();
    let (mut accepted, mut refused) = (0u64, 0i64);
    for log in logs {
        let group = group_for(log.service.as_deref());
        if !token.covers(group.as_str()) {
            refused += 1;
            continue;
        }
        let record = Record {
            time: log.time.unwrap_or(received),
            observed_time: received,
            kind: RecordKind::Json,
            source: source.to_string(),
            attrs: log.context.to_string().into_bytes(),
            raw: log.record.to_string().into_bytes(),
        };
        batches.push(&group, record.encode());
        accepted += 1;
    }
    (batches.into_inner(), accepted, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_the_service_name() {
        assert_eq!(group_for(Some("checkout")).as_str(), "otlp/checkout");
        assert_eq!(
            group_for(Some("my service/v2")).as_str(),
            "otlp/my_service/v2"
        );
        assert_eq!(group_for(None).as_str(), "otlp/unknown_service");
    }
}
