//! Offline verification of a data directory's `journal/` with only the public verification key.
//!
//! Every byte is checked: headers and frames by checksum and strict parsing, content by
//! recomputing each group's Merkle tree from the stored (encrypted) bytes and comparing it with
//! every signed checkpoint, checkpoints by signature, epoch and hash chain, deletions by signed
//! tombstones. A finding names the group, the file and the record range.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use seclog_model::{GroupName, Timestamp};

use crate::checkpoint::{
    self, CheckpointBody, LOG_HEADER_LEN, SignedCheckpoint, TAG_CHECKPOINT, TAG_EPOCH_KEY,
};
use crate::codec::ByteReader;
use crate::error::Result;
use crate::frame::{self, FrameEnd, TAG_FOOTER};
use crate::layout::{Layout, display_relative};
use crate::merkle::{self, Frontier, Hash};
use crate::segment::{self, BlockView, Footer, SegmentHeader, TAG_BLOCK};
use crate::signer::{EpochKeyProof, VerificationKey};
use crate::store::{list_group_files, list_groups};
use crate::tombstone::Tombstone;

/// One problem found by `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The group concerned, if any.
    pub group: Option<String>,
    /// The file concerned, relative to the data directory.
    pub file: String,
    /// Records concerned, `[first, end)`.
    pub records: Option<(u64, u64)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(group) = &self.group {
            write!(formatter, "group {group}: ")?;
        }
        write!(formatter, "{}", self.file)?;
        if let Some((first, end)) = self.records {
            if end > first + 1 {
                write!(formatter, ": records {first}..{}", end - 1)?;
            } else {
                write!(formatter, ": record {first}")?;
            }
        }
        write!(formatter, ": {}", self.message)
    }
}

/// Per-group result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Group name.
    pub group: GroupName,
    /// First retained record (records before it expired by policy).
    pub retained_from: u64,
    /// Records present up to.
    pub size: u64,
    /// Records covered by the newest checkpoint.
    pub sealed: u64,
}

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Problems; empty means intact.
    pub findings: Vec<Finding>,
    /// Facts worth telling that are not problems (expiry by policy).
    pub notes: Vec<String>,
    /// Groups checked.
    pub groups: Vec<GroupSummary>,
    /// Newest valid checkpoint.
    pub latest: Option<CheckpointBody>,
    /// Number of checkpoints checked.
    pub checkpoints: u64,
    /// Bytes read.
    pub bytes: u64,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_intact(&self) -> bool {
        self.findings.is_empty()
    }
}

/// A silence between checkpoints longer than this is told (heartbeats come every minute at most).
const SILENCE_NOTE_NANOS: i64 = 5 * 60 * 1_000_000_000;

/// Records hashed beyond the newest checkpoint before `verify` gives up on a group's tail.
const UNSEALED_LEAF_LIMIT: u64 = 1 << 22;

const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// How far in the future (by the verifier's clock) a signed time may be.
const CLOCK_SLACK_NANOS: i64 = 300 * 1_000_000_000;

struct Verifier<'a> {
    layout: &'a Layout,
    key: &'a VerificationKey,
    report: VerifyReport,
    latest_allowed: Timestamp,
}

struct Expectation {
    size: u64,
    root: Hash,
    checkpoint: u64,
    time: Timestamp,
    source: String,
}

impl Verifier<'_> {
    fn find(
        &mut self,
        group: Option<&str>,
        path: &Path,
        records: Option<(u64, u64)>,
        message: impl Into<String>,
    ) {
        self.report.findings.push(Finding {
            group: group.map(str::to_string),
            file: display_relative(self.layout, path),
            records,
            message: message.into(),
        });
    }

    fn read(&mut self, path: &Path) -> Option<Vec<u8>> {
        match fs::read(path) {
            Ok(bytes) => {
                self.report.bytes += bytes.len() as u64;
                Some(bytes)
            }
            Err(error) => {
                self.find(None, path, None, format!("cannot read: {error}"));
                None
            }
        }
    }
}

/// Verifies a data directory against `key`; `pinned` is a checkpoint held outside the host.
pub fn verify(
    layout: &Layout,
    key: &VerificationKey,
    pinned: Option<&SignedCheckpoint>,
) -> Result<VerifyReport> {
    verify_at(layout, key, pinned, Timestamp::now())
}

