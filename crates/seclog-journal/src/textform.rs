//! The line-oriented text form shared by checkpoint and tombstone bodies: a fixed first line,
//! then `name value` lines in a fixed order. Parsers re-encode and compare, so only the
//! canonical form is accepted.

use crate::merkle::Hash;

/// Reads `name value` lines in order from a body that ends with a newline.
pub(crate) struct FieldLines<'a> {
    lines: std::str::Split<'a, char>,
}

impl<'a> FieldLines<'a> {
    /// Checks the first line against `magic` (for example `seclog tombstone v1`).
    pub(crate) fn new(text: &'a str, magic: &str) -> Result<Self, String> {
        let mut lines = text
            .strip_suffix('\n')
            .ok_or("body must end with a newline")?
            .split('\n');
        if lines.next() != Some(magic) {
            return Err(format!("not a {magic}"));
        }
        Ok(FieldLines { lines })
    }

    /// The value of the next line, which must be named `name`.
    pub(crate) fn field(&mut self, name: &str) -> Result<&'a str, String> {
        let line = self.lines.next().ok_or_else(|| format!("missing {name}"))?;
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or_else(|| format!("expected '{name} ...', found {line:?}"))
    }

    /// The lines not read yet.
    pub(crate) fn rest(self) -> std::str::Split<'a, char> {
        self.lines
    }
}

/// A 32-byte value written as 64 hex digits.
pub(crate) fn parse_hash(text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}
