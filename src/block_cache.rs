//! The per-shard block cache: decoded SSTable data blocks, checked once when read and then
//! served from memory, bounded in bytes (`--block-cache-bytes`).
//!
//! Built on `quick_cache`'s single-threaded cache (the CLOCK-Pro policy: scan resistant, so
//! one large read does not flush the hot blocks). A block is keyed by its table id and
//! index; table ids are never reused in a shard, so a block of a deleted table is simply
//! never asked for again and ages out. Index blocks and Bloom filters are not cached here:
//! every open table keeps them in memory.
//!
//! Point lookups fill the cache; range scans and compactions read around it, so a scan of
//! the whole store does not evict what point reads use (RocksDB's `fill_cache = false`).

use std::cell::Cell;
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
}

/// A bounded cache of data blocks of one shard's SSTables.
pub struct BlockCache {
    cache: quick_cache::unsync::Cache<(TableId, u32), Block, BlockWeighter>,
    hits: Cell<u64>,
    misses: Cell<u64>,
    bloom_negatives: Cell<u64>,
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
        }
    }

    /// Block `index` of table `table`, if cached; counts a hit or a miss.
    pub fn get(&self, table: TableId, index: u32) -> Option<Block> {
        let found = self.cache.get(&(table, index)).cloned();
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
        self.cache.get(&(table, index)).cloned()
    }

    /// Counts a point lookup that a table's Bloom filter answered without a block.
    pub fn note_bloom_negative(&self) {
        self.bloom_negatives.set(self.bloom_negatives.get() + 1);
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
    fn zero_capacity_caches_nothing() {
        let mut cache = BlockCache::new(0);
        cache.insert(TableId(1), 0, Arc::new(vec![1; 10]));
        assert!(cache.get(TableId(1), 0).is_none());
    }
}
