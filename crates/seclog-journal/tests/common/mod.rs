//! Shared fixture for the journal's black-box tests.
//!
//! [`Store::build`] writes a small store under an injected clock: three groups (one of them the
//! internal dead-letter group), 1020 events, several segments per group, many blocks, commits
//! and ten checkpoints in six checkpoint logs (ten-second signing epochs), about 27 KB. The byte-level helpers below
//! re-implement only the published framing (see `src/frame.rs`, `src/segment.rs`,
//! `src/checkpoint.rs`) so that attacks can rewrite files the way an intruder would.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use seclog_journal::verify::{Finding, VerifyReport, verify};
use seclog_journal::{
    EpochParams, JournalConfig, JournalWriter, Layout, MasterKey, Record, RecordKind,
    SignedCheckpoint, Signer, VerificationKey,
};
use seclog_model::{GroupName, Timestamp};

/// Unix seconds at which epoch 0 of the default fixture starts (a fixed past instant: the clock
/// is injected, so nothing depends on the machine's time).
pub(crate) const START_UNIX: i64 = 1_700_000_000;
/// Length of one signing epoch in the default fixture.
pub(crate) const EPOCH_SECS: u64 = 10;
/// Epochs committed to by the default fixture's verification key.
pub(crate) const EPOCHS: u32 = 64;
/// Steps of [`Store::build`].
pub(crate) const STEPS: i64 = 30;

/// When step `step` of [`Store::build`] happens: every two seconds from one second in, with a
/// few nanoseconds so that no two steps print alike.
pub(crate) fn step_time(step: i64) -> Timestamp {
    at_nanos(1 + step * 2, step * 1_000)
}

const NANOS: i64 = 1_000_000_000;

/// The instant `secs` after [`START_UNIX`].
pub(crate) fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_nanos((START_UNIX + secs) * NANOS)
}

/// The instant `secs` after [`START_UNIX`], plus `nanos`.
pub(crate) fn at_nanos(secs: i64, nanos: i64) -> Timestamp {
    Timestamp::from_unix_nanos((START_UNIX + secs) * NANOS + nanos)
}

/// Group names used by the fixture.
pub(crate) fn app_x() -> GroupName {
    GroupName::parse("app/x").expect("valid group name")
}
pub(crate) fn app_y() -> GroupName {
    GroupName::parse("app/y").expect("valid group name")
}
pub(crate) fn dead_letter() -> GroupName {
    GroupName::dead_letter()
}

/// One event of `group`, number `n`, received at `now`. JSON for `app/x`, text for `app/y`,
/// an invalid record with a reason for the dead-letter group.
pub(crate) fn event(group: &GroupName, n: u64, now: Timestamp) -> Record {
    let (kind, attrs, raw) = match group.as_str() {
        "app/x" => (
            RecordKind::Json,
            Vec::new(),
            format!(r#"{{"n":{n},"user":"u{}"}}"#, n % 7).into_bytes(),
        ),
        "app/y" => (
            RecordKind::Text,
            Vec::new(),
            format!("login u{} #{n}", n % 5).into_bytes(),
        ),
        _ => (
            RecordKind::Invalid,
            br#"{"reason":"unparsable"}"#.to_vec(),
            format!("<13>bad {n}").into_bytes(),
        ),
    };
    Record {
        time: now,
        observed_time: now,
        kind,
        source: "t".into(),
        attrs,
        raw,
    }
}

/// Small segments and blocks, so that every group gets several of each (a block of 20 small
/// records takes about 300 bytes, so a segment holds six or seven blocks).
pub(crate) fn small_config() -> JournalConfig {
    JournalConfig {
        segment_max_bytes: 2 * 1024,
        block_max_bytes: 1024,
        ..JournalConfig::default()
    }
}

/// Epoch layout of the default fixture.
pub(crate) fn default_epochs() -> EpochParams {
    EpochParams {
        start_unix: START_UNIX,
        epoch_secs: EPOCH_SECS,
        count: EPOCHS,
    }
}

/// A data directory with its keys and a record of everything appended.
pub(crate) struct Store {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) layout: Layout,
    pub(crate) master: MasterKey,
    pub(crate) key: VerificationKey,
    /// Encoded records per group, indexed by sequence number.
    pub(crate) appended: BTreeMap<GroupName, Vec<Vec<u8>>>,
}

