//! OTLP/HTTP logs from the OpenTelemetry Python SDK (protobuf, gzip) and the OpenTelemetry JS
//! SDK (JSON), both installed by `scripts/test`; OTLP's replies for bad bodies and credentials.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Store, post};

const PYTHON: &str = r#"
import logging, sys
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.sdk.resources import Resource

url, token = sys.argv[1], sys.argv[2]
provider = LoggerProvider(resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"}))
exporter = OTLPLogExporter(endpoint=url, headers={"Authorization": "Bearer " + token}, compression=Compression.Gzip)
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
log = logging.getLogger("otel-test")
log.setLevel(logging.INFO)
log.addHandler(handler)
for index in range(30):
    log.warning("order %d failed", index, extra={"order.id": index})
provider.shutdown()
"#;

fn js_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/js")
}

#[test]
fn opentelemetry_sdks_export_logs() {
    common::require_python(
        "from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter",
        "the OpenTelemetry Python SDK",
    );
    let js = js_dir();
    assert!(
        js.join("node_modules/@opentelemetry/sdk-logs").is_dir(),
        "the OpenTelemetry JS SDK is not installed in {}: run scripts/test (it runs npm ci there)",
        js.display()
    );
    let store = Store::new();
    store.init();
    let ingest = store.create_token("ingest", "otlp/*");
    let mut server = store.serve(&[]);
    let url = server.url("/v1/logs");

    let output = Command::new("python3")
        .args(["-c", PYTHON, &url, &ingest])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python SDK failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let output = Command::new("node")
        .arg(js.join("otlp_logs.mjs"))
        .args([&url, &ingest])
        .current_dir(&js)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "JS SDK failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let unauthorized = post(&url, None, &[("content-type", "application/json")], b"{}");
    assert_eq!(unauthorized.status, 401);
    let bearer = format!("Bearer {ingest}");
    let broken = post(
        &url,
        None,
        &[
            ("content-type", "application/x-protobuf"),
            ("authorization", &bearer),
        ],
        b"\xff\xff\xff\xff",
    );
    assert_eq!(broken.status, 400);
    server.stop_ok();

    let python = store.cat("otlp/checkout");
    assert_eq!(python.len(), 30, "{python:?}");
    let mut orders: Vec<i64> = python
        .iter()
        .map(|event| {
            event["event"]["attributes"]["order.id"]
                .as_i64()
                .expect("order.id")
        })
        .collect();
    orders.sort_unstable();
    assert_eq!(orders, (0..30).collect::<Vec<_>>());
    let first = &python[0];
    assert_eq!(first["event"]["severityText"], "WARN");
    assert!(
        first["event"]["body"]
            .as_str()
            .unwrap_or_default()
            .starts_with("order ")
    );
    assert_eq!(first["attrs"]["resource"]["deployment.environment"], "test");
    assert_eq!(first["attrs"]["scope"]["name"], "otel-test");

    let node = store.cat("otlp/web-frontend");
    assert_eq!(node.len(), 20, "{node:?}");
    assert!(
        node.iter()
            .all(|event| event["event"]["attributes"]["http.route"] == "/cart")
    );
    assert!(
        node[0]["time"]
            .as_str()
            .unwrap_or_default()
            .starts_with("20")
    );
    assert_eq!(store.cat("seclog/dead-letter").len(), 1);
}
