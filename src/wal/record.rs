//! Encoding and decoding of one WAL record.
//!
//! All integers are little-endian:
//!
//! ```text
//!  0        4         8      9         17           21        21+key_len
//!  ┌────────┬─────────┬──────┬─────────┬────────────┬─────────┬─────────┐
//!  │ crc32  │ length  │ type │ seq     │ key_len    │ key     │ value   │
//!  │ u32    │ u32     │ u8   │ u64     │ u32        │ bytes   │ bytes   │
//!  └────────┴─────────┴──────┴─────────┴────────────┴─────────┴─────────┘
//!           └──────────── covered by crc32 (CRC-32/ISO-HDLC) ───────────┘
//! ```
//!
//! * `length` is the number of bytes after the length field:
//!   `1 + 8 + 4 + key_len + value_len`, so at least [`BODY_FIXED_BYTES`] (13).
//! * `type` is 1 for a put, 2 for a delete (tombstone, whose value is empty) and 3 for a
//!   put with an expiry deadline, whose value bytes start with the deadline (absolute Unix
//!   milliseconds, u64) followed by the value, and 4 for a drop-all (`FLUSHALL`): every
//!   write of the shard with a lower sequence number is gone; its key and value are empty.
//!   Types 5 and 6 belong to transactions across shards ([`crate::wal::tx`]): 5 marks the
//!   writes of one shard's part of a transaction (key empty; value: transaction id, first
//!   and last sequence number of the part, three u64), 6 records a transaction as committed
//!   (key empty; value: the transaction id, u64).
//! * The value length is implied: `length - 13 - key_len` (for type 3, minus the 8
//!   deadline bytes).
//!
//! A length field of zero marks the clean end of a segment's written data (its preallocated
//! tail is zero bytes).

use crate::base::SeqNo;

/// Bytes before the record body: crc32 and length.
pub const HEADER_BYTES: usize = 8;
/// Bytes of the body that do not depend on key and value: type, seq and key_len.
pub const BODY_FIXED_BYTES: usize = 1 + 8 + 4;

/// What a record does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// Sets the key to the value.
    Put = 1,
    /// Writes a tombstone for the key; the value is empty.
    Delete = 2,
    /// Sets the key to the value until a deadline (`RecordRef::expire_at_ms`).
    PutExpiring = 3,
    /// Removes every write with a lower sequence number (`FLUSHALL`); key and value are
    /// empty. Recovery empties what it replayed so far and drops the SSTables the
    /// manifest still lists if their drop was not installed yet.
    DropAll = 4,
    /// Marks the writes with sequence numbers in a range as one shard's part of a
    /// transaction across shards: they count only if the transaction committed
    /// ([`crate::wal::tx`]). Key empty; value [`crate::wal::tx::PART_BYTES`] bytes.
    TxPart = 5,
    /// A transaction across shards committed. Key empty; value
    /// [`crate::wal::tx::COMMIT_BYTES`] bytes.
    TxCommit = 6,
}

/// Bytes of the deadline a [`RecordKind::PutExpiring`] record carries before its value.
pub const DEADLINE_BYTES: usize = 8;

/// A decoded record, borrowing key and value from the buffer it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Put or delete.
    pub kind: RecordKind,
    /// Sequence number of the write.
    pub seq: SeqNo,
    /// The key.
    pub key: &'a [u8],
    /// The value; empty for a delete.
    pub value: &'a [u8],
    /// The expiry deadline (absolute Unix ms) of a [`RecordKind::PutExpiring`]; `None`
    /// for the other kinds.
    pub expire_at_ms: Option<u64>,
}

/// Encoded size in bytes of a record with these key and value lengths (no deadline; a
/// [`RecordKind::PutExpiring`] adds [`DEADLINE_BYTES`]).
pub fn encoded_len(key_len: usize, value_len: usize) -> usize {
    HEADER_BYTES + BODY_FIXED_BYTES + key_len + value_len
}

