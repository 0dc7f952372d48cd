//! Walking every entry of an SSTable in key order, one data block at a time, each block
//! taken from where its [`BlockSource`] says (the disk, the shard's block cache, or memory
//! only).

use std::borrow::Borrow;
use std::sync::Arc;

use super::block::BlockEntries;
use super::reader::Table;
use super::TableEntry;
use crate::base::StoreError;
use crate::block_cache::{Block, BlockSource};

/// Iterates over the entries of a table in key order, from its first key or from a start
/// key. Yields the first error (a failed block checksum, say) and then stops.
///
/// `T` is how the table is held: `&Table` for a borrowed walk, or an owning handle such as
/// `Arc<TableHandle>` for an iterator that keeps its table (and file) alive by itself.
/// Blocks come from the disk unless [`TableIter::with_source`] names another source.
/// Entries are decoded one at a time from the current block (a seek that reads a few
/// entries does not decode the rest of its block).
#[derive(Debug)]
pub struct TableIter<'c, T> {
    table: T,
    source: BlockSource<'c>,
    next_block: usize,
    /// No block loaded yet: the next one is where the seek lands (the one a cache keeps).
    first_load: bool,
    /// The block being walked (index `next_block - 1`), the offset of its next entry, and
    /// where the key of the entry before it lies (offset and length), to check order.
    current: Option<Block>,
    offset: usize,
    prev_key: Option<(usize, usize)>,
    /// Entries below this key are skipped (only the first block read can hold any).
    start: Option<Vec<u8>>,
    failed: bool,
}

impl<T: Borrow<Table>> TableIter<'static, T> {
    /// An iterator positioned before the first entry of `table`.
    pub fn new(table: T) -> Self {
        Self {
            table,
            source: BlockSource::Disk,
            next_block: 0,
            first_load: true,
            current: None,
            offset: 0,
            prev_key: None,
            start: None,
            failed: false,
        }
    }

    /// An iterator positioned before the first entry whose key is at least `start`: the
    /// index names the first block that can hold it, so earlier blocks are never read.
    pub fn seek(table: T, start: &[u8]) -> Self {
        let next_block = table
            .borrow()
            .index()
            .partition_point(|e| e.last_key.as_slice() < start);
        Self {
            table,
            source: BlockSource::Disk,
            next_block,
            first_load: true,
            current: None,
            offset: 0,
            prev_key: None,
            start: Some(start.to_vec()),
            failed: false,
        }
    }
}

impl<'c, T: Borrow<Table>> TableIter<'c, T> {
    /// The same iterator, taking its blocks from `source` (see
    /// [`crate::block_cache`] for which blocks a cache keeps).
    pub fn with_source<'d>(self, source: BlockSource<'d>) -> TableIter<'d, T> {
        TableIter {
            table: self.table,
            source,
            next_block: self.next_block,
            first_load: self.first_load,
            current: self.current,
            offset: self.offset,
            prev_key: self.prev_key,
            start: self.start,
            failed: self.failed,
        }
    }

    /// Data block `block_index`'s payload from the iterator's source. The first block an
    /// iterator loads is inserted into the cache if it came from elsewhere; later ones
    /// are not (the fill rule of [`crate::block_cache`]).
    fn block(&mut self, block_index: usize) -> Result<Block, StoreError> {
        let table = self.table.borrow();
        let fill = std::mem::replace(&mut self.first_load, false);
        let index = u32::try_from(block_index).expect("fewer than 2^32 blocks");
        let (cache, block) = match self.source {
            BlockSource::Disk => return Ok(Arc::new(table.read_block(block_index)?)),
            BlockSource::Cache(cache) => {
                if let Some(block) = cache.borrow().get(table.id(), index) {
                    return Ok(block);
                }
                let block = Arc::new(table.read_block(block_index)?);
                cache.borrow().note_blocking_read();
                (cache, block)
            }
            BlockSource::Memory { cache, pinned } => {
                if let Some(block) = cache.borrow().get(table.id(), index) {
                    return Ok(block);
                }
                let Some(block) = pinned.get(&(table.id(), index)) else {
                    return Err(StoreError::BlockNotInMemory {
                        table_id: table.id().0,
                        block_index,
                    });
                };
                (cache, Arc::clone(block))
            }
        };
        if fill {
            cache
                .borrow_mut()
                .insert(table.id(), index, Arc::clone(&block));
        }
        Ok(block)
    }

    /// Decodes the entry at `self.offset` of the current block: `Ok(None)` for an entry
    /// below the start key (skipped).
    fn decode_next(&mut self, block: &Block) -> Result<Option<TableEntry>, StoreError> {
        let prev_key = self.prev_key.map(|(at, len)| &block[at..at + len]);
        let mut entries = BlockEntries::resume(&block[self.offset..], prev_key);
        let entry = match entries.next().expect("bytes remain in the block") {
            Ok(entry) => entry,
            Err(mut e) => {
                let table = self.table.borrow();
                e.offset += self.offset;
                return Err(table.corruption(table.block_offset(self.next_block - 1), e));
            }
        };
        let key_at = entry.key.as_ptr() as usize - block.as_ptr() as usize;
        self.prev_key = Some((key_at, entry.key.len()));
        self.offset += entries.position();
        if let Some(start) = &self.start {
            if entry.key < start.as_slice() {
                return Ok(None);
            }
            self.start = None;
        }
        Ok(Some(TableEntry {
            key: entry.key.to_vec(),
            seq: entry.seq,
            value: entry.value.map(<[u8]>::to_vec),
            expire_at_ms: entry.expire_at_ms,
        }))
    }

    fn next_entry(&mut self) -> Result<Option<TableEntry>, StoreError> {
        loop {
            if let Some(block) = self.current.clone() {
                if self.offset < block.len() {
                    match self.decode_next(&block)? {
                        Some(entry) => return Ok(Some(entry)),
                        None => continue,
                    }
                }
                self.current = None;
            }
            if self.next_block == self.table.borrow().block_count() {
                return Ok(None);
            }
            let block = self.block(self.next_block)?;
            self.next_block += 1;
            self.current = Some(block);
            self.offset = 0;
            self.prev_key = None;
        }
    }
}

