//! Named attacks on segments and directories: each must make `verify` fail with a finding that
//! names the damaged file and, where it means something, the record range.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::{
    Store, TAG_BLOCK, app_x, app_y, assert_finding, blocks, dead_letter, fix_frame_crc,
    fix_segment_header_crc, frames, segment_first_seq, segment_header_len, show, walk_files,
};

/// A freshly written store verifies: every group holds and seals exactly what was appended,
/// spread over several segments, and many checkpoints in several checkpoint logs were checked.
#[test]
fn intact_store_verifies_with_expected_sizes() {
    let store = Store::build();
    let report = store.verify();
    assert!(report.is_intact(), "{}", show(&report));
    let groups: BTreeMap<String, (u64, u64, u64)> = report
        .groups
        .iter()
        .map(|summary| {
            (
                summary.group.to_string(),
                (summary.retained_from, summary.size, summary.sealed),
            )
        })
        .collect();
    let expected: BTreeMap<String, (u64, u64, u64)> =
        [("app/x", 600), ("app/y", 300), ("seclog/dead-letter", 120)]
            .map(|(name, size)| (name.to_string(), (0, size, size)))
            .into();
    assert_eq!(groups, expected);
    for group in [app_x(), app_y(), dead_letter()] {
        assert_eq!(store.size(&group), expected[group.as_str()].1);
        assert!(
            store.segments(&group).len() >= 2,
            "{group} should span several segments"
        );
    }
    assert!(
        report.checkpoints > 5,
        "only {} checkpoints",
        report.checkpoints
    );
    assert!(
        store.checkpoint_logs().len() > 2,
        "several epochs, several checkpoint logs"
    );
    let latest = report.latest.as_ref().expect("a latest checkpoint");
    assert_eq!(latest.seq + 1, report.checkpoints);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    let on_disk: u64 = walk_files(&store.layout.journal_dir())
        .iter()
        .map(|path| fs::metadata(path).expect("stat").len())
        .sum();
    assert_eq!(
        report.bytes, on_disk,
        "verify reads every byte of the journal once"
    );
}

/// Deleting a middle segment breaks the group's sequence right where the missing records were.
#[test]
fn deleted_middle_segment_is_reported_at_the_gap() {
    let store = Store::build();
    let segments = store.segments(&app_x());
    let (victim, successor) = (&segments[2], &segments[3]);
    let missing_from = segment_first_seq(&fs::read(victim).expect("read segment"));
    fs::remove_file(victim).expect("delete segment");
    let report = store.verify();
    assert!(!report.is_intact());
    assert_finding(&report, "gap before the successor", |finding| {
        finding.group.as_deref() == Some("app/x")
            && finding.file == store.rel(successor)
            && finding.records == Some((missing_from, missing_from + 1))
            && finding.message.contains("missing, moved or reordered")
    });
}

/// Swapping the contents of two segments (names kept) is caught at the first swapped file.
#[test]
fn reordered_segments_are_reported() {
    let store = Store::build();
    let segments = store.segments(&app_y());
    let (first, second) = (&segments[1], &segments[2]);
    let (first_bytes, second_bytes) = (
        fs::read(first).expect("read"),
        fs::read(second).expect("read"),
    );
    let expected_at = segment_first_seq(&first_bytes);
    fs::write(first, &second_bytes).expect("write");
    fs::write(second, &first_bytes).expect("write");
    let report = store.verify();
    assert!(!report.is_intact());
    assert_finding(&report, "first swapped segment out of place", |finding| {
        finding.file == store.rel(first)
            && finding.records == Some((expected_at, expected_at + 1))
            && finding.message.contains("reordered")
    });
}

/// Cutting the last segment inside its last block is damage at that block.
#[test]
fn truncation_inside_a_block_is_reported_as_damage() {
    let store = Store::build();
    let last = store.segments(&app_x()).pop().expect("a segment");
    let bytes = fs::read(&last).expect("read");
    let block = *blocks(&bytes).last().expect("a block");
    fs::write(
        &last,
        &bytes[..block.frame.offset + block.frame.payload_len / 2],
    )
    .expect("truncate");
    let report = store.verify();
    assert!(!report.is_intact());
    assert_finding(&report, "damaged tail of the last segment", |finding| {
        finding.file == store.rel(&last)
            && finding.records == Some((block.first_seq, block.first_seq + 1))
            && finding.message.contains("damaged")
    });
}

