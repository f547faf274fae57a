//! The HTTP API of `seclog serve`, end to end: authentication and authorization, what the ingest
//! endpoint accepts, rejects and refuses, and what `seclog cat` then shows was stored.

mod common;

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Reply, Store, bundle_record, get, now_rfc3339, post, proof};
use serde_json::{Value, json};

const INGEST: &str = "/api/v1/ingest";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 3).expect("zstd in memory")
}

/// Asserts a JSON error reply: status, `error.code`, a non-empty message.
fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(
        reply.status,
        status,
        "expected {status} {code}, got {}: {}",
        reply.status,
        reply.text()
    );
    assert_eq!(reply.error_code(), code, "reply body: {}", reply.text());
    let message = reply.json()["error"]["message"].clone();
    assert!(
        message.as_str().is_some_and(|text| !text.is_empty()),
        "error without a message: {}",
        reply.text()
    );
}

fn decode_raw(event: &Value) -> Vec<u8> {
    let encoded = event["raw_base64"]
        .as_str()
        .unwrap_or_else(|| panic!("dead letter without raw_base64: {event}"));
    B64.decode(encoded).expect("raw_base64 is base64")
}

/// `/healthz` answers without a token; the other endpoints do not.
#[test]
fn healthz_needs_no_token_but_status_and_checkpoint_do() {
    let store = Store::new();
    store.init();
    let server = store.serve(&[]);

    let health = get(&server.url("/healthz"), None);
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json(), json!({"status": "ok"}));

    for path in ["/api/v1/status", "/api/v1/checkpoint"] {
        let reply = get(&server.url(path), None);
        assert_error(&reply, 401, "unauthorized");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{path}");
    }
}

/// Requests without a valid bearer token get 401 with `WWW-Authenticate: Bearer` and store
/// nothing; the scheme name itself is case-insensitive.
#[test]
fn missing_or_wrong_token_is_401_and_stores_nothing() {
    let store = Store::new();
    let admin = store.init();
    let revoked = store.create_token("ingest", "*");
    let data = store.data_arg();
    let listing = common::run_ok(["token", "list", "--data", &data]);
    let revoked_id = listing
        .lines()
        .find(|line| line.split(' ').nth(1) == Some("ingest"))
        .and_then(|line| line.split(' ').next())
        .unwrap_or_else(|| panic!("no ingest token in `token list`: {listing}"))
        .to_string();
    common::run_ok(["token", "revoke", "--data", &data, &revoked_id]);
    let mut server = store.serve(&[]);
    let url = server.url(&format!("{INGEST}/app/auth"));
    let body = br#"{"id":"should-not-be-stored"}"#;

    let wrong_token = format!("slt_{}", "A".repeat(43));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        ("unknown token", Some(format!("Bearer {wrong_token}"))),
        (
            "token without the slt_ prefix",
            Some("Bearer hunter2".into()),
        ),
        ("revoked token", Some(format!("Bearer {revoked}"))),
        ("Basic scheme", Some(format!("Basic {admin}"))),
        ("no scheme", Some(admin.clone())),
        ("empty token", Some("Bearer ".into())),
    ];
    for (what, authorization) in &cases {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("Authorization", value.as_str()))
            .collect();
        let reply = post(&url, None, &headers, body);
        assert_eq!(reply.status, 401, "{what}: {}", reply.text());
        assert_eq!(reply.error_code(), "unauthorized", "{what}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{what}");
    }

    // The same request with the admin token, scheme in lower case, is accepted.
    let authorization = format!("bearer {admin}");
    let accepted = post(
        &server.url(&format!("{INGEST}/app/control")),
        None,
        &[("Authorization", authorization.as_str())],
        body,
    );
    assert_eq!(accepted.status, 200, "{}", accepted.text());

    server.stop_ok();
    let groups = store.groups();
    assert_eq!(
        groups.keys().collect::<Vec<_>>(),
        ["app/control", "seclog/access"],
        "only the authenticated request may create a group: {groups:?}"
    );
    // Each refused request is recorded, without the credentials it presented (the other
    // records are the command line's token creation and revocation, and this read).
    let refusals: Vec<Value> = store
        .cat("seclog/access")
        .into_iter()
        .filter(|record| record["event"]["status"] == "denied")
        .collect();
    assert_eq!(refusals.len(), cases.len(), "{refusals:#?}");
    for refusal in &refusals {
        assert_eq!(refusal["event"]["status"], "denied", "{refusal}");
        assert_eq!(
            refusal["event"]["request"], "POST /api/v1/ingest/app/auth",
            "{refusal}"
        );
        let text = refusal.to_string();
        assert!(
            !text.contains(&wrong_token) && !text.contains(&admin),
            "{text}"
        );
    }
}

