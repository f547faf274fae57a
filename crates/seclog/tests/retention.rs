//! Retention on the real binary with a simulated wall clock (libfaketime moves the server's
//! clock; its monotonic clock is left alone): the PCI DSS preset keeps day 364 and expires
//! day 366 with a signed tombstone; compliance retention cannot be shortened by anyone; a
//! legal hold stops expiry until released; and a wall clock five years ahead deletes nothing
//! until an admin confirms it, and raises a finding.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Reply, Server, Store, agent, parse_admin_token, try_send};
use serde_json::{Value, json};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// Day-long epochs for eight years: the signer keeps keys for a clock five years ahead.
const LONG_EPOCHS: [&str; 4] = ["--epoch-secs", "86400", "--epochs", "3000"];

/// A wall-clock offset shared by every seclog process of a test (libfaketime reads the file at
/// most once a second).
struct FakeClock {
    file: PathBuf,
}

impl FakeClock {
    fn new(dir: &Path) -> Self {
        assert!(
            Path::new(LIBFAKETIME).exists(),
            "libfaketime is not installed: run scripts/test (it installs the faketime package)"
        );
        let clock = FakeClock {
            file: dir.join("faketime"),
        };
        clock.set("+0");
        clock
    }

    /// An offset such as `+0`, `-366d`, `+1826d`.
    fn set(&self, offset: &str) {
        std::fs::write(&self.file, format!("{offset}\n")).expect("write the faketime file");
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", LIBFAKETIME.to_string()),
            (
                "FAKETIME_TIMESTAMP_FILE",
                self.file.to_str().expect("UTF-8").to_string(),
            ),
            ("FAKETIME_CACHE_DURATION", "1".to_string()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
        ]
    }

    fn init(&self, store: &Store) -> String {
        let output = common::seclog()
            .args(["init", "--data", &store.data_arg()])
            .args(LONG_EPOCHS)
            .envs(self.env())
            .output()
            .expect("seclog init runs");
        assert!(output.status.success(), "{}", common::describe(&output));
        parse_admin_token(&String::from_utf8_lossy(&output.stdout))
    }

    fn serve(&self, store: &Store) -> Server {
        let env = self.env();
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        // Small segments: each request's events are a segment of their own, so expiry (whole
        // segments) can take one day's events and keep the next day's.
        Server::start_with_env(
            &store.data(),
            &store.logs(),
            &["--retention-sweep-secs", "1", "--segment-max-bytes", "256"],
            &env,
        )
    }
}

fn call(server: &Server, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
    let authorization = format!("Bearer {token}");
    let mut headers = vec![("Authorization", authorization.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    try_send(
        &agent(Duration::from_secs(30)),
        method,
        &server.url(path),
        &headers,
        body.as_bytes(),
    )
    .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
}

fn ok(reply: Reply, what: &str) -> Value {
    assert!(
        (200..300).contains(&reply.status),
        "{what}: {} {}",
        reply.status,
        reply.text()
    );
    if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    }
}

/// Sequence numbers of the stored events of `group`.
fn stored(server: &Server, token: &str, group: &str) -> Vec<u64> {
    let reply = call(
        server,
        "GET",
        &format!("/api/v1/groups/{group}/events?limit=10000"),
        token,
        None,
    );
    assert_eq!(reply.status, 200, "events of {group}: {}", reply.text());
    reply
        .text()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).expect("NDJSON")["seq"]
                .as_u64()
                .expect("seq")
        })
        .collect()
}

fn ingest_batch(server: &Server, token: &str, group: &str, label: &str, count: usize) {
    for index in 0..count {
        server.ingest_ok(
            token,
            group,
            json!({ "message": format!("{label} {index}"), "card": "4111" })
                .to_string()
                .as_bytes(),
        );
    }
}

