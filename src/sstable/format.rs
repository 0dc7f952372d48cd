//! The fixed parts of the SSTable format: checked blocks, index entries and the footer.
//!
//! Footer, the last [`FOOTER_BYTES`] bytes of the file (version 2), little-endian:
//!
//! ```text
//!  offset  field             type
//!  0       index_offset      u64   where the index block starts
//!  8       index_len         u32   its length in bytes, crc included
//!  12      bloom_offset      u64   where the Bloom block starts
//!  20      bloom_len         u32   its length in bytes, crc included
//!  24      entry_count       u64   number of entries (tombstones included)
//!  32      smallest_seq      u64   lowest sequence number in the table (0 if empty)
//!  40      largest_seq       u64   highest sequence number in the table (0 if empty)
//!  48      first_deadline    u64   earliest expiry deadline of a value, Unix ms (0: none)
//!  56      magic             u64   MAGIC ("TSKVSST1" read as little-endian u64)
//!  64      version           u32   FORMAT_VERSION
//!  68      crc32             u32   of bytes 0..68
//! ```
//!
//! Every version ends in magic, version and crc, so a reader takes the last
//! [`FOOTER_BYTES_MAX`] bytes of the file and lets [`Footer::decode_tail`] find the footer
//! by its version: version 1 footers are 64 bytes, without `first_deadline`.

use crate::base::codec::{open_block, seal_block, Cursor, FormatError};
use crate::base::SeqNo;

/// Identifies an SSTable footer.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TSKVSST1");
/// The format version this code writes; it reads this and every older one. Version 2 added
/// expiry deadlines to data-block entries (see [`super::block`]) and the footer's
/// `first_deadline`; version 1 tables have neither and read unchanged.
pub const FORMAT_VERSION: u32 = 2;
/// Size in bytes of the footer this code writes.
pub const FOOTER_BYTES: usize = 72;
/// Size in bytes of the longest footer of any version: what a reader takes from the end.
pub const FOOTER_BYTES_MAX: usize = FOOTER_BYTES;
/// Bytes every footer ends with: magic u64, version u32, crc u32.
const FOOTER_TRAILER_BYTES: usize = 16;

/// The footer length of format `version`, or `None` for a version this code cannot read.
pub fn footer_bytes(version: u32) -> Option<usize> {
    match version {
        1 => Some(64),
        2 => Some(FOOTER_BYTES),
        _ => None,
    }
}
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// The earliest expiry deadline (absolute Unix ms) of a value in the table, if any
    /// value has one: the compaction picker rewrites the table once it has passed.
    pub first_deadline_ms: Option<u64>,
    /// The format version the table was written in ([`FORMAT_VERSION`] for new tables).
    pub format_version: u32,
}

impl Default for Footer {
    fn default() -> Self {
        Self {
            index_offset: 0,
            index_len_bytes: 0,
            bloom_offset: 0,
            bloom_len_bytes: 0,
            entry_count: 0,
            smallest_seq: SeqNo(0),
            largest_seq: SeqNo(0),
            first_deadline_ms: None,
            format_version: FORMAT_VERSION,
        }
    }
}

impl Footer {
    /// The footer's length in bytes in its format version.
    pub fn encoded_len(&self) -> usize {
        footer_bytes(self.format_version).unwrap_or(FOOTER_BYTES)
    }

    /// The footer's bytes, in its format version ([`FOOTER_BYTES`] for version 2).
    ///
    /// # Panics
    /// For a version-1 footer with a deadline, or an unknown version: bugs of the caller.
    pub fn encode(&self) -> Vec<u8> {
        let len = footer_bytes(self.format_version).expect("a known footer version");
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(&self.index_offset.to_le_bytes());
        buf.extend_from_slice(&self.index_len_bytes.to_le_bytes());
        buf.extend_from_slice(&self.bloom_offset.to_le_bytes());
        buf.extend_from_slice(&self.bloom_len_bytes.to_le_bytes());
        buf.extend_from_slice(&self.entry_count.to_le_bytes());
        buf.extend_from_slice(&self.smallest_seq.0.to_le_bytes());
        buf.extend_from_slice(&self.largest_seq.0.to_le_bytes());
        if self.format_version >= 2 {
            buf.extend_from_slice(&self.first_deadline_ms.unwrap_or(0).to_le_bytes());
        } else {
            assert!(
                self.first_deadline_ms.is_none(),
                "version 1 has no deadlines"
            );
        }
        buf.extend_from_slice(&MAGIC.to_le_bytes());
        buf.extend_from_slice(&self.format_version.to_le_bytes());
        seal_block(&mut buf, 0);
        debug_assert_eq!(buf.len(), len);
        buf
    }