/// [`verify`] with the verifier's clock given: anything signed more than five minutes after
/// `now` is a finding (whoever holds today's key can date signatures in the future, so a
/// forward-dated tombstone or checkpoint must not pass).
pub fn verify_at(
    layout: &Layout,
    key: &VerificationKey,
    pinned: Option<&SignedCheckpoint>,
    now: Timestamp,
) -> Result<VerifyReport> {
    let mut verifier = Verifier {
        layout,
        key,
        report: VerifyReport::default(),
        latest_allowed: Timestamp::from_unix_nanos(
            now.unix_nanos().saturating_add(CLOCK_SLACK_NANOS),
        ),
    };
    let journal = layout.journal_dir();
    match fs::read_dir(&journal) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name != "groups" && name != "checkpoints" {
                    verifier.find(None, &entry.path(), None, "unexpected file in the journal");
                }
            }
        }
        Err(error) => verifier.find(
            None,
            &journal,
            None,
            format!("cannot read the journal: {error}"),
        ),
    }
    let checkpoints = verify_checkpoints(&mut verifier)?;
    let mut expectations: BTreeMap<GroupName, Vec<Expectation>> = BTreeMap::new();
    for (file, signed) in &checkpoints {
        add_expectations(&mut expectations, &signed.body, file);
    }
    if let Some(pinned) = pinned {
        check_pinned(&mut verifier, pinned, &checkpoints, &mut expectations);
    }
    let latest = checkpoints.last().map(|(_, signed)| signed.body.clone());
    let (groups, unexpected) = list_groups(layout)?;
    for path in unexpected {
        verifier.find(None, &path, None, "unexpected entry in journal/groups");
    }
    let mut seen = Vec::new();
    for (name, dir) in groups {
        let group_expectations = expectations.remove(&name).unwrap_or_default();
        let sealed = latest
            .as_ref()
            .and_then(|body| body.groups.get(&name))
            .map(|head| head.size);
        verify_group(&mut verifier, &name, &dir, group_expectations, sealed)?;
        seen.push(name);
    }
    for (name, list) in expectations {
        if let Some(last) = list.iter().max_by_key(|expectation| expectation.size) {
            let dir = layout.group_dir(&name);
            verifier.find(
                Some(name.as_str()),
                &dir,
                Some((0, last.size)),
                format!(
                    "group directory is missing; signed checkpoint #{} covers {} records",
                    last.checkpoint, last.size
                ),
            );
        }
    }
    verifier.report.latest = latest;
    verifier.report.checkpoints = checkpoints.len() as u64;
    Ok(verifier.report)
}

