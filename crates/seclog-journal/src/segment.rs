//! Segment files: a header, blocks of encrypted records, and a footer once sealed.
//!
//! ```text
//! header = "SLOGSEG\0" | version u16 | group_len u16 | group | first_seq u64 | created_at i64
//!          | prev_digest [32] | crc32
//! block frame (tag 0xB1) payload =
//!          first_seq u64 | count u32 | written_at i64 | nonce [24] | commit_root [32]
//!          | ciphertext (XChaCha20-Poly1305 of zstd(salt_key [32] | (len u32 | record)*))
//! footer frame (tag 0xF0) payload =
//!          next_seq u64 | frontier_len u8 | frontier [32 x n] | segment_digest [32]
//! ```
//! `segment_digest = SHA-256("seclog-segment-digest-v1" | header_digest | next_seq | tree root at
//! next_seq)` commits to the header and, through the tree, to every block; the next segment stores it as
//! `prev_digest`. Record `j` (sequence number `seq`) of a block has the hiding commitment
//! `c_j = SHA-256("seclog-rec-v1" | seq u64 | salt_j | record)` with
//! `salt_j = SHA-256("seclog-salt-v1" | salt_key | j u32)`; `commit_root` is the RFC 6962 root over
//! the block's `c_j` (taken as leaf hashes). With
//! `body_digest = SHA-256("seclog-block-body-v1" | header_digest | first_seq | count | written_at | nonce | ciphertext)`
//! and `block_digest = SHA-256("seclog-block-v1" | body_digest | commit_root)`, the group tree's
//! leaf for `seq` is `SHA-256(0x00 | "SLv1" | seq u64 | block_digest)`.
//! The tree thereby commits to every stored byte and is checked without any key (32 bytes of
//! commitment per block, not per record), while a proof for one record reveals only that record,
//! its salt and a path among its block's commitments.

use seclog_model::Timestamp;

use crate::codec::{ByteReader, crc32};
use crate::crypto::{NONCE_LEN, SecretKey, random_bytes, sha256};
use crate::error::{JournalError, Result};
use crate::frame::{TAG_FOOTER, encode_frame};
use crate::merkle::{self, Hash};

pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"SLOGSEG\0";
pub(crate) const FORMAT_VERSION: u16 = 1;
pub(crate) const TAG_BLOCK: u8 = 0xB1;
const BLOCK_FIXED: usize = 8 + 4 + 8 + NONCE_LEN;
/// Most records one block may hold; the writer cuts blocks at this count.
pub(crate) const MAX_BLOCK_RECORDS: u32 = 1 << 18;

/// The fixed fields at the start of a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Group name as stored.
    pub group: String,
    /// Sequence number of the first record.
    pub first_seq: u64,
    /// Creation time.
    pub created_at: Timestamp,
    /// `segment_digest` of the previous segment (zeros for the group's first).
    pub prev_digest: Hash,
}

impl SegmentHeader {
    /// Length of the encoded header of a segment of `group`.
    pub(crate) fn encoded_len(group: &str) -> usize {
        8 + 2 + 2 + group.len() + 8 + 8 + 32 + 4
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.group.len());
        out.extend_from_slice(SEGMENT_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.group.len() as u16).to_le_bytes());
        out.extend_from_slice(self.group.as_bytes());
        out.extend_from_slice(&self.first_seq.to_le_bytes());
        out.extend_from_slice(&self.created_at.unix_nanos().to_le_bytes());
        out.extend_from_slice(&self.prev_digest);
        let crc = crc32(&[&out]);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses a header; returns it with its length in bytes.
    pub(crate) fn parse(bytes: &[u8]) -> Result<(SegmentHeader, usize), String> {
        let mut reader = ByteReader::new(bytes);
        let short = |_| "file shorter than its header".to_string();
        if &reader.array::<8>().map_err(short)? != SEGMENT_MAGIC {
            return Err("bad magic: not a segment".into());
        }
        let version = reader.u16().map_err(short)?;
        if version != FORMAT_VERSION {
            return Err(format!("unsupported format version {version}"));
        }
        let group_len = usize::from(reader.u16().map_err(short)?);
        let group = std::str::from_utf8(reader.take(group_len).map_err(short)?)
            .map_err(|_| "group name is not UTF-8".to_string())?
            .to_string();
        let first_seq = reader.u64().map_err(short)?;
        let created_at = Timestamp::from_unix_nanos(reader.i64().map_err(short)?);
        let prev_digest = reader.array().map_err(short)?;
        let body_len = reader.position();
        let crc = reader.u32().map_err(short)?;
        if crc32(&[bytes.get(..body_len).unwrap_or_default()]) != crc {
            return Err("header checksum mismatch".into());
        }
        Ok((
            SegmentHeader {
                group,
                first_seq,
                created_at,
                prev_digest,
            },
            reader.position(),
        ))
    }
}

