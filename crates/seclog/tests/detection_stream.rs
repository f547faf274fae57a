//! Streaming detection in `seclog serve`: findings in `seclog/alerts` as OCSF Detection
//! Findings pointing at their evidence, exactly once across SIGKILLs, both while the detector
//! reads history back from the journal and while the commit thread hands it new events.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Store, get, run};
use serde_json::Value;

/// The detector's counters from `/api/v1/status`.
fn detection(server: &common::Server, token: &str) -> Value {
    let reply = get(&server.url("/api/v1/status"), Some(token));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["detection"].clone()
}

/// Polls the detector's counters until `done` holds, at most `secs` seconds.
fn wait_for(
    server: &common::Server,
    token: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let status = detection(server, token);
        if done(&status) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the server, waits until the detector's counters satisfy `ready`, and kills it hard.
fn start_and_kill(store: &Store, token: &str, what: &str, ready: impl Fn(&Value) -> bool) {
    let mut server = store.serve(&[]);
    wait_for(&server, token, 300, what, ready);
    server.kill_hard();
}

/// `events` generated CloudTrail records in gzip objects of `per_file` (`seclog gen`).
fn generate(events: &str, per_file: &str, seed: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run([
        "gen",
        "--format",
        "cloudtrail",
        "--events",
        events,
        "--per-file",
        per_file,
        "--seed",
        seed,
        "--output",
        dir.path().to_str().expect("path"),
    ]);
    assert!(output.status.success(), "{}", common::describe(&output));
    dir
}

fn denied(record: &Value) -> bool {
    record["errorCode"].as_str().is_some_and(|code| {
        let code = code.to_ascii_lowercase();
        code.starts_with("accessdenied") || code.ends_with("unauthorizedoperation")
    })
}

#[test]
fn findings_are_stored_once_with_their_evidence_across_a_sigkill() {
    let store = Store::new();
    let token = store.init();
    // A first start records where the detector begins (the groups' ends: nothing yet).
    let mut server = store.serve(&[]);
    server.stop_ok();

    let input = generate("60000", "5000", "4");
    let data = store.data_arg();
    let output = run([
        "import",
        "--data",
        &data,
        "--quiet",
        input.path().to_str().expect("path"),
    ]);
    assert!(output.status.success(), "{}", common::describe(&output));

    // The detector works through the imported events; kill it part way.
    start_and_kill(&store, &token, "the detector did not start", |status| {
        status["events"].as_u64().unwrap_or(0) > 0 && status["behind"].as_u64().unwrap_or(0) > 0
    });

    let mut server = store.serve(&[]);
    wait_for(
        &server,
        &token,
        300,
        "the detector did not catch up",
        |status| status["events"].as_u64().unwrap_or(0) > 0 && status["behind"] == 0,
    );

    // More events sent to the running server: the detector gets them from the commit thread
    // rather than the journal; kill the server while it evaluates them.
    let more = generate("40000", "2000", "5");
    let before = detection(&server, &token)["events"].as_u64().unwrap_or(0);
    let mut import = common::seclog()
        .args(["import", "--server", &server.url(""), "--quiet"])
        .arg(more.path())
        .env("SECLOG_TOKEN", &token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("import starts");
    wait_for(
        &server,
        &token,
        300,
        "the detector did not take the new events",
        |status| {
            status["events"].as_u64().unwrap_or(0) > before
                && status["behind"].as_u64().unwrap_or(0) > 0
        },
    );
    server.kill_hard();
    // The import stops with the server (what it sent before is stored, or it was not acknowledged).
    let _ = import.wait();

    // Killed again soon after restarting, while it may still be finding again the findings it
    // stored after its last save: a second crash must not lose track of them.
    start_and_kill(&store, &token, "the detector did not restart", |status| {
        status["events"].as_u64().unwrap_or(0) > 0 || status["behind"] == 0
    });

    let mut server = store.serve(&[]);
    wait_for(
        &server,
        &token,
        300,
        "the detector did not catch up",
        |status| status["behind"] == 0,
    );
    server.stop_ok();

    let events = store.cat("aws/cloudtrail");
    assert!(events.len() > 60_000, "{} events", events.len());
    let records: Vec<Value> = events.iter().map(|event| event["event"].clone()).collect();
    let findings: Vec<Value> = store
        .cat("seclog/alerts")
        .iter()
        .map(|event| event["event"].clone())
        .collect();
    // No finding twice.
    let ids: BTreeSet<&str> = findings
        .iter()
        .map(|finding| finding["metadata"]["uid"].as_str().expect("uid"))
        .collect();
    assert_eq!(ids.len(), findings.len(), "a finding was stored twice");
    // CIS 4.1 fires once for every denied call, and each finding names that call.
    let expected: BTreeSet<u64> = records
        .iter()
        .enumerate()
        .filter(|(_, record)| denied(record))
        .map(|(seq, _)| seq as u64)
        .collect();
    assert!(expected.len() > 100, "{} denied calls", expected.len());
    let mut by_rule: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for finding in &findings {
        assert_eq!(finding["class_uid"], 2004);
        let evidence = &finding["evidences"][0]["data"]["events"];
        let last = evidence
            .as_array()
            .and_then(|events| events.last())
            .expect("evidence");
        assert_eq!(last["group"], "aws/cloudtrail");
        by_rule
            .entry(finding["finding_info"]["title"].as_str().expect("title"))
            .or_default()
            .insert(last["seq"].as_u64().expect("seq"));
    }
    assert_eq!(
        by_rule
            .remove("Unauthorized AWS API calls")
            .unwrap_or_default(),
        expected
    );
    let finding = findings
        .iter()
        .find(|finding| finding["finding_info"]["title"] == "Unauthorized AWS API calls")
        .expect("a CIS 4.1 finding");
    assert_eq!(finding["severity"], "Low");
    assert_eq!(
        finding["finding_info"]["analytic"]["uid"],
        "c08619c4-d870-499d-93e3-e87be258a74c"
    );
    // The evidence's inclusion proof can be fetched and checks out offline.
    let seq = finding["evidences"][0]["data"]["events"][0]["seq"]
        .as_u64()
        .expect("seq");
    let bundle = common::proof(&store, "aws/cloudtrail", seq);
    let bundle_file = store.logs().join("bundle.json");
    std::fs::write(&bundle_file, bundle.to_string()).expect("write bundle");
    let key = store.data().join("verification.key");
    let checked = run([
        "verify-proof",
        "--key",
        key.to_str().expect("path"),
        bundle_file.to_str().expect("path"),
    ]);
    assert!(checked.status.success(), "{}", common::describe(&checked));
    let record = common::bundle_record(&bundle);
    assert!(denied(&serde_json::from_slice(&record.raw).expect("JSON")));
    // The stream and a hunt over the same history agree on CIS 4.1.
    let hunted = run([
        "hunt",
        "--data",
        &data,
        "--group",
        "aws/cloudtrail",
        "--no-builtin",
        "--rules",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../seclog-detect/rules/cis_aws_monitoring.yml"
        ),
    ]);
    assert!(hunted.status.success(), "{}", common::describe(&hunted));
    let hunted: BTreeSet<u64> = String::from_utf8_lossy(&hunted.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
        .filter(|line| line["rule"]["title"] == "Unauthorized AWS API calls")
        .map(|line| line["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(hunted, expected);
    let verify = store.verify(&[]);
    assert!(verify.status.success(), "{}", common::describe(&verify));
}