fn verify_checkpoints(verifier: &mut Verifier<'_>) -> Result<Vec<(String, SignedCheckpoint)>> {
    let dir = verifier.layout.checkpoints_dir();
    let mut valid: Vec<(String, SignedCheckpoint)> = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if crate::layout::parse_numbered(&name.to_string_lossy(), "ckpt").is_none() {
                verifier.find(
                    None,
                    &entry.path(),
                    None,
                    "unexpected file among checkpoint logs",
                );
            }
        }
    }
    let logs = checkpoint::list_logs(&dir)?;
    if logs.is_empty() {
        verifier.find(
            None,
            &dir,
            None,
            "no checkpoint log: nothing was ever sealed, or it was removed",
        );
    }
    let mut next_seq = 0u64;
    let mut prev: Option<SignedCheckpoint> = None;
    let last_index = logs.len().saturating_sub(1);
    for (index, (path, name_seq)) in logs.iter().enumerate() {
        let Some(bytes) = verifier.read(path) else {
            continue;
        };
        let relative = display_relative(verifier.layout, path);
        let header = match checkpoint::parse_header(&bytes) {
            Ok(header) => header,
            Err(reason) => {
                verifier.find(None, path, None, reason);
                continue;
            }
        };
        if header.first_seq != *name_seq {
            verifier.find(
                None,
                path,
                None,
                format!(
                    "file name says checkpoint #{name_seq}, header says #{}",
                    header.first_seq
                ),
            );
        }
        let mut epoch_key: Option<EpochKeyProof> = None;
        let mut count = 0u64;
        let mut footer_seen = false;
        let mut frames = frame::frames(&bytes, LOG_HEADER_LEN);
        for frame in frames.by_ref() {
            if footer_seen {
                verifier.find(
                    None,
                    path,
                    None,
                    format!("data after the footer at byte {}", frame.offset),
                );
                break;
            }
            match frame.tag {
                TAG_EPOCH_KEY => {
                    let mut reader = ByteReader::new(frame.payload);
                    match EpochKeyProof::decode(&mut reader) {
                        Ok(proof)
                            if reader.remaining() == 0
                                && proof.epoch == header.epoch
                                && epoch_key.is_none() =>
                        {
                            if let Err(reason) = verifier.key.check_epoch_key(&proof) {
                                verifier.find(None, path, None, reason);
                            }
                            epoch_key = Some(proof);
                        }
                        _ => verifier.find(
                            None,
                            path,
                            None,
                            format!(
                                "malformed or misplaced epoch key record at byte {}",
                                frame.offset
                            ),
                        ),
                    }
                }
                TAG_CHECKPOINT => {
                    count += 1;
                    let Some(key) = epoch_key.clone() else {
                        verifier.find(None, path, None, "checkpoint before the epoch key record");
                        continue;
                    };
                    let (body, signature) =
                        match checkpoint::decode_checkpoint_payload(frame.payload) {
                            Ok(decoded) => decoded,
                            Err(reason) => {
                                verifier.find(
                                    None,
                                    path,
                                    None,
                                    format!("checkpoint at byte {}: {reason}", frame.offset),
                                );
                                continue;
                            }
                        };
                    let signed = SignedCheckpoint {
                        body,
                        epoch_key: key,
                        signature,
                    };
                    let seq = signed.body.seq;
                    if let Err(reason) = signed.verify(verifier.key) {
                        verifier.find(None, path, None, format!("checkpoint #{seq}: {reason}"));
                        continue;
                    }
                    if signed.body.time > verifier.latest_allowed {
                        verifier.find(
                            None,
                            path,
                            None,
                            format!("checkpoint #{seq} is dated {}, in the future of this verifier's clock", signed.body.time),
                        );
                    }
                    if seq != next_seq {
                        verifier.find(None, path, None, format!("checkpoint #{seq} found where #{next_seq} was expected (missing or reordered)"));
                    }
                    if seq == 0 && (signed.body.epoch != 0 || !signed.body.groups.is_empty()) {
                        // `init` signs an empty #0 in epoch 0; a chain started later (by a key
                        // holder who replaced the whole store) cannot.
                        verifier.find(
                            None,
                            path,
                            None,
                            format!("checkpoint #0 is not the genesis checkpoint (signed in epoch {}): the history was replaced", signed.body.epoch),
                        );
                    }
                    let expected_prev = prev.as_ref().map(SignedCheckpoint::digest);
                    if signed.body.prev != expected_prev {
                        verifier.find(
                            None,
                            path,
                            None,
                            format!("checkpoint #{seq} does not chain to the previous checkpoint"),
                        );
                    }
                    if let Some(previous) = &prev {
                        let gap = signed
                            .body
                            .time
                            .unix_nanos()
                            .saturating_sub(previous.body.time.unix_nanos());
                        if gap > SILENCE_NOTE_NANOS && previous.body.seq > 0 {
                            verifier.report.notes.push(format!(
                                "no checkpoint between #{} ({}) and #{seq} ({}): seclog was not running, or checkpoints were removed",
                                previous.body.seq, previous.body.time, signed.body.time
                            ));
                        }
                        if signed.body.time < previous.body.time {
                            verifier.find(
                                None,
                                path,
                                None,
                                format!(
                                    "checkpoint #{seq} is dated before checkpoint #{}",
                                    previous.body.seq
                                ),
                            );
                        }
                        for (group, head) in &previous.body.groups {
                            if signed
                                .body
                                .groups
                                .get(group)
                                .is_none_or(|now| now.size < head.size)
                            {
                                verifier.find(
                                    Some(group.as_str()),
                                    path,
                                    None,
                                    format!("checkpoint #{seq} shrinks or drops the group"),
                                );
                            }
                        }
                    }
                    next_seq = seq + 1;
                    prev = Some(signed.clone());
                    valid.push((relative.clone(), signed));
                }
                TAG_FOOTER => {
                    footer_seen = true;
                    let expected = checkpoint::encode_footer_payload(
                        count,
                        &crate::crypto::sha256(&[bytes.get(..frame.offset).unwrap_or_default()]),
                    );
                    if frame.payload != expected.as_slice() {
                        verifier.find(
                            None,
                            path,
                            None,
                            "footer does not match the file's contents",
                        );
                    }
                }
                other => verifier.find(
                    None,
                    path,
                    None,
                    format!("unknown frame tag {other:#x} at byte {}", frame.offset),
                ),
            }
        }
        match frames.end() {
            FrameEnd::Clean => {}
            FrameEnd::Torn { offset, reason } | FrameEnd::Corrupt { offset, reason } => {
                verifier.find(
                    None,
                    path,
                    None,
                    format!("damaged at byte {offset}: {reason}"),
                );
            }
        }
        if epoch_key.is_none() {
            verifier.find(None, path, None, "no epoch key record");
        }
        if index < last_index && !footer_seen {
            verifier.find(
                None,
                path,
                None,
                "checkpoint log is not sealed but a later one exists",
            );
        }
    }
    Ok(valid)
}