/// Digest of the header bytes, mixed into every block digest.
pub(crate) fn header_digest(header_bytes: &[u8]) -> Hash {
    sha256(&[b"seclog-segment-header-v1", header_bytes])
}

/// A block frame's fields, borrowed from the file bytes.
#[derive(Debug, Clone, Copy)]
pub struct BlockView<'a> {
    /// Sequence number of the first record.
    pub first_seq: u64,
    /// Number of records.
    pub count: u32,
    /// When the block was written.
    pub written_at: Timestamp,
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) commit_root: Hash,
    pub(crate) ciphertext: &'a [u8],
}

impl<'a> BlockView<'a> {
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, String> {
        let mut reader = ByteReader::new(payload);
        let short = |_| "block truncated".to_string();
        let first_seq = reader.u64().map_err(short)?;
        let count = reader.u32().map_err(short)?;
        let written_at = Timestamp::from_unix_nanos(reader.i64().map_err(short)?);
        let nonce = reader.array().map_err(short)?;
        if count == 0 {
            return Err("empty block".into());
        }
        if count > MAX_BLOCK_RECORDS {
            // Bounds the work a forged count can cause before the tree check rejects it.
            return Err(format!(
                "block claims {count} records, more than {MAX_BLOCK_RECORDS}"
            ));
        }
        let commit_root = reader.array().map_err(short)?;
        let ciphertext = reader.rest();
        Ok(BlockView {
            first_seq,
            count,
            written_at,
            nonce,
            commit_root,
            ciphertext,
        })
    }

    /// Sequence number after the last record.
    pub fn end_seq(&self) -> u64 {
        self.first_seq.saturating_add(u64::from(self.count))
    }

    /// Digest of everything stored in the block except the commitment root.
    pub(crate) fn body_digest(&self, header_digest: &Hash) -> Hash {
        sha256(&[
            b"seclog-block-body-v1",
            header_digest,
            &self.first_seq.to_le_bytes(),
            &self.count.to_le_bytes(),
            &self.written_at.unix_nanos().to_le_bytes(),
            &self.nonce,
            self.ciphertext,
        ])
    }

    /// The Merkle leaf hashes of this block's records, in order.
    pub(crate) fn leaves(&self, header_digest: &Hash, out: &mut Vec<Hash>) {
        let block_digest = block_digest(&self.body_digest(header_digest), &self.commit_root);
        for index in 0..u64::from(self.count) {
            out.push(leaf_hash(self.first_seq.wrapping_add(index), &block_digest));
        }
    }

    /// Decrypts the block and checks every record against the commitment root.
    pub(crate) fn open(
        &self,
        key: &SecretKey,
        header_digest: &Hash,
    ) -> Result<OpenedBlock, String> {
        let aad = block_aad(
            header_digest,
            self.first_seq,
            self.count,
            self.written_at,
            &self.commit_root,
        );
        let compressed = key
            .open_with_nonce(&self.nonce, self.ciphertext, &aad)
            .map_err(|error| format!("block {}: {error}", self.first_seq))?;
        // The plaintext is authenticated, so its size is trusted: the frame records it.
        let limit = zstd::zstd_safe::get_frame_content_size(&compressed)
            .ok()
            .flatten()
            .and_then(|size| usize::try_from(size).ok())
            .filter(|size| *size <= crate::frame::MAX_PAYLOAD)
            .ok_or_else(|| {
                format!(
                    "block {}: plaintext size missing or too large",
                    self.first_seq
                )
            })?;
        let payload = zstd::bulk::decompress(&compressed, limit)
            .map_err(|error| format!("decompress: {error}"))?;
        let mut reader = ByteReader::new(&payload);
        let truncated = |_| "block payload truncated".to_string();
        let salt_key: Hash = reader.array().map_err(truncated)?;
        let mut records = Vec::with_capacity(self.count as usize);
        let mut commitments = Vec::with_capacity(self.count as usize);
        for index in 0..self.count {
            let len = reader.u32().map_err(truncated)? as usize;
            let record = reader.take(len).map_err(truncated)?;
            let salt = record_salt(&salt_key, index);
            commitments.push(record_commitment(
                self.first_seq.wrapping_add(u64::from(index)),
                &salt,
                record,
            ));
            records.push((salt, record.to_vec()));
        }
        if reader.remaining() != 0 {
            return Err("trailing bytes in block payload".into());
        }
        if merkle::root_of(&commitments) != self.commit_root {
            return Err(format!(
                "block {}: records do not match their commitments",
                self.first_seq
            ));
        }
        Ok(OpenedBlock {
            records,
            commitments,
            body_digest: self.body_digest(header_digest),
        })
    }
}