    /// The length of the footer that ends `tail` (the last bytes of a file), from the
    /// version field every footer ends with; `None` if `tail` is too short or names no
    /// known version. Nothing is checked but the version: [`Footer::decode`] checks.
    pub fn len_at_end(tail: &[u8]) -> Option<usize> {
        let at = tail.len().checked_sub(8)?;
        let version = u32::from_le_bytes(tail[at..at + 4].try_into().expect("4 bytes"));
        footer_bytes(version).filter(|&len| len <= tail.len())
    }

    /// Decodes the footer at the end of `tail` (the last [`FOOTER_BYTES_MAX`] bytes of a
    /// file, or all of a shorter file) and returns it with its length in bytes.
    ///
    /// # Errors
    /// As [`Footer::decode`]; also when `tail` is shorter than the footer its version
    /// names. The offset of an error counts from the start of the footer.
    pub fn decode_tail(tail: &[u8]) -> Result<(Self, usize), FormatError> {
        let len = Self::len_at_end(tail).ok_or(FormatError {
            reason: "no SSTable footer of a known version at the end of the file",
            offset: 0,
        })?;
        let footer = Self::decode(&tail[tail.len() - len..])?;
        Ok((footer, len))
    }

    /// Decodes and checks a footer: exactly the bytes of one footer of any version.
    ///
    /// # Errors
    /// Wrong length for its version, checksum, magic or version.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let wrong_length = FormatError {
            reason: "footer has the wrong length",
            offset: 0,
        };
        if bytes.len() < FOOTER_TRAILER_BYTES {
            return Err(wrong_length);
        }
        let payload = open_block(bytes)?;
        let trailer = payload.len() - (FOOTER_TRAILER_BYTES - 4);
        let mut t = Cursor::new(&payload[trailer..]);
        if t.u64()? != MAGIC {
            return Err(FormatError {
                reason: "bad SSTable magic",
                offset: trailer,
            });
        }
        let format_version = t.u32()?;
        let Some(len) = footer_bytes(format_version) else {
            return Err(FormatError {
                reason: "unsupported SSTable format version",
                offset: trailer + 8,
            });
        };
        if bytes.len() != len {
            return Err(wrong_length);
        }
        let mut c = Cursor::new(&payload[..trailer]);
        let mut footer = Footer {
            index_offset: c.u64()?,
            index_len_bytes: c.u32()?,
            bloom_offset: c.u64()?,
            bloom_len_bytes: c.u32()?,
            entry_count: c.u64()?,
            smallest_seq: SeqNo(c.u64()?),
            largest_seq: SeqNo(c.u64()?),
            first_deadline_ms: None,
            format_version,
        };
        if format_version >= 2 {
            footer.first_deadline_ms = Some(c.u64()?).filter(|&d| d != 0);
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
            first_deadline_ms: Some(1_700_000_000_000),
            format_version: FORMAT_VERSION,
        }
    }

    #[test]
    fn footer_round_trips() {
        let f = sample_footer();
        assert_eq!(f.encode().len(), FOOTER_BYTES);
        assert_eq!(Footer::decode(&f.encode()), Ok(f));
    }

    #[test]
    fn version_1_footers_are_found_and_read() {
        let v1 = Footer {
            first_deadline_ms: None,
            format_version: 1,
            ..sample_footer()
        };
        let bytes = v1.encode();
        assert_eq!(bytes.len(), 64);
        // At the end of a file, behind other bytes.
        let mut tail = vec![0xAB; FOOTER_BYTES_MAX];
        tail.extend_from_slice(&bytes);
        let tail = &tail[tail.len() - FOOTER_BYTES_MAX..];
        assert_eq!(Footer::decode_tail(tail), Ok((v1, 64)));
        let v2 = sample_footer();
        assert_eq!(Footer::decode_tail(&v2.encode()), Ok((v2, FOOTER_BYTES)));
    }

    #[test]
    fn footer_flipped_byte_is_detected() {
        let bytes = sample_footer().encode();
        for i in 0..FOOTER_BYTES {
            let mut bad = bytes.clone();
            bad[i] ^= 0x08;
            assert!(Footer::decode(&bad).is_err(), "flip at {i}");
            assert!(Footer::decode_tail(&bad).is_err(), "flip at {i}");
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
            let _ = Footer::decode_tail(&bytes);
            let _ = open_block(&bytes);
            let _ = decode_index(&bytes);
        }

        #[test]
        fn arbitrary_footer_sized_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), FOOTER_BYTES)) {
            let _ = Footer::decode(&bytes);
        }
    }
}
