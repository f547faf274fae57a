//! seclog's metadata store: API tokens (hashes only), retention policies and consumer cursors,
//! in one embedded transactional database (`meta/seclog.redb`).
//!
//! ```
//! use seclog_meta::{MetaStore, Role};
//! let dir = tempfile::tempdir().unwrap();
//! let meta = MetaStore::open(dir.path()).unwrap();
//! let (token, info) = meta.create_token(Role::Ingest, "app/*", None).unwrap();
//! assert_eq!(meta.authenticate(&token).unwrap().unwrap().id, info.id);
//! assert!(meta.authenticate("slt_wrong").unwrap().is_none());
//! ```

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]
#![warn(missing_docs)]

mod producers;
mod retention;
mod tokens;

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

pub use producers::{PendingProducerBatch, ProducerState};
pub use retention::{LegalHold, RetentionChange, RetentionMode, RetentionPolicy};
pub use tokens::{Role, TokenInfo, hash_token};

const TOKENS: TableDefinition<&str, &str> = TableDefinition::new("tokens");
const RETENTION: TableDefinition<&str, u32> = TableDefinition::new("retention_days");
const RETENTION_MODES: TableDefinition<&str, &str> = TableDefinition::new("retention_modes");
const LEGAL_HOLDS: TableDefinition<&str, &str> = TableDefinition::new("legal_holds");
const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("cursors");
const IMPORTS: TableDefinition<&str, &str> = TableDefinition::new("imports");
const IMPORTED_OBJECTS: TableDefinition<&str, &str> = TableDefinition::new("imported_objects");
const STATES: TableDefinition<&str, &[u8]> = TableDefinition::new("consumer_states");
const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("outbox");
const OUTBOX_DUE: TableDefinition<&str, ()> = TableDefinition::new("outbox_due");
const PRODUCERS: TableDefinition<&str, &str> = TableDefinition::new("producers");

/// Result alias.
pub type Result<T, E = MetaError> = std::result::Result<T, E>;

/// Metadata store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The database is held by a running seclog.
    #[error(
        "the metadata store {0} is in use by a running seclog; use the HTTP API or stop the server"
    )]
    Locked(String),
    /// Any other storage failure.
    #[error("metadata store: {0}")]
    Storage(String),
    /// Invalid input.
    #[error("{0}")]
    Invalid(String),
}

fn storage(error: impl std::fmt::Display) -> MetaError {
    MetaError::Storage(error.to_string())
}

/// The metadata database.
#[derive(Debug)]
pub struct MetaStore {
    db: Database,
    /// Every token's hash and description, kept in memory and compared in constant time.
    tokens: std::sync::RwLock<Vec<tokens::Stored>>,
}

impl MetaStore {
    /// Opens (or creates) `DIR/seclog.redb`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        let path = dir.join("seclog.redb");
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(MetaError::Locked(path.display().to_string()));
            }
            Err(error) => return Err(storage(error)),
        };
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(TOKENS).map_err(storage)?;
        txn.open_table(RETENTION).map_err(storage)?;
        txn.open_table(RETENTION_MODES).map_err(storage)?;
        txn.open_table(LEGAL_HOLDS).map_err(storage)?;
        txn.open_table(CURSORS).map_err(storage)?;
        txn.open_table(IMPORTS).map_err(storage)?;
        txn.open_table(IMPORTED_OBJECTS).map_err(storage)?;
        txn.open_table(STATES).map_err(storage)?;
        txn.open_table(OUTBOX).map_err(storage)?;
        txn.open_table(OUTBOX_DUE).map_err(storage)?;
        txn.open_table(PRODUCERS).map_err(storage)?;
        txn.commit().map_err(storage)?;
        let tokens = tokens::load(&db)?;
        Ok(MetaStore {
            db,
            tokens: std::sync::RwLock::new(tokens),
        })
    }

    /// A consumer's next sequence number in a group (0 when new).
    pub fn cursor(&self, consumer: &str, group: &str) -> Result<u64> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(CURSORS).map_err(storage)?;
        let key = format!("{consumer}\u{0}{group}");
        Ok(table
            .get(key.as_str())
            .map_err(storage)?
            .map_or(0, |value| value.value()))
    }

    /// Durably stores a consumer's position.
    pub fn set_cursor(&self, consumer: &str, group: &str, next_seq: u64) -> Result<()> {
        let txn = self.db.begin_write().map_err(storage)?;
        let key = format!("{consumer}\u{0}{group}");
        txn.open_table(CURSORS)
            .map_err(storage)?
            .insert(key.as_str(), next_seq)
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }
}

