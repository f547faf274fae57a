//! One stored event: the plaintext record inside an encrypted block.
//!
//! ```text
//! version u8 (=1) | kind u8 | time i64 | observed_time i64 | source_len u16 | source
//! | attrs_len u32 | attrs (JSON object or empty) | raw (the bytes exactly as received, to the end)
//! ```

use seclog_model::Timestamp;

use crate::codec::ByteReader;

const RECORD_VERSION: u8 = 1;

/// What the raw bytes of a record are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A JSON object.
    Json,
    /// A line of UTF-8 text.
    Text,
    /// Bytes that could not be parsed (dead letters); `attrs` says why.
    Invalid,
}

impl RecordKind {
    fn code(self) -> u8 {
        match self {
            RecordKind::Json => 0,
            RecordKind::Text => 1,
            RecordKind::Invalid => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(RecordKind::Json),
            1 => Some(RecordKind::Text),
            2 => Some(RecordKind::Invalid),
            _ => None,
        }
    }

    /// Lower-case name used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Json => "json",
            RecordKind::Text => "text",
            RecordKind::Invalid => "invalid",
        }
    }
}

/// A record as the writer receives it (borrowed) or a reader returns it (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Event time from the source, else the time of receipt.
    pub time: Timestamp,
    /// When seclog received it.
    pub observed_time: Timestamp,
    /// What the raw bytes are.
    pub kind: RecordKind,
    /// Where it came from (for HTTP: `http:<peer address>`).
    pub source: String,
    /// Extra attributes as a JSON object (empty when none), e.g. a dead letter's reason.
    pub attrs: Vec<u8>,
    /// The bytes exactly as received.
    pub raw: Vec<u8>,
}

impl Record {
    /// Appends the encoded record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let source = truncate_utf8(&self.source, u16::MAX as usize);
        out.reserve(24 + source.len() + self.attrs.len() + self.raw.len());
        out.push(RECORD_VERSION);
        out.push(self.kind.code());
        out.extend_from_slice(&self.time.unix_nanos().to_le_bytes());
        out.extend_from_slice(&self.observed_time.unix_nanos().to_le_bytes());
        out.extend_from_slice(&(source.len() as u16).to_le_bytes());
        out.extend_from_slice(source.as_bytes());
        out.extend_from_slice(&(self.attrs.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.attrs);
        out.extend_from_slice(&self.raw);
    }

    /// The encoded record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Decodes a record; `Err` names what is malformed.
    pub fn decode(bytes: &[u8]) -> Result<Record, String> {
        let view = RecordView::decode(bytes)?;
        Ok(Record {
            time: view.time,
            observed_time: view.observed_time,
            kind: view.kind,
            source: view.source.to_string(),
            attrs: view.attrs.to_vec(),
            raw: view.raw.to_vec(),
        })
    }

    /// A view of this record.
    pub fn view(&self) -> RecordView<'_> {
        RecordView {
            time: self.time,
            observed_time: self.observed_time,
            kind: self.kind,
            source: &self.source,
            attrs: &self.attrs,
            raw: &self.raw,
        }
    }
}

/// A record read in place from its encoding (nothing copied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// See [`Record::time`].
    pub time: Timestamp,
    /// See [`Record::observed_time`].
    pub observed_time: Timestamp,
    /// See [`Record::kind`].
    pub kind: RecordKind,
    /// See [`Record::source`].
    pub source: &'a str,
    /// See [`Record::attrs`].
    pub attrs: &'a [u8],
    /// See [`Record::raw`].
    pub raw: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Reads an encoded record in place.
    pub fn decode(bytes: &'a [u8]) -> Result<RecordView<'a>, String> {
        let mut reader = ByteReader::new(bytes);
        let short = |_| "record truncated".to_string();
        let version = reader.u8().map_err(short)?;
        if version != RECORD_VERSION {
            return Err(format!("unknown record version {version}"));
        }
        let kind_code = reader.u8().map_err(short)?;
        let kind = RecordKind::from_code(kind_code)
            .ok_or_else(|| format!("unknown record kind {kind_code}"))?;
        let time = Timestamp::from_unix_nanos(reader.i64().map_err(short)?);
        let observed_time = Timestamp::from_unix_nanos(reader.i64().map_err(short)?);
        let source_len = usize::from(reader.u16().map_err(short)?);
        let source = std::str::from_utf8(reader.take(source_len).map_err(short)?)
            .map_err(|_| "record source is not UTF-8".to_string())?;
        let attrs_len = reader.u32().map_err(short)? as usize;
        let attrs = reader.take(attrs_len).map_err(short)?;
        let raw = reader.rest();
        Ok(RecordView {
            time,
            observed_time,
            kind,
            source,
            attrs,
            raw,
        })
    }
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let record = Record {
            time: Timestamp::from_unix_nanos(1),
            observed_time: Timestamp::from_unix_nanos(2),
            kind: RecordKind::Invalid,
            source: "http:127.0.0.1".into(),
            attrs: br#"{"reason":"x"}"#.to_vec(),
            raw: b"\xff\x00raw".to_vec(),
        };
        assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        let encoded = record.encode();
        for cut in 0..24 {
            assert!(Record::decode(&encoded[..cut]).is_err());
        }
    }
}