fn check_pinned(
    verifier: &mut Verifier<'_>,
    pinned: &SignedCheckpoint,
    checkpoints: &[(String, SignedCheckpoint)],
    expectations: &mut BTreeMap<GroupName, Vec<Expectation>>,
) {
    let dir = verifier.layout.checkpoints_dir();
    if let Err(reason) = pinned.verify(verifier.key) {
        verifier.find(
            None,
            &dir,
            None,
            format!(
                "pinned checkpoint #{} is not valid: {reason}",
                pinned.body.seq
            ),
        );
        return;
    }
    match checkpoints
        .iter()
        .find(|(_, signed)| signed.body.seq == pinned.body.seq)
    {
        Some((_, stored)) if stored == pinned => {}
        Some((file, _)) => {
            let path = verifier.layout.root().join(file);
            verifier.find(
                None,
                &path,
                None,
                format!(
                    "checkpoint #{} differs from the pinned one (forked history)",
                    pinned.body.seq
                ),
            );
        }
        None => verifier.find(
            None,
            &dir,
            None,
            format!(
                "pinned checkpoint #{} is missing: the checkpoint log was truncated or rolled back",
                pinned.body.seq
            ),
        ),
    }
    add_expectations(expectations, &pinned.body, "pinned checkpoint");
}

/// Records what `body` says each group's tree must look like.
fn add_expectations(
    expectations: &mut BTreeMap<GroupName, Vec<Expectation>>,
    body: &CheckpointBody,
    source: &str,
) {
    for (name, head) in &body.groups {
        expectations
            .entry(name.clone())
            .or_default()
            .push(Expectation {
                size: head.size,
                root: head.root,
                checkpoint: body.seq,
                time: body.time,
                source: source.to_string(),
            });
    }
}

struct SegmentSpan {
    first: u64,
    end: u64,
    path: PathBuf,
}

