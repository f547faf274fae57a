//! The transports: generic webhook (HMAC-signed), Slack-compatible webhook, CEF over syslog
//! TCP/TLS, e-mail over SMTP. Each returns a safe error text (no URLs, no secrets).

use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::config::{DestinationConfig, DestinationKind};

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// What is delivered: the finding and the keys receivers de-duplicate on.
pub(crate) struct Outgoing<'a> {
    pub(crate) finding: &'a Value,
    pub(crate) finding_id: &'a str,
    pub(crate) dedup_key: &'a str,
}

/// A destination ready to send: its config and, for CEF, its open connection.
pub(crate) struct Sender {
    pub(crate) config: DestinationConfig,
    http: Option<reqwest::Client>,
    connection: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
}

impl Sender {
    pub(crate) fn new(config: DestinationConfig) -> Result<Sender, String> {
        let http = match &config.kind {
            DestinationKind::Webhook { ca_file, .. } => {
                let mut builder = reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT);
                if let Some(path) = ca_file {
                    let pem = std::fs::read(path)
                        .map_err(|error| format!("{}: {error}", path.display()))?;
                    for cert in reqwest::Certificate::from_pem_bundle(&pem)
                        .map_err(|error| format!("{}: {error}", path.display()))?
                    {
                        builder = builder.add_root_certificate(cert);
                    }
                }
                Some(builder.build().map_err(|error| error.to_string())?)
            }
            DestinationKind::Slack { .. } => Some(
                reqwest::Client::builder()
                    .timeout(ATTEMPT_TIMEOUT)
                    .build()
                    .map_err(|error| error.to_string())?,
            ),
            _ => None,
        };
        Ok(Sender {
            config,
            http,
            connection: None,
        })
    }

    /// One attempt; `Err` is a reason safe to show (it never names the URL or a secret).
    pub(crate) async fn send(&mut self, outgoing: &Outgoing<'_>) -> Result<(), String> {
        match tokio::time::timeout(ATTEMPT_TIMEOUT, self.attempt(outgoing)).await {
            Ok(result) => result,
            Err(_) => {
                self.connection = None;
                Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()))
            }
        }
    }

    async fn attempt(&mut self, outgoing: &Outgoing<'_>) -> Result<(), String> {
        match self.config.kind.clone() {
            DestinationKind::Webhook {
                url, secret_env, ..
            } => {
                let body = serde_json::to_vec(outgoing.finding).map_err(|e| e.to_string())?;
                let timestamp = seclog_model::Timestamp::now().unix_seconds().to_string();
                let mut request = self
                    .http()?
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-seclog-finding-id", outgoing.finding_id)
                    .header("x-seclog-dedup-key", outgoing.dedup_key)
                    .header("x-seclog-timestamp", &timestamp);
                if let Some(var) = secret_env {
                    let secret = std::env::var(&var)
                        .map_err(|_| format!("environment variable {var} is not set"))?;
                    request = request.header(
                        "x-seclog-signature",
                        format!("sha256={}", sign(secret.as_bytes(), &timestamp, &body)),
                    );
                }
                check_http(request.body(body).send().await).await
            }
            DestinationKind::Slack { url, url_env } => {
                let url = match (url, url_env) {
                    (Some(url), _) => url,
                    (None, Some(var)) => std::env::var(&var)
                        .map_err(|_| format!("environment variable {var} is not set"))?,
                    (None, None) => return Err("no URL".into()),
                };
                let body = json!({ "text": slack_text(outgoing.finding) });
                let request = self
                    .http()?
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.to_string());
                check_http(request.send().await).await
            }
            DestinationKind::Cef {
                address,
                tls,
                ca_file,
                framing,
            } => {
                let line = cef_syslog(outgoing.finding, outgoing.finding_id);
                let mut frame = Vec::with_capacity(line.len() + 8);
                if framing == "octet-counting" {
                    frame.extend_from_slice(format!("{} ", line.len()).as_bytes());
                    frame.extend_from_slice(line.as_bytes());
                } else {
                    frame.extend_from_slice(line.as_bytes());
                    frame.push(b'\n');
                }
                if self.connection.is_none() {
                    self.connection = Some(connect(&address, tls, ca_file.as_deref()).await?);
                }
                let Some(connection) = self.connection.as_mut() else {
                    return Err("not connected".into());
                };
                let written = async {
                    connection.write_all(&frame).await?;
                    connection.flush().await
                }
                .await;
                if let Err(error) = written {
                    self.connection = None;
                    return Err(format!("writing to {address}: {error}"));
                }
                Ok(())
            }
            DestinationKind::Email {
                host,
                port,
                tls,
                from,
                to,
                username,
                password_env,
            } => {
                send_email(
                    &host,
                    port,
                    &tls,
                    &from,
                    &to,
                    username.as_deref(),
                    password_env.as_deref(),
                    outgoing,
                )
                .await
            }
        }
    }

    fn http(&self) -> Result<&reqwest::Client, String> {
        self.http
            .as_ref()
            .ok_or_else(|| "no HTTP client".to_string())
    }
}