impl Store {
    /// An empty store: master key, signing state and verification key, no journal yet.
    pub(crate) fn init(epochs: EpochParams) -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = Layout::new(dir.path(), None);
        let master = MasterKey::create(layout.master_key()).expect("create master key");
        let key = Signer::init(&layout, &master, epochs).expect("init signer");
        Store {
            dir,
            layout,
            master,
            key,
            appended: BTreeMap::new(),
        }
    }

    /// Opens a writer with [`small_config`]; returns it with its recovery notes.
    pub(crate) fn writer(&self) -> (JournalWriter, Vec<String>) {
        JournalWriter::open(&self.layout, self.master.clone(), small_config()).expect("open writer")
    }

    /// Appends `count` fresh events to `group` at `now` and remembers them.
    pub(crate) fn append(
        &mut self,
        writer: &mut JournalWriter,
        group: &GroupName,
        count: u64,
        now: Timestamp,
    ) -> (u64, u64) {
        let stored = self.appended.entry(group.clone()).or_default();
        let first = stored.len() as u64;
        let records: Vec<Vec<u8>> = (first..first + count)
            .map(|n| event(group, n, now).encode())
            .collect();
        let range = writer
            .append(group, &records, now)
            .expect("append")
            .expect("non-empty append");
        assert_eq!(
            range,
            (first, first + count - 1),
            "sequence numbers are assigned densely"
        );
        stored.extend(records);
        range
    }

    /// The standard store, closed: 30 steps of two seconds; every step appends 20 JSON events
    /// to `app/x` and 10 text events to `app/y` (one block each), every third step 12 dead
    /// letters; every step commits, every third step seals (about two checkpoints per epoch);
    /// `close` signs the last checkpoint. 1020 events, about 27 KB under `journal/`.
    pub(crate) fn build() -> Store {
        let mut store = Store::init(default_epochs());
        let (mut writer, notes) = store.writer();
        assert!(notes.is_empty(), "a new store needs no recovery: {notes:?}");
        for step in 0..STEPS {
            let now = step_time(step);
            store.append(&mut writer, &app_x(), 20, now);
            store.append(&mut writer, &app_y(), 10, now);
            if step % 3 == 0 {
                store.append(&mut writer, &dead_letter(), 12, now);
            }
            writer.commit().expect("commit");
            if step % 3 == 2 {
                writer.seal(now).expect("seal");
            }
        }
        writer.close(step_time(STEPS)).expect("close");
        store
    }

    /// An independent copy of the whole data directory (keys included).
    pub(crate) fn copy(&self) -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_tree(self.dir.path(), dir.path());
        let layout = Layout::new(dir.path(), None);
        Store {
            dir,
            layout,
            master: self.master.clone(),
            key: self.key.clone(),
            appended: self.appended.clone(),
        }
    }

    /// Verifies the journal with the public key only.
    pub(crate) fn verify(&self) -> VerifyReport {
        verify(&self.layout, &self.key, None).expect("verify runs")
    }

    /// Verifies against a checkpoint kept outside the host.
    pub(crate) fn verify_pinned(&self, pinned: &SignedCheckpoint) -> VerifyReport {
        verify(&self.layout, &self.key, Some(pinned)).expect("verify runs")
    }

    /// `path` relative to the data directory, as findings name files.
    pub(crate) fn rel(&self, path: &Path) -> String {
        path.strip_prefix(self.layout.root())
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Segment files of `group`, oldest first.
    pub(crate) fn segments(&self, group: &GroupName) -> Vec<PathBuf> {
        numbered_files(&self.layout.group_dir(group), "seg")
    }

    /// Checkpoint log files, oldest first.
    pub(crate) fn checkpoint_logs(&self) -> Vec<PathBuf> {
        numbered_files(&self.layout.checkpoints_dir(), "ckpt")
    }

    /// Number of records appended to `group`.
    pub(crate) fn size(&self, group: &GroupName) -> u64 {
        self.appended
            .get(group)
            .map_or(0, |records| records.len() as u64)
    }
}

/// Files `<20 digits>.<extension>` in `dir`, sorted by name (= by number).
pub(crate) fn numbered_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .collect();
    files.sort();
    files
}

