//! Admin endpoints: tokens and retention. Each action is recorded in `seclog/access` before it
//! is answered; an action whose record cannot be written is undone where it can be (a new
//! token is revoked, a retention change restored) and answered 503.

use std::sync::Arc;

use axum::extract::{Extension, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use seclog_meta::{MetaError, MetaStore, Role, TokenInfo};
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionRequest {
    days: u32,
}

/// `PUT /api/v1/retention/{group}` with `{"days": N}`.
pub(crate) async fn set_retention(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let group_text = request
        .uri()
        .path()
        .strip_prefix("/api/v1/retention/")
        .and_then(crate::ingest::percent_decode)
        .unwrap_or_default();
    let group = GroupName::parse(&group_text)
        .map_err(|error| ApiError::bad_request("invalid_group", error.to_string()))?;
    if group.is_access_log() {
        return Err(ApiError::forbidden(format!(
            "{group} records every read and admin action; no role may shorten it"
        )));
    }
    let wanted: RetentionRequest = read_json(request, r#"{"days": N}"#).await?;
    let days = wanted.days;
    let name = group.to_string();
    let previous = meta_call(&state, move |meta| {
        let previous = meta
            .retention_policies()?
            .into_iter()
            .find(|policy| policy.group == name)
            .map(|policy| policy.days);
        meta.set_retention(&name, days)?;
        Ok(previous)
    })
    .await?;
    let entry = json!({
        "action": "retention_set",
        "status": "ok",
        "groups": [group.as_str()],
        "target": { "group": group.as_str(), "days": days, "previous_days": previous },
    });
    if let Err(error) = access::store(&state, entry, caller.actor()).await {
        let name = group.to_string();
        let restore = meta_call(&state, move |meta| match previous {
            Some(days) => meta.set_retention(&name, days),
            None => meta.remove_retention(&name).map(|_| ()),
        })
        .await;
        if let Err(undo) = restore {
            tracing::error!(error = %undo.message, group = %group, "restoring an unrecorded retention change failed");
        }
        return Err(error);
    }
    tracing::info!(group = %group, days, by = %caller.token.id, "retention set");
    state.commit.sweep();
    Ok(axum::Json(json!({ "group": group.as_str(), "days": days })).into_response())
}

/// `GET /api/v1/retention`: every policy.
pub(crate) async fn list_retention(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let policies = meta_call(&state, MetaStore::retention_policies).await?;
    let entry = json!({ "action": "retention_list", "status": "ok", "rows": policies.len() });
    access::store(&state, entry, caller.actor()).await?;
    Ok(axum::Json(json!({ "policies": policies })).into_response())
}
