//! Transactions across shards in the WAL: which writes count after a crash.
//!
//! A transaction whose keys live on several shards writes each shard's part into that
//! shard's own WAL, so no single fdatasync covers all of it. Two record types make it all
//! or nothing:
//!
//! * **`TxPart`** (record type 5), written in the same batch as the part's writes: the
//!   writes with sequence numbers `first..=last` of this shard belong to transaction `id`.
//! * **`TxCommit`** (record type 6): transaction `id` committed. The transaction's
//!   coordinator (the shard of the client's connection) writes it once every part is
//!   durable, and acknowledges `EXEC` only after the fdatasync that covers it: that record
//!   is the commit point. Each participant then writes its own `TxCommit` before the
//!   coordinator lets its copy go, so a shard never depends on another shard's WAL for
//!   longer than that.
//!
//! **The rule** ([`TxOutcomes`], one home for recovery and `tskv-tool`): a part counts if a
//! `TxCommit` of its transaction is in *any* shard's WAL; otherwise its writes are skipped
//! at replay, as if they had never been made. A shard never installs an SSTable holding a
//! part whose transaction is undecided (the store holds the flush back), so skipped
//! writes are always still in the WAL, never in a table.
//!
//! Payloads (little-endian):
//!
//! ```text
//!  TxPart   ┌───────┬───────────┬───────────┐    TxCommit ┌───────┐
//!           │ id u64│ first u64 │ last u64  │             │ id u64│
//!           └───────┴───────────┴───────────┘             └───────┘
//! ```

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::base::{io_error, SeqNo, StoreError};
use crate::wal::reader::SegmentReader;
use crate::wal::record::{RecordKind, RecordRef};
use crate::wal::SegmentNo;

/// Bytes of a [`RecordKind::TxPart`] value.
pub const PART_BYTES: usize = 24;
/// Bytes of a [`RecordKind::TxCommit`] value.
pub const COMMIT_BYTES: usize = 8;

/// A transaction across shards, unique over the data directory's life (ids start above
/// every id left in any WAL at start-up, [`TxOutcomes::next_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// One shard's part of a transaction: its writes `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxPart {
    /// The transaction.
    pub id: TxId,
    /// Sequence number of the part's first write.
    pub first: SeqNo,
    /// Sequence number of its last write.
    pub last: SeqNo,
}

impl TxPart {
    /// The [`RecordKind::TxPart`] value.
    pub fn encode(&self) -> [u8; PART_BYTES] {
        let mut out = [0; PART_BYTES];
        out[..8].copy_from_slice(&self.id.0.to_le_bytes());
        out[8..16].copy_from_slice(&self.first.0.to_le_bytes());
        out[16..].copy_from_slice(&self.last.0.to_le_bytes());
        out
    }

    /// Decodes a value checked by [`check_record`]; `None` if it is not one.
    pub fn decode(value: &[u8]) -> Option<Self> {
        let value: &[u8; PART_BYTES] = value.try_into().ok()?;
        let word = |i: usize| u64::from_le_bytes(value[i..i + 8].try_into().expect("8 bytes"));
        let part = Self {
            id: TxId(word(0)),
            first: SeqNo(word(8)),
            last: SeqNo(word(16)),
        };
        (part.first <= part.last).then_some(part)
    }
}

/// The transaction a [`RecordKind::TxCommit`] value names.
pub fn decode_commit(value: &[u8]) -> Option<TxId> {
    Some(TxId(u64::from_le_bytes(value.try_into().ok()?)))
}

/// Why a record of a transaction type is malformed, for the record decoder; `None` for a
/// good one and for every other type.
pub fn check_record(kind: RecordKind, key: &[u8], value: &[u8]) -> Option<&'static str> {
    match kind {
        RecordKind::TxPart if !key.is_empty() => Some("transaction part record with a key"),
        RecordKind::TxPart if TxPart::decode(value).is_none() => {
            Some("transaction part record of the wrong length or an empty range")
        }
        RecordKind::TxCommit if !key.is_empty() || value.len() != COMMIT_BYTES => {
            Some("transaction commit record with a key or of the wrong length")
        }
        _ => None,
    }
}

/// The transaction records of one shard's WAL.
#[derive(Debug, Default)]
struct ShardLog {
    parts: Vec<TxPart>,
    commits: HashSet<TxId>,
}

impl ShardLog {
    fn note(&mut self, record: &RecordRef<'_>) {
        match record.kind {
            RecordKind::TxPart => self.parts.extend(TxPart::decode(record.value)),
            RecordKind::TxCommit => self.commits.extend(decode_commit(record.value)),
            _ => {}
        }
    }
}

/// What replay must do about transactions in one shard's WAL.
#[derive(Clone, Debug, Default)]
pub struct ShardOutcome {
    /// Sequence-number ranges of parts whose transaction did not commit: replay skips them.
    skip: Vec<(SeqNo, SeqNo)>,
    /// Committed transactions with a part here but no `TxCommit` of this shard's own: the
    /// store writes one at open, before any shard deletes an old WAL segment.
    pub unresolved: Vec<TxId>,
}

impl ShardOutcome {
    /// Whether the write with sequence number `seq` belongs to a transaction that did not
    /// commit, and so never happened.
    pub fn skips(&self, seq: SeqNo) -> bool {
        self.skip
            .iter()
            .any(|&(first, last)| first <= seq && seq <= last)
    }
}

