//! Crash recovery on `JournalWriter::open`: an interrupted, unacknowledged append is cut off
//! and writing goes on; anything a signed checkpoint covers is never given up silently.

mod common;

use std::fs;

use common::{
    LogFile, STEPS, Store, TAG_BLOCK, app_x, at, blocks, default_epochs, encode_frame, show,
    small_config,
};
use seclog_journal::{JournalError, JournalReader, JournalWriter, latest_checkpoint};

/// A store with 40 committed records in `app/x`, the first 20 sealed, and the writer gone
/// without closing (a crash). Returns the store and its last segment.
fn crashed_store(uncommitted: bool) -> (Store, std::path::PathBuf) {
    let mut store = Store::init(default_epochs());
    let (mut writer, _) = store.writer();
    store.append(&mut writer, &app_x(), 20, at(1));
    writer.seal(at(1)).expect("seal");
    store.append(&mut writer, &app_x(), 20, at(2));
    writer.commit().expect("commit");
    if uncommitted {
        store.append(&mut writer, &app_x(), 20, at(3));
        store
            .appended
            .get_mut(&app_x())
            .expect("app/x")
            .truncate(40);
    }
    drop(writer);
    let last = store.segments(&app_x()).pop().expect("a segment");
    (store, last)
}

/// After a crash the last segment ends in a torn frame: cut inside an unacknowledged block,
/// half a frame of garbage, or a whole frame whose checksum fails. Opening the writer succeeds,
/// says it truncated the tail, keeps every committed record (read back with the master key),
/// and the store verifies once the writer sealed again.
#[test]
fn torn_tail_is_truncated_and_committed_records_survive() {
    let variants = [
        "cut inside an uncommitted block",
        "half a frame",
        "frame with a bad checksum",
    ];
    for variant in variants {
        let (mut store, last) = crashed_store(variant == variants[0]);
        let mut bytes = fs::read(&last).expect("read");
        match variant {
            "cut inside an uncommitted block" => {
                let block = *blocks(&bytes).last().expect("a block");
                assert_eq!(block.first_seq, 40, "the uncommitted block is the last one");
                bytes.truncate(block.frame.offset + block.frame.payload_len / 2);
            }
            "half a frame" => bytes.extend_from_slice(&[TAG_BLOCK, 200, 0, 0, 0, 1, 2, 3, 4]),
            _ => {
                let mut frame = encode_frame(TAG_BLOCK, &[7u8; 90]);
                *frame.last_mut().expect("crc byte") ^= 0xFF;
                bytes.extend_from_slice(&frame);
            }
        }
        fs::write(&last, &bytes).expect("write");

        let (mut writer, notes) = store.writer();
        assert!(
            notes
                .iter()
                .any(|note| note.contains("truncated") && note.contains(&store.rel(&last))),
            "{variant}: {notes:?}"
        );
        let reader = JournalReader::new(&store.layout, store.master.clone());
        let events = reader.read(&app_x(), 0, 1000, None).expect("read");
        let stored: Vec<Vec<u8>> = events.iter().map(|event| event.record.encode()).collect();
        assert_eq!(
            stored,
            store.appended[&app_x()],
            "{variant}: committed records"
        );
        writer.seal(at(4)).expect("seal");
        store.append(&mut writer, &app_x(), 5, at(5));
        writer.close(at(6)).expect("close");
        let report = store.verify();
        assert!(report.is_intact(), "{variant}:\n{}", show(&report));
        assert_eq!(report.groups[0].size, 45, "{variant}");
    }
}

/// Records that a signed checkpoint covers are gone (cut at a block boundary, or the last
/// segment deleted): opening the writer refuses instead of carrying on from a shorter tree.
#[test]
fn open_refuses_a_store_missing_sealed_records() {
    let base = Store::build();
    let store = base.copy();
    let last = store.segments(&app_x()).pop().expect("a segment");
    let bytes = fs::read(&last).expect("read");
    let cut = blocks(&bytes).last().expect("a block").frame.offset;
    fs::write(&last, &bytes[..cut]).expect("truncate");
    let result = JournalWriter::open(&store.layout, store.master.clone(), small_config());
    assert!(
        matches!(result, Err(JournalError::Corrupt { .. })),
        "{:?}",
        result.map(|(_, notes)| notes)
    );

    let store = base.copy();
    fs::remove_file(store.segments(&app_x()).pop().expect("a segment")).expect("delete");
    let result = JournalWriter::open(&store.layout, store.master.clone(), small_config());
    assert!(
        matches!(result, Err(JournalError::Corrupt { .. })),
        "{:?}",
        result.map(|(_, notes)| notes)
    );
}

