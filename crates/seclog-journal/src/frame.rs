//! The framing shared by every journal file.
//!
//! ```text
//! file   = header frame*  [footer]
//! header = magic[8] | version u16 | header fields ... | crc32 u32     (per file kind)
//! frame  = tag u8 | payload_len u32 | payload | crc32(tag | payload_len | payload) u32
//! ```
//! A frame that runs past the end of the file, or the last frame when its CRC fails, is a torn
//! write (the process died mid-append); a bad frame followed by more bytes is corruption.

use crate::codec::{ByteReader, crc32};

/// Largest payload accepted when reading (a block is far smaller).
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;

/// Footer frame tag, shared by all file kinds.
pub(crate) const TAG_FOOTER: u8 = 0xF0;

/// Appends one frame to `out`.
pub(crate) fn encode_frame(tag: u8, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.push(tag);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32(&[out.get(start..).unwrap_or_default()]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// One frame found in a file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    pub(crate) tag: u8,
    pub(crate) payload: &'a [u8],
    /// Offset of the frame's first byte in the file.
    pub(crate) offset: usize,
    /// Total length including tag, length and CRC.
    pub(crate) len: usize,
}

/// How a scan of frames ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameEnd {
    /// Every byte belonged to a whole frame.
    Clean,
    /// The file ends inside a frame or with a frame whose CRC fails: an interrupted append.
    Torn { offset: usize, reason: String },
    /// A damaged frame with more bytes after it.
    Corrupt { offset: usize, reason: String },
}

/// Reads the frame starting at `offset`. `Err` carries the end state.
pub(crate) fn read_frame(bytes: &[u8], offset: usize) -> Result<Frame<'_>, FrameEnd> {
    let tail = bytes.get(offset..).unwrap_or_default();
    let mut reader = ByteReader::new(tail);
    let torn = |reason: &str| FrameEnd::Torn {
        offset,
        reason: reason.to_string(),
    };
    let (Ok(tag), Ok(payload_len)) = (reader.u8(), reader.u32()) else {
        return Err(torn("incomplete frame header"));
    };
    let payload_len = payload_len as usize;
    if payload_len > MAX_PAYLOAD {
        return Err(FrameEnd::Corrupt {
            offset,
            reason: format!("frame length {payload_len} is implausible"),
        });
    }
    let Ok(payload) = reader.take(payload_len) else {
        return Err(torn("frame runs past the end of the file"));
    };
    let Ok(stored_crc) = reader.u32() else {
        return Err(torn("frame checksum missing"));
    };
    let len = reader.position();
    let computed = crc32(&[tail.get(..len - 4).unwrap_or_default()]);
    if computed != stored_crc {
        let reason =
            format!("frame checksum mismatch (stored {stored_crc:08x}, computed {computed:08x})");
        return Err(if offset + len == bytes.len() {
            torn(&reason)
        } else {
            FrameEnd::Corrupt { offset, reason }
        });
    }
    Ok(Frame {
        tag,
        payload,
        offset,
        len,
    })
}

/// Iterates over frames from `offset` until the end of `bytes` or the first bad frame.
pub(crate) fn frames(bytes: &[u8], offset: usize) -> FrameIter<'_> {
    FrameIter {
        bytes,
        offset,
        end: None,
    }
}

pub(crate) struct FrameIter<'a> {
    bytes: &'a [u8],
    offset: usize,
    end: Option<FrameEnd>,
}

impl<'a> FrameIter<'a> {
    /// How the scan ended; call after the iterator returned `None`.
    pub(crate) fn end(&self) -> FrameEnd {
        self.end.clone().unwrap_or(FrameEnd::Clean)
    }

    /// Offset just past the last whole frame.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for FrameIter<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.end.is_some() || self.offset >= self.bytes.len() {
            return None;
        }
        match read_frame(self.bytes, self.offset) {
            Ok(frame) => {
                self.offset += frame.len;
                Some(frame)
            }
            Err(end) => {
                self.end = Some(end);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_and_corrupt_are_told_apart() {
        let mut file = Vec::new();
        encode_frame(1, b"first", &mut file);
        encode_frame(2, b"second", &mut file);
        let mut iter = frames(&file, 0);
        assert_eq!(iter.by_ref().count(), 2);
        assert_eq!(iter.end(), FrameEnd::Clean);

        let cut = &file[..file.len() - 3];
        let mut iter = frames(cut, 0);
        assert_eq!(iter.by_ref().count(), 1);
        assert!(matches!(iter.end(), FrameEnd::Torn { .. }));

        let mut flipped = file.clone();
        flipped[7] ^= 1;
        let mut iter = frames(&flipped, 0);
        assert_eq!(iter.by_ref().count(), 0);
        assert!(matches!(iter.end(), FrameEnd::Corrupt { .. }));
    }
}
