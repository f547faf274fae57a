//! Findings delivered to real local receivers: a webhook (HMAC-signed) that fails and then
//! recovers, a Slack-compatible webhook, a SIEM listening for CEF over TLS that is down at first,
//! and an SMTP server (Python's aiosmtpd) that starts late. Each gets every finding at or above
//! its threshold exactly once.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::receiver::http_receiver;
use common::{Store, free_port, get, require_python, run};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SECRET: &str = "webhook-test-secret-3141";

/// HMAC-SHA256 written out from RFC 2104 (independent of the crate seclog uses).
fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_key: Vec<u8> = block.iter().map(|byte| byte ^ 0x36).collect();
    let outer_key: Vec<u8> = block.iter().map(|byte| byte ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner_key)
        .chain_update(message)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(&outer_key)
            .chain_update(inner)
            .finalize(),
    )
}

/// A TLS listener on `port` that keeps every line it receives (started late on purpose).
fn cef_listener(port: u16, cert_pem: String, key_pem: String, lines: Arc<Mutex<Vec<String>>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config"),
    );
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the CEF port");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (config, lines) = (Arc::clone(&config), Arc::clone(&lines));
            std::thread::spawn(move || {
                let connection = rustls::ServerConnection::new(config).expect("connection");
                let tls = rustls::StreamOwned::new(connection, stream);
                for line in BufReader::new(tls).lines() {
                    match line {
                        Ok(line) => lines.lock().unwrap().push(line),
                        Err(_) => return,
                    }
                }
            });
        }
    });
}

const SMTP_SINK: &str = r#"
import os, sys, time
from aiosmtpd.controller import Controller

class Keep:
    async def handle_DATA(self, server, session, envelope):
        directory = sys.argv[2]
        name = os.path.join(directory, "%06d.eml" % len(os.listdir(directory)))
        with open(name + ".tmp", "wb") as out:
            out.write(envelope.content)
        os.rename(name + ".tmp", name)
        return "250 OK"

controller = Controller(Keep(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
while True:
    time.sleep(1)
"#;

struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smtp_sink(port: u16, dir: &Path, script: &Path) -> Sink {
    std::fs::write(script, SMTP_SINK).expect("script");
    let child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    Sink(child)
}

fn stratus() -> Option<PathBuf> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cloudtrail/stratus");
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!("skipped: {} is absent", path.display());
        None
    }
}

