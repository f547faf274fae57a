//! Security logging for Rust services, the way seclog reads it best.
//!
//! - [`init`] installs a `tracing` subscriber whose [`JsonLayer`] writes one JSON object per
//!   event: RFC 3339 UTC nanosecond `timestamp`, `level`, `target`, `message`, `service`
//!   (name, version, host), the request context (`correlation_id`, `trace_id`, `span_id`,
//!   `src_endpoint.ip`, `http_request`, `actor.user`, `actor.session`) and the event's own
//!   `fields`. Secrets are redacted before anything is written ([`redact`]).
//! - [`SecurityEvent`] builds authentication, authorization, data access, configuration change
//!   and suspicious-activity events, each an OCSF class with a severity ([`event`]).
//! - [`middleware::RequestLogLayer`] gives every request a correlation id and trace context,
//!   finds the client's address, logs the request and carries the context to every event.
//! - Lines go to stdout and/or to seclog ([`ship`]): batched, spooled to disk, sent with
//!   retries; each batch is stored once.
//!
//! ```no_run
//! # fn main() -> Result<(), seclog_app::Error> {
//! let logging = seclog_app::init(seclog_app::Config::from_env("payments", env!("CARGO_PKG_VERSION"))?)?;
//! seclog_app::SecurityEvent::login_failure("alice", "wrong password").emit();
//! logging.shutdown();
//! # Ok(()) }
//! ```

#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]
#![warn(missing_docs)]

mod buffer;
pub mod context;
pub mod event;
mod layer;
pub mod middleware;
pub mod redact;
pub mod ship;
mod stdout;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use context::{clear_identity, propagate, set_session, set_user};
pub use event::{Classification, DataAction, SecurityEvent, Severity};
pub use layer::JsonLayer;
pub use redact::Redactor;
pub use ship::{Stats, StatsSnapshot};

/// Errors of setting logging up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// The spool directory or a thread could not be set up.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A global subscriber is installed already.
    #[error("a tracing subscriber is installed already")]
    AlreadyInstalled,
}

/// The service the events come from.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its name (`payments`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// The host it runs on.
    pub host: String,
}

/// A token that is never printed.
#[derive(Clone)]
pub struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(zeroize::Zeroizing::new(value.into()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret([REDACTED])")
    }
}

/// Where and how events go to seclog.
#[derive(Debug, Clone)]
pub struct SeclogConfig {
    /// seclog's base URL (`https://seclog.example:8080`).
    pub url: String,
    /// An ingest token covering `group`.
    pub token: Secret,
    /// The log group (default `app/<service name>`).
    pub group: String,
    /// The spool directory; `None` keeps unsent batches in memory only (lost on restart).
    pub spool_dir: Option<PathBuf>,
    /// PEM CA certificates to check seclog's certificate with (default: the system's).
    pub ca_file: Option<PathBuf>,
    /// Bytes of lines waiting in memory for the batcher; beyond it lines are dropped and
    /// counted.
    pub queue_max_bytes: usize,
    /// A batch closes at this many bytes ...
    pub batch_max_bytes: usize,
    /// ... or events ...
    pub batch_max_events: usize,
    /// ... or this long after its first event.
    pub flush_interval: Duration,
    /// The spool's size limit; beyond it the oldest batches are dropped and counted.
    pub max_spool_bytes: u64,
    /// How long [`Logging::shutdown`] keeps sending the spool.
    pub shutdown_timeout: Duration,
}

