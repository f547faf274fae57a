//! Where findings are delivered: the `--alerting FILE` (TOML) destinations.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The alerting file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Format version (1).
    pub version: u32,
    /// Destinations, each with its own severity threshold and throttling.
    #[serde(default, rename = "destination")]
    pub destinations: Vec<DestinationConfig>,
}

/// One destination. (Unknown keys are refused by [`AlertingConfig::parse`]: serde cannot deny
/// them across the flattened transport.)
#[derive(Debug, Clone, Deserialize)]
pub struct DestinationConfig {
    /// Its name (in delivery state, metrics and `seclog alerts list`).
    pub name: String,
    /// Findings below this severity are not sent here (`informational` … `critical`).
    #[serde(default = "default_min_severity")]
    pub min_severity: String,
    /// At most this many deliveries per minute; the rest wait their turn (0: no limit).
    #[serde(default)]
    pub max_per_minute: u32,
    /// Findings of the same rule with the same group-by values (the de-duplication key) within
    /// this many seconds of one already sent are recorded as suppressed, not sent (0: off).
    #[serde(default)]
    pub suppress_secs: u64,
    /// Give up on a finding after this many seconds of failed attempts (default one day).
    #[serde(default = "default_give_up_secs")]
    pub give_up_secs: u64,
    /// The transport.
    #[serde(flatten)]
    pub kind: DestinationKind,
}

/// How a destination is reached.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum DestinationKind {
    /// HTTP POST of the finding (JSON), signed with HMAC-SHA256 in `X-Seclog-Signature`.
    Webhook {
        /// The URL.
        url: String,
        /// Name of the environment variable holding the HMAC key (never the key itself).
        #[serde(default)]
        secret_env: Option<String>,
        /// Extra CA certificates (PEM) trusted for https.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
    /// A Slack-compatible incoming webhook (`{"text": …}`).
    Slack {
        /// The webhook URL, or the name of the environment variable holding it (`url_env`),
        /// since a Slack webhook URL is itself a secret.
        #[serde(default)]
        url: Option<String>,
        /// Environment variable holding the URL.
        #[serde(default)]
        url_env: Option<String>,
    },
    /// Syslog (RFC 5424) carrying CEF, over TCP or TLS, to a SIEM.
    Cef {
        /// `host:port`.
        address: String,
        /// Use TLS.
        #[serde(default)]
        tls: bool,
        /// CA certificates (PEM) that sign the SIEM's certificate (default: the system's).
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// `lf` (newline after each message, the default) or `octet-counting` (RFC 6587).
        #[serde(default = "default_framing")]
        framing: String,
    },
    /// E-mail over SMTP.
    Email {
        /// SMTP server host.
        host: String,
        /// Port (default 25, or 465 with `tls = "tls"`, 587 with `starttls`).
        #[serde(default)]
        port: Option<u16>,
        /// `none`, `starttls` or `tls`.
        #[serde(default = "default_smtp_tls")]
        tls: String,
        /// Sender address.
        from: String,
        /// Recipients.
        to: Vec<String>,
        /// SMTP user name.
        #[serde(default)]
        username: Option<String>,
        /// Environment variable holding the SMTP password.
        #[serde(default)]
        password_env: Option<String>,
    },
}

fn default_min_severity() -> String {
    "high".into()
}

fn default_give_up_secs() -> u64 {
    86_400
}

fn default_framing() -> String {
    "lf".into()
}

fn default_smtp_tls() -> String {
    "starttls".into()
}

/// Keys every destination may have.
const COMMON_KEYS: &[&str] = &[
    "name",
    "type",
    "min_severity",
    "max_per_minute",
    "suppress_secs",
    "give_up_secs",
];

/// Keys of each transport.
fn transport_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "webhook" => &["url", "secret_env", "ca_file"],
        "slack" => &["url", "url_env"],
        "cef" => &["address", "tls", "ca_file", "framing"],
        "email" => &[
            "host",
            "port",
            "tls",
            "from",
            "to",
            "username",
            "password_env",
        ],
        _ => return None,
    })
}

