//! Admin endpoints: tokens, retention, legal holds and the retention clock. Each action is
//! recorded in `seclog/access` before it is answered: retention, holds, the clock and
//! revocations are recorded before they are made; a new token is revoked again when its record
//! cannot be written (its secret is then never shown).

use std::sync::Arc;

use axum::extract::{Extension, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use seclog_meta::{MetaError, MetaStore, RetentionChange, RetentionMode, Role, TokenInfo};
use seclog_model::{GroupName, Timestamp};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, access};

/// Runs a metadata-store call off the async threads.
async fn meta_call<T: Send + 'static>(
    state: &AppState,
    call: impl FnOnce(&MetaStore) -> Result<T, MetaError> + Send + 'static,
) -> Result<T, ApiError> {
    let meta = Arc::clone(&state.meta);
    tokio::task::spawn_blocking(move || call(&meta))
        .await
        .map_err(|_| ApiError::internal("the metadata store call stopped"))?
        .map_err(|error| match error {
            MetaError::Invalid(reason) => ApiError::bad_request("invalid_request", reason),
            other => {
                tracing::error!(error = %other, "metadata store failed");
                ApiError::internal("the metadata store failed; see the server log")
            }
        })
}

async fn read_json<T: serde::de::DeserializeOwned>(
    request: Request,
    expected: &str,
) -> Result<T, ApiError> {
    let body = axum::body::to_bytes(request.into_body(), 16 * 1024)
        .await
        .map_err(|_| ApiError::too_large("an admin request is at most 16 KiB"))?;
    serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request("malformed_body", format!("expected {expected}: {error}"))
    })
}

fn describe(info: &TokenInfo) -> Json {
    let now = Timestamp::now().unix_seconds();
    json!({
        "id": info.id,
        "role": info.role.name(),
        "groups": info.groups,
        "created": rfc3339(info.created_unix),
        "expires": info.expires_unix.map(rfc3339),
        "expired": info.expires_unix.is_some_and(|at| at <= now),
    })
}

fn rfc3339(unix: i64) -> String {
    Timestamp::from_unix_nanos(unix.saturating_mul(1_000_000_000)).to_rfc3339()
}

/// Body of `POST /api/v1/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    role: String,
    groups: String,
    /// Lifetime such as `90d` or `12h` (none: until revoked).
    expires: Option<String>,
}

/// `POST /api/v1/tokens`: creates a token; the secret is in this answer only.
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let wanted: NewToken = read_json(
        request,
        r#"{"role": "ingest|reader|auditor|admin", "groups": PATTERN, "expires": "90d"}"#,
    )
    .await?;
    let role = Role::parse(&wanted.role)
        .map_err(|error| ApiError::bad_request("invalid_role", error.to_string()))?;
    let expires_unix = wanted
        .expires
        .as_deref()
        .map(|text| {
            seclog_model::parse_duration_secs(text)
                .map(|secs| Timestamp::now().unix_seconds().saturating_add(secs))
                .map_err(|reason| ApiError::bad_request("invalid_expiry", reason))
        })
        .transpose()?;
    let groups = wanted.groups.clone();
    let (secret, info) = meta_call(&state, move |meta| {
        meta.create_token(role, &groups, expires_unix)
    })
    .await?;
    let entry = json!({ "action": "token_create", "status": "ok", "target": describe(&info) });
    if let Err(error) = access::store(&state, entry, caller.actor()).await {
        let id = info.id.clone();
        if let Err(undo) = meta_call(&state, move |meta| meta.revoke_token(&id)).await {
            tracing::error!(error = %undo.message, token = %info.id, "revoking an unrecorded token failed");
        }
        return Err(error);
    }
    tracing::info!(token = %info.id, role = role.name(), groups = %info.groups, by = %caller.token.id, "token created");
    let mut body = describe(&info);
    body["token"] = json!(secret);
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `GET /api/v1/tokens`: every token's description, never a secret.
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let tokens = meta_call(&state, MetaStore::list_tokens).await?;
    let entry = json!({ "action": "token_list", "status": "ok", "rows": tokens.len() });
    access::store(&state, entry, caller.actor()).await?;
    Ok(
        axum::Json(json!({ "tokens": tokens.iter().map(describe).collect::<Vec<_>>() }))
            .into_response(),
    )
}

