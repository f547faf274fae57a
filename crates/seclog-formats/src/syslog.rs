//! Syslog: RFC 6587 framing of a byte stream (octet counting, LF or NUL terminated) and the
//! parsing of one message (RFC 5424, RFC 3164 and the malformed variants devices send).
//!
//! ```text
//! octet counting      "161 <36>1 2026-11-27T13:58:22.115Z host sshd - - [meta sequenceId=\"7\"] Failed password"
//! LF terminated       "<13>Nov 27 13:58:22 host app[42]: text\n"      (logger --rfc3164, rsyslog plain TCP)
//! NUL terminated      "<14>text\0"                                    (Python SysLogHandler over TCP)
//! ```
//!
//! A frame is octet counted when it starts with a non-zero digit followed by digits and a
//! space; otherwise it runs to the next LF or NUL (a trailing CR is dropped). LF, CR and NUL
//! bytes between frames are skipped. Frames are limited to `max_frame` bytes: a longer one is
//! reported as [`Frame::Invalid`] (its first bytes kept) and the rest of it skipped, so the
//! stream stays in step.

use seclog_model::Timestamp;
use serde_json::{Map, Value, json};
use syslog_loose::{IncompleteDate, Protocol, Variant};

/// Largest frame accepted by default (RFC 5425 asks receivers to take at least 2 KiB; rsyslog
/// and syslog-ng send up to 64 KiB).
pub const DEFAULT_MAX_FRAME: usize = 256 * 1024;
/// Bytes of an oversized or broken frame kept in its dead letter.
const KEPT_OF_INVALID: usize = 4096;
/// Most digits of an octet count (a frame of up to 999,999,999 bytes).
const MAX_COUNT_DIGITS: usize = 9;

/// One frame cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A message without its framing.
    Message(&'a [u8]),
    /// Bytes that cannot be a message, kept (at most 4 KiB of them) with the reason.
    Invalid {
        /// The first bytes of the frame.
        raw: &'a [u8],
        /// Why it was refused.
        reason: String,
    },
}

/// Cuts a syslog byte stream into frames. It keeps only how many bytes of an oversized frame
/// are still to be skipped; the caller owns the buffer.
#[derive(Debug, Clone)]
pub struct Framer {
    max_frame: usize,
    /// Bytes of an oversized octet-counted frame still to drop.
    skip: usize,
    /// Dropping the rest of an oversized terminated frame, up to its terminator.
    skip_line: bool,
}

impl Framer {
    /// A framer accepting frames of up to `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Framer {
            max_frame: max_frame.max(1),
            skip: 0,
            skip_line: false,
        }
    }

    /// The next frame of `buf` and how many bytes of `buf` it used, or `None` with the number
    /// of bytes that may be dropped (skipped separators and oversized remainders) when `buf`
    /// holds no complete frame yet. With `eof`, an unterminated last message is a frame.
    pub fn next<'a>(&mut self, buf: &'a [u8], eof: bool) -> (Option<Frame<'a>>, usize) {
        let mut at = 0;
        if self.skip > 0 {
            let dropped = self.skip.min(buf.len());
            self.skip -= dropped;
            at = dropped;
            if self.skip > 0 {
                return (None, at);
            }
        }
        if self.skip_line {
            match tail(buf, at)
                .iter()
                .position(|byte| matches!(byte, b'\n' | 0))
            {
                Some(end) => {
                    self.skip_line = false;
                    at += end + 1;
                }
                None => return (None, buf.len()),
            }
        }
        while let Some(byte) = buf.get(at) {
            if matches!(byte, b'\n' | b'\r' | 0) {
                at += 1;
            } else {
                break;
            }
        }
        let rest = tail(buf, at);
        if rest.is_empty() {
            return (None, at);
        }
        match octet_count(rest) {
            Count::Length { header, length } => self.counted(rest, header, length, eof, at),
            Count::NeedMore if !eof => (None, at),
            Count::NeedMore | Count::NotCounted => self.terminated(rest, eof, at),
        }
    }

    fn counted<'a>(
        &mut self,
        rest: &'a [u8],
        header: usize,
        length: usize,
        eof: bool,
        at: usize,
    ) -> (Option<Frame<'a>>, usize) {
        let end = header.saturating_add(length);
        if length > self.max_frame {
            // The kept part does not depend on how the stream was split into reads.
            let kept = end.min(header + KEPT_OF_INVALID);
            if rest.len() < kept && !eof {
                return (None, at);
            }
            let used = end.min(rest.len());
            self.skip = end - used;
            let frame = Frame::Invalid {
                raw: head(rest, kept),
                reason: format!(
                    "syslog frame of {length} bytes exceeds the limit of {} bytes",
                    self.max_frame
                ),
            };
            return (Some(frame), at + used);
        }
        if let Some(message) = rest.get(header..end) {
            return (Some(Frame::Message(message)), at + end);
        }
        if eof {
            let frame = Frame::Invalid {
                raw: head(rest, KEPT_OF_INVALID),
                reason: format!(
                    "connection closed {} bytes into a frame announced as {length} bytes",
                    rest.len() - header
                ),
            };
            return (Some(frame), at + rest.len());
        }
        (None, at)
    }

    fn terminated<'a>(
        &mut self,
        rest: &'a [u8],
        eof: bool,
        at: usize,
    ) -> (Option<Frame<'a>>, usize) {
        let window = head(rest, self.max_frame + 1);
        match window.iter().position(|byte| matches!(byte, b'\n' | 0)) {
            Some(end) => {
                let message = head(rest, end);
                let message = message.strip_suffix(b"\r").unwrap_or(message);
                (Some(Frame::Message(message)), at + end + 1)
            }
            None if rest.len() > self.max_frame => {
                self.skip_line = true;
                let frame = Frame::Invalid {
                    raw: head(rest, KEPT_OF_INVALID.min(self.max_frame)),
                    reason: format!(
                        "syslog message longer than {} bytes without a line end",
                        self.max_frame
                    ),
                };
                (Some(frame), at + self.max_frame)
            }
            None if eof => {
                let message = rest.strip_suffix(b"\r").unwrap_or(rest);
                (Some(Frame::Message(message)), at + rest.len())
            }
            None => (None, at),
        }
    }
}

