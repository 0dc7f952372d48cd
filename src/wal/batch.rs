//! Framing of one group-commit batch: the records of one WAL write behind a header that
//! carries their length, their count and a CRC over all of them.
//!
//! All integers are little-endian:
//!
//! ```text
//!  0        4        8           12          16           24            32
//!  ┌────────┬────────┬───────────┬───────────┬────────────┬─────────────┬──────────────┐
//!  │ crc32  │ magic  │ body_len  │ records   │ first_seq  │ durable_seq │ body:        │
//!  │ u32    │ u32    │ u32       │ u32       │ u64        │ u64         │ records      │
//!  └────────┴────────┴───────────┴───────────┴────────────┴─────────────┴──────────────┘
//!           └────────────── covered by crc32 (CRC-32/ISO-HDLC) ─────────────────────────┘
//! ```
//!
//! * `magic` is [`BATCH_MAGIC`]. Segments written before batches existed hold bare records
//!   (see [`super::record`]), whose second word is a record length below 2³¹; the magic
//!   has its top bit set, so the two can never be confused and old segments stay readable.
//! * `body_len` is the byte length of the records that follow; `records` their number;
//!   `first_seq` the sequence number of the first one (the rest follow in increasing order).
//! * `durable_seq` is the highest sequence number that was **known durable** (covered by
//!   a completed fdatasync) when the batch was handed out for writing. It is what lets
//!   recovery tell a torn write from corruption: bad bytes followed by an intact batch
//!   whose `durable_seq` reaches past the last good record were fdatasynced before that
//!   batch was written, so a crash cannot explain them (see [`super::reader::judge_tail`]).
//!
//! A batch is written by one `write` and is valid only whole: a batch whose CRC fails is
//! treated as a unit, never partly replayed.

use crate::base::SeqNo;

/// Bytes of the batch header.
pub const BATCH_HEADER_BYTES: usize = 32;
/// The second word of every batch header. Its top bit is set, which no record length of
/// a pre-batch segment can have.
pub const BATCH_MAGIC: u32 = 0xB47C_5EB1;
const _: () = assert!(
    BATCH_MAGIC >= 1 << 31,
    "the magic must not be a record length"
);

/// The decoded fields of a batch header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// Bytes of records after the header.
    pub body_bytes: usize,
    /// Number of records in the body.
    pub record_count: u32,
    /// Sequence number of the first record.
    pub first_seq: SeqNo,
    /// Highest sequence number known durable when the batch was handed out.
    pub durable_seq: SeqNo,
}

/// Starts a batch in the empty `buf`: reserves the header, which [`seal`] fills in.
pub fn begin(buf: &mut Vec<u8>) {
    debug_assert!(buf.is_empty(), "a batch starts an empty buffer");
    buf.resize(BATCH_HEADER_BYTES, 0);
}

/// Fills in the header of the batch in `buf` (begun with [`begin`], then records
/// appended) and its CRC.
///
/// # Panics
/// If `buf` is shorter than the header or the body is longer than `u32::MAX` bytes (the
/// memtable and request limits keep batches far below that).
pub fn seal(buf: &mut [u8], record_count: u32, first_seq: SeqNo, durable_seq: SeqNo) {
    let body_len = buf
        .len()
        .checked_sub(BATCH_HEADER_BYTES)
        .expect("batch shorter than its header");
    let body_len = u32::try_from(body_len).expect("WAL batch longer than u32::MAX bytes");
    buf[4..8].copy_from_slice(&BATCH_MAGIC.to_le_bytes());
    buf[8..12].copy_from_slice(&body_len.to_le_bytes());
    buf[12..16].copy_from_slice(&record_count.to_le_bytes());
    buf[16..24].copy_from_slice(&first_seq.0.to_le_bytes());
    buf[24..32].copy_from_slice(&durable_seq.0.to_le_bytes());
    let crc = crc32fast::hash(&buf[4..]);
    buf[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// Whether the bytes at the start of `buf` claim to be a batch (its magic is in place).
/// Says nothing about whether the batch is intact.
pub fn starts_batch(buf: &[u8]) -> bool {
    buf.get(4..8)
        .is_some_and(|magic| magic == BATCH_MAGIC.to_le_bytes())
}

/// The outcome of decoding the batch at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodedBatch<'a> {
    /// An intact batch: header, its records' bytes, and its whole length in bytes.
    Batch {
        /// The header.
        header: BatchHeader,
        /// The records (not yet decoded one by one).
        body: &'a [u8],
        /// Header plus body.
        len_bytes: usize,
    },
    /// The buffer ends before the batch does.
    Incomplete,
    /// The header's CRC does not match.
    Corrupt(&'static str),
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes the batch at the start of `buf`, which [`starts_batch`] accepted, and checks
/// its CRC. The records of the body are left to the caller. Never panics.
pub fn decode(buf: &[u8]) -> DecodedBatch<'_> {
    if buf.len() < BATCH_HEADER_BYTES {
        return DecodedBatch::Incomplete;
    }
    let header = BatchHeader {
        body_bytes: u32_at(buf, 8) as usize,
        record_count: u32_at(buf, 12),
        first_seq: SeqNo(u64_at(buf, 16)),
        durable_seq: SeqNo(u64_at(buf, 24)),
    };
    let len_bytes = BATCH_HEADER_BYTES + header.body_bytes;
    let Some(whole) = buf.get(..len_bytes) else {
        return DecodedBatch::Incomplete;
    };
    if crc32fast::hash(&whole[4..]) != u32_at(buf, 0) {
        return DecodedBatch::Corrupt("batch checksum mismatch");
    }
    DecodedBatch::Batch {
        header,
        body: &whole[BATCH_HEADER_BYTES..],
        len_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::record::{encode, RecordKind};

    fn batch(first_seq: u64, records: u64, durable_seq: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        begin(&mut buf);
        for seq in first_seq..first_seq + records {
            encode(&mut buf, RecordKind::Put, SeqNo(seq), b"key", b"value");
        }
        seal(
            &mut buf,
            records as u32,
            SeqNo(first_seq),
            SeqNo(durable_seq),
        );
        buf
    }

    #[test]
    fn round_trip() {
        let buf = batch(10, 3, 9);
        assert!(starts_batch(&buf));
        match decode(&buf) {
            DecodedBatch::Batch {
                header,
                body,
                len_bytes,
            } => {
                assert_eq!(len_bytes, buf.len());
                assert_eq!(body.len(), buf.len() - BATCH_HEADER_BYTES);
                assert_eq!(
                    header,
                    BatchHeader {
                        body_bytes: body.len(),
                        record_count: 3,
                        first_seq: SeqNo(10),
                        durable_seq: SeqNo(9),
                    }
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let buf = batch(1, 2, 0);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    !matches!(decode(&bad), DecodedBatch::Batch { .. }),
                    "flip of bit {bit} at {i} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn cut_short_is_incomplete() {
        let buf = batch(1, 2, 0);
        for cut in 0..buf.len() {
            assert_eq!(
                decode(&buf[..cut]),
                DecodedBatch::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn no_bare_record_looks_like_a_batch() {
        let mut record = Vec::new();
        encode(&mut record, RecordKind::Put, SeqNo(1), b"k", &[0xB4; 64]);
        assert!(!starts_batch(&record));
    }
}