fn verify_group(
    verifier: &mut Verifier<'_>,
    name: &GroupName,
    dir: &Path,
    mut expectations: Vec<Expectation>,
    sealed: Option<u64>,
) -> Result<()> {
    let group = Some(name.as_str());
    let files = list_group_files(dir)?;
    for path in &files.unexpected {
        verifier.find(group, path, None, "unexpected file in the group directory");
    }
    // Tombstones: a contiguous signed prefix of expired records.
    let mut base = Frontier::new();
    let mut expected_prev: Option<Hash> = Some([0; 32]);
    let mut retained_from = 0u64;
    for (name_seq, path) in &files.tombstones {
        let Some(bytes) = verifier.read(path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        match Tombstone::parse_and_verify(&text, verifier.key) {
            Ok(tombstone) => {
                if tombstone.deleted_at > verifier.latest_allowed {
                    verifier.find(
                        group,
                        path,
                        Some((tombstone.first_seq, tombstone.next_seq)),
                        format!(
                            "tombstone is dated {}, in the future of this verifier's clock",
                            tombstone.deleted_at
                        ),
                    );
                }
                if tombstone.group != name.as_str()
                    || tombstone.first_seq != *name_seq
                    || tombstone.first_seq != retained_from
                {
                    verifier.find(
                        group,
                        path,
                        Some((tombstone.first_seq, tombstone.next_seq)),
                        "tombstone does not continue the expired range",
                    );
                }
                // The retention period runs from the signed checkpoint that first covered the
                // deleted records: a time a later key holder cannot move.
                let first_cover = expectations
                    .iter()
                    .filter(|expectation| expectation.size >= tombstone.next_seq)
                    .min_by_key(|expectation| expectation.checkpoint);
                match first_cover {
                    None => verifier.find(
                        group,
                        path,
                        Some((tombstone.first_seq, tombstone.next_seq)),
                        "tombstone deletes records that no signed checkpoint ever covered",
                    ),
                    Some(cover) => {
                        let expiry = cover.time.unix_nanos().saturating_add(
                            i64::from(tombstone.retention_days).saturating_mul(NANOS_PER_DAY),
                        );
                        if tombstone.retention_days == 0
                            || expiry > tombstone.deleted_at.unix_nanos()
                        {
                            verifier.find(
                                group,
                                path,
                                Some((tombstone.first_seq, tombstone.next_seq)),
                                format!(
                                    "tombstone deletes records sealed at {} (checkpoint #{}) before their {}-day retention ended",
                                    cover.time, cover.checkpoint, tombstone.retention_days
                                ),
                            );
                        }
                    }
                }
                match Frontier::from_parts(tombstone.next_seq, tombstone.frontier.clone()) {
                    Ok(frontier) => base = frontier,
                    Err(error) => {
                        verifier.find(group, path, None, format!("tombstone frontier: {error}"))
                    }
                }
                verifier.report.notes.push(format!(
                    "group {name}: records {}..{} expired by policy ({} days), deleted {}",
                    tombstone.first_seq,
                    tombstone.next_seq.saturating_sub(1),
                    tombstone.retention_days,
                    tombstone.deleted_at
                ));
                retained_from = tombstone.next_seq;
                expected_prev = Some(tombstone.digest);
            }
            Err(reason) => verifier.find(group, path, None, format!("invalid tombstone: {reason}")),
        }
    }
    expectations.sort_by_key(|expectation| expectation.size);
    let expired = expectations
        .iter()
        .filter(|expectation| expectation.size < retained_from)
        .count();
    if expired > 0 {
        verifier.report.notes.push(format!(
            "group {name}: {expired} checkpoint entries cover only expired records"
        ));
    }
    expectations.retain(|expectation| expectation.size >= retained_from);
    let mut pending = expectations.iter().peekable();
    let mut frontier = base;
    let mut matched_up_to = retained_from;
    let mut mismatch_reported = false;
    let mut spans: Vec<SegmentSpan> = Vec::new();
    let check_at =
        |frontier: &Frontier,
         pending: &mut std::iter::Peekable<std::slice::Iter<'_, Expectation>>| {
            let mut results = Vec::new();
            while let Some(expectation) = pending.peek() {
                if expectation.size != frontier.size() {
                    break;
                }
                results.push((
                    expectation.checkpoint,
                    expectation.source.clone(),
                    expectation.root == frontier.root(),
                ));
                pending.next();
            }
            results
        };
    // Expectations at exactly the retained start are checked against the base frontier.
    for (checkpoint, source, ok) in check_at(&frontier, &mut pending) {
        if !ok && !mismatch_reported {
            mismatch_reported = true;
            verifier.find(
                group,
                dir,
                Some((retained_from, retained_from)),
                format!("expired prefix does not match checkpoint #{checkpoint} ({source})"),
            );
        }
    }
    let segment_count = files.segments.len();
    let mut broken = false;
    let cuts: Vec<u64> = expectations
        .iter()
        .map(|expectation| expectation.size)
        .collect();
    let cuts = cuts.as_slice();
    // Leaves are hashed only this far beyond the newest checkpoint: forged block counts must not
    // make the verifier do unbounded work (anything beyond is a finding anyway).
    let leaf_limit = cuts
        .last()
        .copied()
        .unwrap_or(retained_from)
        .saturating_add(UNSEALED_LEAF_LIMIT);
    let workers = std::thread::available_parallelism()
        .map_or(1, |count| count.get())
        .clamp(1, 4);
    // Segments are scanned (read, parsed, hashed) in parallel a few at a time; what depends on
    // the previous segment (sequence numbers, chaining, the tree) is then checked in order.
    for (chunk_index, chunk) in files.segments.chunks(workers).enumerate() {
        if broken {
            break;
        }
        let scans: Vec<SegmentScan> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(_, path)| scope.spawn(move || scan_segment(path, cuts, leaf_limit)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| SegmentScan::failed("verifier thread panicked"))
                })
                .collect()
        });
        for (offset_in_chunk, ((name_seq, path), scan)) in chunk.iter().zip(scans).enumerate() {
            if broken {
                break;
            }
            let index = chunk_index * workers + offset_in_chunk;
            verifier.report.bytes += scan.bytes_len;
            let first = frontier.size();
            let header = match scan.header {
                Ok(header) => header,
                Err(reason) => {
                    verifier.find(group, path, Some((first, first + 1)), reason);
                    broken = true;
                    continue;
                }
            };
            if header.group != name.as_str() {
                verifier.find(
                    group,
                    path,
                    None,
                    format!("segment belongs to group {:?}", header.group),
                );
            }
            if header.first_seq != *name_seq || header.first_seq != first {
                verifier.find(
                    group,
                    path,
                    Some((first, first + 1)),
                    format!(
                        "segment starts at record {} (file name {name_seq}) but record {first} comes next: missing, moved or reordered segment",
                        header.first_seq
                    ),
                );
                broken = true;
                continue;
            }
            if expected_prev.is_some_and(|prev| prev != header.prev_digest) {
                verifier.find(
                    group,
                    path,
                    Some((first, first + 1)),
                    "segment does not chain to the previous segment (missing, replaced or reordered)",
                );
            }
            let mut footer_seen = false;
            let mut next_in_segment = first;
            let mut pieces = scan.pieces.iter().peekable();
            for item in &scan.items {
                match item {
                    ScanItem::AfterFooter { offset } => {
                        verifier.find(
                            group,
                            path,
                            None,
                            format!("data after the footer at byte {offset}"),
                        );
                    }
                    ScanItem::BadBlock { offset, reason } => {
                        verifier.find(
                            group,
                            path,
                            Some((frontier.size(), frontier.size() + 1)),
                            format!("block at byte {offset}: {reason}"),
                        );
                        broken = true;
                    }
                    ScanItem::UnknownTag { offset, tag } => {
                        verifier.find(
                            group,
                            path,
                            None,
                            format!("unknown frame tag {tag:#x} at byte {offset}"),
                        );
                    }
                    ScanItem::Block {
                        offset,
                        first_seq,
                        end_seq,
                    } => {
                        if *first_seq != next_in_segment {
                            verifier.find(
                                group,
                                path,
                                Some((*first_seq, *end_seq)),
                                format!(
                                    "block at byte {offset} holds records {first_seq}.. where {next_in_segment} was expected (reordered or duplicated)"
                                ),
                            );
                            broken = true;
                            break;
                        }
                        next_in_segment = *end_seq;
                        // Pieces are aligned subtrees cut at every checkpoint size; push those
                        // this block completes, checking each checkpoint as its size is reached.
                        while let Some(piece) =
                            pieces.peek().filter(|piece| piece.end <= next_in_segment)
                        {
                            if frontier.push_subtree(piece.height, piece.root).is_err() {
                                verifier.find(
                                    group,
                                    path,
                                    None,
                                    "internal error: misaligned tree piece",
                                );
                                broken = true;
                                break;
                            }
                            pieces.next();
                            for (checkpoint, source, ok) in check_at(&frontier, &mut pending) {
                                if ok {
                                    if !mismatch_reported {
                                        matched_up_to = frontier.size();
                                    }
                                } else if !mismatch_reported {
                                    mismatch_reported = true;
                                    spans.push(SegmentSpan {
                                        first,
                                        end: u64::MAX,
                                        path: path.clone(),
                                    });
                                    let bad_files = spans
                                        .iter()
                                        .filter(|span| {
                                            span.end > matched_up_to && span.first < frontier.size()
                                        })
                                        .map(|span| display_relative(verifier.layout, &span.path))
                                        .collect::<Vec<_>>();
                                    let shown = PathBuf::from(bad_files.join(", "));
                                    verifier.find(
                                        group,
                                        &verifier.layout.root().join(&shown),
                                        Some((matched_up_to, frontier.size())),
                                        format!(
                                            "stored records do not match signed checkpoint #{checkpoint} ({source}): altered, replaced or reordered"
                                        ),
                                    );
                                    spans.pop();
                                }
                            }
                        }
                    }
                    ScanItem::Footer { footer } => {
                        footer_seen = true;
                        let expected = Footer {
                            next_seq: frontier.size(),
                            frontier: frontier.nodes().to_vec(),
                            segment_digest: segment::segment_digest(
                                &scan.header_digest,
                                frontier.size(),
                                &frontier.root(),
                            ),
                        };
                        match footer {
                            Ok(footer) if *footer == expected => {
                                expected_prev = Some(footer.segment_digest)
                            }
                            Ok(_) => {
                                verifier.find(
                                    group,
                                    path,
                                    Some((first, frontier.size())),
                                    "footer does not match the segment's contents",
                                );
                                expected_prev = None;
                            }
                            Err(reason) => {
                                verifier.find(group, path, None, format!("footer: {reason}"));
                                expected_prev = None;
                            }
                        }
                    }
                }
                if broken {
                    break;
                }
            }
            if !broken {
                match &scan.end {
                    FrameEnd::Clean => {}
                    FrameEnd::Torn { offset, reason } | FrameEnd::Corrupt { offset, reason } => {
                        verifier.find(
                            group,
                            path,
                            Some((frontier.size(), frontier.size() + 1)),
                            format!("damaged at byte {offset}: {reason}"),
                        );
                        broken = true;
                    }
                }
            }
            if !footer_seen {
                expected_prev = None;
                if index + 1 < segment_count {
                    verifier.find(
                        group,
                        path,
                        None,
                        "segment is not sealed but a later segment exists",
                    );
                }
            }
            spans.push(SegmentSpan {
                first,
                end: frontier.size(),
                path: path.clone(),
            });
        }
    }
    let size = frontier.size();
    if !broken
        && let Some(beyond) = expectations
            .iter()
            .filter(|expectation| expectation.size > size)
            .max_by_key(|expectation| expectation.size)
    {
        verifier.find(
            group,
            dir,
            Some((size, beyond.size)),
            format!(
                "missing: checkpoint #{} ({}) covers {} records but only {size} are stored (truncated or deleted)",
                beyond.checkpoint, beyond.source, beyond.size
            ),
        );
    }
    match sealed {
        Some(sealed) if size > sealed => {
            let path = spans
                .last()
                .map_or_else(|| dir.to_path_buf(), |span| span.path.clone());
            verifier.find(
                group,
                &path,
                Some((sealed, size)),
                "records not covered by any signed checkpoint (unsealed or added)",
            );
        }
        None if size > retained_from || !files.segments.is_empty() => {
            verifier.find(
                group,
                dir,
                Some((retained_from, size.max(retained_from + 1))),
                "group is not in any signed checkpoint",
            );
        }
        _ => {}
    }
    verifier.report.groups.push(GroupSummary {
        group: name.clone(),
        retained_from,
        size,
        sealed: sealed.unwrap_or(0),
    });
    Ok(())
}

