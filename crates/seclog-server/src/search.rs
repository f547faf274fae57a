//! Search endpoints: queries, histograms, field discovery and NDJSON export. Every read is
//! recorded in `seclog/access` before its answer is returned.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seclog_meta::{Role, TokenInfo};
use seclog_model::{GroupName, Timestamp};
use seclog_query::{Engine, Limits, QueryAnswer, QueryError, QueryRequest};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use crate::access::ACCESS_GROUP;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, access};

/// Largest request body of a search endpoint.
const MAX_BODY: usize = 64 * 1024;

/// How queries are bounded.
#[derive(Debug, Clone, Copy)]
pub struct SearchSettings {
    /// Per-query time limit (answers past it are partial).
    pub timeout: Duration,
    /// Rows held in memory per query (sort, dedup, stats groups).
    pub max_working_rows: usize,
    /// Queries running at once; more wait.
    pub concurrency: usize,
}

impl Default for SearchSettings {
    fn default() -> Self {
        SearchSettings {
            timeout: Duration::from_secs(30),
            max_working_rows: 2_000_000,
            concurrency: 2,
        }
    }
}

/// What the search handlers share.
#[derive(Clone)]
pub(crate) struct Search {
    pub(crate) engine: Engine,
    pub(crate) settings: SearchSettings,
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    pub(crate) layout: seclog_journal::Layout,
}

/// A point in time in a request: RFC 3339 text or Unix seconds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TimeArg {
    Seconds(f64),
    Text(String),
}

impl TimeArg {
    fn resolve(&self, what: &str) -> Result<Timestamp, ApiError> {
        match self {
            TimeArg::Seconds(seconds) if seconds.is_finite() => {
                Ok(Timestamp::from_unix_nanos((seconds * 1e9) as i64))
            }
            TimeArg::Seconds(_) => Err(ApiError::bad_request(
                "invalid_time",
                format!("{what} is not a number of seconds"),
            )),
            TimeArg::Text(text) => Timestamp::parse_rfc3339(text).map_err(|_| {
                ApiError::bad_request(
                    "invalid_time",
                    format!("{what} must be RFC 3339 (2024-01-31T12:00:00Z) or Unix seconds"),
                )
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    query: String,
    start: Option<TimeArg>,
    end: Option<TimeArg>,
    groups: Option<Vec<String>>,
    /// `json` (default) or `ndjson` (streamed rows).
    format: Option<String>,
    /// Histogram bucket width in seconds (histogram only).
    interval_secs: Option<f64>,
}

async fn read_body(request: Request) -> Result<(HeaderMap, QueryBody), ApiError> {
    let headers = request.headers().clone();
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| {
            ApiError::too_large(format!("a search request is at most {MAX_BODY} bytes"))
        })?;
    let body: QueryBody = serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::bad_request(
            "malformed_body",
            format!("expected {{\"query\", \"start\", \"end\", \"groups\"}}: {error}"),
        )
    })?;
    Ok((headers, body))
}

pub(crate) fn search_state(state: &AppState) -> Result<&Search, ApiError> {
    state.search.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_index",
            "search is not enabled on this server",
        )
    })
}

/// True if `token` may read the events of `group`: readers the groups they cover except
/// `seclog/access`; auditors `seclog/access` only (never decrypted log content); admins
/// everything they cover, recorded like anyone's reads.
pub(crate) fn may_read(token: &TokenInfo, group: &GroupName) -> bool {
    match token.role {
        Role::Ingest => false,
        Role::Auditor => group.as_str() == ACCESS_GROUP,
        Role::Reader => group.as_str() != ACCESS_GROUP && token.covers(group.as_str()),
        Role::Admin => token.covers(group.as_str()),
    }
}

/// The groups a request searches: those named (each must exist and be readable), else every
/// readable group.
pub(crate) fn resolve_groups(
    search: &Search,
    token: &TokenInfo,
    named: Option<&[String]>,
) -> Result<Vec<GroupName>, ApiError> {
    if !matches!(token.role, Role::Reader | Role::Auditor | Role::Admin) {
        return Err(ApiError::forbidden(
            "searching needs a reader, auditor or admin token",
        ));
    }
    let known = seclog_journal::group_names(&search.layout).map_err(|error| {
        tracing::error!(error = %error, "listing groups failed");
        ApiError::internal("the group list is unavailable")
    })?;
    match named {
        Some(names) if !names.is_empty() => {
            let mut groups = Vec::new();
            for name in names {
                let group = GroupName::parse(name)
                    .map_err(|error| ApiError::bad_request("invalid_group", error.to_string()))?;
                if !may_read(token, &group) {
                    return Err(ApiError::forbidden(format!(
                        "this token may not read {group}"
                    )));
                }
                if !known.contains(&group) {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "no_such_group",
                        format!("no group named {group}"),
                    ));
                }
                if !groups.contains(&group) {
                    groups.push(group);
                }
            }
            Ok(groups)
        }
        _ => Ok(known
            .into_iter()
            .filter(|group| may_read(token, group))
            .collect()),
    }
}

