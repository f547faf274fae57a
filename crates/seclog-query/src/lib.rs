//! The query language: CloudWatch Logs Insights commands (`fields`, `filter`, `stats`, `sort`,
//! `limit`, `dedup`, `parse`, `display`) after optional full-text terms, parsed to an AST
//! ([`ast`]), planned into an exact index filter ([`push`]) plus a row pipeline over fast
//! columns ([`exec`]), with event content read from the journal only when `@message` is needed.
//!
//! No IO except through the index catalog and the journal reader; no async.

pub mod ast;
mod error;
pub mod eval;
pub mod exec;
pub mod fields;
pub mod parser;
pub mod push;
pub mod value;

pub use error::QueryError;
pub use exec::{DEFAULT_LIMIT, Engine, Limits, QueryAnswer, QueryRequest};
pub use parser::parse;
pub use value::Value;
