//! seclog's HTTP server: authentication, the ingest API, status and checkpoints, wired to the
//! journal through one commit thread.
//!
//! Every route and the roles that may call it are in one table, [`routes::route_rules`]; the
//! router is built from it, each handler behind [`auth`]'s guard (docs/access-control.md).
//! Ingest: the native API, Elasticsearch bulk, OTLP/HTTP, Loki push, Splunk HEC, Firehose and
//! service-log import. Reads: search, hunt, events and proofs, each recorded in
//! `seclog/access`. Admin: tokens and retention. Integrity: checkpoints.
//!
//! Syslog listeners (UDP, TCP, TLS) start with [`Server::start_syslog`].
//!
//! ```no_run
//! # async fn demo(state: seclog_server::AppState) {
//! let app = seclog_server::router(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
//! # }
//! ```

#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod access;
mod admin;
pub mod alerting;
pub mod auth;
pub mod clock;
mod committer;
mod cursors;
pub mod detect;
mod elastic;
mod error;
mod events;
mod firehose;
pub mod health;
mod hec;
mod hunt;
pub mod import;
mod ingest;
mod loki;
pub mod metrics;
mod otlp;
mod producer;
mod protocol;
pub mod routes;
pub mod s3;
mod search;
pub mod syslog;
pub mod tls;
pub mod watch;
pub mod watchdog;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use seclog_index::{Catalog, IndexService, IndexStats};
use seclog_journal::{JournalReader, JournalWriter, MasterKey};
use seclog_meta::{MetaStore, Role};
use seclog_query::Engine;
use serde_json::json;

pub use access::ACCESS_GROUP;
pub use auth::{AuthSettings, Caller};
pub use committer::{CommitSettings, CommitStats, StatsSnapshot};
pub use cursors::MetaCursors;
pub use error::ApiError;
pub use ingest::IngestLimits;
pub use search::SearchSettings;
pub use syslog::{SyslogListeners, SyslogSettings, TlsFiles};

use committer::{CommitHandle, Committer};

/// Shared state of every request handler.
#[derive(Clone)]
pub struct AppState {
    meta: Arc<MetaStore>,
    commit: CommitHandle,
    limits: IngestLimits,
    submit_wait: Duration,
    decode_slots: Arc<tokio::sync::Semaphore>,
    search: Option<search::Search>,
    index_stats: Option<Arc<IndexStats>>,
    detection_stats: Option<Arc<detect::DetectionStats>>,
    metrics: Arc<metrics::Metrics>,
    /// Work that runs one at a time per key: objects being imported (group and content hash),
    /// producers' batches being stored (group and producer).
    importing: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Durable group sizes and a reader, for telling after a crash how much of an import's
    /// last batch is stored.
    journal: Option<(Arc<seclog_journal::DurableHeads>, JournalReader)>,
    /// Wrong-credential counts per source address.
    throttle: Arc<auth::Throttle>,
    /// Logging-failure alarms that are on (when the watchdog runs).
    alarms: Option<watchdog::ActiveAlarms>,
}

impl AppState {
    /// The state of handlers that write through `committer` (no search until it is added).
    fn new(meta: Arc<MetaStore>, committer: &Committer, config: &ServerConfig) -> AppState {
        // A producer silent for 30 days is forgotten: a batch it sends after that is new.
        let forget_before = seclog_model::Timestamp::now().unix_seconds() - 30 * 86_400;
        if let Err(error) = meta.forget_producers(forget_before) {
            tracing::warn!(%error, "old producers not forgotten");
        }
        AppState {
            meta,
            commit: committer.handle(),
            limits: config.limits.clone(),
            submit_wait: Duration::from_secs(10),
            decode_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |count| count.get()),
            )),
            search: None,
            index_stats: None,
            detection_stats: None,
            metrics: Arc::new(metrics::Metrics::default()),
            importing: Arc::default(),
            journal: None,
            throttle: Arc::new(auth::Throttle::new(config.auth)),
            alarms: None,
        }
    }
}

/// Everything `serve` needs besides the opened stores.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Commit and sealing timing.
    pub commit: CommitSettings,
    /// Body limits.
    pub limits: IngestLimits,
    /// Query bounds.
    pub search: SearchSettings,
    /// Syslog listeners.
    pub syslog: SyslogSettings,
    /// How wrong credentials slow their source down.
    pub auth: AuthSettings,
    /// HTTPS for the API: certificate, key and optional client CA (plain HTTP without).
    pub http_tls: Option<tls::TlsFiles>,
}

