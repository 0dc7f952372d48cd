//! Walking one level of a version in key order.
//!
//! A level 0 table may overlap any other, so a scan needs an iterator on each. The tables
//! of a deeper level are sorted and disjoint, so one iterator serves the whole level: it
//! seeks to the one table whose range can hold the start key (binary search on the
//! tables' largest keys) and opens the next table only when that one is exhausted, as
//! RocksDB's `LevelIterator` does. A seek then reads one block per level instead of one
//! per table, and holds one decoded block per level in memory.

use std::sync::Arc;

use super::TableHandle;
use crate::base::StoreError;
use crate::block_cache::BlockSource;
use crate::sstable::iter::TableIter;
use crate::sstable::TableEntry;

/// The entries of a level's tables (sorted, disjoint) in key order, from a start key.
#[derive(Debug)]
pub struct LevelIter<'a> {
    /// The tables still to walk, in key order.
    tables: &'a [Arc<TableHandle>],
    source: BlockSource<'a>,
    current: Option<TableIter<'a, Arc<TableHandle>>>,
    /// Where the first table opened starts; the later ones start at their beginning.
    start: Option<Vec<u8>>,
}

impl<'a> LevelIter<'a> {
    /// An iterator over `tables` (one level >= 1, sorted by key and disjoint) positioned
    /// before the first entry whose key is at least `start`. Opens no table yet.
    pub fn seek(tables: &'a [Arc<TableHandle>], start: &[u8]) -> Self {
        let first = tables.partition_point(|t| t.largest_key() < start);
        Self {
            tables: &tables[first..],
            source: BlockSource::Disk,
            current: None,
            start: Some(start.to_vec()),
        }
    }

    /// The same iterator, its tables taking their blocks from `source`.
    pub fn with_source(self, source: BlockSource<'a>) -> Self {
        Self { source, ..self }
    }
}

impl Iterator for LevelIter<'_> {
    type Item = Result<TableEntry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.current.as_mut().and_then(Iterator::next) {
                return Some(entry);
            }
            let (table, rest) = self.tables.split_first()?;
            self.tables = rest;
            let table = Arc::clone(table);
            let iter = match self.start.take() {
                Some(start) => TableIter::seek(table, &start),
                None => TableIter::new(table),
            };
            self.current = Some(iter.with_source(self.source));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::SeqNo;
    use crate::sstable::writer::SstWriter;
    use crate::sstable::TableId;

    /// A table of keys `key-<i>` for `i` in `range`, opened through a handle.
    fn table(dir: &std::path::Path, id: u64, range: std::ops::Range<u32>) -> Arc<TableHandle> {
        let mut writer = SstWriter::new(128, 10);
        for i in range {
            let key = format!("key-{i:05}");
            writer.add(key.as_bytes(), SeqNo(u64::from(i) + 1), Some(b"v"), None);
        }
        std::fs::write(dir.join(TableId(id).file_name()), writer.finish()).unwrap();
        TableHandle::open(dir, TableId(id)).unwrap()
    }

    fn keys(iter: LevelIter<'_>) -> Vec<String> {
        iter.map(|e| String::from_utf8(e.unwrap().key).unwrap())
            .collect()
    }

    #[test]
    fn a_level_walks_as_its_tables_chained_from_any_start() {
        let dir = tempfile::tempdir().unwrap();
        let level = vec![
            table(dir.path(), 1, 0..100),
            table(dir.path(), 2, 200..300),
            table(dir.path(), 3, 400..500),
        ];
        let all: Vec<String> = (0..100)
            .chain(200..300)
            .chain(400..500)
            .map(|i| format!("key-{i:05}"))
            .collect();
        for start in [
            "",
            "key-00050",
            "key-00099",
            "key-00150",
            "key-00300",
            "key-00450",
            "key-00499",
            "key-9",
        ] {
            let expected: Vec<String> = all
                .iter()
                .filter(|k| k.as_str() >= start)
                .cloned()
                .collect();
            assert_eq!(
                keys(LevelIter::seek(&level, start.as_bytes())),
                expected,
                "from {start:?}"
            );
        }
        assert!(keys(LevelIter::seek(&[], b"")).is_empty());
    }

    #[test]
    fn a_seek_opens_only_the_table_that_can_hold_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let level = vec![table(dir.path(), 1, 0..100), table(dir.path(), 2, 200..300)];
        let mut iter = LevelIter::seek(&level, b"key-00250");
        assert_eq!(
            iter.tables.len(),
            1,
            "the table before the start is skipped"
        );
        assert_eq!(iter.next().unwrap().unwrap().key, b"key-00250");
        assert!(iter.tables.is_empty());
    }
}
