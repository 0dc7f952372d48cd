//! Write-ahead log: segments of CRC-checked group-commit batches.
//!
//! The WAL of a shard is a sequence of segment files `wal-<NNNNNNNNNN>.log` (the segment
//! number, zero-padded to ten digits) in the shard directory. Each segment is preallocated
//! with `fallocate` when it is created, so its tail is zero bytes until records are written
//! there:
//!
//! ```text
//!  wal-0000000007.log
//!  ┌─────────────────────────────┬─────────┬─────┬──────────────────────────────┐
//!  │ batch 1                     │ batch 2 │ ... │ 0 0 0 0 ... (preallocated)   │
//!  │ header │ record │ record ... │         │     │                              │
//!  └─────────────────────────────┴─────────┴─────┴──────────────────────────────┘
//!  0                                             end of valid data    file length
//! ```
//!
//! Each group commit writes one batch ([`batch`]: length, record count, the sequence
//! number durable when it was written, and a CRC over all of it) holding its records
//! ([`record`]). Replay ([`reader`]) accepts batches whole, in order, and stops at the
//! first one that does not check out; a zero header is the clean end of the written part.
//! What the bytes after that mean — a torn write that recovery cuts away, or corruption
//! that stops it — is one rule, [`reader::judge_tail`], shared by recovery and `tskv-tool`.
//! Segments from before batches existed hold bare records and stay readable.
//!
//! [`writer`] gathers records into batches, rotates segments and freezes nothing itself:
//! the store decides when a segment must be left.

pub mod batch;
pub mod reader;
pub mod record;
pub mod tx;
pub mod writer;

use std::fs::File;
use std::sync::Arc;

use crate::base::SeqNo;

/// The number of a WAL segment; segments are written in increasing number order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentNo(pub u64);

impl SegmentNo {
    /// The segment after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// The segment's file name, e.g. `wal-0000000007.log`.
    pub fn file_name(self) -> String {
        format!("wal-{:010}.log", self.0)
    }

    /// Parses a file name made by [`SegmentNo::file_name`]; `None` for any other name.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(Self)
    }
}

/// A batch of WAL records to write at `offset` of `file`.
#[derive(Debug)]
pub struct WalBatch {
    /// The segment file (already created, preallocated, and its directory entry synced).
    pub file: Arc<File>,
    /// Byte offset in the segment where `buf` goes.
    pub offset: u64,
    /// Encoded records; ownership passes to the ring until the write completes.
    pub buf: Vec<u8>,
    /// Highest sequence number in the batch.
    pub last_seq: SeqNo,
}

#[cfg(test)]
mod tests {
    use super::SegmentNo;

    #[test]
    fn file_name_round_trips() {
        let n = SegmentNo(42);
        assert_eq!(n.file_name(), "wal-0000000042.log");
        assert_eq!(SegmentNo::from_file_name(&n.file_name()), Some(n));
        assert_eq!(SegmentNo::from_file_name("wal-42.log"), None);
        assert_eq!(SegmentNo::from_file_name("sst-0000000042.sst"), None);
    }
}
