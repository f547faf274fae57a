//! Single-event proof bundles: checkable offline with the verification key alone, and any
//! change to a bundle, or another store's key, makes the check fail.

mod common;

use std::fs;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{STEPS, Store, app_x, app_y, at, dead_letter, default_epochs};
use seclog_journal::proof::{ProofBundle, event_view, make_proof, verify_proof};
use seclog_journal::{Record, VerificationKey};
use seclog_model::GroupName;
use serde_json::{Value, json};

fn bundle_json(store: &Store, group: &GroupName, seq: u64) -> String {
    let bundle = make_proof(&store.layout, store.master.clone(), group, seq).expect("make proof");
    serde_json::to_string_pretty(&bundle).expect("serialize bundle")
}

/// Bundles for events of every group (first, middle and last records) are written next to a
/// copy of the verification key; the data directory is then deleted, and each bundle still
/// verifies and shows exactly the event that was appended, under the newest checkpoint.
#[test]
fn proofs_verify_offline_after_the_store_is_gone() {
    let store = Store::build();
    let picks = [
        (app_x(), 0),
        (app_x(), 137),
        (app_x(), 599),
        (app_y(), 77),
        (dead_letter(), 119),
    ];
    let offline = tempfile::tempdir().expect("temp dir");
    let key_copy = offline.path().join("verification.key");
    fs::copy(store.layout.verification_key(), &key_copy).expect("copy key");
    let mut expected = Vec::new();
    for (index, (group, seq)) in picks.iter().enumerate() {
        let path = offline.path().join(format!("proof-{index}.json"));
        fs::write(&path, bundle_json(&store, group, *seq)).expect("write bundle");
        let record = Record::decode(&store.appended[group][*seq as usize]).expect("decode");
        expected.push((path, group.clone(), *seq, record, store.size(group)));
    }
    let root = store.dir.path().to_path_buf();
    drop(store);
    assert!(
        !root.try_exists().expect("stat"),
        "the data directory is gone"
    );

    let key = VerificationKey::load(&key_copy).expect("load key");
    for (path, group, seq, record, size) in expected {
        let text = fs::read_to_string(&path).expect("read bundle");
        let summary =
            verify_proof(&text, &key).unwrap_or_else(|error| panic!("{group} {seq}: {error}"));
        assert_eq!((summary.group.as_str(), summary.seq), (group.as_str(), seq));
        assert_eq!(summary.event, event_view(&group, seq, &record));
        assert_eq!(summary.checkpoint.body.groups[&group].size, size);
        let bundle: ProofBundle = serde_json::from_str(&text).expect("parse bundle");
        assert_eq!(B64.decode(&bundle.record).expect("base64"), record.encode());
        if group == app_x() {
            assert_eq!(
                summary.event["event"],
                json!({"n": seq, "user": format!("u{}", seq % 7)})
            );
        }
    }
}

