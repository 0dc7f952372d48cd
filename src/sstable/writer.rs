//! Encoding a whole SSTable into one buffer, from entries given in key order.

use super::block::BlockBuilder;
use super::bloom::{hash_key, Bloom};
use super::format::{encode_index, Footer, IndexEntry, FORMAT_VERSION};
use crate::base::codec::seal_block;
use crate::base::SeqNo;

/// Builds an SSTable in memory; [`SstWriter::finish`] returns the file's bytes.
#[derive(Debug)]
pub struct SstWriter {
    block_bytes: usize,
    bloom_bits_per_key: usize,
    out: Vec<u8>,
    block: BlockBuilder,
    last_key: Option<Vec<u8>>,
    index: Vec<IndexEntry>,
    key_hashes: Vec<u64>,
    entry_count: u64,
    smallest_seq: Option<SeqNo>,
    largest_seq: SeqNo,
    first_deadline_ms: Option<u64>,
}

impl SstWriter {
    /// A writer cutting data blocks at about `block_bytes` and building a Bloom filter of
    /// `bloom_bits_per_key` bits per key.
    pub fn new(block_bytes: usize, bloom_bits_per_key: usize) -> Self {
        Self {
            block_bytes: block_bytes.max(1),
            bloom_bits_per_key,
            out: Vec::new(),
            block: BlockBuilder::new(),
            last_key: None,
            index: Vec::new(),
            key_hashes: Vec::new(),
            entry_count: 0,
            smallest_seq: None,
            largest_seq: SeqNo(0),
            first_deadline_ms: None,
        }
    }

    /// Bytes encoded so far (data blocks written plus the open block), a lower bound of the
    /// file size that compaction uses to cut output tables.
    pub fn size_bytes(&self) -> usize {
        self.out.len() + self.block.size_bytes()
    }

    /// Entries added so far.
    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    /// Adds an entry (`value` `None` = tombstone; `expire_at_ms` the value's deadline).
    ///
    /// # Panics
    /// If `key` is not greater than the previous key: entries must come sorted.
    pub fn add(&mut self, key: &[u8], seq: SeqNo, value: Option<&[u8]>, expire_at_ms: Option<u64>) {
        if let Some(last) = &self.last_key {
            assert!(last.as_slice() < key, "SSTable keys must be added in order");
        }
        self.block.add(key, seq, value, expire_at_ms);
        if let Some(deadline) = expire_at_ms {
            self.first_deadline_ms =
                Some(self.first_deadline_ms.map_or(deadline, |d| d.min(deadline)));
        }
        // The buffer is reused: a fresh `Vec` per entry was a malloc and a free, about a
        // fifth of an entry's encoding (callgrind, a memtable flush of 16-byte keys).
        let last_key = self.last_key.get_or_insert_with(Vec::new);
        last_key.clear();
        last_key.extend_from_slice(key);
        self.key_hashes.push(hash_key(key));
        self.entry_count += 1;
        self.smallest_seq = Some(self.smallest_seq.map_or(seq, |s| s.min(seq)));
        self.largest_seq = self.largest_seq.max(seq);
        if self.block.size_bytes() >= self.block_bytes {
            self.finish_block();
        }
    }

    fn finish_block(&mut self) {
        if self.block.is_empty() {
            return;
        }
        let offset = self.out.len();
        self.block.finish_into(&mut self.out);
        let len_bytes = u32::try_from(self.out.len() - offset).expect("block longer than 4 GiB");
        self.index.push(IndexEntry {
            last_key: self.last_key.clone().expect("a block has a last key"),
            offset: offset as u64,
            len_bytes,
        });
    }

    /// Writes the last data block, the index and Bloom blocks and the footer, and returns
    /// the table's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.finish_block();
        let index_offset = self.out.len();
        encode_index(&mut self.out, &self.index);
        seal_block(&mut self.out, index_offset);
        let bloom_offset = self.out.len();
        Bloom::build(&self.key_hashes, self.bloom_bits_per_key).encode(&mut self.out);
        seal_block(&mut self.out, bloom_offset);
        let end = self.out.len();
        let footer = Footer {
            index_offset: index_offset as u64,
            index_len_bytes: u32::try_from(bloom_offset - index_offset).expect("index > 4 GiB"),
            bloom_offset: bloom_offset as u64,
            bloom_len_bytes: u32::try_from(end - bloom_offset).expect("Bloom > 4 GiB"),
            entry_count: self.entry_count,
            smallest_seq: self.smallest_seq.unwrap_or_default(),
            largest_seq: self.largest_seq,
            first_deadline_ms: self.first_deadline_ms,
            format_version: FORMAT_VERSION,
        };
        self.out.extend_from_slice(&footer.encode());
        self.out
    }
}