impl MetaStore {
    /// A consumer's saved state (opaque bytes: the consumer seals what it keeps).
    pub fn consumer_state(&self, consumer: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(STATES).map_err(storage)?;
        Ok(table
            .get(consumer)
            .map_err(storage)?
            .map(|value| value.value().to_vec()))
    }

    /// Durably replaces a consumer's state, in one transaction.
    pub fn set_consumer_state(&self, consumer: &str, state: &[u8]) -> Result<()> {
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(STATES)
            .map_err(storage)?
            .insert(consumer, state)
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }
}

/// The key under which an outbox entry waits: its queue, its due time, its id.
fn due_key(queue: &str, due_ms: i64, id: &str) -> String {
    format!("{queue}\u{0}{:020}\u{0}{id}", due_ms.max(0))
}

fn item_key(queue: &str, id: &str) -> String {
    format!("{queue}\u{0}{id}")
}

/// A delivery to make: its queue (a destination), its id (unique in the queue), its state
/// (opaque bytes) and when it is due (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// The queue.
    pub queue: String,
    /// Unique in the queue.
    pub id: String,
    /// The caller's state.
    pub value: Vec<u8>,
    /// When to attempt it; `None` when it is finished.
    pub due_ms: Option<i64>,
}

impl MetaStore {
    /// Adds the items not there yet, and moves `consumer`'s cursor in `group` to `next_seq`, in
    /// one transaction (so a crash neither loses nor doubles a delivery). Returns how many were
    /// new.
    pub fn outbox_enqueue(
        &self,
        consumer: &str,
        group: &str,
        next_seq: u64,
        items: &[OutboxItem],
    ) -> Result<usize> {
        let txn = self.db.begin_write().map_err(storage)?;
        let mut added = 0;
        {
            let mut outbox = txn.open_table(OUTBOX).map_err(storage)?;
            let mut due = txn.open_table(OUTBOX_DUE).map_err(storage)?;
            for item in items {
                let key = item_key(&item.queue, &item.id);
                if outbox.get(key.as_str()).map_err(storage)?.is_some() {
                    continue;
                }
                outbox
                    .insert(key.as_str(), item.value.as_slice())
                    .map_err(storage)?;
                if let Some(at) = item.due_ms {
                    due.insert(due_key(&item.queue, at, &item.id).as_str(), ())
                        .map_err(storage)?;
                }
                added += 1;
            }
            let cursor = format!("{consumer}\u{0}{group}");
            txn.open_table(CURSORS)
                .map_err(storage)?
                .insert(cursor.as_str(), next_seq)
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(added)
    }

    /// Up to `limit` items of `queue` due at or before `now_ms`, earliest first.
    pub fn outbox_due(&self, queue: &str, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let due = txn.open_table(OUTBOX_DUE).map_err(storage)?;
        let outbox = txn.open_table(OUTBOX).map_err(storage)?;
        let from = format!("{queue}\u{0}");
        let to = format!("{queue}\u{0}{:020}\u{1}", now_ms.max(0));
        let mut items = Vec::new();
        for entry in due.range(from.as_str()..to.as_str()).map_err(storage)? {
            if items.len() >= limit {
                break;
            }
            let (key, _) = entry.map_err(storage)?;
            let key = key.value();
            let mut parts = key.splitn(3, '\u{0}');
            let (Some(_), Some(at), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if let Some(value) = outbox.get(item_key(queue, id).as_str()).map_err(storage)? {
                items.push(OutboxItem {
                    queue: queue.to_string(),
                    id: id.to_string(),
                    value: value.value().to_vec(),
                    due_ms: Some(at.parse().unwrap_or(0)),
                });
            }
        }
        Ok(items)
    }

    /// Replaces an item's state and due time (`None`: finished), given the due time it had.
    pub fn outbox_update(&self, item: &OutboxItem, previous_due_ms: Option<i64>) -> Result<()> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut outbox = txn.open_table(OUTBOX).map_err(storage)?;
            let mut due = txn.open_table(OUTBOX_DUE).map_err(storage)?;
            if let Some(at) = previous_due_ms {
                due.remove(due_key(&item.queue, at, &item.id).as_str())
                    .map_err(storage)?;
            }
            if let Some(at) = item.due_ms {
                due.insert(due_key(&item.queue, at, &item.id).as_str(), ())
                    .map_err(storage)?;
            }
            outbox
                .insert(
                    item_key(&item.queue, &item.id).as_str(),
                    item.value.as_slice(),
                )
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    /// Every item's state, in queue and id order.
    pub fn outbox_all(&self) -> Result<Vec<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let outbox = txn.open_table(OUTBOX).map_err(storage)?;
        let mut all = Vec::new();
        for entry in outbox.iter().map_err(storage)? {
            let (_, value) = entry.map_err(storage)?;
            all.push(value.value().to_vec());
        }
        Ok(all)
    }
}

#[cfg(test)]
mod outbox_tests {
    use super::*;