/// `bytes` from `at` on (empty past the end).
fn tail(bytes: &[u8], at: usize) -> &[u8] {
    bytes.get(at..).unwrap_or_default()
}

/// At most the first `len` bytes of `bytes`.
fn head(bytes: &[u8], len: usize) -> &[u8] {
    bytes.get(..len).unwrap_or(bytes)
}

enum Count {
    Length { header: usize, length: usize },
    NeedMore,
    NotCounted,
}

/// Reads `MSG-LEN SP` at the start of a frame (RFC 6587 §3.4.1).
fn octet_count(rest: &[u8]) -> Count {
    match rest.first() {
        Some(b'1'..=b'9') => {}
        _ => return Count::NotCounted,
    }
    let mut length = 0usize;
    for (index, byte) in rest.iter().enumerate() {
        match byte {
            b'0'..=b'9' if index < MAX_COUNT_DIGITS => {
                length = length * 10 + usize::from(byte - b'0');
            }
            b' ' => {
                return Count::Length {
                    header: index + 1,
                    length,
                };
            }
            _ => return Count::NotCounted,
        }
    }
    Count::NeedMore
}

/// A parsed syslog message.
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogMessage {
    /// The message's own time, when it has one.
    pub time: Option<Timestamp>,
    /// `APP-NAME` (RFC 5424) or the tag (RFC 3164).
    pub app_name: Option<String>,
    /// `HOSTNAME`.
    pub hostname: Option<String>,
    /// `sequenceId` of the `meta` structured-data element (RFC 5424 §7.3.1).
    pub sequence_id: Option<u64>,
    /// Every parsed field, for the record's attributes: `facility`, `severity`, `hostname`,
    /// `appname`, `procid`, `msgid`, `message`, `syslog_version`, and `sd` (structured data as
    /// `{id: {param: value}}`).
    pub fields: Map<String, Value>,
}

