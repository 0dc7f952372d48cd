//! Reads: point lookups through memtables and SSTables, merged range scans, and the
//! block fetches that let the shard read SSTable blocks through its ring instead of
//! blocking on them.

use std::sync::Arc;

use super::ShardStore;
use crate::base::{is_expired, unix_now_ms, SeqNo, StoreError};
use crate::block_cache::{Block, BlockCacheStats, BlockSource, PinnedBlocks};
use crate::compaction::merge::{EntrySource, MergeIter};
use crate::sstable::iter::TableIter;
use crate::sstable::TableEntry;
use crate::version::level_iter::LevelIter;
use crate::version::TableHandle;

/// The result of a point lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The value, or `None` if the newest version is a tombstone or has expired.
    pub value: Option<Vec<u8>>,
    /// The sequence number of the version found.
    pub seq: SeqNo,
    /// The value's expiry deadline (absolute Unix ms), `None` = never (and for a
    /// tombstone or an expired value).
    pub expire_at_ms: Option<u64>,
}

impl Lookup {
    /// The lookup result of a version, an expired value turned into a tombstone: the one
    /// place where a point read applies [`is_expired`]. The clock is read only for a value
    /// that has a deadline.
    fn of_version(value: Option<Vec<u8>>, seq: SeqNo, expire_at_ms: Option<u64>) -> Self {
        if expire_at_ms.is_some() && is_expired(expire_at_ms, unix_now_ms()) {
            return Self {
                value: None,
                seq,
                expire_at_ms: None,
            };
        }
        Self {
            value,
            seq,
            expire_at_ms,
        }
    }
}

/// A data block of a live table that a point lookup needs and the block cache lacks.
#[derive(Clone, Debug)]
pub struct BlockFetch {
    /// The table (held, so its file stays open while the read is in flight).
    pub table: Arc<TableHandle>,
    /// The block's index in the table.
    pub index: usize,
}

impl ShardStore {
    /// Looks `key` up: active memtable, immutable memtables, then SSTables newest first
    /// (Bloom filter to skip). `Ok(None)` if no version exists; while a drop-all
    /// (`FLUSHALL`) is not yet durable, a tombstone at its sequence number instead, so a
    /// reply that reports the key missing waits for the drop to be durable (after that,
    /// `None` again: a key that stayed absent has no newer version, as `WATCH` sees it).
    /// A block whose checksum fails is an error, never a value.
    pub fn get(&self, key: &[u8]) -> Result<Option<Lookup>, StoreError> {
        for memtable in self.memtables_newest_first() {
            if let Some(entry) = memtable.get(key) {
                return Ok(Some(Lookup::of_version(
                    entry.value.map(|v| v.to_vec()),
                    entry.seq,
                    entry.expire_at_ms,
                )));
            }
        }
        let found = self
            .version
            .get(key, Some(&self.block_cache))?
            .map(|entry| Lookup::of_version(entry.value, entry.seq, entry.expire_at_ms));
        let dropped = self.last_drop_seq();
        Ok(found.or((dropped > self.durable_seq).then_some(Lookup {
            value: None,
            seq: dropped,
            expire_at_ms: None,
        })))
    }