/// `HMAC-SHA256(secret, "<timestamp>.<body>")` in hex: the receiver recomputes it with the
/// `X-Seclog-Timestamp` header and refuses stale timestamps (replays).
pub(crate) fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn check_http(reply: Result<reqwest::Response, reqwest::Error>) -> Result<(), String> {
    match reply {
        Ok(reply) if reply.status().is_success() => Ok(()),
        Ok(reply) => Err(format!("the receiver answered {}", reply.status())),
        // Without the URL: a Slack webhook URL is a secret.
        Err(error) => Err(error.without_url().to_string()),
    }
}

async fn connect(
    address: &str,
    tls: bool,
    ca_file: Option<&std::path::Path>,
) -> Result<Box<dyn tokio::io::AsyncWrite + Send + Unpin>, String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|error| format!("connecting to {address}: {error}"))?;
    stream.set_nodelay(true).ok();
    if !tls {
        return Ok(Box::new(stream));
    }
    let config = match ca_file {
        Some(path) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|error| format!("{}: {error}", path.display()))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|error| format!("{}: {error}", path.display()))?;
            }
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::ConfigVerifierExt;
            rustls::ClientConfig::with_platform_verifier().map_err(|error| error.to_string())?
        }
    };
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|error| format!("{host}: {error}"))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|error| format!("TLS with {address}: {error}"))?;
    Ok(Box::new(stream))
}

#[allow(clippy::too_many_arguments)]
async fn send_email(
    host: &str,
    port: Option<u16>,
    tls: &str,
    from: &str,
    to: &[String],
    username: Option<&str>,
    password_env: Option<&str>,
    outgoing: &Outgoing<'_>,
) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let finding = outgoing.finding;
    let severity = finding["severity"].as_str().unwrap_or("Unknown");
    let title = finding["finding_info"]["title"]
        .as_str()
        .unwrap_or("finding");
    let mut message = Message::builder()
        .from(from.parse().map_err(|error| format!("from: {error}"))?)
        .subject(format!("[seclog {}] {title}", severity.to_uppercase()))
        .header(ContentType::TEXT_PLAIN);
    for recipient in to {
        message = message.to(recipient.parse().map_err(|error| format!("to: {error}"))?);
    }
    let body = format!(
        "{}\n\nFinding id: {}\nDe-duplication key: {}\n\n{}\n",
        slack_text(finding),
        outgoing.finding_id,
        outgoing.dedup_key,
        serde_json::to_string_pretty(finding).unwrap_or_default()
    );
    let message = message.body(body).map_err(|error| error.to_string())?;
    let mut builder = match tls {
        "none" => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port.unwrap_or(25))
        }
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
            .map_err(|error| error.to_string())?
            .port(port.unwrap_or(465)),
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
            .map_err(|error| error.to_string())?
            .port(port.unwrap_or(587)),
    };
    if let Some(user) = username {
        let password = match password_env {
            Some(var) => {
                std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?
            }
            None => String::new(),
        };
        builder = builder.credentials(Credentials::new(user.to_string(), password));
    }
    builder
        .timeout(Some(ATTEMPT_TIMEOUT))
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|error| format!("SMTP: {error}"))
}

