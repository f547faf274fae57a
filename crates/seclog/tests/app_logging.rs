//! Application logging end to end: `examples/secure-app` (seclog-app's middleware, events and
//! shipper) in front of the real seclog. Requests arrive as events linked by their correlation
//! id, with the client address right behind a trusted proxy and not spoofable without one; 20
//! failed logins raise the brute-force finding; secrets never leave the app; and events sent
//! while seclog is down, across a restart of the app, arrive exactly once.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Reply, Server, Store, agent, free_port, send_sigterm, try_send};
use serde_json::{Value, json};

/// `target/<profile>/secure-app`, built beside the seclog binary (`scripts/test` builds both).
fn secure_app_binary() -> PathBuf {
    let path = Path::new(common::BIN)
        .parent()
        .expect("the binary's directory")
        .join("secure-app");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p secure-app` (scripts/test does)",
        path.display()
    );
    path
}

/// A running secure-app.
struct SecureApp {
    child: Option<Child>,
    base: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

struct AppSettings {
    seclog: String,
    token: String,
    spool: PathBuf,
    logs: PathBuf,
    trusted_proxies: Vec<&'static str>,
    extra_env: Vec<(&'static str, &'static str)>,
}

impl AppSettings {
    /// An app shipping to `seclog` with `token`, its spool in the store's `logs/<spool>`.
    fn new(seclog: &str, token: &str, store: &Store, spool: &str) -> AppSettings {
        AppSettings {
            seclog: seclog.to_string(),
            token: token.to_string(),
            spool: store.logs().join(spool),
            logs: store.logs(),
            trusted_proxies: Vec::new(),
            extra_env: Vec::new(),
        }
    }

    fn trusting(mut self, proxy: &'static str) -> AppSettings {
        self.trusted_proxies.push(proxy);
        self
    }

    fn with_env(mut self, name: &'static str, value: &'static str) -> AppSettings {
        self.extra_env.push((name, value));
        self
    }
}

impl SecureApp {
    fn start(settings: &AppSettings) -> SecureApp {
        let port = free_port();
        let name = format!("secure-app-{port}");
        let stdout = settings.logs.join(format!("{name}.out"));
        let stderr = settings.logs.join(format!("{name}.err"));
        let mut command = Command::new(secure_app_binary());
        command
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SECLOG_URL", &settings.seclog)
            .env("SECLOG_TOKEN", &settings.token)
            .env("SECLOG_SPOOL_DIR", &settings.spool)
            .envs(settings.extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).expect("stdout file"))
            .stderr(fs::File::create(&stderr).expect("stderr file"));
        for proxy in &settings.trusted_proxies {
            command.args(["--trusted-proxy", proxy]);
        }
        let mut app = SecureApp {
            child: Some(command.spawn().expect("secure-app starts")),
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = agent(Duration::from_secs(2));
        loop {
            if let Ok(reply) = try_send(&client, "GET", &app.url("/healthz"), &[], b"")
                && reply.status == 200
            {
                return app;
            }
            if let Some(status) = app
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                panic!("secure-app exited with {status}: {}", app.output());
            }
            assert!(
                Instant::now() < deadline,
                "secure-app did not start: {}",
                app.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        try_send(
            &agent(Duration::from_secs(30)),
            method,
            &self.url(path),
            headers,
            body,
        )
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    fn stats(&self) -> Value {
        self.send("GET", "/healthz", &[], b"").json()["logging"].clone()
    }

    fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            fs::read_to_string(&self.stdout).unwrap_or_default(),
            fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// SIGTERM and wait: the app flushes its queue into the spool and tries to send it.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("secure-app is running");
        send_sigterm(&child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                assert!(
                    status.success(),
                    "secure-app exited with {status}: {}",
                    self.output()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "secure-app did not stop: {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SecureApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `sid` cookie a successful login sets.
fn login(app: &SecureApp, headers: &[(&str, &str)]) -> String {
    let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    let reply = app.send(
        "POST",
        "/login",
        &all,
        b"username=alice&password=wonderland",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let cookie = reply.header("set-cookie").expect("a session cookie");
    cookie.split(';').next().expect("name=value").to_string()
}

/// Every event of the group (as stored), read over the API with an admin token.
fn stored(server: &Server, admin: &str, group: &str) -> Vec<Value> {
    let output =
        common::run_with_token(admin, &["cat", "--server", &server.base, "--group", group]);
    if String::from_utf8_lossy(&output.stderr).contains("no group named") {
        return Vec::new();
    }
    assert!(output.status.success(), "{}", common::describe(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("cat prints JSON"))
        .collect()
}

/// Waits until the group holds at least `count` events and returns them.
fn wait_for_events(server: &Server, admin: &str, group: &str, count: usize) -> Vec<Value> {
    eventually(Duration::from_secs(60), || {
        let events = stored(server, admin, group);
        let held = events.len();
        (held >= count)
            .then_some(events)
            .ok_or_else(|| format!("{group} holds {held} events, expected {count}"))
    })
}

/// Polls `check` until it gives a value; fails with its last complaint after `limit`.
fn eventually<T>(limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(value) => return value,
            Err(complaint) => assert!(Instant::now() < deadline, "{complaint}"),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The stored events grouped by correlation id (the app's JSON lines, as sent).
fn by_correlation(events: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut map: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for event in events {
        let line = &event["event"];
        if let Some(id) = line["correlation_id"].as_str() {
            map.entry(id.to_string()).or_default().push(line.clone());
        }
    }
    map
}

fn classes(lines: &[Value]) -> Vec<(u64, u64)> {
    let mut found: Vec<(u64, u64)> = lines
        .iter()
        .map(|line| {
            (
                line["class_uid"].as_u64().unwrap_or(0),
                line["status_id"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    found.sort_unstable();
    found
}

fn seclog_with_app_token(store: &Store) -> (Server, String, String) {
    let admin = store.init();
    let server = store.serve(&[]);
    let token = store.create_token_over(&server, &admin, "ingest", "app/*");
    (server, admin, token)
}

trait TokenOverApi {
    fn create_token_over(&self, server: &Server, admin: &str, role: &str, groups: &str) -> String;
}

impl TokenOverApi for Store {
    fn create_token_over(&self, server: &Server, admin: &str, role: &str, groups: &str) -> String {
        let reply = common::post(
            &server.url("/api/v1/tokens"),
            Some(admin),
            &[("content-type", "application/json")],
            json!({ "role": role, "groups": groups })
                .to_string()
                .as_bytes(),
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
        reply.json()["token"]
            .as_str()
            .expect("the new token")
            .to_string()
    }
}

/// The full story: a login, 20 failed logins from one address, a record read, a settings
/// change and an unauthenticated request, through a trusted proxy; one spoofing attempt on an
/// app that trusts no proxy.
#[test]
fn requests_arrive_linked_by_correlation_id_with_the_right_client_and_raise_the_brute_force_finding()
 {
    let store = Store::new();
    let (server, admin, token) = seclog_with_app_token(&store);
    let proxied = SecureApp::start(
        &AppSettings::new(&server.base, &token, &store, "spool-proxied").trusting("127.0.0.1"),
    );
    let direct = SecureApp::start(&AppSettings::new(
        &server.base,
        &token,
        &store,
        "spool-direct",
    ));

    // A successful login through the proxy, continuing the caller's trace.
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let cookie = login(
        &proxied,
        &[
            ("x-forwarded-for", "203.0.113.10"),
            ("x-request-id", "e2e-login-ok"),
            ("traceparent", traceparent),
        ],
    );
    // 20 wrong passwords from one address; the proxy appends what it saw to a forged header.
    for attempt in 0..20 {
        let id = format!("e2e-fail-{attempt}");
        let reply = proxied.send(
            "POST",
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-forwarded-for", "10.9.9.9, 203.0.113.99"),
                ("x-request-id", &id),
            ],
            format!("username=alice&password=guess{attempt}").as_bytes(),
        );
        assert_eq!(reply.status, 401, "{}", reply.text());
        assert_eq!(reply.header("x-request-id"), Some(id.as_str()));
    }
    let read = proxied.send(
        "GET",
        "/records/7",
        &[
            ("cookie", &cookie),
            ("x-forwarded-for", "203.0.113.10"),
            ("x-request-id", "e2e-read"),
        ],
        b"",
    );
    assert_eq!(read.status, 200, "{}", read.text());
    let change = proxied.send(
        "PUT",
        "/admin/settings",
        &[
            ("cookie", &cookie),
            ("content-type", "application/json"),
            ("x-forwarded-for", "203.0.113.10"),
            ("x-request-id", "e2e-settings"),
        ],
        br#"{"mfa_required": true}"#,
    );
    assert_eq!(change.status, 200, "{}", change.text());
    let denied = proxied.send(
        "GET",
        "/records/8",
        &[
            ("x-forwarded-for", "203.0.113.77"),
            ("x-request-id", "e2e-denied"),
        ],
        b"",
    );
    assert_eq!(denied.status, 401);
    // Without a trusted proxy the header is the client's own claim: ignored.
    let spoof = direct.send(
        "POST",
        "/login",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-forwarded-for", "198.51.100.1"),
            ("x-request-id", "e2e-spoof"),
        ],
        b"username=mallory&password=x",
    );
    assert_eq!(spoof.status, 401);
    // A request without ids gets a UUIDv7 correlation id and a new trace.
    let fresh = proxied.send("GET", "/records/9", &[], b"");
    let fresh_id = fresh
        .header("x-request-id")
        .expect("a correlation id")
        .to_string();
    assert_eq!(uuid_version(&fresh_id), Some(7), "{fresh_id}");
    let fresh_trace = fresh
        .header("traceparent")
        .expect("a traceparent")
        .to_string();

    // login ok: 3 lines; each failure: 3; read: 2; settings: 2; denied: 2; spoof: 3; fresh: 2.
    let expected = 3 + 20 * 3 + 2 + 2 + 2 + 3 + 2;
    let events = wait_for_events(&server, &admin, "app/secure-app", expected);
    let linked = by_correlation(&events);

    let ok = &linked["e2e-login-ok"];
    assert_eq!(classes(ok), [(3002, 0), (3002, 1), (4002, 1)], "{ok:#?}");
    for line in ok {
        assert_eq!(line["src_endpoint"]["ip"], "203.0.113.10", "{line}");
        assert_eq!(
            line["trace_id"], "0af7651916cd43dd8448eb211c80319c",
            "{line}"
        );
        assert_eq!(line["http_request"]["url"]["path"], "/login", "{line}");
        assert_eq!(line["service"]["name"], "secure-app");
        assert!(
            line["timestamp"]
                .as_str()
                .is_some_and(|time| time.len() == 30 && time.ends_with('Z')),
            "{line}"
        );
    }
    let success = ok
        .iter()
        .find(|line| line["status_id"] == 1 && line["class_uid"] == 3002)
        .expect("login success");
    assert_eq!(success["user"]["name"], "alice");
    assert_eq!(success["actor"]["user"]["name"], "alice");
    assert_eq!(success["severity_id"], 1);
    assert_eq!(success["metadata"]["correlation_uid"], "e2e-login-ok");
    // The request log comes after the handler set the user: it carries the user and session.
    let request_log = ok
        .iter()
        .find(|line| line["class_uid"] == 4002)
        .expect("request log");
    assert_eq!(request_log["http_response"]["code"], 200);
    assert_eq!(request_log["actor"]["user"]["name"], "alice");
    let session = request_log["actor"]["session"]["uid"]
        .as_str()
        .expect("a session digest");
    assert!(
        !cookie.contains(session),
        "the session digest is not the token"
    );

    for attempt in 0..20 {
        let lines = &linked[&format!("e2e-fail-{attempt}")];
        assert_eq!(
            classes(lines),
            [(3002, 0), (3002, 2), (4002, 2)],
            "{lines:#?}"
        );
        let failure = lines
            .iter()
            .find(|line| line["status_id"] == 2 && line["class_uid"] == 3002)
            .expect("failure");
        assert_eq!(failure["status_detail"], "wrong password");
        assert_eq!(failure["severity_id"], 4);
        for line in lines {
            assert_eq!(line["src_endpoint"]["ip"], "203.0.113.99", "{line}");
        }
    }
    let read_lines = &linked["e2e-read"];
    let access = read_lines
        .iter()
        .find(|line| line["class_uid"] == 6001)
        .expect("data access");
    assert_eq!(access["web_resources"][0]["uid"], "record:7");
    assert_eq!(
        access["web_resources"][0]["data_classification"]["classification"],
        "Confidential"
    );
    assert_eq!(access["actor"]["user"]["name"], "alice");
    let read_log = read_lines
        .iter()
        .find(|line| line["class_uid"] == 4002)
        .expect("request log");
    assert_eq!(
        read_log["http_request"]["url"]["path"], "/records/{id}",
        "the route template, not the path"
    );
    assert!(read_log["duration"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert!(
        read_log["http_response"]["length"]
            .as_u64()
            .is_some_and(|bytes| bytes > 0)
    );
    let settings = linked["e2e-settings"]
        .iter()
        .find(|line| line["class_uid"] == 3004)
        .expect("config change");
    assert_eq!(settings["severity_id"], 3);
    assert_eq!(
        settings["entity_result"]["data"]["changed"],
        json!(["mfa_required"])
    );
    let denial = linked["e2e-denied"]
        .iter()
        .find(|line| line["class_uid"] == 6004)
        .expect("denial");
    assert_eq!(denial["severity_id"], 4);
    assert_eq!(denial["src_endpoint"]["ip"], "203.0.113.77");
    for line in &linked["e2e-spoof"] {
        assert_eq!(line["src_endpoint"]["ip"], "127.0.0.1", "spoofed: {line}");
    }
    let fresh_lines = &linked[&fresh_id];
    assert!(fresh_trace.contains(fresh_lines[0]["trace_id"].as_str().expect("trace id")));

    // The built-in correlation raises the brute force from 203.0.113.99 (not from the proxy).
    let finding = eventually(Duration::from_secs(60), || {
        let reply = common::post(
            &server.url("/api/v1/query"),
            Some(&admin),
            &[("content-type", "application/json")],
            json!({
                "query": "fields @message | filter finding_info.title like /Application brute force from one source/",
                "groups": ["seclog/alerts"],
                "start": "2020-01-01T00:00:00Z",
            })
            .to_string()
            .as_bytes(),
        );
        let rows = reply.json()["rows"].as_array().cloned().unwrap_or_default();
        rows.first()
            .cloned()
            .ok_or_else(|| format!("no brute-force finding: {}", reply.text()))
    });
    let text = finding.to_string();
    assert!(text.contains("203.0.113.99"), "{text}");
    drop((proxied, direct));
}

fn uuid_version(text: &str) -> Option<u32> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    (hex.len() == 32)
        .then(|| hex.chars().nth(12).and_then(|c| c.to_digit(16)))
        .flatten()
}

/// Passwords, tokens and credential-shaped values sent in bodies, headers and fields appear in
/// no output of the app and nowhere in seclog.
#[test]
fn secrets_never_leave_the_app() {
    let store = Store::new();
    let (server, admin, token) = seclog_with_app_token(&store);
    // Debug level: the careless debug line in the login handler (headers, body, password field)
    // is written, so redaction has something to do.
    let settings =
        AppSettings::new(&server.base, &token, &store, "spool").with_env("RUST_LOG", "debug");
    let spool = settings.spool.clone();
    let app = SecureApp::start(&settings);
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.U2VjcmV0U2lnbmF0dXJlMTIzNDU2";
    let bearer = "tok-b3f1c9d2e8a7";
    let aws_key = "AKIAIOSFODNN7EXAMPLE";
    let cookie = login(
        &app,
        &[
            ("authorization", &format!("Bearer {bearer}")),
            ("user-agent", jwt),
        ],
    );
    let sid = cookie.trim_start_matches("sid=").to_string();
    let reply = app.send(
        "POST",
        "/login",
        &[
            ("content-type", "application/json"),
            ("x-api-key", "k3y-9f8e7d6c"),
            ("cookie", &cookie),
        ],
        json!({ "username": aws_key, "password": "hunter2-correct-horse" })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(reply.status, 401);
    let change = app.send(
        "PUT",
        "/admin/settings",
        &[("cookie", &cookie), ("content-type", "application/json")],
        br#"{"smtp_password": "p4ss-smtp-0042"}"#,
    );
    assert_eq!(change.status, 200);
    let events = wait_for_events(&server, &admin, "app/secure-app", 8);
    let mut app_process = app;
    app_process.stop();
    let app_output = app_process.output();
    let stored_text = serde_json::to_string(&events).expect("json");
    assert!(
        stored_text.contains("[REDACTED]"),
        "the debug lines were redacted: {stored_text}"
    );
    let secrets = [
        "wonderland",
        "hunter2-correct-horse",
        bearer,
        "U2VjcmV0U2lnbmF0dXJlMTIzNDU2",
        aws_key,
        "k3y-9f8e7d6c",
        "p4ss-smtp-0042",
        sid.as_str(),
        token.as_str(),
    ];
    for secret in secrets {
        assert!(!stored_text.contains(secret), "{secret} reached seclog");
        assert!(!app_output.contains(secret), "{secret} in the app's output");
    }
    // The spool held the same lines: nothing of them is left, and nothing secret was written.
    for file in common::walk_files(&spool) {
        let bytes = fs::read(&file).expect("spool file");
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in {}", file.display());
        }
    }
    // The debug line is there, with its secrets replaced.
    let debug_line = events
        .iter()
        .map(|event| &event["event"])
        .find(|line| {
            line["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("login request"))
        })
        .expect("the debug line");
    assert_eq!(
        debug_line["fields"]["password"], "[REDACTED]",
        "{debug_line}"
    );
}

/// A quiet filter (`RUST_LOG=error`) silences the application's chatter, not its audit trail:
/// security events and request logs are still written.
#[test]
fn a_quiet_log_filter_keeps_security_events() {
    let store = Store::new();
    let (server, admin, token) = seclog_with_app_token(&store);
    let app = SecureApp::start(
        &AppSettings::new(&server.base, &token, &store, "spool").with_env("RUST_LOG", "error"),
    );
    let reply = app.send(
        "POST",
        "/login",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-request-id", "quiet-1"),
        ],
        b"username=alice&password=nope",
    );
    assert_eq!(reply.status, 401);
    let events = wait_for_events(&server, &admin, "app/secure-app", 2);
    let linked = by_correlation(&events);
    let lines = linked.get("quiet-1").expect("the request's events");
    assert!(classes(lines).contains(&(3002, 2)), "{lines:#?}");
    assert!(classes(lines).contains(&(4002, 2)), "{lines:#?}");
    assert!(
        events
            .iter()
            .all(|event| event["event"]["message"] != "secure-app listening"),
        "info lines of other targets follow the filter"
    );
}

/// seclog stops; the app keeps serving, is restarted meanwhile, and keeps serving; seclog
/// comes back: every event arrives once.
#[test]
fn events_logged_while_seclog_is_down_arrive_exactly_once_across_an_app_restart() {
    let store = Store::new();
    let (mut server, admin, token) = seclog_with_app_token(&store);
    let settings = AppSettings::new(&server.base, &token, &store, "spool");
    let spool = settings.spool.clone();
    let mut app = SecureApp::start(&settings);
    let request = |app: &SecureApp, id: &str| {
        let reply = app.send("GET", "/records/1", &[("x-request-id", id)], b"");
        assert_eq!(reply.status, 401, "{}", reply.text());
    };
    for n in 0..5 {
        request(&app, &format!("before-{n}"));
    }
    // Each unauthenticated read: an access denial and a request log.
    wait_for_events(&server, &admin, "app/secure-app", 1 + 5 * 2);
    server.stop_ok();
    for n in 0..30 {
        request(&app, &format!("outage-{n}"));
    }
    app.stop();
    let spooled: Vec<PathBuf> = common::walk_files(&spool.join("batches"));
    assert!(!spooled.is_empty(), "the outage's events wait in the spool");
    let mut app = SecureApp::start(&settings);
    for n in 0..30 {
        request(&app, &format!("restarted-{n}"));
    }
    server.restart(&store.data(), &store.logs(), &[]);
    // Every id: one denial, one request log; plus the start and stop lines of two runs.
    eventually(Duration::from_secs(90), || {
        let stats = app.stats();
        let drained = stats["spool_bytes"] == 0 && stats["sent"].as_u64().unwrap_or(0) > 0;
        drained
            .then_some(())
            .ok_or_else(|| format!("the spool did not drain: {stats}\n{}", app.output()))
    });
    app.stop();
    let events = stored(&server, &admin, "app/secure-app");
    let linked = by_correlation(&events);
    for prefix in ["before", "outage", "restarted"] {
        let count = if prefix == "before" { 5 } else { 30 };
        for n in 0..count {
            let id = format!("{prefix}-{n}");
            let lines = linked
                .get(&id)
                .unwrap_or_else(|| panic!("{id} never arrived"));
            assert_eq!(classes(lines), [(4002, 2), (6004, 2)], "{id}: {lines:#?}");
        }
    }
    // Nothing twice: every line is unique (its own timestamp and content), so a batch stored
    // twice would show as equal events.
    let mut seen = std::collections::BTreeSet::new();
    for event in &events {
        assert!(
            seen.insert(event["event"].to_string()),
            "stored twice: {}",
            event["event"]
        );
    }
    let lifecycle = |message: &str| {
        events
            .iter()
            .filter(|event| event["event"]["message"] == message)
            .count()
    };
    assert_eq!(lifecycle("secure-app listening"), 2, "two runs of the app");
    assert_eq!(
        lifecycle("secure-app stopped"),
        2,
        "the first run's last line, sent after the outage"
    );
}

/// A producer's numbered batch is stored once: sent again; sent again after a crash that left
/// it committed but not recorded; and after a crash that left only its first records
/// committed (the rest, dead letters included, is stored then). Another token cannot claim
/// the producer's numbers.
#[test]
fn a_numbered_batch_is_stored_once_even_after_a_crash_between_commit_and_bookkeeping() {
    let store = Store::new();
    let admin = store.init();
    let mut server = store.serve(&[]);
    let created = common::post(
        &server.url("/api/v1/tokens"),
        Some(&admin),
        &[("content-type", "application/json")],
        json!({ "role": "ingest", "groups": "app/*" })
            .to_string()
            .as_bytes(),
    )
    .json();
    let token = created["token"].as_str().expect("token").to_string();
    let token_id = created["id"].as_str().expect("token id").to_string();
    let send_as = |server: &Server, token: &str, batch: &str, body: &[u8]| {
        common::post(
            &server.url("/api/v1/ingest/app/once"),
            Some(token),
            &[("seclog-producer", "p-test"), ("seclog-batch", batch)],
            body,
        )
    };
    let send = |server: &Server, batch: &str, body: &[u8]| send_as(server, &token, batch, body);
    let values = |server: &Server| -> Vec<i64> {
        stored(server, &admin, "app/once")
            .iter()
            .filter_map(|event| event["event"]["n"].as_i64())
            .collect()
    };
    let stamped_dead_letters = |server: &Server| -> usize {
        stored(server, &admin, "seclog/dead-letter")
            .iter()
            .filter(|event| event["attrs"]["producer"] == "p-test")
            .count()
    };
    let first = send(&server, "1", b"{\"n\":1}\n{\"n\":2}\n{\"broken\n");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        (
            first.json()["accepted"].clone(),
            first.json()["rejected"].clone()
        ),
        (json!(2), json!(1))
    );
    assert_eq!(first.json()["duplicate"], false);
    let again = send(&server, "1", b"{\"n\":1}\n{\"n\":2}\n{\"broken\n");
    assert_eq!(again.json()["duplicate"], true, "{}", again.text());
    assert_eq!(again.json()["last_batch"], 1);
    let older = send(&server, "0", b"{\"n\":0}");
    assert_eq!(older.json()["duplicate"], true, "older batches too");
    assert_eq!(values(&server), [1, 2]);
    assert_eq!(stamped_dead_letters(&server), 1);

    // Another token covering the group names the same producer: its own numbering, which
    // cannot make the first producer's batches look stored.
    let other = common::post(
        &server.url("/api/v1/tokens"),
        Some(&admin),
        &[("content-type", "application/json")],
        json!({ "role": "ingest", "groups": "app/*" })
            .to_string()
            .as_bytes(),
    )
    .json()["token"]
        .as_str()
        .expect("token")
        .to_string();
    let squat = send_as(&server, &other, "18446744073709551615", b"{\"n\":100}");
    assert_eq!(squat.json()["duplicate"], false);

    // Batch 2 stored whole, but the bookkeeping reset to "batch 2 was being committed":
    // what a crash right after the journal commit leaves.
    let before = 3; // n=1, n=2, n=100
    let second = send(&server, "2", b"{\"n\":3}\n{\"n\":4}");
    assert_eq!(second.json()["accepted"], 2, "{}", second.text());
    let rewind = |server: &mut Server, group_next: u64, dead_next: u64| {
        server.stop_ok();
        {
            let meta = seclog_meta::MetaStore::open(&store.data().join("meta")).expect("meta");
            let producer = format!("{token_id}/p-test");
            let mut state = meta
                .producer_state("app/once", &producer)
                .expect("state")
                .expect("known");
            state.last_batch = state.last_batch.map(|last| last - 1);
            let batch = state.last_batch.expect("a batch before") + 1;
            state.pending = Some(seclog_meta::PendingProducerBatch {
                batch,
                group_next,
                dead_next,
            });
            meta.set_producer_state("app/once", &producer, &state)
                .expect("set");
        }
        server.restart(&store.data(), &store.logs(), &[]);
    };
    rewind(&mut server, before, 1);
    let retried = send(&server, "2", b"{\"n\":3}\n{\"n\":4}");
    assert_eq!(retried.status, 200, "{}", retried.text());
    assert_eq!(retried.json()["duplicate"], true, "{}", retried.text());
    assert_eq!(values(&server), [1, 2, 100, 3, 4]);

    // Batch 3: only its first two records reached the journal (sent here as a batch of two),
    // then the crash; the whole batch comes again with a bad line and two more records.
    let partial = send(&server, "3", b"{\"n\":5}\n{\"n\":6}");
    assert_eq!(partial.json()["accepted"], 2);
    rewind(&mut server, before + 2, 1);
    let whole = send(
        &server,
        "3",
        b"{\"n\":5}\n{\"n\":6}\n{\"broken\n{\"n\":7}\n{\"n\":8}",
    );
    assert_eq!(whole.status, 200, "{}", whole.text());
    assert_eq!(whole.json()["duplicate"], false, "{}", whole.text());
    assert_eq!(
        values(&server),
        [1, 2, 100, 3, 4, 5, 6, 7, 8],
        "the rest once"
    );
    assert_eq!(
        stamped_dead_letters(&server),
        2,
        "the retried batch's bad line once"
    );
    assert_eq!(send(&server, "3", b"{\"n\":5}").json()["duplicate"], true);

    // The two headers go together, and each is checked.
    for headers in [
        vec![("seclog-producer", "p-test")],
        vec![("seclog-batch", "4")],
        vec![("seclog-producer", "p test"), ("seclog-batch", "4")],
        vec![("seclog-producer", "p-test"), ("seclog-batch", "-4")],
    ] {
        let refused = common::post(
            &server.url("/api/v1/ingest/app/once"),
            Some(&token),
            &headers,
            b"{}",
        );
        assert_eq!(refused.status, 400, "{headers:?}: {}", refused.text());
        assert_eq!(refused.error_code(), "invalid_batch_id", "{headers:?}");
    }
}

/// The Flask example (docs/app-logging.md) emits the same events through the OpenTelemetry
/// SDK: they arrive in `otlp/flask-app` with the documented attribute names, the client
/// address from the one trusted proxy, and no secret.
#[test]
fn the_flask_example_ships_the_same_events_through_opentelemetry() {
    common::require_python(
        "import flask, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        "flask and the OpenTelemetry SDK",
    );
    let store = Store::new();
    let admin = store.init();
    let server = store.serve(&[]);
    let token = store.create_token_over(&server, &admin, "ingest", "otlp/*");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flask-otel/app.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg("--selftest")
        .env("SECLOG_URL", &server.base)
        .env("SECLOG_TOKEN", &token)
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", common::describe(&output));
    let events = wait_for_events(&server, &admin, "otlp/flask-app", 12);
    let attributes = |id: &str| -> Vec<Value> {
        events
            .iter()
            .map(|event| event["event"]["attributes"].clone())
            .filter(|attributes| attributes["correlation_id"] == id)
            .collect()
    };
    let ok = attributes("flask-ok");
    let success = ok
        .iter()
        .find(|a| a["class_uid"] == 3002)
        .expect("login success");
    assert_eq!(success["status_id"], 1);
    assert_eq!(success["user.name"], "alice");
    assert_eq!(success["src_endpoint.ip"], "203.0.113.5");
    assert!(
        ok.iter()
            .any(|a| a["class_uid"] == 4002 && a["http_response.code"] == 200)
    );
    for attempt in 0..3 {
        let lines = attributes(&format!("flask-fail-{attempt}"));
        let failure = lines
            .iter()
            .find(|a| a["class_uid"] == 3002)
            .expect("login failure");
        assert_eq!(failure["status_id"], 2);
        assert_eq!(failure["status_detail"], "wrong password");
        assert_eq!(failure["severity_id"], 4);
        assert_eq!(failure["src_endpoint.ip"], "203.0.113.5");
    }
    // The careless debug record of every login arrived, with its secrets replaced.
    let debug = attributes("flask-fail-0")
        .into_iter()
        .find(|a| a.get("body").is_some())
        .expect("the login request record");
    assert_eq!(debug["password"], "[REDACTED]", "{debug}");
    assert_eq!(debug["authorization"], "[REDACTED]", "{debug}");
    assert!(
        debug["body"]
            .as_str()
            .is_some_and(|body| body.contains("username=alice")),
        "{debug}"
    );
    let text = serde_json::to_string(&events).expect("json");
    for secret in ["wonderland", "guess-0", "abcdefghijklmnop"] {
        assert!(!text.contains(secret), "{secret} reached seclog");
    }
}
