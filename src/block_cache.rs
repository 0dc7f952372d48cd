//! The per-shard block cache: decoded SSTable data blocks, checked once when read and then
//! served from memory, bounded in bytes (`--block-cache-bytes`).
//!
//! Built on `quick_cache`'s single-threaded cache (the CLOCK-Pro policy: scan resistant, so
//! one large read does not flush the hot blocks). A block is keyed by its table id and
//! index; table ids are never reused in a shard, so a block of a deleted table is simply
//! never asked for again and ages out. Index blocks and Bloom filters are not cached here:
//! every open table keeps them in memory.
//!
//! Who fills it ([`BlockSource`]): point lookups insert the block they read. A range scan
//! takes every block from the cache when it is there, and inserts only the first block each
//! table iterator loads, the one its seek lands on: a short range read (a seek and a few
//! entries, a `SCAN` step resuming where the last one stopped) finds its block again next
//! time, while the blocks a long walk moves on to (`KEYS`, a whole `SCAN`) stay out, so
//! one such walk does not push out what point reads use. This is RocksDB's `fill_cache`
//! decided per block instead of per read: the blocks a walk passes through are the ones
//! `fill_cache = false` keeps out, and the seek's block is the one a repeated short scan
//! wants back. Compactions and the `DBSIZE` snapshot read around the cache.
//!
//! Beside the cache, the blocks read through the shard's ring for the one request being
//! planned or run ([`BlockCache::pin_for_request`], a time-series request's) are found as
//! if cached by every read path, and are not counted in the cache's bytes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use crate::sstable::TableId;

/// A cached block payload (checksum already verified and removed).
pub type Block = Arc<Vec<u8>>;

#[derive(Clone, Copy, Debug)]
struct BlockWeighter;

impl quick_cache::Weighter<(TableId, u32), Block> for BlockWeighter {
    fn weight(&self, _key: &(TableId, u32), block: &Block) -> u64 {
        // Never zero: a zero-weight item would never be evicted.
        block.len().max(1) as u64
    }
}

/// Blocks read for one waiting request and held for it until it has run, keyed as the
/// cache is: a block the cache evicted meanwhile is still found here, so a request that
/// waited for its blocks makes progress whatever else the shard reads.
pub type PinnedBlocks = HashMap<(TableId, u32), Block>;

/// Where a table iterator takes its data blocks from.
#[derive(Clone, Copy, Debug)]
pub enum BlockSource<'c> {
    /// `pread` every block, never touching a cache: compaction, and snapshots read off the
    /// shard's loop (a cache is not shared between threads).
    Disk,
    /// The cache, or `pread` when it lacks a block (counted as a blocking read): the
    /// embedded engine and reads that may block. Fills as the module doc says.
    Cache(&'c RefCell<BlockCache>),
    /// The cache or the request's pinned blocks, and never the disk: a block in neither is
    /// the error [`crate::base::StoreError::BlockNotInMemory`], and the caller reads it
    /// through the shard's ring and runs again. Fills as [`BlockSource::Cache`] does.
    Memory {
        /// The shard's block cache.
        cache: &'c RefCell<BlockCache>,
        /// The blocks read for this request.
        pinned: &'c PinnedBlocks,
    },
}

/// Hit and miss counts of a [`BlockCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockCacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that had to read the block.
    pub misses: u64,
    /// Bytes of blocks held.
    pub bytes: u64,
    /// Times a table's Bloom filter ruled it out of a point lookup (no block read).
    pub bloom_negatives: u64,
    /// Blocks read with a blocking `pread` after a miss (on a shard, on its loop).
    pub blocking_reads: u64,
}

