//! Splunk HEC driven by `splunk-hec-handler` (a Python logging handler, installed by
//! `scripts/test`), plus the raw endpoint, health, and HEC's error replies.

mod common;

use std::process::Command;

use common::{Store, get, post};
use serde_json::Value;

const CLIENT: &str = r#"
import logging, sys
from splunk_hec_handler import SplunkHecHandler

port, token = int(sys.argv[1]), sys.argv[2]
handler = SplunkHecHandler("127.0.0.1", token, port=port, proto="http", ssl_verify=False,
                           source="billing", sourcetype="app-json", index="app-hec")
log = logging.getLogger("hec-test")
log.setLevel(logging.INFO)
log.addHandler(handler)
for index in range(100):
    log.info({"user": "u%d" % index, "action": "pay", "amount": index, "time": 1764237600 + index})
log.warning("plain text message")
"#;

fn json(reply: &common::Reply) -> Value {
    serde_json::from_slice(&reply.body).expect("HEC replies with JSON")
}

#[test]
fn splunk_hec_handler_and_raw_events_are_stored() {
    common::require_python("import splunk_hec_handler", "splunk-hec-handler");
    let store = Store::new();
    store.init();
    let ingest = store.create_token("ingest", "app-*");
    let mut server = store.serve(&[]);
    let port = server.base.rsplit(':').next().expect("port").to_string();
    let output = Command::new("python3")
        .args(["-c", CLIENT, &port, &ingest])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "client failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let health = get(&server.url("/services/collector/health"), None);
    assert_eq!(json(&health)["code"], 17);

    let splunk = |path: &str, token: &str, body: &[u8]| {
        let header = format!("Splunk {token}");
        common::try_post(
            &common::agent(std::time::Duration::from_secs(30)),
            &server.url(path),
            None,
            &[("authorization", header.as_str())],
            body,
        )
        .expect("HEC request")
    };
    let raw = splunk(
        "/services/collector/raw?sourcetype=nginx&index=app-raw&host=web-1",
        &ingest,
        b"10.0.0.5 - - [27/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 512\n10.0.0.6 - - [27/Nov/2026:10:00:01 +0000] \"GET /x HTTP/1.1\" 404 0\n",
    );
    assert_eq!(raw.status, 200);
    assert_eq!(
        json(&raw),
        serde_json::json!({"text": "Success", "code": 0})
    );

    let bad_token = splunk("/services/collector/event", "nope", b"{\"event\":\"x\"}");
    assert_eq!(bad_token.status, 403);
    assert_eq!(json(&bad_token)["code"], 4);
    let missing = post(
        &server.url("/services/collector/event"),
        None,
        &[],
        b"{\"event\":\"x\"}",
    );
    assert_eq!(missing.status, 401);
    assert_eq!(json(&missing)["code"], 2);
    let broken = splunk(
        "/services/collector/event",
        &ingest,
        b"{\"event\":\"ok\",\"index\":\"app-hec\"}{\"event\":",
    );
    assert_eq!(broken.status, 400);
    assert_eq!(json(&broken)["code"], 6);
    assert_eq!(json(&broken)["invalid-event-number"], 1);
    let no_event = splunk("/services/collector/event", &ingest, b"{\"host\":\"h\"}");
    assert_eq!(json(&no_event)["code"], 12);
    let wrong_index = splunk(
        "/services/collector/event",
        &ingest,
        b"{\"event\":\"x\",\"index\":\"other\"}",
    );
    assert_eq!(wrong_index.status, 400);
    assert_eq!(json(&wrong_index)["code"], 7);
    server.stop_ok();

    let events = store.cat("app-hec");
    assert_eq!(events.len(), 101, "{events:?}");
    let mut amounts: Vec<u64> = events
        .iter()
        .filter_map(|event| event["event"]["event"]["amount"].as_u64())
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts, (0..100).collect::<Vec<_>>());
    let first = events
        .iter()
        .find(|event| event["event"]["event"]["amount"] == 0)
        .expect("first event");
    assert_eq!(first["time"], "2025-11-27T10:00:00.000000000Z");
    assert_eq!(first["event"]["sourcetype"], "app-json");
    assert!(
        events
            .iter()
            .any(|event| event["event"]["event"]["message"] == "plain text message")
    );
    let raw_events = store.cat("app-raw");
    assert_eq!(raw_events.len(), 2);
    assert_eq!(raw_events[0]["attrs"]["sourcetype"], "nginx");
    assert_eq!(raw_events[0]["attrs"]["host"], "web-1");
    assert!(
        raw_events[1]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("404")
    );
    // The broken body, the one without an event, and the one for a group outside the token
    // are kept as dead letters.
    assert_eq!(store.cat("seclog/dead-letter").len(), 3);
}
