//! `POST /api/v1/hunt`: Sigma rules sent by the client run over the stored history of the
//! groups the token may read; matches stream back as NDJSON (`seclog hunt --server`).

use std::path::Path;

use axum::body::Body;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use seclog_detect::sources::wildcard_match;
use seclog_detect::{AnomalyConfig, Level, RuleLibrary, SigmaEngine, Sources};
use seclog_model::{GroupName, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::search::{record_access, resolve_groups, search_state};
use crate::{AppState, detect};

/// Rule files are at most this large together.
const MAX_BODY: usize = 64 << 20;

/// One rule file.
#[derive(Debug, Deserialize)]
struct RuleFile {
    name: String,
    text: String,
}

/// The request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HuntBody {
    /// Sigma files.
    #[serde(default)]
    rules: Vec<RuleFile>,
    /// Also the built-in pack (default true).
    #[serde(default = "yes")]
    builtin: bool,
    /// API-rate anomalies too (default true).
    #[serde(default = "yes")]
    anomalies: bool,
    /// Group patterns (default: every group the token may read).
    #[serde(default)]
    groups: Vec<String>,
    /// Only events at or after this time (RFC 3339).
    since: Option<String>,
    /// Only matches at this level or above.
    min_level: Option<String>,
}

fn yes() -> bool {
    true
}

pub(crate) async fn hunt(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let token = &caller.token;
    let search = search_state(&state)?.clone();
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| ApiError::too_large(format!("a hunt request is at most {MAX_BODY} bytes")))?;
    let body: HuntBody = serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::bad_request(
            "malformed_body",
            format!(
                "expected {{\"rules\": [{{\"name\", \"text\"}}], \"groups\", \"since\"}}: {error}"
            ),
        )
    })?;
    let since = body
        .since
        .as_deref()
        .map(Timestamp::parse_rfc3339)
        .transpose()
        .map_err(|error| ApiError::bad_request("invalid_time", error.to_string()))?;
    let min_level = match body.min_level.as_deref() {
        Some(name) => Level::parse(name).ok_or_else(|| {
            ApiError::bad_request("invalid_level", format!("unknown level {name:?}"))
        })?,
        None => Level::Informational,
    };
    let groups: Vec<GroupName> = resolve_groups(&search, token, None)?
        .into_iter()
        .filter(|group| !group.is_internal())
        .filter(|group| {
            body.groups.is_empty()
                || body
                    .groups
                    .iter()
                    .any(|pattern| wildcard_match(pattern, group.as_str()))
        })
        .collect();
    let Some((_, reader)) = state.journal.clone() else {
        return Err(ApiError::internal("the journal is not readable here"));
    };
    let rule_count = body.rules.len();
    let (mut engine, refused) = tokio::task::spawn_blocking(move || {
        let mut library = if body.builtin {
            RuleLibrary::builtin()
        } else {
            RuleLibrary::default()
        };
        for file in &body.rules {
            library.add_text(Path::new(&file.name), &file.text);
        }
        library.drop_dangling_correlations();
        let (engine, report) = SigmaEngine::routed(&library, Sources::default_sources(), &[]);
        let engine = if body.anomalies {
            engine.with_rate_anomalies(AnomalyConfig::default())
        } else {
            engine
        };
        (engine, library.unsupported.len() + report.failed.len())
    })
    .await
    .map_err(|_| ApiError::internal("compiling the rules failed"))?;
    let entry = json!({
        "action": "hunt",
        "groups": groups.iter().map(GroupName::as_str).collect::<Vec<_>>(),
        "since": since.map(Timestamp::to_rfc3339),
        "rule_files": rule_count,
    });
    record_access(&state, &caller, entry).await?;

    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    tokio::task::spawn_blocking(move || {
        let mut events = 0u64;
        let mut matches = 0u64;
        let mut out = Vec::new();
        let mut stopped = false;
        for group in &groups {
            let mut each = |seq: u64, view: Value, found: Vec<seclog_detect::Match>| {
                for matched in found.iter().filter(|m| m.rule.level >= min_level) {
                    matches += 1;
                    let mut origin = Map::new();
                    origin.insert("group".into(), json!(group.as_str()));
                    origin.insert("seq".into(), json!(seq));
                    out.extend(ndjson(&detect::match_line(matched, origin, view.clone())));
                }
                // Sent in chunks; a client that went away stops the hunt.
                if out.len() >= 64 << 10 && sender.blocking_send(std::mem::take(&mut out)).is_err()
                {
                    stopped = true;
                }
                !stopped
            };
            match detect::hunt_group(&mut engine, &reader, group, since, &mut each) {
                Ok(count) => events += count,
                Err(error) => {
                    tracing::error!(group = %group, error = %error, "hunt: reading failed");
                    let line = json!({"error": {"group": group.as_str(), "message": "reading the group failed"}});
                    out.extend(ndjson(&line));
                }
            }
            if stopped {
                return;
            }
        }
        if !out.is_empty() && sender.blocking_send(out).is_err() {
            return;
        }
        let summary = json!({"summary": {"events": events, "matches": matches, "unsupported_rules": refused}});
        let _ = sender.blocking_send(ndjson(&summary));
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), receiver))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

fn ndjson(value: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    line
}