/// Waits until `GET /api/v1/clock` shows `state`.
fn wait_clock(server: &Server, token: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let clock = ok(call(server, "GET", "/api/v1/clock", token, None), "clock");
        if clock["retention_clock"]["state"] == state {
            return clock;
        }
        assert!(
            Instant::now() < deadline,
            "the clock never became {state}: {clock}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn confirm_clock(server: &Server, admin: &str) {
    let confirmed = ok(
        call(
            server,
            "POST",
            "/api/v1/clock",
            admin,
            Some(json!({ "confirm": true })),
        ),
        "confirm the clock",
    );
    assert_eq!(
        confirmed["retention_clock"]["state"], "consistent",
        "{confirmed}"
    );
}

/// Waits until `group` holds exactly `expected` (expiry runs in the background).
fn wait_stored(server: &Server, token: &str, group: &str, expected: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seqs = stored(server, token, group);
        if seqs == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} holds {seqs:?}, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn access_actions(server: &Server, token: &str) -> Vec<Value> {
    let reply = call(
        server,
        "GET",
        "/api/v1/groups/seclog/access/events?limit=10000",
        token,
        None,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply
        .text()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("NDJSON")["event"].clone())
        .collect()
}

/// PCI DSS 10.5.1 with a simulated clock: events written 366 days ago expire, events written
/// 364 days ago stay; nobody can shorten the compliance policy; the expiry is a signed
/// tombstone `verify` accepts.
#[test]
fn pci_dss_preset_keeps_day_364_and_expires_day_366() {
    let store = Store::new();
    let clock = FakeClock::new(store.logs().as_path());
    clock.set("-366d");
    let admin = clock.init(&store);

    let mut server = clock.serve(&store);
    let set = ok(
        call(
            &server,
            "PUT",
            "/api/v1/retention/card/payments",
            &admin,
            Some(json!({ "preset": "pci-dss" })),
        ),
        "pci-dss preset",
    );
    assert_eq!(
        (set["days"].as_u64(), set["mode"].as_str()),
        (Some(365), Some("compliance")),
        "{set}"
    );
    ingest_batch(&server, &admin, "card/payments", "day -366", 5);
    server.stop_ok();

    clock.set("-364d");
    let mut server = clock.serve(&store);
    // Two days passed while seclog was stopped: expiry keeps the trusted time until confirmed.
    wait_clock(&server, &admin, "ahead");
    confirm_clock(&server, &admin);
    ingest_batch(&server, &admin, "card/payments", "day -364", 5);
    // Nobody shortens a compliance policy, nor turns it into governance.
    for body in [
        json!({ "days": 30, "mode": "compliance" }),
        json!({ "days": 364, "mode": "compliance" }),
        json!({ "days": 30, "mode": "governance", "shorten": true }),
        json!({ "days": 3650, "mode": "governance" }),
    ] {
        let reply = call(
            &server,
            "PUT",
            "/api/v1/retention/card/payments",
            &admin,
            Some(body.clone()),
        );
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        assert_eq!(reply.error_code(), "invalid_retention", "{body}");
    }
    server.stop_ok();

    clock.set("+0");
    let mut server = clock.serve(&store);
    wait_clock(&server, &admin, "ahead");
    assert_eq!(
        stored(&server, &admin, "card/payments"),
        (0..10).collect::<Vec<_>>(),
        "nothing expires on an unconfirmed clock"
    );
    confirm_clock(&server, &admin);
    wait_stored(
        &server,
        &admin,
        "card/payments",
        &(5..10).collect::<Vec<_>>(),
    );
    let actions = access_actions(&server, &admin);
    for action in ["retention_set", "clock_confirm"] {
        assert!(
            actions.iter().any(|entry| entry["action"] == action),
            "{action} not recorded"
        );
    }
    server.stop_ok();
    store.verify_ok();
}

/// A legal hold stops expiry of its group only, until it is released; both are recorded.
#[test]
fn a_legal_hold_blocks_expiry_until_released() {
    let store = Store::new();
    let clock = FakeClock::new(store.logs().as_path());
    clock.set("-3d");
    let admin = clock.init(&store);
    let mut server = clock.serve(&store);
    for group in ["app/held", "app/free"] {
        ok(
            call(
                &server,
                "PUT",
                &format!("/api/v1/retention/{group}"),
                &admin,
                Some(json!({ "days": 1 })),
            ),
            "retention",
        );
        ingest_batch(&server, &admin, group, "old", 3);
    }
    let reply = call(
        &server,
        "PUT",
        "/api/v1/holds/app/held",
        &admin,
        Some(json!({ "reason": " " })),
    );
    assert_eq!(
        reply.status,
        400,
        "a hold without a reason: {}",
        reply.text()
    );
    ok(
        call(
            &server,
            "PUT",
            "/api/v1/holds/app/held",
            &admin,
            Some(json!({ "reason": "matter 2026-114" })),
        ),
        "hold",
    );
    // Shortening a governance policy needs the explicit flag.
    ok(
        call(
            &server,
            "PUT",
            "/api/v1/retention/app/free",
            &admin,
            Some(json!({ "days": 30 })),
        ),
        "lengthen",
    );
    let reply = call(
        &server,
        "PUT",
        "/api/v1/retention/app/free",
        &admin,
        Some(json!({ "days": 1 })),
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    ok(
        call(
            &server,
            "PUT",
            "/api/v1/retention/app/free",
            &admin,
            Some(json!({ "days": 1, "shorten": true })),
        ),
        "shorten explicitly",
    );
    server.stop_ok();

    clock.set("+0");
    let mut server = clock.serve(&store);
    confirm_clock(&server, &admin);
    wait_stored(&server, &admin, "app/free", &[]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        stored(&server, &admin, "app/held"),
        vec![0, 1, 2],
        "held events expired"
    );
    let listed = ok(
        call(&server, "GET", "/api/v1/retention", &admin, None),
        "list",
    );
    assert_eq!(listed["holds"][0]["group"], "app/held", "{listed}");
    ok(
        call(&server, "DELETE", "/api/v1/holds/app/held", &admin, None),
        "release",
    );
    wait_stored(&server, &admin, "app/held", &[]);
    let actions = access_actions(&server, &admin);
    for action in ["hold_place", "hold_release"] {
        assert!(
            actions.iter().any(|entry| entry["action"] == action),
            "{action} not recorded"
        );
    }
    let shortened = actions
        .iter()
        .find(|entry| entry["action"] == "retention_set" && entry["target"]["shorten"] == true)
        .expect("the explicit shortening is recorded");
    assert_eq!(shortened["target"]["previous"]["days"], 30, "{shortened}");
    server.stop_ok();
    store.verify_ok();
}

/// The wall clock jumps five years ahead while the server runs, and stays there across a
/// restart: nothing expires, the clock shows `ahead`, a high finding is raised; once an admin
/// confirms the clock, expiry follows it.
#[test]
fn a_clock_five_years_ahead_deletes_nothing_until_confirmed() {
    let store = Store::new();
    let clock = FakeClock::new(store.logs().as_path());
    let admin = clock.init(&store);
    let mut server = clock.serve(&store);
    ok(
        call(
            &server,
            "PUT",
            "/api/v1/retention/app/short",
            &admin,
            Some(json!({ "days": 1 })),
        ),
        "retention",
    );
    ingest_batch(&server, &admin, "app/short", "now", 4);
    wait_clock(&server, &admin, "consistent");

    clock.set("+1826d");
    wait_clock(&server, &admin, "ahead");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        stored(&server, &admin, "app/short"),
        vec![0, 1, 2, 3],
        "expired on a jumped clock"
    );
    // The streaming detector raises the health event as a finding.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = call(
            &server,
            "POST",
            "/api/v1/query",
            &admin,
            Some(json!({
                "query": "fields finding_info.title, severity | filter finding_info.title like /retention clock/",
                "groups": ["seclog/alerts"],
                "start": "2020-01-01T00:00:00Z",
                "end": "2040-01-01T00:00:00Z",
            })),
        );
        if reply.status == 200
            && reply.json()["rows"]
                .as_array()
                .is_some_and(|rows| !rows.is_empty())
        {
            assert_eq!(
                reply.json()["rows"][0]["severity"],
                "High",
                "{}",
                reply.text()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no retention clock finding: {} {}",
            reply.status,
            reply.text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    server.stop_ok();

    // Restarted five years ahead: still nothing expires.
    let mut server = clock.serve(&store);
    wait_clock(&server, &admin, "ahead");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        stored(&server, &admin, "app/short"),
        vec![0, 1, 2, 3],
        "expired after a restart"
    );
    confirm_clock(&server, &admin);
    wait_stored(&server, &admin, "app/short", &[]);
    server.stop_ok();
    // An auditor whose clock is right sees checkpoints dated five years ahead; one on the
    // same (simulated) clock finds the store intact, the expiry included.
    let real_clock = store.verify(&[]);
    assert!(!real_clock.status.success());
    assert!(
        String::from_utf8_lossy(&real_clock.stdout)
            .contains("in the future of this verifier's clock"),
        "{}",
        common::describe(&real_clock)
    );
    let same_clock = common::seclog()
        .args(["verify", "--data", &store.data_arg()])
        .envs(clock.env())
        .output()
        .expect("seclog verify runs");
    assert!(
        same_clock.status.success(),
        "{}",
        common::describe(&same_clock)
    );
}