/// Cutting whole blocks off the end (clean frames) leaves fewer records than the newest
/// checkpoint covers: "missing ... covers N records but only M".
#[test]
fn truncation_at_a_block_boundary_is_reported_as_missing_records() {
    let store = Store::build();
    let last = store.segments(&app_x()).pop().expect("a segment");
    let bytes = fs::read(&last).expect("read");
    let cut = blocks(&bytes)[blocks(&bytes).len() - 2];
    fs::write(&last, &bytes[..cut.frame.offset]).expect("truncate");
    let report = store.verify();
    assert!(!report.is_intact());
    let kept = cut.first_seq;
    assert_finding(&report, "missing records", |finding| {
        finding.file == store.rel(&store.layout.group_dir(&app_x()))
            && finding.records == Some((kept, 600))
            && finding
                .message
                .contains(&format!("covers 600 records but only {kept} are stored"))
    });
    // Dropping a whole sealed tail segment is the same finding.
    let store = Store::build();
    let mut segments = store.segments(&app_y());
    let last = segments.pop().expect("a segment");
    let kept = segment_first_seq(&fs::read(&last).expect("read"));
    fs::remove_file(&last).expect("delete");
    let report = store.verify();
    assert_finding(&report, "missing tail segment", |finding| {
        finding.records == Some((kept, 300)) && finding.message.contains("missing: checkpoint")
    });
}

/// Adds a file to a store and returns its path.
type AddFile = Box<dyn Fn(&Store) -> std::path::PathBuf>;

/// Extra files anywhere under `journal/` are reported by name, including a copy of a real
/// segment under the next valid segment name, a copied checkpoint log under a new valid name,
/// and a whole new group directory.
#[test]
fn added_files_are_reported() {
    let base = Store::build();
    let cases: Vec<(&str, AddFile, &str)> = vec![
        (
            "file in journal/",
            Box::new(|store| {
                let path = store.layout.journal_dir().join("README");
                fs::write(&path, "hello").expect("write");
                path
            }),
            "unexpected file in the journal",
        ),
        (
            "file among checkpoint logs",
            Box::new(|store| {
                let path = store.layout.checkpoints_dir().join("notes.txt");
                fs::write(&path, "hello").expect("write");
                path
            }),
            "unexpected file among checkpoint logs",
        ),
        (
            "checkpoint log copied under the next valid name",
            Box::new(|store| {
                let last = store.checkpoint_logs().pop().expect("a log");
                let report = store.verify();
                let next = report.latest.expect("latest").seq + 1;
                let path = store
                    .layout
                    .checkpoints_dir()
                    .join(format!("{next:020}.ckpt"));
                fs::copy(&last, &path).expect("copy");
                path
            }),
            "file name says checkpoint",
        ),
        (
            "file in a group directory",
            Box::new(|store| {
                let path = store.layout.group_dir(&app_x()).join("extra.bin");
                fs::write(&path, [0u8; 16]).expect("write");
                path
            }),
            "unexpected file in the group directory",
        ),
        (
            "last segment copied under the next sequence number",
            Box::new(|store| {
                let last = store.segments(&app_x()).pop().expect("a segment");
                let path = store.layout.segment(&app_x(), 600);
                fs::copy(&last, &path).expect("copy");
                path
            }),
            "segment starts at record",
        ),
        (
            "sealed segment copied under the next sequence number",
            Box::new(|store| {
                let sealed = store.segments(&dead_letter()).remove(0);
                let path = store.layout.segment(&dead_letter(), 120);
                fs::copy(&sealed, &path).expect("copy");
                path
            }),
            "segment starts at record",
        ),
        (
            "new group directory holding a copied segment",
            Box::new(|store| {
                let group = seclog_model::GroupName::parse("app/z").expect("group name");
                fs::create_dir(store.layout.group_dir(&group)).expect("mkdir");
                let path = store.layout.segment(&group, 0);
                fs::copy(&store.segments(&app_x())[0], &path).expect("copy");
                path
            }),
            "segment belongs to group",
        ),
    ];
    for (name, add, message) in cases {
        let store = base.copy();
        let added = add(&store);
        let report = store.verify();
        assert!(!report.is_intact(), "{name}: undetected");
        let relative = store.rel(&added);
        assert_finding(&report, name, |finding| {
            finding.file == relative && finding.message.contains(message)
        });
    }
}