/// Parses one syslog message (without framing). `received` resolves RFC 3164 timestamps, which
/// have no year (and no zone: UTC is assumed). Fails only for an empty message.
pub fn parse_syslog(raw: &[u8], received: Timestamp) -> Result<SyslogMessage, String> {
    let text = String::from_utf8_lossy(raw);
    if text.trim().is_empty() {
        return Err("empty syslog message".into());
    }
    let (received_year, received_month) = year_and_month(received);
    let year = move |date: IncompleteDate| {
        // A December message received in January is from the year before.
        let (month, ..) = date;
        if month == 12 && received_month == 1 {
            received_year - 1
        } else {
            received_year
        }
    };
    let mut message =
        syslog_loose::parse_message_with_year_tz(&text, year, Some(chrono::Utc), Variant::Either);
    // `<PRI>text` with no header (Python's SysLogHandler) is not a valid RFC 3164 message, so
    // the parser hands back the whole input: take the priority off it here.
    if message.facility.is_none()
        && message.severity.is_none()
        && let Some((pri, rest)) = bare_priority(message.msg)
    {
        (message.facility, message.severity) = syslog_loose::decompose_pri(pri);
        message.msg = rest;
    }
    let mut fields = Map::new();
    if let Some(facility) = message.facility {
        fields.insert("facility".into(), json!(facility.as_str()));
    }
    if let Some(severity) = message.severity {
        fields.insert("severity".into(), json!(severity.as_str()));
    }
    if let Protocol::RFC5424(version) = message.protocol {
        fields.insert("syslog_version".into(), json!(version));
    }
    let hostname = text_field(message.hostname).map(str::to_string);
    let app_name = text_field(message.appname).map(str::to_string);
    if let Some(hostname) = &hostname {
        fields.insert("hostname".into(), json!(hostname));
    }
    if let Some(app_name) = &app_name {
        fields.insert("appname".into(), json!(app_name));
    }
    if let Some(procid) = &message.procid {
        fields.insert("procid".into(), json!(procid.to_string()));
    }
    if let Some(msgid) = text_field(message.msgid) {
        fields.insert("msgid".into(), json!(msgid));
    }
    let mut sequence_id = None;
    if !message.structured_data.is_empty() {
        let mut elements = Map::new();
        for element in &message.structured_data {
            let mut params = Map::new();
            for (name, value) in element.params() {
                if element.id == "meta" && *name == "sequenceId" {
                    sequence_id = value.parse().ok();
                }
                params.insert(name.to_string(), json!(value));
            }
            elements.insert(element.id.to_string(), Value::Object(params));
        }
        fields.insert("sd".into(), Value::Object(elements));
    }
    // RFC 5424 allows a UTF-8 BOM before the message text.
    let msg = message.msg.strip_prefix('\u{feff}').unwrap_or(message.msg);
    fields.insert("message".into(), json!(msg));
    let time = message
        .timestamp
        .and_then(|time| time.timestamp_nanos_opt())
        .map(Timestamp::from_unix_nanos);
    Ok(SyslogMessage {
        time,
        app_name,
        hostname,
        sequence_id,
        fields,
    })
}

/// `<PRI>` (0 to 191) at the start of `text`, and the text after it.
fn bare_priority(text: &str) -> Option<(u8, &str)> {
    let rest = text.strip_prefix('<')?;
    let end = rest.find('>')?;
    let digits = rest.get(..end)?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let pri: u8 = digits.parse().ok().filter(|pri| *pri <= 191)?;
    Some((pri, rest.get(end + 1..)?))
}

/// A header field's value, absent when empty or the RFC 5424 NILVALUE `-`.
fn text_field(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.is_empty() && *value != "-")
}