/// Every regular file under `dir`, recursively, sorted.
pub(crate) fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).expect("list directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Copies the directory tree `from` into `to` (created if missing), keeping file modes.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create copy directory");
    for entry in fs::read_dir(from).expect("list directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Asserts the report has a finding matching `predicate`, printing every finding otherwise.
pub(crate) fn assert_finding(
    report: &VerifyReport,
    what: &str,
    predicate: impl Fn(&Finding) -> bool,
) {
    assert!(
        report.findings.iter().any(predicate),
        "expected a finding: {what}; got:\n{}",
        report
            .findings
            .iter()
            .map(|finding| format!("  {finding}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Renders findings one per line, for assertion messages.
pub(crate) fn show(report: &VerifyReport) -> String {
    report
        .findings
        .iter()
        .map(|finding| format!("  {finding}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- byte formats -------------------------------------------------------------------------

/// Tags of the frames (`src/segment.rs`, `src/checkpoint.rs`, `src/frame.rs`).
pub(crate) const TAG_BLOCK: u8 = 0xB1;
pub(crate) const TAG_FOOTER: u8 = 0xF0;
pub(crate) const TAG_EPOCH_KEY: u8 = 0xE1;
pub(crate) const TAG_CHECKPOINT: u8 = 0xC1;
/// `"SLOGCKP\0" | version u16 | first_seq u64 | epoch u32 | crc32`.
pub(crate) const CHECKPOINT_HEADER_LEN: usize = 8 + 2 + 8 + 4 + 4;
/// Fixed part of a block payload: first_seq, count, written_at, nonce, commit_root.
pub(crate) const BLOCK_FIXED: usize = 8 + 4 + 8 + 24 + 32;

/// Where one frame lies in a file: `tag u8 | payload_len u32 | payload | crc32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameSpan {
    pub(crate) offset: usize,
    pub(crate) tag: u8,
    pub(crate) payload_len: usize,
}

impl FrameSpan {
    pub(crate) fn payload_start(&self) -> usize {
        self.offset + 5
    }
    pub(crate) fn payload_end(&self) -> usize {
        self.payload_start() + self.payload_len
    }
    /// One past the frame's CRC.
    pub(crate) fn end(&self) -> usize {
        self.payload_end() + 4
    }
}

/// The well-formed frames of `bytes` from `start` (stops at the first that does not fit).
pub(crate) fn frames(bytes: &[u8], start: usize) -> Vec<FrameSpan> {
    let mut spans = Vec::new();
    let mut offset = start;
    while let Some(header) = bytes.get(offset..offset + 5) {
        let payload_len = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as usize;
        let span = FrameSpan {
            offset,
            tag: header[0],
            payload_len,
        };
        if span.end() > bytes.len() {
            break;
        }
        spans.push(span);
        offset = span.end();
    }
    spans
}

/// Recomputes the CRC of `frame` after its payload was edited.
pub(crate) fn fix_frame_crc(bytes: &mut [u8], frame: FrameSpan) {
    let crc = crc32fast::hash(&bytes[frame.offset..frame.payload_end()]);
    bytes[frame.payload_end()..frame.end()].copy_from_slice(&crc.to_le_bytes());
}

/// One encoded frame.
pub(crate) fn encode_frame(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Length of a segment header: magic, version, group name, first_seq, created_at, prev_digest, crc.
pub(crate) fn segment_header_len(bytes: &[u8]) -> usize {
    let group_len = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
    8 + 2 + 2 + group_len + 8 + 8 + 32 + 4
}

/// Recomputes the header CRC of a segment (`header_len` from [`segment_header_len`]).
pub(crate) fn fix_segment_header_crc(bytes: &mut [u8], header_len: usize) {
    let crc = crc32fast::hash(&bytes[..header_len - 4]);
    bytes[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
}

/// Recomputes the header CRC of a checkpoint log.
pub(crate) fn fix_checkpoint_header_crc(bytes: &mut [u8]) {
    let crc = crc32fast::hash(&bytes[..CHECKPOINT_HEADER_LEN - 4]);
    bytes[CHECKPOINT_HEADER_LEN - 4..CHECKPOINT_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// The fields of a block frame that the tests need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockInfo {
    pub(crate) frame: FrameSpan,
    pub(crate) first_seq: u64,
    pub(crate) count: u32,
}

impl BlockInfo {
    /// Offset of the block's commitment root in the file.
    pub(crate) fn commit_root_offset(&self) -> usize {
        self.frame.payload_start() + BLOCK_FIXED - 32
    }
    /// Offset of the first ciphertext byte in the file.
    pub(crate) fn ciphertext_offset(&self) -> usize {
        self.frame.payload_start() + BLOCK_FIXED
    }
}

/// The block frames of a segment file, in order.
pub(crate) fn blocks(bytes: &[u8]) -> Vec<BlockInfo> {
    frames(bytes, segment_header_len(bytes))
        .into_iter()
        .filter(|frame| frame.tag == TAG_BLOCK)
        .map(|frame| {
            let payload = &bytes[frame.payload_start()..frame.payload_end()];
            BlockInfo {
                frame,
                first_seq: u64::from_le_bytes(payload[0..8].try_into().expect("8 bytes")),
                count: u32::from_le_bytes(payload[8..12].try_into().expect("4 bytes")),
            }
        })
        .collect()
}

/// First sequence number stored in a segment header.
pub(crate) fn segment_first_seq(bytes: &[u8]) -> u64 {
    let at = segment_header_len(bytes) - 4 - 32 - 8 - 8;
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// A checkpoint log file taken apart: `header | epoch key frame | checkpoint frames | [footer]`,
/// with checkpoint payload = `body_len u32 | body text | signature [64]`.
#[derive(Debug, Clone)]
pub(crate) struct LogFile {
    pub(crate) first_seq: u64,
    pub(crate) epoch: u32,
    /// Payload of the epoch key frame (`EpochKeyProof::encode`).
    pub(crate) epoch_key: Vec<u8>,
    /// Body text and signature of each checkpoint, in order.
    pub(crate) checkpoints: Vec<(String, [u8; 64])>,
    /// Whether the file ends with a footer.
    pub(crate) sealed: bool,
}

impl LogFile {
    pub(crate) fn parse(bytes: &[u8]) -> LogFile {
        let first_seq = u64::from_le_bytes(bytes[10..18].try_into().expect("8 bytes"));
        let epoch = u32::from_le_bytes(bytes[18..22].try_into().expect("4 bytes"));
        let mut log = LogFile {
            first_seq,
            epoch,
            epoch_key: Vec::new(),
            checkpoints: Vec::new(),
            sealed: false,
        };
        for frame in frames(bytes, CHECKPOINT_HEADER_LEN) {
            let payload = &bytes[frame.payload_start()..frame.payload_end()];
            match frame.tag {
                TAG_EPOCH_KEY => log.epoch_key = payload.to_vec(),
                TAG_CHECKPOINT => {
                    let body_len = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes"));
                    let (body, signature) = payload[4..].split_at(body_len as usize);
                    let text = String::from_utf8(body.to_vec()).expect("UTF-8 body");
                    log.checkpoints
                        .push((text, signature.try_into().expect("64-byte signature")));
                }
                TAG_FOOTER => log.sealed = true,
                other => panic!("unexpected frame tag {other:#x}"),
            }
        }
        log
    }

    /// Frame offsets of the checkpoint frames of `bytes`, in order.
    pub(crate) fn checkpoint_offsets(bytes: &[u8]) -> Vec<usize> {
        frames(bytes, CHECKPOINT_HEADER_LEN)
            .into_iter()
            .filter(|frame| frame.tag == TAG_CHECKPOINT)
            .map(|frame| frame.offset)
            .collect()
    }

    /// The file bytes, with every checksum and the footer digest recomputed.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = b"SLOGCKP\0".to_vec();
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&self.first_seq.to_le_bytes());
        bytes.extend_from_slice(&self.epoch.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend(encode_frame(TAG_EPOCH_KEY, &self.epoch_key));
        for (text, signature) in &self.checkpoints {
            let mut payload = (text.len() as u32).to_le_bytes().to_vec();
            payload.extend_from_slice(text.as_bytes());
            payload.extend_from_slice(signature);
            bytes.extend(encode_frame(TAG_CHECKPOINT, &payload));
        }
        if self.sealed {
            let mut footer = (self.checkpoints.len() as u64).to_le_bytes().to_vec();
            footer.extend_from_slice(&sha2::Sha256::digest(&bytes));
            bytes.extend(encode_frame(TAG_FOOTER, &footer));
        }
        bytes
    }
}

/// Rolls `group` back to its first `size` records the way an intruder would: later segments
/// are deleted and the segment holding record `size` is cut at that block boundary.
pub(crate) fn truncate_group(store: &Store, group: &GroupName, size: u64) {
    for path in store.segments(group) {
        let bytes = fs::read(&path).expect("read segment");
        let first = segment_first_seq(&bytes);
        if first >= size {
            fs::remove_file(&path).expect("delete segment");
            continue;
        }
        let Some(cut) = blocks(&bytes)
            .into_iter()
            .find(|block| block.first_seq == size)
        else {
            continue;
        };
        fs::write(&path, &bytes[..cut.frame.offset]).expect("truncate segment");
    }
}
