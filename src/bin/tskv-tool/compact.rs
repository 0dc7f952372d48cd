//! `tskv-tool compact DIR`: merges every shard of a stopped server's data directory down as
//! far as compaction goes, offline, to measure what the data takes once compacted (the
//! running server compacts level 0 only from `l0_trigger_tables` tables on, so a quiet
//! store may keep a few flushed tables with overwritten values and tombstones).
//!
//! Each shard is opened with the engine ([`Engine::open`], which recovers it), its WAL is
//! flushed to an SSTable, and every table is rewritten level by level down to the last
//! level ([`Engine::compact_full`]): overwritten versions and tombstones are dropped. Each
//! step is installed through the manifest like any compaction, so a crash of the tool
//! leaves a directory the server opens as before.

use std::path::Path;

use serde::Serialize;
use tskv::config::StoreOptions;
use tskv::datadir::{self, shard_dir, DataDirError};
use tskv::engine::{Durability, Engine, Options};

use crate::datadir::read_shard_count;
use crate::ToolError;

/// One shard before and after.
#[derive(Debug, Serialize)]
pub struct ShardCompaction {
    /// The shard's index.
    pub shard: usize,
    /// Live SSTables before.
    pub sstables_before: usize,
    /// Their bytes.
    pub sstable_bytes_before: u64,
    /// Live SSTables after.
    pub sstables: usize,
    /// Their bytes.
    pub sstable_bytes: u64,
}

/// What `compact` did.
#[derive(Debug, Serialize)]
pub struct CompactReport {
    /// The data directory.
    pub data_dir: String,
    /// Per shard.
    pub shards: Vec<ShardCompaction>,
    /// Live SSTable bytes of every shard, after.
    pub sstable_bytes: u64,
}

/// Compacts every shard of `data_dir` (no server may hold its lock).
///
/// # Errors
/// [`ToolError::Usage`] for a running server or a directory that is no data directory;
/// I/O and corruption errors as found.
pub fn compact(data_dir: &Path) -> Result<CompactReport, ToolError> {
    let shard_count = read_shard_count(data_dir)?;
    let _lock = datadir::lock(data_dir).map_err(|e| match e {
        DataDirError::Locked(_) => {
            ToolError::Usage(format!("{e}; stop the server before compacting"))
        }
        other => other.into(),
    })?;
    let options = Options {
        // Deletion marks are applied as the server's compactions apply them.
        store: StoreOptions {
            compaction_filter: Some(tskv::timeseries::marks::compaction_filter),
            ..StoreOptions::default()
        },
        durability: Durability::Buffered,
    };
    let mut shards = Vec::with_capacity(shard_count);
    for shard in 0..shard_count {
        let mut engine = Engine::open(&shard_dir(data_dir, shard), options.clone())?;
        let before = engine.store().stats();
        engine.flush()?;
        engine.compact_full()?;
        let after = engine.store().stats();
        shards.push(ShardCompaction {
            shard,
            sstables_before: before.sstables,
            sstable_bytes_before: before.sstable_bytes,
            sstables: after.sstables,
            sstable_bytes: after.sstable_bytes,
        });
    }
    Ok(CompactReport {
        data_dir: data_dir.display().to_string(),
        sstable_bytes: shards.iter().map(|s| s.sstable_bytes).sum(),
        shards,
    })
}