/// A bounded cache of data blocks of one shard's SSTables.
pub struct BlockCache {
    cache: quick_cache::unsync::Cache<(TableId, u32), Block, BlockWeighter>,
    hits: Cell<u64>,
    misses: Cell<u64>,
    bloom_negatives: Cell<u64>,
    blocking_reads: Cell<u64>,
    /// Blocks read through the ring for the request being planned or run now
    /// ([`BlockCache::pin_for_request`]): found as if cached, never evicted, and not
    /// counted in the cache's bytes.
    request_pins: PinnedBlocks,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Typical data block size, to size the cache's item table.
const BLOCK_BYTES_TYPICAL: u64 = 4096;

impl BlockCache {
    /// A cache holding up to `capacity_bytes` of blocks (0 disables it).
    pub fn new(capacity_bytes: u64) -> Self {
        let items = (capacity_bytes / BLOCK_BYTES_TYPICAL).max(1) as usize;
        Self {
            cache: quick_cache::unsync::Cache::with_weighter(items, capacity_bytes, BlockWeighter),
            hits: Cell::new(0),
            misses: Cell::new(0),
            bloom_negatives: Cell::new(0),
            blocking_reads: Cell::new(0),
            request_pins: PinnedBlocks::new(),
        }
    }

    /// Serves `pins` (blocks read for one request) as if cached until
    /// [`BlockCache::unpin_request`]: every read path that takes blocks from the cache (point
    /// lookups, scans) then finds them, whatever the cache evicted while the request waited.
    pub fn pin_for_request(&mut self, pins: PinnedBlocks) {
        debug_assert!(self.request_pins.is_empty(), "one request's pins at a time");
        self.request_pins = pins;
    }

    /// Takes back the pins of [`BlockCache::pin_for_request`].
    pub fn unpin_request(&mut self) -> PinnedBlocks {
        std::mem::take(&mut self.request_pins)
    }

    fn find(&self, table: TableId, index: u32) -> Option<Block> {
        self.cache
            .get(&(table, index))
            .or_else(|| self.request_pins.get(&(table, index)))
            .cloned()
    }

    /// Block `index` of table `table`, if cached or pinned for the request; counts a hit or a miss.
    pub fn get(&self, table: TableId, index: u32) -> Option<Block> {
        let found = self.find(table, index);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.set(counter.get() + 1);
        found
    }

    /// Block `index` of table `table`, if cached, without counting a hit or miss (for
    /// planning which blocks to read).
    pub fn peek(&self, table: TableId, index: u32) -> Option<Block> {
        self.find(table, index)
    }

    /// Counts a point lookup that a table's Bloom filter answered without a block.
    pub fn note_bloom_negative(&self) {
        self.bloom_negatives.set(self.bloom_negatives.get() + 1);
    }

    /// Counts a block read with a blocking `pread` after a miss.
    pub fn note_blocking_read(&self) {
        self.blocking_reads.set(self.blocking_reads.get() + 1);
    }

    /// Keeps `block` as block `index` of table `table`.
    pub fn insert(&mut self, table: TableId, index: u32, block: Block) {
        if self.cache.capacity() > 0 {
            self.cache.insert((table, index), block);
        }
    }

    /// Hits, misses and bytes held.
    pub fn stats(&self) -> BlockCacheStats {
        BlockCacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            bytes: self.cache.weight(),
            bloom_negatives: self.bloom_negatives.get(),
            blocking_reads: self.blocking_reads.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_blocks_within_its_byte_bound() {
        let mut cache = BlockCache::new(64 << 10);
        for i in 0..100u32 {
            cache.insert(TableId(1), i, Arc::new(vec![i as u8; 4096]));
        }
        assert!(cache.stats().bytes <= 64 << 10, "{:?}", cache.stats());
        assert!(
            cache.get(TableId(1), 99).is_some(),
            "the newest block is kept"
        );
        assert!(cache.get(TableId(2), 0).is_none());
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 1));
    }

    #[test]
    fn request_pins_are_found_until_unpinned() {
        let mut cache = BlockCache::new(0);
        let mut pins = PinnedBlocks::new();
        pins.insert((TableId(3), 7), Arc::new(vec![7; 10]));
        cache.pin_for_request(pins);
        assert!(
            cache.get(TableId(3), 7).is_some(),
            "a pinned block is served"
        );
        assert!(cache.peek(TableId(3), 7).is_some());
        assert_eq!(cache.stats().bytes, 0, "pins are not the cache's bytes");
        assert_eq!(cache.unpin_request().len(), 1);
        assert!(cache.get(TableId(3), 7).is_none(), "gone once unpinned");
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut cache = BlockCache::new(0);
        cache.insert(TableId(1), 0, Arc::new(vec![1; 10]));
        assert!(cache.get(TableId(1), 0).is_none());
    }
}