/// Time of the newest checkpoint, for summaries.
pub fn latest_time(report: &VerifyReport) -> Option<Timestamp> {
    report.latest.as_ref().map(|body| body.time)
}

/// What a segment file holds, found without reference to its neighbours (so it can run in parallel).
struct SegmentScan {
    bytes_len: u64,
    header_digest: Hash,
    header: Result<SegmentHeader, String>,
    items: Vec<ScanItem>,
    /// The segment's tree leaves as aligned subtrees, cut at every checkpoint size.
    pieces: Vec<TreePiece>,
    end: FrameEnd,
}

/// A perfect subtree of `2^height` leaves ending at leaf `end`.
struct TreePiece {
    end: u64,
    height: u32,
    root: Hash,
}

/// Cuts `leaves` (starting at leaf `first`) into aligned perfect subtrees from the left, so that
/// every size in `cuts` falls on a piece boundary, and hashes each piece.
fn tree_pieces(first: u64, leaves: &[Hash], cuts: &[u64]) -> Vec<TreePiece> {
    let end = first + leaves.len() as u64;
    let mut pieces = Vec::new();
    let mut position = first;
    let mut next_cut = cuts.iter().copied().filter(|cut| *cut > first).peekable();
    while position < end {
        while next_cut.peek().is_some_and(|cut| *cut <= position) {
            next_cut.next();
        }
        let limit = next_cut.peek().copied().unwrap_or(end).min(end);
        let mut height = 0u32;
        while height < 62 {
            let wider = 1u64 << (height + 1);
            if !position.is_multiple_of(wider) || position + wider > limit {
                break;
            }
            height += 1;
        }
        let start = (position - first) as usize;
        let slice = leaves
            .get(start..start + (1usize << height))
            .unwrap_or_default();
        position += 1u64 << height;
        pieces.push(TreePiece {
            end: position,
            height,
            root: merkle::root_of(slice),
        });
    }
    pieces
}

