//! Signed checkpoints and the checkpoint log.
//!
//! A checkpoint commits to every group's Merkle tree at one instant:
//! ```text
//! seclog checkpoint v1
//! seq 42
//! time 2026-11-27T15:41:33.123456789Z
//! epoch 7
//! prev <hex SHA-256 of the previous checkpoint's digest input> | none
//! group <name> <size> <hex root> <retention days | ->
//! ```
//! The body is signed with the forward-secure key of its epoch. Checkpoints form a hash chain
//! (`prev`), so removing or reordering one is visible. The log keeps one file per epoch:
//! `journal/checkpoints/<first checkpoint seq>.ckpt`, starting with the epoch's public key record.
//! Log file header: `"SLOGCKP\0" | version u16 | first_seq u64 | epoch u32 | crc32`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use seclog_model::{GroupName, Timestamp};
use sha2::{Digest, Sha256};

use crate::codec::{ByteReader, crc32};
use crate::crypto::sha256;
use crate::error::{JournalError, Result};
use crate::frame::{self, FrameEnd, TAG_FOOTER, encode_frame};
use crate::fsutil;
use crate::layout::{Layout, parse_numbered};
use crate::merkle::Hash;
use crate::signer::{EpochKeyProof, Signer, VerificationKey};
use crate::textform::{FieldLines, parse_hash};

pub(crate) const CHECKPOINT_MAGIC: &[u8; 8] = b"SLOGCKP\0";
pub(crate) const FORMAT_VERSION: u16 = 1;
pub(crate) const TAG_EPOCH_KEY: u8 = 0xE1;
pub(crate) const TAG_CHECKPOINT: u8 = 0xC1;
const HEADER_LEN: usize = 8 + 2 + 8 + 4 + 4;

/// One group's tree head in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHead {
    /// Number of records ever appended to the group.
    pub size: u64,
    /// Merkle root over them.
    pub root: Hash,
    /// The group's retention policy in days when this was signed (`None`: keep forever).
    pub retention_days: Option<u32>,
}

/// The signed content of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointBody {
    /// Position in the checkpoint chain, from 0.
    pub seq: u64,
    /// When it was signed.
    pub time: Timestamp,
    /// Signing epoch.
    pub epoch: u32,
    /// Digest of the previous checkpoint.
    pub prev: Option<Hash>,
    /// Tree heads by group.
    pub groups: BTreeMap<GroupName, GroupHead>,
}

impl CheckpointBody {
    /// Canonical text form (the signed bytes).
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "seclog checkpoint v1\nseq {}\ntime {}\nepoch {}\nprev {}\n",
            self.seq,
            self.time.to_rfc3339(),
            self.epoch,
            self.prev.map_or_else(|| "none".to_string(), hex::encode)
        );
        for (name, head) in &self.groups {
            let retention = head
                .retention_days
                .map_or_else(|| "-".to_string(), |days| days.to_string());
            text.push_str(&format!(
                "group {} {} {} {}\n",
                name,
                head.size,
                hex::encode(head.root),
                retention
            ));
        }
        text
    }

    /// Parses the canonical form and rejects anything non-canonical.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut fields = FieldLines::new(text, "seclog checkpoint v1")?;
        let mut field = |name: &str| fields.field(name).map(str::to_string);
        let seq = field("seq")?.parse().map_err(|_| "invalid seq")?;
        let time = Timestamp::parse_rfc3339(&field("time")?).map_err(|error| error.to_string())?;
        let epoch = field("epoch")?.parse().map_err(|_| "invalid epoch")?;
        let prev_text = field("prev")?;
        let prev = if prev_text == "none" {
            None
        } else {
            Some(parse_hash(&prev_text).ok_or("invalid prev")?)
        };
        let mut groups = BTreeMap::new();
        for line in fields.rest() {
            let mut words = line.split(' ');
            let (Some("group"), Some(name), Some(size), Some(root), Some(retention), None) = (
                words.next(),
                words.next(),
                words.next(),
                words.next(),
                words.next(),
                words.next(),
            ) else {
                return Err(format!("malformed group line {line:?}"));
            };
            let name = GroupName::parse(name).map_err(|error| error.to_string())?;
            let head = GroupHead {
                size: size
                    .parse()
                    .map_err(|_| format!("invalid size in {line:?}"))?,
                root: parse_hash(root).ok_or_else(|| format!("invalid root in {line:?}"))?,
                retention_days: match retention {
                    "-" => None,
                    days => Some(
                        days.parse()
                            .map_err(|_| format!("invalid retention in {line:?}"))?,
                    ),
                },
            };
            if groups.insert(name, head).is_some() {
                return Err(format!("duplicate group in {line:?}"));
            }
        }
        let body = CheckpointBody {
            seq,
            time,
            epoch,
            prev,
            groups,
        };
        if body.to_text() != text {
            return Err("checkpoint body is not in canonical form".into());
        }
        Ok(body)
    }
}