impl<T: Borrow<Table>> Iterator for TableIter<'_, T> {
    type Item = Result<TableEntry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_entry() {
            Ok(entry) => entry.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::{SeqNo, StoreError};
    use crate::sstable::writer::SstWriter;
    use crate::sstable::TableId;

    fn write_table(dir: &std::path::Path, n: u32) -> std::path::PathBuf {
        let mut w = SstWriter::new(128, 10);
        for i in 0..n {
            let key = format!("key-{i:05}");
            let value = (i % 3 != 0).then(|| format!("value-{i}"));
            w.add(
                key.as_bytes(),
                SeqNo(u64::from(i) + 1),
                value.as_deref().map(str::as_bytes),
                None,
            );
        }
        let path = dir.join(TableId(1).file_name());
        std::fs::write(&path, w.finish()).unwrap();
        path
    }

    #[test]
    fn write_open_get_and_iterate() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_table(dir.path(), 500);
        let table = Table::open(&path, TableId(1)).unwrap();
        assert!(table.block_count() > 10);
        assert_eq!(table.footer().entry_count, 500);
        assert_eq!(table.footer().smallest_seq, SeqNo(1));
        assert_eq!(table.footer().largest_seq, SeqNo(500));
        let e = table.get(b"key-00007").unwrap().unwrap();
        assert_eq!(e.seq, SeqNo(8));
        assert_eq!(e.value.as_deref(), Some(&b"value-7"[..]));
        assert_eq!(table.get(b"key-00009").unwrap().unwrap().value, None);
        assert_eq!(table.get(b"key-00009x").unwrap(), None);
        assert_eq!(table.get(b"zzz").unwrap(), None);
        let all: Vec<TableEntry> = TableIter::new(&table).map(Result::unwrap).collect();
        assert_eq!(all.len(), 500);
        assert!(all.windows(2).all(|w| w[0].key < w[1].key));
    }

    #[test]
    fn seek_starts_at_the_first_key_not_below_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_table(dir.path(), 500);
        let table = Table::open(&path, TableId(1)).unwrap();
        for start in [
            "",
            "key-00000",
            "key-00123",
            "key-00123x",
            "key-00499",
            "zzz",
        ] {
            let got: Vec<TableEntry> = TableIter::seek(&table, start.as_bytes())
                .map(Result::unwrap)
                .collect();
            let want: Vec<TableEntry> = TableIter::new(&table)
                .map(Result::unwrap)
                .filter(|e| e.key.as_slice() >= start.as_bytes())
                .collect();
            assert_eq!(got, want, "seek to {start:?}");
        }
    }

    #[test]
    fn a_cached_seek_keeps_only_the_block_it_lands_on_and_finds_it_again() {
        use crate::block_cache::{BlockCache, BlockSource};
        use std::cell::RefCell;
        let dir = tempfile::tempdir().unwrap();
        let path = write_table(dir.path(), 500);
        let table = Table::open(&path, TableId(1)).unwrap();
        let cache = RefCell::new(BlockCache::new(1 << 20));
        let source = BlockSource::Cache(&cache);
        let walked = TableIter::seek(&table, b"key-00100")
            .with_source(source)
            .take(100)
            .count();
        assert_eq!(walked, 100);
        let after_walk = cache.borrow().stats();
        assert!(after_walk.blocking_reads > 1, "{after_walk:?}");
        let first_block = table
            .index()
            .partition_point(|e| e.last_key.as_slice() < b"key-00100".as_slice());
        assert!(
            after_walk.bytes > 0
                && after_walk.bytes <= table.read_block(first_block).unwrap().len() as u64,
            "only the seek's block is kept: {after_walk:?}"
        );
        let again: Vec<TableEntry> = TableIter::seek(&table, b"key-00100")
            .with_source(source)
            .take(2)
            .map(Result::unwrap)
            .collect();
        assert_eq!(again[0].key, b"key-00100");
        let after_seek = cache.borrow().stats();
        assert_eq!(
            after_seek.blocking_reads, after_walk.blocking_reads,
            "served from the cache"
        );
        assert_eq!(after_seek.hits, after_walk.hits + 1);
    }

    #[test]
    fn a_memory_only_iterator_names_the_block_it_lacks_and_goes_on_once_it_is_pinned() {
        use crate::block_cache::{BlockCache, BlockSource, PinnedBlocks};
        use std::cell::RefCell;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = write_table(dir.path(), 500);
        let table = Table::open(&path, TableId(1)).unwrap();
        let cache = RefCell::new(BlockCache::new(1 << 20));
        let mut pinned = PinnedBlocks::new();
        let missing = |pinned: &PinnedBlocks| {
            let source = BlockSource::Memory {
                cache: &cache,
                pinned,
            };
            let mut iter = TableIter::new(&table).with_source(source);
            let mut seen = 0;
            loop {
                match iter.next() {
                    Some(Ok(_)) => seen += 1,
                    Some(Err(StoreError::BlockNotInMemory {
                        table_id,
                        block_index,
                    })) => {
                        assert_eq!(table_id, 1);
                        return Some((seen, block_index));
                    }
                    Some(Err(e)) => panic!("unexpected {e}"),
                    None => return None,
                }
            }
        };
        assert_eq!(missing(&pinned), Some((0, 0)), "nothing is read from disk");
        pinned.insert((TableId(1), 0), Arc::new(table.read_block(0).unwrap()));
        let (seen, block) = missing(&pinned).unwrap();
        assert!(
            seen > 0 && block == 1,
            "went through block 0, then lacked block 1"
        );
        for index in 1..table.block_count() {
            pinned.insert(
                (TableId(1), index as u32),
                Arc::new(table.read_block(index).unwrap()),
            );
        }
        assert_eq!(missing(&pinned), None);
        assert_eq!(cache.borrow().stats().blocking_reads, 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// Arbitrary bytes, with or without a valid footer pointing anywhere, make open,
        /// get and iteration fail cleanly, never panic.
        #[test]
        fn arbitrary_files_never_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            fields in proptest::prelude::any::<(u64, u32, u64, u32)>(),
            small in proptest::prelude::any::<bool>(),
        ) {
            use crate::sstable::format::Footer;
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(TableId(1).file_name());
            let len = body.len() as u64;
            let clamp = |x: u64| if small && len > 0 { x % len } else { x };
            let footer = Footer {
                index_offset: clamp(fields.0),
                index_len_bytes: if small { fields.1 % 64 } else { fields.1 },
                bloom_offset: clamp(fields.2),
                bloom_len_bytes: if small { fields.3 % 64 } else { fields.3 },
                ..Footer::default()
            };
            let mut bytes = body.clone();
            bytes.extend_from_slice(&footer.encode());
            for contents in [&body, &bytes] {
                std::fs::write(&path, contents).unwrap();
                if let Ok(table) = Table::open(&path, TableId(1)) {
                    let _ = table.get(b"key");
                    let _ = TableIter::new(&table).count();
                }
            }
        }
    }

    #[test]
    fn empty_table_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_table(dir.path(), 0);
        let table = Table::open(&path, TableId(1)).unwrap();
        assert_eq!(table.get(b"a").unwrap(), None);
        assert_eq!(TableIter::new(&table).count(), 0);
    }

    #[test]
    fn flipped_byte_anywhere_is_never_a_wrong_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_table(dir.path(), 40);
        let good = std::fs::read(&path).unwrap();
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            let table = match Table::open(&path, TableId(1)) {
                Ok(t) => t,
                Err(StoreError::Corruption { .. }) => continue,
                Err(e) => panic!("unexpected {e}"),
            };
            // Every byte is under some checksum, so the flip must surface as corruption.
            let entries: Result<Vec<_>, _> = TableIter::new(&table).collect();
            assert!(
                matches!(entries, Err(StoreError::Corruption { .. })),
                "flip at {i} went unnoticed"
            );
        }
    }
}
