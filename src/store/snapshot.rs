//! A read-only snapshot of a store that another thread can read: the current version (its
//! tables are immutable and reference counted), the frozen memtables (shared), and a copy
//! of the active memtable's keys with their liveness (values are not copied). `DBSIZE`
//! counts keys on it off the shard's loop; a streamed `KEYS` reply walks one on the
//! shard's loop, through the block cache and blocks read through the ring
//! ([`Snapshot::scan_from`]). A [`RangeView`] freezes one key range with its
//! values, for a reply streamed from it later.

use std::cell::RefCell;
use std::sync::Arc;

use super::read::Miss;
use super::{BlockFetch, ShardStore};
use crate::base::{SeqNo, StoreError};
use crate::block_cache::{Block, BlockCache, BlockSource, PinnedBlocks};
use crate::compaction::merge::{EntrySource, MergeIter};
use crate::memtable::Memtable;
use crate::sstable::iter::TableIter;
use crate::sstable::TableEntry;
use crate::version::level_iter::LevelIter;
use crate::version::Version;

/// The store's contents as of [`Snapshot::seq`]; `Send`, so it can move to another thread.
#[derive(Debug)]
pub struct Snapshot {
    /// The active memtable's keys below the copy's end, in key order; a live key's value
    /// is empty, a tombstone's `None`.
    active: Vec<TableEntry>,
    /// The frozen memtables reads consult, newest first.
    frozen: Vec<Arc<Memtable>>,
    version: Arc<Version>,
    seq: SeqNo,
    /// The clock when the snapshot was taken (Unix ms): values whose deadline passed by
    /// then count as deleted.
    now_ms: u64,
}

impl ShardStore {
    /// Takes a snapshot whose copy of the active memtable holds its keys below `end` (all
    /// if `None`). Costs one pass over those keys on the calling thread, copying keys but
    /// no values; nothing is read from disk.
    pub fn snapshot(&self, end: Option<&[u8]>) -> Snapshot {
        self.snapshot_where(end, |_| true)
    }

    /// As [`ShardStore::snapshot`], copying only the active memtable's keys that `keep`
    /// accepts (those a reader of the snapshot will look at; the frozen memtables and
    /// tables are shared whole).
    pub fn snapshot_where(&self, end: Option<&[u8]>, keep: impl Fn(&[u8]) -> bool) -> Snapshot {
        let active = self
            .active
            .iter()
            .take_while(|(key, _)| end.is_none_or(|end| *key < end))
            .filter(|(key, _)| keep(key))
            .map(|(key, entry)| TableEntry {
                key: key.to_vec(),
                seq: entry.seq,
                value: entry.value.as_ref().map(|_| Vec::new()),
                expire_at_ms: entry.expire_at_ms,
            })
            .collect();
        let frozen = self
            .immutables
            .iter()
            .rev()
            .filter(|f| !f.dropped)
            .map(|f| Arc::clone(&f.memtable))
            .collect();
        Snapshot {
            active,
            frozen,
            version: Arc::clone(&self.version),
            seq: self.last_seq,
            now_ms: crate::base::unix_now_ms(),
        }
    }
}

impl Snapshot {
    /// The store's last sequence number when the snapshot was taken.
    pub fn seq(&self) -> SeqNo {
        self.seq
    }