    fn item(queue: &str, id: &str, due_ms: Option<i64>) -> OutboxItem {
        OutboxItem {
            queue: queue.into(),
            id: id.into(),
            value: id.as_bytes().to_vec(),
            due_ms,
        }
    }

    #[test]
    fn items_are_added_once_and_come_due_in_order_per_queue() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(dir.path()).unwrap();
        let items = [
            item("a", "1", Some(200)),
            item("a", "2", Some(100)),
            item("b", "1", Some(50)),
        ];
        assert_eq!(meta.outbox_enqueue("outbox", "g", 3, &items).unwrap(), 3);
        assert_eq!(meta.outbox_enqueue("outbox", "g", 3, &items).unwrap(), 0);
        assert_eq!(meta.cursor("outbox", "g").unwrap(), 3);
        let due: Vec<String> = meta
            .outbox_due("a", 150, 10)
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(due, ["2"]);
        let due: Vec<String> = meta
            .outbox_due("a", 250, 10)
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(due, ["2", "1"]);
        let mut done = meta.outbox_due("a", 150, 10).unwrap().remove(0);
        let previous = done.due_ms;
        done.due_ms = None;
        done.value = b"done".to_vec();
        meta.outbox_update(&done, previous).unwrap();
        let due: Vec<String> = meta
            .outbox_due("a", 250, 10)
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(due, ["1"]);
        assert_eq!(meta.outbox_all().unwrap().len(), 3);
    }
}

/// How far the import of one object (identified by the SHA-256 of its content) into one group
/// has come.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportState {
    /// The object's name when it was first imported (a path or `s3://bucket/key`).
    pub object: String,
    /// The format it was read as.
    pub format: String,
    /// Records (events and dead letters) stored so far, in the object's order.
    pub items_done: u64,
    /// Events stored.
    pub events: u64,
    /// Records stored as dead letters.
    pub rejected: u64,
    /// Every record of the object is stored.
    pub complete: bool,
    /// The batch that was being committed when this state was written: after a crash, what of
    /// it is in the journal is counted instead of guessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingBatch>,
}