enum ScanItem {
    Block {
        offset: usize,
        first_seq: u64,
        end_seq: u64,
    },
    BadBlock {
        offset: usize,
        reason: String,
    },
    Footer {
        footer: Result<Footer, String>,
    },
    AfterFooter {
        offset: usize,
    },
    UnknownTag {
        offset: usize,
        tag: u8,
    },
}

impl SegmentScan {
    fn failed(reason: &str) -> Self {
        SegmentScan {
            bytes_len: 0,
            header_digest: [0; 32],
            header: Err(reason.to_string()),
            items: Vec::new(),
            pieces: Vec::new(),
            end: FrameEnd::Clean,
        }
    }
}

fn scan_segment(path: &Path, cuts: &[u64], leaf_limit: u64) -> SegmentScan {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => return SegmentScan::failed(&format!("cannot read: {error}")),
    };
    let mut scan = SegmentScan::failed("");
    scan.bytes_len = bytes.len() as u64;
    let (header, header_len) = match SegmentHeader::parse(&bytes) {
        Ok(parsed) => parsed,
        Err(reason) => {
            scan.header = Err(reason);
            return scan;
        }
    };
    let first = header.first_seq;
    scan.header = Ok(header);
    let header_digest = segment::header_digest(bytes.get(..header_len).unwrap_or_default());
    scan.header_digest = header_digest;
    // Leaves are kept only while blocks follow each other; the ordered check reports the break.
    let mut leaves = Vec::new();
    let mut contiguous = true;
    let mut footer_seen = false;
    let mut frames = frame::frames(&bytes, header_len);
    for frame in frames.by_ref() {
        if footer_seen {
            scan.items.push(ScanItem::AfterFooter {
                offset: frame.offset,
            });
            break;
        }
        match frame.tag {
            TAG_BLOCK => match BlockView::parse(frame.payload) {
                Ok(block) if block.end_seq() > leaf_limit => {
                    scan.items.push(ScanItem::BadBlock {
                        offset: frame.offset,
                        reason: format!(
                            "records {}..{} lie more than {UNSEALED_LEAF_LIMIT} records beyond every checkpoint; not verified",
                            block.first_seq,
                            block.end_seq()
                        ),
                    });
                    break;
                }
                Ok(block) => {
                    contiguous &= block.first_seq == first + leaves.len() as u64;
                    if contiguous {
                        block.leaves(&header_digest, &mut leaves);
                    }
                    scan.items.push(ScanItem::Block {
                        offset: frame.offset,
                        first_seq: block.first_seq,
                        end_seq: block.end_seq(),
                    });
                }
                Err(reason) => {
                    scan.items.push(ScanItem::BadBlock {
                        offset: frame.offset,
                        reason,
                    });
                    break;
                }
            },
            TAG_FOOTER => {
                footer_seen = true;
                scan.items.push(ScanItem::Footer {
                    footer: Footer::parse(frame.payload),
                });
            }
            tag => scan.items.push(ScanItem::UnknownTag {
                offset: frame.offset,
                tag,
            }),
        }
    }
    scan.end = frames.end();
    scan.pieces = tree_pieces(first, &leaves, cuts);
    scan
}
