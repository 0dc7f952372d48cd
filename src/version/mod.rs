//! Versions: the live SSTables of a shard by level, as one immutable snapshot.
//!
//! A [`Version`] is shared (`Arc`) by the shard that reads through it, by every iterator
//! opened on it, and by the compaction core that builds the next one. Each table is held
//! through an `Arc<TableHandle>`. When a newer version drops a table (a compaction consumed
//! it), the table is marked obsolete, and its file is deleted when the last handle goes:
//! reference counting, so no reader ever loses a file under it and a file is deleted only
//! when no version and no iterator uses it.
//!
//! Levels follow the leveled LSM layout of LevelDB and RocksDB:
//!
//! ```text
//!  L0   flushed memtables, key ranges may overlap, oldest first      (newest data)
//!  L1   non-overlapping tables in key order, about `level1_target_bytes`
//!  L2   non-overlapping, `level_size_ratio` × L1
//!  ...                                                               (oldest data)
//! ```
//!
//! For any key, a version in a lower-numbered level (or later in L0) is newer than one
//! deeper down, so a point lookup stops at the first table that has the key.

pub mod level_iter;
pub mod set;

use std::cell::RefCell;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::base::StoreError;
use crate::block_cache::BlockCache;
use crate::manifest::LEVELS_MAX;
use crate::sstable::block::BlockEntries;
use crate::sstable::reader::Table;
use crate::sstable::{TableEntry, TableId};

/// An open SSTable with its key range and size, shared by the versions that list it.
#[derive(Debug)]
pub struct TableHandle {
    table: Table,
    smallest_key: Vec<u8>,
    largest_key: Vec<u8>,
    size_bytes: u64,
    obsolete: AtomicBool,
}

impl TableHandle {
    /// Opens table `id` in `dir` and reads its key range (the first key of its first block
    /// and the last key its index names).
    ///
    /// # Errors
    /// As [`Table::open`] and [`Table::read_block`].
    pub fn open(dir: &Path, id: TableId) -> Result<Arc<Self>, StoreError> {
        Self::open_with_range(dir, id, None)
    }

    /// Opens table `id` in `dir` with its key range as the manifest recorded it (no data
    /// block is read), or, for `None`, read from the table as [`TableHandle::open`] does.
    ///
    /// # Errors
    /// As [`Table::open`] and [`Table::read_block`].
    pub fn open_with_range(
        dir: &Path,
        id: TableId,
        key_range: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Arc<Self>, StoreError> {
        let path = dir.join(id.file_name());
        let table = Table::open(&path, id)?;
        let size_bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or_default();
        let (smallest_key, largest_key) = if let Some(range) = key_range {
            range
        } else if table.block_count() == 0 {
            (Vec::new(), Vec::new())
        } else {
            let payload = table.read_block(0)?;
            let first = BlockEntries::new(&payload)
                .next()
                .transpose()
                .map_err(|e| table.corruption(table.block_offset(0), e))?
                .map(|e| e.key.to_vec())
                .unwrap_or_default();
            let last = table.index().last().map(|e| e.last_key.clone());
            (first, last.unwrap_or_default())
        };
        Ok(Arc::new(Self {
            table,
            smallest_key,
            largest_key,
            size_bytes,
            obsolete: AtomicBool::new(false),
        }))
    }

    /// The open table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The table's id.
    pub fn id(&self) -> TableId {
        self.table.id()
    }

    /// The smallest key in the table (empty for an empty table).
    pub fn smallest_key(&self) -> &[u8] {
        &self.smallest_key
    }

    /// The largest key in the table (empty for an empty table).
    pub fn largest_key(&self) -> &[u8] {
        &self.largest_key
    }

    /// The file's size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Whether `key` lies in the table's key range.
    pub fn covers(&self, key: &[u8]) -> bool {
        self.smallest_key.as_slice() <= key && key <= self.largest_key.as_slice()
    }

    /// Marks the table as no longer listed by the newest version: its file is deleted when
    /// the last handle is dropped.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    /// The metadata the compaction picker works on.
    pub fn meta(&self) -> TableMeta {
        TableMeta {
            id: self.id(),
            smallest_key: self.smallest_key.clone(),
            largest_key: self.largest_key.clone(),
            size_bytes: self.size_bytes,
            first_deadline_ms: self.table.footer().first_deadline_ms,
        }
    }
}

impl Drop for TableHandle {
    fn drop(&mut self) {
        if !self.obsolete.load(Ordering::Acquire) {
            return;
        }
        let path = self.table.path();
        match crate::base::iolog::remove(path) {
            Ok(()) => tracing::debug!(table = %path.display(), "obsolete SSTable deleted"),
            // A leftover is removed at the next open, since no manifest names it.
            Err(e) => {
                tracing::warn!(table = %path.display(), error = %e, "cannot delete obsolete SSTable")
            }
        }
    }
}

/// What the compaction picker knows of a table: no file, so policy tests need no disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMeta {
    /// The table's id.
    pub id: TableId,
    /// Its smallest key.
    pub smallest_key: Vec<u8>,
    /// Its largest key.
    pub largest_key: Vec<u8>,
    /// Its file size in bytes.
    pub size_bytes: u64,
    /// The earliest expiry deadline of a value in it (Unix ms), if any.
    pub first_deadline_ms: Option<u64>,
}

