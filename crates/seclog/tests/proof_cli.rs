//! The auditor's commands, end to end: `proof` bundles verify offline with only the public key
//! (the store may be gone) and any change to them is caught; `verify` finds a changed byte in a
//! segment and names the file and records; a checkpoint pinned outside the host
//! (`--since-checkpoint`) catches deleted history; `groups` counts what was stored.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Store, describe, proof, run, run_in, seclog};
use serde_json::Value;

/// Ingests `count` JSON events `{"id":"<prefix>-<n>"}` into `group`, one request per four
/// events so that the group has several blocks.
fn ingest_events(server: &common::Server, token: &str, group: &str, prefix: &str, count: usize) {
    let lines: Vec<String> = (0..count)
        .map(|n| format!("{{\"id\":\"{prefix}-{n}\",\"ts\":{}}}\n", 1_700_000_000 + n))
        .collect();
    for chunk in lines.chunks(4) {
        server.ingest_ok(token, group, chunk.concat().as_bytes());
    }
}

/// The findings of a failed `verify`: standard output holds them alone, one per line.
fn findings(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Asserts `verify` exit 1 with a summary on stderr counting the findings; returns the findings.
fn assert_verify_fails(output: &Output) -> Vec<String> {
    assert_eq!(output.status.code(), Some(1), "{}", describe(output));
    let found = findings(output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = format!("FAILED: {} findings", found.len());
    assert!(
        stderr.lines().any(|line| line == summary),
        "{}",
        describe(output)
    );
    assert!(!found.is_empty());
    println!("verify findings:\n{}", found.join("\n"));
    found
}

fn assert_verify_passes(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "{}", describe(output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|line| line.starts_with("OK: ")),
        "{stdout}"
    );
}

/// `seclog verify-proof --key KEY BUNDLE` run from `cwd`.
fn verify_proof(cwd: &Path, key: &Path, bundle: &Path) -> Output {
    run_in(
        cwd,
        [
            "verify-proof".as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            bundle.as_os_str(),
        ],
    )
}

/// Replaces one character of `text` at `index` by a different one from the same alphabet.
fn change_char(text: &str, index: usize, alphabet: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let old = chars[index];
    chars[index] = alphabet
        .chars()
        .find(|candidate| *candidate != old)
        .expect("another character");
    chars.into_iter().collect()
}

/// Proof bundles verify offline, from another directory, after the store is deleted; each kind
/// of change to a bundle (event, record bytes, inclusion path, checkpoint signature and body,
/// seq), a wrong key and a non-bundle are rejected with exit 1. `groups` counts match.
#[test]
fn proof_bundles_verify_offline_and_reject_tampering() {
    let store = Store::new();
    let token = store.init();
    let other = Store::new();
    other.init();
    let mut server = store.serve(&[]);
    ingest_events(&server, &token, "app/proof", "p", 10);
    ingest_events(&server, &token, "app/other", "o", 3);
    server.stop_ok();

    assert_eq!(
        store.groups(),
        [("app/other".to_string(), 3), ("app/proof".to_string(), 10)].into()
    );

    let kept = tempfile::tempdir().expect("temporary directory");
    let key = kept.path().join("verification.key");
    std::fs::copy(store.data().join("verification.key"), &key).expect("copy the key");
    let other_key = kept.path().join("other.key");
    std::fs::copy(other.data().join("verification.key"), &other_key).expect("copy the key");
    let mut bundles = Vec::new();
    for seq in [0u64, 4, 9] {
        let bundle = proof(&store, "app/proof", seq);
        assert_eq!(bundle["group"], "app/proof");
        assert_eq!(bundle["seq"], seq);
        assert_eq!(bundle["event"]["event"]["id"], format!("p-{seq}"));
        assert_eq!(bundle["event"]["seq"], seq);
        let path = kept.path().join(format!("p-{seq}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&bundle).expect("JSON"))
            .expect("write bundle");
        bundles.push((seq, bundle, path));
    }
    // A record past the newest checkpoint has no proof.
    let data = store.data_arg();
    let beyond = run([
        "proof",
        "--data",
        &data,
        "--group",
        "app/proof",
        "--seq",
        "10",
    ]);
    assert_ne!(beyond.status.code(), Some(0), "{}", describe(&beyond));

    std::fs::remove_dir_all(store.data()).expect("delete the store");
    let elsewhere = tempfile::tempdir().expect("temporary directory");
    for (seq, _, path) in &bundles {
        let output = verify_proof(elsewhere.path(), &key, path);
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("group app/proof record {seq} ")),
            "{stdout}"
        );
    }
    // The bundle may come on standard input.
    let (_, _, first_path) = &bundles[0];
    let mut child = seclog()
        .current_dir(elsewhere.path())
        .args(["verify-proof", "--key"])
        .arg(&key)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("seclog runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&std::fs::read(first_path).expect("bundle"))
        .expect("write stdin");
    let output = child.wait_with_output().expect("seclog finishes");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let (_, original, _) = &bundles[1];
    let hex = "0123456789abcdef";
    let base64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut tampered: Vec<(&str, Value)> = Vec::new();

    let mut event = original.clone();
    event["event"]["event"]["id"] = "p-5".into();
    tampered.push(("readable event changed", event));

    // Record bytes and readable event changed consistently: only the commitment can tell.
    let mut record = original.clone();
    let bytes = B64
        .decode(original["record"].as_str().expect("record"))
        .expect("base64 record");
    let text = String::from_utf8_lossy(&bytes).replace("\"p-4\"", "\"p-5\"");
    assert_ne!(text.as_bytes(), bytes.as_slice(), "the record holds the id");
    record["record"] = B64.encode(text.as_bytes()).into();
    record["event"]["event"]["id"] = "p-5".into();
    tampered.push(("record bytes and event changed together", record));

    let mut inclusion = original.clone();
    let node = original["inclusion"][0]
        .as_str()
        .expect("an inclusion path");
    inclusion["inclusion"][0] = change_char(node, 10, hex).into();
    tampered.push(("inclusion path node changed", inclusion));

    let mut dropped = original.clone();
    dropped["inclusion"]
        .as_array_mut()
        .expect("inclusion array")
        .pop();
    tampered.push(("inclusion path shortened", dropped));

    let checkpoint = original["checkpoint"].as_str().expect("checkpoint text");
    let signature_at =
        checkpoint.find("— signature ").expect("signature line") + "— signature ".len();
    let char_index = checkpoint[..signature_at].chars().count() + 5;
    let mut signature = original.clone();
    signature["checkpoint"] = change_char(checkpoint, char_index, base64_alphabet).into();
    tampered.push(("checkpoint signature changed", signature));

    let root_line = checkpoint
        .lines()
        .find(|line| line.starts_with("group app/proof "))
        .expect("group line");
    let root_at = checkpoint.find(root_line).expect("line") + root_line.len() - 3;
    let mut root = original.clone();
    root["checkpoint"] = change_char(checkpoint, root_at, hex).into();
    tampered.push(("checkpoint root changed", root));

    let mut seq = original.clone();
    seq["seq"] = 5.into();
    seq["event"]["seq"] = 5.into();
    tampered.push(("seq changed", seq));

    for (what, bundle) in &tampered {
        assert_ne!(bundle, original, "{what}: nothing was changed");
        let path = kept.path().join("tampered.json");
        std::fs::write(&path, bundle.to_string()).expect("write");
        let output = verify_proof(elsewhere.path(), &key, &path);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{what}: {}",
            describe(&output)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.starts_with("INVALID: "), "{what}: {stdout}");
    }

    let (_, _, path) = &bundles[1];
    let output = verify_proof(elsewhere.path(), &other_key, path);
    assert_eq!(
        output.status.code(),
        Some(1),
        "another store's key: {}",
        describe(&output)
    );
    let garbage = kept.path().join("garbage.json");
    std::fs::write(&garbage, "{\"format\":\"something else\"}").expect("write");
    let output = verify_proof(elsewhere.path(), &key, &garbage);
    assert_eq!(
        output.status.code(),
        Some(1),
        "not a bundle: {}",
        describe(&output)
    );
    // The untouched bundle still verifies: the failures above came from the changes.
    let output = verify_proof(elsewhere.path(), &key, path);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
}

/// CRC-32 (IEEE), as the journal's frames use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Frames of a segment file as (offset, tag, payload range), after its header:
/// `header = magic[8] | version u16 | group_len u16 | group | first_seq u64 | created_at i64 |
/// prev_digest[32] | crc u32`, `frame = tag u8 | len u32 | payload | crc u32`.
fn segment_frames(bytes: &[u8]) -> Vec<(usize, u8, std::ops::Range<usize>)> {
    let group_len = usize::from(u16::from_le_bytes([bytes[10], bytes[11]]));
    let mut offset = 8 + 2 + 2 + group_len + 8 + 8 + 32 + 4;
    let mut frames = Vec::new();
    while offset < bytes.len() {
        let len = u32::from_le_bytes(bytes[offset + 1..offset + 5].try_into().expect("4 bytes"));
        let payload = offset + 5..offset + 5 + len as usize;
        let stored = u32::from_le_bytes(
            bytes[payload.end..payload.end + 4]
                .try_into()
                .expect("4 bytes"),
        );
        assert_eq!(
            crc32(&bytes[offset..payload.end]),
            stored,
            "frame CRC at {offset}: the test's idea of the format is wrong"
        );
        frames.push((offset, bytes[offset], payload.clone()));
        offset = payload.end + 4;
    }
    frames
}

/// `verify` catches a flipped byte in a segment, as a torn/damaged frame and, when the
/// attacker also fixes the frame CRC, through the signed Merkle roots; each finding names the
/// group, the segment file and a record range. Restoring the byte makes the store pass again.
#[test]
fn verify_names_the_segment_with_a_changed_byte() {
    let store = Store::new();
    let token = store.init();
    let mut server = store.serve(&[]);
    ingest_events(&server, &token, "app/tamper", "t", 20);
    ingest_events(&server, &token, "app/clean", "c", 4);
    server.stop_ok();
    assert_verify_passes(&store.verify(&[]));

    let segment_name = "journal/groups/app%2Ftamper/00000000000000000000.seg";
    let segment = store.data().join(segment_name);
    let original = std::fs::read(&segment).expect("segment");
    let blocks: Vec<_> = segment_frames(&original)
        .into_iter()
        .filter(|(_, tag, _)| *tag == 0xB1)
        .collect();
    assert!(blocks.len() >= 5, "one block per request: {blocks:?}");
    let (frame_at, _, payload) = blocks[2].clone();

    // A plain flip inside the third block's ciphertext.
    let mut flipped = original.clone();
    flipped[payload.end - 20] ^= 0x01;
    std::fs::write(&segment, &flipped).expect("write");
    let found = assert_verify_fails(&store.verify(&[]));
    let prefix = format!("group app/tamper: {segment_name}: record");
    assert!(
        found.iter().any(|line| line.starts_with(&prefix)),
        "expected a finding starting {prefix:?}: {found:#?}"
    );
    assert!(
        found.iter().all(|line| !line.contains("app/clean")),
        "the other group is intact: {found:#?}"
    );

    // The same flip with the frame CRC recomputed: only the signed tree can tell.
    let crc = crc32(&flipped[frame_at..payload.end]);
    flipped[payload.end..payload.end + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&segment, &flipped).expect("write");
    let found = assert_verify_fails(&store.verify(&[]));
    assert!(
        found
            .iter()
            .any(|line| line.starts_with(&prefix) && line.contains("altered")),
        "expected a finding starting {prefix:?} saying the records were altered: {found:#?}"
    );

    std::fs::write(&segment, &original).expect("restore");
    assert_verify_passes(&store.verify(&[]));
}

/// A checkpoint kept outside the host pins history: `verify --since-checkpoint` passes on the
/// intact store and fails once a group's directory is deleted; a pin that was altered or comes
/// from another store fails too, and an unreadable pin is a usage error (exit 2).
#[test]
fn pinned_checkpoint_catches_deleted_groups() {
    let store = Store::new();
    let token = store.init();
    let other = Store::new();
    let other_token = other.init();
    let mut server = store.serve(&[]);
    ingest_events(&server, &token, "app/keep", "k", 4);
    ingest_events(&server, &token, "app/gone", "g", 8);
    server.stop_ok();

    let pin_text = store.checkpoint().expect("a checkpoint after the stop");
    assert!(
        pin_text.starts_with("seclog checkpoint v1\nseq "),
        "{pin_text}"
    );
    assert_eq!(
        common::checkpoint_seq_and_size(&pin_text, "app/gone").1,
        Some(8)
    );
    assert_eq!(
        common::checkpoint_seq_and_size(&pin_text, "app/keep").1,
        Some(4)
    );
    let outside = tempfile::tempdir().expect("temporary directory");
    let pin = outside.path().join("pin.txt");
    std::fs::write(&pin, &pin_text).expect("write pin");
    let pin_arg = pin.to_str().expect("UTF-8 path");
    assert_verify_passes(&store.verify(&["--since-checkpoint", pin_arg]));

    let mut other_server = other.serve(&[]);
    other_server.ingest_ok(&other_token, "app/keep", b"x\n");
    other_server.stop_ok();

    let root_line = pin_text
        .lines()
        .find(|line| line.starts_with("group app/keep "))
        .expect("group line");
    let altered_line = change_char(root_line, root_line.len() - 1, "0123456789abcdef");
    let altered = outside.path().join("altered.txt");
    std::fs::write(&altered, pin_text.replace(root_line, &altered_line)).expect("write");
    let found = assert_verify_fails(
        &store.verify(&["--since-checkpoint", altered.to_str().expect("UTF-8")]),
    );
    assert!(
        found.iter().any(|line| line.contains("pinned")),
        "{found:#?}"
    );

    let foreign = outside.path().join("foreign.txt");
    std::fs::write(&foreign, other.checkpoint().expect("other checkpoint")).expect("write");
    assert_verify_fails(&store.verify(&["--since-checkpoint", foreign.to_str().expect("UTF-8")]));

    let broken = outside.path().join("broken.txt");
    std::fs::write(&broken, "not a checkpoint").expect("write");
    let output = store.verify(&["--since-checkpoint", broken.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));

    std::fs::remove_dir_all(store.data().join("journal/groups/app%2Fgone")).expect("delete group");
    let found = assert_verify_fails(&store.verify(&["--since-checkpoint", pin_arg]));
    assert!(
        found
            .iter()
            .any(|line| line.starts_with("group app/gone: ") && line.contains("records 0..7")),
        "{found:#?}"
    );
    assert!(
        found.iter().all(|line| !line.contains("app/keep")),
        "{found:#?}"
    );
}

/// Usage errors exit 2, distinct from findings (exit 1).
#[test]
fn verify_usage_errors_exit_2() {
    let missing = tempfile::tempdir().expect("temporary directory");
    let nowhere = missing.path().join("nowhere");
    let nowhere = nowhere.to_str().expect("UTF-8");
    for args in [
        vec!["verify"],
        vec!["verify", "--data", nowhere],
        vec!["verify", "--data", nowhere, "--bogus-flag"],
    ] {
        let output = run(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
    }
}
