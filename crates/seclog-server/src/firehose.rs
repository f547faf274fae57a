//! `POST /api/v1/firehose`: Amazon Data Firehose HTTP endpoint delivery.
//!
//! Firehose sends `X-Amz-Firehose-Access-Key` (here: a seclog ingest token) and a JSON body of
//! base64 records, and retries until it gets `200 {"requestId", "timestamp"}`. Records from a
//! CloudWatch Logs subscription are unpacked into one event per log event, in the group
//! `cloudwatch/<log group>`; other records go to `firehose/<delivery stream>` (from
//! `X-Amz-Firehose-Source-Arn`), decoded like the ingest API's bodies (NDJSON, JSON or text).

// The error of these helpers is the HTTP reply itself, built once per request.
#![allow(clippy::result_large_err)]

use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seclog_formats::decode_ingest_body;
use seclog_formats::firehose::{FirehoseRecord, decode_firehose};
use seclog_meta::TokenInfo;
use seclog_model::{GroupName, Timestamp};
use serde_json::json;

use crate::AppState;
use crate::auth::{Caller, Denial};
use crate::committer::{GroupBatch, SubmitError};
use crate::ingest::{content_encoding, decompress_body, event_record, peer_address, read_body};
use crate::protocol::{Batches, dead_letter, group_named, line_record, writable};

fn now_ms() -> i64 {
    Timestamp::now().unix_nanos() / 1_000_000
}

fn failure(status: StatusCode, request_id: &str, message: &str) -> Response {
    let body = json!({
        "requestId": request_id,
        "timestamp": now_ms(),
        "errorMessage": message,
    });
    (status, axum::Json(body)).into_response()
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A refused delivery, in Firehose's error shape (echoing the request id).
pub(crate) fn denial(headers: &HeaderMap, denial: Denial) -> Response {
    let request_id = header_text(headers, "x-amz-firehose-request-id").unwrap_or_default();
    match denial {
        Denial::Missing => failure(
            StatusCode::UNAUTHORIZED,
            request_id,
            "X-Amz-Firehose-Access-Key is required (a seclog ingest token)",
        ),
        Denial::Invalid => failure(StatusCode::UNAUTHORIZED, request_id, "unknown access key"),
        Denial::Forbidden => failure(
            StatusCode::FORBIDDEN,
            request_id,
            "this access key may not ingest",
        ),
        Denial::Throttled(seconds) => {
            let mut response = failure(
                StatusCode::TOO_MANY_REQUESTS,
                request_id,
                "too many failed authentications from this address; retry later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        Denial::Unavailable => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            request_id,
            "authentication is unavailable",
        ),
    }
}

/// The group name for a CloudWatch log group (`/aws/lambda/pay` → `cloudwatch/aws/lambda/pay`).
pub(crate) fn cloudwatch_group(log_group: &str) -> GroupName {
    group_named("cloudwatch", log_group, "unknown")
}

/// The group for a delivery stream's own records.
fn stream_group(source_arn: Option<&str>) -> GroupName {
    let name = source_arn
        .and_then(|arn| arn.rsplit_once("deliverystream/"))
        .map_or("", |(_, name)| name);
    group_named("firehose", name, "default")
}

/// `POST /api/v1/firehose`.
pub(crate) async fn deliver(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let header_id = header_text(&parts.headers, "x-amz-firehose-request-id")
        .unwrap_or_default()
        .to_string();
    let token = caller.token;
    let Ok(encoding) = content_encoding(&parts.headers) else {
        return failure(
            StatusCode::BAD_REQUEST,
            &header_id,
            "Content-Encoding must be gzip, zstd or identity",
        );
    };
    let body = match read_body(body, state.limits.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => {
            return failure(
                error.status(),
                &header_id,
                "the body is too large or unreadable",
            );
        }
    };
    let received = Timestamp::now();
    let source = format!("firehose:{}", peer_address(&parts.extensions));
    let stream = stream_group(header_text(&parts.headers, "x-amz-firehose-source-arn"));
    let limits = state.limits.clone();
    let Ok(slot) = state.decode_slots.acquire().await else {
        return failure(StatusCode::SERVICE_UNAVAILABLE, &header_id, "shutting down");
    };
    let prepared = tokio::task::spawn_blocking(move || {
        let plain = decompress_body(encoding, &body, limits.max_decompressed_bytes)?;
        let plain = plain.as_deref().unwrap_or(&body);
        let request = decode_firehose(plain)?;
        Ok::<_, String>(prepare(request, &stream, &token, received, &source))
    })
    .await;
    drop(slot);
    let prepared = match prepared {
        Ok(Ok(Ok(prepared))) => prepared,
        Ok(Ok(Err(forbidden))) => {
            return failure(StatusCode::FORBIDDEN, &header_id, &forbidden);
        }
        Ok(Err(reason)) => return failure(StatusCode::BAD_REQUEST, &header_id, &reason),
        Err(_) => {
            return failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                &header_id,
                "worker failed",
            );
        }
    };
    let (request_id, batches, accepted, rejected) = prepared;
    if !batches.is_empty() {
        match state.commit.submit(batches, state.submit_wait).await {
            Ok(_) => {}
            Err(SubmitError::Busy) => {
                let mut response = failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &request_id,
                    "the journal is busy",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                return response;
            }
            Err(SubmitError::Closed | SubmitError::Failed(_)) => {
                return failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &request_id,
                    "the journal cannot write; nothing was stored",
                );
            }
        }
    }
    let counters = state.metrics.listener("firehose");
    counters.stored(accepted, rejected);
    axum::Json(json!({ "requestId": request_id, "timestamp": now_ms() })).into_response()
}

