//! Attacks on the checkpoint log: rolling history back (only an outside pin can tell) and
//! rewriting old checkpoints with a key the intruder can still compute (a later epoch's).

mod common;

use std::fs;

use common::{LogFile, STEPS, Store, app_x, assert_finding, at, show, truncate_group};
use seclog_journal::{CheckpointBody, SignedCheckpoint, Signer, latest_checkpoint};

/// Rolls a copy of `base` back to checkpoint `target`: every group is cut to the size the
/// checkpoint covers, `edit_log` removes the newer checkpoints.
fn roll_back(base: &Store, target: &CheckpointBody, edit_log: impl FnOnce(&Store)) -> Store {
    let store = base.copy();
    edit_log(&store);
    for (group, head) in &target.groups {
        truncate_group(&store, group, head.size);
    }
    store
}

/// An intruder rolls the store back to an earlier, self-consistent state: the newest records
/// are cut off and the checkpoint log is cut back to match (the newest log file deleted, or
/// the newest checkpoint frame truncated away). Verify without a pin cannot see it (the
/// documented limit of any log checked only against itself); verify with the checkpoint
/// pinned before the attack reports the missing checkpoint and the missing records.
#[test]
fn rollback_below_a_pinned_checkpoint_is_caught_only_with_the_pin() {
    let base = Store::build();
    let pinned = latest_checkpoint(&base.layout)
        .expect("read checkpoints")
        .expect("a checkpoint");
    assert!(base.verify_pinned(&pinned).is_intact());
    let pinned_size = pinned.body.groups[&app_x()].size;

    // A: delete the newest checkpoint log; the one before it is sealed.
    let logs = base.checkpoint_logs();
    let previous = LogFile::parse(&fs::read(&logs[logs.len() - 2]).expect("read log"));
    assert!(previous.sealed);
    let target_a = CheckpointBody::parse(&previous.checkpoints.last().expect("a checkpoint").0)
        .expect("parse body");
    let newest = logs.last().expect("a log").clone();
    let store_a = roll_back(&base, &target_a, |store| {
        fs::remove_file(store.layout.root().join(base.rel(&newest))).expect("delete log");
    });

    // B: cut the newest log just before its last checkpoint frame.
    let newest_bytes = fs::read(&newest).expect("read log");
    let newest_log = LogFile::parse(&newest_bytes);
    assert!(
        newest_log.checkpoints.len() >= 2,
        "the newest log should hold two checkpoints"
    );
    let target_b =
        CheckpointBody::parse(&newest_log.checkpoints[newest_log.checkpoints.len() - 2].0)
            .expect("parse body");
    let cut = *LogFile::checkpoint_offsets(&newest_bytes)
        .last()
        .expect("a frame");
    let store_b = roll_back(&base, &target_b, |store| {
        let path = store.layout.root().join(base.rel(&newest));
        fs::write(path, &newest_bytes[..cut]).expect("truncate log");
    });

    for (name, store, target) in [("A", store_a, target_a), ("B", store_b, target_b)] {
        let kept = target.groups[&app_x()].size;
        assert!(
            kept < pinned_size,
            "{name}: the rollback must remove records"
        );
        let unpinned = store.verify();
        assert!(
            unpinned.is_intact(),
            "{name}: documented limit, a consistent rollback passes without a pin; findings:\n{}",
            show(&unpinned)
        );
        assert_eq!(
            unpinned.latest.as_ref().map(|body| body.seq),
            Some(target.seq)
        );

        let report = store.verify_pinned(&pinned);
        assert!(
            !report.is_intact(),
            "{name}: rollback undetected with the pin"
        );
        let missing_checkpoint = format!("pinned checkpoint #{} is missing", pinned.body.seq);
        assert_finding(&report, "missing pinned checkpoint", |finding| {
            finding.file == "journal/checkpoints" && finding.message.contains(&missing_checkpoint)
        });
        let group_dir = store.rel(&store.layout.group_dir(&app_x()));
        assert_finding(&report, "records below the pin", |finding| {
            finding.file == group_dir
                && finding.records == Some((kept, pinned_size))
                && finding.message.contains("(pinned checkpoint) covers")
        });
    }
}

