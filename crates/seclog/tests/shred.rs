//! Crypto-shredding a group on the real binary: its data keys destroyed, its events unreadable
//! through every path (cat, search, proofs, a second attempt with the master key), its
//! encrypted segments still verified and the shred reported by `verify`; other groups and later
//! events untouched; refused under a legal hold or compliance retention.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Store, walk_files};
use serde_json::{Value, json};

fn query(server: &Server, admin: &str, text: &str, groups: Value) -> Reply {
    let reply = common::post(
        &server.url("/api/v1/query"),
        Some(admin),
        &[],
        json!({ "query": text, "groups": groups, "start": "2020-01-01T00:00:00Z" })
            .to_string()
            .as_bytes(),
    );
    Reply(reply.status, reply.text())
}

struct Reply(u16, String);

fn rows(reply: &Reply) -> usize {
    assert_eq!(reply.0, 200, "{}", reply.1);
    serde_json::from_str::<Value>(&reply.1).expect("JSON")["rows"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Waits until `text` over `app/gone` answers `expected` rows.
fn wait_rows(server: &Server, admin: &str, text: &str, expected: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows(&query(server, admin, text, json!(["app/gone"]))) != expected {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run(args: &[&str]) -> std::process::Output {
    common::run(args)
}

#[test]
fn a_shredded_group_is_unreadable_everywhere_and_still_verifies() {
    let store = Store::new();
    let admin = store.init();
    let data = store.data_arg();
    let mut server = store.serve(&["--segment-max-bytes", "512"]);
    for index in 0..20 {
        server.ingest_ok(
            &admin,
            "app/gone",
            json!({ "message": format!("erase-me-canary {index}"), "user": "bob" })
                .to_string()
                .as_bytes(),
        );
    }
    for index in 0..5 {
        server.ingest_ok(
            &admin,
            "app/kept",
            json!({ "message": format!("keep {index}") })
                .to_string()
                .as_bytes(),
        );
    }
    wait_rows(
        &server,
        &admin,
        "filter message like /erase-me-canary/",
        20,
        "not searchable",
    );
    server.stop_ok();

    // A legal hold, or compliance retention, refuses the shred.
    let held = run(&[
        "retention",
        "hold",
        "--data",
        &data,
        "--group",
        "app/gone",
        "--reason",
        "matter 7",
    ]);
    assert!(held.status.success(), "{}", common::describe(&held));
    let refused = run(&[
        "shred",
        "--data",
        &data,
        "--group",
        "app/gone",
        "--reason",
        "erasure request",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("legal hold"),
        "{}",
        common::describe(&refused)
    );
    assert!(
        run(&[
            "retention",
            "release",
            "--data",
            &data,
            "--group",
            "app/gone"
        ])
        .status
        .success()
    );
    assert!(
        run(&[
            "retention",
            "set",
            "--data",
            &data,
            "--group",
            "app/kept",
            "--preset",
            "pci-dss"
        ])
        .status
        .success()
    );
    let refused = run(&[
        "shred",
        "--data",
        &data,
        "--group",
        "app/kept",
        "--reason",
        "erasure request",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("compliance"),
        "{}",
        common::describe(&refused)
    );

    let keys_before = walk_files(&store.data().join("keys/data")).len();
    let shredded = run(&[
        "shred",
        "--data",
        &data,
        "--group",
        "app/gone",
        "--reason",
        "erasure request 42",
    ]);
    assert!(shredded.status.success(), "{}", common::describe(&shredded));
    assert!(
        String::from_utf8_lossy(&shredded.stdout).contains("records 0..19"),
        "{}",
        common::describe(&shredded)
    );
    let gone_keys: Vec<_> = walk_files(&store.data().join("keys/data"))
        .into_iter()
        .filter(|path| path.to_string_lossy().contains("app%2Fgone"))
        .collect();
    assert!(gone_keys.is_empty(), "data keys left: {gone_keys:?}");
    assert!(walk_files(&store.data().join("keys/data")).len() < keys_before);
    // The segments are still there.
    let segments = walk_files(&store.data().join("journal/groups/app%2Fgone"));
    assert!(
        segments
            .iter()
            .any(|path| path.extension().is_some_and(|ext| ext == "seg"))
    );
    assert!(
        segments
            .iter()
            .any(|path| path.extension().is_some_and(|ext| ext == "shred"))
    );

    // Unreadable through cat and proofs; the other group reads as before.
    assert!(store.cat("app/gone").is_empty());
    assert_eq!(store.cat("app/kept").len(), 5);
    let proof = run(&[
        "proof", "--data", &data, "--group", "app/gone", "--seq", "3",
    ]);
    assert!(!proof.status.success(), "{}", common::describe(&proof));
    // Verify passes over the shredded segments and reports the shred.
    let verified = store.verify_ok();
    assert!(
        String::from_utf8_lossy(&verified.stdout)
            .contains("app/gone: records 0..19 crypto-shredded"),
        "{}",
        common::describe(&verified)
    );
    // The shred is in the access log, with its reason.
    let access = store.cat("seclog/access");
    assert!(
        access
            .iter()
            .any(|record| record["event"]["action"] == "group_shred"
                && record["event"]["target"]["reason"] == "erasure request 42")
    );

    // Search finds nothing of it; the group takes new events, which read normally.
    let mut server = store.serve(&[]);
    assert_eq!(
        rows(&query(
            &server,
            &admin,
            "filter message like /erase-me-canary/",
            Value::Null
        )),
        0
    );
    assert_eq!(
        rows(&query(
            &server,
            &admin,
            "filter message like /keep/",
            json!(["app/kept"])
        )),
        5
    );
    let reply = server.ingest_ok(&admin, "app/gone", br#"{"message":"after the shred"}"#);
    assert_eq!(reply["first_seq"], 20, "{reply}");
    wait_rows(
        &server,
        &admin,
        "filter message like /after the shred/",
        1,
        "the new event is not searchable",
    );
    server.stop_ok();
    let after: Vec<Value> = store.cat("app/gone");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["seq"], 20);
    store.verify_ok();
    // Flipping a byte of a shredded segment is still caught.
    let segment = segments
        .iter()
        .find(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .expect("segment");
    let mut bytes = std::fs::read(segment).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(segment, bytes).expect("write");
    let damaged = store.verify(&[]);
    assert!(
        !damaged.status.success(),
        "a flipped byte in a shredded segment went unnoticed"
    );
}