/// `DELETE /api/v1/tokens/{id}`: revokes a token (recorded first: a revocation is never
/// unrecorded).
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let entry = json!({ "action": "token_revoke", "status": "requested", "target": { "id": id } });
    access::store(&state, entry, caller.actor()).await?;
    let wanted = id.clone();
    match meta_call(&state, move |meta| meta.revoke_token(&wanted)).await? {
        Some(info) => {
            tracing::info!(token = %info.id, by = %caller.token.id, "token revoked");
            Ok(axum::Json(json!({ "revoked": describe(&info) })).into_response())
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_token",
            format!("no token has the id {id}"),
        )),
    }
}

/// Body of `PUT /api/v1/retention/{group}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionRequest {
    days: Option<u32>,
    mode: Option<String>,
    preset: Option<String>,
    /// Explicitly shorten a governance policy.
    #[serde(default)]
    shorten: bool,
}

fn retention_change(wanted: &RetentionRequest) -> Result<RetentionChange, ApiError> {
    let invalid = |error: MetaError| ApiError::bad_request("invalid_retention", error.to_string());
    match (&wanted.preset, wanted.days) {
        (Some(preset), None) if wanted.mode.is_none() => {
            RetentionChange::preset(preset).map_err(invalid)
        }
        (None, Some(days)) => Ok(RetentionChange {
            days,
            mode: match &wanted.mode {
                Some(mode) => RetentionMode::parse(mode).map_err(invalid)?,
                None => RetentionMode::Governance,
            },
            shorten: wanted.shorten,
        }),
        _ => Err(ApiError::bad_request(
            "invalid_retention",
            r#"give {"days": N, "mode": "governance|compliance"} or {"preset": "pci-dss"}"#,
        )),
    }
}

/// A refused retention change is `400 invalid_retention`.
fn invalid_retention(error: ApiError) -> ApiError {
    if error.status() == StatusCode::BAD_REQUEST {
        ApiError::bad_request("invalid_retention", error.message)
    } else {
        error
    }
}

fn path_group(request: &Request, prefix: &str) -> Result<GroupName, ApiError> {
    let text = request
        .uri()
        .path()
        .strip_prefix(prefix)
        .and_then(crate::ingest::percent_decode)
        .unwrap_or_default();
    GroupName::parse(&text)
        .map_err(|error| ApiError::bad_request("invalid_group", error.to_string()))
}

/// `PUT /api/v1/retention/{group}` with `{"days": N, "mode": "governance|compliance",
/// "shorten": false}` or `{"preset": "pci-dss"}`. Checked, recorded, then applied.
pub(crate) async fn set_retention(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let group = path_group(&request, "/api/v1/retention/")?;
    if group.is_access_log() {
        return Err(ApiError::forbidden(format!(
            "{group} records every read and admin action; no role may shorten it"
        )));
    }
    let wanted: RetentionRequest = read_json(
        request,
        r#"{"days": N, "mode": "governance|compliance", "shorten": false} or {"preset": "pci-dss"}"#,
    )
    .await?;
    let change = retention_change(&wanted)?;
    let name = group.to_string();
    let previous = meta_call(&state, move |meta| {
        meta.check_retention_change(&name, &change)
    })
    .await
    .map_err(invalid_retention)?;
    let entry = access::retention_change_entry(
        &group,
        &change,
        wanted.preset.as_deref(),
        previous.as_ref(),
    );
    access::store(&state, entry, caller.actor()).await?;
    let name = group.to_string();
    meta_call(&state, move |meta| meta.change_retention(&name, &change))
        .await
        .map_err(invalid_retention)?;
    tracing::info!(group = %group, days = change.days, mode = change.mode.name(), by = %caller.token.id, "retention set");
    state.commit.sweep();
    Ok(axum::Json(json!({
        "group": group.as_str(),
        "days": change.days,
        "mode": change.mode.name(),
        "previous": previous,
    }))
    .into_response())
}