/// Two copies of a store that went on differently (a fork) share checkpoint numbers but not
/// content: a checkpoint pinned from one is reported as a fork of the other, and a pin whose
/// signature does not hold is reported as invalid.
#[test]
fn pinned_checkpoint_from_a_forked_history_is_reported() {
    let base = Store::build();
    let fork = |count: u64| {
        let mut store = base.copy();
        let (mut writer, _) = store.writer();
        store.append(&mut writer, &app_x(), count, at(STEPS * 2 + 5));
        let signed = writer.seal(at(STEPS * 2 + 5)).expect("seal");
        (store, signed)
    };
    let (store_a, pin_a) = fork(3);
    let (store_b, pin_b) = fork(4);
    assert_eq!(pin_a.body.seq, pin_b.body.seq);
    assert!(store_a.verify_pinned(&pin_a).is_intact());
    assert!(store_b.verify().is_intact());
    let report = store_b.verify_pinned(&pin_a);
    let newest = store_b.rel(store_b.checkpoint_logs().last().expect("a log"));
    assert_finding(&report, "fork", |finding| {
        finding.file == newest
            && finding.message.contains(&format!(
                "checkpoint #{} differs from the pinned one",
                pin_a.body.seq
            ))
    });

    let mut broken_pin = pin_a;
    broken_pin.signature[0] ^= 1;
    let report = store_a.verify_pinned(&broken_pin);
    assert_finding(&report, "invalid pin", |finding| {
        finding.message.contains("is not valid")
    });
}

/// Parses body `index` of `log`.
fn body(log: &LogFile, index: usize) -> CheckpointBody {
    CheckpointBody::parse(&log.checkpoints[index].0).expect("parse body")
}

/// The intruder's edit of history: a different root for `app/x`.
fn rewrite_history(body: &mut CheckpointBody) {
    let head = body.groups.get_mut(&app_x()).expect("app/x head");
    head.root[0] ^= 1;
}

/// An intruder who takes the host after the store was closed can advance the signer to a
/// later epoch, but never back: the older seeds are erased. Old checkpoints re-signed with
/// the later key fail verify whether the body keeps its old epoch and time (1), claims the
/// new epoch (2), or claims the new epoch and a time in it (3); and also when the log file's
/// header and epoch key record are swapped for the later epoch's (2b, 3b: the signatures are
/// then valid, but a checkpoint dated out of its epoch fails, and re-dated ones break the
/// hash chain, the time order and the Merkle roots). Checksums and the log footer are always
/// recomputed, so only the cryptography and the chain can tell.
#[test]
fn checkpoints_re_signed_with_a_later_epoch_key_are_rejected() {
    let base = Store::build();
    let last_epoch = base.verify().latest.expect("a checkpoint").epoch;
    let attacked = base.copy();
    let mut signer = Signer::open(&attacked.layout, &attacked.master).expect("open signer");
    assert_eq!(signer.epoch(), last_epoch);
    let later = at(STEPS * 2 + 150);
    assert!(signer.advance_for(later).expect("advance"));
    let new_epoch = signer.epoch();
    assert!(new_epoch > last_epoch);
    assert!(
        !signer
            .advance_for(at(1))
            .expect("advance backwards is a no-op")
    );
    let reopened = Signer::open(&attacked.layout, &attacked.master).expect("reopen signer");
    assert_eq!(
        reopened.epoch(),
        new_epoch,
        "the older epochs' seeds are gone"
    );
    drop(reopened);

    let logs = base.checkpoint_logs();
    let target_path = &logs[1];
    let next_path = &logs[2];
    let original = LogFile::parse(&fs::read(target_path).expect("read log"));
    let old_epoch = original.epoch;
    assert!(original.checkpoints.len() >= 2 && original.sealed);
    let target_seq = body(&original, 0).seq;
    let next_first = LogFile::parse(&fs::read(next_path).expect("read log")).first_seq;
    let sign = |body: &CheckpointBody| (body.to_text(), signer.sign(body.to_text().as_bytes()));

    let mut cases: Vec<(&str, LogFile, String, String)> = Vec::new();
    // 1: old epoch and time kept, later key.
    let mut log = original.clone();
    let mut forged = body(&original, 0);
    rewrite_history(&mut forged);
    log.checkpoints[0] = sign(&forged);
    let message = format!(
        "checkpoint #{target_seq}: signature does not verify with the key of epoch {old_epoch}"
    );
    cases.push((
        "1: old epoch, old time",
        log,
        base.rel(target_path),
        message,
    ));
    // 2: new epoch claimed, old time.
    let mut log = original.clone();
    let mut forged = body(&original, 0);
    rewrite_history(&mut forged);
    forged.epoch = new_epoch;
    log.checkpoints[0] = sign(&forged);
    let message = format!("body says epoch {new_epoch} but is signed by epoch {old_epoch}'s key");
    cases.push((
        "2: new epoch, old time",
        log,
        base.rel(target_path),
        message,
    ));
    // 3: new epoch and a time in it.
    let mut log = original.clone();
    let mut forged = body(&original, 0);
    rewrite_history(&mut forged);
    forged.epoch = new_epoch;
    forged.time = later;
    log.checkpoints[0] = sign(&forged);
    let message = format!("body says epoch {new_epoch} but is signed by epoch {old_epoch}'s key");
    cases.push((
        "3: new epoch, new time",
        log,
        base.rel(target_path),
        message,
    ));
    // 2b and 3b: the whole file re-signed under the later epoch's key record.
    for redate in [false, true] {
        let mut log = original.clone();
        log.epoch = new_epoch;
        log.epoch_key = signer.epoch_proof().encode();
        let mut prev = body(&original, 0).prev;
        for index in 0..log.checkpoints.len() {
            let mut forged = body(&original, index);
            if index == 0 {
                rewrite_history(&mut forged);
            }
            forged.epoch = new_epoch;
            forged.prev = prev;
            if redate {
                forged.time = at(STEPS * 2 + 150 + index as i64);
            }
            let (text, signature) = sign(&forged);
            prev = Some(
                SignedCheckpoint {
                    body: forged,
                    epoch_key: signer.epoch_proof().clone(),
                    signature,
                }
                .digest(),
            );
            log.checkpoints[index] = (text, signature);
        }
        if redate {
            let message =
                format!("checkpoint #{next_first} does not chain to the previous checkpoint");
            cases.push((
                "3b: whole file re-signed and re-dated",
                log,
                base.rel(next_path),
                message,
            ));
        } else {
            let message = format!(
                "checkpoint #{target_seq}: signed with the key of epoch {new_epoch} but dated"
            );
            cases.push((
                "2b: whole file re-signed, old times",
                log,
                base.rel(target_path),
                message,
            ));
        }
    }

    for (name, log, file, message) in cases {
        let store = base.copy();
        fs::write(
            store.layout.root().join(base.rel(target_path)),
            log.encode(),
        )
        .expect("write log");
        let report = store.verify();
        assert!(!report.is_intact(), "{name}: forgery undetected");
        assert_finding(&report, name, |finding| {
            finding.file == file && finding.message.contains(&message)
        });
        if name.starts_with("3b") {
            let segment_files = store.rel(&store.layout.group_dir(&app_x()));
            assert_finding(&report, "3b: root mismatch", |finding| {
                finding.file.contains(&segment_files)
                    && finding
                        .message
                        .contains(&format!("do not match signed checkpoint #{target_seq}"))
            });
        }
    }
}

