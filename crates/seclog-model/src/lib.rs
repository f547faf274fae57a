//! Core value types shared by every seclog crate: timestamps, group names and OCSF identifiers.
//!
//! No IO, no async. Everything here is plain data with validation.
//!
//! ```
//! use seclog_model::{GroupName, Timestamp};
//! let group = GroupName::parse("app/payments").unwrap();
//! assert_eq!(group.as_str(), "app/payments");
//! let t = Timestamp::parse_rfc3339("2026-11-27T15:41:33.5Z").unwrap();
//! assert_eq!(t.to_rfc3339(), "2026-11-27T15:41:33.500000000Z");
//! ```

mod group;
pub mod ocsf;
mod timestamp;

pub use group::{GroupName, GroupNameError};
pub use timestamp::{Timestamp, TimestampError, parse_duration_secs};