type Prepared = (String, Vec<GroupBatch>, u64, u64);

fn prepare(
    request: seclog_formats::firehose::FirehoseRequest,
    stream: &GroupName,
    token: &TokenInfo,
    received: Timestamp,
    source: &str,
) -> Result<Prepared, String> {
    let mut batches = Batches::default();
    let (mut accepted, mut rejected) = (0u64, 0u64);
    let dead = |raw: &[u8], reason: &str| dead_letter(raw, reason, "firehose", received, source);
    for record in request.records {
        match record {
            FirehoseRecord::Control => {}
            FirehoseRecord::Invalid { raw, reason } => {
                batches.push(&GroupName::dead_letter(), dead(&raw, &reason));
                rejected += 1;
            }
            FirehoseRecord::CloudWatch {
                owner,
                log_group,
                log_stream,
                events,
            } => {
                let group = cloudwatch_group(&log_group);
                writable(token, &group)?;
                for event in events {
                    let attrs = json!({
                        "logGroup": log_group,
                        "logStream": log_stream,
                        "owner": owner,
                        "id": event.id,
                    });
                    let time = event.time.unwrap_or(received);
                    let record = line_record(event.message, time, received, source, &attrs);
                    batches.push(&group, record);
                    accepted += 1;
                }
            }
            FirehoseRecord::Data(data) => {
                writable(token, stream)?;
                match decode_ingest_body(&data) {
                    Ok(decoded) => {
                        for event in &decoded.events {
                            batches.push(stream, event_record(event, received, source).encode());
                            accepted += 1;
                        }
                        for bad in decoded.rejected {
                            batches.push(&GroupName::dead_letter(), dead(bad.raw, &bad.reason));
                            rejected += 1;
                        }
                    }
                    Err(seclog_formats::BodyError::Empty) => {}
                    Err(error) => {
                        batches.push(&GroupName::dead_letter(), dead(&data, &error.to_string()));
                        rejected += 1;
                    }
                }
            }
        }
    }
    Ok((request.request_id, batches.into_inner(), accepted, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_from_log_groups_and_streams() {
        assert_eq!(
            cloudwatch_group("/aws/lambda/pay").as_str(),
            "cloudwatch/aws/lambda/pay"
        );
        assert_eq!(
            cloudwatch_group("API-Gateway-Execution-Logs_abc/prod").as_str(),
            "cloudwatch/API-Gateway-Execution-Logs_abc/prod"
        );
        assert_eq!(cloudwatch_group("a#b/..").as_str(), "cloudwatch/a_b/_");
        assert_eq!(
            stream_group(Some(
                "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs-to-seclog"
            ))
            .as_str(),
            "firehose/logs-to-seclog"
        );
        assert_eq!(stream_group(None).as_str(), "firehose/default");
    }
}
