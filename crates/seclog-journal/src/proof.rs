//! Self-contained proof bundles for one event, checkable offline with the verification key only.
//!
//! A bundle holds the record's plaintext bytes and salt (so the holder sees the event and its
//! commitment), the digest of the encrypted block it was stored in, its RFC 6962 inclusion path,
//! and the signed checkpoint whose root the path leads to.
//!
//! A sealed bundle ([`ProofBundle::sealed`]) leaves the event out: it carries the record's
//! commitment instead, so an auditor can check that a record exists at that position under the
//! signed checkpoint without seeing what it says; whoever holds the event and salt can show it
//! is that record.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use seclog_model::GroupName;

use crate::checkpoint::{SignedCheckpoint, latest_checkpoint};
use crate::crypto::MasterKey;
use crate::error::{JournalError, Result};
use crate::frame;
use crate::layout::Layout;
use crate::merkle::{self, Frontier, Hash, TreeView};
use crate::reader::JournalReader;
use crate::record::{Record, RecordKind};
use crate::segment::{self, BlockView, SegmentHeader, TAG_BLOCK};
use crate::signer::VerificationKey;
use crate::store::list_group_files;
use crate::tombstone::Tombstone;

const BUNDLE_FORMAT: &str = "seclog-proof-v1";
const SEALED_FORMAT: &str = "seclog-proof-sealed-v1";

/// The JSON view of one stored event, as `cat` prints it and bundles carry it.
pub fn event_view(group: &GroupName, seq: u64, record: &Record) -> Value {
    let mut view = Map::new();
    view.insert("group".into(), json!(group.as_str()));
    view.insert("seq".into(), json!(seq));
    view.insert("time".into(), json!(record.time.to_rfc3339()));
    view.insert(
        "observed_time".into(),
        json!(record.observed_time.to_rfc3339()),
    );
    view.insert("source".into(), json!(record.source));
    view.insert("kind".into(), json!(record.kind.name()));
    let parsed = match record.kind {
        RecordKind::Json => serde_json::from_slice::<Value>(&record.raw).ok(),
        _ => None,
    };
    match (record.kind, parsed, std::str::from_utf8(&record.raw)) {
        (RecordKind::Json, Some(event), _) => {
            view.insert("event".into(), event);
        }
        (RecordKind::Text, _, Ok(text)) => {
            view.insert("message".into(), json!(text));
        }
        _ => {
            view.insert("raw_base64".into(), json!(B64.encode(&record.raw)));
        }
    }
    if let Ok(Value::Object(attrs)) = serde_json::from_slice::<Value>(&record.attrs) {
        view.insert("attrs".into(), Value::Object(attrs));
    }
    Value::Object(view)
}

/// A proof that one event is in a group's tree under a signed checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// Always `seclog-proof-v1`.
    pub format: String,
    /// The group.
    pub group: String,
    /// The event's sequence number (leaf index).
    pub seq: u64,
    /// Readable copy of the event; must agree with `record`.
    pub event: Value,
    /// The record's plaintext bytes, base64.
    pub record: String,
    /// The record's salt, hex.
    pub salt: String,
    /// `body_digest` of the encrypted block holding the record, hex.
    pub block_body: String,
    /// Number of records in that block.
    pub block_count: u32,
    /// Position of the record in that block.
    pub block_index: u32,
    /// RFC 6962 path from the record's commitment to the block's commitment root, hex.
    pub commitment_path: Vec<String>,
    /// Tree size the inclusion path is for.
    pub tree_size: u64,
    /// RFC 6962 inclusion path, hex.
    pub inclusion: Vec<String>,
    /// The signed checkpoint (text form).
    pub checkpoint: String,
}

/// A proof bundle without the event: the record's commitment stands for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SealedProofBundle {
    /// Always `seclog-proof-sealed-v1`.
    pub format: String,
    /// The group.
    pub group: String,
    /// The event's sequence number (leaf index).
    pub seq: u64,
    /// The record's commitment (hash of its sequence number, salt and plaintext), hex.
    pub commitment: String,
    /// `body_digest` of the encrypted block holding the record, hex.
    pub block_body: String,
    /// Number of records in that block.
    pub block_count: u32,
    /// Position of the record in that block.
    pub block_index: u32,
    /// RFC 6962 path from the record's commitment to the block's commitment root, hex.
    pub commitment_path: Vec<String>,
    /// Tree size the inclusion path is for.
    pub tree_size: u64,
    /// RFC 6962 inclusion path, hex.
    pub inclusion: Vec<String>,
    /// The signed checkpoint (text form).
    pub checkpoint: String,
}

impl ProofBundle {
    /// The same proof without the event: its commitment instead of its bytes and salt.
    pub fn sealed(&self) -> std::result::Result<SealedProofBundle, String> {
        let record = B64
            .decode(&self.record)
            .map_err(|_| "record is not base64".to_string())?;
        let salt = decode_hash(&self.salt, "salt")?;
        Ok(SealedProofBundle {
            format: SEALED_FORMAT.into(),
            group: self.group.clone(),
            seq: self.seq,
            commitment: hex::encode(segment::record_commitment(self.seq, &salt, &record)),
            block_body: self.block_body.clone(),
            block_count: self.block_count,
            block_index: self.block_index,
            commitment_path: self.commitment_path.clone(),
            tree_size: self.tree_size,
            inclusion: self.inclusion.clone(),
            checkpoint: self.checkpoint.clone(),
        })
    }
}

