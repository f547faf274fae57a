//! The journal's error type.

use std::io;
use std::path::PathBuf;

/// Result alias for journal operations.
pub type Result<T, E = JournalError> = std::result::Result<T, E>;

/// Everything that can go wrong in the journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A file operation failed.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Stored bytes are not what the format allows (corruption, tampering or a bug).
    #[error("corrupt {path}: {reason}")]
    Corrupt {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key is missing, malformed or does not decrypt.
    #[error("key error: {0}")]
    Key(String),
    /// A forward-secure signing epoch cannot be used (expired, or already erased).
    #[error("signing error: {0}")]
    Signing(String),
    /// The caller asked for something that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller's request is invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A previous fsync failed: the writer refuses further writes (its state on disk is unknown).
    #[error("journal writer poisoned by an earlier write failure: {0}")]
    Poisoned(String),
}

impl JournalError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| JournalError::Io {
            context,
            path,
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        JournalError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
