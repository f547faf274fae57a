//! Reading stored events in order (`seclog cat --server`, `seclog tail --server`) and proving
//! one (`seclog proof --server`). Each read is recorded in `seclog/access` before it is
//! answered.

use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seclog_journal::{JournalError, proof};
use seclog_meta::Role;
use seclog_model::GroupName;
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::search::{may_read, record_access, search_state};

/// Events per answer when the request does not say.
const DEFAULT_LIMIT: usize = 1000;
/// Events per answer at most.
const MAX_LIMIT: usize = 10_000;
/// Longest wait for new events (`wait`).
const MAX_WAIT: Duration = Duration::from_secs(30);

struct Window {
    from: u64,
    limit: usize,
    wait: Duration,
}

fn window(query: &str) -> Result<Window, ApiError> {
    let mut window = Window {
        from: 0,
        limit: DEFAULT_LIMIT,
        wait: Duration::ZERO,
    };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = |what: &str| {
            value.parse::<u64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("{what} must be a whole number"),
                )
            })
        };
        match name {
            "from" => window.from = number("from")?,
            "limit" => {
                window.limit = usize::try_from(number("limit")?)
                    .unwrap_or(MAX_LIMIT)
                    .clamp(1, MAX_LIMIT);
            }
            "wait" => window.wait = Duration::from_secs(number("wait")?).min(MAX_WAIT),
            other => {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("unknown parameter {other:?} (from, limit, wait)"),
                ));
            }
        }
    }
    Ok(window)
}

/// `GET /api/v1/groups/{group}/events?from=SEQ&limit=N&wait=SECS`: events from `from` on, as
/// NDJSON (the views `seclog cat` prints); `X-Seclog-Next` is where to continue. With `wait`,
/// an answer that would be empty waits up to that many seconds for new events (tail).
pub(crate) async fn events(
    state: AppState,
    caller: Caller,
    group: GroupName,
    query: &str,
) -> Result<Response, ApiError> {
    let window = window(query)?;
    if !may_read(&caller.token, &group) {
        return Err(ApiError::forbidden(format!(
            "this token may not read {group}"
        )));
    }
    let Some((heads, reader)) = state.journal.clone() else {
        return Err(ApiError::internal("this server has no journal reader"));
    };
    if !heads.snapshot().contains_key(&group) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_group",
            format!("no group named {group}"),
        ));
    }
    let deadline = Instant::now() + window.wait;
    while heads.size(&group) <= window.from && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = heads.size(&group);
    let target = group.clone();
    let events = tokio::task::spawn_blocking(move || {
        reader.read(&target, window.from, window.limit, Some(end))
    })
    .await
    .map_err(|_| ApiError::internal("reading stopped unexpectedly"))?
    .map_err(|error| {
        tracing::error!(error = %error, group = %group, "reading events failed");
        ApiError::internal("reading the group failed; see the server log")
    })?;
    // Nothing readable up to the end (shredded or expired records): continue from the end,
    // so that a follower waits instead of asking again for the same range.
    let next = events
        .last()
        .map_or(end.max(window.from), |event| event.seq + 1);
    let entry = json!({
        "action": "cat",
        "groups": [group.as_str()],
        "from": window.from,
        "rows": events.len(),
        "next": next,
        "status": "ok",
    });
    record_access(&state, &caller, entry).await?;
    let mut body = Vec::new();
    for event in &events {
        // Writing JSON into a Vec cannot fail.
        if serde_json::to_writer(
            &mut body,
            &proof::event_view(&event.group, event.seq, &event.record),
        )
        .is_ok()
        {
            body.push(b'\n');
        }
    }
    let mut response = ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    response
        .headers_mut()
        .insert("x-seclog-next", HeaderValue::from(next));
    Ok(response)
}

/// `GET /api/v1/groups/{group}/events/{seq}/proof`: the proof bundle of one event. Readers and
/// admins covering the group get the full bundle; auditors get it sealed (the record's
/// commitment instead of the event), so proving never shows them log content.
pub(crate) async fn proof(
    state: AppState,
    caller: Caller,
    group: GroupName,
    seq: u64,
) -> Result<Response, ApiError> {
    let sealed = if may_read(&caller.token, &group) {
        false
    } else if caller.token.role == Role::Auditor {
        true
    } else {
        return Err(ApiError::forbidden(format!(
            "this token may not read {group}"
        )));
    };
    let layout = search_state(&state)?.layout.clone();
    let Some((_, reader)) = state.journal.clone() else {
        return Err(ApiError::internal("this server has no journal reader"));
    };
    let target = group.clone();
    let bundle =
        tokio::task::spawn_blocking(move || proof::make_proof_with(&layout, &reader, &target, seq))
            .await
            .map_err(|_| ApiError::internal("proving stopped unexpectedly"))?
            .map_err(|error| match error {
                JournalError::NotFound(reason) => {
                    ApiError::new(StatusCode::NOT_FOUND, "not_found", reason)
                }
                other => {
                    tracing::error!(error = %other, group = %group, seq, "making a proof failed");
                    ApiError::internal("the proof could not be made; see the server log")
                }
            })?;
    let body = if sealed {
        serde_json::to_value(bundle.sealed().map_err(ApiError::internal)?)
    } else {
        serde_json::to_value(&bundle)
    }
    .map_err(|_| ApiError::internal("the proof could not be encoded"))?;
    let entry = json!({
        "action": "proof",
        "groups": [group.as_str()],
        "seq": seq,
        "sealed": sealed,
        "status": "ok",
    });
    record_access(&state, &caller, entry).await?;
    Ok(axum::Json(body).into_response())
}