/// A checkpoint with its signature and the signing epoch's public key proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The signed content.
    pub body: CheckpointBody,
    /// The epoch key that signed it.
    pub epoch_key: EpochKeyProof,
    /// Ed25519 signature over the body text.
    pub signature: [u8; 64],
}

impl SignedCheckpoint {
    /// Digest chained into the next checkpoint's `prev`.
    pub fn digest(&self) -> Hash {
        sha256(&[
            b"seclog-checkpoint-digest-v1",
            self.body.to_text().as_bytes(),
            &self.signature,
        ])
    }

    /// Checks the signature, the epoch key and that the epoch matches the time.
    pub fn verify(&self, key: &VerificationKey) -> Result<(), String> {
        if self.body.epoch != self.epoch_key.epoch {
            return Err(format!(
                "body says epoch {} but is signed by epoch {}'s key",
                self.body.epoch, self.epoch_key.epoch
            ));
        }
        key.verify_signature(
            &self.epoch_key,
            self.body.time,
            self.body.to_text().as_bytes(),
            &self.signature,
        )
    }

    /// Portable text form: body, a blank line, then the key and signature lines.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n— epoch-key {}\n— signature {}\n",
            self.body.to_text(),
            B64.encode(self.epoch_key.encode()),
            B64.encode(self.signature)
        )
    }

    /// Parses [`SignedCheckpoint::to_text`].
    pub fn from_text(text: &str) -> Result<Self, String> {
        let (body_text, signatures) = text
            .split_once("\n\n")
            .ok_or("missing blank line before the signature")?;
        let body = CheckpointBody::parse(&format!("{body_text}\n"))?;
        let mut epoch_key = None;
        let mut signature = None;
        for line in signatures.lines().filter(|line| !line.trim().is_empty()) {
            if let Some(encoded) = line.strip_prefix("— epoch-key ") {
                let bytes = B64
                    .decode(encoded.trim())
                    .map_err(|_| "epoch-key is not base64")?;
                let mut reader = ByteReader::new(&bytes);
                let proof = EpochKeyProof::decode(&mut reader)?;
                if reader.remaining() != 0 {
                    return Err("trailing bytes after the epoch key".into());
                }
                epoch_key = Some(proof);
            } else if let Some(encoded) = line.strip_prefix("— signature ") {
                let bytes = B64
                    .decode(encoded.trim())
                    .map_err(|_| "signature is not base64")?;
                signature = Some(
                    <[u8; 64]>::try_from(bytes.as_slice())
                        .map_err(|_| "signature must be 64 bytes")?,
                );
            } else {
                return Err(format!("unexpected line {line:?}"));
            }
        }
        Ok(SignedCheckpoint {
            body,
            epoch_key: epoch_key.ok_or("missing epoch-key line")?,
            signature: signature.ok_or("missing signature line")?,
        })
    }
}

pub(crate) fn checkpoint_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.ckpt")
}

pub(crate) fn encode_header(first_seq: u64, epoch: u32) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(CHECKPOINT_MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&first_seq.to_le_bytes());
    header.extend_from_slice(&epoch.to_le_bytes());
    let crc = crc32(&[&header]);
    header.extend_from_slice(&crc.to_le_bytes());
    header
}

/// Header fields of a checkpoint log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogHeader {
    pub(crate) first_seq: u64,
    pub(crate) epoch: u32,
}

pub(crate) fn parse_header(bytes: &[u8]) -> Result<LogHeader, String> {
    let mut reader = ByteReader::new(bytes);
    let short = |_| "file shorter than its header".to_string();
    if &reader.array::<8>().map_err(short)? != CHECKPOINT_MAGIC {
        return Err("bad magic: not a checkpoint log".into());
    }
    let version = reader.u16().map_err(short)?;
    if version != FORMAT_VERSION {
        return Err(format!("unsupported format version {version}"));
    }
    let first_seq = reader.u64().map_err(short)?;
    let epoch = reader.u32().map_err(short)?;
    let crc = reader.u32().map_err(short)?;
    if crc32(&[bytes.get(..HEADER_LEN - 4).unwrap_or_default()]) != crc {
        return Err("header checksum mismatch".into());
    }
    Ok(LogHeader { first_seq, epoch })
}