/// What a verified bundle proves.
#[derive(Debug, Clone)]
pub struct ProofSummary {
    /// The group.
    pub group: String,
    /// The event's sequence number.
    pub seq: u64,
    /// The verified checkpoint.
    pub checkpoint: SignedCheckpoint,
    /// The event (`null` for a sealed bundle).
    pub event: Value,
}

/// Every leaf of `group` after its expired prefix, with the frontier standing for that prefix.
pub fn group_leaves(
    layout: &Layout,
    group: &GroupName,
    key: &VerificationKey,
) -> Result<(Frontier, Vec<Hash>)> {
    let files = list_group_files(&layout.group_dir(group))?;
    let mut base = Frontier::new();
    if let Some((_, path)) = files.tombstones.last() {
        let text = std::fs::read_to_string(path).map_err(JournalError::io("read", path))?;
        let tombstone = Tombstone::parse_and_verify(&text, key)
            .map_err(|reason| JournalError::corrupt(path, reason))?;
        base = Frontier::from_parts(tombstone.next_seq, tombstone.frontier)
            .map_err(|error| JournalError::corrupt(path, error.to_string()))?;
    }
    let mut leaves = Vec::new();
    for (_, path) in &files.segments {
        let bytes = std::fs::read(path).map_err(JournalError::io("read", path))?;
        let (_, header_len) =
            SegmentHeader::parse(&bytes).map_err(|reason| JournalError::corrupt(path, reason))?;
        let header_digest = segment::header_digest(bytes.get(..header_len).unwrap_or_default());
        for frame in frame::frames(&bytes, header_len).filter(|frame| frame.tag == TAG_BLOCK) {
            let block = BlockView::parse(frame.payload)
                .map_err(|reason| JournalError::corrupt(path, reason))?;
            block.leaves(&header_digest, &mut leaves);
        }
    }
    Ok((base, leaves))
}

/// Builds the proof bundle for `group`/`seq` against the newest checkpoint covering it.
pub fn make_proof(
    layout: &Layout,
    master: MasterKey,
    group: &GroupName,
    seq: u64,
) -> Result<ProofBundle> {
    make_proof_with(layout, &JournalReader::new(layout, master), group, seq)
}

/// [`make_proof`] with a reader at hand.
pub fn make_proof_with(
    layout: &Layout,
    reader: &JournalReader,
    group: &GroupName,
    seq: u64,
) -> Result<ProofBundle> {
    let key = VerificationKey::load(&layout.verification_key())?;
    let checkpoint = latest_checkpoint(layout)?
        .ok_or_else(|| JournalError::NotFound("no signed checkpoint yet".into()))?;
    let head = checkpoint
        .body
        .groups
        .get(group)
        .ok_or_else(|| {
            JournalError::NotFound(format!("group {group} is not in the newest checkpoint"))
        })?
        .clone();
    if seq >= head.size {
        return Err(JournalError::NotFound(format!(
            "record {seq} of {group} is not covered by the newest checkpoint (size {}); retry in a second",
            head.size
        )));
    }
    let (base, leaves) = group_leaves(layout, group, &key)?;
    if seq < base.size() {
        return Err(JournalError::NotFound(format!(
            "record {seq} of {group} expired by retention"
        )));
    }
    let retained = leaves
        .get(..(head.size - base.size()) as usize)
        .ok_or_else(|| JournalError::Corrupt {
            path: layout.group_dir(group),
            reason: "fewer records than the checkpoint covers".into(),
        })?;
    let view = TreeView::new(&base, retained);
    let root = view
        .root(head.size)
        .map_err(|error| JournalError::Invalid(error.to_string()))?;
    if root != head.root {
        return Err(JournalError::Corrupt {
            path: layout.group_dir(group),
            reason: "stored records do not match the checkpoint; run `seclog verify`".into(),
        });
    }
    let inclusion = view
        .inclusion_proof(seq, head.size)
        .map_err(|error| JournalError::Invalid(error.to_string()))?;
    let mut opened = None;
    reader.visit(group, seq, Some(seq + 1), |record| {
        opened = Some(record);
        Ok(false)
    })?;
    let opened =
        opened.ok_or_else(|| JournalError::NotFound(format!("record {seq} of {group}")))?;
    let record = Record::decode(&opened.bytes).map_err(JournalError::Invalid)?;
    Ok(ProofBundle {
        format: BUNDLE_FORMAT.into(),
        group: group.to_string(),
        seq,
        event: event_view(group, seq, &record),
        record: B64.encode(&opened.bytes),
        salt: hex::encode(opened.salt),
        block_body: hex::encode(opened.body_digest),
        block_count: opened.commitments.len() as u32,
        block_index: opened.index,
        commitment_path: TreeView::new(&Frontier::new(), &opened.commitments)
            .inclusion_proof(u64::from(opened.index), opened.commitments.len() as u64)
            .map_err(|error| JournalError::Invalid(error.to_string()))?
            .iter()
            .map(hex::encode)
            .collect(),
        tree_size: head.size,
        inclusion: inclusion.iter().map(hex::encode).collect(),
        checkpoint: checkpoint.to_text(),
    })
}

