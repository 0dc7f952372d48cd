//! An offline point read with the engine's rules, without opening the store.
//!
//! The key is hashed to its shard as the server does ([`shard_of`]). In that shard, what
//! recovery would put in the memtable wins: the newest record for the key in the valid
//! prefix of the WAL segments at or above the manifest's WAL start, ignoring records whose
//! sequence number is already covered by the SSTables (replay skips those too). Otherwise
//! the live SSTables are asked newest first, as [`tskv::store::ShardStore::get`] does.

use std::path::Path;

use serde::Serialize;
use tskv::datadir::{shard_dir, shard_of};
use tskv::version::set::VersionSet;
use tskv::version::Version;
use tskv::wal::record::RecordKind;

use crate::datadir::{list_shard_dir, load_manifest, read_shard_count, ManifestState};
use crate::repr::repr;
use crate::segment;
use crate::ToolError;
use tskv::wal::reader::corruption_reason;

/// Where a version was found.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub enum Source {
    /// A WAL record.
    Wal {
        /// The segment file.
        file: String,
        /// Offset of the record.
        offset: u64,
    },
    /// An SSTable entry.
    Sstable {
        /// The table file.
        file: String,
        /// The table id.
        table_id: u64,
        /// Offset of the data block holding the entry.
        block_offset: u64,
    },
}

/// The newest version of the key.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    /// The value, escaped; `None` for a tombstone.
    pub value: Option<String>,
    /// The value's length in bytes; `None` for a tombstone.
    pub value_bytes: Option<usize>,
    /// Its sequence number.
    pub seq: u64,
    /// The value's expiry deadline (absolute Unix ms), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_at_ms: Option<u64>,
    /// Where it is.
    pub source: Source,
}

/// The outcome of `get`.
#[derive(Clone, Debug, Serialize)]
pub struct GetReport {
    /// The key, escaped.
    pub key: String,
    /// The shard that owns the key.
    pub shard: usize,
    /// Its directory.
    pub shard_dir: String,
    /// The newest version, if any.
    pub found: Option<Found>,
    /// Damage that recovery would refuse but that did not stop the read.
    pub warnings: Vec<String>,
}

/// The newest version of `key` in `data_dir`.
///
/// # Errors
/// [`ToolError::Corrupt`] if the manifest or a table needed for the answer is corrupt.
pub fn get(data_dir: &Path, key: &[u8]) -> Result<GetReport, ToolError> {
    let shard_count = read_shard_count(data_dir)?;
    let shard = shard_of(key, shard_count).0;
    let dir = shard_dir(data_dir, shard);
    let mut report = GetReport {
        key: repr(key),
        shard,
        shard_dir: dir.display().to_string(),
        found: None,
        warnings: Vec::new(),
    };
    if !dir.is_dir() {
        report
            .warnings
            .push(format!("{} does not exist: an empty shard", dir.display()));
        return Ok(report);
    }
    let (state, manifest) = load_manifest(&dir)?;
    if let ManifestState::Corrupt { offset, reason } = state {
        return Err(ToolError::Corrupt(format!(
            "corruption in {} at offset {offset}: {reason}",
            dir.join(tskv::manifest::FILE_NAME).display()
        )));
    }
    let wal_start = manifest.wal_start;
    let versions = VersionSet::recover(&dir, manifest)?;
    let version = versions.current();
    let tables_last_seq = version
        .tables_newest_first()
        .map(|t| t.table().footer().largest_seq.0)
        .max()
        .unwrap_or(0);
    // Writes of a transaction across shards count only if some shard committed it.
    let outcome = tskv::datadir::tx_outcomes(data_dir, shard_count)?.shard(shard);
    report.found = find_in_wal(
        &dir,
        wal_start,
        key,
        (tables_last_seq, &outcome),
        &mut report,
    )?;
    if report.found.is_none() {
        report.found = find_in_tables(version, key)?;
    }
    Ok(report)
}

/// The newest WAL record for `key` above `tables_last_seq` in the live segments.
fn find_in_wal(
    dir: &Path,
    wal_start: tskv::wal::SegmentNo,
    key: &[u8],
    (tables_last_seq, outcome): (u64, &tskv::wal::tx::ShardOutcome),
    report: &mut GetReport,
) -> Result<Option<Found>, ToolError> {
    let listing = list_shard_dir(dir)?;
    let live: Vec<_> = listing
        .segments
        .into_iter()
        .filter(|&n| n >= wal_start)
        .collect();
    let mut found: Option<Found> = None;
    let mut seq_before = tables_last_seq;
    for (i, n) in live.iter().enumerate() {
        let path = dir.join(n.file_name());
        let file = path.display().to_string();
        let scan = segment::scan_with(&path, seq_before, |offset, record| {
            let newer = found.as_ref().is_none_or(|f| record.seq.0 > f.seq);
            // A drop-all (`FLUSHALL`) hides every older version, the tables' included.
            let concerns_key = match record.kind {
                RecordKind::Put | RecordKind::PutExpiring | RecordKind::Delete => record.key == key,
                RecordKind::DropAll => true,
                RecordKind::TxPart | RecordKind::TxCommit => false,
            };
            let skipped = outcome.skips(record.seq);
            if !concerns_key || skipped || record.seq.0 <= tables_last_seq || !newer {
                return;
            }
            let value = (record.kind != RecordKind::Delete).then_some(record.value);
            found = Some(Found {
                value: value.map(repr),
                value_bytes: value.map(<[u8]>::len),
                seq: record.seq.0,
                expire_at_ms: record.expire_at_ms,
                source: Source::Wal {
                    file: file.clone(),
                    offset,
                },
            });
        })?;
        seq_before = scan.last_seq.unwrap_or(0).max(seq_before);
        if let Some(why) = corruption_reason(&scan.judged_tail, i + 1 == live.len()) {
            let offset = scan.valid_bytes;
            report.warnings.push(format!(
                "{file} at offset {offset}: {why}; the server would refuse to start; \
                 read its valid prefix only"
            ));
        }
    }
    Ok(found)
}

/// The version of `key` in the newest table that has one, searched as the server does
/// ([`Version::find`]).
fn find_in_tables(version: &Version, key: &[u8]) -> Result<Option<Found>, ToolError> {
    let Some((handle, entry)) = version.find(key, None)? else {
        return Ok(None);
    };
    let table = handle.table();
    let block_index = table
        .index()
        .partition_point(|e| e.last_key.as_slice() < key);
    Ok(Some(Found {
        value: entry.value.as_deref().map(repr),
        value_bytes: entry.value.as_ref().map(Vec::len),
        seq: entry.seq.0,
        expire_at_ms: entry.expire_at_ms,
        source: Source::Sstable {
            file: table.path().display().to_string(),
            table_id: table.id().0,
            block_offset: table.block_offset(block_index),
        },
    }))
}