fn time_range(body: &QueryBody) -> Result<(Timestamp, Timestamp), ApiError> {
    let end = match &body.end {
        Some(end) => end.resolve("end")?,
        None => Timestamp::now(),
    };
    let start = match &body.start {
        Some(start) => start.resolve("start")?,
        None => Timestamp::from_unix_nanos(end.unix_nanos().saturating_sub(3600 * 1_000_000_000)),
    };
    if end.unix_nanos() <= start.unix_nanos() {
        return Err(ApiError::bad_request(
            "invalid_time",
            "end must be after start",
        ));
    }
    Ok((start, end))
}

fn query_error(error: QueryError) -> ApiError {
    match error {
        QueryError::Parse {
            message,
            offset,
            line,
            column,
        } => ApiError::with_details(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{message} (line {line}, column {column})"),
            json!({ "offset": offset, "line": line, "column": column }),
        ),
        QueryError::Invalid(message) => ApiError::bad_request("invalid_query", message),
        other => {
            tracing::error!(error = %other, "query failed");
            ApiError::internal("the query failed; see the server log")
        }
    }
}

/// Records a read in `seclog/access`; the answer is returned only once this is durable.
pub(crate) async fn record_access(
    state: &AppState,
    caller: &Caller,
    entry: Json,
) -> Result<(), ApiError> {
    access::store(state, entry, caller.actor()).await
}

async fn run_blocking<T: Send + 'static>(
    search: &Search,
    job: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, ApiError> {
    let slot = Arc::clone(&search.slots)
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("search is shutting down"))?;
    // The slot goes with the job: a client that hangs up does not free it while the query runs.
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        job()
    })
    .await
    .map_err(|_| ApiError::internal("the query stopped unexpectedly"))?
    .map_err(query_error)
}

fn query_request(
    search: &Search,
    query: &str,
    start: Timestamp,
    end: Timestamp,
    groups: &[GroupName],
) -> QueryRequest {
    QueryRequest {
        query: query.to_string(),
        start,
        end,
        groups: groups.to_vec(),
        limits: Limits {
            timeout: search.settings.timeout,
            max_working_rows: search.settings.max_working_rows,
        },
    }
}

/// `POST /api/v1/query`.
pub(crate) async fn query(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let token = &caller.token;
    let search = search_state(&state)?.clone();
    let (headers, body) = read_body(request).await?;
    let groups = resolve_groups(&search, token, body.groups.as_deref())?;
    let (start, end) = time_range(&body)?;
    let ndjson = body.format.as_deref() == Some("ndjson")
        || headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|accept| accept.contains("application/x-ndjson"));
    let request = query_request(&search, &body.query, start, end, &groups);
    let engine = search.engine.clone();
    let outcome = run_blocking(&search, move || engine.run(&request)).await;
    let action = if ndjson { "export" } else { "query" };
    let entry = access::with_outcome(
        access::entry(action, &body.query, &groups, start, end),
        &outcome,
    );
    record_access(&state, &caller, entry).await?;
    let answer = outcome?;

    if ndjson {
        return Ok(ndjson_response(answer));
    }
    Ok(axum::Json(answer.to_json()).into_response())
}

fn ndjson_response(answer: QueryAnswer) -> Response {
    let fields = Arc::new(answer.fields.clone());
    let matched = answer.matched;
    let partial = answer.partial.is_some();
    let rows = answer.rows;
    let stream = ndjson_stream(rows, fields);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if let Ok(value) = HeaderValue::from_str(&matched.to_string()) {
        headers.insert("x-seclog-matched", value);
    }
    headers.insert(
        "x-seclog-partial",
        HeaderValue::from_static(if partial { "true" } else { "false" }),
    );
    response
}

/// Rows as NDJSON in chunks of about 64 KiB, each written when the client is ready for it.
fn ndjson_stream(rows: Vec<Vec<seclog_query::Value>>, fields: Arc<Vec<String>>) -> ChunkStream {
    ChunkStream {
        rows: rows.into_iter(),
        fields,
    }
}

/// The rows left to send, serialized a chunk at a time as the body is polled.
struct ChunkStream {
    rows: std::vec::IntoIter<Vec<seclog_query::Value>>,
    fields: Arc<Vec<String>>,
}

impl futures_core::Stream for ChunkStream {
    type Item = Result<Vec<u8>, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let mut chunk = Vec::with_capacity(64 * 1024);
        while chunk.len() < 64 * 1024 {
            let Some(row) = self.rows.next() else { break };
            let object: Map<String, Json> = self
                .fields
                .iter()
                .zip(&row)
                .map(|(name, value)| (name.clone(), value.to_json()))
                .collect();
            if let Err(error) = serde_json::to_writer(&mut chunk, &object) {
                return std::task::Poll::Ready(Some(Err(std::io::Error::other(error))));
            }
            chunk.push(b'\n');
        }
        std::task::Poll::Ready((!chunk.is_empty()).then_some(Ok(chunk)))
    }
}

