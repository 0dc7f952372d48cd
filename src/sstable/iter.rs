//! Walking every entry of an SSTable in key order, one data block at a time.

use std::borrow::Borrow;
use std::vec;

use super::block::BlockEntries;
use super::reader::Table;
use super::TableEntry;
use crate::base::StoreError;

/// Iterates over the entries of a table in key order, from its first key or from a start
/// key. Yields the first error (a failed block checksum, say) and then stops.
///
/// `T` is how the table is held: `&Table` for a borrowed walk, or an owning handle such as
/// `Arc<TableHandle>` for an iterator that keeps its table (and file) alive by itself.
#[derive(Debug)]
pub struct TableIter<T> {
    table: T,
    next_block: usize,
    entries: vec::IntoIter<TableEntry>,
    /// Entries below this key are skipped (only the first block read can hold any).
    start: Option<Vec<u8>>,
    failed: bool,
}

impl<T: Borrow<Table>> TableIter<T> {
    /// An iterator positioned before the first entry of `table`.
    pub fn new(table: T) -> Self {
        Self {
            table,
            next_block: 0,
            entries: Vec::new().into_iter(),
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
            next_block,
            entries: Vec::new().into_iter(),
            start: Some(start.to_vec()),
            failed: false,
        }
    }

    fn load_block(&mut self) -> Result<(), StoreError> {
        let table = self.table.borrow();
        let block_index = self.next_block;
        self.next_block += 1;
        let payload = table.read_block(block_index)?;
        let start = self.start.take();
        let entries = BlockEntries::new(&payload)
            .filter(|e| match (e, &start) {
                (Ok(e), Some(start)) => e.key >= start.as_slice(),
                _ => true,
            })
            .map(|e| {
                e.map(|e| TableEntry {
                    key: e.key.to_vec(),
                    seq: e.seq,
                    value: e.value.map(<[u8]>::to_vec),
                    expire_at_ms: e.expire_at_ms,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| table.corruption(table.block_offset(block_index), e))?;
        self.entries = entries.into_iter();
        Ok(())
    }
}

impl<T: Borrow<Table>> Iterator for TableIter<T> {
    type Item = Result<TableEntry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(entry) = self.entries.next() {
                return Some(Ok(entry));
            }
            if self.next_block == self.table.borrow().block_count() {
                return None;
            }
            if let Err(e) = self.load_block() {
                self.failed = true;
                return Some(Err(e));
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
