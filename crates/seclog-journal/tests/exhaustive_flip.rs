//! Exhaustive tamper test: every byte under `journal/` matters to `verify`.
//!
//! Pass 1 flips bit 0 of every byte of every file, in place (what bit rot or a careless edit
//! does); pass 1b flips bit 7 of every framing byte (headers, frame tags, lengths, CRCs). Pass 2 plays an attacker who knows the format: it flips bit 7 of a byte inside a
//! checksummed region and recomputes that region's CRC (segment header, checkpoint log header,
//! frame tag and payload), so only the Merkle trees, the footers, the hash chains and the
//! signatures can notice. Pass 2 covers every header, frame tag, block field, footer and
//! checkpoint log byte, and every 16th byte
//! of ciphertext (all of them would take minutes in a debug build; pass 1 covers them for plain
//! flips).
//!
//! Each of two threads works on its own copy of the store, flips, verifies in-process with the
//! public key only, checks that verify fails and names the file, and restores the byte.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Instant;

use common::{
    BLOCK_FIXED, CHECKPOINT_HEADER_LEN, FrameSpan, Store, TAG_BLOCK, fix_checkpoint_header_crc,
    fix_frame_crc, fix_segment_header_crc, frames, segment_header_len, walk_files,
};
use seclog_journal::verify::verify;

/// Threads, each with its own copy of the store.
const WORKERS: usize = 2;
/// Pass 2 samples commitment and ciphertext bytes with this stride.
const PAYLOAD_STRIDE: usize = 16;

/// What must be recomputed after a pass-2 flip so that checksums still hold.
#[derive(Debug, Clone, Copy)]
enum Fixup {
    /// Pass 1: nothing, the flip stays visible to checksums.
    None,
    SegmentHeader {
        header_len: usize,
    },
    CheckpointHeader,
    Frame(FrameSpan),
}

#[derive(Debug, Clone, Copy)]
struct Flip {
    file: usize,
    offset: usize,
    mask: u8,
    fixup: Fixup,
}

/// Pass 2 flips of one file: bytes inside CRC-covered regions, each with its CRC fix-up.
fn crc_fixed_flips(file: usize, bytes: &[u8], is_segment: bool) -> Vec<Flip> {
    let mask = 0x80;
    let mut flips = Vec::new();
    let header_len = if is_segment {
        segment_header_len(bytes)
    } else {
        CHECKPOINT_HEADER_LEN
    };
    let header_fixup = if is_segment {
        Fixup::SegmentHeader { header_len }
    } else {
        Fixup::CheckpointHeader
    };
    flips.extend((0..header_len - 4).map(|offset| Flip {
        file,
        offset,
        mask,
        fixup: header_fixup,
    }));
    for frame in frames(bytes, header_len) {
        let fixup = Fixup::Frame(frame);
        flips.push(Flip {
            file,
            offset: frame.offset,
            mask,
            fixup,
        });
        let sampled_from = if frame.tag == TAG_BLOCK {
            frame.payload_start() + BLOCK_FIXED
        } else {
            frame.payload_end()
        };
        for offset in frame.payload_start()..frame.payload_end() {
            if offset < sampled_from || (offset - sampled_from) % PAYLOAD_STRIDE == 0 {
                flips.push(Flip {
                    file,
                    offset,
                    mask,
                    fixup,
                });
            }
        }
    }
    flips
}

/// Runs `flips` on a private copy of `store`; returns a description of every undetected flip.
fn run_flips(store: &Store, files: &[String], flips: &[Flip]) -> Vec<String> {
    let copy = store.copy();
    let mut failures = Vec::new();
    for flip in flips {
        let relative = &files[flip.file];
        let path = copy.layout.root().join(relative);
        let original = fs::read(&path).expect("read file");
        let mut tampered = original.clone();
        tampered[flip.offset] ^= flip.mask;
        match flip.fixup {
            Fixup::None => {}
            Fixup::SegmentHeader { header_len } => {
                fix_segment_header_crc(&mut tampered, header_len)
            }
            Fixup::CheckpointHeader => fix_checkpoint_header_crc(&mut tampered),
            Fixup::Frame(frame) => fix_frame_crc(&mut tampered, frame),
        }
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open for writing");
        file.write_all_at(&tampered, 0)
            .expect("write tampered bytes");
        let report = verify(&copy.layout, &copy.key, None).expect("verify runs");
        if report.is_intact()
            || !report
                .findings
                .iter()
                .any(|finding| finding.file.contains(relative.as_str()))
        {
            failures.push(format!(
                "{relative} byte {} ^ {:#04x} ({:?}): {}",
                flip.offset,
                flip.mask,
                flip.fixup,
                if report.is_intact() {
                    "verify says intact".to_string()
                } else {
                    format!("findings do not name the file: {:?}", report.findings)
                }
            ));
        }
        file.write_all_at(&original, 0).expect("restore bytes");
    }
    failures
}

