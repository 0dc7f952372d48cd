//! Replay of one WAL segment: the records up to the first batch that does not decode, and
//! the rule for what the bytes after them mean.
//!
//! The reader works on the whole segment in memory and is pure. A segment holds
//! group-commit batches ([`super::batch`]); one written before batches existed holds bare
//! records ([`super::record`]), and a segment may start with bare records and go on with
//! batches (a server upgraded in place appends batches after them). A batch is accepted
//! only whole: its CRC, its record count and every record in it must check out.
//!
//! [`tail_of`] describes what follows the valid prefix and [`judge_tail`] is **the** rule
//! for what that means — a torn tail that recovery cuts away, or corruption that stops it
//! — used by recovery and by `tskv-tool` alike, so the two cannot drift.

use std::collections::VecDeque;

use super::batch::{self, DecodedBatch};
use super::record::{decode, Decoded, RecordRef};
use crate::base::SeqNo;

/// Why replay of a segment stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A zero length field or only zero bytes: the clean end of written data.
    End,
    /// The segment ends inside a record or batch.
    Incomplete,
    /// A record or batch failed its checks.
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

/// Iterates over the valid records of a segment's bytes, in order, each with its byte
/// offset in the segment.
#[derive(Debug)]
pub struct SegmentReader<'a> {
    data: &'a [u8],
    /// End of the last whole batch (or bare record) accepted.
    offset: usize,
    stop: Option<Stop>,
    /// Records of the accepted batch not yet returned, with their offsets.
    pending: VecDeque<(usize, RecordRef<'a>)>,
    /// A batch has been seen: from here on only batches are valid.
    framed: bool,
    last_seq: Option<SeqNo>,
}

impl<'a> SegmentReader<'a> {
    /// A reader over the whole content of one segment file.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            offset: 0,
            stop: None,
            pending: VecDeque::new(),
            framed: false,
            last_seq: None,
        }
    }

    /// Byte offset just past the last valid batch (or bare record) read so far.
    pub fn valid_end(&self) -> usize {
        self.offset
    }

    /// Why iteration stopped; `None` while it has not.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// Sequence number of the last valid record read so far.
    pub fn last_seq(&self) -> Option<SeqNo> {
        self.last_seq
    }

    /// Decodes the unit at `offset`: queues a whole batch's records, or returns a bare
    /// record, or the reason to stop.
    fn advance(&mut self) -> Result<Option<(usize, RecordRef<'a>)>, Stop> {
        let rest = &self.data[self.offset..];
        if batch::starts_batch(rest) {
            let (records, len_bytes) = read_batch(self.data, self.offset)?;
            self.framed = true;
            self.offset += len_bytes;
            if let Some(&(_, last)) = records.last() {
                self.last_seq = Some(last.seq);
            }
            self.pending.extend(records);
            return Ok(None);
        }
        match decode(rest) {
            Decoded::End => Err(Stop::End),
            Decoded::Record { .. } if self.framed => {
                Err(Stop::Corrupt("a bare record after a batch"))
            }
            Decoded::Record { record, len_bytes } => {
                let at = self.offset;
                self.offset += len_bytes;
                self.last_seq = Some(record.seq);
                Ok(Some((at, record)))
            }
            Decoded::Incomplete => Err(Stop::Incomplete),
            Decoded::Corrupt(reason) => Err(Stop::Corrupt(reason)),
        }
    }
}

impl<'a> Iterator for SegmentReader<'a> {
    type Item = (usize, RecordRef<'a>);

    fn next(&mut self) -> Option<(usize, RecordRef<'a>)> {
        loop {
            if let Some(record) = self.pending.pop_front() {
                return Some(record);
            }
            if self.stop.is_some() {
                return None;
            }
            match self.advance() {
                Ok(Some(record)) => return Some(record),
                Ok(None) => {}
                Err(stop) => self.stop = Some(stop),
            }
        }
    }
}

/// An intact batch: its records with their offsets, and its length in bytes.
type ReadBatch<'a> = (Vec<(usize, RecordRef<'a>)>, usize);

/// Reads the whole batch at `offset` of `data`: its CRC, then every record in it.
fn read_batch(data: &[u8], offset: usize) -> Result<ReadBatch<'_>, Stop> {
    let (header, body, len_bytes) = match batch::decode(&data[offset..]) {
        DecodedBatch::Batch {
            header,
            body,
            len_bytes,
        } => (header, body, len_bytes),
        DecodedBatch::Incomplete => return Err(Stop::Incomplete),
        DecodedBatch::Corrupt(reason) => return Err(Stop::Corrupt(reason)),
    };
    let body_offset = offset + batch::BATCH_HEADER_BYTES;
    let mut records: Vec<(usize, RecordRef<'_>)> =
        Vec::with_capacity(header.record_count.min(1 << 16) as usize);
    let mut at = 0;
    while at < body.len() {
        let Decoded::Record { record, len_bytes } = decode(&body[at..]) else {
            return Err(Stop::Corrupt("a record inside a batch does not decode"));
        };
        let expected = match records.last() {
            None => record.seq == header.first_seq,
            Some(&(_, previous)) => record.seq > previous.seq,
        };
        if !expected {
            return Err(Stop::Corrupt("sequence numbers in a batch out of order"));
        }
        records.push((body_offset + at, record));
        at += len_bytes;
    }
    if records.len() != header.record_count as usize {
        return Err(Stop::Corrupt("record count differs from the batch header"));
    }
    Ok((records, len_bytes))
}

