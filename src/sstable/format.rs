//! The fixed parts of the SSTable format: checked blocks, index entries and the footer.
//!
//! Footer, the last [`FOOTER_BYTES`] bytes of the file, little-endian:
//!
//! ```text
//!  offset  field          type
//!  0       index_offset   u64   where the index block starts
//!  8       index_len      u32   its length in bytes, crc included
//!  12      bloom_offset   u64   where the Bloom block starts
//!  20      bloom_len      u32   its length in bytes, crc included
//!  24      entry_count    u64   number of entries (tombstones included)
//!  32      smallest_seq   u64   lowest sequence number in the table (0 if empty)
//!  40      largest_seq    u64   highest sequence number in the table (0 if empty)
//!  48      magic          u64   MAGIC ("TSKVSST1" read as little-endian u64)
//!  56      version        u32   FORMAT_VERSION
//!  60      crc32          u32   of bytes 0..60
//! ```

use crate::base::codec::{open_block, seal_block, Cursor, FormatError};
use crate::base::SeqNo;

/// Identifies an SSTable footer.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TSKVSST1");
/// The format version this code writes; it reads this and every older one. Version 2 added
/// expiry deadlines to data-block entries (see [`super::block`]); version 1 tables have none
/// and read unchanged.
pub const FORMAT_VERSION: u32 = 2;
/// Size of the footer in bytes.
pub const FOOTER_BYTES: usize = 64;
/// Where a data block is and the last key in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The largest key in the block.
    pub last_key: Vec<u8>,
    /// Offset of the block in the file.
    pub offset: u64,
    /// Length of the block in bytes, crc included.
    pub len_bytes: u32,
}

/// Appends the index payload (without its crc) for `entries` to `buf`.
pub fn encode_index(buf: &mut Vec<u8>, entries: &[IndexEntry]) {
    for entry in entries {
        let key_len = u32::try_from(entry.last_key.len()).expect("key longer than u32::MAX");
        buf.extend_from_slice(&key_len.to_le_bytes());
        buf.extend_from_slice(&entry.last_key);
        buf.extend_from_slice(&entry.offset.to_le_bytes());
        buf.extend_from_slice(&entry.len_bytes.to_le_bytes());
    }
}

/// Decodes an index payload (crc already checked and removed).
///
/// # Errors
/// If an entry runs past the end or the keys are not strictly increasing.
pub fn decode_index(payload: &[u8]) -> Result<Vec<IndexEntry>, FormatError> {
    let mut cursor = Cursor::new(payload);
    let mut entries: Vec<IndexEntry> = Vec::new();
    while !cursor.is_empty() {
        let at = cursor.position();
        let key_len = cursor.u32()? as usize;
        let last_key = cursor.bytes(key_len)?.to_vec();
        let offset = cursor.u64()?;
        let len_bytes = cursor.u32()?;
        if entries.last().is_some_and(|prev| prev.last_key >= last_key) {
            return Err(FormatError {
                reason: "index keys not increasing",
                offset: at,
            });
        }
        entries.push(IndexEntry {
            last_key,
            offset,
            len_bytes,
        });
    }
    Ok(entries)
}

/// The fixed-size end of an SSTable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footer {
    /// Offset of the index block.
    pub index_offset: u64,
    /// Length of the index block in bytes, crc included.
    pub index_len_bytes: u32,
    /// Offset of the Bloom block.
    pub bloom_offset: u64,
    /// Length of the Bloom block in bytes, crc included.
    pub bloom_len_bytes: u32,
    /// Number of entries, tombstones included.
    pub entry_count: u64,
    /// Lowest sequence number in the table (0 if empty).
    pub smallest_seq: SeqNo,
    /// Highest sequence number in the table (0 if empty).
    pub largest_seq: SeqNo,
}

impl Footer {
    /// The footer's [`FOOTER_BYTES`] bytes.
    pub fn encode(&self) -> [u8; FOOTER_BYTES] {
        let mut buf = Vec::with_capacity(FOOTER_BYTES);
        buf.extend_from_slice(&self.index_offset.to_le_bytes());
        buf.extend_from_slice(&self.index_len_bytes.to_le_bytes());
        buf.extend_from_slice(&self.bloom_offset.to_le_bytes());
        buf.extend_from_slice(&self.bloom_len_bytes.to_le_bytes());
        buf.extend_from_slice(&self.entry_count.to_le_bytes());
        buf.extend_from_slice(&self.smallest_seq.0.to_le_bytes());
        buf.extend_from_slice(&self.largest_seq.0.to_le_bytes());
        buf.extend_from_slice(&MAGIC.to_le_bytes());
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        seal_block(&mut buf, 0);
        buf.try_into().expect("footer is FOOTER_BYTES long")
    }

    /// Decodes and checks a footer.
    ///
    /// # Errors
    /// Wrong length, checksum, magic or version.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() != FOOTER_BYTES {
            return Err(FormatError {
                reason: "footer has the wrong length",
                offset: 0,
            });
        }
        let payload = open_block(bytes)?;
        let mut c = Cursor::new(payload);
        let footer = Footer {
            index_offset: c.u64()?,
            index_len_bytes: c.u32()?,
            bloom_offset: c.u64()?,
            bloom_len_bytes: c.u32()?,
            entry_count: c.u64()?,
            smallest_seq: SeqNo(c.u64()?),
            largest_seq: SeqNo(c.u64()?),
        };
        if c.u64()? != MAGIC {
            return Err(FormatError {
                reason: "bad SSTable magic",
                offset: 48,
            });
        }
        if !(1..=FORMAT_VERSION).contains(&c.u32()?) {
            return Err(FormatError {
                reason: "unsupported SSTable format version",
                offset: 56,
            });
        }
        Ok(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_footer() -> Footer {
        Footer {
            index_offset: 1000,
            index_len_bytes: 77,
            bloom_offset: 1077,
            bloom_len_bytes: 30,
            entry_count: 12,
            smallest_seq: SeqNo(5),
            largest_seq: SeqNo(16),
        }
    }

    #[test]
    fn footer_round_trips() {
        let f = sample_footer();
        assert_eq!(Footer::decode(&f.encode()), Ok(f));
    }

    #[test]
    fn footer_flipped_byte_is_detected() {
        let bytes = sample_footer().encode();
        for i in 0..FOOTER_BYTES {
            let mut bad = bytes;
            bad[i] ^= 0x08;
            assert!(Footer::decode(&bad).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn index_round_trips() {
        let entries = vec![
            IndexEntry {
                last_key: b"apple".to_vec(),
                offset: 0,
                len_bytes: 100,
            },
            IndexEntry {
                last_key: b"zebra".to_vec(),
                offset: 100,
                len_bytes: 50,
            },
        ];
        let mut buf = Vec::new();
        encode_index(&mut buf, &entries);
        seal_block(&mut buf, 0);
        let payload = open_block(&buf).unwrap();
        assert_eq!(decode_index(payload).unwrap(), entries);
        buf[3] ^= 1;
        assert!(open_block(&buf).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            let _ = Footer::decode(&bytes);
            let _ = open_block(&bytes);
            let _ = decode_index(&bytes);
        }

        #[test]
        fn arbitrary_footer_sized_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), FOOTER_BYTES)) {
            let _ = Footer::decode(&bytes);
        }
    }
}
