//! HTTPS for the API with real clients: `seclog init --self-signed`, Python `requests` and
//! `urllib3` verifying against the generated CA, refusals for the system trust store, a wrong
//! CA and plaintext HTTP; client certificates; a certificate replaced on disk taken up without
//! a restart; and the command line's own client (`SECLOG_CA_FILE`).

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{FAST_EPOCHS, Store, parse_admin_token};
use serde_json::Value;

/// `seclog serve` over HTTPS: waits until a TLS client trusting `ca` gets `/healthz`.
struct HttpsServer {
    child: Child,
    port: u16,
    stderr: PathBuf,
}

impl HttpsServer {
    fn start(store: &Store, ca: &Path, extra: &[&str]) -> HttpsServer {
        HttpsServer::start_with(store, ca, extra, None)
    }

    /// Starts `seclog serve` with `extra` flags; ready when a TLS client trusting `ca` (and
    /// presenting `client`, a certificate and key, when given) gets `/healthz`.
    fn start_with(
        store: &Store,
        ca: &Path,
        extra: &[&str],
        client: Option<(&Path, &Path)>,
    ) -> HttpsServer {
        let port = common::free_port();
        let stderr = store.logs().join(format!("https-{port}.stderr"));
        let child = common::seclog()
            .args(["serve", "--data", &store.data_arg(), "--http"])
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("seclog serve starts");
        let server = HttpsServer {
            child,
            port,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let url = server.url("/healthz");
            let mut args = vec![url.as_str(), ca.to_str().expect("UTF-8"), ""];
            if let Some((cert, key)) = client {
                args.push(cert.to_str().expect("UTF-8"));
                args.push(key.to_str().expect("UTF-8"));
            }
            let probe = python(REQUEST, &args);
            if probe["status"] == 200 {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "no HTTPS answer: {probe}\n{}",
                std::fs::read_to_string(&server.stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "seclog serve exited with {status}");
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET with `requests` (`verify` = the CA file, or the system store when empty; an
/// optional token and client certificate); prints `{"status", "body"}` or `{"error"}`.
const REQUEST: &str = r#"
import json, sys, requests
url, ca, token = sys.argv[1], sys.argv[2], sys.argv[3]
cert = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else None
headers = {"Authorization": "Bearer " + token} if token else {}
try:
    reply = requests.get(url, headers=headers, verify=ca or True, cert=cert, timeout=10)
    print(json.dumps({"status": reply.status_code, "body": reply.text}))
except Exception as error:
    print(json.dumps({"error": type(error).__name__ + ": " + str(error)}))
"#;

/// The same with urllib3 directly (`ca_certs`, hostname checked).
const URLLIB3: &str = r#"
import json, sys, urllib3
url, ca, token = sys.argv[1], sys.argv[2], sys.argv[3]
pool = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=ca, retries=False, timeout=10)
try:
    reply = pool.request("GET", url, headers={"Authorization": "Bearer " + token})
    print(json.dumps({"status": reply.status, "body": reply.data.decode()}))
except Exception as error:
    print(json.dumps({"error": type(error).__name__ + ": " + str(error)}))
"#;

fn python(script: &str, args: &[&str]) -> Value {
    common::require_python("import requests, urllib3", "requests");
    let output = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "python printed {text:?}; stderr {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn init_self_signed(store: &Store) -> String {
    let output = common::seclog()
        .args(["init", "--data", &store.data_arg(), "--self-signed"])
        .args(FAST_EPOCHS)
        .output()
        .expect("seclog init runs");
    assert!(output.status.success(), "{}", common::describe(&output));
    parse_admin_token(&String::from_utf8_lossy(&output.stdout))
}

/// A CA and a leaf signed by it (`server` names, or a client certificate), as PEM files.
fn issue(dir: &Path, prefix: &str, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{prefix} CA"));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>(),
    )
    .expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or(prefix));
    let cert = params.signed_by(&key, &ca).expect("certificate");
    let write = |name: &str, text: &str| {
        let path = dir.join(format!("{prefix}-{name}"));
        std::fs::write(&path, text).expect("write PEM");
        path
    };
    (
        write("ca.pem", &ca.pem()),
        write("cert.pem", &cert.pem()),
        write("key.pem", &key.serialize_pem()),
    )
}

#[test]
fn https_api_with_real_clients() {
    let store = Store::new();
    let admin = init_self_signed(&store);
    let tls = store.data().join("tls");
    for name in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        assert!(tls.join(name).is_file(), "{name} missing");
    }
    for key in ["ca.key", "server.key"] {
        let mode = std::fs::metadata(tls.join(key))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key} is readable by others");
    }
    let ca = tls.join("ca.pem");
    let ca_arg = ca.to_str().expect("UTF-8");
    let server = HttpsServer::start(&store, &ca, &[]);

