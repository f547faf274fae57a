//! TLS for every TCP listener (the HTTP API and syslog): rustls configurations read from PEM
//! files, reloaded when the files change, with optional client certificates; and the HTTPS
//! listener the HTTP server accepts connections from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

/// Time a client has to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes of the HTTPS listener in progress at once.
const MAX_HANDSHAKES: usize = 256;
/// How often the certificate files are checked for changes.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// Certificate files of a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate signed by one.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.cert, &self.key]
            .into_iter()
            .chain(self.client_ca.as_ref())
    }

    /// The files' modification times (changes trigger a reload).
    fn stamp(&self) -> Vec<Option<SystemTime>> {
        self.paths()
            .map(|path| {
                std::fs::metadata(path)
                    .and_then(|meta| meta.modified())
                    .ok()
            })
            .collect()
    }

    /// A rustls server configuration from the files; `alpn` protocols offered (HTTP/2 and
    /// HTTP/1.1 for the API, none for syslog).
    pub fn server_config(&self, alpn: &[&[u8]]) -> std::io::Result<rustls::ServerConfig> {
        let fail = |what: &str, path: &PathBuf, error: &dyn std::fmt::Display| {
            std::io::Error::other(format!("{what} {}: {error}", path.display()))
        };
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|error| fail("TLS certificate", &self.cert, &error))?;
        if certs.is_empty() {
            return Err(fail(
                "TLS certificate",
                &self.cert,
                &"no certificate in the file",
            ));
        }
        // The key's text is never put in an error: only the file's name.
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|error| fail("TLS key", &self.key, &error))?;
        let builder = rustls::ServerConfig::builder();
        let builder = match &self.client_ca {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                let cas = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|error| fail("client CA", path, &error))?;
                for ca in cas {
                    roots
                        .add(ca)
                        .map_err(|error| fail("client CA", path, &error))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .map_err(|error| fail("client CA", path, &error))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|error| fail("TLS certificate", &self.cert, &error))?;
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Ok(config)
    }
}

/// Builds a configuration from the files.
type Build = dyn Fn(&TlsFiles) -> std::io::Result<rustls::ServerConfig> + Send + Sync;

/// The configuration in use and the files' modification times it was built from.
struct Loaded {
    stamp: Vec<Option<SystemTime>>,
    config: Arc<rustls::ServerConfig>,
}

/// A TLS configuration that follows its files: [`ReloadingTls::acceptor`] hands out the newest
/// one that loaded; a change that does not load is logged and the previous one kept.
#[derive(Clone)]
pub struct ReloadingTls {
    files: TlsFiles,
    build: Arc<Build>,
    current: Arc<RwLock<Loaded>>,
    name: &'static str,
}

impl ReloadingTls {
    /// Loads `files` with `build` (fails if they do not load now).
    pub fn new(
        name: &'static str,
        files: TlsFiles,
        build: impl Fn(&TlsFiles) -> std::io::Result<rustls::ServerConfig> + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let stamp = files.stamp();
        let config = Arc::new(build(&files)?);
        Ok(ReloadingTls {
            files,
            build: Arc::new(build),
            current: Arc::new(RwLock::new(Loaded { stamp, config })),
            name,
        })
    }

    /// An acceptor with the newest configuration.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .map(|current| Arc::clone(&current.config))
            .unwrap_or_else(|poisoned| Arc::clone(&poisoned.into_inner().config));
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Reloads if a file changed since the last load; true if a new configuration is in use.
    pub fn reload_if_changed(&self) -> bool {
        let stamp = self.files.stamp();
        let unchanged = self
            .current
            .read()
            .map(|current| current.stamp == stamp)
            .unwrap_or(false);
        if unchanged {
            return false;
        }
        match (self.build)(&self.files) {
            Ok(config) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Loaded {
                        stamp,
                        config: Arc::new(config),
                    };
                }
                tracing::info!(listener = self.name, cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(error) => {
                // Remember the stamp: the same broken files are reported once, not every check.
                if let Ok(mut current) = self.current.write() {
                    current.stamp = stamp;
                }
                tracing::error!(listener = self.name, error = %error, "the changed TLS files do not load; keeping the previous certificate");
                false
            }
        }
    }

    /// Checks the files every [`RELOAD_CHECK`] until the returned task is aborted.
    pub fn watch(&self) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(RELOAD_CHECK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let check = tls.clone();
                let _ = tokio::task::spawn_blocking(move || check.reload_if_changed()).await;
            }
        })
    }
}

/// The HTTPS listener: TCP connections whose TLS handshake succeeded, handshakes done
/// concurrently (a slow client does not hold up others).
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TlsListener {
    /// Accepts on `listener` with `tls`'s newest configuration.
    pub fn new(listener: TcpListener, tls: ReloadingTls) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (sender, incoming) = mpsc::channel(64);
        let watcher = tls.watch();
        // Handshakes in progress at most: beyond, accepting waits (a flood of idle connections
        // cannot use up file descriptors the journal needs).
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(error = %error, "HTTPS accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = tls.acceptor();
                let sender = sender.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::warn!(peer = %peer, error = %error, "HTTPS handshake failed");
                        }
                        Err(_) => tracing::warn!(peer = %peer, "HTTPS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            incoming,
            local,
            tasks: vec![watcher, acceptor],
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended (only when the listener is dropped): accept no more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