impl AlertingConfig {
    /// Reads the file's content (already turned into JSON), refusing unknown keys, and checks
    /// it; every problem is reported at once.
    pub fn parse(value: serde_json::Value) -> Result<AlertingConfig, String> {
        let mut problems = Vec::new();
        if let Some(object) = value.as_object() {
            for key in object.keys() {
                if key != "version" && key != "destination" {
                    problems.push(format!("unknown key {key:?}"));
                }
            }
        }
        for (index, destination) in value["destination"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let kind = destination["type"].as_str().unwrap_or_default();
            let Some(keys) = transport_keys(kind) else {
                problems.push(format!(
                    "destination {}: type must be webhook, slack, cef or email",
                    index + 1
                ));
                continue;
            };
            for key in destination.as_object().into_iter().flat_map(|o| o.keys()) {
                if !COMMON_KEYS.contains(&key.as_str()) && !keys.contains(&key.as_str()) {
                    problems.push(format!(
                        "destination {}: unknown key {key:?} for type {kind}",
                        index + 1
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let config: AlertingConfig =
            serde_json::from_value(value).map_err(|error| error.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Every problem at once.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.version != 1 {
            problems.push(format!("version {} is not known (1 is)", self.version));
        }
        let mut names = std::collections::HashSet::new();
        for destination in &self.destinations {
            let name = &destination.name;
            if name.is_empty() || !names.insert(name.clone()) {
                problems.push(format!(
                    "destination names must be unique and not empty: {name:?}"
                ));
            }
            if seclog_detect::Level::parse(&destination.min_severity).is_none() {
                problems.push(format!(
                    "{name}: min_severity {:?} is not a Sigma level",
                    destination.min_severity
                ));
            }
            match &destination.kind {
                DestinationKind::Webhook {
                    url, secret_env, ..
                } => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        problems.push(format!("{name}: url must be http:// or https://"));
                    }
                    if let Some(var) = secret_env
                        && std::env::var_os(var).is_none()
                    {
                        problems.push(format!("{name}: environment variable {var} is not set"));
                    }
                }
                DestinationKind::Slack { url, url_env } => match (url, url_env) {
                    (Some(_), None) => {}
                    (None, Some(var)) if std::env::var_os(var).is_some() => {}
                    (None, Some(var)) => {
                        problems.push(format!("{name}: environment variable {var} is not set"))
                    }
                    _ => problems.push(format!("{name}: give one of url and url_env")),
                },
                DestinationKind::Cef {
                    address, framing, ..
                } => {
                    if address.rsplit_once(':').is_none() {
                        problems.push(format!("{name}: address must be host:port"));
                    }
                    if framing != "lf" && framing != "octet-counting" {
                        problems.push(format!("{name}: framing must be lf or octet-counting"));
                    }
                }
                DestinationKind::Email {
                    tls,
                    to,
                    password_env,
                    ..
                } => {
                    if !["none", "starttls", "tls"].contains(&tls.as_str()) {
                        problems.push(format!("{name}: tls must be none, starttls or tls"));
                    }
                    if to.is_empty() {
                        problems.push(format!("{name}: no recipients"));
                    }
                    if let Some(var) = password_env
                        && std::env::var_os(var).is_none()
                    {
                        problems.push(format!("{name}: environment variable {var} is not set"));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

impl DestinationConfig {
    /// The least severity sent here.
    pub fn threshold(&self) -> seclog_detect::Level {
        seclog_detect::Level::parse(&self.min_severity).unwrap_or(seclog_detect::Level::High)
    }

    /// How long to keep trying.
    pub fn give_up(&self) -> Duration {
        Duration::from_secs(self.give_up_secs)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn destinations_parse_and_unknown_keys_are_refused() {
        let config = AlertingConfig::parse(json!({
            "version": 1,
            "destination": [
                {"name": "siem", "type": "cef", "address": "siem:6514", "tls": true, "min_severity": "medium"},
                {"name": "mail", "type": "email", "host": "smtp", "from": "a@b.c", "to": ["d@e.f"]},
            ]
        }))
        .unwrap();
        assert_eq!(config.destinations.len(), 2);
        assert_eq!(
            config.destinations[0].threshold(),
            seclog_detect::Level::Medium
        );
        assert_eq!(
            config.destinations[1].threshold(),
            seclog_detect::Level::High
        );
        let error = AlertingConfig::parse(json!({
            "version": 1,
            "destination": [{"name": "x", "type": "webhook", "url": "http://h/", "secret": "s"}]
        }))
        .unwrap_err();
        assert!(error.contains("unknown key \"secret\""), "{error}");
        let error = AlertingConfig::parse(json!({
            "version": 1,
            "destination": [
                {"name": "x", "type": "webhook", "url": "ftp://h/", "min_severity": "urgent"},
                {"name": "x", "type": "slack"}
            ]
        }))
        .unwrap_err();
        for problem in [
            "http:// or https://",
            "not a Sigma level",
            "unique",
            "url and url_env",
        ] {
            assert!(error.contains(problem), "{error}");
        }
    }
}