/// One line for people: severity, title, group-by values, evidence.
pub(crate) fn slack_text(finding: &Value) -> String {
    let severity = finding["severity"].as_str().unwrap_or("Unknown");
    let title = finding["finding_info"]["title"]
        .as_str()
        .unwrap_or("finding");
    let mut text = format!("[{}] {title}", severity.to_uppercase());
    if let Some(group_by) = finding["unmapped"]["sigma"]["group_by"].as_object() {
        let keys: Vec<String> = group_by
            .iter()
            .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
            .collect();
        text.push_str(&format!(" ({})", keys.join(", ")));
    }
    if let Some(events) = finding["evidences"][0]["data"]["events"].as_array() {
        let first = &events.first().cloned().unwrap_or_default();
        text.push_str(&format!(
            "; {} event(s), first {}:{}",
            events.len(),
            first["group"].as_str().unwrap_or_default(),
            first["seq"]
        ));
    }
    text
}

/// CEF extension value escaping: backslash, equals sign, newlines.
fn cef_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('=', "\\=")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// CEF header field escaping: backslash and pipe.
fn cef_header(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|")
}

/// The finding as an RFC 5424 syslog message carrying CEF.
pub(crate) fn cef_syslog(finding: &Value, finding_id: &str) -> String {
    let severity_id = finding["severity_id"].as_u64().unwrap_or(3);
    // CEF severity 0–10 and syslog severity (facility auth, 4).
    let (cef_severity, syslog_severity) = match severity_id {
        5 => (10, 2),
        4 => (8, 3),
        3 => (5, 4),
        2 => (3, 5),
        _ => (1, 6),
    };
    let info = &finding["finding_info"];
    let title = info["title"].as_str().unwrap_or("finding");
    let signature = info["analytic"]["uid"].as_str().unwrap_or(title);
    let time_ms = finding["time"].as_i64().unwrap_or(0);
    let mut extension = vec![
        format!("rt={time_ms}"),
        format!("externalId={}", cef_value(finding_id)),
        format!("msg={}", cef_value(title)),
        format!(
            "cat={}",
            cef_value(info["analytic"]["category"].as_str().unwrap_or("detection"))
        ),
    ];
    if let Some(first) = finding["evidences"][0]["data"]["events"]
        .as_array()
        .and_then(|events| events.first())
    {
        extension.push("cs1Label=evidenceGroup".into());
        extension.push(format!(
            "cs1={}",
            cef_value(first["group"].as_str().unwrap_or(""))
        ));
        extension.push("cn1Label=evidenceSeq".into());
        extension.push(format!("cn1={}", first["seq"]));
    }
    if let Some(group_by) = finding["unmapped"]["sigma"]["group_by"].as_object() {
        let keys: Vec<String> = group_by
            .iter()
            .map(|(key, value)| format!("{key}:{}", value.as_str().unwrap_or_default()))
            .collect();
        extension.push("cs2Label=groupBy".into());
        extension.push(format!("cs2={}", cef_value(&keys.join(","))));
    }
    let time = seclog_model::Timestamp::from_unix_nanos(time_ms.saturating_mul(1_000_000));
    format!(
        "<{}>1 {} {} seclog - - - CEF:0|seclog|seclog|{}|{}|{}|{}|{}",
        4 * 8 + syslog_severity,
        time.to_rfc3339(),
        hostname(),
        env!("CARGO_PKG_VERSION"),
        cef_header(signature),
        cef_header(title),
        cef_severity,
        extension.join(" ")
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty() && !name.contains(' '))
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_escapes_headers_and_extensions() {
        let finding = json!({
            "severity_id": 4,
            "time": 1_700_000_000_000i64,
            "finding_info": {"title": "a|b=c", "analytic": {"uid": "r\\1", "category": "web"}},
            "evidences": [{"data": {"events": [{"group": "aws/alb", "seq": 7}]}}],
        });
        let line = cef_syslog(&finding, "id=1");
        assert!(line.starts_with("<35>1 2023-11-14T22:13:20"), "{line}");
        assert!(line.contains("CEF:0|seclog|seclog|"), "{line}");
        assert!(line.contains("|r\\\\1|a\\|b=c|8|"), "{line}");
        assert!(line.contains("externalId=id\\=1"), "{line}");
        assert!(line.contains("msg=a|b\\=c"), "{line}");
        assert!(
            line.contains("cs1=aws/alb cn1Label=evidenceSeq cn1=7"),
            "{line}"
        );
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // HMAC-SHA256("key", "1.{}") computed with Python's hmac module.
        assert_eq!(
            sign(b"key", "1", b"{}"),
            "1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }
}