pub(crate) const LOG_HEADER_LEN: usize = HEADER_LEN;

pub(crate) fn encode_checkpoint_payload(body_text: &str, signature: &[u8; 64]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4 + body_text.len() + 64);
    payload.extend_from_slice(&(body_text.len() as u32).to_le_bytes());
    payload.extend_from_slice(body_text.as_bytes());
    payload.extend_from_slice(signature);
    payload
}

pub(crate) fn decode_checkpoint_payload(
    payload: &[u8],
) -> Result<(CheckpointBody, [u8; 64]), String> {
    let mut reader = ByteReader::new(payload);
    let short = |_| "checkpoint record truncated".to_string();
    let body_len = reader.u32().map_err(short)? as usize;
    let body_bytes = reader.take(body_len).map_err(short)?;
    let signature = reader.array::<64>().map_err(short)?;
    if reader.remaining() != 0 {
        return Err("trailing bytes in checkpoint record".into());
    }
    let text = std::str::from_utf8(body_bytes).map_err(|_| "checkpoint body is not UTF-8")?;
    Ok((CheckpointBody::parse(text)?, signature))
}

pub(crate) fn encode_footer_payload(count: u64, digest: &Hash) -> Vec<u8> {
    [count.to_le_bytes().as_slice(), digest].concat()
}

/// Appends signed checkpoints; one file per epoch, sealed with a footer when the epoch ends.
#[derive(Debug)]
pub struct CheckpointLog {
    dir: PathBuf,
    file: Option<(fs::File, PathBuf, u32)>,
    file_count: u64,
    file_hasher: Sha256,
    last: Option<SignedCheckpoint>,
    poisoned: Option<String>,
}

impl CheckpointLog {
    /// Opens the log, repairing an interrupted append at the end of the newest file.
    pub fn open(layout: &Layout) -> Result<(Self, Vec<String>)> {
        let dir = layout.checkpoints_dir();
        fsutil::create_dir_all_private(&dir)?;
        let mut notes = Vec::new();
        let mut log = CheckpointLog {
            dir: dir.clone(),
            file: None,
            file_count: 0,
            file_hasher: Sha256::new(),
            poisoned: None,
            last: None,
        };
        let mut logs = list_logs(&dir)?;
        let (path, bytes, header) = loop {
            let Some((path, _)) = logs.pop() else {
                return Ok((log, notes));
            };
            let bytes = fs::read(&path).map_err(JournalError::io("read", &path))?;
            // The header and the epoch-key record are written together when a log is started;
            // only a file that ends inside them (nothing after) is an interrupted creation.
            let interrupted = bytes.len() < LOG_HEADER_LEN
                || matches!(
                    frame::read_frame(&bytes, LOG_HEADER_LEN),
                    Err(FrameEnd::Torn { .. })
                );
            if interrupted && parse_header(&bytes).is_ok() || bytes.len() < LOG_HEADER_LEN {
                notes.push(format!(
                    "recovery: removed {}, a checkpoint log whose creation was interrupted",
                    path.display()
                ));
                fsutil::remove_durable(&path)?;
                continue;
            }
            let header =
                parse_header(&bytes).map_err(|reason| JournalError::corrupt(&path, reason))?;
            if !first_frame_complete(&bytes) {
                return Err(JournalError::corrupt(
                    &path,
                    "checkpoint log without a valid epoch key record",
                ));
            }
            break (path, bytes, header);
        };
        let mut frames = frame::frames(&bytes, LOG_HEADER_LEN);
        let mut epoch_key = None;
        let mut count = 0u64;
        let mut sealed = false;
        for frame in frames.by_ref() {
            match frame.tag {
                TAG_EPOCH_KEY => {
                    let mut reader = ByteReader::new(frame.payload);
                    epoch_key = Some(
                        EpochKeyProof::decode(&mut reader)
                            .map_err(|reason| JournalError::corrupt(&path, reason))?,
                    );
                }
                TAG_CHECKPOINT => {
                    let (body, signature) = decode_checkpoint_payload(frame.payload)
                        .map_err(|reason| JournalError::corrupt(&path, reason))?;
                    let epoch_key = epoch_key.clone().ok_or_else(|| {
                        JournalError::corrupt(&path, "checkpoint before epoch key")
                    })?;
                    log.last = Some(SignedCheckpoint {
                        body,
                        epoch_key,
                        signature,
                    });
                    count += 1;
                }
                TAG_FOOTER => sealed = true,
                other => {
                    return Err(JournalError::corrupt(
                        &path,
                        format!("unknown frame tag {other:#x}"),
                    ));
                }
            }
        }
        let valid_len = frames.offset();
        match frames.end() {
            FrameEnd::Clean => {}
            FrameEnd::Torn { offset, reason } => {
                notes.push(format!(
                    "truncated {} bytes of an interrupted checkpoint append in {} ({reason})",
                    bytes.len() - offset,
                    path.display()
                ));
                fsutil::truncate_durable(&path, offset as u64)?;
            }
            FrameEnd::Corrupt { offset, reason } => {
                return Err(JournalError::corrupt(
                    &path,
                    format!("at byte {offset}: {reason}"),
                ));
            }
        }
        if log.last.is_none() {
            // The newest log was started but holds no checkpoint yet (a crash right after a
            // roll): the chain continues from the newest checkpoint of an older log.
            for (older, _) in logs.iter().rev() {
                if let Some(found) = last_in_file(older)? {
                    log.last = Some(found);
                    break;
                }
            }
        }
        if !sealed {
            let file = fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(JournalError::io("open", &path))?;
            log.file_hasher = Sha256::new_with_prefix(bytes.get(..valid_len).unwrap_or_default());
            log.file = Some((file, path, header.epoch));
            log.file_count = count;
        }
        Ok((log, notes))
    }

