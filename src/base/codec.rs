//! The checked-block codec shared by every on-disk format: a block is its payload followed
//! by the CRC-32 (ISO-HDLC, as `crc32fast`) of the payload, and fields inside a payload are
//! fixed-width little-endian integers read by a [`Cursor`] that fails instead of panicking.
//!
//! ```text
//!  block = payload | crc32 u32 (little-endian, of payload)
//! ```

/// Size of the checksum that ends every block.
pub const BLOCK_CRC_BYTES: usize = 4;

/// A decoding failure: what was wrong and where, relative to the decoded buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (at byte {offset})")]
pub struct FormatError {
    /// What was wrong.
    pub reason: &'static str,
    /// Offset in the decoded buffer.
    pub offset: usize,
}

/// Reads little-endian fields from a buffer, failing (not panicking) past its end.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// The next `len` bytes.
    ///
    /// # Errors
    /// If fewer remain.
    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.buf.len());
        let Some(end) = end else {
            return Err(FormatError {
                reason: "field runs past the end of the buffer",
                offset: self.pos,
            });
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next little-endian `u32`.
    ///
    /// # Errors
    /// If fewer than 4 bytes remain.
    pub fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().expect("4")))
    }

    /// The next little-endian `u64`.
    ///
    /// # Errors
    /// If fewer than 8 bytes remain.
    pub fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().expect("8")))
    }
}

/// Appends the CRC-32 of `buf[start..]` to `buf`, closing the block that began at `start`.
pub fn seal_block(buf: &mut Vec<u8>, start: usize) {
    let crc = crc32fast::hash(&buf[start..]);
    buf.extend_from_slice(&crc.to_le_bytes());
}

/// Checks a block's trailing CRC-32 and returns its payload.
///
/// # Errors
/// If the block is shorter than its checksum or the checksum does not match.
pub fn open_block(block: &[u8]) -> Result<&[u8], FormatError> {
    let Some(payload_len) = block.len().checked_sub(BLOCK_CRC_BYTES) else {
        return Err(FormatError {
            reason: "block shorter than its checksum",
            offset: 0,
        });
    };
    let (payload, crc) = block.split_at(payload_len);
    if crc32fast::hash(payload).to_le_bytes() != crc {
        return Err(FormatError {
            reason: "block checksum mismatch",
            offset: 0,
        });
    }
    Ok(payload)
}