/// Tokens lacking the right get 403: wrong role, a group pattern that does not cover the group,
/// and writes to internal `seclog/...` groups, even for admin tokens.
#[test]
fn tokens_without_the_right_are_403() {
    let store = Store::new();
    let admin = store.init();
    let reader = store.create_token("reader", "*");
    let auditor = store.create_token("auditor", "*");
    let team_a = store.create_token("ingest", "team-a/*");
    let exact = store.create_token("ingest", "team-a/only");
    let anywhere = store.create_token("ingest", "*");
    let mut server = store.serve(&["--seal-delay-ms", "100"]);
    let body = b"{\"id\":\"x\"}\n";

    let refused = [
        ("reader token", &reader, "team-a/x"),
        ("auditor token", &auditor, "team-a/x"),
        ("ingest token scoped to team-a/*", &team_a, "team-b/x"),
        ("ingest token scoped to team-a/*", &team_a, "team-a2/x"),
        ("exact pattern is not a prefix", &exact, "team-a/only2"),
        (
            "admin writing the dead-letter group",
            &admin,
            "seclog/dead-letter",
        ),
        ("admin writing seclog/...", &admin, "seclog/audit"),
        (
            "admin writing seclog/... encoded",
            &admin,
            "seclog%2Fdead-letter",
        ),
        ("ingest * writing seclog/...", &anywhere, "seclog/x"),
    ];
    for (what, token, group) in refused {
        let reply = server.ingest(token, group, body);
        assert_eq!(reply.status, 403, "{what} -> {group}: {}", reply.text());
        assert_eq!(reply.error_code(), "forbidden", "{what}");
    }

    // Controls: the same tokens where they do have the right.
    server.ingest_ok(&team_a, "team-a/x", body);
    server.ingest_ok(&exact, "team-a/only", body);

    let checkpoint_url = server.url("/api/v1/checkpoint");
    for (what, token) in [("ingest", &team_a), ("reader", &reader)] {
        let reply = get(&checkpoint_url, Some(token));
        assert_error(&reply, 403, "forbidden");
        assert!(reply.text().contains("auditor"), "{what}: {}", reply.text());
    }
    // The auditor may read checkpoints: the one covering the two writes appears within the seal delay.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let checkpoint = loop {
        let reply = get(&checkpoint_url, Some(&auditor));
        if reply.status == 200 && reply.text().contains("group team-a/x 1 ") {
            break reply.text();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint covering team-a/x for the auditor: {} {}",
            reply.status,
            reply.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        checkpoint.starts_with("seclog checkpoint v1\n"),
        "{checkpoint}"
    );
    assert!(checkpoint.contains("\n— signature "), "{checkpoint}");

    // Any valid token may read the status.
    let status = get(&server.url("/api/v1/status"), Some(&reader));
    assert_eq!(status.status, 200, "{}", status.text());

    server.stop_ok();
    let mut groups = store.groups();
    // Refused requests store nothing but the record of their refusal (nine writes and two
    // checkpoint reads), beside the records of the five tokens created on the command line.
    let access = groups.remove("seclog/access").unwrap_or(0);
    assert_eq!(
        groups,
        [("team-a/only".to_string(), 1), ("team-a/x".to_string(), 1)].into(),
        "refused requests must not store anything"
    );
    // The read below records itself first.
    let records = store.cat("seclog/access");
    assert_eq!(access + 1, records.len() as u64);
    let denied = records
        .iter()
        .filter(|record| record["event"]["status"] == "denied")
        .count();
    let created = records
        .iter()
        .filter(|record| record["event"]["action"] == "token_create")
        .count();
    assert_eq!((denied, created), (11, 5), "{records:#?}");
}

