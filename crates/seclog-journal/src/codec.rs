//! Bounds-checked little-endian reading of stored bytes. Nothing here can panic.

/// A cursor over untrusted bytes; every read reports running out of input instead of panicking.
pub(crate) struct ByteReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

/// The input ended before a field was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShortRead;

impl<'a> ByteReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        ByteReader { bytes, position: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }

    pub(crate) fn take(&mut self, count: usize) -> Result<&'a [u8], ShortRead> {
        let end = self.position.checked_add(count).ok_or(ShortRead)?;
        let slice = self.bytes.get(self.position..end).ok_or(ShortRead)?;
        self.position = end;
        Ok(slice)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let slice = self.bytes.get(self.position..).unwrap_or_default();
        self.position = self.bytes.len();
        slice
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ShortRead> {
        let slice = self.take(N)?;
        slice.try_into().map_err(|_| ShortRead)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ShortRead> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, ShortRead> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ShortRead> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ShortRead> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, ShortRead> {
        Ok(i64::from_le_bytes(self.array()?))
    }
}

/// CRC-32 (IEEE) of the concatenation of `parts`: detects torn writes and localises bit flips.
pub(crate) fn crc32(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}