/// A batch of an import being committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingBatch {
    /// Records (events and dead letters) it stands for.
    pub items: u64,
    /// Events in it.
    pub events: u64,
    /// Dead letters in it.
    pub dead: u64,
    /// The group's durable size before it.
    pub group_next: u64,
    /// The dead-letter group's durable size before it.
    pub dead_next: u64,
}

impl MetaStore {
    /// The import state of an object in a group.
    pub fn import_state(&self, group: &str, sha256: &str) -> Result<Option<ImportState>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(IMPORTS).map_err(storage)?;
        let key = format!("{group}\u{0}{sha256}");
        let Some(value) = table.get(key.as_str()).map_err(storage)? else {
            return Ok(None);
        };
        serde_json::from_str(value.value())
            .map(Some)
            .map_err(|error| MetaError::Invalid(format!("import state of {sha256}: {error}")))
    }

    /// Every object import of a group: content hash and state.
    pub fn imports(&self, group: &str) -> Result<Vec<(String, ImportState)>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(IMPORTS).map_err(storage)?;
        let start = format!("{group}\u{0}");
        let end = format!("{group}\u{1}");
        let mut out = Vec::new();
        for entry in table.range(start.as_str()..end.as_str()).map_err(storage)? {
            let (key, value) = entry.map_err(storage)?;
            let sha256 = key
                .value()
                .rsplit('\u{0}')
                .next()
                .unwrap_or_default()
                .to_string();
            let state: ImportState = serde_json::from_str(value.value()).map_err(|error| {
                MetaError::Invalid(format!("import state of {sha256}: {error}"))
            })?;
            out.push((sha256, state));
        }
        Ok(out)
    }

    /// The content hash of a stored object version (its name and entity tag) imported
    /// completely into a group, so that a bucket can be listed again without fetching what is
    /// already stored.
    pub fn imported_object(&self, group: &str, object: &str, etag: &str) -> Result<Option<String>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(IMPORTED_OBJECTS).map_err(storage)?;
        let key = format!("{group}\u{0}{object}\u{0}{etag}");
        Ok(table
            .get(key.as_str())
            .map_err(storage)?
            .map(|value| value.value().to_string()))
    }

    /// Records that an object version was imported completely (see [`MetaStore::imported_object`]).
    pub fn set_imported_object(
        &self,
        group: &str,
        object: &str,
        etag: &str,
        sha256: &str,
    ) -> Result<()> {
        let txn = self.db.begin_write().map_err(storage)?;
        let key = format!("{group}\u{0}{object}\u{0}{etag}");
        txn.open_table(IMPORTED_OBJECTS)
            .map_err(storage)?
            .insert(key.as_str(), sha256)
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }

    /// Durably stores the import state of an object in a group.
    pub fn set_import_state(&self, group: &str, sha256: &str, state: &ImportState) -> Result<()> {
        let value =
            serde_json::to_string(state).map_err(|error| MetaError::Invalid(error.to_string()))?;
        let txn = self.db.begin_write().map_err(storage)?;
        let key = format!("{group}\u{0}{sha256}");
        txn.open_table(IMPORTS)
            .map_err(storage)?
            .insert(key.as_str(), value.as_str())
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_and_cursors_survive_reopen_and_lock_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        {
            let meta = MetaStore::open(dir.path()).unwrap();
            meta.set_retention("app/x", 30).unwrap();
            assert!(meta.set_retention("app/x", 0).is_err());
            meta.set_cursor("indexer", "app/x", 42).unwrap();
            assert!(matches!(
                MetaStore::open(dir.path()),
                Err(MetaError::Locked(_))
            ));
        }
        let meta = MetaStore::open(dir.path()).unwrap();
        assert_eq!(
            meta.retention_policies().unwrap(),
            vec![RetentionPolicy {
                group: "app/x".into(),
                days: 30,
                mode: RetentionMode::Governance,
            }]
        );
        assert_eq!(meta.cursor("indexer", "app/x").unwrap(), 42);
        assert_eq!(meta.cursor("indexer", "app/y").unwrap(), 0);
    }
}