/// `POST /api/v1/query/histogram`.
pub(crate) async fn histogram(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let token = &caller.token;
    let search = search_state(&state)?.clone();
    let (_, body) = read_body(request).await?;
    let groups = resolve_groups(&search, token, body.groups.as_deref())?;
    let (start, end) = time_range(&body)?;
    let span_secs = (end.unix_nanos() - start.unix_nanos()) as f64 / 1e9;
    let interval = match body.interval_secs {
        Some(seconds) if seconds.is_finite() && seconds >= 0.001 => seconds,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_interval",
                "interval_secs must be at least 0.001",
            ));
        }
        None => nice_interval(span_secs / 60.0),
    };
    if span_secs / interval > 10_000.0 {
        return Err(ApiError::bad_request(
            "invalid_interval",
            "at most 10000 buckets",
        ));
    }
    let request = query_request(&search, &body.query, start, end, &groups);
    let engine = search.engine.clone();
    let bucket = Duration::from_secs_f64(interval);
    let (counts, answer) =
        run_blocking(&search, move || engine.histogram(&request, bucket)).await?;
    let mut entry = access::entry("histogram", &body.query, &groups, start, end);
    entry["rows"] = json!(counts.len());
    entry["matched"] = json!(answer.matched);
    entry["status"] = json!(if answer.partial.is_some() {
        "partial"
    } else {
        "ok"
    });
    record_access(&state, &caller, entry).await?;
    let buckets: Vec<Json> = counts
        .iter()
        .map(|(time, count)| json!({ "start": Timestamp::from_unix_nanos(*time).to_rfc3339(), "count": count }))
        .collect();
    Ok(axum::Json(json!({
        "interval_secs": interval,
        "buckets": buckets,
        "stats": answer.stats_json(),
        "partial": answer.partial.is_some(),
        "partial_reason": answer.partial,
    }))
    .into_response())
}

/// A round bucket width near `target` seconds.
fn nice_interval(target: f64) -> f64 {
    const STEPS: &[f64] = &[
        1.0,
        5.0,
        10.0,
        30.0,
        60.0,
        300.0,
        600.0,
        1800.0,
        3600.0,
        3.0 * 3600.0,
        6.0 * 3600.0,
        12.0 * 3600.0,
        86400.0,
        7.0 * 86400.0,
        30.0 * 86400.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|step| *step >= target)
        .unwrap_or(365.0 * 86400.0)
}

/// `GET /api/v1/groups/{group}/fields`, `/api/v1/groups/{group}/events` and
/// `/api/v1/groups/{group}/events/{seq}/proof` (group names hold `/`, so the path is read from
/// its end).
pub(crate) async fn group_route(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Result<Response, ApiError> {
    let path = request.uri().path().to_string();
    let rest = path.strip_prefix("/api/v1/groups/").unwrap_or_default();
    let group = |text: &str| {
        let text = crate::ingest::percent_decode(text).unwrap_or_default();
        GroupName::parse(&text)
            .map_err(|error| ApiError::bad_request("invalid_group", error.to_string()))
    };
    if let Some(name) = rest.strip_suffix("/fields") {
        return fields(state, caller, group(name)?).await;
    }
    if let Some(name) = rest.strip_suffix("/events") {
        let query = request.uri().query().unwrap_or_default().to_string();
        return crate::events::events(state, caller, group(name)?, &query).await;
    }
    if let Some(front) = rest.strip_suffix("/proof")
        && let Some((name, seq)) = front.rsplit_once("/events/")
    {
        let seq: u64 = seq.parse().map_err(|_| {
            ApiError::bad_request("invalid_seq", "the sequence number is not a number")
        })?;
        return crate::events::proof(state, caller, group(name)?, seq).await;
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "expected /api/v1/groups/{group}/fields, /events or /events/{seq}/proof",
    ))
}

async fn fields(state: AppState, caller: Caller, group: GroupName) -> Result<Response, ApiError> {
    let token = &caller.token;
    let search = search_state(&state)?.clone();
    let groups = resolve_groups(&search, token, Some(&[group.as_str().to_string()]))?;
    let catalog = Arc::clone(search.engine.catalog());
    let target = groups[0].clone();
    let (summary, docs) = run_blocking(&search, move || {
        seclog_query::fields::field_summary(&catalog, &target, 3, 5)
    })
    .await?;
    record_access(
        &state,
        &caller,
        json!({ "action": "fields", "groups": [group.as_str()], "rows": summary.len(), "status": "ok" }),
    )
    .await?;
    let fields: Vec<Json> = summary
        .iter()
        .map(|field| {
            json!({
                "name": field.name,
                "count": field.count,
                "top": field.top.iter().map(|(value, count)| json!({ "value": value, "count": count })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(
        axum::Json(json!({ "group": group.as_str(), "events_examined": docs, "fields": fields }))
            .into_response(),
    )
}
