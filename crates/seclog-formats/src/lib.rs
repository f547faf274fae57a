//! Pure, synchronous decoders for what sources receive. No IO, no async, no panics.
//!
//! Today this is the body of `POST /api/v1/ingest/{group}` (after HTTP decompression):
//!
//! - [`decode_ingest_body`] splits a body into [`IngestEvent`]s and [`Rejected`] records. A
//!   body is either newline-delimited records (JSON objects and free text, mixed freely) or
//!   one JSON array of objects. A bad record never spoils its neighbours: it is kept byte for
//!   byte with a reason, for the dead-letter group.
//! - [`extract_event_time`] reads an event's own time from the first recognized top-level
//!   field (`@timestamp`, `eventTime`, `timestamp`, `time`, `ts`), in the same pass that
//!   validates the JSON, without building a `serde_json::Value`.
//! - [`parse_time_value`] reads one timestamp value: RFC 3339 or epoch s/ms/µs/ns.
//!
//! Events borrow from the body, so decoding allocates only the two result vectors and the
//! reasons of rejected records.
//!
//! ```
//! use seclog_formats::{EventKind, decode_ingest_body};
//!
//! let body = b"{\"eventTime\":\"2023-07-10T11:45:00Z\",\"eventName\":\"GetObject\"}\r\n\
//!              sshd[42]: Accepted publickey for root\n\
//!              \n\
//!              {\"eventTime\":\n";
//! let decoded = decode_ingest_body(body)?;
//!
//! let [json, text] = decoded.events.as_slice() else { panic!("two events") };
//! assert_eq!(json.kind, EventKind::Json);
//! assert_eq!(json.time.map(|t| t.to_rfc3339()).as_deref(), Some("2023-07-10T11:45:00.000000000Z"));
//! assert_eq!((text.kind, text.line, text.raw), (EventKind::Text, 2, &b"sshd[42]: Accepted publickey for root"[..]));
//!
//! let [broken] = decoded.rejected.as_slice() else { panic!("one rejected record") };
//! assert_eq!(broken.raw, b"{\"eventTime\":");
//! assert_eq!(broken.reason, "line 4: invalid JSON: EOF while parsing a value at column 13");
//! # Ok::<(), seclog_formats::BodyError>(())
//! ```

#![deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
#![warn(missing_docs)]

mod body;
pub mod bulk;
pub mod firehose;
pub mod hec;
pub mod loki;
mod object_scan;
pub mod otlp;
pub mod service;
pub mod syslog;
mod time_value;

pub use body::{BodyError, DecodedBody, EventKind, IngestEvent, Rejected, decode_ingest_body};
pub use object_scan::extract_event_time;
pub use seclog_model::Timestamp;
pub use time_value::parse_time_value;
