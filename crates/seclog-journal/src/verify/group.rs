//! Checks of one group: tombstones, segments in order, the tree against every checkpoint.

use std::path::{Path, PathBuf};

use seclog_model::GroupName;

use super::scan::{ScanItem, SegmentScan, scan_segment};
use super::{Expectation, GroupSummary, NANOS_PER_DAY, UNSEALED_LEAF_LIMIT, Verifier};
use crate::error::Result;
use crate::frame::FrameEnd;
use crate::layout::display_relative;
use crate::merkle::{Frontier, Hash};
use crate::segment::{self, Footer};
use crate::shred::Shred;
use crate::store::list_group_files;
use crate::tombstone::Tombstone;

struct SegmentSpan {
    first: u64,
    end: u64,
    path: PathBuf,
}

pub(super) fn verify_group(
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
    note_policy_changes(verifier, name, &expectations);
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
                // The policy the deletion followed must be the one signed before it.
                let signed_policy = expectations
                    .iter()
                    .filter(|expectation| expectation.time <= tombstone.deleted_at)
                    .max_by_key(|expectation| expectation.checkpoint)
                    .and_then(|expectation| expectation.retention_days);
                if signed_policy != Some(tombstone.retention_days) {
                    verifier.find(
                        group,
                        path,
                        Some((tombstone.first_seq, tombstone.next_seq)),
                        format!(
                            "tombstone applies {} days but the signed retention policy then was {}",
                            tombstone.retention_days,
                            signed_policy.map_or_else(
                                || "none (keep forever)".to_string(),
                                |days| format!("{days} days")
                            )
                        ),
                    );
                }
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
    // Shreds: signed declarations that the records below `upto` cannot be read any more. Their
    // segments are still checked below like any others.
    let newest_size = expectations
        .iter()
        .map(|expectation| expectation.size)
        .max();
    for (name_seq, path) in &files.shreds {
        let Some(bytes) = verifier.read(path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        match Shred::parse_and_verify(&text, verifier.key) {
            Ok(shred) => {
                let range = Some((shred.from_seq, shred.upto_seq));
                if shred.group != name.as_str() || shred.upto_seq != *name_seq {
                    verifier.find(group, path, range, "shred names another group or range");
                } else if shred.shredded_at > verifier.latest_allowed {
                    verifier.find(
                        group,
                        path,
                        range,
                        format!(
                            "shred is dated {}, in the future of this verifier's clock",
                            shred.shredded_at
                        ),
                    );
                } else if newest_size.is_none_or(|size| shred.upto_seq > size) {
                    verifier.find(
                        group,
                        path,
                        range,
                        "shred covers records no signed checkpoint covers",
                    );
                } else {
                    verifier.report.notes.push(format!(
                        "group {name}: records {}..{} crypto-shredded at {} ({} segments; their data keys were destroyed, their integrity still verified)",
                        shred.from_seq,
                        shred.upto_seq.saturating_sub(1),
                        shred.shredded_at,
                        shred.segments
                    ));
                }
            }
            Err(reason) => verifier.find(group, path, None, format!("invalid shred: {reason}")),
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

/// Tells every change of the group's signed retention policy that shortens it (from "keep
/// forever" or from a longer period): who can sign today can shorten retention, so it must show.
fn note_policy_changes(
    verifier: &mut Verifier<'_>,
    name: &GroupName,
    expectations: &[Expectation],
) {
    let mut by_checkpoint: Vec<&Expectation> = expectations.iter().collect();
    by_checkpoint.sort_by_key(|expectation| expectation.checkpoint);
    let mut previous: Option<Option<u32>> = None;
    for expectation in by_checkpoint {
        let current = expectation.retention_days;
        if let Some(before) = previous
            && let Some(days) = current
            && before.is_none_or(|before| days < before)
        {
            verifier.report.notes.push(format!(
                "group {name}: retention set to {days} days (was {}) at checkpoint #{} ({})",
                before.map_or_else(
                    || "keep forever".to_string(),
                    |before| format!("{before} days")
                ),
                expectation.checkpoint,
                expectation.time
            ));
        }
        previous = Some(current);
    }
}