/// Whole checkpoint logs removed or moved: the oldest or a middle one deleted, two swapped,
/// or one renamed. Each breaks the numbering or the hash chain at a named file.
#[test]
fn removed_or_reordered_checkpoint_logs_are_reported() {
    let base = Store::build();
    let logs = base.checkpoint_logs();
    assert!(logs.len() >= 4);
    let first_of =
        |path: &std::path::PathBuf| LogFile::parse(&fs::read(path).expect("read log")).first_seq;

    let store = base.copy();
    fs::remove_file(store.layout.root().join(base.rel(&logs[0]))).expect("delete");
    assert_finding(&store.verify(), "oldest log deleted", |finding| {
        finding.file == base.rel(&logs[1])
            && finding.message.contains(&format!(
                "checkpoint #{} found where #0 was expected",
                first_of(&logs[1])
            ))
    });

    let store = base.copy();
    fs::remove_file(store.layout.root().join(base.rel(&logs[2]))).expect("delete");
    assert_finding(&store.verify(), "middle log deleted", |finding| {
        finding.file == base.rel(&logs[3]) && finding.message.contains("missing or reordered")
    });

    let store = base.copy();
    let (one, two) = (
        fs::read(&logs[1]).expect("read"),
        fs::read(&logs[2]).expect("read"),
    );
    fs::write(store.layout.root().join(base.rel(&logs[1])), &two).expect("write");
    fs::write(store.layout.root().join(base.rel(&logs[2])), &one).expect("write");
    assert_finding(&store.verify(), "logs swapped", |finding| {
        finding.file == base.rel(&logs[1]) && finding.message.contains("file name says checkpoint")
    });
}

/// Whoever holds a later epoch's key removes every checkpoint log and lets the writer start a
/// new chain over the same (or rewritten) data. The new #0 cannot be the empty genesis signed
/// in epoch 0, so `verify` reports the replaced history even without a pin.
#[test]
fn a_chain_restarted_with_a_later_key_is_not_the_genesis() {
    let mut store = Store::init(common::default_epochs());
    let (mut writer, _) = store.writer();
    store.append(&mut writer, &app_x(), 20, at(25));
    writer.seal(at(25)).expect("seal in epoch 2");
    drop(writer);
    assert!(store.verify().is_intact());
    for log in store.checkpoint_logs() {
        fs::remove_file(log).expect("remove checkpoint log");
    }
    let (mut writer, notes) = store.writer();
    assert!(
        !notes.iter().any(|note| note.contains("genesis")),
        "epoch 0 is gone: {notes:?}"
    );
    let restarted = writer.seal(at(35)).expect("a new chain in epoch 3");
    assert_eq!((restarted.body.seq, restarted.body.epoch), (0, 3));
    drop(writer);
    let report = store.verify();
    assert_finding(&report, "restarted chain", |finding| {
        finding.message.contains("not the genesis checkpoint")
    });
    assert!(!report.is_intact(), "{}", show(&report));
}
