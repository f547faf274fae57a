//! Opening after a crash: each group's last segment is scanned, an unacknowledged damaged tail
//! is quarantined and cut, and the Merkle frontier is rebuilt from footers and blocks.

use std::fs;
use std::path::PathBuf;

use seclog_model::{GroupName, Timestamp};

use super::{GroupState, JournalWriter, OpenSegment};
use crate::error::{JournalError, Result};
use crate::frame::{self, FrameEnd, TAG_FOOTER};
use crate::fsutil;
use crate::layout::display_relative;
use crate::merkle::Frontier;
use crate::segment::{self, BlockView, Footer, SegmentHeader, TAG_BLOCK};
use crate::store::list_group_files;
use crate::tombstone::Tombstone;

impl JournalWriter {
    pub(super) fn recover_group(
        &mut self,
        group: &GroupName,
        notes: &mut Vec<String>,
    ) -> Result<GroupState> {
        let files = list_group_files(&self.layout.group_dir(group))?;
        let mut state = GroupState {
            segment: None,
            prev_digest: [0; 32],
            frontier: Frontier::new(),
            dirty: false,
        };
        // Leftovers of an interrupted atomic write (a tombstone being written) hold nothing yet.
        for path in &files.unexpected {
            if path.extension().is_some_and(|extension| extension == "tmp") {
                notes.push(format!(
                    "recovery: removed {}, left by an interrupted write",
                    display_relative(&self.layout, path)
                ));
                fsutil::remove_durable(path)?;
            }
        }
        let tombstones = files
            .tombstones
            .iter()
            .map(|(seq, _)| *seq)
            .collect::<Vec<_>>();
        // Finish a deletion interrupted after its tombstone was written.
        let mut segments = files.segments.clone();
        if let Some((_, tomb_path)) = files.tombstones.last() {
            let text =
                fs::read_to_string(tomb_path).map_err(JournalError::io("read", tomb_path))?;
            let tombstone = Tombstone::parse_and_verify(&text, self.signer.verification_key())
                .map_err(|reason| JournalError::corrupt(tomb_path, reason))?;
            segments.retain(|(seq, path)| {
                if tombstones.contains(seq) {
                    let _ = fsutil::remove_durable(path);
                    false
                } else {
                    true
                }
            });
            state.prev_digest = tombstone.digest;
            state.frontier = Frontier::from_parts(tombstone.next_seq, tombstone.frontier)
                .map_err(|error| JournalError::corrupt(tomb_path, error.to_string()))?;
        }
        // A crash while a segment was being created leaves a file shorter than its header:
        // nothing in it was ever acknowledged, so it is removed and created again on demand.
        if let Some((seq, path)) = segments.last().cloned() {
            let len = fs::metadata(&path)
                .map_err(JournalError::io("stat", &path))?
                .len();
            let full_header = SegmentHeader::encoded_len(group.as_str()) as u64;
            let bytes = fs::read(&path).map_err(JournalError::io("read", &path))?;
            if len < full_header || (len == full_header && SegmentHeader::parse(&bytes).is_err()) {
                notes.push(format!(
                    "recovery: removed {}, a segment whose creation was interrupted ({len} bytes)",
                    display_relative(&self.layout, &path)
                ));
                fsutil::remove_durable(&path)?;
                fsutil::remove_durable(&self.layout.data_key(group, seq))?;
                segments.pop();
            }
        }
        let Some((last_seq, last_path)) = segments.last().cloned() else {
            return Ok(state);
        };
        if let Some((_, sealed_path)) = segments.iter().rev().nth(1) {
            let bytes = fs::read(sealed_path).map_err(JournalError::io("read", sealed_path))?;
            let footer = find_footer(&bytes).ok_or_else(|| {
                JournalError::corrupt(sealed_path, "sealed segment has no footer")
            })?;
            state.prev_digest = footer.segment_digest;
            state.frontier = Frontier::from_parts(footer.next_seq, footer.frontier)
                .map_err(|error| JournalError::corrupt(sealed_path, error.to_string()))?;
        }
        let bytes = fs::read(&last_path).map_err(JournalError::io("read", &last_path))?;
        let (header, header_len) = SegmentHeader::parse(&bytes)
            .map_err(|reason| JournalError::corrupt(&last_path, reason))?;
        if header.first_seq != last_seq || header.first_seq != state.frontier.size() {
            return Err(JournalError::corrupt(
                &last_path,
                "segment does not start where the previous one ended",
            ));
        }
        let header_digest = segment::header_digest(bytes.get(..header_len).unwrap_or_default());
        let mut frames = frame::frames(&bytes, header_len);
        let mut leaves = Vec::new();
        let mut last_written = None;
        let mut footer = None;
        for frame in frames.by_ref() {
            match frame.tag {
                TAG_BLOCK => {
                    let block = BlockView::parse(frame.payload)
                        .map_err(|reason| JournalError::corrupt(&last_path, reason))?;
                    if block.first_seq != state.frontier.size() + leaves.len() as u64 {
                        return Err(JournalError::corrupt(
                            &last_path,
                            format!("block {} out of sequence", block.first_seq),
                        ));
                    }
                    block.leaves(&header_digest, &mut leaves);
                    last_written = Some(block.written_at);
                }
                TAG_FOOTER => {
                    footer = Some(
                        Footer::parse(frame.payload)
                            .map_err(|reason| JournalError::corrupt(&last_path, reason))?,
                    )
                }
                other => {
                    return Err(JournalError::corrupt(
                        &last_path,
                        format!("unknown frame tag {other:#x}"),
                    ));
                }
            }
        }
        let valid_len = frames.offset();
        match frames.end() {
            FrameEnd::Clean => {}
            // After a power loss the unsynced tail of the last commit can come back torn, zeroed
            // or out of order, so a bad frame may be followed by more bytes. None of it was
            // acknowledged as long as no checkpoint covers it: quarantine and cut it.
            FrameEnd::Torn { offset, reason } | FrameEnd::Corrupt { offset, reason } => {
                let kept = state.frontier.size() + leaves.len() as u64;
                let last = self.checkpoints.last();
                let sealed = last
                    .and_then(|last| last.body.groups.get(group))
                    .map_or(0, |head| head.size);
                if kept < sealed {
                    // The damaged bytes hold records a checkpoint covers: they were acknowledged,
                    // so this is damage, not an interrupted append. Keep the evidence.
                    return Err(JournalError::corrupt(
                        &last_path,
                        format!(
                            "at byte {offset}: {reason}; records {kept}.. are covered by signed checkpoint #{}; run `seclog verify`",
                            last.map_or(0, |last| last.body.seq)
                        ),
                    ));
                }
                let quarantine = self.quarantine(
                    group,
                    header.first_seq,
                    bytes.get(offset..).unwrap_or_default(),
                )?;
                notes.push(format!(
                    "recovery: truncated {} bytes of an unacknowledged, interrupted append at the end of {} ({reason}); a copy is kept in {}",
                    bytes.len() - offset,
                    display_relative(&self.layout, &last_path),
                    display_relative(&self.layout, &quarantine)
                ));
                fsutil::truncate_durable(&last_path, offset as u64)?;
            }
        }
        for leaf in leaves {
            state.frontier.push(leaf);
        }
        if let Some(footer) = footer {
            state.prev_digest = footer.segment_digest;
            return Ok(state);
        }
        let key = self.load_data_key(group, header.first_seq)?;
        let file = fs::OpenOptions::new()
            .append(true)
            .open(&last_path)
            .map_err(JournalError::io("open", &last_path))?;
        state.segment = Some(OpenSegment {
            file,
            path: last_path,
            header_digest,
            key,
            first_seq: header.first_seq,
            bytes: valid_len as u64,
            created_at: header.created_at,
            last_written,
        });
        Ok(state)
    }