/// Changes one character of a hex string.
fn bump_hex(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars[0] = if chars[0] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

/// Applies `edit` to the line of the checkpoint text that starts with `prefix`.
fn edit_checkpoint_line(bundle: &mut Value, prefix: &str, edit: impl Fn(&str) -> String) {
    let text = bundle["checkpoint"]
        .as_str()
        .expect("checkpoint text")
        .to_string();
    let mut found = false;
    let edited: Vec<String> = text
        .split('\n')
        .map(|line| match line.strip_prefix(prefix) {
            Some(rest) if !found => {
                found = true;
                format!("{prefix}{}", edit(rest))
            }
            _ => line.to_string(),
        })
        .collect();
    assert!(found, "no line starting {prefix:?} in\n{text}");
    bundle["checkpoint"] = json!(edited.join("\n"));
}

type Edit = Box<dyn Fn(&mut Value)>;

/// Every field of a bundle matters: the readable event, the record bytes (with or without a
/// matching event), the salt, the block body digest, position and size, each path node, the
/// tree size, the sequence number, the group, and every part of the signed checkpoint text
/// (root, size, sequence, time, epoch key, signature). A bundle checked with another store's
/// verification key fails too.
#[test]
fn altered_bundles_and_foreign_keys_are_rejected() {
    let store = Store::build();
    let seq = 137;
    let json = bundle_json(&store, &app_x(), seq);
    verify_proof(&json, &store.key).expect("the unaltered bundle verifies");
    let original: Value = serde_json::from_str(&json).expect("parse bundle");
    let size = original["tree_size"].as_u64().expect("tree size");

    let with_record = |edit: fn(&mut Record), fix_event: bool| -> Edit {
        Box::new(move |bundle: &mut Value| {
            let bytes = B64
                .decode(bundle["record"].as_str().expect("record"))
                .expect("base64");
            let mut record = Record::decode(&bytes).expect("decode");
            edit(&mut record);
            bundle["record"] = json!(B64.encode(record.encode()));
            if fix_event {
                bundle["event"] = event_view(&app_x(), seq, &record);
            }
        })
    };
    let edits: Vec<(&str, Edit)> = vec![
        (
            "event content",
            Box::new(|b| b["event"]["event"]["user"] = json!("mallory")),
        ),
        (
            "event time",
            Box::new(|b| b["event"]["time"] = json!("2020-01-01T00:00:00.000000000Z")),
        ),
        ("record raw byte", with_record(|r| r.raw[3] ^= 1, false)),
        (
            "record raw byte, event kept consistent",
            with_record(|r| r.raw.push(b' '), true),
        ),
        (
            "record source, event kept consistent",
            with_record(|r| r.source.push('x'), true),
        ),
        (
            "record time, event kept consistent",
            with_record(|r| r.time = at(9), true),
        ),
        (
            "salt",
            Box::new(|b| b["salt"] = json!(bump_hex(b["salt"].as_str().expect("salt")))),
        ),
        (
            "block body digest",
            Box::new(|b| {
                b["block_body"] = json!(bump_hex(b["block_body"].as_str().expect("body")))
            }),
        ),
        (
            "block index",
            Box::new(|b| b["block_index"] = json!(b["block_index"].as_u64().expect("index") + 1)),
        ),
        (
            "block count",
            Box::new(|b| b["block_count"] = json!(b["block_count"].as_u64().expect("count") + 1)),
        ),
        (
            "commitment path node",
            Box::new(|b| {
                let node = b["commitment_path"][0].as_str().expect("node").to_string();
                b["commitment_path"][0] = json!(bump_hex(&node));
            }),
        ),
        (
            "commitment path shortened",
            Box::new(|b| {
                b["commitment_path"].as_array_mut().expect("path").pop();
            }),
        ),
        (
            "inclusion node",
            Box::new(|b| {
                let node = b["inclusion"][2].as_str().expect("node").to_string();
                b["inclusion"][2] = json!(bump_hex(&node));
            }),
        ),
        (
            "inclusion path shortened",
            Box::new(|b| {
                b["inclusion"].as_array_mut().expect("path").pop();
            }),
        ),
        (
            "tree size",
            Box::new(move |b| b["tree_size"] = json!(size - 1)),
        ),
        (
            "seq, event kept consistent",
            Box::new(move |b| {
                b["seq"] = json!(seq + 1);
                b["event"]["seq"] = json!(seq + 1);
            }),
        ),
        (
            "group, event kept consistent",
            Box::new(|b| {
                b["group"] = json!("app/y");
                b["event"]["group"] = json!("app/y");
            }),
        ),
        (
            "format",
            Box::new(|b| b["format"] = json!("seclog-proof-v2")),
        ),
        ("unknown field", Box::new(|b| b["note"] = json!("trust me"))),
        (
            "checkpoint root",
            Box::new(|b| {
                edit_checkpoint_line(b, "group app/x ", |rest| {
                    let (count, root) = rest.split_once(' ').expect("size and root");
                    format!("{count} {}", bump_hex(root))
                })
            }),
        ),
        (
            "checkpoint size, tree_size kept consistent",
            Box::new(move |b| {
                edit_checkpoint_line(b, "group app/x ", |rest| {
                    let (_, root) = rest.split_once(' ').expect("size and root");
                    format!("{} {root}", size + 1)
                });
                b["tree_size"] = json!(size + 1);
            }),
        ),
        (
            "checkpoint seq",
            Box::new(|b| {
                edit_checkpoint_line(b, "seq ", |rest| {
                    format!("{}", rest.parse::<u64>().expect("seq") + 1)
                })
            }),
        ),
        (
            "checkpoint time",
            Box::new(|b| {
                edit_checkpoint_line(b, "time ", |rest| {
                    // One second earlier or later: the units digit of the seconds.
                    let units = rest.find('.').expect("fraction") - 1;
                    let digit = if &rest[units..=units] == "0" {
                        "1"
                    } else {
                        "0"
                    };
                    format!("{}{digit}{}", &rest[..units], &rest[units + 1..])
                })
            }),
        ),
        (
            "checkpoint epoch",
            Box::new(|b| {
                edit_checkpoint_line(b, "epoch ", |rest| {
                    format!("{}", rest.parse::<u32>().expect("epoch") + 1)
                })
            }),
        ),
        (
            "checkpoint signature",
            Box::new(|b| {
                edit_checkpoint_line(b, "— signature ", |rest| {
                    let replacement = if rest.starts_with('A') { "B" } else { "A" };
                    format!("{replacement}{}", &rest[1..])
                })
            }),
        ),
        (
            "checkpoint epoch key",
            Box::new(|b| {
                edit_checkpoint_line(b, "— epoch-key ", |rest| {
                    let replacement = if rest[8..].starts_with('A') { "B" } else { "A" };
                    format!("{}{replacement}{}", &rest[..8], &rest[9..])
                })
            }),
        ),
    ];
    for (name, edit) in edits {
        let mut bundle = original.clone();
        edit(&mut bundle);
        assert_ne!(bundle, original, "{name}: the edit changed nothing");
        let text = serde_json::to_string(&bundle).expect("serialize");
        let result = verify_proof(&text, &store.key);
        assert!(result.is_err(), "{name}: altered bundle verified");
    }

    let other = Store::init(default_epochs());
    let result = verify_proof(&json, &other.key);
    assert!(
        result.is_err(),
        "a bundle must not verify under another store's key"
    );
}

/// Proofs are refused for records that no checkpoint covers yet and for records that do not
/// exist.
#[test]
fn proofs_need_a_covering_checkpoint() {
    let mut store = Store::build();
    let (mut writer, _) = store.writer();
    store.append(&mut writer, &app_x(), 5, at(STEPS * 2 + 3));
    writer.commit().expect("commit");
    assert!(make_proof(&store.layout, store.master.clone(), &app_x(), 602).is_err());
    assert!(make_proof(&store.layout, store.master.clone(), &app_x(), 10_000).is_err());
    assert!(
        make_proof(
            &store.layout,
            store.master.clone(),
            &GroupName::parse("app/none").expect("name"),
            0
        )
        .is_err()
    );
    writer.seal(at(STEPS * 2 + 4)).expect("seal");
    let json = bundle_json(&store, &app_x(), 602);
    let summary = verify_proof(&json, &store.key).expect("verifies once sealed");
    assert_eq!(summary.checkpoint.body.groups[&app_x()].size, 605);
}
