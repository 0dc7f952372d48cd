//! Opening an SSTable file and point lookups in it.
//!
//! Opening reads and checks the footer, the index block and the Bloom block, and keeps
//! index and filter in memory. Data blocks are read on demand with `pread` and their
//! checksum verified before any byte of them is used.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::find;
use super::bloom::Bloom;
use super::format::{decode_index, Footer, IndexEntry, FOOTER_BYTES_MAX};
use super::{TableEntry, TableId};
use crate::base::codec::{open_block, FormatError};
use crate::base::{io_error, StoreError};
use crate::block_cache::{Block, BlockCache};

/// An open SSTable.
pub struct Table {
    id: TableId,
    path: PathBuf,
    file: Arc<File>,
    footer: Footer,
    index: Vec<IndexEntry>,
    bloom: Bloom,
}

impl std::fmt::Debug for Table {
    // Summarized: index and Bloom filter are too large to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("footer", &self.footer)
            .field("blocks", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl Table {
    /// Opens table `id` at `path` and checks its footer, index and Bloom filter.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the file cannot be read, [`StoreError::Corruption`] if a
    /// check fails.
    pub fn open(path: &Path, id: TableId) -> Result<Self, StoreError> {
        let shown = path.display();
        let file = File::open(path).map_err(io_error(format!("opening SSTable {shown}")))?;
        let file_len = file
            .metadata()
            .map_err(io_error(format!("reading metadata of SSTable {shown}")))?
            .len();
        let corrupt = |offset: u64, e: FormatError| StoreError::Corruption {
            file: path.display().to_string(),
            offset: offset.saturating_add(e.offset as u64),
            reason: e.reason.to_string(),
        };
        let tail_bytes = file_len.min(FOOTER_BYTES_MAX as u64);
        let tail_offset = file_len - tail_bytes;
        let mut table = Self {
            id,
            path: path.to_path_buf(),
            file: Arc::new(file),
            footer: Footer::default(),
            index: Vec::new(),
            bloom: Bloom::build(&[], 1),
        };
        let tail = table.read(tail_offset, tail_bytes as u32)?;
        let (footer, footer_len) = Footer::decode_tail(&tail).map_err(|e| {
            let len = Footer::len_at_end(&tail).unwrap_or(tail.len());
            corrupt(file_len - len as u64, e)
        })?;
        let footer_offset = file_len - footer_len as u64;
        // Offsets come from disk: add them without overflowing.
        let ends_by = |offset: u64, len: u32, limit: u64| {
            offset
                .checked_add(u64::from(len))
                .is_some_and(|end| end <= limit)
        };
        if !ends_by(footer.index_offset, footer.index_len_bytes, footer_offset)
            || !ends_by(footer.bloom_offset, footer.bloom_len_bytes, footer_offset)
        {
            let e = FormatError {
                reason: "footer points past the end of the file",
                offset: 0,
            };
            return Err(corrupt(footer_offset, e));
        }
        let index_block = table.read(footer.index_offset, footer.index_len_bytes)?;
        let index = open_block(&index_block)
            .and_then(decode_index)
            .map_err(|e| corrupt(footer.index_offset, e))?;
        if let Some(bad) = index
            .iter()
            .find(|e| !ends_by(e.offset, e.len_bytes, footer.index_offset))
        {
            let e = FormatError {
                reason: "index entry points outside the data blocks",
                offset: 0,
            };
            return Err(corrupt(bad.offset, e));
        }
        let bloom_block = table.read(footer.bloom_offset, footer.bloom_len_bytes)?;
        let bloom = open_block(&bloom_block)
            .and_then(Bloom::decode)
            .map_err(|e| corrupt(footer.bloom_offset, e))?;
        table.footer = footer;
        table.index = index;
        table.bloom = bloom;
        Ok(table)
    }

    fn read(&self, offset: u64, len_bytes: u32) -> Result<Vec<u8>, StoreError> {
        let mut buf = vec![0; len_bytes as usize];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(io_error(format!(
                "reading {len_bytes} bytes at offset {offset} of SSTable {}",
                self.path.display()
            )))?;
        Ok(buf)
    }

    /// The table's id.
    pub fn id(&self) -> TableId {
        self.id
    }

    /// The table's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The decoded footer (entry count, sequence number range).
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// Number of data blocks.
    pub fn block_count(&self) -> usize {
        self.index.len()
    }

    /// The open file, for reads submitted through a ring (which holds it while in flight).
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Where data block `block_index` lies: its offset and its length with the checksum.
    pub fn block_extent(&self, block_index: usize) -> (u64, usize) {
        let entry = &self.index[block_index];
        (entry.offset, entry.len_bytes as usize)
    }

    /// Checks the bytes of data block `block_index` read by someone else (a ring read of
    /// [`Table::block_extent`]) and returns its payload, as [`Table::read_block`] does.
    ///
    /// # Errors
    /// [`StoreError::Corruption`] if the length or checksum is wrong.
    pub fn check_block(
        &self,
        block_index: usize,
        mut block: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let (offset, len) = self.block_extent(block_index);
        if block.len() != len {
            let e = FormatError {
                reason: "block read short",
                offset: 0,
            };
            return Err(self.corruption(offset, e));
        }
        let payload_len = open_block(&block)
            .map_err(|e| self.corruption(offset, e))?
            .len();
        block.truncate(payload_len);
        Ok(block)
    }

    /// The data block a lookup of `key` must read, or `None` when the Bloom filter or the
    /// index rules the table out.
    pub fn block_for(&self, key: &[u8]) -> Option<usize> {
        if !self.bloom.may_contain(key) {
            return None;
        }
        self.index_block_for(key)
    }

    /// The data block whose key range may hold `key`, by the index alone.
    fn index_block_for(&self, key: &[u8]) -> Option<usize> {
        let block_index = self.index.partition_point(|e| e.last_key.as_slice() < key);
        (block_index < self.index.len()).then_some(block_index)
    }

    /// Reads data block `block_index`, verifies its checksum, and returns its payload.
    ///
    /// # Errors
    /// [`StoreError::Io`] on a read error, [`StoreError::Corruption`] (naming the block's
    /// offset) if the checksum fails.
    pub fn read_block(&self, block_index: usize) -> Result<Vec<u8>, StoreError> {
        let entry = &self.index[block_index];
        let mut block = self.read(entry.offset, entry.len_bytes)?;
        let payload_len = open_block(&block)
            .map_err(|e| self.corruption(entry.offset, e))?
            .len();
        block.truncate(payload_len);
        Ok(block)
    }

    /// Builds the error for a format failure `e` in the block at `block_offset`.
    pub fn corruption(&self, block_offset: u64, e: FormatError) -> StoreError {
        StoreError::Corruption {
            file: self.path.display().to_string(),
            offset: block_offset.saturating_add(e.offset as u64),
            reason: e.reason.to_string(),
        }
    }

    /// Offset of data block `block_index` in the file.
    pub fn block_offset(&self, block_index: usize) -> u64 {
        self.index[block_index].offset
    }

    /// The decoded index block: one entry per data block, in file order, each with the
    /// block's last key, offset and length. Read-only; used by inspection tools
    /// (`tskv-tool`) to cross-check blocks against the index.
    pub fn index(&self) -> &[IndexEntry] {
        &self.index
    }

    /// The version of `key` in this table, if any (`value` `None` = tombstone).
    ///
    /// # Errors
    /// As [`Table::read_block`], or corruption inside the block.
    pub fn get(&self, key: &[u8]) -> Result<Option<TableEntry>, StoreError> {
        self.get_with(key, |index| self.read_block(index).map(Arc::new))
    }

    /// As [`Table::get`], with the data block taken from `cache` or read and put there.
    ///
    /// # Errors
    /// As [`Table::get`].
    pub fn get_cached(
        &self,
        key: &[u8],
        cache: &RefCell<BlockCache>,
    ) -> Result<Option<TableEntry>, StoreError> {
        if !self.bloom.may_contain(key) {
            cache.borrow().note_bloom_negative();
            return Ok(None);
        }
        self.get_in_index(key, |index| {
            let index_u32 = u32::try_from(index).expect("fewer than 2^32 blocks");
            if let Some(block) = cache.borrow().get(self.id, index_u32) {
                return Ok(block);
            }
            let block = Arc::new(self.read_block(index)?);
            cache.borrow().note_blocking_read();
            cache
                .borrow_mut()
                .insert(self.id, index_u32, Arc::clone(&block));
            Ok(block)
        })
    }

    /// As [`Table::get`], with data block `index` taken from `load` (a caller's pinned
    /// blocks, cache or read) once the Bloom filter lets `key` through.
    ///
    /// # Errors
    /// What `load` returns, or corruption inside the block.
    pub fn get_with(
        &self,
        key: &[u8],
        load: impl FnOnce(usize) -> Result<Block, StoreError>,
    ) -> Result<Option<TableEntry>, StoreError> {
        if !self.bloom.may_contain(key) {
            return Ok(None);
        }
        self.get_in_index(key, load)
    }

    /// The lookup after the Bloom filter let `key` through.
    fn get_in_index(
        &self,
        key: &[u8],
        load: impl FnOnce(usize) -> Result<Block, StoreError>,
    ) -> Result<Option<TableEntry>, StoreError> {
        let Some(block_index) = self.index_block_for(key) else {
            return Ok(None);
        };
        let payload = load(block_index)?;
        let found =
            find(&payload, key).map_err(|e| self.corruption(self.index[block_index].offset, e))?;
        Ok(found.map(|e| TableEntry {
            key: e.key.to_vec(),
            seq: e.seq,
            value: e.value.map(<[u8]>::to_vec),
            expire_at_ms: e.expire_at_ms,
        }))
    }
}
