//! Recovery of a shard directory at open: the manifest names the live SSTables, files a
//! crash left behind are removed, and the WAL from the manifest's `wal_start` on is replayed
//! into a memtable. A drop-all record (`FLUSHALL`) above the manifest's `last_seq` empties
//! what was replayed before it and is reported, so the store drops the tables too.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use crate::base::fs::sync_dir;
use crate::base::{io_error, iolog, SeqNo, StoreError};
use crate::config::StoreOptions;
use crate::manifest::{self, Manifest};
use crate::memtable::Memtable;
use crate::sstable::TableId;
use crate::version::set::VersionSet;
use crate::wal::reader::{corruption_reason, tail_of, SegmentReader, Tail};
use crate::wal::record::RecordKind;
use crate::wal::tx::ShardOutcome;
use crate::wal::writer::Segment;
use crate::wal::SegmentNo;

/// Bytes of zeros written at a time when wiping a torn WAL tail.
const ZERO_CHUNK_BYTES: usize = 1 << 20;

/// What [`recover`] found and rebuilt.
pub(super) struct Recovered {
    /// The manifest and the live SSTables it names.
    pub versions: VersionSet,
    /// The writes replayed from the WAL that no SSTable holds.
    pub memtable: Memtable,
    /// The segment appends continue in, and the offset where they continue.
    pub current: Segment,
    pub append_offset: u64,
    /// The oldest WAL segment left on disk.
    pub oldest_segment: SegmentNo,
    /// Highest sequence number in the tables and the replayed WAL.
    pub last_seq: SeqNo,
    pub replayed_records: u64,
    pub truncated_bytes: u64,
    /// The newest drop-all (`FLUSHALL`) replayed: the manifest may still list tables it
    /// removes, if the crash came before its drop was installed.
    pub dropped: Option<SeqNo>,
}

/// Opens (creating if absent) the shard directory `dir` and recovers it: manifest →
/// SSTables → WAL replay. SSTables the manifest does not name, WAL segments below its
/// `wal_start` and a half-written manifest are deleted first.
///
/// Writes of transaction parts that `outcome` says never committed are skipped (their
/// sequence numbers still count as used). With `keep_covered`, covered WAL segments are
/// left for [`super::ShardStore::delete_covered_segments`] (a server deletes them once
/// every shard has opened: one of them may hold another shard's `TxCommit`).
pub(super) fn recover(
    dir: &Path,
    opts: &StoreOptions,
    outcome: &ShardOutcome,
    keep_covered: bool,
) -> Result<Recovered, StoreError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    let manifest = Manifest::load(dir)?.unwrap_or_default();
    let listing = list_dir(dir)?;
    remove_leftovers(dir, &manifest, &listing, keep_covered)?;
    let versions = VersionSet::recover(dir, manifest)?;
    // The manifest's last_seq covers flushed writes that compaction has since dropped.
    let tables_last_seq = versions
        .current()
        .tables_newest_first()
        .map(|t| t.table().footer().largest_seq)
        .max()
        .unwrap_or_default()
        .max(versions.manifest().last_seq);
    let manifest = versions.manifest();
    let mut replay = Replay {
        tables_last_seq,
        last_seq: tables_last_seq,
        outcome: outcome.clone(),
        ..Replay::default()
    };
    let (current, append_offset, mut oldest_segment) = replay_wal(
        dir,
        opts,
        manifest.wal_start,
        &listing.segments,
        &mut replay,
    )?;
    if keep_covered {
        oldest_segment = listing
            .segments
            .first()
            .map_or(oldest_segment, |&n| n.min(oldest_segment));
    }
    Ok(Recovered {
        versions,
        memtable: replay.memtable,
        current,
        append_offset,
        oldest_segment,
        last_seq: replay.last_seq,
        replayed_records: replay.records,
        truncated_bytes: replay.truncated_bytes,
        dropped: replay.dropped,
    })
}

/// What WAL replay recovered.
#[derive(Debug, Default)]
struct Replay {
    /// Highest sequence number in the live SSTables.
    tables_last_seq: SeqNo,
    memtable: Memtable,
    last_seq: SeqNo,
    records: u64,
    truncated_bytes: u64,
    dropped: Option<SeqNo>,
    /// Which transaction parts to skip.
    outcome: ShardOutcome,
}

/// The files found in a shard directory.
#[derive(Debug, Default)]
struct Listing {
    tables: Vec<TableId>,
    segments: Vec<SegmentNo>,
    manifest_temp: bool,
}