/// Builds the router: every route of [`routes::route_rules`] behind its access rule.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

pub(crate) async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

pub(crate) async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = state.metrics.render();
            if let Some(alarms) = state
                .alarms
                .as_ref()
                .and_then(|alarms| alarms.lock().ok().map(|alarms| alarms.clone()))
            {
                text.push_str("# HELP seclog_alarm_active Logging-failure alarms that are on (1 per alarm).\n# TYPE seclog_alarm_active gauge\n");
                for kind in [
                    "source_silent",
                    "sealer_stalled",
                    "consumer_stalled",
                    "disk_nearly_full",
                ] {
                    let count = alarms.iter().filter(|alarm| alarm.kind == kind).count();
                    text.push_str(&format!("seclog_alarm_active{{kind=\"{kind}\"}} {count}\n"));
                }
            }
            text
        },
    )
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub(crate) async fn status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let token = caller.token;
    let mut stats = state.commit.stats.snapshot();
    if !matches!(token.role, Role::Admin | Role::Auditor) {
        // Error details may name files; only operators see them.
        stats.last_error = stats
            .last_error
            .map(|_| "the journal reported an error".to_string());
    }
    let settings = &state.commit.settings;
    let index = state.index_stats.as_ref().map(|index| {
        let last_error = index.last_error.lock().ok().and_then(|error| error.clone());
        json!({
            "indexed": index.indexed.load(std::sync::atomic::Ordering::Relaxed),
            "commits": index.commits.load(std::sync::atomic::Ordering::Relaxed),
            "errors": index.errors.load(std::sync::atomic::Ordering::Relaxed),
            "last_error": if matches!(token.role, Role::Admin | Role::Auditor) {
                last_error
            } else {
                last_error.map(|_| "indexing reported an error".to_string())
            },
        })
    });
    let detection = state.detection_stats.as_ref().map(|detection| {
        let load = |counter: &std::sync::atomic::AtomicU64| {
            counter.load(std::sync::atomic::Ordering::Relaxed)
        };
        json!({
            "events": load(&detection.events),
            "findings": load(&detection.findings),
            "duplicates_skipped": load(&detection.duplicates_skipped),
            "errors": load(&detection.errors),
            "behind": load(&detection.behind),
        })
    });
    let alarms = state
        .alarms
        .as_ref()
        .and_then(|alarms| alarms.lock().ok().map(|alarms| alarms.clone()));
    Ok(axum::Json(json!({
        "alarms": alarms,
        "detection": detection,
        "commit_interval_ms": settings.commit_interval.as_secs_f64() * 1000.0,
        "seal_delay_ms": settings.seal_delay.as_secs_f64() * 1000.0,
        "heartbeat_secs": settings.heartbeat.as_secs_f64(),
        "stats": stats,
        "index": index,
    }))
    .into_response())
}

/// Query of `GET /api/v1/alerts`.
#[derive(Debug, serde::Deserialize)]
struct AlertsQuery {
    /// Only deliveries in this state.
    state: Option<String>,
    /// At most this many (newest first; default 100).
    limit: Option<usize>,
}

/// Delivery state of findings: admin and auditor tokens, or reader tokens covering
/// `seclog/alerts`.
pub(crate) async fn alerts_list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    axum::extract::Query(query): axum::extract::Query<AlertsQuery>,
) -> Result<Response, ApiError> {
    let token = caller.token;
    let allowed = match token.role {
        Role::Admin | Role::Auditor => true,
        Role::Reader => token.covers(detect::ALERTS_GROUP),
        Role::Ingest => false,
    };
    if !allowed {
        return Err(ApiError::forbidden(
            "findings are for admin and auditor tokens, or reader tokens covering seclog/alerts",
        ));
    }
    let meta = Arc::clone(&state.meta);
    let all = tokio::task::spawn_blocking(move || alerting::deliveries(&meta))
        .await
        .map_err(|_| ApiError::internal("listing deliveries failed"))?
        .map_err(|error| {
            tracing::error!(error = %error, "listing deliveries failed");
            ApiError::internal("listing deliveries failed")
        })?;
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for delivery in &all {
        *counts.entry(delivery.state.clone()).or_default() += 1;
    }
    let limit = query.limit.unwrap_or(100);
    let deliveries: Vec<&alerting::Delivery> = all
        .iter()
        .filter(|delivery| {
            query
                .state
                .as_deref()
                .is_none_or(|wanted| delivery.state == wanted)
        })
        .take(limit)
        .collect();
    Ok(axum::Json(json!({ "counts": counts, "deliveries": deliveries })).into_response())
}

