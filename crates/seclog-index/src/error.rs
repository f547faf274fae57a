//! The crate's error type.

/// What can go wrong while indexing or opening the index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The journal could not be read.
    #[error("journal: {0}")]
    Journal(#[from] seclog_journal::JournalError),
    /// tantivy failed.
    #[error("index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Index metadata is not what this version writes.
    #[error("invalid index: {0}")]
    Invalid(String),
}

impl IndexError {
    pub(crate) fn io(
        what: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> IndexError {
        let path = path.display().to_string();
        move |source| IndexError::Io { what, path, source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