/// The attacker flips a byte and recomputes the frame (or header) CRC: the Merkle check still
/// catches it, and the finding's record range contains the altered record.
#[test]
fn flip_with_recomputed_crc_is_caught_by_the_merkle_check() {
    let base = Store::build();
    let segment_index = 2;
    let segment = &base.segments(&app_x())[segment_index];
    let original = fs::read(segment).expect("read");
    let block = blocks(&original)[2];
    // Every leaf of a block commits to all of the block's bytes: any edit changes them all.
    let edits = [
        ("commitment root", block.commit_root_offset() + 7),
        ("ciphertext", block.ciphertext_offset() + 3),
        ("block written_at", block.frame.payload_start() + 12 + 2),
        ("block nonce", block.frame.payload_start() + 20 + 5),
    ];
    let first_changed = block.first_seq;
    for (what, offset) in edits {
        let store = base.copy();
        let path = &store.segments(&app_x())[segment_index];
        let mut bytes = original.clone();
        bytes[offset] ^= 0x01;
        fix_frame_crc(&mut bytes, block.frame);
        fs::write(path, &bytes).expect("write");
        let report = store.verify();
        assert!(!report.is_intact(), "{what}: undetected");
        let relative = store.rel(path);
        assert_finding(&report, what, |finding| {
            finding.message.contains("do not match signed checkpoint")
                && finding.file.contains(&relative)
                && finding
                    .records
                    .is_some_and(|(first, end)| first <= first_changed && first_changed < end)
        });
    }
    // The segment header (created_at) with its CRC recomputed changes every leaf of the segment.
    let store = base.copy();
    let path = &store.segments(&app_x())[segment_index];
    let mut bytes = original.clone();
    let header_len = segment_header_len(&bytes);
    bytes[header_len - 4 - 32 - 3] ^= 0x01;
    fix_segment_header_crc(&mut bytes, header_len);
    fs::write(path, &bytes).expect("write");
    let report = store.verify();
    let first = segment_first_seq(&original);
    assert_finding(&report, "header created_at", |finding| {
        finding.message.contains("do not match signed checkpoint")
            && finding.file.contains(&store.rel(path))
            && finding
                .records
                .is_some_and(|(start, end)| start <= first && first < end)
    });
    // A re-checksummed frame tag turns a block into an unknown frame.
    let store = base.copy();
    let path = &store.segments(&app_x())[segment_index];
    let mut bytes = original;
    let frame = frames(&bytes, header_len)
        .into_iter()
        .find(|frame| frame.tag == TAG_BLOCK)
        .expect("a block");
    bytes[frame.offset] ^= 0x01;
    fix_frame_crc(&mut bytes, frame);
    fs::write(path, &bytes).expect("write");
    let report = store.verify();
    assert_finding(&report, "unknown tag", |finding| {
        finding.file == store.rel(path) && finding.message.contains("unknown frame tag")
    });
}

/// A block whose record count was inflated (checksum recomputed) is reported, and verify does
/// not do work in proportion to the forged count.
///
/// Guards against an unbounded count: `BlockView::parse` (src/segment.rs) bounds the record
/// count by the block's size, since `BlockView::leaves` pushes one leaf hash per claimed
/// record. `verify` (`scan_segment`, src/verify.rs) runs it on untrusted
/// bytes, as do `JournalWriter::recover_group` and `proof::group_leaves`. One count field set
/// to 2^31 makes verify allocate 64 GiB of leaf hashes: the first run of the exhaustive test
/// was OOM-killed at 24 GB RSS. Here 2^22 extra records cost seconds and 128 MiB.
#[test]
fn inflated_block_count_is_rejected_without_unbounded_work() {
    let store = Store::build();
    let path = store.segments(&app_x())[1].clone();
    let mut bytes = fs::read(&path).expect("read");
    let block = blocks(&bytes)[1];
    let count_at = block.frame.payload_start() + 8;
    let forged = block.count + (1 << 22);
    bytes[count_at..count_at + 4].copy_from_slice(&forged.to_le_bytes());
    fix_frame_crc(&mut bytes, block.frame);
    fs::write(&path, &bytes).expect("write");
    let started = std::time::Instant::now();
    let report = store.verify();
    let elapsed = started.elapsed();
    assert!(!report.is_intact());
    assert_finding(&report, "forged count", |finding| {
        finding.file.contains(&store.rel(&path))
    });
    assert!(
        elapsed < std::time::Duration::from_secs(2),
        "verify took {elapsed:.1?} over a block claiming {forged} records (normally a few ms)"
    );
}