fn decode_hash(text: &str, what: &str) -> Result<Hash, String> {
    crate::textform::parse_hash(text).ok_or_else(|| format!("{what} is not a 32-byte hex value"))
}

/// Checks a bundle (full or sealed) offline. `Err` says what does not hold.
pub fn verify_proof(bundle_json: &str, key: &VerificationKey) -> Result<ProofSummary, String> {
    let value: Value = serde_json::from_str(bundle_json)
        .map_err(|error| format!("not a proof bundle: {error}"))?;
    if value.get("format").and_then(Value::as_str) == Some(SEALED_FORMAT) {
        let bundle: SealedProofBundle = serde_json::from_value(value)
            .map_err(|error| format!("not a sealed proof bundle: {error}"))?;
        let group = GroupName::parse(&bundle.group).map_err(|error| error.to_string())?;
        let commitment = decode_hash(&bundle.commitment, "commitment")?;
        let checkpoint = verify_position(&group, bundle.seq, &commitment, &bundle.position(), key)?;
        return Ok(ProofSummary {
            group: bundle.group,
            seq: bundle.seq,
            checkpoint,
            event: Value::Null,
        });
    }
    let bundle: ProofBundle =
        serde_json::from_value(value).map_err(|error| format!("not a proof bundle: {error}"))?;
    if bundle.format != BUNDLE_FORMAT {
        return Err(format!("unsupported bundle format {:?}", bundle.format));
    }
    let group = GroupName::parse(&bundle.group).map_err(|error| error.to_string())?;
    let record_bytes = B64
        .decode(&bundle.record)
        .map_err(|_| "record is not base64")?;
    let record = Record::decode(&record_bytes)?;
    if event_view(&group, bundle.seq, &record) != bundle.event {
        return Err("the readable event does not match the proven record bytes".into());
    }
    let salt = decode_hash(&bundle.salt, "salt")?;
    let commitment = segment::record_commitment(bundle.seq, &salt, &record_bytes);
    let checkpoint = verify_position(&group, bundle.seq, &commitment, &bundle.position(), key)?;
    Ok(ProofSummary {
        group: bundle.group,
        seq: bundle.seq,
        checkpoint,
        event: bundle.event,
    })
}

/// The position part both bundle forms share.
macro_rules! position_of {
    ($bundle:ty) => {
        impl $bundle {
            fn position(&self) -> Position<'_> {
                Position {
                    block_body: &self.block_body,
                    block_count: self.block_count,
                    block_index: self.block_index,
                    commitment_path: &self.commitment_path,
                    tree_size: self.tree_size,
                    inclusion: &self.inclusion,
                    checkpoint: &self.checkpoint,
                }
            }
        }
    };
}
position_of!(ProofBundle);
position_of!(SealedProofBundle);

/// Where a bundle says its record's commitment sits.
struct Position<'a> {
    block_body: &'a str,
    block_count: u32,
    block_index: u32,
    commitment_path: &'a [String],
    tree_size: u64,
    inclusion: &'a [String],
    checkpoint: &'a str,
}

/// Checks that `commitment` is record `seq` of `group` under the signed checkpoint.
fn verify_position(
    group: &GroupName,
    seq: u64,
    commitment: &Hash,
    position: &Position<'_>,
    key: &VerificationKey,
) -> Result<SignedCheckpoint, String> {
    let body_digest = decode_hash(position.block_body, "block_body")?;
    let commitment_path = position
        .commitment_path
        .iter()
        .map(|node| decode_hash(node, "commitment path node"))
        .collect::<Result<Vec<_>, _>>()?;
    let commit_root = merkle::root_from_inclusion(
        u64::from(position.block_index),
        u64::from(position.block_count),
        commitment,
        &commitment_path,
    )
    .map_err(|error| format!("commitment path: {error}"))?;
    let leaf = segment::leaf_hash(seq, &segment::block_digest(&body_digest, &commit_root));
    let path = position
        .inclusion
        .iter()
        .map(|node| decode_hash(node, "inclusion node"))
        .collect::<Result<Vec<_>, _>>()?;
    let checkpoint = SignedCheckpoint::from_text(position.checkpoint)?;
    checkpoint
        .verify(key)
        .map_err(|reason| format!("checkpoint: {reason}"))?;
    let head = checkpoint
        .body
        .groups
        .get(group)
        .ok_or("the checkpoint does not cover this group")?;
    if head.size != position.tree_size {
        return Err(format!(
            "tree_size {} differs from the checkpoint's {}",
            position.tree_size, head.size
        ));
    }
    merkle::verify_inclusion(seq, head.size, &leaf, &path, &head.root).map_err(|error| {
        format!("inclusion proof does not lead to the checkpoint root: {error}")
    })?;
    Ok(checkpoint)
}