/// Splits `flips` into `WORKERS` contiguous shares and runs them in parallel.
fn run_parallel(store: &Store, files: &[String], flips: &[Flip]) -> Vec<String> {
    let share = flips.len().div_ceil(WORKERS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = flips
            .chunks(share.max(1))
            .map(|chunk| scope.spawn(move || run_flips(store, files, chunk)))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("worker thread"))
            .collect()
    })
}

/// Pass 1b flips: bit 7 of every byte that frames the data (file headers with their CRC,
/// frame tags, lengths and CRCs), without any fix-up. High length bits reach the
/// "implausible length" path that bit 0 never does.
fn framing_flips(file: usize, bytes: &[u8], is_segment: bool) -> Vec<Flip> {
    let header_len = if is_segment {
        segment_header_len(bytes)
    } else {
        CHECKPOINT_HEADER_LEN
    };
    let framing = frames(bytes, header_len).into_iter().flat_map(|frame| {
        (frame.offset..frame.payload_start()).chain(frame.payload_end()..frame.end())
    });
    (0..header_len)
        .chain(framing)
        .map(|offset| Flip {
            file,
            offset,
            mask: 0x80,
            fixup: Fixup::None,
        })
        .collect()
}

/// Every single-bit flip under `journal/` is detected and a finding names the damaged file:
/// bit 0 of every byte (pass 1), bit 7 of every framing byte (pass 1b), and bit 7 with the
/// checksum recomputed by the attacker (pass 2).
#[test]
fn every_byte_flip_under_journal_is_detected_and_named() {
    let store = Store::build();
    assert!(
        store.verify().is_intact(),
        "the fixture must verify before tampering"
    );
    let paths: Vec<PathBuf> = walk_files(&store.layout.journal_dir());
    let files: Vec<String> = paths.iter().map(|path| store.rel(path)).collect();
    let contents: Vec<Vec<u8>> = paths
        .iter()
        .map(|path| fs::read(path).expect("read file"))
        .collect();
    let total_bytes: usize = contents.iter().map(Vec::len).sum();
    assert!(
        files.iter().any(|file| file.ends_with(".seg"))
            && files.iter().any(|file| file.ends_with(".ckpt"))
    );
    let is_segment = |file: usize| files[file].ends_with(".seg");

    let every_byte: Vec<Flip> = contents
        .iter()
        .enumerate()
        .flat_map(|(file, bytes)| {
            (0..bytes.len()).map(move |offset| Flip {
                file,
                offset,
                mask: 0x01,
                fixup: Fixup::None,
            })
        })
        .collect();
    let framing: Vec<Flip> = contents
        .iter()
        .enumerate()
        .flat_map(|(file, bytes)| framing_flips(file, bytes, is_segment(file)))
        .collect();
    let crc_fixed: Vec<Flip> = contents
        .iter()
        .enumerate()
        .flat_map(|(file, bytes)| crc_fixed_flips(file, bytes, is_segment(file)))
        .collect();

    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for (name, flips) in [
        ("pass 1, xor 0x01, every byte", &every_byte),
        ("pass 1b, xor 0x80, framing bytes", &framing),
        ("pass 2, xor 0x80, CRC recomputed", &crc_fixed),
    ] {
        let started = Instant::now();
        failures.extend(run_parallel(&store, &files, flips));
        summary.push(format!(
            "{name}: {} flips in {:.1?}",
            flips.len(),
            started.elapsed()
        ));
    }
    eprintln!(
        "exhaustive flips over {} files, {total_bytes} bytes, {WORKERS} threads: {}",
        files.len(),
        summary.join("; ")
    );
    // The fixture must stay untouched by the workers (they flip private copies).
    for (path, bytes) in paths.iter().zip(&contents) {
        assert_eq!(
            &fs::read(path).expect("read file"),
            bytes,
            "{} changed",
            path.display()
        );
    }
    assert!(
        failures.is_empty(),
        "{} undetected or misattributed flips (first 20):\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .map(|failure| format!("  {failure}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