    /// The memtables reads consult, newest first: the active one and the frozen ones no
    /// drop-all removed.
    pub(super) fn memtables_newest_first(
        &self,
    ) -> impl Iterator<Item = &crate::memtable::Memtable> + '_ {
        std::iter::once(&self.active).chain(
            self.immutables
                .iter()
                .rev()
                .filter(|f| !f.dropped)
                .map(|f| &*f.memtable),
        )
    }

    /// Exact count of live keys (not tombstoned), by a merged scan over memtables and
    /// SSTables: O(entries), used by `DBSIZE`.
    ///
    /// # Errors
    /// A failed read or checksum.
    pub fn len(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for entry in self.scan_from(b"") {
            count += u64::from(entry?.value.is_some());
        }
        Ok(count)
    }

    /// A streaming range scan: every key from `start` on (inclusive), in key order, at its
    /// newest version (tombstones and expired values included as `value: None`; callers
    /// hide them). Memory is one block per memtable, level 0 table and deeper level
    /// whatever the range: each level 0 table starts at the block its index names for
    /// `start`, and each deeper level at the one table that can hold `start`
    /// ([`LevelIter`]). The iterator holds the current version, so flushes and compactions
    /// meanwhile delete no file under it. Blocks come from the block cache, or a blocking
    /// `pread` when it lacks them (see [`crate::block_cache`] for which it keeps).
    pub fn scan_from(&self, start: &[u8]) -> MergeIter<'_> {
        self.scan_with(start, BlockSource::Cache(&self.block_cache))
    }

    /// As [`ShardStore::scan_from`], from memory only: the block cache and `pinned`. A
    /// block in neither ends the scan with [`StoreError::BlockNotInMemory`];
    /// [`ShardStore::blocks_after_miss`] names what to read before running it again.
    pub fn scan_in_memory<'a>(&'a self, start: &[u8], pinned: &'a PinnedBlocks) -> MergeIter<'a> {
        let source = BlockSource::Memory {
            cache: &self.block_cache,
            pinned,
        };
        self.scan_with(start, source)
    }

    fn scan_with<'a>(&'a self, start: &[u8], source: BlockSource<'a>) -> MergeIter<'a> {
        let mut sources: Vec<EntrySource<'_>> = Vec::new();
        for memtable in self.memtables_newest_first() {
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
        MergeIter::new(sources, crate::base::unix_now_ms())
    }

    /// Whether the store holds no live key; as costly as [`ShardStore::len`].
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Adds to `out` the data blocks a lookup of `key` would read from disk now: none when a
    /// memtable has the key or a cached block answers; otherwise the block of every
    /// candidate table that the cache lacks (usually one, the Bloom filters rule out the
    /// rest). The shard reads them through its ring, then runs the lookup from memory.
    pub fn blocks_to_fetch(&self, key: &[u8], out: &mut Vec<BlockFetch>) {
        for memtable in self.memtables_newest_first() {
            if memtable.get(key).is_some() {
                return;
            }
        }
        table_blocks_to_fetch(&self.version, &self.block_cache, key, out);
    }

    /// Adds to `out` the blocks to read after a scan from memory missed block
    /// `block_index` of table `table_id` ([`StoreError::BlockNotInMemory`]): that block and
    /// up to `readahead_blocks` after it in the same table that neither the cache nor
    /// `pinned` holds, since a scan goes on in key order. Nothing if the table is no longer
    /// in the current version (the scan, run again, opens the tables of the new one).
    pub fn blocks_after_miss(
        &self,
        table_id: u64,
        block_index: usize,
        readahead_blocks: usize,
        pinned: &PinnedBlocks,
        out: &mut Vec<BlockFetch>,
    ) {
        let miss = Miss {
            table_id,
            block_index,
            readahead_blocks,
        };
        blocks_after_miss(&self.version, &self.block_cache, miss, pinned, out);
    }

    /// Adds to `out` the data blocks that a scan of the keys `start..=end` reads and that
    /// the cache lacks (blocks pinned for the request count as cached): in every table whose
    /// key range overlaps it (a scan, unlike a point lookup, has no Bloom filter to skip
    /// one), the blocks from the one holding `start` to the one holding `end`. Lists at
    /// most `max_blocks` and returns whether it listed them all; blocks already in `out`
    /// are neither listed again nor counted. A reader that goes through a long range in
    /// steps calls it once per step, with that step's keys.
    ///
    /// Where the scan stops is the caller's business: an entry past `end` that it still
    /// reads (the one that tells it to stop) may lie in the block after; a scan from memory
    /// ([`ShardStore::first_block_missing`]) names it.
    pub fn blocks_in_range(
        &self,
        start: &[u8],
        end: &[u8],
        max_blocks: usize,
        out: &mut Vec<BlockFetch>,
    ) -> bool {
        if start > end {
            return true;
        }
        let cache = self.block_cache.borrow();
        let mut listed = 0;
        let tables = self.version.levels().iter().flatten();
        for table in tables.filter(|t| t.smallest_key() <= end && start <= t.largest_key()) {
            let index = table.table().index();
            let first = index.partition_point(|e| e.last_key.as_slice() < start);
            let last = index
                .partition_point(|e| e.last_key.as_slice() < end)
                .min(index.len().saturating_sub(1));
            for block in first..=last {
                let i = u32::try_from(block).expect("fewer than 2^32 blocks");
                let known = |f: &BlockFetch| f.table.id() == table.id() && f.index == block;
                if cache.peek(table.id(), i).is_some() || out.iter().any(known) {
                    continue;
                }
                if listed == max_blocks {
                    return false;
                }
                out.push(BlockFetch {
                    table: Arc::clone(table),
                    index: block,
                });
                listed += 1;
            }
        }
        true
    }

    /// Runs a scan from `start` from memory only (the cache and the blocks pinned for the
    /// request), handing each entry to `done` until it returns true (that entry read) or
    /// the keys end, as a reader of that range would. Returns the first block it could not
    /// find in memory, `None` if it needed none: then the reader, run now, reads nothing
    /// from disk.
    ///
    /// # Errors
    /// A damaged block in memory (the reader, run, reports it too).
    pub fn first_block_missing(
        &self,
        start: &[u8],
        mut done: impl FnMut(&TableEntry) -> bool,
    ) -> Result<Option<BlockFetch>, StoreError> {
        if self.version.levels().iter().all(Vec::is_empty) {
            return Ok(None);
        }
        let none = PinnedBlocks::new();
        for entry in self.scan_in_memory(start, &none) {
            match entry {
                Ok(entry) if done(&entry) => break,
                Ok(_) => {}
                Err(StoreError::BlockNotInMemory {
                    table_id,
                    block_index,
                }) => {
                    let table = self.version.levels().iter().flatten();
                    let table = table.clone().find(|t| t.id().0 == table_id);
                    return Ok(table.map(|table| BlockFetch {
                        table: Arc::clone(table),
                        index: block_index,
                    }));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Serves `pins` (blocks read through the ring for the request about to be planned or
    /// run) as if cached, until [`ShardStore::unpin_request`].
    pub fn pin_for_request(&self, pins: PinnedBlocks) {
        self.block_cache.borrow_mut().pin_for_request(pins);
    }

    /// Takes back the pins of [`ShardStore::pin_for_request`].
    pub fn unpin_request(&self) -> PinnedBlocks {
        self.block_cache.borrow_mut().unpin_request()
    }

    /// Takes the bytes of a block read through the ring ([`ShardStore::blocks_to_fetch`],
    /// [`ShardStore::blocks_after_miss`]): checks them, keeps the block in the cache if
    /// `fill` (a point lookup's block; a scan's are pinned for its request instead, see
    /// [`crate::block_cache`]), and returns it.
    ///
    /// # Errors
    /// A short read or bad checksum: nothing is cached, and the lookup, reading the block
    /// itself, reports the error.
    pub fn fetched_block(
        &self,
        fetch: &BlockFetch,
        raw: Vec<u8>,
        fill: bool,
    ) -> Result<Block, StoreError> {
        let payload = Arc::new(fetch.table.table().check_block(fetch.index, raw)?);
        if fill {
            let index = u32::try_from(fetch.index).expect("fewer than 2^32 blocks");
            self.block_cache
                .borrow_mut()
                .insert(fetch.table.id(), index, Arc::clone(&payload));
        }
        Ok(payload)
    }

    /// The block cache's hits, misses and bytes.
    pub fn block_cache_stats(&self) -> BlockCacheStats {
        self.block_cache.borrow().stats()
    }
}

/// Where a scan from memory missed ([`StoreError::BlockNotInMemory`]) and how many blocks
/// after it to read as well.
#[derive(Clone, Copy, Debug)]
pub struct Miss {
    /// The table's id.
    pub table_id: u64,
    /// The block missed.
    pub block_index: usize,
    /// Blocks after it, in the same table, to read too.
    pub readahead_blocks: usize,
}

/// The table part of [`ShardStore::blocks_to_fetch`], for any version (a snapshot's too):
/// the block of every candidate table of `version` that `cache` lacks, until a cached
/// block answers.
pub(crate) fn table_blocks_to_fetch(
    version: &crate::version::Version,
    cache: &std::cell::RefCell<crate::block_cache::BlockCache>,
    key: &[u8],
    out: &mut Vec<BlockFetch>,
) {
    let cache = cache.borrow();
    blocks_not_held(version, key, |table, index| cache.peek(table, index), out);
}

/// The data block of every candidate table of `version` for a lookup of `key` that
/// `held` (table, block index) does not give, until a held block answers for the key (or
/// is damaged: the lookup will report it).
pub(crate) fn blocks_not_held(
    version: &crate::version::Version,
    key: &[u8],
    mut held: impl FnMut(crate::sstable::TableId, u32) -> Option<Block>,
    out: &mut Vec<BlockFetch>,
) {
    for table in version.candidates(key) {
        let Some(index) = table.table().block_for(key) else {
            continue;
        };
        let index_u32 = u32::try_from(index).expect("fewer than 2^32 blocks");
        match held(table.id(), index_u32) {
            Some(block) => match crate::sstable::block::find(&block, key) {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => return,
            },
            None => out.push(BlockFetch {
                table: Arc::clone(table),
                index,
            }),
        }
    }
}

/// [`ShardStore::blocks_after_miss`] for any version (a snapshot's too): nothing if the
/// missed table is not in `version`.
pub(crate) fn blocks_after_miss(
    version: &crate::version::Version,
    cache: &std::cell::RefCell<crate::block_cache::BlockCache>,
    miss: Miss,
    pinned: &PinnedBlocks,
    out: &mut Vec<BlockFetch>,
) {
    let Some(table) = version
        .levels()
        .iter()
        .flatten()
        .find(|t| t.id().0 == miss.table_id)
    else {
        return;
    };
    let cache = cache.borrow();
    let end = table
        .table()
        .block_count()
        .min(miss.block_index.saturating_add(miss.readahead_blocks + 1));
    for index in miss.block_index..end {
        let key = (
            table.id(),
            u32::try_from(index).expect("fewer than 2^32 blocks"),
        );
        if index == miss.block_index
            || (cache.peek(key.0, key.1).is_none() && !pinned.contains_key(&key))
        {
            out.push(BlockFetch {
                table: Arc::clone(table),
                index,
            });
        }
    }
}