/// A bit flips in the last block of a group, a block a signed checkpoint covers. Opening the
/// writer must refuse, and must leave the damaged bytes in place for `verify` and for
/// forensics: a bad last frame is cut off as an interrupted append only when no checkpoint
/// covers it (comparing the tail with the newest checkpoint comes first).
#[test]
fn open_refuses_a_damaged_sealed_tail_without_destroying_it() {
    let store = Store::build();
    let last = store.segments(&app_x()).pop().expect("a segment");
    let mut bytes = fs::read(&last).expect("read");
    let block = *blocks(&bytes).last().expect("a block");
    bytes[block.ciphertext_offset() + 5] ^= 0x01;
    fs::write(&last, &bytes).expect("write");
    let before = store.verify();
    assert!(
        before
            .findings
            .iter()
            .any(|finding| finding.message.contains("damaged"))
    );

    let result = JournalWriter::open(&store.layout, store.master.clone(), small_config());
    assert!(
        matches!(result, Err(JournalError::Corrupt { .. })),
        "{:?}",
        result.map(|(_, notes)| notes)
    );
    let after = fs::read(&last).expect("read");
    assert!(
        after == bytes,
        "open cut {} of {} bytes of a sealed, damaged segment; verify now says:\n{}",
        bytes.len() - after.len(),
        bytes.len(),
        show(&store.verify())
    );
}

/// A bit flips in the epoch key record of the newest checkpoint log, which holds signed
/// checkpoints. Opening the writer may refuse, but must not delete signed checkpoints.
///
/// Guards against erasing signed history: a short newest log whose first frame does not read
/// back must not be taken for "a crash while a new log file was being started" and removed when
/// signed checkpoint frames follow, or the next seal would reuse the erased checkpoint numbers
/// and the chain would verify again without a pin.
#[test]
fn open_does_not_delete_a_checkpoint_log_with_a_damaged_epoch_key() {
    let mut store = Store::build();
    let newest = store.checkpoint_logs().pop().expect("a log");
    let mut bytes = fs::read(&newest).expect("read");
    assert!(!LogFile::parse(&bytes).checkpoints.is_empty());
    bytes[common::CHECKPOINT_HEADER_LEN + 5 + 10] ^= 0x01;
    fs::write(&newest, &bytes).expect("write");
    let pinned_seq = store.verify().checkpoints;

    if let Ok((mut writer, notes)) =
        JournalWriter::open(&store.layout, store.master.clone(), small_config())
    {
        store.append(&mut writer, &app_x(), 3, at(STEPS * 2 + 5));
        writer.close(at(STEPS * 2 + 5)).expect("close");
        let report = store.verify();
        assert!(
            fs::read(&newest).is_ok_and(|now| now.starts_with(&bytes)),
            "open removed or rewrote {} (notes {notes:?}); verify now says intact={} with {} checkpoints (had {pinned_seq})",
            store.rel(&newest),
            report.is_intact(),
            report.checkpoints
        );
    }
}

/// The writer crashes while appending the first checkpoint of a new epoch (the new log file
/// holds its header and epoch key record; the checkpoint frame is torn or missing). Reopening
/// and sealing, in the same epoch or a later one, must continue the checkpoint chain.
///
/// Regression: `CheckpointLog::open` used to read only the newest log file, so the chain
/// restarted at #0 (same epoch), and a roll to a later epoch collided with the empty log's
/// file name on `create_new` so that every later seal failed.
#[test]
fn crash_during_the_first_checkpoint_of_an_epoch_keeps_the_chain() {
    for (cut_inside_frame, seal_at) in [(false, 13), (true, 13), (false, 25), (true, 25)] {
        let case = format!("cut inside the frame: {cut_inside_frame}, sealed at {seal_at}s");
        let mut store = Store::init(default_epochs());
        let (mut writer, _) = store.writer();
        store.append(&mut writer, &app_x(), 10, at(1));
        writer
            .seal(at(1))
            .expect("seal #1 in epoch 0 (#0 is the genesis)");
        store.append(&mut writer, &app_x(), 10, at(12));
        writer.seal(at(12)).expect("seal #2 in epoch 1");
        drop(writer);
        let newest = store.checkpoint_logs().pop().expect("a log");
        let bytes = fs::read(&newest).expect("read");
        let frame = LogFile::checkpoint_offsets(&bytes)[0];
        let cut = if cut_inside_frame { frame + 40 } else { frame };
        fs::write(&newest, &bytes[..cut]).expect("simulate the crash");

        let (mut writer, _) = store.writer();
        let sealed = writer.seal(at(seal_at));
        assert!(sealed.is_ok(), "{case}: {:?}", sealed.err());
        assert_eq!(sealed.expect("sealed").body.seq, 2, "{case}");
        drop(writer);
        let report = store.verify();
        assert!(report.is_intact(), "{case}\n{}", show(&report));
    }
}

/// `latest_checkpoint` (used by proofs and for pinning) still finds the newest checkpoint
/// when the newest log file holds none yet (crash right after a log roll).
///
/// Regression: it used to look only at the newest log file and return `None`, so
/// `make_proof` answered "no signed checkpoint yet" for a store with signed checkpoints.
#[test]
fn latest_checkpoint_survives_a_crash_after_a_log_roll() {
    let mut store = Store::init(default_epochs());
    let (mut writer, _) = store.writer();
    store.append(&mut writer, &app_x(), 10, at(1));
    let first = writer.seal(at(1)).expect("seal #0");
    writer.seal(at(12)).expect("seal #1 in a new log");
    drop(writer);
    let newest = store.checkpoint_logs().pop().expect("a log");
    let bytes = fs::read(&newest).expect("read");
    fs::write(&newest, &bytes[..LogFile::checkpoint_offsets(&bytes)[0]]).expect("crash");
    let latest = latest_checkpoint(&store.layout).expect("read checkpoints");
    assert_eq!(latest.map(|signed| signed.body.seq), Some(first.body.seq));
}
