//! Reading one segment file without reference to its neighbours, so segments are scanned in
//! parallel: parse, hash every block, and cut the leaves into aligned subtrees.

use std::fs;
use std::path::Path;

use crate::frame::{self, FrameEnd, TAG_FOOTER};
use crate::merkle::{self, Hash};
use crate::segment::{self, BlockView, Footer, SegmentHeader, TAG_BLOCK};

use super::UNSEALED_LEAF_LIMIT;

/// What a segment file holds, found without reference to its neighbours (so it can run in parallel).
pub(super) struct SegmentScan {
    pub(super) bytes_len: u64,
    pub(super) header_digest: Hash,
    pub(super) header: Result<SegmentHeader, String>,
    pub(super) items: Vec<ScanItem>,
    /// The segment's tree leaves as aligned subtrees, cut at every checkpoint size.
    pub(super) pieces: Vec<TreePiece>,
    pub(super) end: FrameEnd,
}

/// A perfect subtree of `2^height` leaves ending at leaf `end`.
pub(super) struct TreePiece {
    pub(super) end: u64,
    pub(super) height: u32,
    pub(super) root: Hash,
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

pub(super) enum ScanItem {
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
    pub(super) fn failed(reason: &str) -> Self {
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

pub(super) fn scan_segment(path: &Path, cuts: &[u64], leaf_limit: u64) -> SegmentScan {
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