/// One past the last non-zero byte of `data` at or after `from`; `None` if `data[from..]`
/// is all zero bytes (a clean, preallocated tail).
pub fn nonzero_end(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?
        .iter()
        .rposition(|&b| b != 0)
        .map(|pos| from + pos + 1)
}

/// An intact batch after bad bytes that proves them fdatasynced: it was handed out when
/// sequence number `durable_seq`, past the last good record before the bad bytes, was
/// already durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableProof {
    /// Offset of the batch.
    pub offset: usize,
    /// The batch's `durable_seq`.
    pub durable_seq: SeqNo,
    /// The last sequence number before the bad bytes.
    pub last_good_seq: SeqNo,
}

/// Intact batches found after bad bytes, by scanning every offset for a batch whose CRC
/// and records check out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntactAfter {
    /// Number of intact batches.
    pub batches: u64,
    /// Records in them.
    pub records: u64,
    /// Lowest sequence number in them.
    pub first_seq: Option<SeqNo>,
    /// Highest sequence number in them.
    pub last_seq: Option<SeqNo>,
    /// The first of them that proves the bad bytes were durable, if any.
    pub proof: Option<DurableProof>,
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
        /// Intact batches further on.
        intact_after: IntactAfter,
    },
}

/// The tail of `data` after a [`SegmentReader`] over it stopped. `seq_before` is the
/// highest sequence number before this segment (in older segments or SSTables), which
/// stands for the last good record when the bad bytes start the segment.
pub fn tail_of(data: &[u8], reader: &SegmentReader<'_>, seq_before: SeqNo) -> Tail {
    debug_assert!(
        reader.pending.is_empty(),
        "tail_of a reader not yet drained"
    );
    let valid_end = reader.valid_end();
    let Some(garbage_end) = nonzero_end(data, valid_end) else {
        return Tail::Clean {
            zero_bytes: data.len() - valid_end,
        };
    };
    let last_good_seq = reader.last_seq().unwrap_or(seq_before).max(seq_before);
    Tail::Garbage {
        offset: valid_end,
        bytes: garbage_end - valid_end,
        reason: match reader.stop() {
            // A zero length field, but non-zero bytes further on.
            Some(Stop::End) | None => "non-zero bytes after the end of the records",
            Some(stop) => stop.reason(),
        },
        intact_after: intact_after(data, valid_end + 1, garbage_end, last_good_seq),
    }
}

/// An intact batch found after bad bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntactBatch {
    /// Offset of the batch in the segment.
    pub offset: usize,
    /// Header plus records, in bytes.
    pub len_bytes: usize,
    /// Records in it.
    pub records: u64,
    /// Sequence numbers of its first and last record.
    pub first_seq: SeqNo,
    /// See `first_seq`.
    pub last_seq: SeqNo,
    /// Its header's `durable_seq`.
    pub durable_seq: SeqNo,
}

/// Every intact batch that starts in `from..end` of `data` and holds sequence numbers
/// above `last_good_seq`, found by trying each offset (so bad bytes of any length are
/// skipped), in order and without overlap.
pub fn intact_batches(
    data: &[u8],
    from: usize,
    end: usize,
    last_good_seq: SeqNo,
) -> Vec<IntactBatch> {
    let mut found = Vec::new();
    let mut at = from;
    while at < end {
        if !batch::starts_batch(&data[at..]) {
            at += 1;
            continue;
        }
        let Ok((records, len_bytes)) = read_batch(data, at) else {
            at += 1;
            continue;
        };
        let (Some(&(_, first)), Some(&(_, last))) = (records.first(), records.last()) else {
            at += len_bytes;
            continue;
        };
        if first.seq <= last_good_seq {
            // Not written after the bad bytes (a stale copy inside a value, say).
            at += 1;
            continue;
        }
        let DecodedBatch::Batch { header, .. } = batch::decode(&data[at..]) else {
            unreachable!("read_batch accepted it");
        };
        found.push(IntactBatch {
            offset: at,
            len_bytes,
            records: records.len() as u64,
            first_seq: first.seq,
            last_seq: last.seq,
            durable_seq: header.durable_seq,
        });
        at += len_bytes;
    }
    found
}

fn intact_after(data: &[u8], from: usize, end: usize, last_good_seq: SeqNo) -> IntactAfter {
    let mut found = IntactAfter::default();
    for batch in intact_batches(data, from, end, last_good_seq) {
        found.batches += 1;
        found.records += batch.records;
        found.first_seq.get_or_insert(batch.first_seq);
        found.last_seq = Some(batch.last_seq);
        if found.proof.is_none() && batch.durable_seq > last_good_seq {
            found.proof = Some(DurableProof {
                offset: batch.offset,
                durable_seq: batch.durable_seq,
                last_good_seq,
            });
        }
    }
    found
}

