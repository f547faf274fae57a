//! Where things live in a data directory.
//!
//! ```text
//! DIR/
//!   verification.key             public verification key (hand it to auditors)
//!   keys/master.key              master key, mode 0600 (unless kept elsewhere)
//!   keys/signing.state           current forward-secure signing seed, sealed by the master key
//!   keys/epoch-pubkeys           every epoch's public key (public, derived at init)
//!   keys/data/<group>/<seq>.dek  per-segment data keys, wrapped by the master key
//!   journal/groups/<group>/<first-seq>.seg    segments (blocks of encrypted records)
//!   journal/groups/<group>/<first-seq>.tomb   signed retention tombstones
//!   journal/groups/<group>/<upto-seq>.shred   signed crypto-shreds (data keys destroyed)
//!   journal/checkpoints/<first-ckpt>.ckpt     signed checkpoint logs
//!   meta/                        metadata store (tokens, retention, cursors)
//! ```
//! Every byte under `journal/` is covered by `seclog verify`.

use std::path::{Path, PathBuf};

use seclog_model::GroupName;

/// Paths of one data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    master_key: PathBuf,
}

impl Layout {
    /// Layout rooted at `root`, with the master key at `keys/master.key` unless `master_key` is given.
    pub fn new(root: impl Into<PathBuf>, master_key: Option<PathBuf>) -> Self {
        let root = root.into();
        let master_key = master_key.unwrap_or_else(|| root.join("keys").join("master.key"));
        Layout { root, master_key }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The master key file.
    pub fn master_key(&self) -> &Path {
        &self.master_key
    }
    /// The public verification key.
    pub fn verification_key(&self) -> PathBuf {
        self.root.join("verification.key")
    }
    /// Key material directory.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }
    /// Sealed signing state.
    pub fn signing_state(&self) -> PathBuf {
        self.keys_dir().join("signing.state")
    }
    /// Public keys of every epoch.
    pub fn epoch_pubkeys(&self) -> PathBuf {
        self.keys_dir().join("epoch-pubkeys")
    }
    /// Wrapped data keys of one group.
    pub fn data_keys_dir(&self, group: &GroupName) -> PathBuf {
        self.keys_dir().join("data").join(group.to_dir_name())
    }
    /// The wrapped data key of one segment.
    pub fn data_key(&self, group: &GroupName, first_seq: u64) -> PathBuf {
        self.data_keys_dir(group)
            .join(format!("{first_seq:020}.dek"))
    }
    /// Everything `verify` covers.
    pub fn journal_dir(&self) -> PathBuf {
        self.root.join("journal")
    }
    /// Directory holding one directory per group.
    pub fn groups_dir(&self) -> PathBuf {
        self.journal_dir().join("groups")
    }
    /// One group's segments and tombstones.
    pub fn group_dir(&self, group: &GroupName) -> PathBuf {
        self.groups_dir().join(group.to_dir_name())
    }
    /// A segment file.
    pub fn segment(&self, group: &GroupName, first_seq: u64) -> PathBuf {
        self.group_dir(group).join(segment_file_name(first_seq))
    }
    /// A tombstone file.
    pub fn tombstone(&self, group: &GroupName, first_seq: u64) -> PathBuf {
        self.group_dir(group).join(format!("{first_seq:020}.tomb"))
    }
    /// A shred file: records of `group` below `upto_seq` crypto-shredded.
    pub fn shred(&self, group: &GroupName, upto_seq: u64) -> PathBuf {
        self.group_dir(group).join(format!("{upto_seq:020}.shred"))
    }
    /// Directory of checkpoint logs.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.journal_dir().join("checkpoints")
    }
    /// Metadata directory.
    pub fn meta_dir(&self) -> PathBuf {
        self.root.join("meta")
    }
}

/// File name of the segment starting at `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// Parses `<20 digits>.<ext>` file names; `None` for anything else.
pub(crate) fn parse_numbered(name: &str, extension: &str) -> Option<u64> {
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Path relative to the data directory, for messages.
pub fn display_relative(layout: &Layout, path: &Path) -> String {
    path.strip_prefix(layout.root())
        .unwrap_or(path)
        .display()
        .to_string()
}
