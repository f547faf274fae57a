//! secure-app: a small axum service that logs its security events the way seclog-app makes
//! easy. `cargo run -p secure-app -- --listen 127.0.0.1:3000`, with `SECLOG_URL` and
//! `SECLOG_TOKEN` (an ingest token) to ship to seclog as well as to stdout.
//!
//! | route | does | security events |
//! |---|---|---|
//! | `POST /login` (form or JSON `username`, `password`) | `alice` / `wonderland` gets a session cookie | login success / failure (with the reason) |
//! | `POST /logout` | ends the session | logout |
//! | `GET /records/{id}` | a confidential record | data access; access denied without a session |
//! | `GET`, `PUT /admin/settings` | the settings (JSON) | configuration change; access denied without a session |
//! | `GET /healthz` | the logging counters | |

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use seclog_app::middleware::RequestLogLayer;
use seclog_app::{Classification, DataAction, SecurityEvent};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "An axum service that logs its security events with seclog-app")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// A proxy (address or network) whose Forwarded / X-Forwarded-For headers are believed;
    /// repeatable.
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<String>,
}

/// The one user: a real service would keep a password hash (argon2) in a database.
const USER: &str = "alice";
const PASSWORD: &str = "wonderland";

#[derive(Clone, Default)]
struct AppState {
    /// Session token → user.
    sessions: Arc<Mutex<HashMap<String, String>>>,
    settings: Arc<Mutex<Value>>,
    stats: Option<Arc<seclog_app::Stats>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = seclog_app::Config::from_env("secure-app", env!("CARGO_PKG_VERSION"))?;
    let logging = seclog_app::init(config)?;
    let state = AppState {
        settings: Arc::new(Mutex::new(
            json!({ "mfa_required": false, "session_minutes": 30 }),
        )),
        stats: Some(logging.stats_handle()),
        ..AppState::default()
    };
    let layer = RequestLogLayer::new().trust_proxies(&args.trusted_proxies)?;
    let app = Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/records/{id}", get(record))
        .route("/admin/settings", get(settings).put(change_settings))
        .route("/healthz", get(healthz))
        .layer(layer)
        .with_state(state);
    let runtime = tokio::runtime::Runtime::new()?;
    let served: anyhow::Result<()> = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        tracing::info!(listen = %listener.local_addr()?, "secure-app listening");
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await?;
        tracing::info!("secure-app stopped");
        Ok(())
    });
    drop(runtime);
    logging.shutdown();
    served
}

async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

#[derive(serde::Deserialize)]
struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// Reads form-encoded or JSON credentials.
fn credentials(headers: &HeaderMap, body: &[u8]) -> Option<Credentials> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|kind| kind.starts_with("application/json"));
    if json {
        serde_json::from_slice(body).ok()
    } else {
        serde_urlencoded::from_bytes(body).ok()
    }
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(given) = credentials(&headers, &body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "username and password required" })),
        )
            .into_response();
    };
    // The kind of line a developer adds while debugging a login problem: headers, body and the
    // password itself. seclog-app redacts what it holds before it is written anywhere.
    tracing::debug!(
        ?headers,
        body = %String::from_utf8_lossy(&body),
        password = %given.password,
        "login request"
    );
    SecurityEvent::login_attempt(&given.username).emit();
    // The reason is for the log; the client learns only that the credentials were wrong.
    let failure = if given.username != USER {
        Some("unknown user")
    } else if !constant_time_eq(given.password.as_bytes(), PASSWORD.as_bytes()) {
        Some("wrong password")
    } else {
        None
    };
    if let Some(reason) = failure {
        SecurityEvent::login_failure(&given.username, reason).emit();
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid credentials" })),
        )
            .into_response();
    }
    let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    state
        .sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(token.clone(), given.username.clone());
    seclog_app::set_user(&given.username);
    seclog_app::set_session(&token);
    SecurityEvent::login_success(&given.username).emit();
    let cookie = format!("sid={token}; HttpOnly; SameSite=Strict; Path=/");
    ([(header::SET_COOKIE, cookie)], Json(json!({ "ok": true }))).into_response()
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// The session token of the request's `sid` cookie.
fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("sid=").map(str::to_string))
}

/// The signed-in user, set on the request context; a denial event and 401 otherwise.
fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    resource: &str,
    permission: &str,
) -> Result<String, SignInFirst> {
    let token = session_token(headers);
    let user = token.as_ref().and_then(|token| {
        state
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    });
    match (user, token) {
        (Some(user), Some(token)) => {
            seclog_app::set_user(&user);
            seclog_app::set_session(&token);
            Ok(user)
        }
        _ => {
            SecurityEvent::authorization_denied(resource, permission).emit();
            Err(SignInFirst)
        }
    }
}

/// The answer to a request that needs a session and has none.
struct SignInFirst;

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "sign in first" })),
        )
            .into_response()
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let user = match authenticate(&state, &headers, "/logout", "session") {
        Ok(user) => user,
        Err(denied) => return denied.into_response(),
    };
    if let Some(token) = session_token(&headers) {
        state
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token);
    }
    SecurityEvent::logout(&user).emit();
    seclog_app::clear_identity();
    let expired = "sid=; Max-Age=0; Path=/";
    ([(header::SET_COOKIE, expired)], Json(json!({ "ok": true }))).into_response()
}

async fn record(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let resource = format!("record:{id}");
    if let Err(denied) = authenticate(&state, &headers, &resource, "records:read") {
        return denied.into_response();
    }
    if id > 1_000 {
        tracing::info!(record_id = id, "record not found");
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such record" })),
        )
            .into_response();
    }
    SecurityEvent::data_access(
        &resource,
        "customer_record",
        Classification::Confidential,
        DataAction::Read,
    )
    .emit();
    Json(json!({ "id": id, "name": format!("customer {id}") })).into_response()
}

async fn settings(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(denied) = authenticate(&state, &headers, "/admin/settings", "admin") {
        return denied.into_response();
    }
    let settings = state
        .settings
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Json(settings).into_response()
}

async fn change_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(change): Json<Value>,
) -> Response {
    if let Err(denied) = authenticate(&state, &headers, "/admin/settings", "admin") {
        return denied.into_response();
    }
    let Value::Object(change) = change else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "a JSON object of settings" })),
        )
            .into_response();
    };
    let (before, after) = {
        let mut settings = state
            .settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = settings.clone();
        if let Value::Object(current) = &mut *settings {
            current.extend(change);
        }
        (before, settings.clone())
    };
    SecurityEvent::config_change("settings", &before, &after).emit();
    Json(after).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    let stats = state.stats.as_ref().map(|stats| stats.snapshot());
    Json(json!({ "ok": true, "logging": stats })).into_response()
}