pub(crate) async fn checkpoint(State(state): State<AppState>) -> Result<Response, ApiError> {
    // Served from memory: the commit thread records a checkpoint only after its fsync, so a
    // witness never pins one that a crash could still take back.
    let latest = state.commit.stats.durable_checkpoint();
    match latest {
        Some(signed) => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            signed.to_text(),
        )
            .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_checkpoint",
            "nothing has been sealed yet",
        )),
    }
}

/// A running server's pieces, for embedding and tests.
pub struct Server {
    committer: Committer,
    indexer: Option<IndexService>,
    detector: Option<detect::DetectionService>,
    alerting: Option<alerting::Alerting>,
    state: AppState,
    syslog: Option<SyslogListeners>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
    http_tls: Option<tls::ReloadingTls>,
}

impl Server {
    /// Starts the commit thread over an opened journal, and the indexing thread over the
    /// index next to it (`master` decrypts the journal for indexing and answers).
    pub fn start(
        writer: JournalWriter,
        meta: Arc<MetaStore>,
        master: MasterKey,
        config: &ServerConfig,
    ) -> std::io::Result<Self> {
        let layout = writer.layout().clone();
        let heads = writer.heads();
        let catalog = Catalog::open(&layout, master.clone()).map_err(std::io::Error::other)?;
        let reader = JournalReader::new(&layout, master);
        let import_heads = heads.clone();
        let indexer =
            IndexService::start(layout.clone(), Arc::clone(&catalog), reader.clone(), heads)?;
        let reader_for_import = reader.clone();
        let search = search::Search {
            engine: Engine::new(catalog, reader),
            settings: config.search,
            slots: Arc::new(tokio::sync::Semaphore::new(
                config.search.concurrency.max(1),
            )),
            layout,
        };
        let http_tls = config
            .http_tls
            .clone()
            .map(|files| {
                tls::ReloadingTls::new("https", files, |files| {
                    files.server_config(&[b"h2", b"http/1.1"])
                })
            })
            .transpose()?;
        let committer = Committer::start(writer, Arc::clone(&meta), config.commit.clone())?;
        let mut state = AppState::new(meta, &committer, config);
        state.journal = Some((import_heads, reader_for_import));
        state.search = Some(search);
        state.index_stats = Some(Arc::clone(&indexer.stats));
        Ok(Server {
            committer,
            indexer: Some(indexer),
            detector: None,
            alerting: None,
            state,
            syslog: None,
            watchers: Vec::new(),
            http_tls,
        })
    }

    /// Starts the commit thread only, without indexing or search: for loading a stopped data
    /// directory (`seclog import --data`); the server indexes what was loaded when it starts.
    pub fn start_ingest_only(
        writer: JournalWriter,
        meta: Arc<MetaStore>,
        master: MasterKey,
        config: &ServerConfig,
    ) -> std::io::Result<Self> {
        let journal = (
            writer.heads(),
            JournalReader::new(&writer.layout().clone(), master),
        );
        let committer = Committer::start(writer, Arc::clone(&meta), config.commit.clone())?;
        let mut state = AppState::new(meta, &committer, config);
        state.journal = Some(journal);
        Ok(Server {
            committer,
            indexer: None,
            detector: None,
            alerting: None,
            state,
            syslog: None,
            watchers: Vec::new(),
            http_tls: None,
        })
    }

    /// Binds and starts the syslog listeners `settings` names (none if it names none); they
    /// stop with [`Server::serve`].
    pub async fn start_syslog(&mut self, settings: &SyslogSettings) -> std::io::Result<()> {
        if settings.any() {
            let listeners =
                syslog::start(settings, self.state.commit.clone(), &self.state.metrics).await?;
            for (name, address) in [
                ("udp", listeners.udp),
                ("tcp", listeners.tcp),
                ("tls", listeners.tls),
            ] {
                if let Some(address) = address {
                    tracing::info!(%address, "syslog {name} listener ready");
                }
            }
            self.syslog = Some(listeners);
        }
        Ok(())
    }