    /// The newest checkpoint, if any.
    pub fn last(&self) -> Option<&SignedCheckpoint> {
        self.last.as_ref()
    }

    /// Signs and durably appends a checkpoint of `groups` at `now`.
    pub fn append(
        &mut self,
        signer: &mut Signer,
        now: Timestamp,
        groups: BTreeMap<GroupName, GroupHead>,
    ) -> Result<SignedCheckpoint> {
        if let Some(reason) = &self.poisoned {
            return Err(JournalError::Poisoned(reason.clone()));
        }
        let result = self.append_inner(signer, now, groups);
        if let Err(error) = &result {
            // The file's state after a failed write or sync is unknown: write nothing more.
            self.poisoned = Some(error.to_string());
        }
        result
    }

    fn append_inner(
        &mut self,
        signer: &mut Signer,
        now: Timestamp,
        groups: BTreeMap<GroupName, GroupHead>,
    ) -> Result<SignedCheckpoint> {
        signer.advance_for(now)?;
        let seq = self.last.as_ref().map_or(0, |last| last.body.seq + 1);
        // Never sign a time earlier than the previous checkpoint's or than the signer's epoch
        // (a clock stepping back): it would be outside the epoch whose key signs it.
        let time = self
            .last
            .as_ref()
            .map_or(now, |last| last.body.time.max(now))
            .max(signer.epoch_start());
        let body = CheckpointBody {
            seq,
            time,
            epoch: signer.epoch(),
            prev: self.last.as_ref().map(SignedCheckpoint::digest),
            groups,
        };
        if self
            .file
            .as_ref()
            .is_none_or(|(_, _, epoch)| *epoch != signer.epoch())
        {
            self.roll(seq, signer.epoch_proof())?;
        }
        let body_text = body.to_text();
        let signature = signer.sign(body_text.as_bytes());
        let signed = SignedCheckpoint {
            body,
            epoch_key: signer.epoch_proof().clone(),
            signature,
        };
        // Check what an auditor will check before it is written (a damaged epoch key list or a
        // clock problem must not produce checkpoints that never verify).
        signed.verify(signer.verification_key()).map_err(|reason| {
            JournalError::Signing(format!("refusing to write checkpoint #{seq}: {reason}"))
        })?;
        let mut bytes = Vec::new();
        encode_frame(
            TAG_CHECKPOINT,
            &encode_checkpoint_payload(&body_text, &signature),
            &mut bytes,
        );
        self.write(&bytes)?;
        self.file_count += 1;
        self.last = Some(signed.clone());
        Ok(signed)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let Some((file, path, _)) = self.file.as_mut() else {
            return Err(JournalError::Invalid("no open checkpoint file".into()));
        };
        file.write_all(bytes)
            .map_err(JournalError::io("append", path.as_path()))?;
        file.sync_data()
            .map_err(JournalError::io("sync", path.as_path()))?;
        self.file_hasher.update(bytes);
        Ok(())
    }