    /// Every key of the snapshot in key order at its newest version (tombstones as
    /// `value: None`, and so are values expired when the snapshot was taken; the active
    /// memtable's values empty), reading tables with `pread`.
    pub fn scan(&self) -> MergeIter<'_> {
        self.scan_from(b"", BlockSource::Disk)
    }

    /// As [`Snapshot::scan`], from `start` on, reading table blocks from `source`: from
    /// [`BlockSource::Memory`], a block in neither the cache nor the pinned blocks ends
    /// the scan with [`StoreError::BlockNotInMemory`], and
    /// [`Snapshot::blocks_after_miss`] names what to read.
    pub fn scan_from<'a>(&'a self, start: &[u8], source: BlockSource<'a>) -> MergeIter<'a> {
        let first = self.active.partition_point(|e| e.key.as_slice() < start);
        let mut sources: Vec<EntrySource<'_>> =
            vec![Box::new(self.active[first..].iter().cloned().map(Ok))];
        for memtable in &self.frozen {
            sources.push(Box::new(memtable.iter_from(start).map(|(key, e)| {
                Ok(TableEntry {
                    key: key.to_vec(),
                    seq: e.seq,
                    value: e.value.as_deref().map(<[u8]>::to_vec),
                    expire_at_ms: e.expire_at_ms,
                })
            })));
        }
        let levels = self.version.levels();
        for table in levels[0].iter().rev() {
            let iter = TableIter::seek(Arc::clone(table), start).with_source(source);
            sources.push(Box::new(iter));
        }
        for level in &levels[1..] {
            if !level.is_empty() {
                sources.push(Box::new(LevelIter::seek(level, start).with_source(source)));
            }
        }
        MergeIter::new(sources, self.now_ms)
    }

    /// Adds to `out` the blocks of the snapshot's tables that a lookup of `key` would read
    /// and `cache` lacks (none if a memtable of the snapshot has it), as
    /// [`ShardStore::blocks_to_fetch`] does for the store.
    pub fn blocks_to_fetch(
        &self,
        key: &[u8],
        cache: &RefCell<BlockCache>,
        out: &mut Vec<BlockFetch>,
    ) {
        if self.in_memtables(key).is_some() {
            return;
        }
        super::read::table_blocks_to_fetch(&self.version, cache, key, out);
    }

    /// Adds to `out` the blocks to read after a scan from memory missed `miss`, as
    /// [`ShardStore::blocks_after_miss`] does for the store (the table is the snapshot's,
    /// whether or not the store still lists it).
    pub fn blocks_after_miss(
        &self,
        miss: Miss,
        cache: &RefCell<BlockCache>,
        pinned: &PinnedBlocks,
        out: &mut Vec<BlockFetch>,
    ) {
        super::read::blocks_after_miss(&self.version, cache, miss, pinned, out);
    }

    /// The memtables' version of `key`: `(has a value, deadline)`.
    fn in_memtables(&self, key: &[u8]) -> Option<(bool, Option<u64>)> {
        if let Ok(i) = self.active.binary_search_by(|e| e.key.as_slice().cmp(key)) {
            let entry = &self.active[i];
            return Some((entry.value.is_some(), entry.expire_at_ms));
        }
        self.frozen
            .iter()
            .find_map(|memtable| memtable.get(key))
            .map(|entry| (entry.value.is_some(), entry.expire_at_ms))
    }

    /// Whether `key` holds a live value in the snapshot (its newest version is not a
    /// tombstone). A key past the active copy's end is looked up in the rest only.
    ///
    /// # Errors
    /// A failed read or checksum.
    pub fn is_live(&self, key: &[u8]) -> Result<bool, StoreError> {
        self.is_live_cached(key, None)
    }

    /// As [`Snapshot::is_live`], reading table blocks through `cache` when given (the
    /// cache of the store that took the snapshot; a miss reads with `pread`).
    ///
    /// # Errors
    /// A failed read or checksum.
    pub fn is_live_cached(
        &self,
        key: &[u8],
        cache: Option<&RefCell<BlockCache>>,
    ) -> Result<bool, StoreError> {
        let live = |value: bool, deadline: Option<u64>| {
            value && !crate::base::is_expired(deadline, self.now_ms)
        };
        if let Some((value, deadline)) = self.in_memtables(key) {
            return Ok(live(value, deadline));
        }
        Ok(self
            .version
            .get(key, cache)?
            .is_some_and(|e| live(e.value.is_some(), e.expire_at_ms)))
    }
}

/// A frozen view of the keys in one range, for a reader that comes back to it later and
/// perhaps on another thread (a streamed `TS.RANGE` reply): the memtables' versions of
/// the range's keys, copied with their values when the view is taken, and the current
/// version's tables, reference counted so that no flush or compaction deletes a file
/// under the view. A point lookup in it sees the store as it was when it was taken. `Send`.
///
/// Memory: the copied memtable entries of the range (bounded by the memtables' size; a
/// series' chunks in them are its few newest), plus one `Arc` per table.
#[derive(Clone, Debug)]
pub struct RangeView {
    /// The memtables' newest version of each key in the range, in key order; a
    /// tombstone's value is `None`.
    memtable_entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    version: Arc<Version>,
}