/// Civil year and month (UTC) of a timestamp.
fn year_and_month(time: Timestamp) -> (i32, u32) {
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let days = time.unix_seconds().div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).unwrap_or(1970),
        u32::try_from(month).unwrap_or(1),
    )
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize) -> Vec<Frame<'_>> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let (frame, used) = framer.next(&input[at..], true);
            at += used;
            match frame {
                Some(frame) => out.push(frame),
                None if used == 0 || at >= input.len() => break,
                None => {}
            }
        }
        out
    }

    #[test]
    fn cuts_octet_counted_lf_and_nul_frames() {
        let input = b"11 <13>1 - - x\n<14>plain line\r\n<15>python\0\0\n3 abc";
        assert_eq!(
            frames(input, 1024),
            vec![
                Frame::Message(b"<13>1 - - x"),
                Frame::Message(b"<14>plain line"),
                Frame::Message(b"<15>python"),
                Frame::Message(b"abc"),
            ]
        );
    }

    #[test]
    fn waits_for_the_rest_of_a_frame() {
        let mut framer = Framer::new(1024);
        assert_eq!(framer.next(b"20 <13>1 part", false), (None, 0));
        assert_eq!(framer.next(b"<13>no end yet", false), (None, 0));
        assert_eq!(framer.next(b"12", false), (None, 0));
        assert_eq!(
            framer.next(b"\n\n5 hello", false),
            (Some(Frame::Message(b"hello")), 9)
        );
    }

    #[test]
    fn oversized_frames_are_refused_and_skipped() {
        let mut input = b"20 ".to_vec();
        input.extend_from_slice(&[b'x'; 20]);
        input.extend_from_slice(b"2 ok");
        let got = frames(&input, 10);
        assert!(matches!(&got[0], Frame::Invalid { reason, .. } if reason.contains("20 bytes")));
        assert_eq!(got[1], Frame::Message(b"ok"));

        let mut framer = Framer::new(10);
        let (frame, used) = framer.next(b"<13>0123456789abcdef", false);
        assert!(matches!(frame, Some(Frame::Invalid { .. })));
        assert_eq!(used, 10);
        assert_eq!(framer.next(b"abcdef", false), (None, 6));
        assert_eq!(
            framer.next(b"tail\n<13>next\n", false),
            (Some(Frame::Message(b"<13>next")), 14)
        );
    }

    #[test]
    fn a_truncated_counted_frame_at_eof_is_invalid() {
        let mut framer = Framer::new(1024);
        let (frame, used) = framer.next(b"50 <13>1 short", true);
        assert!(
            matches!(frame, Some(Frame::Invalid { reason, .. }) if reason.contains("50 bytes"))
        );
        assert_eq!(used, 14);
    }

    #[test]
    fn parses_rfc5424_with_structured_data() {
        let raw = br#"<36>1 2026-11-27T13:58:22.115271+00:00 web1 sshd 4242 AUTH [meta sequenceId="7"][origin ip="10.0.0.5"] Failed password for root"#;
        let parsed = parse_syslog(raw, Timestamp::from_unix_nanos(0)).expect("parsed");
        assert_eq!(parsed.app_name.as_deref(), Some("sshd"));
        assert_eq!(parsed.hostname.as_deref(), Some("web1"));
        assert_eq!(parsed.sequence_id, Some(7));
        assert_eq!(
            parsed.time.map(Timestamp::to_rfc3339).as_deref(),
            Some("2026-11-27T13:58:22.115271000Z")
        );
        let fields = Value::Object(parsed.fields);
        assert_eq!(fields["facility"], "auth");
        assert_eq!(fields["severity"], "warning");
        assert_eq!(fields["procid"], "4242");
        assert_eq!(fields["msgid"], "AUTH");
        assert_eq!(fields["sd"]["origin"]["ip"], "10.0.0.5");
        assert_eq!(fields["message"], "Failed password for root");
    }

    #[test]
    fn parses_rfc3164_with_the_year_of_receipt() {
        let received = Timestamp::parse_rfc3339("2026-01-02T00:00:00Z").expect("time");
        let parsed = parse_syslog(
            b"<13>Dec 31 23:59:58 host app[42]: happy new year",
            received,
        )
        .expect("parsed");
        assert_eq!(
            parsed.time.map(Timestamp::to_rfc3339).as_deref(),
            Some("2025-12-31T23:59:58.000000000Z")
        );
        assert_eq!(parsed.app_name.as_deref(), Some("app"));
        let fields = Value::Object(parsed.fields);
        assert_eq!(fields["procid"], "42");
        assert_eq!(fields["message"], "happy new year");
    }

    #[test]
    fn accepts_a_bare_priority_and_refuses_nothing_but_empty_messages() {
        let parsed = parse_syslog(b"<14>just text", Timestamp::from_unix_nanos(0)).expect("parsed");
        let fields = Value::Object(parsed.fields);
        assert_eq!(fields["severity"], "info");
        assert!(parsed.time.is_none());
        assert!(parse_syslog(b"   ", Timestamp::from_unix_nanos(0)).is_err());
        assert!(parse_syslog(b"\xff\xfe not utf-8", Timestamp::from_unix_nanos(0)).is_ok());
    }

    #[test]
    fn civil_dates() {
        let at = |text| Timestamp::parse_rfc3339(text).expect("time");
        assert_eq!(year_and_month(at("1970-01-01T00:00:00Z")), (1970, 1));
        assert_eq!(year_and_month(at("2024-02-29T12:00:00Z")), (2024, 2));
        assert_eq!(year_and_month(at("2026-12-31T23:59:59Z")), (2026, 12));
    }
}