    // requests and urllib3, verifying against the generated CA (hostname and IP address).
    let status = python(REQUEST, &[&server.url("/api/v1/status"), ca_arg, &admin]);
    assert_eq!(status["status"], 200, "{status}");
    let by_ip = format!("https://127.0.0.1:{}/api/v1/status", server.port);
    let status = python(URLLIB3, &[&by_ip, ca_arg, &admin]);
    assert_eq!(status["status"], 200, "{status}");
    // The token is still required over TLS.
    let status = python(REQUEST, &[&server.url("/api/v1/status"), ca_arg, ""]);
    assert_eq!(status["status"], 401, "{status}");
    // The system trust store does not know the CA; another CA does not sign the server.
    let system = python(REQUEST, &[&server.url("/healthz"), "", ""]);
    assert!(
        system["error"].as_str().is_some_and(|e| e.contains("SSL")),
        "{system}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (other_ca, _, _) = issue(dir.path(), "other", &["localhost"]);
    let wrong = python(
        REQUEST,
        &[
            &server.url("/healthz"),
            other_ca.to_str().expect("UTF-8"),
            "",
        ],
    );
    assert!(
        wrong["error"].as_str().is_some_and(|e| e.contains("SSL")),
        "{wrong}"
    );
    // Plain HTTP to the HTTPS port gets no answer.
    let plain = python(
        REQUEST,
        &[&format!("http://127.0.0.1:{}/healthz", server.port), "", ""],
    );
    assert!(
        plain.get("error").is_some(),
        "plaintext was answered: {plain}"
    );

    // The command line's client trusts the CA given in SECLOG_CA_FILE, and only then.
    let query = |ca: Option<&Path>| {
        let mut command = common::seclog();
        command
            .args([
                "query",
                "--server",
                &server.url(""),
                "--since",
                "1h",
                "fields @timestamp | limit 1",
            ])
            .env("SECLOG_TOKEN", &admin);
        if let Some(ca) = ca {
            command.env("SECLOG_CA_FILE", ca);
        }
        command.output().expect("seclog query runs")
    };
    let trusted = query(Some(&ca));
    assert!(trusted.status.success(), "{}", common::describe(&trusted));
    let untrusted = query(None);
    assert!(
        !untrusted.status.success(),
        "{}",
        common::describe(&untrusted)
    );

    // A new certificate (from another CA) replaces the old one on disk: new connections get
    // it without a restart.
    let (new_ca, new_cert, new_key) = issue(dir.path(), "renewed", &["localhost", "127.0.0.1"]);
    std::fs::copy(&new_key, tls.join("server.key")).expect("replace key");
    std::fs::copy(&new_cert, tls.join("server.pem")).expect("replace certificate");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let renewed = python(
            REQUEST,
            &[&server.url("/healthz"), new_ca.to_str().expect("UTF-8"), ""],
        );
        if renewed["status"] == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not taken up: {renewed}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let old = python(REQUEST, &[&server.url("/healthz"), ca_arg, ""]);
    assert!(
        old.get("error").is_some(),
        "the old certificate is still served: {old}"
    );
    let stderr = server.stop();
    assert!(stderr.contains("TLS certificate reloaded"), "{stderr}");
    assert!(
        !stderr.contains(&admin),
        "the admin token is in the server's output"
    );
    let key_text = std::fs::read_to_string(&new_key).expect("key");
    let key_body: String = key_text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert!(
        !stderr.contains(&key_body[..40]),
        "the private key is in the server's output"
    );
}

#[test]
fn client_certificates_on_the_api() {
    let store = Store::new();
    let admin = init_self_signed(&store);
    let ca = store.data().join("tls/ca.pem");
    let ca_arg = ca.to_str().expect("UTF-8");
    let dir = tempfile::tempdir().expect("temp dir");
    let (client_ca, client_cert, client_key) = issue(dir.path(), "client", &["client.example"]);
    let (_, stranger_cert, stranger_key) = issue(dir.path(), "stranger", &["client.example"]);
    let client_ca = client_ca.to_str().expect("UTF-8").to_string();
    let server = HttpsServer::start_with(
        &store,
        &ca,
        &["--http-tls-client-ca", &client_ca],
        Some((&client_cert, &client_key)),
    );
    let url = server.url("/api/v1/status");
    let with = python(
        REQUEST,
        &[
            &url,
            ca_arg,
            &admin,
            client_cert.to_str().expect("UTF-8"),
            client_key.to_str().expect("UTF-8"),
        ],
    );
    assert_eq!(with["status"], 200, "{with}");
    let without = python(REQUEST, &[&url, ca_arg, &admin]);
    assert!(
        without.get("error").is_some(),
        "admitted without a certificate: {without}"
    );
    let stranger = python(
        REQUEST,
        &[
            &url,
            ca_arg,
            &admin,
            stranger_cert.to_str().expect("UTF-8"),
            stranger_key.to_str().expect("UTF-8"),
        ],
    );
    assert!(
        stranger.get("error").is_some(),
        "admitted with a certificate of another CA: {stranger}"
    );
    server.stop();
}
