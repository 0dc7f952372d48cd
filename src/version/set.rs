//! The version set: the current [`Version`] of a shard and the manifest that makes it
//! durable. Its owner is the only writer of the shard's manifest: the compaction core in the
//! server, the store itself when the engine is driven synchronously (tests, tools, the
//! embedded use).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{TableHandle, Version};
use crate::base::{SeqNo, StoreError};
use crate::manifest::{LevelTable, Manifest, LEVELS_MAX};
use crate::sstable::TableId;
use crate::wal::SegmentNo;

/// Hands out table ids of one shard. Shared by the shard (flushes) and the compaction core
/// (compaction outputs), so both can name new files without asking each other.
#[derive(Debug)]
pub struct TableIds(AtomicU64);

impl TableIds {
    /// An allocator whose first id is `next`.
    pub fn new(next: TableId) -> Self {
        Self(AtomicU64::new(next.0))
    }

    /// A fresh id, never handed out before in this process or named by the manifest.
    pub fn allocate(&self) -> TableId {
        TableId(self.0.fetch_add(1, Ordering::Relaxed))
    }

    /// The id the next [`TableIds::allocate`] returns: what the manifest records.
    pub fn peek(&self) -> TableId {
        TableId(self.0.load(Ordering::Relaxed))
    }
}

/// A change to the table set: tables added to levels, tables removed, and optionally a new
/// start of the WAL (after a flush, the segments its memtable covered are no longer needed).
#[derive(Debug, Default)]
pub struct VersionEdit {
    /// Tables to add, with their level.
    pub added: Vec<(usize, Arc<TableHandle>)>,
    /// Tables to remove (the inputs of a compaction).
    pub removed: Vec<TableId>,
    /// The new `wal_start` of the manifest, if it moves.
    pub wal_start: Option<SegmentNo>,
    /// The highest sequence number the edit's tables may hold (a flushed memtable's), so
    /// the manifest's `last_seq` never goes back.
    pub last_seq: Option<SeqNo>,
}

/// The current version of one shard and its durable manifest.
#[derive(Debug)]
pub struct VersionSet {
    dir: PathBuf,
    manifest: Manifest,
    current: Arc<Version>,
    table_ids: Arc<TableIds>,
    /// The sequence number of the last drop-all installed since open: a flushed memtable
    /// whose writes are all older is discarded instead of installed.
    dropped_below: SeqNo,
}

impl VersionSet {
    /// Opens every table `manifest` names in `dir`, as the current version.
    ///
    /// # Errors
    /// As [`TableHandle::open`]: a listed table that is missing or corrupt stops the open.
    pub fn recover(dir: &Path, manifest: Manifest) -> Result<Self, StoreError> {
        let mut levels = vec![Vec::new(); LEVELS_MAX];
        for entry in &manifest.tables {
            let table = TableHandle::open_with_range(dir, entry.id, entry.key_range.clone())?;
            levels[entry.level as usize].push(table);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            table_ids: Arc::new(TableIds::new(manifest.next_table_id)),
            current: Arc::new(Version::new(levels)),
            manifest,
            dropped_below: SeqNo(0),
        })
    }

    /// Installs a flushed memtable's table `table` in level 0 and moves the WAL start to
    /// `wal_start`; `last_seq` is the memtable's highest sequence number. A table whose
    /// writes a drop-all already removed ([`VersionSet::drop_all`]) is not added but
    /// deleted; the WAL start still moves, since the drop is durable in the manifest.
    ///
    /// # Errors
    /// As [`TableHandle::open`] and [`VersionSet::apply`]; the current version stays.
    pub fn install_flush(
        &mut self,
        table: TableId,
        wal_start: SegmentNo,
        last_seq: SeqNo,
    ) -> Result<Arc<Version>, StoreError> {
        let handle = TableHandle::open(&self.dir, table)?;
        let dropped = last_seq < self.dropped_below;
        if dropped {
            // Deleted once the handle is gone; a crash first leaves an orphan, removed at
            // the next open.
            handle.mark_obsolete();
        }
        self.apply(VersionEdit {
            added: if dropped {
                Vec::new()
            } else {
                vec![(0, handle)]
            },
            removed: Vec::new(),
            wal_start: Some(wal_start),
            last_seq: Some(last_seq),
        })
    }

    /// The durable half of `FLUSHALL`: removes every table whose writes are all older than
    /// `seq` (the drop-all's sequence number, whose WAL record the caller made durable
    /// first) and raises the manifest's `last_seq` to `seq`, so recovery no longer applies
    /// that WAL record. Flushes of older memtables installed later are discarded.
    ///
    /// # Errors
    /// As [`VersionSet::apply`]; the current version stays.
    pub fn drop_all(&mut self, seq: SeqNo) -> Result<Arc<Version>, StoreError> {
        let removed = self
            .current
            .tables_newest_first()
            .filter(|t| t.table().footer().largest_seq < seq)
            .map(|t| t.id())
            .collect();
        let version = self.apply(VersionEdit {
            added: Vec::new(),
            removed,
            wal_start: None,
            last_seq: Some(seq),
        })?;
        self.dropped_below = self.dropped_below.max(seq);
        Ok(version)
    }

    /// The current version.
    pub fn current(&self) -> &Arc<Version> {
        &self.current
    }

    /// The installed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The shard's table id allocator.
    pub fn table_ids(&self) -> &Arc<TableIds> {
        &self.table_ids
    }

    /// The shard directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Applies `edit`: builds the next version, installs its manifest durably (temp file,
    /// fdatasync, rename, fsync the directory, which also makes the added tables' directory
    /// entries durable), then marks removed tables obsolete and makes the new version
    /// current. Returns it.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the manifest cannot be installed; the current version stays.
    pub fn apply(&mut self, edit: VersionEdit) -> Result<Arc<Version>, StoreError> {
        let mut levels: Vec<Vec<Arc<TableHandle>>> = self.current.levels().to_vec();
        let mut removed = Vec::new();
        for level in &mut levels {
            level.retain(|t| {
                let gone = edit.removed.contains(&t.id());
                if gone {
                    removed.push(Arc::clone(t));
                }
                !gone
            });
        }
        debug_assert_eq!(removed.len(), edit.removed.len(), "removed tables are live");
        // A trivial move removes and re-adds the same table: it stays live.
        removed.retain(|t| !edit.added.iter().any(|(_, a)| a.id() == t.id()));
        for (level, table) in edit.added {
            levels[level].push(table);
        }
        for level in &mut levels[1..] {
            level.sort_by(|a, b| a.smallest_key().cmp(b.smallest_key()));
        }
        let version = Version::new(levels);
        let manifest = Manifest {
            next_table_id: self.table_ids.peek(),
            tables: version
                .levels()
                .iter()
                .enumerate()
                .flat_map(|(level, tables)| {
                    tables.iter().map(move |t| LevelTable {
                        level: level as u32,
                        id: t.id(),
                        key_range: Some((t.smallest_key().to_vec(), t.largest_key().to_vec())),
                    })
                })
                .collect(),
            wal_start: edit.wal_start.unwrap_or(self.manifest.wal_start),
            last_seq: edit
                .last_seq
                .unwrap_or_default()
                .max(self.manifest.last_seq),
        };
        manifest.install(&self.dir)?;
        for table in removed {
            table.mark_obsolete();
        }
        self.manifest = manifest;
        self.current = Arc::new(version);
        Ok(Arc::clone(&self.current))
    }
}
