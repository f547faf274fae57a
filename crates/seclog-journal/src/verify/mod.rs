//! Offline verification of a data directory's `journal/` with only the public verification key.
//!
//! Every byte is checked: headers and frames by checksum and strict parsing, content by
//! recomputing each group's Merkle tree from the stored (encrypted) bytes and comparing it with
//! every signed checkpoint, checkpoints by signature, epoch and hash chain, deletions by signed
//! tombstones. A finding names the group, the file and the record range.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;

use seclog_model::{GroupName, Timestamp};

use crate::checkpoint::{CheckpointBody, SignedCheckpoint};
use crate::error::Result;
use crate::layout::{Layout, display_relative};
use crate::merkle::Hash;
use crate::signer::VerificationKey;
use crate::store::list_groups;

mod checkpoints;
mod group;
mod scan;

use checkpoints::{check_pinned, verify_checkpoints};
use group::verify_group;

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
    retention_days: Option<u32>,
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
                retention_days: head.retention_days,
                source: source.to_string(),
            });
    }
}