/// NDJSON with good and bad lines: the reply counts both exactly; the good lines are stored in
/// order, byte for byte, with their own event time when they carry one (`@timestamp`,
/// `eventTime`, `ts`; RFC 3339, epoch seconds, milliseconds, nanoseconds) and the receipt time
/// otherwise; the bad lines are kept byte for byte in `seclog/dead-letter` with the reason.
#[test]
fn ndjson_mixed_lines_are_split_between_group_and_dead_letters() {
    let store = Store::new();
    let admin = store.init();
    let mut server = store.serve(&[]);

    // (line bytes, expected time or None for the receipt time); None entries in `bad` are rejects.
    let good: Vec<(usize, &[u8], Option<&str>)> = vec![
        (
            1,
            br#"{"id":"e1","eventTime":"2023-07-10T13:45:00+02:00","msg":"rfc3339"}"#,
            Some("2023-07-10T11:45:00.000000000Z"),
        ),
        (
            2,
            br#"{"id":"e2","@timestamp":1688989500}"#,
            Some("2023-07-10T11:45:00.000000000Z"),
        ),
        (
            3,
            br#"{"id":"e3","ts":1688989500123}"#,
            Some("2023-07-10T11:45:00.123000000Z"),
        ),
        (
            4,
            br#"{"id":"e4","ts":1688989500123456789}"#,
            Some("2023-07-10T11:45:00.123456789Z"),
        ),
        (5, br#"{"id":"e5","detail":{"ts":1}}"#, None),
        (
            7,
            b"sshd[42]: Accepted publickey for root from 10.0.0.1 port 22",
            None,
        ),
        (11, br#"  {"id":"e6",  "spaced" : [1, 2]}  "#, None),
        (
            13,
            br#"{"id":"e7","time":"not a time","ts":"1688989500.5"}"#,
            Some("2023-07-10T11:45:00.500000000Z"),
        ),
        (
            14,
            br#"{"id":"e8","ts":1688989500,"@timestamp":"2023-07-10T12:00:00.25+02:00"}"#,
            Some("2023-07-10T10:00:00.250000000Z"),
        ),
    ];
    let bad: Vec<(usize, &[u8], &str)> = vec![
        (6, br#"{"id":"bad-1","eventTime":"#, "line 6: invalid JSON"),
        (9, b"[1,2,3]", "line 9: JSON value is not an object"),
        (
            10,
            b"caf\xe9 au lait \xff",
            "line 10 is not valid UTF-8 (at byte 3)",
        ),
        (12, br#"{"id":"bad-4"} trailing"#, "line 12: invalid JSON"),
    ];
    let mut lines: Vec<Vec<u8>> = vec![Vec::new(); 14];
    for (number, bytes, _) in &good {
        lines[number - 1] = bytes.to_vec();
    }
    for (number, bytes, _) in &bad {
        lines[number - 1] = bytes.to_vec();
    }
    // Line 8 stays blank (skipped, not counted); line 11 ends with CRLF.
    let mut body = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        body.extend_from_slice(line);
        body.extend_from_slice(if index == 10 { b"\r\n" } else { b"\n" });
    }

    let before = now_rfc3339();
    let reply = server.ingest_ok(&admin, "app/web", &body);
    let after = now_rfc3339();
    assert_eq!(
        reply,
        json!({"accepted": 9, "rejected": 4, "first_seq": 0, "last_seq": 8})
    );
    server.stop_ok();

    let events = store.cat("app/web");
    assert_eq!(events.len(), good.len(), "stored events: {events:#?}");
    for (seq, ((number, raw, time), event)) in good.iter().zip(&events).enumerate() {
        let context = format!("line {number} (seq {seq}): {event}");
        assert_eq!(event["group"], "app/web", "{context}");
        assert_eq!(event["seq"], seq, "{context}");
        let observed = event["observed_time"].as_str().expect("observed_time");
        assert!(
            before.as_str() <= observed && observed <= after.as_str(),
            "observed_time outside [{before}, {after}]: {context}"
        );
        let source = event["source"].as_str().expect("source");
        assert_eq!(source, "http:127.0.0.1", "{context}");
        let expected_time = time.unwrap_or(observed);
        assert_eq!(event["time"], expected_time, "{context}");
        if raw.trim_ascii_start().starts_with(b"{") {
            assert_eq!(event["kind"], "json", "{context}");
            let parsed: Value = serde_json::from_slice(raw).expect("test line is JSON");
            assert_eq!(event["event"], parsed, "{context}");
        } else {
            assert_eq!(event["kind"], "text", "{context}");
            assert_eq!(
                event["message"].as_str().map(str::as_bytes),
                Some(*raw),
                "{context}"
            );
        }
    }
    // `cat` shows JSON events parsed; the proof bundle carries the stored bytes: exact, spaces
    // kept, CR stripped.
    let bundle = proof(&store, "app/web", 6);
    let record = bundle_record(&bundle);
    assert_eq!(
        String::from_utf8_lossy(&record.raw),
        String::from_utf8_lossy(good[6].1)
    );
    assert_eq!(record.kind, 0, "json record kind");

    let dead = store.cat("seclog/dead-letter");
    assert_eq!(dead.len(), bad.len(), "dead letters: {dead:#?}");
    for ((number, raw, reason), letter) in bad.iter().zip(&dead) {
        let context = format!("line {number}: {letter}");
        assert_eq!(letter["kind"], "invalid", "{context}");
        assert_eq!(decode_raw(letter), raw.to_vec(), "{context}");
        assert!(
            letter.get("event").is_none() && letter.get("message").is_none(),
            "{context}"
        );
        let attrs = &letter["attrs"];
        let stored_reason = attrs["reason"].as_str().expect("attrs.reason");
        assert!(
            stored_reason.starts_with(reason),
            "reason {stored_reason:?} should start with {reason:?}"
        );
        assert_eq!(attrs["group"], "app/web", "{context}");
        assert_eq!(attrs["line"], *number, "{context}");
        assert_eq!(letter["time"], letter["observed_time"], "{context}");
    }
}

/// A JSON array body: object elements are events (exact element bytes), other elements are
/// dead-lettered with their index.
#[test]
fn json_array_body_stores_objects_and_dead_letters_the_rest() {
    let store = Store::new();
    let admin = store.init();
    let mut server = store.serve(&[]);
    let body = b"\xEF\xBB\xBF [ {\"id\":\"a1\",\"ts\":1688989500} ,\n{\"id\":\"a2\"},7,\"str\",\r\n  {\"id\":\"a3\",\"nested\":{\"x\":[1, 2]}}\n]\n";
    let reply = server.ingest_ok(&admin, "app/array", body);
    assert_eq!(
        reply,
        json!({"accepted": 3, "rejected": 2, "first_seq": 0, "last_seq": 2})
    );
    server.stop_ok();

    let events = store.cat("app/array");
    let ids: Vec<&Value> = events.iter().map(|event| &event["event"]["id"]).collect();
    assert_eq!(ids, [&json!("a1"), &json!("a2"), &json!("a3")]);
    assert_eq!(events[0]["time"], "2023-07-10T11:45:00.000000000Z");
    assert_eq!(events[1]["time"], events[1]["observed_time"]);
    let record = bundle_record(&proof(&store, "app/array", 2));
    assert_eq!(
        String::from_utf8_lossy(&record.raw),
        r#"{"id":"a3","nested":{"x":[1, 2]}}"#
    );

    let dead = store.cat("seclog/dead-letter");
    let raws: Vec<Vec<u8>> = dead.iter().map(decode_raw).collect();
    assert_eq!(raws, [b"7".to_vec(), b"\"str\"".to_vec()]);
    assert_eq!(
        dead[0]["attrs"]["reason"],
        "array element 3 is not a JSON object"
    );
    assert_eq!(dead[1]["attrs"]["line"], 4);
}

/// gzip and zstd bodies are decompressed before decoding (names matched case-insensitively);
/// a corrupt compressed body is refused with 400 and kept, compressed, as a dead letter.
#[test]
fn gzip_and_zstd_bodies_are_decoded() {
    let store = Store::new();
    let admin = store.init();
    let mut server = store.serve(&[]);
    let url = server.url(&format!("{INGEST}/app/compressed"));
    let batch = |prefix: &str| -> Vec<u8> {
        (0..100)
            .map(|n| {
                format!(
                    "{{\"id\":\"{prefix}-{n}\",\"pad\":\"{}\"}}\n",
                    "z".repeat(n)
                )
            })
            .collect::<String>()
            .into_bytes()
    };
    let cases = [
        ("gzip", gzip(&batch("gzip"))),
        ("zstd", zstd(&batch("zstd"))),
        ("x-gzip", gzip(&batch("x-gzip"))),
        (" ZSTD ", zstd(&batch("upper-zstd"))),
    ];
    for (index, (encoding, compressed)) in cases.iter().enumerate() {
        let reply = post(
            &url,
            Some(&admin),
            &[("Content-Encoding", encoding)],
            compressed,
        );
        assert_eq!(reply.status, 200, "{encoding}: {}", reply.text());
        let first = index as u64 * 100;
        assert_eq!(
            reply.json(),
            json!({"accepted": 100, "rejected": 0, "first_seq": first, "last_seq": first + 99}),
            "{encoding}"
        );
    }
    let mut corrupt = gzip(&batch("corrupt"));
    let middle = corrupt.len() / 2;
    corrupt.truncate(middle);
    corrupt.extend_from_slice(b"not deflate data at all");
    let reply = post(
        &url,
        Some(&admin),
        &[("Content-Encoding", "gzip")],
        &corrupt,
    );
    assert_error(&reply, 400, "malformed_body");
    server.stop_ok();

    let events = store.cat("app/compressed");
    assert_eq!(events.len(), 400);
    let expected_ids = ["gzip", "zstd", "x-gzip", "upper-zstd"]
        .iter()
        .flat_map(|prefix| (0..100).map(move |n| format!("{prefix}-{n}")));
    for (event, expected) in events.iter().zip(expected_ids) {
        assert_eq!(event["event"]["id"], expected.as_str(), "{event}");
    }
    let dead = store.cat("seclog/dead-letter");
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert_eq!(
        decode_raw(&dead[0]),
        corrupt,
        "the compressed body is kept as sent"
    );
    assert_eq!(dead[0]["attrs"]["group"], "app/compressed");
}

/// Peak resident memory of a process, from /proc (kB).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

/// Decompression bombs (200 MB of zeros, gzip and zstd) are refused with 413 once the
/// decompressed size passes --max-decompressed-bytes, without the server ever holding the
/// expanded body; exactly the limit is still accepted; the server keeps serving; nothing of
/// the bombs is stored.
#[test]
fn decompression_bombs_are_413_and_the_server_survives() {
    const LIMIT: usize = 1 << 20;
    let store = Store::new();
    let admin = store.init();
    let limit_arg = LIMIT.to_string();
    let mut server = store.serve(&["--max-decompressed-bytes", &limit_arg]);
    let url = server.url(&format!("{INGEST}/app/bomb"));

    let zeros = vec![0u8; 1 << 20];
    let mut gzip_bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut zstd_bomb = zstd::stream::Encoder::new(Vec::new(), 3).expect("zstd encoder");
    for _ in 0..200 {
        gzip_bomb.write_all(&zeros).expect("gzip");
        zstd_bomb.write_all(&zeros).expect("zstd");
    }
    let gzip_bomb = gzip_bomb.finish().expect("gzip");
    let zstd_bomb = zstd_bomb.finish().expect("zstd");
    assert!(
        gzip_bomb.len() < 1 << 20,
        "the bomb must pass the body limit"
    );

    for (encoding, bomb) in [("gzip", &gzip_bomb), ("zstd", &zstd_bomb)] {
        let reply = post(&url, Some(&admin), &[("Content-Encoding", encoding)], bomb);
        assert_error(&reply, 413, "payload_too_large");
        assert!(server.is_running(), "the server died on a {encoding} bomb");
    }
    // One byte over the limit is refused, exactly the limit is accepted (1024 text lines).
    let line = format!("{}\n", "x".repeat(1023));
    let exact = line.repeat(LIMIT / line.len());
    assert_eq!(exact.len(), LIMIT);
    let over = format!("{exact}y");
    let reply = post(
        &url,
        Some(&admin),
        &[("Content-Encoding", "gzip")],
        &gzip(over.as_bytes()),
    );
    assert_error(&reply, 413, "payload_too_large");
    let reply = post(
        &url,
        Some(&admin),
        &[("Content-Encoding", "gzip")],
        &gzip(exact.as_bytes()),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["accepted"], 1024);

    let health = get(&server.url("/healthz"), None);
    assert_eq!(health.status, 200);
    let after = server.ingest_ok(&admin, "app/bomb", b"{\"id\":\"after-the-bombs\"}\n");
    assert_eq!(after["first_seq"], 1024);
    let peak_kb = peak_rss_kb(server.pid());
    assert!(
        peak_kb < 100 * 1024,
        "peak RSS {peak_kb} kB: a bomb was expanded in memory"
    );
    server.stop_ok();

    assert_eq!(
        store.groups(),
        [("app/bomb".to_string(), 1025)].into(),
        "bombs must not be stored, not even as dead letters"
    );
}

/// Bodies over --max-body-bytes are refused with 413 (compressed or not); a body of exactly
/// the limit is accepted.
#[test]
fn bodies_over_the_limit_are_413() {
    const LIMIT: usize = 64 * 1024;
    let store = Store::new();
    let admin = store.init();
    let limit_arg = LIMIT.to_string();
    let mut server = store.serve(&["--max-body-bytes", &limit_arg]);
    let url = server.url(&format!("{INGEST}/app/limit"));

    let line = format!("{}\n", "b".repeat(1023));
    let exact = line.repeat(LIMIT / line.len());
    assert_eq!(exact.len(), LIMIT);
    let reply = post(&url, Some(&admin), &[], exact.as_bytes());
    assert_eq!(reply.status, 200, "exactly the limit: {}", reply.text());
    assert_eq!(reply.json()["accepted"], 64);

    let over = format!("{exact}c");
    let reply = post(&url, Some(&admin), &[], over.as_bytes());
    assert_error(&reply, 413, "payload_too_large");

    let random: Vec<u8> = (0..LIMIT * 2).map(|_| fastrand::u8(b'a'..=b'z')).collect();
    let compressed = gzip(&random);
    assert!(compressed.len() > LIMIT);
    let reply = post(
        &url,
        Some(&admin),
        &[("Content-Encoding", "gzip")],
        &compressed,
    );
    assert_error(&reply, 413, "payload_too_large");

    assert!(server.is_running());
    server.stop_ok();
    assert_eq!(store.groups(), [("app/limit".to_string(), 64)].into());
}

/// A body that starts with `[` but is not valid JSON is refused as a whole with 400; the whole
/// body is kept in the dead-letter group; nothing reaches the target group.
#[test]
fn malformed_array_is_400_and_dead_lettered() {
    let store = Store::new();
    let admin = store.init();
    let mut server = store.serve(&[]);
    let body = b"[{\"id\":\"m1\"},\n{\"id\":\"m2\",";
    let reply = server.ingest(&admin, "app/array", body);
    assert_error(&reply, 400, "malformed_body");
    server.stop_ok();

    assert_eq!(
        store.groups(),
        [("seclog/dead-letter".to_string(), 1)].into()
    );
    let dead = store.cat("seclog/dead-letter");
    assert_eq!(decode_raw(&dead[0]), body.to_vec());
    let attrs = &dead[0]["attrs"];
    assert_eq!(attrs["group"], "app/array");
    assert_eq!(attrs["line"], Value::Null);
    let reason = attrs["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("body starts with '[' but is not a valid JSON array"),
        "{reason}"
    );
}

/// Unknown or stacked Content-Encodings are 415; empty bodies are 400; neither stores anything.
#[test]
fn unknown_encoding_is_415_and_empty_body_is_400() {
    let store = Store::new();
    let admin = store.init();
    let mut server = store.serve(&[]);
    let url = server.url(&format!("{INGEST}/app/enc"));
    let body = gzip(b"{\"id\":\"x\"}\n");
    for encoding in ["br", "deflate", "gzip, zstd", "compress"] {
        let reply = post(&url, Some(&admin), &[("Content-Encoding", encoding)], &body);
        assert_error(&reply, 415, "unsupported_encoding");
    }
    for empty in [&b""[..], b"\n\r\n  \t\n", b"\xEF\xBB\xBF\n"] {
        let reply = post(&url, Some(&admin), &[], empty);
        assert_error(&reply, 400, "empty_body");
    }
    server.stop_ok();
    assert_eq!(store.groups(), Default::default());
}

/// Group names in the path may use `/` or `%2F` (either case) for the same group; names that
/// are invalid once decoded are 400, and an encoded `seclog/` prefix is still internal (403).
#[test]
fn group_names_may_be_percent_encoded() {
    let store = Store::new();
    let admin = store.init();
    let mut server = store.serve(&[]);
    let event = b"{\"id\":\"g\"}\n";
    let first = server.ingest_ok(&admin, "aws%2Fcloudtrail", event);
    let second = server.ingest_ok(&admin, "aws/cloudtrail", event);
    let third = server.ingest_ok(&admin, "aws%2fcloudtrail", event);
    let seqs: Vec<&Value> = [&first, &second, &third]
        .iter()
        .map(|reply| &reply["first_seq"])
        .collect();
    assert_eq!(seqs, [&json!(0), &json!(1), &json!(2)]);
    server.ingest_ok(&admin, "AWS%2FCloudTrail", event);

    for invalid in [
        "a%2F..%2Fb",
        "%2e%2e%2Fetc",
        "%2Fleading",
        "trailing%2F",
        "bad%20name",
        "caf%C3%A9",
        "%E9",
        "%ZZ",
        "a%2",
    ] {
        let reply = server.ingest(&admin, invalid, event);
        assert_error(&reply, 400, "invalid_group");
    }
    let reply = server.ingest(&admin, "seclog%2fdead-letter", event);
    assert_error(&reply, 403, "forbidden");
    server.stop_ok();

    assert_eq!(
        store.groups(),
        [
            ("AWS/CloudTrail".to_string(), 1),
            ("aws/cloudtrail".to_string(), 3),
            // The refused write to seclog/dead-letter.
            ("seclog/access".to_string(), 1),
        ]
        .into()
    );
    let mut dirs: Vec<String> = std::fs::read_dir(store.data().join("journal/groups"))
        .expect("groups directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        ["AWS%2FCloudTrail", "aws%2Fcloudtrail", "seclog%2Faccess"]
    );
}

/// Sequence numbers are contiguous across requests, unaffected by other groups and by a
/// restart, and match what `cat` shows.
#[test]
fn sequence_numbers_continue_across_requests_and_restarts() {
    let store = Store::new();
    let admin = store.init();
    let mut server = store.serve(&[]);
    let mut next = 0u64;
    let mut ids = Vec::new();
    let mut send = |server: &common::Server, size: usize, round: usize| {
        let body: String = (0..size)
            .map(|n| {
                let id = format!("r{round}-{n}");
                ids.push(id.clone());
                format!("{{\"id\":\"{id}\"}}\n")
            })
            .collect();
        let reply = server.ingest_ok(&admin, "app/seq", body.as_bytes());
        assert_eq!(
            reply,
            json!({"accepted": size, "rejected": 0, "first_seq": next, "last_seq": next + size as u64 - 1}),
            "request {round}"
        );
        next += size as u64;
        // Another group's writes in between must not disturb this group's numbering.
        let other = server.ingest_ok(&admin, "app/other", b"{\"id\":\"other\"}\n");
        assert_eq!(other["first_seq"], round);
    };
    for (round, size) in [3, 1, 4, 1, 5].into_iter().enumerate() {
        send(&server, size, round);
    }
    server.stop_ok();
    let mut server = store.serve(&[]);
    send(&server, 9, 5);
    server.stop_ok();

    let events = store.cat("app/seq");
    let stored: Vec<(u64, String)> = events
        .iter()
        .map(|event| {
            (
                event["seq"].as_u64().expect("seq"),
                event["event"]["id"].as_str().expect("id").to_string(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = ids
        .into_iter()
        .enumerate()
        .map(|(seq, id)| (seq as u64, id))
        .collect();
    assert_eq!(stored, expected);
}

/// `GET /api/v1/status` reports the commit settings given on the command line and counts
/// committed records.
#[test]
fn status_reports_settings_and_counts() {
    let store = Store::new();
    let admin = store.init();
    let ingest = store.create_token("ingest", "app/*");
    let server = store.serve(&[
        "--commit-interval-ms",
        "7",
        "--seal-delay-ms",
        "300",
        "--heartbeat-secs",
        "5",
    ]);
    let status = get(&server.url("/api/v1/status"), Some(&ingest));
    assert_eq!(status.status, 200, "{}", status.text());
    let status = status.json();
    assert_eq!(status["commit_interval_ms"], 7.0, "{status}");
    assert_eq!(status["seal_delay_ms"], 300.0, "{status}");
    assert_eq!(status["heartbeat_secs"], 5.0, "{status}");
    assert_eq!(status["stats"]["records"], 0, "{status}");

    server.ingest_ok(&ingest, "app/x", b"a\nb\n{\"c\":1}\n{broken\n");
    let status = get(&server.url("/api/v1/status"), Some(&admin)).json();
    // Three events plus one dead letter.
    assert_eq!(status["stats"]["records"], 4, "{status}");
    assert!(status["stats"]["commits"].as_u64() >= Some(1), "{status}");
}