/// A decrypted block: `(salt, record)` pairs, their commitments, and the body digest.
pub(crate) struct OpenedBlock {
    pub(crate) records: Vec<(Hash, Vec<u8>)>,
    pub(crate) commitments: Vec<Hash>,
    pub(crate) body_digest: Hash,
}

/// Digest tying a block's stored bytes to its records' commitments.
pub fn block_digest(body_digest: &Hash, commit_root: &Hash) -> Hash {
    sha256(&[b"seclog-block-v1", body_digest, commit_root])
}

fn block_aad(
    header_digest: &Hash,
    first_seq: u64,
    count: u32,
    written_at: Timestamp,
    commit_root: &Hash,
) -> Vec<u8> {
    [
        b"seclog-block-aad-v1".as_slice(),
        header_digest,
        &first_seq.to_le_bytes(),
        &count.to_le_bytes(),
        &written_at.unix_nanos().to_le_bytes(),
        commit_root,
    ]
    .concat()
}

/// Per-record salt: reveals nothing about the block's other salts.
pub(crate) fn record_salt(salt_key: &Hash, index: u32) -> Hash {
    sha256(&[b"seclog-salt-v1", salt_key, &index.to_le_bytes()])
}

/// Hiding commitment to one record's plaintext, bound to its sequence number.
pub fn record_commitment(seq: u64, salt: &Hash, record: &[u8]) -> Hash {
    sha256(&[b"seclog-rec-v1", &seq.to_le_bytes(), salt, record])
}

/// The RFC 6962 leaf hash of the record `seq` stored in the block with `block_digest`.
pub fn leaf_hash(seq: u64, block_digest: &Hash) -> Hash {
    let mut input = [0u8; 4 + 8 + 32];
    let (prefix, rest) = input.split_at_mut(4);
    prefix.copy_from_slice(b"SLv1");
    let (seq_bytes, digest_bytes) = rest.split_at_mut(8);
    seq_bytes.copy_from_slice(&seq.to_le_bytes());
    digest_bytes.copy_from_slice(block_digest);
    merkle::leaf_hash(&input)
}

/// A block ready to append: its frame bytes and leaf hashes.
pub(crate) struct BuiltBlock {
    pub(crate) frame: Vec<u8>,
    pub(crate) leaves: Vec<Hash>,
}

/// Compresses, encrypts and frames `records` (already encoded) as one block.
pub(crate) fn build_block(
    key: &SecretKey,
    header_digest: &Hash,
    first_seq: u64,
    written_at: Timestamp,
    records: &[&[u8]],
    zstd_level: i32,
) -> Result<BuiltBlock> {
    let count = u32::try_from(records.len())
        .map_err(|_| JournalError::Invalid("too many records in a block".into()))?;
    let salt_key: Hash = random_bytes()?;
    let total: usize = records.iter().map(|record| record.len() + 4).sum();
    let mut payload = Vec::with_capacity(32 + total);
    payload.extend_from_slice(&salt_key);
    let mut commitments = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        payload.extend_from_slice(&(record.len() as u32).to_le_bytes());
        payload.extend_from_slice(record);
        let seq = first_seq + index as u64;
        commitments.push(record_commitment(
            seq,
            &record_salt(&salt_key, index as u32),
            record,
        ));
    }
    let commit_root = merkle::root_of(&commitments);
    let compressed = zstd::bulk::compress(&payload, zstd_level)
        .map_err(|error| JournalError::Invalid(format!("zstd compression failed: {error}")))?;
    let nonce: [u8; NONCE_LEN] = random_bytes()?;
    let aad = block_aad(header_digest, first_seq, count, written_at, &commit_root);
    let ciphertext = key.seal_with_nonce(&nonce, &compressed, &aad)?;
    let mut block_payload = Vec::with_capacity(BLOCK_FIXED + 32 + ciphertext.len());
    block_payload.extend_from_slice(&first_seq.to_le_bytes());
    block_payload.extend_from_slice(&count.to_le_bytes());
    block_payload.extend_from_slice(&written_at.unix_nanos().to_le_bytes());
    block_payload.extend_from_slice(&nonce);
    block_payload.extend_from_slice(&commit_root);
    block_payload.extend_from_slice(&ciphertext);
    let view = BlockView::parse(&block_payload).map_err(JournalError::Invalid)?;
    let mut leaves = Vec::with_capacity(records.len());
    view.leaves(header_digest, &mut leaves);
    let mut frame = Vec::with_capacity(block_payload.len() + 9);
    encode_frame(TAG_BLOCK, &block_payload, &mut frame);
    Ok(BuiltBlock { frame, leaves })
}

