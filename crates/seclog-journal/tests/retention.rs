//! Retention: whole expired segments are deleted behind signed tombstones; the store still
//! verifies, retained records still prove; deletions without a valid tombstone are reported.

mod common;

use std::fs;

use common::{START_UNIX, Store, app_x, app_y, assert_finding, at, numbered_files, show};
use seclog_journal::proof::{make_proof, verify_proof};
use seclog_journal::{EpochParams, JournalConfig, JournalReader, JournalWriter};
use seclog_model::Timestamp;

const DAY: i64 = 86_400;

/// Day-long signing epochs, so that a store can age for weeks.
fn daily_epochs() -> EpochParams {
    EpochParams {
        start_unix: START_UNIX,
        epoch_secs: DAY as u64,
        count: 400,
    }
}

fn day(number: i64) -> Timestamp {
    at(number * DAY)
}

/// Eight days of old records (one segment per day, since segments roll after 24 hours), then
/// one more day forty days in; every day sealed. `app/x` gets 10 records a day, `app/y` 5.
fn aged_store() -> Store {
    let mut store = Store::init(daily_epochs());
    let (mut writer, _) = store.writer();
    for number in (1..=8).chain([40]) {
        store.append(&mut writer, &app_x(), 10, day(number));
        store.append(&mut writer, &app_y(), 5, day(number));
        writer.seal(day(number)).expect("seal");
    }
    writer.close(day(40)).expect("close");
    assert_eq!(store.segments(&app_x()).len(), 9, "one segment per day");
    store
}

/// [`aged_store`] after a 30-day retention pass on `app/x` on day 41.
fn expired_store() -> Store {
    let store = aged_store();
    let (mut writer, _) = store.writer();
    let notes = writer
        .apply_retention(&app_x(), 30, day(41))
        .expect("retention");
    assert_eq!(notes.len(), 8, "{notes:?}");
    writer.close(day(41)).expect("close");
    store
}

fn tombstones(store: &Store) -> Vec<std::path::PathBuf> {
    numbered_files(&store.layout.group_dir(&app_x()), "tomb")
}

/// Retention deletes exactly the segments whose newest record is older than the policy (and
/// their data keys), writes one tombstone each, and leaves a store that verifies, with the
/// expiry in the report's notes. Retained records are still read and proved, including by a
/// proof made before the deletion; expired ones can no longer be proved. Writing goes on.
#[test]
fn retention_deletes_expired_segments_behind_tombstones() {
    let store = aged_store();
    let proof_before = serde_json::to_string(
        &make_proof(&store.layout, store.master.clone(), &app_x(), 85).expect("proof"),
    )
    .expect("json");
    let (mut writer, _) = store.writer();
    assert!(
        writer
            .apply_retention(&app_x(), 50, day(41))
            .expect("retention")
            .is_empty()
    );
    let notes = writer
        .apply_retention(&app_x(), 30, day(41))
        .expect("retention");
    assert_eq!(notes.len(), 8, "{notes:?}");
    assert!(
        notes
            .iter()
            .all(|note| note.contains("expired after 30 days")),
        "{notes:?}"
    );
    writer.close(day(41)).expect("close");

    assert_eq!(store.segments(&app_x()).len(), 1);
    assert_eq!(tombstones(&store).len(), 8);
    assert!(
        !store
            .layout
            .data_key(&app_x(), 0)
            .try_exists()
            .expect("stat"),
        "data key shredded"
    );
    assert_eq!(
        store.segments(&app_y()).len(),
        9,
        "other groups keep everything"
    );

    let report = store.verify();
    assert!(report.is_intact(), "{}", show(&report));
    assert!(
        report
            .notes
            .iter()
            .any(|note| note.contains("group app/x: records 0..9 expired by policy (30 days)")),
        "{:?}",
        report.notes
    );
    let summary = report
        .groups
        .iter()
        .find(|group| group.group == app_x())
        .expect("app/x");
    assert_eq!(
        (summary.retained_from, summary.size, summary.sealed),
        (80, 90, 90)
    );

    let reader = JournalReader::new(&store.layout, store.master.clone());
    let seqs: Vec<u64> = reader
        .read(&app_x(), 0, 100, None)
        .expect("read")
        .iter()
        .map(|event| event.seq)
        .collect();
    assert_eq!(seqs, (80..90).collect::<Vec<_>>());
    verify_proof(&proof_before, &store.key).expect("a proof made before the deletion");
    let proof_after = make_proof(&store.layout, store.master.clone(), &app_x(), 85).expect("proof");
    let json = serde_json::to_string(&proof_after).expect("json");
    verify_proof(&json, &store.key).expect("retained records still prove");
    assert!(
        make_proof(&store.layout, store.master.clone(), &app_x(), 5).is_err(),
        "expired"
    );

    let mut store = store;
    let (mut writer, notes) = store.writer();
    assert!(notes.is_empty(), "{notes:?}");
    store.append(&mut writer, &app_x(), 10, day(42));
    writer.close(day(42)).expect("close");
    let report = store.verify();
    assert!(report.is_intact(), "{}", show(&report));
    let proof = make_proof(&store.layout, store.master.clone(), &app_x(), 95).expect("proof");
    verify_proof(&serde_json::to_string(&proof).expect("json"), &store.key).expect("verifies");
}

