//! HTTP(S) client of the commands that talk to a running server (`--server URL`).
//!
//! HTTPS servers are checked against the system's trust store, or against the PEM CA
//! certificates in `SECLOG_CA_FILE` (for example `DIR/tls/ca.pem` from `seclog init
//! --self-signed`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject as _;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// An agent that answers every status (the caller reads error bodies), with an optional
/// overall timeout.
pub(crate) fn agent(timeout: Option<Duration>) -> Result<ureq::Agent> {
    let roots = match std::env::var_os("SECLOG_CA_FILE") {
        Some(path) => {
            let pem = std::fs::read(&path)
                .with_context(|| format!("reading SECLOG_CA_FILE {}", path.to_string_lossy()))?;
            let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                .map(|cert| cert.map(|cert| Certificate::from_der(cert.as_ref()).to_owned()))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("SECLOG_CA_FILE {} is not PEM", path.to_string_lossy()))?;
            RootCerts::Specific(Arc::new(certs))
        }
        None => RootCerts::PlatformVerifier,
    };
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(timeout)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .new_agent())
}
