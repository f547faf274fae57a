//! Splitting objects into records: lines, space-separated fields with quotes and brackets, and
//! JSON values (one, an array, newline-separated or concatenated).

use serde_json::value::RawValue;

use super::{Rejected, Sink};

/// Non-empty lines with their 1-based numbers, without the line ending.
pub(crate) fn numbered_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|byte| *byte == b'\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
}

/// The first line of `bytes` (or all of it), as text.
pub(crate) fn first_line(bytes: &[u8]) -> &str {
    let line = bytes
        .split(|byte| *byte == b'\n')
        .next()
        .unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(error) => std::str::from_utf8(line.get(..error.valid_up_to()).unwrap_or_default())
            .unwrap_or_default(),
    }
}

/// The first `"message"` or `"body"` string value in a JSON text (a CloudWatch Logs
/// subscription or an OpenTelemetry record), unescaped.
pub(crate) fn first_wrapped_message(text: &str) -> Option<String> {
    for key in ["\"message\"", "\"body\""] {
        let Some(at) = text.find(key) else { continue };
        let after = text.get(at + key.len()..)?.trim_start().strip_prefix(':')?;
        let after = after.trim_start();
        if !after.starts_with('"') {
            continue;
        }
        let mut stream = serde_json::Deserializer::from_str(after).into_iter::<String>();
        if let Some(Ok(message)) = stream.next() {
            return Some(message);
        }
    }
    None
}

/// Splits a log line into fields: separated by spaces, a field in double quotes keeps its
/// spaces (`\"` and `\\` inside are unescaped; a quote left open ends with the line), a field
/// in square brackets keeps its spaces.
pub(crate) fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(_, first)) = chars.peek() {
        if first == ' ' || first == '\t' {
            chars.next();
            continue;
        }
        let mut field = String::new();
        if first == '"' {
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, escaped @ ('"' | '\\'))) => field.push(escaped),
                        Some((_, other)) => {
                            field.push('\\');
                            field.push(other);
                        }
                        None => field.push('\\'),
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => field.push(other),
                }
            }
            // A quote still open at the end of the line closes there: a line cut short
            // (a truncated user agent) keeps what it has.
            let _ = closed;
        } else if first == '[' {
            chars.next();
            let mut closed = false;
            for (_, c) in chars.by_ref() {
                if c == ']' {
                    closed = true;
                    break;
                }
                field.push(c);
            }
            if !closed {
                return Err("a bracketed field is not closed".into());
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c == ' ' || c == '\t' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
    }
    Ok(fields)
}

/// The JSON values of a text, in order: one value, an array's elements are *not* split here
/// (callers decide), values separated by newlines or nothing at all (Firehose concatenates).
/// A value that does not parse is rejected to the end of the line it starts on, and reading
/// goes on with the next line.
pub(crate) fn json_values(bytes: &[u8]) -> Vec<Result<&RawValue, Rejected>> {
    let mut out = Vec::new();
    let mut pos = 0;
    // Line numbers are counted on from the last one found (bad lines cost linear time).
    let mut counted = (0usize, 1usize);
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or_default();
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<&RawValue>();
        let mut last_end = 0;
        loop {
            match stream.next() {
                None => {
                    pos = bytes.len();
                    break;
                }
                Some(Ok(value)) => {
                    out.push(Ok(value));
                    last_end = stream.byte_offset();
                }
                Some(Err(error)) => {
                    let start = rest
                        .get(last_end..)
                        .and_then(|tail| tail.iter().position(|byte| !byte.is_ascii_whitespace()))
                        .map_or(rest.len(), |skip| last_end + skip);
                    // To the end of the line the bad value starts on: a broken NDJSON line
                    // is one dead letter and the next line is read as usual.
                    let end = rest
                        .get(start..)
                        .and_then(|tail| tail.iter().position(|byte| *byte == b'\n'))
                        .map_or(rest.len(), |newline| start + newline);
                    let end = end.max(start + 1).min(rest.len());
                    let raw = rest.get(start..end).unwrap_or_default();
                    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                    let at = pos + start;
                    let line = counted.1
                        + bytes
                            .get(counted.0..at)
                            .unwrap_or_default()
                            .iter()
                            .filter(|byte| **byte == b'\n')
                            .count();
                    counted = (at.max(counted.0), line);
                    out.push(Err(Rejected {
                        raw: raw.to_vec(),
                        reason: format!("line {line}: invalid JSON: {error}"),
                    }));
                    pos += end + 1;
                    break;
                }
            }
        }
    }
    out
}

/// Whether a value is a CloudWatch Logs subscription's control message (a connectivity check
/// CloudWatch sends, holding no log events).
pub(crate) fn is_control_message(value: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "messageType", borrow)]
        message_type: Option<&'a str>,
    }
    serde_json::from_str::<Envelope<'_>>(value.get())
        .is_ok_and(|envelope| envelope.message_type == Some("CONTROL_MESSAGE"))
}

/// Calls `each` with every JSON value of a text, in order; what does not parse goes to
/// `items` as a dead letter, in its place.
pub(crate) fn each_json_value<'a>(
    bytes: &'a [u8],
    items: &mut dyn Sink,
    mut each: impl FnMut(&'a RawValue, &mut dyn Sink),
) {
    for value in json_values(bytes) {
        match value {
            Ok(value) => each(value, items),
            Err(bad) => items.push(super::Item::Rejected(bad)),
        }
    }
}

/// The elements of a JSON array (raw), or `None` when `value` is not an array.
pub(crate) fn array_elements(value: &RawValue) -> Option<Vec<&RawValue>> {
    if !value.get().trim_start().starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<&RawValue>>(value.get()).ok()
}

/// The elements of the array under `key` of a JSON object, or `None`.
pub(crate) fn member_array<'a>(value: &'a RawValue, key: &str) -> Option<Vec<&'a RawValue>> {
    if !value.get().trim_start().starts_with('{') {
        return None;
    }
    let object: std::collections::HashMap<&str, &RawValue> =
        serde_json::from_str(value.get()).ok()?;
    array_elements(object.get(key)?)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_quoted_and_bracketed_spaces() {
        let fields =
            split_fields(r#"a [31/Jan/2023:09:25:21 +0000] "GET / HTTP/1.1" "say \"hi\"" -"#)
                .expect("fields");
        assert_eq!(
            fields,
            [
                "a",
                "31/Jan/2023:09:25:21 +0000",
                "GET / HTTP/1.1",
                "say \"hi\"",
                "-"
            ]
        );
        assert_eq!(
            split_fields(r#"a "open to the end"#).expect("fields"),
            ["a", "open to the end"]
        );
        assert!(split_fields("a [open").is_err());
    }

    #[test]
    fn json_values_recover_after_a_bad_line() {
        let text = b"{\"a\":1}\n{\"b\":\n{\"c\":3}{\"d\":4}\n";
        let values = json_values(text);
        assert_eq!(values.len(), 4, "{values:?}");
        assert!(matches!(&values[3], Ok(v) if v.get() == "{\"d\":4}"));
        assert!(matches!(&values[0], Ok(v) if v.get() == "{\"a\":1}"));
        let Err(bad) = &values[1] else {
            panic!("second is rejected")
        };
        assert_eq!(bad.raw, b"{\"b\":");
        assert!(
            bad.reason.starts_with("line 2: invalid JSON"),
            "{}",
            bad.reason
        );
        assert!(matches!(&values[2], Ok(v) if v.get() == "{\"c\":3}"));
    }
}
