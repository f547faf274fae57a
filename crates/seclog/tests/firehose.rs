//! Amazon Data Firehose HTTP endpoint delivery, built as the AWS documentation describes it:
//! the `X-Amz-Firehose-*` headers, base64 records, a gzip-compressed CloudWatch Logs
//! subscription payload (and its control message), a producer's own NDJSON record, and a gzip
//! request body.

mod common;

use std::io::Write;

use base64::Engine as _;
use common::{Store, post};
use serde_json::{Value, json};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn deliver(base: &str, key: &str, request_id: &str, body: &[u8], gzipped: bool) -> common::Reply {
    let mut headers = vec![
        ("x-amz-firehose-protocol-version", "1.0"),
        ("x-amz-firehose-request-id", request_id),
        (
            "x-amz-firehose-source-arn",
            "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs-to-seclog",
        ),
        ("x-amz-firehose-access-key", key),
        ("content-type", "application/json"),
    ];
    if gzipped {
        headers.push(("content-encoding", "gzip"));
    }
    post(&format!("{base}/api/v1/firehose"), None, &headers, body)
}

#[test]
fn firehose_deliveries_with_cloudwatch_subscriptions() {
    let store = Store::new();
    store.init();
    let key = store.create_token("ingest", "*");
    let mut server = store.serve(&[]);

    let subscription = json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/payments",
        "logStream": "2026/11/27/[$LATEST]0123456789abcdef",
        "subscriptionFilters": ["to-seclog"],
        "logEvents": [
            {"id": "38179361", "timestamp": 1764237600000_i64, "message": "START RequestId: 8f1c Version: $LATEST"},
            {"id": "38179362", "timestamp": 1764237600250_i64, "message": "{\"level\":\"error\",\"msg\":\"card declined\"}"},
            {"id": "38179363", "timestamp": 1764237600500_i64, "message": "END RequestId: 8f1c"},
        ],
    });
    let control = json!({
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": 1764237600000_i64, "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}],
    });
    let request_id = "ed4acda5-034f-9f42-bba1-f29aea6d7d8f";
    let body = json!({
        "requestId": request_id,
        "timestamp": 1764237601000_i64,
        "records": [
            {"data": b64(&gzip(subscription.to_string().as_bytes()))},
            {"data": b64(&gzip(control.to_string().as_bytes()))},
            {"data": b64(b"{\"app\":\"billing\",\"ok\":true}\n{\"app\":\"billing\",\"ok\":false}\n")},
            {"data": "not base64!"},
        ],
    })
    .to_string();
    let reply = deliver(&server.base, &key, request_id, body.as_bytes(), false);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let answer: Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(answer["requestId"], request_id);
    assert!(answer["timestamp"].as_i64().is_some());

    // The same delivery format, gzip-compressed as a whole.
    let second = json!({
        "requestId": "r-2",
        "timestamp": 1764237602000_i64,
        "records": [{"data": b64(b"plain text from a producer")}],
    })
    .to_string();
    let reply = deliver(&server.base, &key, "r-2", &gzip(second.as_bytes()), true);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );

    let refused = deliver(&server.base, "wrong", "r-3", body.as_bytes(), false);
    assert_eq!(refused.status, 401);
    let refused: Value = serde_json::from_slice(&refused.body).expect("JSON");
    assert_eq!(refused["requestId"], "r-3");
    assert!(refused["errorMessage"].as_str().is_some());
    let malformed = deliver(&server.base, &key, "r-4", b"{\"nope\":1}", false);
    assert_eq!(malformed.status, 400);
    server.stop_ok();

    let lambda = store.cat("cloudwatch/aws/lambda/payments");
    assert_eq!(lambda.len(), 3, "{lambda:?}");
    assert_eq!(lambda[0]["time"], "2025-11-27T10:00:00.000000000Z");
    assert_eq!(
        lambda[0]["message"],
        "START RequestId: 8f1c Version: $LATEST"
    );
    assert_eq!(lambda[0]["attrs"]["logGroup"], "/aws/lambda/payments");
    assert_eq!(lambda[0]["attrs"]["id"], "38179361");
    assert_eq!(lambda[1]["event"]["msg"], "card declined");
    assert_eq!(lambda[1]["time"], "2025-11-27T10:00:00.250000000Z");
    let stream = store.cat("firehose/logs-to-seclog");
    assert_eq!(stream.len(), 3, "{stream:?}");
    assert_eq!(stream[0]["event"]["ok"], true);
    assert_eq!(stream[2]["message"], "plain text from a producer");
    let dead = store.cat("seclog/dead-letter");
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]["attrs"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("base64")
    );
}
