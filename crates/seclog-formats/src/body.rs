//! The body of `POST /api/v1/ingest/{group}`, after HTTP decompression.
//!
//! ```text
//! line mode (first non-blank byte is not '[')      array mode (first non-blank byte is '[')
//!
//! EF BB BF                  optional BOM, dropped  [                    optional BOM first
//! {"eventTime":...}\n       line 1  Json           {"eventTime":...},   element 1  Json
//! \r\n                      line 2  blank, skipped "text",              element 2  rejected
//! sshd[42]: Accepted ...\n  line 3  Text           {"ts":1688989500}    element 3  Json
//! {"a":\r\n                 line 4  rejected       ]
//! [1,2]                     line 5  rejected       a syntax error anywhere rejects the body
//! ```
//!
//! In line mode every record stands alone: a bad line is rejected, kept byte for byte, and
//! the rest of the body still goes in.

use memchr::memchr;
use seclog_model::Timestamp;
use serde_json::value::RawValue;

use crate::object_scan::{Scanned, scan_json};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What kind of payload a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A JSON object, validated in full.
    Json,
    /// Any other non-blank UTF-8 line, such as a syslog message.
    Text,
}

/// One accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestEvent<'a> {
    /// The exact bytes of the line / array element (no trailing `"\n"` or `"\r\n"`).
    pub raw: &'a [u8],
    /// Whether `raw` is a JSON object or a text line.
    pub kind: EventKind,
    /// The event's own time (see [`extract_event_time`](crate::extract_event_time)); always
    /// `None` for text lines.
    pub time: Option<Timestamp>,
    /// 1-based line number, or 1-based element index for a JSON array body.
    pub line: usize,
}

/// One rejected record, kept byte for byte with the reason (it goes to the dead-letter group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected<'a> {
    /// The exact bytes of the line / array element (no trailing `"\n"` or `"\r\n"`).
    pub raw: &'a [u8],
    /// Why the record was refused, for people; starts with the line or element number.
    pub reason: String,
    /// 1-based line number, or 1-based element index for a JSON array body.
    pub line: usize,
}

/// A decoded ingest body: every non-blank record is in exactly one of the two lists, each in
/// body order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedBody<'a> {
    /// Records to store in the target group.
    pub events: Vec<IngestEvent<'a>>,
    /// Records for the dead-letter group.
    pub rejected: Vec<Rejected<'a>>,
}

/// Why a whole body was refused; individual bad records are [`Rejected`] instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is empty or holds only whitespace (and perhaps a BOM).
    #[error("empty body")]
    Empty,
    /// The body starts with `[` but does not parse as one JSON array; the text is serde_json's
    /// error, with line and column.
    #[error("body starts with '[' but is not a valid JSON array: {0}")]
    MalformedArray(String),
}

/// Decodes an ingest body into events and rejected records.
///
/// A UTF-8 BOM at the very start is dropped. If the first other non-whitespace byte is `[`,
/// the body must be one JSON array whose elements are objects; otherwise it is split into
/// lines on `\n` (one trailing `\r` removed), blank lines are skipped, lines starting (after
/// spaces and tabs) with `{` or `[` must be JSON objects, and other lines become text events.
/// Invalid UTF-8 rejects only its own line.
///
/// # Errors
///
/// [`BodyError::Empty`] for a body with no record at all, [`BodyError::MalformedArray`] for
/// an array body with a syntax error (nothing is accepted from it then).
pub fn decode_ingest_body(body: &[u8]) -> Result<DecodedBody<'_>, BodyError> {
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        None => Err(BodyError::Empty),
        Some(b'[') => decode_array(body),
        Some(_) => Ok(decode_lines(body)),
    }
}

