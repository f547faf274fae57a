//! The HTTP client of the shipper: one numbered batch per request to seclog's ingest API.

use std::fs;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::{Error, SeclogConfig};

pub(super) enum Outcome {
    Stored,
    Refused(String),
    Retry(String),
}

pub(super) struct Client {
    agent: ureq::Agent,
    url: String,
    authorization: String,
    producer: String,
}

impl Client {
    pub(super) fn new(config: &SeclogConfig, producer: String) -> Result<Client, Error> {
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
            .timeout_global(Some(Duration::from_secs(30)))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        let base = config.url.trim_end_matches('/');
        let group = config.group.replace('/', "%2F");
        Ok(Client {
            agent,
            url: format!("{base}/api/v1/ingest/{group}"),
            authorization: format!("Bearer {}", config.token.as_str()),
            producer,
        })
    }

    pub(super) fn send(&self, number: u64, lines: &[u8]) -> Outcome {
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
            .header("seclog-producer", &self.producer)
            .header("seclog-batch", &number.to_string())
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
            200..=299 => Outcome::Stored,
            // Malformed or too large: sending it again cannot help.
            400 | 413 | 415 | 422 => Outcome::Refused(reason()),
            // A wrong or revoked token, an unreachable or busy server: the events wait in the
            // spool until it is fixed.
            _ => Outcome::Retry(reason()),
        }
    }
}
