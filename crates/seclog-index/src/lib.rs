//! The search index: an encrypted tantivy index per group and receipt day, fed from the journal
//! by a restart-safe consumer ([`Indexer`]) and opened for queries through the [`Catalog`].
//!
//! Invariants: no plaintext reaches disk ([`crypt_dir`]); a piece's commit carries the journal
//! position it has indexed up to, so index and cursor never disagree; the index holds no event
//! content that is not also in the journal, and can be deleted and rebuilt at any time.

pub mod catalog;
pub mod crypt_dir;
mod error;
pub mod fields;
pub mod indexer;
pub mod schema;
pub mod service;

pub use catalog::{Catalog, Piece, PieceMeta};
pub use error::{IndexError, Result};
pub use indexer::Indexer;
pub use schema::IndexSchema;
pub use service::{IndexService, IndexStats};
