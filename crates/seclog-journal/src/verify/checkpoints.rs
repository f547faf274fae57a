//! Checks of the checkpoint logs: framing, epoch keys, signatures, the chain, the genesis, and a
//! pinned checkpoint.

use std::collections::BTreeMap;
use std::fs;

use seclog_model::GroupName;

use super::{Expectation, SILENCE_NOTE_NANOS, Verifier, add_expectations};
use crate::checkpoint::{self, LOG_HEADER_LEN, SignedCheckpoint, TAG_CHECKPOINT, TAG_EPOCH_KEY};
use crate::codec::ByteReader;
use crate::error::Result;
use crate::frame::{self, FrameEnd, TAG_FOOTER};
use crate::layout::display_relative;
use crate::signer::EpochKeyProof;

pub(super) fn verify_checkpoints(
    verifier: &mut Verifier<'_>,
) -> Result<Vec<(String, SignedCheckpoint)>> {
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

pub(super) fn check_pinned(
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