#[test]
fn every_finding_reaches_every_destination_once_after_failures() {
    let Some(stratus) = stratus() else { return };
    require_python("import aiosmtpd", "aiosmtpd");
    let store = Store::new();
    let token = store.init();
    let work = tempfile::tempdir().expect("tempdir");

    let webhook = http_receiver(3);
    let slack = http_receiver(0);
    let cef_port = free_port();
    let smtp_port = free_port();
    let mail_dir = work.path().join("mail");
    std::fs::create_dir(&mail_dir).expect("mail dir");
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let ca_file = work.path().join("siem-ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).expect("ca file");
    let config = work.path().join("alerting.toml");
    std::fs::write(
        &config,
        format!(
            r#"version = 1

[[destination]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:{}/findings"
secret_env = "SECLOG_TEST_HOOK_SECRET"
min_severity = "low"

[[destination]]
name = "chat"
type = "slack"
url = "http://127.0.0.1:{}/services/T000/B000/XXXX"
min_severity = "high"

[[destination]]
name = "siem"
type = "cef"
address = "localhost:{cef_port}"
tls = true
ca_file = "{}"
min_severity = "medium"

[[destination]]
name = "mail"
type = "email"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "seclog@example.com"
to = ["soc@example.com"]
min_severity = "high"
"#,
            webhook.port,
            slack.port,
            ca_file.display()
        ),
    )
    .expect("config");

    let mut server = common::Server::start_with_env(
        &store.data(),
        &store.logs(),
        &["--alerting", config.to_str().expect("path")],
        &[("SECLOG_TEST_HOOK_SECRET", SECRET)],
    );
    let output = common::seclog()
        .args(["import", "--server", &server.url(""), "--quiet"])
        .arg(&stratus)
        .env("SECLOG_TOKEN", &token)
        .output()
        .expect("import runs");
    assert!(output.status.success(), "{}", common::describe(&output));

    // The SIEM and the mail server are down for a while, then come up.
    std::thread::sleep(Duration::from_secs(3));
    let cef_lines = Arc::new(Mutex::new(Vec::new()));
    cef_listener(
        cef_port,
        ca.cert.pem(),
        ca.signing_key.serialize_pem(),
        Arc::clone(&cef_lines),
    );
    let _smtp = smtp_sink(smtp_port, &mail_dir, &work.path().join("sink.py"));

    let deadline = Instant::now() + Duration::from_secs(180);
    let counts = loop {
        let reply = get(&server.url("/api/v1/alerts?limit=1"), Some(&token));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let counts = reply.json()["counts"].clone();
        let pending = counts["pending"].as_u64().unwrap_or(0);
        let delivered = counts["delivered"].as_u64().unwrap_or(0);
        if pending == 0 && delivered > 0 {
            break counts;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries still pending: {counts}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!("deliveries: {counts}");
    assert!(counts.get("failed").is_none(), "{counts}");
    // The CLI shows the same state while the server runs.
    let listed = common::seclog()
        .args([
            "alerts",
            "list",
            "--server",
            &server.url(""),
            "--state",
            "delivered",
        ])
        .env("SECLOG_TOKEN", &token)
        .output()
        .expect("alerts list runs");
    assert!(listed.status.success(), "{}", common::describe(&listed));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("delivered"));
    server.stop_ok();

    // What should have gone where, from the stored findings.
    let findings: Vec<Value> = store
        .cat("seclog/alerts")
        .iter()
        .map(|event| event["event"].clone())
        .collect();
    assert!(!findings.is_empty());
    let expected = |min: u64| -> BTreeSet<String> {
        findings
            .iter()
            .filter(|finding| finding["severity_id"].as_u64().unwrap_or(0) >= min)
            .map(|finding| {
                finding["metadata"]["uid"]
                    .as_str()
                    .expect("uid")
                    .to_string()
            })
            .collect()
    };
    let (low, medium, high) = (expected(2), expected(3), expected(4));
    assert!(
        !high.is_empty() && medium.len() > high.len(),
        "{findings:?}"
    );

    // Webhook: refused three times, then every finding once, signed.
    assert_eq!(webhook.refused.load(Ordering::SeqCst), 3);
    let hooks = webhook.accepted.lock().unwrap().clone();
    let ids: Vec<String> = hooks
        .iter()
        .map(|hook| hook.headers["x-seclog-finding-id"].clone())
        .collect();
    assert_eq!(
        ids.len(),
        low.len(),
        "a finding was delivered twice or not at all"
    );
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), low);
    for hook in &hooks {
        let timestamp = &hook.headers["x-seclog-timestamp"];
        let mut signed = timestamp.as_bytes().to_vec();
        signed.push(b'.');
        signed.extend_from_slice(&hook.body);
        assert_eq!(
            hook.headers["x-seclog-signature"],
            format!("sha256={}", hmac_sha256(SECRET.as_bytes(), &signed))
        );
        let finding: Value = serde_json::from_slice(&hook.body).expect("JSON body");
        assert_eq!(
            finding["metadata"]["uid"],
            hook.headers["x-seclog-finding-id"]
        );
        assert_eq!(finding["class_uid"], 2004);
    }

    // Slack: high and critical only, one message each.
    let chats = slack.accepted.lock().unwrap().clone();
    assert_eq!(chats.len(), high.len());
    for chat in &chats {
        let message: Value = serde_json::from_slice(&chat.body).expect("JSON");
        let text = message["text"].as_str().expect("text");
        assert!(
            text.starts_with("[HIGH]") || text.starts_with("[CRITICAL]"),
            "{text}"
        );
    }

    // CEF over TLS: medium and above, once each, after the SIEM came up.
    let lines = cef_lines.lock().unwrap().clone();
    let cef_ids: Vec<String> = lines
        .iter()
        .map(|line| {
            assert!(line.contains(" CEF:0|seclog|seclog|"), "{line}");
            line.split(" externalId=")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .expect("externalId")
                .to_string()
        })
        .collect();
    assert_eq!(cef_ids.len(), medium.len(), "{lines:?}");
    assert_eq!(cef_ids.into_iter().collect::<BTreeSet<_>>(), medium);

    // E-mail: high and above, once each.
    let mut mails = BTreeSet::new();
    let mut count = 0;
    for entry in std::fs::read_dir(&mail_dir).expect("mail dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|ext| ext == "eml") {
            let text = std::fs::read_to_string(&path).expect("mail");
            assert!(text.contains("Subject: [seclog "), "{text}");
            let id = text
                .lines()
                .find_map(|line| line.strip_prefix("Finding id: "))
                .expect("finding id line")
                .trim()
                .to_string();
            mails.insert(id);
            count += 1;
        }
    }
    assert_eq!(count, high.len());
    assert_eq!(mails, high);

    // After the stop the state is still there for `alerts list --data`.
    let data = store.data_arg();
    let output = run([
        "alerts", "list", "--data", &data, "--output", "json", "--limit", "100000",
    ]);
    assert!(output.status.success(), "{}", common::describe(&output));
    let reply: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let total = low.len() + high.len() + medium.len() + high.len();
    assert_eq!(
        reply["counts"]["delivered"].as_u64(),
        Some(total as u64),
        "{}",
        reply["counts"]
    );
}