impl TableMeta {
    /// Whether the key ranges of `self` and `[smallest, largest]` intersect.
    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        self.smallest_key.as_slice() <= largest && smallest <= self.largest_key.as_slice()
    }
}

/// The tables of every level, by level: `levels[0]` oldest first, deeper levels in key order.
pub type LevelMetas = Vec<Vec<TableMeta>>;

/// One immutable snapshot of a shard's live SSTables.
#[derive(Debug)]
pub struct Version {
    levels: Vec<Vec<Arc<TableHandle>>>,
}

impl Default for Version {
    fn default() -> Self {
        Self {
            levels: vec![Vec::new(); LEVELS_MAX],
        }
    }
}

impl Version {
    /// A version of `levels` (exactly [`LEVELS_MAX`] of them; level 0 oldest first, deeper
    /// levels sorted by key and not overlapping).
    ///
    /// # Panics
    /// If the shape is wrong: that is a bug in whoever built it.
    pub fn new(levels: Vec<Vec<Arc<TableHandle>>>) -> Self {
        assert_eq!(levels.len(), LEVELS_MAX, "a version has LEVELS_MAX levels");
        for level in &levels[1..] {
            for pair in level.windows(2) {
                assert!(
                    pair[0].largest_key() < pair[1].smallest_key(),
                    "tables of a level >= 1 must be sorted and disjoint"
                );
            }
        }
        Self { levels }
    }

    /// The tables of each level.
    pub fn levels(&self) -> &[Vec<Arc<TableHandle>>] {
        &self.levels
    }

    /// Every table, newest data first: level 0 newest to oldest, then each deeper level.
    pub fn tables_newest_first(&self) -> impl Iterator<Item = &Arc<TableHandle>> + '_ {
        self.levels[0]
            .iter()
            .rev()
            .chain(self.levels[1..].iter().flatten())
    }

    /// Number of live tables.
    pub fn table_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Bytes of live tables in each level.
    pub fn level_bytes(&self) -> Vec<u64> {
        self.levels
            .iter()
            .map(|l| l.iter().map(|t| t.size_bytes()).sum())
            .collect()
    }

    /// The picker's view of this version.
    pub fn metas(&self) -> LevelMetas {
        self.levels
            .iter()
            .map(|l| l.iter().map(|t| t.meta()).collect())
            .collect()
    }

    /// The newest version of `key` in the tables: level 0 newest first (Bloom filter to
    /// skip), then in each deeper level the one table whose range covers the key.
    ///
    /// # Errors
    /// A failed read or checksum: never a wrong value.
    pub fn get(
        &self,
        key: &[u8],
        cache: Option<&RefCell<BlockCache>>,
    ) -> Result<Option<TableEntry>, StoreError> {
        Ok(self.find(key, cache)?.map(|(_, entry)| entry))
    }

    /// The tables a lookup of `key` consults, in the order it does: level 0 newest first,
    /// then in each deeper level the one table whose key range covers it.
    pub fn candidates<'a>(
        &'a self,
        key: &'a [u8],
    ) -> impl Iterator<Item = &'a Arc<TableHandle>> + 'a {
        let deeper = self.levels[1..].iter().filter_map(move |level| {
            let index = level.partition_point(|t| t.largest_key() < key);
            level.get(index).filter(|t| t.covers(key))
        });
        self.levels[0].iter().rev().chain(deeper)
    }

    /// As [`Version::get`], also naming the table the version was found in (for tools).
    /// Data blocks go through `cache` when given.
    ///
    /// # Errors
    /// As [`Version::get`].
    pub fn find<'a>(
        &'a self,
        key: &'a [u8],
        cache: Option<&RefCell<BlockCache>>,
    ) -> Result<Option<(&'a Arc<TableHandle>, TableEntry)>, StoreError> {
        let lookup = |table: &TableHandle| match cache {
            Some(cache) => table.table().get_cached(key, cache),
            None => table.table().get(key),
        };
        for table in self.candidates(key) {
            if let Some(entry) = lookup(table)? {
                return Ok(Some((table, entry)));
            }
        }
        Ok(None)
    }
}

/// Lets a [`crate::sstable::iter::TableIter`] own its table through the shared handle, so
/// an iterator keeps the file alive however long it runs.
impl std::borrow::Borrow<Table> for Arc<TableHandle> {
    fn borrow(&self) -> &Table {
        &self.table
    }
}