    fn roll(&mut self, first_seq: u64, epoch_key: &EpochKeyProof) -> Result<()> {
        if self.file_count == 0
            && let Some((file, path, _)) = self.file.take()
        {
            // A log of an earlier epoch that never received a checkpoint: it holds no evidence
            // and its name is the one the new log needs, so it is replaced.
            drop(file);
            fsutil::remove_durable(&path)?;
        }
        if self.file.is_some() {
            let digest: Hash = self.file_hasher.clone().finalize().into();
            let mut footer = Vec::new();
            encode_frame(
                TAG_FOOTER,
                &encode_footer_payload(self.file_count, &digest),
                &mut footer,
            );
            self.write(&footer)?;
        }
        let path = self.dir.join(checkpoint_file_name(first_seq));
        let mut bytes = encode_header(first_seq, epoch_key.epoch);
        encode_frame(TAG_EPOCH_KEY, &epoch_key.encode(), &mut bytes);
        let file = fsutil::create_append_durable(&path, &bytes)?;
        self.file = Some((file, path, epoch_key.epoch));
        self.file_hasher = Sha256::new_with_prefix(&bytes);
        self.file_count = 0;
        Ok(())
    }
}

/// True when the epoch-key frame after the header is whole.
fn first_frame_complete(bytes: &[u8]) -> bool {
    frame::read_frame(bytes, LOG_HEADER_LEN).is_ok_and(|frame| frame.tag == TAG_EPOCH_KEY)
}

/// Checkpoint log files in order, with their first checkpoint seq.
pub(crate) fn list_logs(dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut logs = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(logs),
        Err(error) => return Err(JournalError::io("list", dir)(error)),
    };
    for entry in entries {
        let entry = entry.map_err(JournalError::io("list", dir))?;
        if let Some(seq) = entry
            .file_name()
            .to_str()
            .and_then(|name| parse_numbered(name, "ckpt"))
        {
            logs.push((entry.path(), seq));
        }
    }
    logs.sort_by_key(|(_, seq)| *seq);
    Ok(logs)
}

/// Reads the newest signed checkpoint of a store without opening it for writing.
pub fn latest_checkpoint(layout: &Layout) -> Result<Option<SignedCheckpoint>> {
    for (path, _) in list_logs(&layout.checkpoints_dir())?.iter().rev() {
        if let Some(found) = last_in_file(path)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Time of the first checkpoint whose tree for `group` holds at least `size` records.
/// Binary search over the logs (group sizes never shrink along the chain).
pub fn first_covering(layout: &Layout, group: &GroupName, size: u64) -> Result<Option<Timestamp>> {
    let logs = list_logs(&layout.checkpoints_dir())?;
    let covers = |checkpoint: &SignedCheckpoint| {
        checkpoint
            .body
            .groups
            .get(group)
            .is_some_and(|head| head.size >= size)
    };
    // Find the first log whose last checkpoint covers `size`.
    let (mut low, mut high) = (0usize, logs.len());
    while low < high {
        let middle = low + (high - low) / 2;
        let covered = match logs.get(middle) {
            Some((path, _)) => last_in_file(path)?.is_some_and(|last| covers(&last)),
            None => false,
        };
        if covered {
            high = middle
        } else {
            low = middle + 1
        }
    }
    let Some((path, _)) = logs.get(low) else {
        return Ok(None);
    };
    let bytes = fs::read(path).map_err(JournalError::io("read", path))?;
    for frame in frame::frames(&bytes, LOG_HEADER_LEN).filter(|frame| frame.tag == TAG_CHECKPOINT) {
        if let Ok((body, _)) = decode_checkpoint_payload(frame.payload)
            && body.groups.get(group).is_some_and(|head| head.size >= size)
        {
            return Ok(Some(body.time));
        }
    }
    Ok(None)
}

/// The last well-formed checkpoint in one log file.
fn last_in_file(path: &Path) -> Result<Option<SignedCheckpoint>> {
    let bytes = fs::read(path).map_err(JournalError::io("read", path))?;
    parse_header(&bytes).map_err(|reason| JournalError::corrupt(path, reason))?;
    let mut epoch_key = None;
    let mut last = None;
    for frame in frame::frames(&bytes, LOG_HEADER_LEN) {
        match frame.tag {
            TAG_EPOCH_KEY => {
                epoch_key = EpochKeyProof::decode(&mut ByteReader::new(frame.payload)).ok()
            }
            TAG_CHECKPOINT => {
                if let (Ok((body, signature)), Some(key)) =
                    (decode_checkpoint_payload(frame.payload), epoch_key.clone())
                {
                    last = Some(SignedCheckpoint {
                        body,
                        epoch_key: key,
                        signature,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(last)
}
