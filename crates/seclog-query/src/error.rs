//! The crate's error type.

/// Why a query could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The query text is not valid; `offset` is the byte where the problem starts.
    #[error("{message} (line {line}, column {column})")]
    Parse {
        /// What is wrong.
        message: String,
        /// Byte offset in the query.
        offset: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
    },
    /// A request parameter is invalid (time range, groups, limits).
    #[error("{0}")]
    Invalid(String),
    /// The index failed.
    #[error("index: {0}")]
    Index(#[from] seclog_index::IndexError),
    /// tantivy failed while searching.
    #[error("search: {0}")]
    Search(#[from] tantivy::TantivyError),
    /// The journal could not be read.
    #[error("journal: {0}")]
    Journal(#[from] seclog_journal::JournalError),
}

impl QueryError {
    pub(crate) fn parse(text: &str, offset: usize, message: impl Into<String>) -> QueryError {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        QueryError::Parse {
            message: message.into(),
            offset,
            line,
            column,
        }
    }
}