/// Appends the encoding of one record to `buf`: a put (`kind` Put, or PutExpiring with
/// `expire_at_ms`) or a delete.
///
/// # Panics
/// If the record would be longer than `u32::MAX` bytes, a delete carries a value, a
/// drop-all a key, or the deadline is given exactly for a PutExpiring: all bugs of the caller, whose protocol
/// limits are far below.
pub fn encode_full(
    buf: &mut Vec<u8>,
    kind: RecordKind,
    seq: SeqNo,
    key: &[u8],
    value: &[u8],
    expire_at_ms: Option<u64>,
) {
    assert!(
        kind != RecordKind::Delete || value.is_empty(),
        "delete with a value"
    );
    assert!(
        kind != RecordKind::DropAll || key.is_empty(),
        "drop-all with a key"
    );
    assert_eq!(
        kind == RecordKind::PutExpiring,
        expire_at_ms.is_some(),
        "a deadline goes with PutExpiring, and only there"
    );
    let deadline_bytes = if expire_at_ms.is_some() {
        DEADLINE_BYTES
    } else {
        0
    };
    let length = BODY_FIXED_BYTES + key.len() + deadline_bytes + value.len();
    let length = u32::try_from(length).expect("WAL record longer than u32::MAX bytes");
    let key_len = u32::try_from(key.len()).expect("key longer than u32::MAX bytes");
    let start = buf.len();
    // One capacity check for the record instead of one per field.
    buf.reserve(HEADER_BYTES + length as usize);
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&length.to_le_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(&seq.0.to_le_bytes());
    buf.extend_from_slice(&key_len.to_le_bytes());
    buf.extend_from_slice(key);
    if let Some(deadline) = expire_at_ms {
        buf.extend_from_slice(&deadline.to_le_bytes());
    }
    buf.extend_from_slice(value);
    let crc = crc32fast::hash(&buf[start + 4..]);
    buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// [`encode_full`] of a put or delete without a deadline.
///
/// # Panics
/// As [`encode_full`], and for a PutExpiring (it needs its deadline).
pub fn encode(buf: &mut Vec<u8>, kind: RecordKind, seq: SeqNo, key: &[u8], value: &[u8]) {
    encode_full(buf, kind, seq, key, value, None);
}

/// The outcome of decoding the bytes at one position of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid record occupying the first `len_bytes` bytes.
    Record {
        /// The record.
        record: RecordRef<'a>,
        /// Its encoded size in bytes.
        len_bytes: usize,
    },
    /// A zero length field (or only zero bytes left): the clean end of written data.
    End,
    /// The buffer ends inside the record: a torn write, or the caller must read more.
    Incomplete,
    /// The bytes are not a record (bad checksum, impossible length, unknown type).
    Corrupt(&'static str),
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

/// Decodes the record at the start of `buf`. Never panics, whatever the bytes.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    if buf.len() < HEADER_BYTES {
        return if buf.iter().all(|&b| b == 0) {
            Decoded::End
        } else {
            Decoded::Incomplete
        };
    }
    let crc = u32_at(buf, 0);
    let length = u32_at(buf, 4) as usize;
    if length == 0 {
        return if crc == 0 {
            Decoded::End
        } else {
            Decoded::Corrupt("zero length with non-zero checksum")
        };
    }
    if length < BODY_FIXED_BYTES {
        return Decoded::Corrupt("length shorter than the fixed record body");
    }
    let Some(body) = buf.get(HEADER_BYTES..HEADER_BYTES + length) else {
        return Decoded::Incomplete;
    };
    if crc32fast::hash(&buf[4..HEADER_BYTES + length]) != crc {
        return Decoded::Corrupt("checksum mismatch");
    }
    let kind = match body[0] {
        1 => RecordKind::Put,
        2 => RecordKind::Delete,
        3 => RecordKind::PutExpiring,
        4 => RecordKind::DropAll,
        5 => RecordKind::TxPart,
        6 => RecordKind::TxCommit,
        _ => return Decoded::Corrupt("unknown record type"),
    };
    let seq = SeqNo(u64::from_le_bytes(body[1..9].try_into().expect("8 bytes")));
    let key_len = u32_at(body, 9) as usize;
    let Some(rest) = body.get(BODY_FIXED_BYTES..) else {
        return Decoded::Corrupt("length shorter than the fixed record body");
    };
    if key_len > rest.len() {
        return Decoded::Corrupt("key length exceeds record length");
    }
    let (key, mut value) = rest.split_at(key_len);
    if kind == RecordKind::Delete && !value.is_empty() {
        return Decoded::Corrupt("delete record with a value");
    }
    let mut expire_at_ms = None;
    if kind == RecordKind::PutExpiring {
        let Some((deadline, rest)) = value.split_first_chunk::<DEADLINE_BYTES>() else {
            return Decoded::Corrupt("expiring put shorter than its deadline");
        };
        expire_at_ms = Some(u64::from_le_bytes(*deadline));
        value = rest;
    }
    if kind == RecordKind::DropAll && !rest.is_empty() {
        return Decoded::Corrupt("drop-all record with a key or value");
    }
    if let Some(reason) = crate::wal::tx::check_record(kind, key, value) {
        return Decoded::Corrupt(reason);
    }
    Decoded::Record {
        record: RecordRef {
            kind,
            seq,
            key,
            value,
            expire_at_ms,
        },
        len_bytes: HEADER_BYTES + length,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(kind: RecordKind, seq: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(&mut buf, kind, SeqNo(seq), key, value);
        buf
    }

    #[test]
    fn round_trip_put_and_delete() {
        let mut buf = one(RecordKind::Put, 7, b"key", b"value");
        encode(&mut buf, RecordKind::Delete, SeqNo(8), b"key", b"");
        let first_len = encoded_len(3, 5);
        match decode(&buf) {
            Decoded::Record { record, len_bytes } => {
                assert_eq!(len_bytes, first_len);
                assert_eq!(record.kind, RecordKind::Put);
                assert_eq!(record.seq, SeqNo(7));
                assert_eq!(record.key, b"key");
                assert_eq!(record.value, b"value");
            }
            other => panic!("unexpected {other:?}"),
        }
        match decode(&buf[first_len..]) {
            Decoded::Record { record, len_bytes } => {
                assert_eq!(len_bytes, encoded_len(3, 0));
                assert_eq!(record.kind, RecordKind::Delete);
                assert_eq!(record.seq, SeqNo(8));
                assert!(record.value.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn drop_all_round_trips_and_refuses_a_key() {
        let buf = one(RecordKind::DropAll, 9, b"", b"");
        match decode(&buf) {
            Decoded::Record { record, len_bytes } => {
                assert_eq!(len_bytes, encoded_len(0, 0));
                assert_eq!(record.kind, RecordKind::DropAll);
                assert_eq!(record.seq, SeqNo(9));
            }
            other => panic!("unexpected {other:?}"),
        }
        // A put record relabelled as a drop-all (checksum fixed) is corrupt, not a drop.
        let mut bad = one(RecordKind::Put, 9, b"k", b"");
        bad[HEADER_BYTES] = RecordKind::DropAll as u8;
        let crc = crc32fast::hash(&bad[4..]);
        bad[..4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode(&bad),
            Decoded::Corrupt("drop-all record with a key or value")
        );
    }

    #[test]
    fn zeros_are_the_clean_end() {
        assert_eq!(decode(&[]), Decoded::End);
        assert_eq!(decode(&[0; 3]), Decoded::End);
        assert_eq!(decode(&[0; 100]), Decoded::End);
    }

    #[test]
    fn truncated_record_is_incomplete() {
        let buf = one(RecordKind::Put, 1, b"k", b"vvvv");
        for cut in 1..buf.len() {
            assert_eq!(decode(&buf[..cut]), Decoded::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let buf = one(RecordKind::Put, 99, b"some key", b"some value");
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(
                !matches!(decode(&bad), Decoded::Record { .. }),
                "flip at {i} went unnoticed"
            );
        }
    }

    #[test]
    fn expiring_put_round_trips_with_its_deadline() {
        let mut buf = Vec::new();
        encode_full(
            &mut buf,
            RecordKind::PutExpiring,
            SeqNo(4),
            b"k",
            b"v",
            Some(1_700_000_000_123),
        );
        assert_eq!(buf.len(), encoded_len(1, 1) + DEADLINE_BYTES);
        match decode(&buf) {
            Decoded::Record { record, len_bytes } => {
                assert_eq!(len_bytes, buf.len());
                assert_eq!(record.kind, RecordKind::PutExpiring);
                assert_eq!(record.value, b"v");
                assert_eq!(record.expire_at_ms, Some(1_700_000_000_123));
            }
            other => panic!("unexpected {other:?}"),
        }
        // A plain put has no deadline.
        match decode(&one(RecordKind::Put, 5, b"k", b"v")) {
            Decoded::Record { record, .. } => assert_eq!(record.expire_at_ms, None),
            other => panic!("unexpected {other:?}"),
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_records_round_trip(
            seq in any::<u64>(),
            key in proptest::collection::vec(any::<u8>(), 0..64),
            value in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let buf = one(RecordKind::Put, seq, &key, &value);
            match decode(&buf) {
                Decoded::Record { record, len_bytes } => {
                    prop_assert_eq!(len_bytes, buf.len());
                    prop_assert_eq!(record.seq, SeqNo(seq));
                    prop_assert_eq!(record.key, &key[..]);
                    prop_assert_eq!(record.value, &value[..]);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}
