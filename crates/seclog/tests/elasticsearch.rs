//! The Elasticsearch `_bulk` endpoint driven by the official Python client (`elasticsearch`,
//! installed by `scripts/test`): `info()`, the bulk helper (which sends `PUT /_bulk` with the
//! `compatible-with` media type and refuses servers without `X-Elastic-Product`), per-item
//! results for actions seclog cannot honour, and every authentication form.

mod common;

use std::process::Command;

use common::{Store, post};

const CLIENT: &str = r#"
import json, sys
from elasticsearch import Elasticsearch, helpers

url, token, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "api_key":
    es = Elasticsearch(url, api_key=("seclog", token))
elif mode == "basic":
    es = Elasticsearch(url, basic_auth=("elastic", token))
else:
    es = Elasticsearch(url, bearer_auth=token)
info = es.info()
actions = [
    {"_index": "app-" + mode, "_source": {"@timestamp": "2026-11-27T10:00:%02dZ" % (i % 60), "message": "event %d" % i, "n": i}}
    for i in range(500)
]
actions.append({"_op_type": "delete", "_index": "app-" + mode, "_id": "1"})
actions.append({"_op_type": "create", "_index": "Not A Group!", "_source": {"message": "bad index"}})
ok, errors = helpers.bulk(es, actions, raise_on_error=False, chunk_size=200)
print(json.dumps({"version": info["version"]["number"], "ok": ok, "errors": errors}))
"#;

#[test]
fn the_official_client_bulk_indexes_into_groups() {
    common::require_python("import elasticsearch", "the Python elasticsearch client");
    let store = Store::new();
    store.init();
    let ingest = store.create_token("ingest", "app-*");
    let mut server = store.serve(&[]);
    for mode in ["api_key", "basic", "bearer"] {
        let output = Command::new("python3")
            .args(["-c", CLIENT, &server.base, &ingest, mode])
            .output()
            .expect("python runs");
        assert!(
            output.status.success(),
            "client failed ({mode}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let reply: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("client prints JSON");
        assert_eq!(reply["ok"], 500, "{reply}");
        let errors = reply["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 2, "{reply}");
        assert_eq!(errors[0]["delete"]["status"], 400);
        assert_eq!(errors[1]["create"]["status"], 400);
        assert_eq!(
            errors[1]["create"]["error"]["type"],
            "invalid_index_name_exception"
        );
    }

    // Wrong credentials get Elasticsearch's error shape and the product header.
    let reply = post(
        &server.url("/_bulk"),
        Some("not-a-token"),
        &[("content-type", "application/x-ndjson")],
        b"{\"index\":{\"_index\":\"app-x\"}}\n{\"a\":1}\n",
    );
    assert_eq!(reply.status, 401);
    assert!(
        reply
            .headers
            .iter()
            .any(|(name, value)| name == "x-elastic-product" && value == "Elasticsearch")
    );
    let error: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON error");
    assert_eq!(error["error"]["type"], "security_exception");
    // A token for other groups: the item fails, the request does not.
    let reply = post(
        &server.url("/other/_bulk"),
        Some(&ingest),
        &[("content-type", "application/x-ndjson")],
        b"{\"create\":{}}\n{\"a\":1}\n",
    );
    assert_eq!(reply.status, 200);
    let items: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(items["errors"], true);
    assert_eq!(items["items"][0]["create"]["status"], 403);
    server.stop_ok();

    for mode in ["api_key", "basic", "bearer"] {
        let events = store.cat(&format!("app-{mode}"));
        assert_eq!(events.len(), 500, "{mode}");
        let mut numbers: Vec<u64> = events
            .iter()
            .map(|event| event["event"]["n"].as_u64().expect("n"))
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (0..500).collect::<Vec<_>>());
        assert!(events.iter().all(|event| {
            event["source"]
                .as_str()
                .unwrap_or_default()
                .starts_with("elasticsearch:")
        }));
        assert!(
            events[0]["time"]
                .as_str()
                .unwrap_or_default()
                .starts_with("2026-11-27T10:00:")
        );
    }
    let dead = store.cat("seclog/dead-letter");
    // Per client run: the delete and the bad index; plus the one outside the token's groups.
    assert_eq!(dead.len(), 7, "{dead:?}");
}