    /// Saves bytes that recovery cuts (encrypted blocks, never plaintext) outside `journal/`.
    fn quarantine(&self, group: &GroupName, first_seq: u64, bytes: &[u8]) -> Result<PathBuf> {
        let dir = self.layout.root().join("quarantine");
        fsutil::create_dir_all_private(&dir)?;
        let name = format!(
            "{}-{first_seq:020}-{}.bin",
            group.to_dir_name(),
            Timestamp::now().unix_nanos()
        );
        let path = dir.join(name);
        fsutil::write_atomic(&path, bytes, 0o600)?;
        Ok(path)
    }
}

/// The footer of a sealed segment, if the file ends with one.
pub(crate) fn find_footer(bytes: &[u8]) -> Option<Footer> {
    let (_, header_len) = SegmentHeader::parse(bytes).ok()?;
    frame::frames(bytes, header_len)
        .filter(|frame| frame.tag == TAG_FOOTER)
        .last()
        .and_then(|frame| Footer::parse(frame.payload).ok())
}

/// The footer of a sealed segment, read from the file's last bytes only (the frame's CRC tells
/// the footer's length among the few possible ones).
pub(super) fn read_tail_footer(path: &std::path::Path) -> Result<Option<Footer>> {
    use std::io::{Read, Seek, SeekFrom};
    const FIXED: usize = 1 + 4 + 8 + 1 + 32 + 4;
    let mut file = fs::File::open(path).map_err(JournalError::io("open", path))?;
    let len = file
        .metadata()
        .map_err(JournalError::io("stat", path))?
        .len();
    let want = (FIXED + 64 * 32).min(usize::try_from(len).unwrap_or(usize::MAX));
    let mut tail = vec![0u8; want];
    file.seek(SeekFrom::End(-(want as i64)))
        .map_err(JournalError::io("seek", path))?;
    file.read_exact(&mut tail)
        .map_err(JournalError::io("read", path))?;
    for nodes in 0..=64usize {
        let footer_len = FIXED + 32 * nodes;
        let Some(offset) = tail.len().checked_sub(footer_len) else {
            break;
        };
        if let Ok(frame) = frame::read_frame(&tail, offset)
            && frame.tag == TAG_FOOTER
            && frame.len == footer_len
            && let Ok(footer) = Footer::parse(frame.payload)
        {
            return Ok(Some(footer));
        }
    }
    Ok(None)
}

pub(super) fn last_block_time(bytes: &[u8]) -> Option<Timestamp> {
    let (_, header_len) = SegmentHeader::parse(bytes).ok()?;
    frame::frames(bytes, header_len)
        .filter(|frame| frame.tag == TAG_BLOCK)
        .last()
        .and_then(|frame| BlockView::parse(frame.payload).ok())
        .map(|block| block.written_at)
}
