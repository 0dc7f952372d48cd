//! Reading one WAL segment without changing it: its valid records, and what follows them.
//!
//! The valid prefix is what [`tskv::wal::reader::SegmentReader`] returns, exactly as
//! replay sees it. Whatever non-zero bytes follow are a torn tail if this is the shard's
//! last segment (recovery cuts them away) and corruption otherwise; a single file does
//! not say which it is, so this module only describes them, and [`crate::datadir`] judges.

use std::fs;
use std::path::Path;

use serde::Serialize;
use tskv::wal::reader::{self, tail_of, SegmentReader};
use tskv::wal::record::{encoded_len, RecordKind, RecordRef};
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
    }
}

/// Scans the segment at `path`, keeping every record's summary if `keep_records`.
pub fn scan(path: &Path, keep_records: bool) -> Result<SegmentScan, ToolError> {
    let mut records = keep_records.then(Vec::new);
    let scan = scan_with(path, |offset, record| {
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
pub fn scan_with(
    path: &Path,
    mut visit: impl FnMut(u64, &RecordRef<'_>),
) -> Result<SegmentScan, ToolError> {
    let shown = path.display().to_string();
    let data = fs::read(path).map_err(ToolError::io(format!("reading WAL segment {shown}")))?;
    let mut reader = SegmentReader::new(&data);
    let mut offset = 0u64;
    let mut record_count = 0u64;
    let mut first_seq = None;
    let mut last_seq: Option<u64> = None;
    let mut seq_disorder = None;
    for record in reader.by_ref() {
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
        offset += encoded_len(record.key.len(), record.value.len()) as u64;
    }
    let valid_end = reader.valid_end();
    debug_assert_eq!(
        valid_end as u64, offset,
        "record lengths add up to the prefix"
    );
    let tail = match tail_of(&data, &reader) {
        reader::Tail::Clean { zero_bytes } => Tail::Clean {
            zero_bytes: zero_bytes as u64,
        },
        reader::Tail::Garbage {
            offset,
            bytes,
            reason,
        } => Tail::Garbage {
            offset: offset as u64,
            bytes: bytes as u64,
            reason: reason.to_string(),
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
        record_count,
        first_seq,
        last_seq,
        valid_bytes: valid_end as u64,
        tail,
        seq_disorder,
        records: None,
    })
}