/// Deleting records without a valid tombstone is reported: a segment simply removed, a
/// tombstone edited after signing (shorter retention, more records), and a tombstone removed
/// from the start, the middle or the end of the expired range.
#[test]
fn deletions_without_a_valid_tombstone_are_reported() {
    let base = expired_store();
    assert!(base.verify().is_intact());

    let store = base.copy();
    let segments = store.segments(&app_y());
    fs::remove_file(&segments[0]).expect("delete");
    assert_finding(
        &store.verify(),
        "segment deleted without tombstone",
        |finding| {
            finding.file == store.rel(&segments[1])
                && finding.records == Some((0, 1))
                && finding.message.contains("missing")
        },
    );

    let edits: [(&str, &str, &str); 4] = [
        (
            "shorter retention",
            "retention-days 30\n",
            "retention-days 3\n",
        ),
        ("more records", "records 70 80\n", "records 70 90\n"),
        (
            "later deletion",
            "deleted-at 2023-12-25T",
            "deleted-at 2023-12-26T",
        ),
        ("other group", "group app/x\n", "group app/y\n"),
    ];
    for (name, from, to) in edits {
        let store = base.copy();
        let path = tombstones(&store).pop().expect("a tombstone");
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{name}: {from:?} not in\n{text}");
        fs::write(&path, text.replacen(from, to, 1)).expect("write");
        let report = store.verify();
        assert!(!report.is_intact(), "{name}: forged tombstone accepted");
        assert_finding(&report, name, |finding| {
            finding.file == store.rel(&path) && finding.message.contains("invalid tombstone")
        });
    }

    for (name, index, message) in [
        (
            "first tombstone removed",
            0,
            "tombstone does not continue the expired range",
        ),
        (
            "middle tombstone removed",
            4,
            "tombstone does not continue the expired range",
        ),
        (
            "last tombstone removed",
            7,
            "missing, moved or reordered segment",
        ),
    ] {
        let store = base.copy();
        let all = tombstones(&store);
        fs::remove_file(&all[index]).expect("delete");
        let named = if index == 7 {
            store.segments(&app_x())[0].clone()
        } else {
            all[index + 1].clone()
        };
        let report = store.verify();
        assert!(!report.is_intact(), "{name}: undetected");
        assert_finding(&report, name, |finding| {
            finding.file == store.rel(&named) && finding.message.contains(message)
        });
    }
}

