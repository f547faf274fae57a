//! The seclog journal: append-only, encrypted, tamper-evident storage of log events per group.
//!
//! Records are batched into blocks, each zstd-compressed then encrypted (XChaCha20-Poly1305)
//! under a per-segment data key wrapped by the master key. Each group has an RFC 6962 Merkle tree
//! whose leaves commit to the stored encrypted bytes, and checkpoints over all trees are signed
//! with forward-secure epoch keys. [`verify::verify`] checks a store with the public verification
//! key alone; [`proof`] builds and checks single-event proofs offline.
//!
//! Synchronous and free of tokio: the server drives the [`JournalWriter`] from one thread.
//!
//! ```
//! use seclog_journal::{JournalConfig, JournalWriter, Layout, MasterKey, Record, RecordKind, EpochParams, Signer};
//! use seclog_model::{GroupName, Timestamp};
//! let dir = tempfile::tempdir().unwrap();
//! let layout = Layout::new(dir.path(), None);
//! let master = MasterKey::create(layout.master_key()).unwrap();
//! let now = Timestamp::now();
//! let key = Signer::init(&layout, &master, EpochParams { start_unix: now.unix_seconds(), epoch_secs: 3600, count: 24 }).unwrap();
//! let (mut writer, _) = JournalWriter::open(&layout, master, JournalConfig::default()).unwrap();
//! let record = Record { time: now, observed_time: now, kind: RecordKind::Text, source: "doc".into(), attrs: vec![], raw: b"hello".to_vec() };
//! let group = GroupName::parse("app/demo").unwrap();
//! writer.append(&group, &[record.encode()], now).unwrap();
//! writer.seal(now).unwrap();
//! let report = seclog_journal::verify::verify(&layout, &key, None).unwrap();
//! assert!(report.is_intact(), "{:?}", report.findings);
//! ```

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]
#![warn(missing_docs)]

pub mod checkpoint;
mod codec;
pub mod crypto;
mod error;
mod frame;
mod fsutil;
pub mod layout;
pub mod merkle;
pub mod proof;
mod reader;
mod record;
pub mod rotation;
pub mod segment;
pub mod shred;
pub mod signer;
mod store;
mod textform;
pub mod tombstone;
pub mod verify;
mod writer;

pub use checkpoint::{CheckpointBody, GroupHead, SignedCheckpoint, latest_checkpoint};
pub use crypto::{MasterKey, SecretKey};
pub use error::{JournalError, Result};
pub use layout::Layout;
pub use reader::{CursorStore, Follower, JournalReader, StoredEvent};
pub use record::{Record, RecordKind, RecordView};
pub use signer::{EpochParams, Signer, VerificationKey};
pub use store::{first_retained, group_extent, group_names};
pub use writer::{DurableHeads, JournalConfig, JournalWriter};