/// `GET /api/v1/retention`: every policy and legal hold.
pub(crate) async fn list_retention(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let (policies, holds) = meta_call(&state, |meta| {
        Ok((meta.retention_policies()?, meta.legal_holds()?))
    })
    .await?;
    let entry =
        json!({ "action": "retention_list", "status": "ok", "rows": policies.len() + holds.len() });
    access::store(&state, entry, caller.actor()).await?;
    Ok(axum::Json(json!({ "policies": policies, "holds": holds })).into_response())
}

/// Body of `PUT /api/v1/holds/{group}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldRequest {
    reason: String,
}

/// `PUT /api/v1/holds/{group}` with `{"reason": "…"}`: stops expiry of the group.
pub(crate) async fn place_hold(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let group = path_group(&request, "/api/v1/holds/")?;
    let wanted: HoldRequest =
        read_json(request, r#"{"reason": "case or matter reference"}"#).await?;
    if wanted.reason.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_hold",
            "a legal hold needs a reason (a case or matter reference)",
        ));
    }
    let entry = json!({
        "action": "hold_place",
        "status": "requested",
        "groups": [group.as_str()],
        "target": { "group": group.as_str(), "reason": wanted.reason },
    });
    access::store(&state, entry, caller.actor()).await?;
    let name = group.to_string();
    let hold = meta_call(&state, move |meta| {
        meta.place_hold(&name, &wanted.reason, Timestamp::now().unix_seconds())
    })
    .await?;
    tracing::info!(group = %group, by = %caller.token.id, "legal hold placed");
    Ok(axum::Json(json!({ "hold": hold })).into_response())
}

/// `DELETE /api/v1/holds/{group}`: releases a legal hold (expiry resumes at the next sweep).
pub(crate) async fn release_hold(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let group = path_group(&request, "/api/v1/holds/")?;
    let entry = json!({
        "action": "hold_release",
        "status": "requested",
        "groups": [group.as_str()],
        "target": { "group": group.as_str() },
    });
    access::store(&state, entry, caller.actor()).await?;
    let name = group.to_string();
    match meta_call(&state, move |meta| meta.release_hold(&name)).await? {
        Some(hold) => {
            tracing::info!(group = %group, by = %caller.token.id, "legal hold released");
            state.commit.sweep();
            Ok(axum::Json(json!({ "released": hold })).into_response())
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_hold",
            format!("{group} has no legal hold"),
        )),
    }
}

/// `GET /api/v1/clock`: the retention clock at the last sweep (wall, trusted, state).
pub(crate) async fn clock(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = state.commit.stats.snapshot();
    Ok(axum::Json(json!({
        "now": Timestamp::now().to_rfc3339(),
        "retention_clock": snapshot.retention_clock,
        "tolerance_secs": state.commit.settings.clock_tolerance.as_secs(),
    }))
    .into_response())
}

/// Body of `POST /api/v1/clock`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmRequest {
    confirm: bool,
}

/// `POST /api/v1/clock` with `{"confirm": true}`: an admin vouches for the wall clock, which
/// becomes the time retention trusts (recorded first).
pub(crate) async fn confirm_clock(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let wanted: ConfirmRequest = read_json(request, r#"{"confirm": true}"#).await?;
    if !wanted.confirm {
        return Err(ApiError::bad_request(
            "invalid_request",
            r#"send {"confirm": true}"#,
        ));
    }
    let before = state.commit.stats.snapshot().retention_clock;
    let entry = json!({
        "action": "clock_confirm",
        "status": "requested",
        "target": { "wall": Timestamp::now().to_rfc3339(), "before": before },
    });
    access::store(&state, entry, caller.actor()).await?;
    let reading = state
        .commit
        .confirm_clock()
        .await
        .ok_or_else(|| ApiError::unavailable("the commit thread has stopped", 1))?;
    tracing::warn!(by = %caller.token.id, "the wall clock was confirmed for retention");
    Ok(axum::Json(json!({ "retention_clock": reading })).into_response())
}