    /// Starts the streaming detector with `engine`'s rules (see [`detect::DetectionService`]);
    /// call within the Tokio runtime. It stops with [`Server::serve`] or [`Server::shutdown`].
    pub fn start_detection(
        &mut self,
        engine: seclog_detect::SigmaEngine,
        master: MasterKey,
    ) -> std::io::Result<()> {
        let Some((heads, reader)) = self.state.journal.clone() else {
            return Err(std::io::Error::other("the server has no journal reader"));
        };
        let service = detect::DetectionService::start(
            engine,
            reader,
            heads,
            Arc::clone(&self.state.meta),
            master,
            self.state.commit.clone(),
        )?;
        self.state.detection_stats = Some(Arc::clone(&service.stats));
        self.detector = Some(service);
        Ok(())
    }

    /// Starts delivering findings from `seclog/alerts` to `config`'s destinations (call within
    /// the Tokio runtime); pending deliveries survive restarts.
    pub fn start_alerting(&mut self, config: alerting::AlertingConfig) -> Result<(), String> {
        let Some((heads, reader)) = self.state.journal.clone() else {
            return Err("the server has no journal reader".into());
        };
        let alerting =
            alerting::Alerting::start(config, Arc::clone(&self.state.meta), reader, heads)?;
        self.alerting = Some(alerting);
        Ok(())
    }

    /// The streaming detector's counters, when it runs.
    pub fn detection_stats(&self) -> Option<Arc<detect::DetectionStats>> {
        self.detector
            .as_ref()
            .map(|service| Arc::clone(&service.stats))
    }

    /// Starts the logging-failure watchdog (see [`watchdog`]); call within the runtime after
    /// the detector, so that it watches it too. It stops with [`Server::serve`].
    pub fn start_watchdog(
        &mut self,
        settings: watchdog::WatchdogSettings,
        data_root: std::path::PathBuf,
    ) {
        let (task, alarms) = watchdog::start(&self.state, settings, data_root);
        self.state.alarms = Some(alarms);
        self.watchers.push(task);
    }

    /// Starts watching bucket prefixes (see [`watch`]); they stop with [`Server::serve`].
    pub fn start_watchers(&mut self, settings: &watch::WatchSettings) -> Result<(), String> {
        let tasks = watch::start(&self.state, settings)?;
        self.watchers.extend(tasks);
        Ok(())
    }

    /// The running syslog listeners (their bound addresses).
    pub fn syslog(&self) -> Option<&SyslogListeners> {
        self.syslog.as_ref()
    }

    /// Imports one service log object, as `POST /api/v1/import` does (for `seclog import
    /// --data`); the error is the reason the client would be given.
    pub async fn import(
        &self,
        request: &import::ImportRequest,
        bytes: Vec<u8>,
    ) -> Result<import::ImportOutcome, String> {
        let outcome = import::import_object(&self.state, request, bytes, &|_| Ok(()))
            .await
            .map_err(|error| error.message)?;
        self.state
            .metrics
            .listener("import")
            .stored(outcome.events, outcome.rejected);
        Ok(outcome)
    }

    /// Stops without serving: seals the journal and stops the indexing thread.
    pub async fn shutdown(self) -> std::io::Result<()> {
        for watcher in self.watchers {
            watcher.abort();
        }
        if let Some(alerting) = self.alerting {
            alerting.shutdown().await;
        }
        drop(self.state);
        let committer = self.committer;
        let indexer = self.indexer;
        let detector = self.detector;
        tokio::task::spawn_blocking(move || {
            // The detector stores findings through the committer: it stops first.
            if let Some(detector) = detector {
                detector.shutdown();
            }
            committer.shutdown();
            if let Some(indexer) = indexer {
                indexer.shutdown();
            }
        })
        .await
        .map_err(std::io::Error::other)
    }

    /// The handler state (for [`router`]).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// True if the API is served over HTTPS.
    pub fn https(&self) -> bool {
        self.http_tls.is_some()
    }

    /// Serves HTTP (HTTPS when the configuration names certificate files, which are reloaded
    /// when they change) on `listener` until `shutdown` completes, then seals and stops.
    pub async fn serve(
        mut self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use axum::serve::ListenerExt as _;
        let app = router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let result = match self.http_tls.take() {
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            Some(tls) => {
                let listener = tls::TlsListener::new(listener, tls)?.tap_io(|_| {});
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        if let Some(syslog) = self.syslog.take() {
            syslog.stop().await;
        }
        self.shutdown().await?;
        result
    }
}