impl ShardStore {
    /// Takes a [`RangeView`] of the keys in `start..=end`: one pass over the memtables'
    /// keys in the range, copying them and their values; nothing is read from disk.
    pub fn range_view(&self, start: &[u8], end: &[u8]) -> RangeView {
        let mut newest: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> =
            std::collections::BTreeMap::new();
        for memtable in self.memtables_newest_first() {
            for (key, entry) in memtable.iter_from(start) {
                if key > end {
                    break;
                }
                // Memtables come newest first: the first version of a key wins.
                newest
                    .entry(key.to_vec())
                    .or_insert_with(|| entry.value.as_deref().map(<[u8]>::to_vec));
            }
        }
        RangeView {
            memtable_entries: newest.into_iter().collect(),
            version: Arc::clone(&self.version),
        }
    }

    /// The shard's block cache, for a reader of a [`RangeView`] this store took (another
    /// store's cache must not be used: table ids are per store).
    pub fn block_cache(&self) -> &std::cell::RefCell<crate::block_cache::BlockCache> {
        &self.block_cache
    }
}

impl RangeView {
    /// Whether the view holds `key`'s version in memory (a memtable copy), so that
    /// [`RangeView::get`] reads no table for it.
    pub fn holds_in_memory(&self, key: &[u8]) -> bool {
        self.memtable_entries
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
            .is_ok()
    }

    /// The value of `key` as of the view (`None` if absent or deleted then); `key` must
    /// lie in the view's range. Tables are read through `cache` when it is the cache of
    /// the store that took the view, else with `pread`.
    ///
    /// # Errors
    /// A failed read or checksum.
    pub fn get(
        &self,
        key: &[u8],
        cache: Option<&std::cell::RefCell<crate::block_cache::BlockCache>>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_pinned(key, cache, &PinnedBlocks::new())?.0)
    }

    /// Adds to `out` the data blocks a lookup of `key` ([`RangeView::get_pinned`]) would
    /// read from disk: none when the view holds the key in memory or a block held in
    /// `pinned` or `cache` answers; otherwise the block of every candidate table that
    /// neither holds (the Bloom filters rule out most). Blocks of `pinned` it uses are
    /// moved to `keep`. `cache` must be that of the store that took the view, if given.
    pub fn blocks_to_fetch(
        &self,
        key: &[u8],
        cache: Option<&std::cell::RefCell<crate::block_cache::BlockCache>>,
        pinned: &mut PinnedBlocks,
        keep: &mut PinnedBlocks,
        out: &mut Vec<BlockFetch>,
    ) {
        if self.holds_in_memory(key) {
            return;
        }
        let held = |table, index| {
            let slot = (table, index);
            match pinned.remove(&slot).or_else(|| keep.get(&slot).cloned()) {
                Some(block) => {
                    keep.insert(slot, Arc::clone(&block));
                    Some(block)
                }
                None => cache.and_then(|cache| cache.borrow().peek(table, index)),
            }
        };
        super::read::blocks_not_held(&self.version, key, held, out);
    }

    /// As [`RangeView::get`], taking data blocks from `pinned` first (read through a
    /// ring for this lookup, [`RangeView::blocks_to_fetch`]), then from `cache` (that of
    /// the store that took the view), and reading the rest with `pread`. Returns the value
    /// and how many blocks were read with `pread` (a read that blocked its thread; with a
    /// cache, it also counts them as blocking reads and keeps the blocks).
    ///
    /// # Errors
    /// A failed read or checksum.
    pub fn get_pinned(
        &self,
        key: &[u8],
        cache: Option<&std::cell::RefCell<crate::block_cache::BlockCache>>,
        pinned: &PinnedBlocks,
    ) -> Result<(Option<Vec<u8>>, u64), StoreError> {
        if let Ok(i) = self
            .memtable_entries
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
        {
            return Ok((self.memtable_entries[i].1.clone(), 0));
        }
        let mut preads = 0;
        for table in self.version.candidates(key) {
            let load = |index: usize| {
                let slot = (
                    table.id(),
                    u32::try_from(index).expect("fewer than 2^32 blocks"),
                );
                if let Some(block) = pinned.get(&slot) {
                    return Ok(Arc::clone(block));
                }
                if let Some(block) = cache.and_then(|cache| cache.borrow().get(slot.0, slot.1)) {
                    return Ok(block);
                }
                let block: Block = Arc::new(table.table().read_block(index)?);
                preads += 1;
                if let Some(cache) = cache {
                    cache.borrow().note_blocking_read();
                    cache
                        .borrow_mut()
                        .insert(slot.0, slot.1, Arc::clone(&block));
                }
                Ok(block)
            };
            if let Some(entry) = table.table().get_with(key, load)? {
                return Ok((entry.value, preads));
            }
        }
        Ok((None, preads))
    }
}
