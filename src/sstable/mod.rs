//! SSTables: immutable sorted files of blocks, index, Bloom filter and footer.
//!
//! A file `sst-<NNNNNNNNNN>.sst` (the table id, zero-padded to ten digits) holds the
//! entries of one flushed memtable in key order. All integers are little-endian, and every
//! block ends with a CRC-32 (ISO-HDLC, as `crc32fast`) of the bytes before it in the block:
//!
//! ```text
//!  ┌──────────────┬─────┬──────────────┬─────────────┬─────────────┬────────────────┐
//!  │ data block 0 │ ... │ data block n │ index block │ Bloom block │ footer (64 B)  │
//!  └──────────────┴─────┴──────────────┴─────────────┴─────────────┴────────────────┘
//!  0                                                                        file length
//!
//!  block    = payload | crc32 u32 (of payload)
//!  data     = entry*            entry = key_len u32 | value_len u32 | seq u64 | key
//!                                       | [deadline u64] | value
//!                                       (value_len = u32::MAX: tombstone, no value bytes;
//!                                       bit 31 set: a deadline precedes the value)
//!  index    = (key_len u32 | last key of the data block | offset u64 | len u32)*
//!             (one per data block, in order; len counts the block's crc)
//!  Bloom    = k u32 | bit array
//! ```
//!
//! The footer layout is drawn in [`format`](mod@format). [`writer`] encodes a table into one buffer,
//! [`reader`] opens a file (footer, index and Bloom filter in memory, data blocks read on
//! demand and checked before use), and [`iter`] walks all entries.

pub mod block;
pub mod bloom;
pub mod format;
pub mod iter;
pub mod reader;
pub mod writer;

use crate::base::SeqNo;

/// The id of an SSTable; ids are never reused within a shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId(pub u64);

impl TableId {
    /// The table's file name, e.g. `sst-0000000003.sst`.
    pub fn file_name(self) -> String {
        format!("sst-{:010}.sst", self.0)
    }

    /// Parses a file name made by [`TableId::file_name`]; `None` for any other name.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let digits = name.strip_prefix("sst-")?.strip_suffix(".sst")?;
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(Self)
    }
}

/// One entry of a table, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableEntry {
    /// The key.
    pub key: Vec<u8>,
    /// Sequence number of the version.
    pub seq: SeqNo,
    /// The value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// The value's expiry deadline (absolute Unix ms), `None` = never; see
    /// [`crate::base::is_expired`].
    pub expire_at_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::TableId;

    #[test]
    fn file_name_round_trips() {
        let id = TableId(3);
        assert_eq!(id.file_name(), "sst-0000000003.sst");
        assert_eq!(TableId::from_file_name(&id.file_name()), Some(id));
        assert_eq!(TableId::from_file_name("sst-3.sst"), None);
    }
}
