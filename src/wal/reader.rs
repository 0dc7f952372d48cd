//! Replay of one WAL segment: the records up to the first one that does not decode.
//!
//! The reader works on the whole segment in memory and is pure. [`tail_of`] describes what
//! follows the valid records, and [`judge_tail`] is **the** rule for what that means —
//! a torn tail that recovery cuts away, or corruption that stops it — used by recovery and
//! by `tskv-tool` alike, so the two cannot drift.

use super::record::{decode, Decoded, RecordRef};

/// Why replay of a segment stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A zero length field or only zero bytes: the clean end of written data.
    End,
    /// The segment ends inside a record.
    Incomplete,
    /// A record failed its checks.
    Corrupt(&'static str),
}

impl Stop {
    /// A sentence saying why replay stopped, for logs and errors.
    pub fn reason(self) -> &'static str {
        match self {
            Stop::End => "clean end",
            Stop::Incomplete => "record cut short by the end of the segment",
            Stop::Corrupt(reason) => reason,
        }
    }
}

/// Iterates over the valid records of a segment's bytes, in order.
#[derive(Debug)]
pub struct SegmentReader<'a> {
    data: &'a [u8],
    offset: usize,
    stop: Option<Stop>,
}

impl<'a> SegmentReader<'a> {
    /// A reader over the whole content of one segment file.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            offset: 0,
            stop: None,
        }
    }

    /// Byte offset just past the last valid record returned so far.
    pub fn valid_end(&self) -> usize {
        self.offset
    }

    /// Why iteration stopped; `None` while it has not.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }
}

impl<'a> Iterator for SegmentReader<'a> {
    type Item = RecordRef<'a>;

    fn next(&mut self) -> Option<RecordRef<'a>> {
        if self.stop.is_some() {
            return None;
        }
        let stop = match decode(&self.data[self.offset..]) {
            Decoded::Record { record, len_bytes } => {
                self.offset += len_bytes;
                return Some(record);
            }
            Decoded::End => Stop::End,
            Decoded::Incomplete => Stop::Incomplete,
            Decoded::Corrupt(reason) => Stop::Corrupt(reason),
        };
        self.stop = Some(stop);
        None
    }
}

/// One past the last non-zero byte of `data` at or after `from`; `None` if `data[from..]`
/// is all zero bytes (a clean, preallocated tail).
pub fn nonzero_end(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?
        .iter()
        .rposition(|&b| b != 0)
        .map(|pos| from + pos + 1)
}

/// What follows the last valid record of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Only zero bytes (the preallocated part): a clean end.
    Clean {
        /// Zero bytes after the valid records.
        zero_bytes: usize,
    },
    /// Non-zero bytes that do not decode as records.
    Garbage {
        /// The end of the valid records, where decoding stopped.
        offset: usize,
        /// Bytes from `offset` to the last non-zero byte.
        bytes: usize,
        /// Why decoding stopped there.
        reason: &'static str,
    },
}

/// The tail of `data` after a [`SegmentReader`] over it stopped.
pub fn tail_of(data: &[u8], reader: &SegmentReader<'_>) -> Tail {
    let valid_end = reader.valid_end();
    match nonzero_end(data, valid_end) {
        None => Tail::Clean {
            zero_bytes: data.len() - valid_end,
        },
        Some(garbage_end) => Tail::Garbage {
            offset: valid_end,
            bytes: garbage_end - valid_end,
            reason: match reader.stop() {
                // A zero length field, but non-zero bytes further on.
                Some(Stop::End) | None => "non-zero bytes after the end of the records",
                Some(stop) => stop.reason(),
            },
        },
    }
}

/// What a segment's tail means for recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailVerdict {
    /// Nothing after the valid records.
    Clean,
    /// The end of the last write, cut short by a crash and never acknowledged (an
    /// acknowledged write was fdatasynced whole): recovery zeroes it and goes on.
    TornTail,
    /// Bad bytes that a crash cannot explain: recovery stops with an error.
    Corruption,
}

/// The torn-tail rule: non-zero bytes after the valid records are a torn tail in the last
/// segment, since only its final write can have been cut short, and corruption in any
/// earlier one, which was fdatasynced before the WAL moved past it.
pub fn judge_tail(tail: &Tail, is_last_segment: bool) -> TailVerdict {
    match tail {
        Tail::Clean { .. } => TailVerdict::Clean,
        Tail::Garbage { .. } if is_last_segment => TailVerdict::TornTail,
        Tail::Garbage { .. } => TailVerdict::Corruption,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::SeqNo;
    use crate::wal::record::{encode, RecordKind};

    fn segment(records: u64, tail_zero_bytes: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        for seq in 1..=records {
            encode(&mut buf, RecordKind::Put, SeqNo(seq), b"k", b"v");
        }
        buf.resize(buf.len() + tail_zero_bytes, 0);
        buf
    }

    #[test]
    fn reads_all_records_then_clean_end() {
        let data = segment(5, 100);
        let mut reader = SegmentReader::new(&data);
        let seqs: Vec<u64> = reader.by_ref().map(|r| r.seq.0).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(reader.stop(), Some(Stop::End));
        assert_eq!(nonzero_end(&data, reader.valid_end()), None);
    }

    #[test]
    fn stops_at_a_flipped_byte() {
        let mut data = segment(5, 100);
        let one = crate::wal::record::encoded_len(1, 1);
        data[2 * one + 10] ^= 1;
        let mut reader = SegmentReader::new(&data);
        assert_eq!(reader.by_ref().count(), 2);
        assert!(matches!(reader.stop(), Some(Stop::Corrupt(_))));
        assert_eq!(reader.valid_end(), 2 * one);
        assert_eq!(nonzero_end(&data, reader.valid_end()), Some(5 * one));
    }

    #[test]
    fn stops_at_a_truncated_record() {
        let data = segment(3, 0);
        let cut = &data[..data.len() - 1];
        let mut reader = SegmentReader::new(cut);
        assert_eq!(reader.by_ref().count(), 2);
        assert_eq!(reader.stop(), Some(Stop::Incomplete));
    }
}
