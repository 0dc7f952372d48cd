//! Reading one WAL segment without changing it: its valid records, and what follows them.
//!
//! The valid prefix is what [`tskv::wal::reader::SegmentReader`] returns, exactly as
//! replay sees it. Whether the non-zero bytes after it are a torn tail or corruption is
//! [`tskv::wal::reader::judge_tail`]'s call, which needs to know whether this is the
//! shard's last segment; a single file does not say, so this module only describes them
//! (keeping the library's [`reader::Tail`] for the judge), and [`crate::datadir`] judges.

use std::fs;
use std::path::Path;

use serde::Serialize;
use tskv::base::SeqNo;
use tskv::wal::reader::{self, tail_of, SegmentReader};
use tskv::wal::record::{RecordKind, RecordRef};
use tskv::wal::SegmentNo;

use crate::repr::repr;
use crate::ToolError;

/// What follows the last valid record of a segment ([`tskv::wal::reader::Tail`], for
/// output).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Tail {
    /// Only zero bytes (the preallocated part): a clean end.
    Clean {
        /// Zero bytes after the valid records.
        zero_bytes: u64,
    },
    /// Non-zero bytes that do not decode as records.
    Garbage {
        /// Offset of the first byte that does not decode (the end of the valid prefix).
        offset: u64,
        /// Bytes from `offset` to the last non-zero byte.
        bytes: u64,
        /// Why decoding stopped there.
        reason: String,
        /// Intact group-commit batches found further on.
        intact_batches_after: u64,
        /// Records in them.
        intact_records_after: u64,
        /// Offset of the first of them written when the bad bytes were already durable
        /// (which makes them corruption, not a torn write), if any.
        durable_proof_offset: Option<u64>,
    },
}

/// One record, for `wal --records`.
#[derive(Clone, Debug, Serialize)]
pub struct RecordInfo {
    /// Offset of the record in the segment.
    pub offset: u64,
    /// Its sequence number.
    pub seq: u64,
    /// `put` or `delete`.
    pub kind: &'static str,
    /// The key, escaped.
    pub key: String,
    /// Length of the value in bytes (0 for a delete).
    pub value_bytes: usize,
}

/// A record whose sequence number is not above the one before it.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SeqDisorder {
    /// Offset of the record.
    pub offset: u64,
    /// Its sequence number.
    pub seq: u64,
    /// The sequence number of the record before it.
    pub previous_seq: u64,
}

/// What one segment holds.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentScan {
    /// The file.
    pub path: String,
    /// The segment number, if the file name is a segment name.
    pub number: Option<u64>,
    /// Length of the file in bytes (preallocated part included).
    pub file_bytes: u64,
    /// Highest sequence number before this segment, as given to the scan (0 if unknown).
    pub seq_before: u64,
    /// Number of valid records.
    pub record_count: u64,
    /// Sequence number of the first valid record.
    pub first_seq: Option<u64>,
    /// Sequence number of the last valid record.
    pub last_seq: Option<u64>,
    /// Bytes of valid records at the head of the file.
    pub valid_bytes: u64,
    /// What follows them.
    pub tail: Tail,
    /// The same, as the library describes it, for [`tskv::wal::reader::judge_tail`].
    #[serde(skip)]
    pub judged_tail: reader::Tail,
    /// The first record whose sequence number does not increase, if any.
    pub seq_disorder: Option<SeqDisorder>,
    /// Every valid record, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<RecordInfo>>,
}

/// The lowercase name of a record kind.
pub fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Put => "put",
        RecordKind::Delete => "delete",
        RecordKind::PutExpiring => "put-expiring",
        RecordKind::DropAll => "drop-all",
        RecordKind::TxPart => "tx-part",
        RecordKind::TxCommit => "tx-commit",
    }
}

/// Scans the segment at `path`, keeping every record's summary if `keep_records`.
/// `seq_before` is the highest sequence number before this segment (0 if unknown).
pub fn scan(path: &Path, seq_before: u64, keep_records: bool) -> Result<SegmentScan, ToolError> {
    let mut records = keep_records.then(Vec::new);
    let scan = scan_with(path, seq_before, |offset, record| {
        if let Some(records) = records.as_mut() {
            records.push(RecordInfo {
                offset,
                seq: record.seq.0,
                kind: kind_name(record.kind),
                key: repr(record.key),
                value_bytes: record.value.len(),
            });
        }
    })?;
    Ok(SegmentScan { records, ..scan })
}

/// Scans the segment at `path`, calling `visit` with the offset of every valid record.
/// `seq_before` is the highest sequence number before this segment (0 if unknown).
pub fn scan_with(
    path: &Path,
    seq_before: u64,
    mut visit: impl FnMut(u64, &RecordRef<'_>),
) -> Result<SegmentScan, ToolError> {
    let shown = path.display().to_string();
    let data = fs::read(path).map_err(ToolError::io(format!("reading WAL segment {shown}")))?;
    let mut reader = SegmentReader::new(&data);
    let mut record_count = 0u64;
    let mut first_seq = None;
    let mut last_seq: Option<u64> = None;
    let mut seq_disorder = None;
    for (offset, record) in reader.by_ref() {
        let offset = offset as u64;
        let seq = record.seq.0;
        if let Some(previous_seq) = last_seq.filter(|&prev| seq <= prev) {
            seq_disorder.get_or_insert(SeqDisorder {
                offset,
                seq,
                previous_seq,
            });
        }
        visit(offset, &record);
        first_seq.get_or_insert(seq);
        last_seq = Some(seq);
        record_count += 1;
    }
    let valid_end = reader.valid_end();
    let judged_tail = tail_of(&data, &reader, SeqNo(seq_before));
    let tail = match judged_tail {
        reader::Tail::Clean { zero_bytes } => Tail::Clean {
            zero_bytes: zero_bytes as u64,
        },
        reader::Tail::Garbage {
            offset,
            bytes,
            reason,
            intact_after,
        } => Tail::Garbage {
            offset: offset as u64,
            bytes: bytes as u64,
            reason: reason.to_string(),
            intact_batches_after: intact_after.batches,
            intact_records_after: intact_after.records,
            durable_proof_offset: intact_after.proof.map(|p| p.offset as u64),
        },
    };
    let number = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(SegmentNo::from_file_name)
        .map(|n| n.0);
    Ok(SegmentScan {
        path: shown,
        number,
        file_bytes: data.len() as u64,
        seq_before,
        record_count,
        first_seq,
        last_seq,
        valid_bytes: valid_end as u64,
        tail,
        judged_tail,
        seq_disorder,
        records: None,
    })
}
