//! Loki push driven by `python-logging-loki` (JSON, basic auth with the token as password,
//! installed by `scripts/test`), and a snappy-compressed protobuf push as Promtail and Alloy
//! send it.

mod common;

use std::process::Command;

use common::{Store, post};
use prost::Message;

const CLIENT: &str = r#"
import logging, sys
import logging_loki

url, token = sys.argv[1], sys.argv[2]
handler = logging_loki.LokiHandler(url=url, tags={"job": "pyapp", "env": "test"}, auth=("seclog", token), version="1")
log = logging.getLogger("loki-test")
log.setLevel(logging.INFO)
log.addHandler(handler)
for index in range(40):
    log.warning("payment %d declined", index, extra={"tags": {"region": "eu"}})
"#;

#[derive(Clone, PartialEq, Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, Message)]
struct StreamAdapter {
    #[prost(string, tag = "1")]
    labels: String,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<EntryAdapter>,
}

#[derive(Clone, PartialEq, Message)]
struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<ProtoTimestamp>,
    #[prost(string, tag = "2")]
    line: String,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoTimestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[test]
fn loki_clients_push_json_and_protobuf() {
    common::require_python("import logging_loki", "python-logging-loki");
    let store = Store::new();
    store.init();
    let ingest = store.create_token("ingest", "loki/*");
    let mut server = store.serve(&[]);
    let output = Command::new("python3")
        .args(["-c", CLIENT, &server.url("/loki/api/v1/push"), &ingest])
        .output()
        .expect("python runs");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "client failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let push = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{job="varlogs", host="web-1"}"#.into(),
            entries: (0..3)
                .map(|index| EntryAdapter {
                    timestamp: Some(ProtoTimestamp {
                        seconds: 1_764_237_600 + index,
                        nanos: 0,
                    }),
                    line: format!("sshd[1]: Failed password for root from 10.0.0.{index}"),
                })
                .collect(),
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&push.encode_to_vec())
        .expect("snappy");
    let auth = format!("Bearer {ingest}");
    let headers = [
        ("content-type", "application/x-protobuf"),
        ("authorization", auth.as_str()),
    ];
    let reply = post(&server.url("/loki/api/v1/push"), None, &headers, &body);
    assert_eq!(
        reply.status,
        204,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let broken = post(
        &server.url("/loki/api/v1/push"),
        None,
        &headers,
        b"not snappy",
    );
    assert_eq!(broken.status, 400);
    let unauthorized = post(
        &server.url("/loki/api/v1/push"),
        None,
        &[("content-type", "application/json")],
        b"{\"streams\":[]}",
    );
    assert_eq!(unauthorized.status, 401);
    server.stop_ok();

    let python = store.cat("loki/pyapp");
    assert_eq!(python.len(), 40);
    assert!(python.iter().all(|event| event["attrs"]["env"] == "test"
        && event["attrs"]["region"] == "eu"
        && event["attrs"]["severity"] == "warning"));
    let mut lines: Vec<String> = python
        .iter()
        .map(|event| event["message"].as_str().unwrap_or_default().to_string())
        .collect();
    lines.sort();
    let mut expected: Vec<String> = (0..40).map(|i| format!("payment {i} declined")).collect();
    expected.sort();
    assert_eq!(lines, expected);

    let varlogs = store.cat("loki/varlogs");
    assert_eq!(varlogs.len(), 3);
    assert_eq!(varlogs[0]["time"], "2025-11-27T10:00:00.000000000Z");
    assert_eq!(varlogs[2]["attrs"]["host"], "web-1");
    assert_eq!(store.cat("seclog/dead-letter").len(), 1);
}
