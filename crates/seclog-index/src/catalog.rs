//! The pieces of the index: one tantivy index per group and receipt day, each with its own
//! encrypted directory under `index/<group>/<first seq>/`.
//!
//! A piece's commit payload records which journal records it holds (`first_seq..next_seq`), so
//! the index and its cursor change in one atomic commit: after a crash the indexer resumes at
//! the last piece's `next_seq`, and nothing is indexed twice or skipped.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use seclog_journal::{Layout, MasterKey};
use seclog_model::GroupName;
use serde::{Deserialize, Serialize};
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher};

use crate::crypt_dir::EncryptedDirectory;
use crate::error::{IndexError, Result};
use crate::schema::IndexSchema;

const PIECE_VERSION: u32 = 2;

/// What a piece holds, stored as its commit payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceMeta {
    /// Format version.
    pub version: u32,
    /// First journal sequence number the piece was started at.
    pub first_seq: u64,
    /// One past the last sequence number indexed.
    pub next_seq: u64,
    /// Earliest event time (Unix ns), `i64::MAX` when empty.
    pub min_time: i64,
    /// Latest event time (Unix ns), `i64::MIN` when empty.
    pub max_time: i64,
    /// Documents indexed.
    pub docs: u64,
    /// Receipt day (days since 1970-01-01 UTC) of the records it holds.
    pub day: i64,
}

impl PieceMeta {
    pub(crate) fn new(first_seq: u64, day: i64) -> Self {
        PieceMeta {
            version: PIECE_VERSION,
            first_seq,
            next_seq: first_seq,
            min_time: i64::MAX,
            max_time: i64::MIN,
            docs: 0,
            day,
        }
    }

    /// Whether the piece may hold events with times in `start..end` (Unix ns).
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.docs > 0 && self.min_time < end && self.max_time >= start
    }
}

/// One piece: an index, its reader, and what it holds.
pub struct Piece {
    /// Its group.
    pub group: GroupName,
    /// Where it lives.
    pub dir: PathBuf,
    pub(crate) index: Index,
    reader: IndexReader,
    meta: RwLock<PieceMeta>,
}

impl std::fmt::Debug for Piece {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Piece")
            .field("group", &self.group)
            .field("meta", &self.meta())
            .finish_non_exhaustive()
    }
}

impl Piece {
    /// What the piece holds as of its last commit.
    pub fn meta(&self) -> PieceMeta {
        self.meta
            .read()
            .map(|meta| meta.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// A consistent view of the piece for one query.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// Lets readers see the segments background merges have made since the last reload (a
    /// merge changes the index's segment list without a commit of the indexer's).
    pub(crate) fn refresh(&self) -> Result<()> {
        let searcher = self.reader.searcher();
        let open: Vec<_> = searcher
            .segment_readers()
            .iter()
            .map(|segment| segment.segment_id())
            .collect();
        let listed = self.index.searchable_segment_ids()?;
        if listed.len() != open.len() || listed.iter().any(|id| !open.contains(id)) {
            self.reader.reload()?;
        }
        Ok(())
    }

    pub(crate) fn published(&self, meta: PieceMeta) -> Result<()> {
        // Widen what the piece claims before readers see the new documents.
        if let Ok(mut current) = self.meta.write() {
            *current = meta;
        }
        self.reader.reload()?;
        Ok(())
    }
}

/// Every piece of every group.
pub struct Catalog {
    root: PathBuf,
    master: MasterKey,
    schema: IndexSchema,
    groups: RwLock<BTreeMap<GroupName, Vec<Arc<Piece>>>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Catalog")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn piece_dir_name(first_seq: u64) -> String {
    format!("{first_seq:020}")
}

impl Catalog {
    /// Opens the index of a data directory, dropping pieces that never reached a first commit.
    pub fn open(layout: &Layout, master: MasterKey) -> Result<Arc<Catalog>> {
        let root = layout.root().join("index");
        fs::create_dir_all(&root).map_err(IndexError::io("create", &root))?;
        let catalog = Catalog {
            root: root.clone(),
            master,
            schema: IndexSchema::new(),
            groups: RwLock::new(BTreeMap::new()),
        };
        let mut groups = BTreeMap::new();
        for entry in fs::read_dir(&root).map_err(IndexError::io("list", &root))? {
            let entry = entry.map_err(IndexError::io("list", &root))?;
            let Some(group) = entry
                .file_name()
                .to_str()
                .and_then(|name| GroupName::from_dir_name(name).ok())
            else {
                continue;
            };
            let mut pieces = Vec::new();
            let group_dir = entry.path();
            let mut names: Vec<(u64, PathBuf)> = fs::read_dir(&group_dir)
                .map_err(IndexError::io("list", &group_dir))?
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| {
                    let first = entry.file_name().to_str()?.parse::<u64>().ok()?;
                    Some((first, entry.path()))
                })
                .collect();
            names.sort();
            let mut unreadable = false;
            for (first_seq, dir) in names {
                match catalog.open_piece(&group, first_seq, &dir) {
                    Ok(Some(piece)) => pieces.push(Arc::new(piece)),
                    Ok(None) => {
                        tracing::warn!(piece = %dir.display(), "removing index piece without a commit");
                        fs::remove_dir_all(&dir).map_err(IndexError::io("remove", &dir))?;
                    }
                    Err(error) => {
                        tracing::error!(piece = %dir.display(), error = %error, "unreadable index piece; the group's index is rebuilt from the journal");
                        unreadable = true;
                        break;
                    }
                }
            }
            if unreadable {
                // The index is derived: dropping the group's pieces makes the indexer start
                // again from the journal, without a gap where the bad piece was.
                drop(pieces);
                fs::remove_dir_all(&group_dir).map_err(IndexError::io("remove", &group_dir))?;
                continue;
            }
            groups.insert(group, pieces);
        }
        if let Ok(mut slot) = catalog.groups.write() {
            *slot = groups;
        }
        Ok(Arc::new(catalog))
    }

    /// The schema every piece uses.
    pub fn schema(&self) -> &IndexSchema {
        &self.schema
    }

    fn directory(
        &self,
        group: &GroupName,
        first_seq: u64,
        dir: &Path,
    ) -> Result<EncryptedDirectory> {
        let context = format!("{}/{}", group.to_dir_name(), piece_dir_name(first_seq));
        EncryptedDirectory::open(dir, &context, self.master.clone())
            .map_err(IndexError::io("open", dir))
    }

    fn open_piece(&self, group: &GroupName, first_seq: u64, dir: &Path) -> Result<Option<Piece>> {
        let directory = self.directory(group, first_seq, dir)?;
        if !Index::exists(&directory).map_err(|error| IndexError::Invalid(error.to_string()))? {
            return Ok(None);
        }
        let index = Index::open(directory)?;
        IndexSchema::register_tokenizers(&index);
        let Some(payload) = index.load_metas()?.payload else {
            return Ok(None);
        };
        let meta: PieceMeta = serde_json::from_str(&payload)
            .map_err(|error| IndexError::Invalid(format!("{}: {error}", dir.display())))?;
        if meta.version != PIECE_VERSION || meta.first_seq != first_seq {
            return Err(IndexError::Invalid(format!(
                "{}: piece metadata does not match its place",
                dir.display()
            )));
        }
        Ok(Some(self.piece(group, dir, index, meta)?))
    }

    fn piece(&self, group: &GroupName, dir: &Path, index: Index, meta: PieceMeta) -> Result<Piece> {
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Piece {
            group: group.clone(),
            dir: dir.to_path_buf(),
            index,
            reader,
            meta: RwLock::new(meta),
        })
    }