fn list_dir(dir: &Path) -> Result<Listing, StoreError> {
    let mut listing = Listing::default();
    let entries = fs::read_dir(dir).map_err(io_error(format!("listing {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(io_error(format!("listing {}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = TableId::from_file_name(name) {
            listing.tables.push(id);
        } else if let Some(n) = SegmentNo::from_file_name(name) {
            listing.segments.push(n);
        } else if name == manifest::TEMP_FILE_NAME {
            listing.manifest_temp = true;
        }
    }
    listing.tables.sort_unstable();
    listing.segments.sort_unstable();
    Ok(listing)
}

/// Deletes what a crash can leave behind: SSTables the manifest does not name, WAL
/// segments it says are covered, and a half-written manifest.
fn remove_leftovers(
    dir: &Path,
    manifest: &Manifest,
    listing: &Listing,
    keep_covered: bool,
) -> Result<(), StoreError> {
    let orphan_tables = listing
        .tables
        .iter()
        .filter(|&&id| !manifest.tables.iter().any(|t| t.id == id))
        .map(|id| id.file_name());
    let covered_segments = listing
        .segments
        .iter()
        .filter(|&&n| n < manifest.wal_start && !keep_covered)
        .map(|n| n.file_name());
    let temp = listing
        .manifest_temp
        .then(|| manifest::TEMP_FILE_NAME.to_string());
    let mut removed = false;
    for name in orphan_tables.chain(covered_segments).chain(temp) {
        let path = dir.join(name);
        tracing::info!(file = %path.display(), "removing file left over from before the last manifest");
        iolog::remove(&path).map_err(io_error(format!("removing {}", path.display())))?;
        removed = true;
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Replays the WAL segments from `wal_start` on (`segments` is the sorted listing) into
/// `replay`. Returns the segment appends continue in (created if there is none), the
/// offset where they continue, and the oldest segment left on disk.
fn replay_wal(
    dir: &Path,
    opts: &StoreOptions,
    wal_start: SegmentNo,
    segments: &[SegmentNo],
    replay: &mut Replay,
) -> Result<(Segment, u64, SegmentNo), StoreError> {
    let segments: Vec<SegmentNo> = segments
        .iter()
        .copied()
        .filter(|&n| n >= wal_start)
        .collect();
    let mut tail = None;
    for (i, &number) in segments.iter().enumerate() {
        let is_last = i + 1 == segments.len();
        tail = replay_segment(dir, number, is_last, replay)?;
    }
    let (current, append_offset) = match tail {
        Some(tail) => tail,
        None => {
            let number = SegmentNo(wal_start.0.max(1));
            let segment = Segment::create(dir, number, opts.wal_segment_bytes, opts.wal_zero_fill)?;
            (segment, 0)
        }
    };
    if replay.records > 0 || replay.truncated_bytes > 0 {
        tracing::info!(
            dir = %dir.display(),
            records = replay.records,
            truncated_bytes = replay.truncated_bytes,
            last_seq = replay.last_seq.0,
            "WAL replayed"
        );
    }
    let oldest_segment = segments.first().copied().unwrap_or(current.number);
    Ok((current, append_offset, oldest_segment))
}

/// Replays one segment into `replay`. Returns the segment and the end of its valid data
/// if it is the last one (appends continue there).
fn replay_segment(
    dir: &Path,
    number: SegmentNo,
    is_last: bool,
    replay: &mut Replay,
) -> Result<Option<(Segment, u64)>, StoreError> {
    let path = dir.join(number.file_name());
    let shown = path.display();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_error(format!("opening WAL segment {shown}")))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(io_error(format!("reading WAL segment {shown}")))?;
    let seq_before = replay.last_seq;
    let mut reader = SegmentReader::new(&data);
    for (_, record) in reader.by_ref() {
        if record.seq <= replay.tables_last_seq {
            // Already in an SSTable; a memtable copy could shadow a newer table version.
            continue;
        }
        if replay.outcome.skips(record.seq) {
            // A part of a transaction that never committed: it never happened.
            replay.last_seq = replay.last_seq.max(record.seq);
            continue;
        }
        let value = match record.kind {
            RecordKind::Put | RecordKind::PutExpiring => Some(record.value),
            RecordKind::Delete => None,
            RecordKind::TxPart | RecordKind::TxCommit => {
                replay.last_seq = replay.last_seq.max(record.seq);
                replay.records += 1;
                continue;
            }
            RecordKind::DropAll => {
                // Everything before it is gone: what was replayed, and the tables (the
                // store drops them at open unless the manifest already did).
                replay.memtable = Memtable::default();
                replay.dropped = Some(record.seq);
                replay.last_seq = replay.last_seq.max(record.seq);
                replay.records += 1;
                continue;
            }
        };
        replay
            .memtable
            .insert(record.key, record.seq, value, record.expire_at_ms);
        replay.last_seq = replay.last_seq.max(record.seq);
        replay.records += 1;
    }
    let valid_end = reader.valid_end();
    let tail = tail_of(&data, &reader, seq_before);
    if let Some(reason) = corruption_reason(&tail, is_last) {
        return Err(StoreError::WalCorruption {
            file: shown.to_string(),
            offset: valid_end as u64,
            reason,
        });
    }
    if let Tail::Garbage {
        offset,
        bytes,
        reason,
        intact_after,
    } = tail
    {
        tracing::warn!(
            file = %shown,
            offset,
            bytes_dropped = bytes,
            reason,
            unsynced_batches_dropped = intact_after.batches,
            "truncating torn WAL tail"
        );
        zero_range(&file, offset, offset + bytes)
            .and_then(|()| iolog::sync_data(&file))
            .map_err(io_error(format!("wiping torn tail of WAL segment {shown}")))?;
        replay.truncated_bytes += bytes as u64;
    }
    if !is_last {
        return Ok(None);
    }
    let segment = Segment {
        number,
        file: Arc::new(file),
        path: path.clone(),
        capacity_bytes: data.len() as u64,
    };
    Ok(Some((segment, valid_end as u64)))
}

/// Overwrites bytes `start..end` of `file` with zeros, so the next append lands in a
/// clean region and a later replay sees the clean end after it.
fn zero_range(file: &File, start: usize, end: usize) -> io::Result<()> {
    let zeros = vec![0; ZERO_CHUNK_BYTES.min(end - start)];
    let mut at = start;
    while at < end {
        let len = zeros.len().min(end - at);
        iolog::write_at(file, &zeros[..len], at as u64)?;
        at += len;
    }
    Ok(())
}
