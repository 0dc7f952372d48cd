//! Data blocks: runs of sorted entries, ended by a CRC-32.
//!
//! ```text
//!  ┌─────────┬─────────┬─────┬─────────┬───────┐
//!  │ entry 0 │ entry 1 │ ... │ entry n │ crc32 │
//!  └─────────┴─────────┴─────┴─────────┴───────┘
//!  entry = key_len u32 | value_len u32 | seq u64 | key | [deadline u64] | value
//! ```
//!
//! `value_len` is [`TOMBSTONE_LEN`] (`u32::MAX`) for a tombstone, which has no value bytes.
//! A value with an expiry deadline has [`EXPIRING_FLAG`] (bit 31) set in `value_len`, and
//! its deadline (absolute Unix milliseconds) between key and value; the low 31 bits are the
//! value's length, so values are shorter than 2 GiB (the protocol's limit is far lower).
//! Keys within a block are strictly increasing.

use crate::base::codec::{seal_block, Cursor, FormatError};
use crate::base::SeqNo;

/// The `value_len` of a tombstone.
pub const TOMBSTONE_LEN: u32 = u32::MAX;
/// The bit of `value_len` that says a deadline precedes the value.
pub const EXPIRING_FLAG: u32 = 1 << 31;
/// Bytes of an entry besides key and value.
pub const ENTRY_FIXED_BYTES: usize = 4 + 4 + 8;

/// One decoded entry, borrowing from the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The key.
    pub key: &'a [u8],
    /// Sequence number of the version.
    pub seq: SeqNo,
    /// The value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// The value's expiry deadline (absolute Unix ms), `None` = never.
    pub expire_at_ms: Option<u64>,
}

/// Builds one data block.
#[derive(Debug, Default)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    entry_count: usize,
}

impl BlockBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry (`value` `None`: a tombstone, which has no deadline); keys must be
    /// added in strictly increasing order.
    ///
    /// # Panics
    /// If the key is longer than `u32::MAX` bytes or the value 2^31 - 1 bytes, or a
    /// tombstone has a deadline.
    pub fn add(&mut self, key: &[u8], seq: SeqNo, value: Option<&[u8]>, expire_at_ms: Option<u64>) {
        let key_len = u32::try_from(key.len()).expect("key longer than u32::MAX");
        let value_len = match value {
            Some(v) => {
                let len = u32::try_from(v.len())
                    .ok()
                    .filter(|&len| len < EXPIRING_FLAG)
                    .expect("value of 2 GiB or longer");
                if expire_at_ms.is_some() {
                    len | EXPIRING_FLAG
                } else {
                    len
                }
            }
            None => {
                assert!(expire_at_ms.is_none(), "tombstone with a deadline");
                TOMBSTONE_LEN
            }
        };
        self.buf.extend_from_slice(&key_len.to_le_bytes());
        self.buf.extend_from_slice(&value_len.to_le_bytes());
        self.buf.extend_from_slice(&seq.0.to_le_bytes());
        self.buf.extend_from_slice(key);
        if let Some(deadline) = expire_at_ms {
            self.buf.extend_from_slice(&deadline.to_le_bytes());
        }
        self.buf.extend_from_slice(value.unwrap_or_default());
        self.entry_count += 1;
    }

    /// Bytes of the payload so far.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// Appends the sealed block (payload and crc) to `out` and resets the builder.
    pub fn finish_into(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.buf);
        seal_block(out, start);
        self.buf.clear();
        self.entry_count = 0;
    }
}

/// Iterates over the entries of a block payload (crc already checked and removed).
/// Yields an error (and then stops) at the first malformed entry.
#[derive(Debug)]
pub struct BlockEntries<'a> {
    cursor: Cursor<'a>,
    prev_key: Option<&'a [u8]>,
    failed: bool,
}

impl<'a> BlockEntries<'a> {
    /// An iterator over `payload`.
    pub fn new(payload: &'a [u8]) -> Self {
        Self {
            cursor: Cursor::new(payload),
            prev_key: None,
            failed: false,
        }
    }

