//! The HTTP client of the shipper: one numbered batch per request to seclog's ingest API.

use std::fs;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Error, SeclogConfig};

pub(super) enum Outcome {
    /// Stored (now or before); `rejected` of its lines went to seclog's dead-letter group.
    Stored { rejected: u64 },
    /// Malformed or too large: sending it again cannot help.
    Refused(String),
    /// Not stored: send again later.
    Retry(String),
}

pub(super) struct Client {
    agent: ureq::Agent,
    url: String,
    authorization: String,
}

/// The longest a request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    pub(super) fn new(config: &SeclogConfig) -> Result<Client, Error> {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        // rustls needs one process-wide crypto provider; an application may have chosen one.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let roots = match &config.ca_file {
            Some(path) => {
                use rustls::pki_types::pem::PemObject as _;
                let pem = fs::read(path).map_err(Error::Io)?;
                let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                    .map(|cert| cert.map(|cert| Certificate::from_der(cert.as_ref()).to_owned()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| Error::Config(format!("{} is not PEM", path.display())))?;
                RootCerts::Specific(Arc::new(certs))
            }
            None => RootCerts::PlatformVerifier,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        let base = config.url.trim_end_matches('/');
        let group = config.group.replace('/', "%2F");
        Ok(Client {
            agent,
            url: format!("{base}/api/v1/ingest/{group}"),
            authorization: format!("Bearer {}", config.token.as_str()),
        })
    }

    /// Sends batch `number` of `producer`; gives up at `deadline` (shutdown) if one is set.
    pub(super) fn send(
        &self,
        producer: &str,
        number: u64,
        lines: &[u8],
        deadline: Option<Instant>,
    ) -> Outcome {
        let mut gzip = flate2::write::GzEncoder::new(
            Vec::with_capacity(lines.len() / 4),
            flate2::Compression::fast(),
        );
        if gzip.write_all(lines).is_err() {
            return Outcome::Retry("compression failed".into());
        }
        let Ok(body) = gzip.finish() else {
            return Outcome::Retry("compression failed".into());
        };
        let response = self
            .agent
            .post(&self.url)
            .header("authorization", &self.authorization)
            .header("content-type", "application/x-ndjson")
            .header("content-encoding", "gzip")
            .header("seclog-producer", producer)
            .header("seclog-batch", &number.to_string())
            .config()
            .timeout_global(Some(deadline.map_or(REQUEST_TIMEOUT, |deadline| {
                deadline
                    .saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), REQUEST_TIMEOUT)
            })))
            .build()
            .send(&body[..]);
        let mut response = match response {
            Ok(response) => response,
            Err(error) => return Outcome::Retry(error.to_string()),
        };
        let status = response.status().as_u16();
        let mut reason = || {
            let mut text = String::new();
            let _ = response
                .body_mut()
                .as_reader()
                .take(512)
                .read_to_string(&mut text);
            format!("status {status}: {}", text.trim())
        };
        match status {
            200..=299 => {
                let mut text = String::new();
                let _ = response
                    .body_mut()
                    .as_reader()
                    .take(4096)
                    .read_to_string(&mut text);
                let reply: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                Outcome::Stored {
                    rejected: reply["rejected"].as_u64().unwrap_or(0),
                }
            }
            // Malformed or too large: sending it again cannot help.
            400 | 413 | 415 | 422 => Outcome::Refused(reason()),
            // A wrong or revoked token, an unreachable or busy server: the events wait in the
            // spool until it is fixed.
            _ => Outcome::Retry(reason()),
        }
    }
}