/// The clock steps back across an epoch boundary (the signer already moved to the later epoch)
/// just before a retention pass. Retention must then either refuse or write a tombstone that
/// verifies; the store must stay verifiable and openable.
///
/// Guards against a tombstone dated before its signing epoch: the signer never moves back an
/// epoch, so a tombstone dated `now` after the clock stepped back would be rejected by
/// `Tombstone::parse_and_verify` ("signed with the key of epoch N but dated ... (epoch N-1)")
/// with its segment already deleted, and `JournalWriter::open` would refuse the store for good.
/// Tombstones are dated by the trusted floor, as checkpoints are.
#[test]
fn retention_after_the_clock_steps_back_keeps_the_store_verifiable() {
    let store = aged_store();
    let (mut writer, _) = store.writer();
    writer
        .seal(day(45))
        .expect("seal at day 45: the signer moves to epoch 45");
    let stepped_back = Timestamp::from_unix_nanos(day(45).unix_nanos() - 1_000_000_000);
    let result = writer.apply_retention(&app_x(), 30, stepped_back);
    drop(writer);
    let report = store.verify();
    assert!(
        report.is_intact(),
        "retention returned {result:?}; findings:\n{}",
        show(&report)
    );
    let reopened = JournalWriter::open(
        &store.layout,
        store.master.clone(),
        JournalConfig::default(),
    );
    assert!(reopened.is_ok(), "{:?}", reopened.err());
}

/// Whoever holds today's signing key can run retention with any policy and date it in the
/// future. A tombstone dated after the verifier's clock is reported: records sealed on days 1-8,
/// a 30-day pass run on day 12 but dated day 39, is caught on day 12, and the same store is
/// accepted once day 39 has really come.
#[test]
fn forward_dated_retention_is_reported() {
    let mut store = Store::init(daily_epochs());
    let (mut writer, _) = store.writer();
    for number in 1..=8 {
        store.append(&mut writer, &app_x(), 10, day(number));
        writer.seal(day(number)).expect("seal");
    }
    writer.close(day(8)).expect("close");
    let (mut writer, _) = store.writer();
    let notes = writer
        .apply_retention(&app_x(), 30, day(39))
        .expect("retention");
    assert_eq!(
        notes.len(),
        8,
        "records sealed on days 1-8 expire by day 38: {notes:?}"
    );
    drop(writer);
    let early = seclog_journal::verify::verify_at(&store.layout, &store.key, None, day(12))
        .expect("verify");
    assert_finding(&early, "forward-dated tombstone", |finding| {
        finding.message.contains("in the future") && finding.file.ends_with(".tomb")
    });
    let later = seclog_journal::verify::verify_at(&store.layout, &store.key, None, day(39))
        .expect("verify");
    assert!(later.is_intact(), "{}", show(&later));
}

/// Retention runs from the checkpoint that sealed the records: a 30-day pass on day 41 deletes
/// the segments sealed on days 1-8 and keeps the one sealed on day 40, and the tombstones
/// record the policy that expired them.
#[test]
fn retention_counts_from_the_sealing_checkpoint() {
    let store = expired_store();
    let x_segments = store.segments(&app_x());
    assert_eq!(x_segments.len(), 1, "only the day-40 segment is kept");
    let tomb = tombstones(&store).pop().expect("a tombstone");
    let text = fs::read_to_string(&tomb).expect("read");
    assert!(text.contains("retention-days 30"), "{text}");
    assert!(store.verify().is_intact());
}

/// Every retention policy is signed in the checkpoints before a deletion under it, and
/// shortening a policy (as whoever holds today's key could, to delete old records early) shows
/// in the report's notes with its checkpoint.
#[test]
fn retention_policies_are_signed_and_shortening_is_told() {
    let store = expired_store();
    let report = store.verify();
    assert!(report.is_intact(), "{}", show(&report));
    assert!(
        report
            .notes
            .iter()
            .any(|note| note.contains("retention set to 30 days (was keep forever)")),
        "{:?}",
        report.notes
    );

    // Shortened to 1 day on day 42: the day-40 segment goes too, and the change is told.
    let (mut writer, _) = store.writer();
    let notes = writer
        .apply_retention(&app_x(), 1, day(42))
        .expect("retention");
    assert_eq!(notes.len(), 1, "{notes:?}");
    writer.close(day(42)).expect("close");
    let report = store.verify();
    assert!(report.is_intact(), "{}", show(&report));
    assert!(
        report
            .notes
            .iter()
            .any(|note| note.contains("retention set to 1 days (was 30 days)")),
        "{:?}",
        report.notes
    );
}