impl SeclogConfig {
    /// Defaults for sending to `url` with `token` into `app/<service>`.
    pub fn new(url: impl Into<String>, token: Secret, service: &str) -> SeclogConfig {
        SeclogConfig {
            url: url.into(),
            token,
            group: format!("app/{service}"),
            spool_dir: None,
            ca_file: None,
            queue_max_bytes: 64 << 20,
            batch_max_bytes: 1 << 20,
            batch_max_events: 10_000,
            flush_interval: Duration::from_secs(1),
            max_spool_bytes: 1 << 30,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// Everything [`init`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The service.
    pub service: Service,
    /// Write lines to stdout.
    pub stdout: bool,
    /// Send lines to seclog.
    pub seclog: Option<SeclogConfig>,
    /// Redaction rules (and pseudonyms of user names).
    pub redactor: Redactor,
    /// The `tracing` filter (`RUST_LOG` syntax); default `info`. Security events (target
    /// `security`) and request logs (`http`) are always written at `info` and above.
    pub filter: String,
}

impl Config {
    /// Settings from the environment: `SECLOG_URL` and `SECLOG_TOKEN` (both, or neither for
    /// stdout only), `SECLOG_GROUP`, `SECLOG_SPOOL_DIR`, `SECLOG_CA_FILE`, `SECLOG_STDOUT`
    /// (`0` turns stdout off), `SECLOG_PSEUDONYM_KEY` (user names become keyed pseudonyms),
    /// `RUST_LOG`.
    pub fn from_env(service: &str, version: &str) -> Result<Config, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let seclog = match (var("SECLOG_URL"), var("SECLOG_TOKEN")) {
            (Some(url), Some(token)) => {
                let mut seclog = SeclogConfig::new(url, Secret::new(token), service);
                if let Some(group) = var("SECLOG_GROUP") {
                    seclog.group = group;
                }
                seclog.spool_dir = var("SECLOG_SPOOL_DIR").map(PathBuf::from);
                seclog.ca_file = var("SECLOG_CA_FILE").map(PathBuf::from);
                Some(seclog)
            }
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "SECLOG_URL and SECLOG_TOKEN go together: set both or neither".into(),
                ));
            }
        };
        let mut redactor = Redactor::default();
        if let Some(key) = var("SECLOG_PSEUDONYM_KEY") {
            redactor = redactor.with_pseudonym_key(key.as_bytes());
        }
        Ok(Config {
            service: Service {
                name: service.to_string(),
                version: version.to_string(),
                host: hostname(),
            },
            stdout: var("SECLOG_STDOUT").is_none_or(|value| value != "0"),
            seclog,
            redactor,
            filter: var("RUST_LOG").unwrap_or_else(|| "info".into()),
        })
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

static REDACTOR: RwLock<Option<Arc<Redactor>>> = RwLock::new(None);

/// The redactor [`init`] (or [`layer`]) installed, the default rules before.
pub fn redactor() -> Arc<Redactor> {
    let installed = REDACTOR
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    installed.unwrap_or_else(|| Arc::new(Redactor::default()))
}

/// The running logging pipeline; [`Logging::shutdown`] delivers what it can before exit.
pub struct Logging {
    stats: Arc<Stats>,
    stdout: Option<stdout::StdoutQueue>,
    shipper: Option<ship::Shipper>,
}

impl Logging {
    /// The counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// A shared handle to the counters (for a metrics endpoint).
    pub fn stats_handle(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Closes the open batch into the spool and writes out stdout.
    pub fn flush(&self) {
        if let Some(shipper) = &self.shipper {
            shipper.flush();
        }
        if let Some(stdout) = &self.stdout {
            stdout.flush();
        }
    }

    /// Flushes, then sends the spool for up to the shutdown timeout; the rest stays in the
    /// spool directory for the next start.
    pub fn shutdown(self) {
        if let Some(stdout) = &self.stdout {
            stdout.flush();
        }
        if let Some(shipper) = self.shipper {
            shipper.shutdown();
        }
    }
}

/// Builds the layer and its outputs without installing anything (to compose with other
/// layers).
pub fn layer(config: &Config) -> Result<(JsonLayer, Logging), Error> {
    *REDACTOR
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some(Arc::new(config.redactor.clone()));
    let stats = Arc::new(Stats::default());
    let stdout = if config.stdout {
        Some(stdout::StdoutQueue::start(64 << 20, Arc::clone(&stats))?)
    } else {
        None
    };
    let shipper = match &config.seclog {
        Some(seclog) => Some(ship::Shipper::start(seclog, Arc::clone(&stats))?),
        None => None,
    };
    let outputs = layer::Outputs {
        stdout: stdout.clone(),
        seclog: shipper.as_ref().map(ship::Shipper::queue),
    };
    let layer = JsonLayer::new(
        &config.service,
        config.redactor.clone(),
        outputs,
        Arc::clone(&stats),
    );
    Ok((
        layer,
        Logging {
            stats,
            stdout,
            shipper,
        },
    ))
}

/// Installs the global subscriber: [`JsonLayer`] under the configured filter.
pub fn init(config: Config) -> Result<Logging, Error> {
    use tracing_subscriber::layer::SubscriberExt as _;
    // Security events and request logs pass whatever the filter says for the rest: a quiet
    // `RUST_LOG=error` must not turn off the audit trail.
    let directives = format!("{},security=info,http=info", config.filter);
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .map_err(|error| Error::Config(format!("filter {:?}: {error}", config.filter)))?;
    let (layer, logging) = layer(&config)?;
    let subscriber = tracing_subscriber::registry().with(filter).with(layer);
    tracing::subscriber::set_global_default(subscriber).map_err(|_| Error::AlreadyInstalled)?;
    Ok(logging)
}