fn decode_array(body: &[u8]) -> Result<DecodedBody<'_>, BodyError> {
    let elements: Vec<&RawValue> = serde_json::from_slice(body)
        .map_err(|error| BodyError::MalformedArray(error.to_string()))?;
    let mut decoded = DecodedBody::default();
    for (index, element) in elements.into_iter().enumerate() {
        let number = index + 1;
        let raw = element.get();
        // A RawValue starts at its first byte, so this is exactly "the element is an object".
        let scanned = if raw.starts_with('{') {
            scan_json(raw)
        } else {
            Ok(Scanned::NotObject)
        };
        match scanned {
            Ok(Scanned::Object(time)) => decoded.events.push(IngestEvent {
                raw: raw.as_bytes(),
                kind: EventKind::Json,
                time,
                line: number,
            }),
            Ok(Scanned::NotObject) => decoded.rejected.push(Rejected {
                raw: raw.as_bytes(),
                reason: format!("array element {number} is not a JSON object"),
                line: number,
            }),
            // serde_json validated the element already; kept total rather than trusted.
            Err(error) => decoded.rejected.push(Rejected {
                raw: raw.as_bytes(),
                reason: format!("array element {number}: invalid JSON: {error}"),
                line: number,
            }),
        }
    }
    Ok(decoded)
}

fn decode_lines(body: &[u8]) -> DecodedBody<'_> {
    let mut decoded = DecodedBody::default();
    let mut rest = body;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let (line, after) = split_line(rest);
        rest = after;
        decode_line(line, number, &mut decoded);
    }
    decoded
}

/// Splits off the first line, without its `\n` or `\r\n`.
fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match memchr(b'\n', bytes).and_then(|end| bytes.split_at_checked(end)) {
        Some((line, newline_and_rest)) => (line, newline_and_rest.get(1..).unwrap_or_default()),
        None => (bytes, &[][..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), rest)
}

fn decode_line<'a>(line: &'a [u8], number: usize, decoded: &mut DecodedBody<'a>) {
    // Stops at the first visible byte, so this is cheap for every real record.
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let reject = |reason: String| Rejected {
        raw: line,
        reason,
        line: number,
    };
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(error) => {
            let offset = error.valid_up_to();
            decoded.rejected.push(reject(format!(
                "line {number} is not valid UTF-8 (at byte {offset})"
            )));
            return;
        }
    };
    let payload = text.trim_start_matches([' ', '\t']);
    if !payload.starts_with(['{', '[']) {
        decoded.events.push(IngestEvent {
            raw: line,
            kind: EventKind::Text,
            time: None,
            line: number,
        });
        return;
    }
    match scan_json(text) {
        Ok(Scanned::Object(time)) => {
            decoded.events.push(IngestEvent {
                raw: line,
                kind: EventKind::Json,
                time,
                line: number,
            });
        }
        Ok(Scanned::NotObject) => {
            decoded.rejected.push(reject(format!(
                "line {number}: JSON value is not an object"
            )));
        }
        Err(error) => {
            let reason = format!(
                "line {number}: invalid JSON: {}",
                describe_line_error(&error)
            );
            decoded.rejected.push(reject(reason));
        }
    }
}

/// serde_json's message with only the column: each line is parsed alone, so its "line 1" would
/// contradict the body line number given in front.
fn describe_line_error(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match full.strip_suffix(&position) {
        Some(message) => format!("{message} at column {}", error.column()),
        None => full,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn split_line_strips_one_line_ending() {
        assert_eq!(split_line(b"a\r\nb"), (&b"a"[..], &b"b"[..]));
        assert_eq!(split_line(b"a\r\r\n"), (&b"a\r"[..], &b""[..]));
        assert_eq!(split_line(b"a"), (&b"a"[..], &b""[..]));
        assert_eq!(split_line(b"a\r"), (&b"a"[..], &b""[..]));
        assert_eq!(split_line(b"\n\n"), (&b""[..], &b"\n"[..]));
    }

    #[test]
    fn line_errors_name_the_column_only() {
        let error = serde_json::from_str::<serde_json::Value>(r#"{"a":"#).unwrap_err();
        assert_eq!(
            describe_line_error(&error),
            "EOF while parsing a value at column 5"
        );
    }
}
