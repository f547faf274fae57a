//! Logging-failure alarms on the real binary (PCI DSS 10.7): a source that goes silent beyond
//! its expected interval and a data directory below its free-space minimum each raise a
//! finding in `seclog/alerts` that is delivered to a webhook, show in `/api/v1/status` and
//! `/metrics`, and the silent source clears when it sends again.

mod common;

use std::time::{Duration, Instant};

use common::receiver::http_receiver;
use common::{Store, get};
use serde_json::Value;

#[test]
fn a_silent_source_and_a_full_disk_raise_delivered_findings() {
    let store = Store::new();
    let admin = store.init();
    let hook = http_receiver(0);
    let work = tempfile::tempdir().expect("temp dir");
    let alerting = work.path().join("alerting.toml");
    std::fs::write(
        &alerting,
        format!(
            "version = 1\n\n[[destination]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{}/alarms\"\nmin_severity = \"high\"\n",
            hook.port
        ),
    )
    .expect("alerting config");
    let mut server = store.serve(&[
        "--alerting",
        alerting.to_str().expect("UTF-8"),
        "--watchdog-interval-secs",
        "1",
        "--expect",
        "app/heartbeat=3s",
        // Every file system has less than 100 % free: the disk alarm is on from the start.
        "--disk-min-free-percent",
        "100",
    ]);
    server.ingest_ok(&admin, "app/heartbeat", br#"{"message":"alive"}"#);

    // Both alarms are delivered as findings.
    let deadline = Instant::now() + Duration::from_secs(60);
    let titles = loop {
        let titles: Vec<String> = hook
            .accepted
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|received| serde_json::from_slice::<Value>(&received.body).ok())
            .filter_map(|finding| {
                finding["finding_info"]["title"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        if titles.iter().any(|title| title.contains("went silent"))
            && titles.iter().any(|title| title.contains("nearly full"))
        {
            break titles;
        }
        assert!(
            Instant::now() < deadline,
            "alarms not delivered: {titles:?}\n{}",
            server.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        titles
            .iter()
            .filter(|title| title.contains("went silent"))
            .count(),
        1,
        "raised once while it stays silent: {titles:?}"
    );
    let status = get(&server.url("/api/v1/status"), Some(&admin)).json();
    let kinds: Vec<&str> = status["alarms"]
        .as_array()
        .expect("alarms")
        .iter()
        .filter_map(|alarm| alarm["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"source_silent") && kinds.contains(&"disk_nearly_full"),
        "{status}"
    );
    let metrics = String::from_utf8(get(&server.url("/metrics"), None).body).expect("UTF-8");
    assert!(
        metrics.contains("seclog_alarm_active{kind=\"source_silent\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("seclog_alarm_active{kind=\"sealer_stalled\"} 0"),
        "{metrics}"
    );

    // The source sends again: the alarm clears (recorded in seclog/health).
    server.ingest_ok(&admin, "app/heartbeat", br#"{"message":"back"}"#);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = get(&server.url("/api/v1/status"), Some(&admin)).json();
        let silent = status["alarms"]
            .as_array()
            .expect("alarms")
            .iter()
            .any(|alarm| alarm["kind"] == "source_silent");
        if !silent {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the alarm did not clear: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.stop_ok();
    let health = store.cat("seclog/health");
    let summary: Vec<(String, String)> = health
        .iter()
        .map(|event| {
            (
                event["event"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                event["event"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert!(
        summary.contains(&("source_silent".into(), "raised".into())),
        "{summary:?}"
    );
    assert!(
        summary.contains(&("source_silent".into(), "cleared".into())),
        "{summary:?}"
    );
    assert!(
        summary.contains(&("disk_nearly_full".into(), "raised".into())),
        "{summary:?}"
    );
    store.verify_ok();
}