    /// Starts an empty piece (it becomes permanent with its first commit).
    pub(crate) fn create_piece(
        &self,
        group: &GroupName,
        first_seq: u64,
        day: i64,
    ) -> Result<Arc<Piece>> {
        let dir = self
            .root
            .join(group.to_dir_name())
            .join(piece_dir_name(first_seq));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(IndexError::io("remove", &dir))?;
        }
        let directory = self.directory(group, first_seq, &dir)?;
        let index = Index::create(directory, self.schema.schema.clone(), Default::default())?;
        IndexSchema::register_tokenizers(&index);
        let piece = Arc::new(self.piece(group, &dir, index, PieceMeta::new(first_seq, day))?);
        if let Ok(mut groups) = self.groups.write() {
            groups
                .entry(group.clone())
                .or_default()
                .push(Arc::clone(&piece));
        }
        Ok(piece)
    }

    /// Groups with at least one piece.
    pub fn groups(&self) -> Vec<GroupName> {
        self.groups
            .read()
            .map(|groups| groups.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The pieces of `group`, oldest first.
    pub fn pieces(&self, group: &GroupName) -> Vec<Arc<Piece>> {
        self.groups
            .read()
            .ok()
            .and_then(|groups| groups.get(group).cloned())
            .unwrap_or_default()
    }

    /// The next journal record of `group` the index is waiting for.
    pub fn next_seq(&self, group: &GroupName) -> u64 {
        self.pieces(group)
            .iter()
            .rev()
            .map(|piece| piece.meta())
            .find(|meta| meta.docs > 0 || meta.next_seq > meta.first_seq)
            .map(|meta| meta.next_seq)
            .unwrap_or(0)
    }

    /// Drops the pieces of `group` whose records all precede `first_retained` (deleted by
    /// retention in the journal). Returns how many were dropped.
    pub fn drop_expired(&self, group: &GroupName, first_retained: u64) -> Result<usize> {
        let expired: Vec<Arc<Piece>> = {
            let Ok(mut groups) = self.groups.write() else {
                return Ok(0);
            };
            let Some(pieces) = groups.get_mut(group) else {
                return Ok(0);
            };
            // The newest piece always stays: it carries the cursor.
            let keep_from = pieces
                .iter()
                .position(|piece| piece.meta().next_seq > first_retained)
                .unwrap_or(pieces.len().saturating_sub(1));
            pieces.drain(..keep_from).collect()
        };
        for piece in &expired {
            fs::remove_dir_all(&piece.dir).map_err(IndexError::io("remove", &piece.dir))?;
            tracing::info!(group = %group, piece = %piece.dir.display(), "index piece expired with its journal records");
        }
        Ok(expired.len())
    }

    /// Forgets and deletes every piece of `group` (for a rebuild).
    pub fn remove_group(&self, group: &GroupName) -> Result<()> {
        if let Ok(mut groups) = self.groups.write() {
            groups.remove(group);
        }
        let dir = self.root.join(group.to_dir_name());
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(IndexError::io("remove", &dir)(error)),
        }
    }
}