/// Footer of a sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    /// Sequence number after the segment's last record (= tree size at its end).
    pub next_seq: u64,
    /// Merkle frontier at `next_seq`.
    pub frontier: Vec<Hash>,
    /// SHA-256 of the file bytes before the footer.
    pub segment_digest: Hash,
}

impl Footer {
    pub(crate) fn encode_frame(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(8 + 1 + 32 * self.frontier.len() + 32);
        payload.extend_from_slice(&self.next_seq.to_le_bytes());
        payload.push(self.frontier.len() as u8);
        for node in &self.frontier {
            payload.extend_from_slice(node);
        }
        payload.extend_from_slice(&self.segment_digest);
        let mut frame = Vec::new();
        encode_frame(TAG_FOOTER, &payload, &mut frame);
        frame
    }

    pub(crate) fn parse(payload: &[u8]) -> Result<Self, String> {
        let mut reader = ByteReader::new(payload);
        let short = |_| "footer truncated".to_string();
        let next_seq = reader.u64().map_err(short)?;
        let frontier_len = reader.u8().map_err(short)?;
        if u32::from(frontier_len) != next_seq.count_ones() {
            return Err("footer frontier has the wrong number of nodes".into());
        }
        let mut frontier = Vec::with_capacity(usize::from(frontier_len));
        for _ in 0..frontier_len {
            frontier.push(reader.array().map_err(short)?);
        }
        let segment_digest = reader.array().map_err(short)?;
        if reader.remaining() != 0 {
            return Err("trailing bytes in footer".into());
        }
        Ok(Footer {
            next_seq,
            frontier,
            segment_digest,
        })
    }
}

/// Digest of a sealed segment: its header and its records through the tree root at its end.
pub(crate) fn segment_digest(header_digest: &Hash, next_seq: u64, root: &Hash) -> Hash {
    sha256(&[
        b"seclog-segment-digest-v1",
        header_digest,
        &next_seq.to_le_bytes(),
        root,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trip_and_commitments() {
        let key = SecretKey::generate().unwrap();
        let header = SegmentHeader {
            group: "g".into(),
            first_seq: 7,
            created_at: Timestamp::now(),
            prev_digest: [0; 32],
        };
        let header_bytes = header.encode();
        assert_eq!(
            SegmentHeader::parse(&header_bytes).unwrap(),
            (header, header_bytes.len())
        );
        let digest = header_digest(&header_bytes);
        let records: Vec<&[u8]> = vec![b"one", b"two", b""];
        let block = build_block(&key, &digest, 7, Timestamp::now(), &records, 3).unwrap();
        let frame = crate::frame::read_frame(&block.frame, 0).unwrap();
        let view = BlockView::parse(frame.payload).unwrap();
        assert_eq!((view.first_seq, view.count, view.end_seq()), (7, 3, 10));
        let opened = view.open(&key, &digest).unwrap();
        let plain: Vec<&[u8]> = opened
            .records
            .iter()
            .map(|(_, record)| record.as_slice())
            .collect();
        assert_eq!(plain, records);
        let mut leaves = Vec::new();
        view.leaves(&digest, &mut leaves);
        assert_eq!(leaves, block.leaves);
        // Another header (another segment) changes the digest and fails decryption.
        let other = header_digest(b"other");
        assert!(view.open(&key, &other).is_err());
        assert!(view.open(&SecretKey::generate().unwrap(), &digest).is_err());
    }
}