    /// An iterator over the entries that follow one already read: `tail` is the payload
    /// from the next entry on, and `prev_key` the key of the entry before it (keys must
    /// keep increasing). Errors name offsets in `tail`.
    pub fn resume(tail: &'a [u8], prev_key: Option<&'a [u8]>) -> Self {
        Self {
            cursor: Cursor::new(tail),
            prev_key,
            failed: false,
        }
    }

    /// Bytes of the payload (or tail) consumed so far.
    pub fn position(&self) -> usize {
        self.cursor.position()
    }

    fn decode_next(&mut self) -> Result<EntryRef<'a>, FormatError> {
        let at = self.cursor.position();
        let key_len = self.cursor.u32()? as usize;
        let value_len = self.cursor.u32()?;
        let seq = SeqNo(self.cursor.u64()?);
        let key = self.cursor.bytes(key_len)?;
        let mut expire_at_ms = None;
        let value = match value_len {
            TOMBSTONE_LEN => None,
            len if len & EXPIRING_FLAG != 0 => {
                expire_at_ms = Some(self.cursor.u64()?);
                Some(self.cursor.bytes((len & !EXPIRING_FLAG) as usize)?)
            }
            len => Some(self.cursor.bytes(len as usize)?),
        };
        if self.prev_key.is_some_and(|prev| prev >= key) {
            return Err(FormatError {
                reason: "block keys not increasing",
                offset: at,
            });
        }
        self.prev_key = Some(key);
        Ok(EntryRef {
            key,
            seq,
            value,
            expire_at_ms,
        })
    }
}

impl<'a> Iterator for BlockEntries<'a> {
    type Item = Result<EntryRef<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.cursor.is_empty() {
            return None;
        }
        let item = self.decode_next();
        self.failed = item.is_err();
        Some(item)
    }
}

/// Finds `key` in a block payload.
///
/// # Errors
/// If an entry before the key (or the key's own) is malformed.
pub fn find<'a>(payload: &'a [u8], key: &[u8]) -> Result<Option<EntryRef<'a>>, FormatError> {
    for entry in BlockEntries::new(payload) {
        let entry = entry?;
        match entry.key.cmp(key) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => return Ok(Some(entry)),
            std::cmp::Ordering::Greater => return Ok(None),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::codec::open_block;
    use proptest::prelude::*;

    fn sample_block() -> Vec<u8> {
        let mut b = BlockBuilder::new();
        b.add(b"a", SeqNo(3), Some(b"one"), None);
        b.add(b"b", SeqNo(1), None, None);
        b.add(b"c", SeqNo(2), Some(b""), None);
        b.add(b"d", SeqNo(4), Some(b"soon"), Some(1_700_000_000_000));
        let mut out = Vec::new();
        b.finish_into(&mut out);
        assert!(b.is_empty());
        out
    }

    #[test]
    fn block_round_trips() {
        let block = sample_block();
        let payload = open_block(&block).unwrap();
        let entries: Vec<EntryRef<'_>> = BlockEntries::new(payload).map(Result::unwrap).collect();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].value, Some(&b"one"[..]));
        assert_eq!(entries[0].expire_at_ms, None);
        assert_eq!(entries[1].value, None);
        assert_eq!(entries[2].value, Some(&b""[..]));
        assert_eq!(entries[3].value, Some(&b"soon"[..]));
        assert_eq!(entries[3].expire_at_ms, Some(1_700_000_000_000));
        assert_eq!(find(payload, b"b").unwrap().unwrap().seq, SeqNo(1));
        assert_eq!(find(payload, b"bb").unwrap(), None);
        assert_eq!(find(payload, b"z").unwrap(), None);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let block = sample_block();
        for i in 0..block.len() {
            let mut bad = block.clone();
            bad[i] ^= 0x10;
            assert!(open_block(&bad).is_err(), "flip at {i}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_payload_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            for entry in BlockEntries::new(&bytes) {
                let _ = entry;
            }
            let _ = find(&bytes, b"key");
        }
    }
}
