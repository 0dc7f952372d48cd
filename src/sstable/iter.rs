//! Walking every entry of an SSTable in key order, one data block at a time.

use std::vec;

use super::block::BlockEntries;
use super::reader::Table;
use super::TableEntry;
use crate::base::StoreError;

/// Iterates over all entries of a table. Yields the first error (a failed block checksum,
/// say) and then stops.
#[derive(Debug)]
pub struct TableIter<'a> {
    table: &'a Table,
    next_block: usize,
    entries: vec::IntoIter<TableEntry>,
    failed: bool,
}

impl<'a> TableIter<'a> {
    /// An iterator positioned before the first entry of `table`.
    pub fn new(table: &'a Table) -> Self {
        Self {
            table,
            next_block: 0,
            entries: Vec::new().into_iter(),
            failed: false,
        }
    }

    fn load_block(&mut self) -> Result<(), StoreError> {
        let block_index = self.next_block;
        self.next_block += 1;
        let payload = self.table.read_block(block_index)?;
        let entries = BlockEntries::new(&payload)
            .map(|e| {
                e.map(|e| TableEntry {
                    key: e.key.to_vec(),
                    seq: e.seq,
                    value: e.value.map(<[u8]>::to_vec),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                self.table
                    .corruption(self.table.block_offset(block_index), e)
            })?;
        self.entries = entries.into_iter();
        Ok(())
    }
}

impl Iterator for TableIter<'_> {
    type Item = Result<TableEntry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(entry) = self.entries.next() {
                return Some(Ok(entry));
            }
            if self.next_block == self.table.block_count() {
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