/// How `tskv-tool wal-repair` rewrites a segment with bad bytes: the valid prefix, then
/// every intact batch after the bad bytes moved up behind it, then zero bytes to the old
/// length. Only the bad bytes (and whatever records they held) are lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvage {
    /// Byte ranges of the old segment kept, in order.
    pub kept: Vec<std::ops::Range<usize>>,
    /// Bytes dropped (non-zero bytes that are neither the prefix nor an intact batch).
    pub dropped_bytes: usize,
    /// Sequence numbers that may have been in the dropped bytes: above the last good
    /// record, below the first kept batch after it (open-ended: `None` for the last).
    pub lost_seqs: (SeqNo, Option<SeqNo>),
    /// Intact batches after the bad bytes, kept.
    pub kept_batches: u64,
    /// Records in them.
    pub kept_records: u64,
}

impl Salvage {
    /// The plan for `data` after `reader` stopped on it, or `None` if only zero bytes
    /// follow the valid prefix. `seq_before` as for [`tail_of`].
    pub fn plan(data: &[u8], reader: &SegmentReader<'_>, seq_before: SeqNo) -> Option<Self> {
        let valid_end = reader.valid_end();
        let garbage_end = nonzero_end(data, valid_end)?;
        let last_good_seq = reader.last_seq().unwrap_or(seq_before).max(seq_before);
        let batches = intact_batches(data, valid_end + 1, garbage_end, last_good_seq);
        let mut kept = Vec::with_capacity(batches.len() + 1);
        kept.push(0..valid_end);
        kept.extend(batches.iter().map(|b| b.offset..b.offset + b.len_bytes));
        let kept_bytes: usize = batches.iter().map(|b| b.len_bytes).sum();
        Some(Self {
            kept,
            dropped_bytes: garbage_end - valid_end - kept_bytes,
            lost_seqs: (
                SeqNo(last_good_seq.0 + 1),
                batches.first().map(|b| SeqNo(b.first_seq.0 - 1)),
            ),
            kept_batches: batches.len() as u64,
            kept_records: batches.iter().map(|b| b.records).sum(),
        })
    }

    /// The new content of the segment: the kept ranges back to back, then zero bytes up
    /// to the length of `data`.
    pub fn rewrite(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        for range in &self.kept {
            out.extend_from_slice(&data[range.clone()]);
        }
        out.resize(data.len(), 0);
        out
    }
}

/// What a segment's tail means for recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailVerdict {
    /// Nothing after the valid records.
    Clean,
    /// The end of writes cut short by a crash and never acknowledged (an acknowledged
    /// write was fdatasynced whole): recovery zeroes it and goes on.
    TornTail,
    /// Bad bytes that a crash cannot explain: recovery stops with an error.
    Corruption,
}

/// The torn-tail rule. Bad bytes are a torn tail only in the last segment (every older
/// one was fdatasynced before the WAL moved past it) and only if no intact batch after
/// them was handed out when they were already durable ([`DurableProof`]): a batch is
/// written after the fdatasync of the one before it completed under `--fsync always`, so
/// a bit flip inside an acknowledged batch is followed by proof, while a crash tears only
/// writes that no completed fdatasync covered. Bad bytes in the very last batch with
/// nothing after them cannot be told from a torn write and are cut away.
pub fn judge_tail(tail: &Tail, is_last_segment: bool) -> TailVerdict {
    match tail {
        Tail::Clean { .. } => TailVerdict::Clean,
        Tail::Garbage { intact_after, .. } if is_last_segment && intact_after.proof.is_none() => {
            TailVerdict::TornTail
        }
        Tail::Garbage { .. } => TailVerdict::Corruption,
    }
}

/// Why a tail judged [`TailVerdict::Corruption`] is corruption, in a sentence for errors
/// and reports; `None` for a tail that is not.
pub fn corruption_reason(tail: &Tail, is_last_segment: bool) -> Option<String> {
    if judge_tail(tail, is_last_segment) != TailVerdict::Corruption {
        return None;
    }
    let Tail::Garbage {
        bytes,
        reason,
        intact_after,
        ..
    } = tail
    else {
        return None;
    };
    let mut text = format!("{reason} ({bytes} bytes up to the last non-zero byte)");
    if !is_last_segment {
        text.push_str(" in a WAL segment that is not the last, which was fdatasynced whole");
    } else if let Some(proof) = intact_after.proof {
        text.push_str(&format!(
            "; the intact batch at offset {} was written when sequence number {} was already \
             durable, past {} before the bad bytes, so they had been fdatasynced and are not a \
             torn write",
            proof.offset, proof.durable_seq.0, proof.last_good_seq.0
        ));
    }
    if intact_after.batches > 0 {
        text.push_str(&format!(
            "; {} intact batches ({} records, sequence numbers {}..={}) follow",
            intact_after.batches,
            intact_after.records,
            intact_after.first_seq.map_or(0, |s| s.0),
            intact_after.last_seq.map_or(0, |s| s.0),
        ));
    }
    Some(text)
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
        let seqs: Vec<u64> = reader.by_ref().map(|(_, r)| r.seq.0).collect();
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