/// The outcome of every transaction across shards found in a data directory's WALs.
#[derive(Clone, Debug, Default)]
pub struct TxOutcomes {
    shards: Vec<ShardOutcome>,
    next_id: u64,
}

impl TxOutcomes {
    /// Reads the transaction records of every WAL segment of the shard directories
    /// `shard_dirs` (index = shard), covered segments included (a coordinator's
    /// `TxCommit` may sit in one). Records are read up to the first bad bytes of each
    /// segment, as replay reads them; a missing directory has none.
    ///
    /// # Errors
    /// [`StoreError::Io`] if a directory or segment cannot be read.
    pub fn read(shard_dirs: &[PathBuf]) -> Result<Self, StoreError> {
        let logs = shard_dirs
            .iter()
            .map(|dir| read_shard(dir))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::judge(&logs))
    }

    fn judge(logs: &[ShardLog]) -> Self {
        let committed: HashSet<TxId> = logs
            .iter()
            .flat_map(|l| l.commits.iter().copied())
            .collect();
        let max_id = logs
            .iter()
            .flat_map(|l| {
                l.parts
                    .iter()
                    .map(|p| p.id)
                    .chain(l.commits.iter().copied())
            })
            .map(|id| id.0)
            .max()
            .unwrap_or(0);
        let shards = logs
            .iter()
            .map(|log| {
                let mut outcome = ShardOutcome::default();
                let mut unresolved = BTreeSet::new();
                for part in &log.parts {
                    if !committed.contains(&part.id) {
                        outcome.skip.push((part.first, part.last));
                    } else if !log.commits.contains(&part.id) {
                        unresolved.insert(part.id);
                    }
                }
                outcome.unresolved = unresolved.into_iter().collect();
                outcome
            })
            .collect();
        Self {
            shards,
            next_id: max_id + 1,
        }
    }

    /// What replay of shard `index` must do; nothing for a shard not read.
    pub fn shard(&self, index: usize) -> ShardOutcome {
        self.shards.get(index).cloned().unwrap_or_default()
    }

    /// The first transaction id above every id in the WALs read.
    pub fn next_id(&self) -> u64 {
        self.next_id.max(1)
    }
}

/// Reads one shard directory's transaction records.
fn read_shard(dir: &Path) -> Result<ShardLog, StoreError> {
    let mut log = ShardLog::default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(log),
        Err(e) => return Err(io_error(format!("listing {}", dir.display()))(e)),
    };
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(format!("listing {}", dir.display())))?;
        if let Some(number) = entry
            .file_name()
            .to_str()
            .and_then(SegmentNo::from_file_name)
        {
            segments.push(number);
        }
    }
    segments.sort_unstable();
    for number in segments {
        let path = dir.join(number.file_name());
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(io_error(format!("reading WAL segment {}", path.display()))(
                    e,
                ))
            }
        };
        for (_, record) in SegmentReader::new(&data) {
            log.note(&record);
        }
    }
    Ok(log)
}

/// The outcome for a single shard directory opened on its own (the embedded engine, tests):
/// a part counts only if that same WAL holds its commit.
///
/// # Errors
/// As [`TxOutcomes::read`].
pub fn read_single(dir: &Path) -> Result<ShardOutcome, StoreError> {
    Ok(TxOutcomes::read(&[dir.to_path_buf()])?.shard(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: u64, first: u64, last: u64) -> TxPart {
        TxPart {
            id: TxId(id),
            first: SeqNo(first),
            last: SeqNo(last),
        }
    }

    #[test]
    fn a_part_counts_when_any_shard_holds_the_commit() {
        let coordinator = ShardLog {
            parts: vec![part(7, 10, 12)],
            commits: [TxId(7)].into(),
        };
        let participant = ShardLog {
            parts: vec![part(7, 3, 4), part(8, 5, 6)],
            commits: HashSet::new(),
        };
        let outcomes = TxOutcomes::judge(&[coordinator, participant]);
        let (c, p) = (outcomes.shard(0), outcomes.shard(1));
        assert!(!c.skips(SeqNo(11)));
        assert!(
            c.unresolved.is_empty(),
            "the coordinator's own commit resolves it"
        );
        assert!(
            !p.skips(SeqNo(3)) && !p.skips(SeqNo(4)),
            "transaction 7 committed"
        );
        assert_eq!(p.unresolved, vec![TxId(7)]);
        assert!(
            p.skips(SeqNo(5)) && p.skips(SeqNo(6)),
            "transaction 8 never committed"
        );
        assert!(!p.skips(SeqNo(7)));
        assert_eq!(outcomes.next_id(), 9);
    }

    #[test]
    fn payloads_round_trip_and_bad_ones_are_refused() {
        let p = part(u64::MAX, 1, 1);
        assert_eq!(TxPart::decode(&p.encode()), Some(p));
        assert_eq!(TxPart::decode(&part(1, 5, 4).encode()), None);
        assert_eq!(TxPart::decode(&[0; 23]), None);
        assert_eq!(decode_commit(&9u64.to_le_bytes()), Some(TxId(9)));
        assert!(check_record(RecordKind::TxCommit, b"", &[0; 7]).is_some());
        assert!(check_record(RecordKind::TxPart, b"k", &p.encode()).is_some());
        assert!(check_record(RecordKind::Put, b"k", b"v").is_none());
    }
}
