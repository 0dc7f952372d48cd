//! Deletion marks: how `TS.DEL` removes samples from a sealed chunk without rewriting the
//! chunk on the shard's loop, how readers honour them, and how compaction applies them.
//!
//! ```text
//!   FF 02 id:BE8 K:BE8                      → chunk      (sequence number c)
//!   FF 02 id:BE8 K:BE8 from:BE8 to:BE8      → ""         (sequence number m)
//!   FF 02 id:BE8 K':BE8                     → next chunk
//! ```
//!
//! * **Writing.** `TS.DEL` puts a tombstone on a chunk it wholly removes, and a mark on a
//!   chunk it cuts (samples on both sides of the range, or of it and of older marks). A
//!   mark's key extends its chunk's key, so it sorts right after the chunk and before the
//!   next one: every walk over the chunks meets a chunk's marks next to it.
//! * **Which version a mark cuts.** A mark applies to its chunk's versions *older* than
//!   itself (`m > c`). A seal that later rewrites the chunk (merging new samples, which may
//!   fall inside the deleted range again) writes a newer version, which the mark no longer
//!   touches, so nothing ever has to delete a mark, and a chunk re-created at the same key
//!   after a tombstone is not cut by the old one's marks.
//! * **Reading.** [`ChunkWalk`] walks a series' chunks with their marks; a
//!   [`StoredChunk`]'s samples are the chunk's minus the ranges of the marks that apply. A
//!   chunk's key stays an upper bound of its last sample: the first chunk keyed at or after
//!   `t` is still the only one that may hold `t`.
//! * **Compaction** ([`MarkFilter`]). When a merge holds a chunk's newest version and
//!   marks newer than it, the output is the chunk without the marked samples (same key,
//!   same sequence number), or a tombstone if none is left, and the marks are dropped;
//!   marks older than the chunk are dropped too. Dropping a mark may uncover an older copy
//!   of the same key in a level below: an identical range (idempotent) or a mark older than
//!   the chunk (which does not apply). Keeping the chunk's own sequence number matters: a
//!   mark of the same chunk still in a level above this merge is newer, so it still
//!   applies. Marks whose chunk is not in the merge pass through unchanged, and a chunk that
//!   does not decode is passed through with its marks (readers report the damage).
//!   Nothing deletes a mark on its own (a compaction that applies one could not see a
//!   newer tombstone of it in a level above): only the deletion of a whole series does,
//!   together with a newer tombstone of the chunk, which hides the chunk anyway.
//!
//! So `TS.DEL` costs the shard's loop a read of the chunks at the range's two ends (to
//! count what it removes) and a few small writes, whatever the range; the rewrite happens
//! on the compaction core, when the chunk is compacted anyway.

use std::iter::Peekable;

use crate::base::SeqNo;
use crate::base::StoreError;
use crate::compaction::filter::CompactionFilter;
use crate::sstable::TableEntry;

use super::chunk::{self, Sample};
use super::keys::{self, MarkKey};
use super::series::SeriesError;

/// A live sealed chunk read from the store, with the ranges its marks delete.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredChunk {
    /// Its key ([`keys::chunk_key`]).
    pub key: Vec<u8>,
    /// The timestamp in its key (ms): at or after its last sample.
    pub last_ts_ms: u64,
    /// The sequence number of its version.
    pub seq: SeqNo,
    /// The encoded chunk.
    pub value: Vec<u8>,
    /// Deleted `[from_ms, to_ms]` ranges (inclusive) of the marks that apply to it.
    pub deleted: Vec<(u64, u64)>,
}

impl StoredChunk {
    /// Whether a mark deletes the sample at `ts_ms`.
    pub fn is_deleted(&self, ts_ms: u64) -> bool {
        is_deleted(&self.deleted, ts_ms)
    }

    /// Drops the deleted samples from `samples` (this chunk's, decoded).
    pub fn retain_live(&self, samples: &mut Vec<Sample>) {
        if !self.deleted.is_empty() {
            samples.retain(|s| !self.is_deleted(s.ts_ms));
        }
    }

    /// Its samples without the deleted ones, in time order (possibly none).
    ///
    /// # Errors
    /// A damaged chunk.
    pub fn samples(&self) -> Result<Vec<Sample>, SeriesError> {
        let mut samples = chunk::decode(&self.value)?;
        self.retain_live(&mut samples);
        Ok(samples)
    }
}

/// Whether one of `deleted`'s inclusive ranges holds `ts_ms`.
pub fn is_deleted(deleted: &[(u64, u64)], ts_ms: u64) -> bool {
    deleted
        .iter()
        .any(|&(from_ms, to_ms)| (from_ms..=to_ms).contains(&ts_ms))
}

/// Walks the live chunks of one series, each with its marks, over a key-ordered stream
/// of store entries that starts at one of the series' chunk keys. It ends where
/// [`chunk::walk_ends`] says (past the series' chunks, or at a chunk whose first sample
/// is after `to_ms`), after the first error, or when the entries end.
pub struct ChunkWalk<I: Iterator<Item = Result<TableEntry, StoreError>>> {
    entries: Peekable<I>,
    series_id: u64,
    to_ms: u64,
    done: bool,
}

impl<I: Iterator<Item = Result<TableEntry, StoreError>>> ChunkWalk<I> {
    /// A walk of series `series_id`'s chunks that may hold samples up to `to_ms`.
    pub fn new(entries: I, series_id: u64, to_ms: u64) -> Self {
        Self {
            entries: entries.peekable(),
            series_id,
            to_ms,
            done: false,
        }
    }

    fn next_chunk(&mut self) -> Result<Option<StoredChunk>, SeriesError> {
        loop {
            let Some(entry) = self.entries.next().transpose()? else {
                return Ok(None);
            };
            if chunk::walk_ends(
                &entry.key,
                entry.value.as_deref(),
                self.series_id,
                self.to_ms,
            )? {
                return Ok(None);
            }
            let Some(last_ts_ms) = keys::chunk_key_ts(&entry.key, self.series_id) else {
                continue; // a mark whose chunk is gone
            };
            let mut deleted = Vec::new();
            while let Some(Ok(next)) = self.entries.peek() {
                let Some(mark) = keys::parse_mark_key(&next.key) else {
                    break;
                };
                if mark.series_id != self.series_id || mark.chunk_last_ts_ms != last_ts_ms {
                    break;
                }
                if next.value.is_some() && next.seq > entry.seq {
                    deleted.push((mark.from_ms, mark.to_ms));
                }
                self.entries.next();
            }
            let Some(value) = entry.value else { continue };
            return Ok(Some(StoredChunk {
                key: entry.key,
                last_ts_ms,
                seq: entry.seq,
                value,
                deleted,
            }));
        }
    }
}

impl<I: Iterator<Item = Result<TableEntry, StoreError>>> Iterator for ChunkWalk<I> {
    type Item = Result<StoredChunk, SeriesError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_chunk().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// The compaction filter that applies deletion marks (see the module doc): install it
/// as [`crate::config::StoreOptions::compaction_filter`].
pub fn compaction_filter() -> Box<dyn CompactionFilter> {
    Box::new(MarkFilter::default())
}

/// A chunk entry held back until the entries after it show whether marks cut it.
#[derive(Debug)]
struct Held {
    entry: TableEntry,
    series_id: u64,
    last_ts_ms: u64,
    /// Its samples once a mark applied (decoded on the first).
    samples: Option<Vec<Sample>>,
    /// Entries that follow it in key order and pass through (marks that do not apply).
    after: Vec<TableEntry>,
    /// It did not decode: it and its marks pass through.
    damaged: bool,
}

/// Applies deletion marks to the newest version of their chunk in a compaction's merged
/// stream, as the module doc says.
#[derive(Debug, Default)]
pub struct MarkFilter {
    held: Option<Held>,
}

impl MarkFilter {
    /// Takes a mark that follows the held chunk: applies it, drops it or lets it pass.
    fn mark(held: &mut Held, mark: MarkKey, entry: TableEntry) {
        let applies = entry.value.is_some() && entry.seq > held.entry.seq;
        if entry.seq < held.entry.seq {
            return; // older than the chunk's newest version: cuts nothing left
        }
        if !applies || held.entry.value.is_none() || held.damaged {
            held.after.push(entry);
            return;
        }
        if held.samples.is_none() {
            let value = held.entry.value.as_deref().expect("a live chunk");
            match chunk::decode(value) {
                Ok(samples) => held.samples = Some(samples),
                Err(_) => {
                    held.damaged = true;
                    held.after.push(entry);
                    return;
                }
            }
        }
        let samples = held.samples.as_mut().expect("decoded above");
        samples.retain(|s| !(mark.from_ms..=mark.to_ms).contains(&s.ts_ms));
    }

    /// Writes the held chunk (cut by the marks that applied) and what passed after it.
    fn release(held: Held, out: &mut Vec<TableEntry>) {
        let mut entry = held.entry;
        if let (Some(samples), false) = (held.samples, held.damaged) {
            let value = entry.value.as_deref().expect("a live chunk");
            entry.value = match chunk::header(value) {
                Ok(_) if samples.is_empty() => None,
                Ok(header) => Some(chunk::encode(&samples, header.encoding)),
                Err(_) => entry.value,
            };
        }
        out.push(entry);
        out.extend(held.after);
    }
}

impl CompactionFilter for MarkFilter {
    fn push(&mut self, entry: TableEntry, out: &mut Vec<TableEntry>) {
        if let Some(mark) = keys::parse_mark_key(&entry.key) {
            if let Some(held) = self.held.as_mut() {
                if held.series_id == mark.series_id && held.last_ts_ms == mark.chunk_last_ts_ms {
                    Self::mark(held, mark, entry);
                    return;
                }
            }
        }
        if let Some(held) = self.held.take() {
            Self::release(held, out);
        }
        match keys::parse_chunk_key(&entry.key) {
            Some((series_id, last_ts_ms)) => {
                self.held = Some(Held {
                    entry,
                    series_id,
                    last_ts_ms,
                    samples: None,
                    after: Vec::new(),
                    damaged: false,
                })
            }
            None => out.push(entry),
        }
    }

    fn finish(&mut self, out: &mut Vec<TableEntry>) {
        if let Some(held) = self.held.take() {
            Self::release(held, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::compaction::merge::MergeIter;
    use crate::timeseries::chunk::ChunkEncoding;

    const ID: u64 = 9;

    fn samples(ts: &[u64]) -> Vec<Sample> {
        ts.iter()
            .map(|&ts_ms| Sample {
                ts_ms,
                value: ts_ms as f64 / 4.0,
            })
            .collect()
    }

    fn chunk_entry(samples: &[Sample], seq: u64) -> TableEntry {
        let last = samples.last().expect("a sample").ts_ms;
        TableEntry {
            key: keys::chunk_key(ID, last).to_vec(),
            seq: SeqNo(seq),
            value: Some(chunk::encode(samples, ChunkEncoding::Gorilla)),
            expire_at_ms: None,
        }
    }

    fn mark_entry(last_ts_ms: u64, from_ms: u64, to_ms: u64, seq: u64, live: bool) -> TableEntry {
        TableEntry {
            key: keys::mark_key(ID, last_ts_ms, from_ms, to_ms).to_vec(),
            seq: SeqNo(seq),
            value: live.then(Vec::new),
            expire_at_ms: None,
        }
    }

    /// The samples a reader sees in `entries` (key order, one version per key).
    fn read(entries: Vec<TableEntry>) -> Vec<Sample> {
        let mut out = Vec::new();
        for chunk in ChunkWalk::new(entries.into_iter().map(Ok), ID, u64::MAX) {
            out.extend(chunk.unwrap().samples().unwrap());
        }
        out
    }

    fn filter(entries: Vec<TableEntry>) -> Vec<TableEntry> {
        let mut filter = MarkFilter::default();
        let mut out = Vec::new();
        for entry in entries {
            filter.push(entry, &mut out);
        }
        filter.finish(&mut out);
        out
    }

    #[test]
    fn a_mark_cuts_only_the_chunk_version_older_than_itself() {
        let chunk = chunk_entry(&samples(&[1, 2, 3, 4, 5]), 10);
        let newer = mark_entry(5, 2, 3, 11, true);
        let older = mark_entry(5, 4, 4, 9, true);
        let seen = read(vec![chunk.clone(), newer.clone(), older.clone()]);
        assert_eq!(seen, samples(&[1, 4, 5]));
        // Compaction writes what readers saw, keeps the key and sequence number, and
        // drops both marks.
        let out = filter(vec![chunk.clone(), newer, older]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].key.as_slice(), out[0].seq),
            (chunk.key.as_slice(), SeqNo(10))
        );
        assert_eq!(read(out), samples(&[1, 4, 5]));
    }

    #[test]
    fn compaction_turns_an_emptied_chunk_into_a_tombstone_and_passes_strangers() {
        let chunk = chunk_entry(&samples(&[7, 8]), 3);
        let orphan = mark_entry(6, 1, 2, 4, true);
        let other = TableEntry {
            key: keys::meta_key(b"k"),
            seq: SeqNo(1),
            value: Some(b"m".to_vec()),
            expire_at_ms: None,
        };
        let all = mark_entry(8, 7, 8, 5, true);
        let out = filter(vec![other.clone(), orphan.clone(), chunk.clone(), all]);
        assert_eq!(out[0], other);
        assert_eq!(out[1], orphan);
        assert_eq!(out[2].key, chunk.key);
        assert_eq!((out[2].value.as_ref(), out[2].seq), (None, SeqNo(3)));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn a_damaged_chunk_passes_through_with_its_marks() {
        let mut chunk = chunk_entry(&samples(&[1, 2, 3]), 3);
        chunk.value.as_mut().unwrap()[5] ^= 0xFF;
        let mark = mark_entry(3, 2, 2, 4, true);
        assert_eq!(filter(vec![chunk.clone(), mark.clone()]), vec![chunk, mark]);
    }

    proptest! {
        /// Whatever subset of a chunk's marks one compaction sees (the others staying in a
        /// level above, merged on read), readers see the same samples before and after it.
        /// Marks are live: nothing deletes a mark but the deletion of its whole series,
        /// whose newer tombstone of the chunk hides it in every case.
        #[test]
        fn compaction_preserves_what_readers_see(
            ts in proptest::collection::btree_set(0u64..60, 1..40),
            marks in proptest::collection::vec((0u64..60, 0u64..8, 0u64..30, Just(true), any::<bool>()), 0..8),
        ) {
            let ts: Vec<u64> = ts.into_iter().collect();
            let chunk = chunk_entry(&samples(&ts), 20);
            let last = *ts.last().unwrap();
            let mut in_merge = std::collections::BTreeMap::new();
            let mut above = std::collections::BTreeMap::new();
            for (i, (from, len, seq, live, merged)) in marks.into_iter().enumerate() {
                // Sequence numbers around the chunk's, all distinct.
                let entry = mark_entry(last, from, from + len, 5 + seq * 8 + i as u64 % 8, live);
                let side = if merged { &mut in_merge } else { &mut above };
                let newer = side.get(&entry.key).is_none_or(|e: &TableEntry| e.seq < entry.seq);
                if newer {
                    side.insert(entry.key.clone(), entry);
                }
            }
            let newest = |sources: Vec<Vec<TableEntry>>| -> Vec<TableEntry> {
                let sources = sources.into_iter().map(|s| Box::new(s.into_iter().map(Ok)) as _).collect();
                MergeIter::new(sources, 0).map(Result::unwrap).collect()
            };
            let mut merged = vec![chunk];
            merged.extend(in_merge.into_values());
            let above: Vec<TableEntry> = above.into_values().collect();
            let before = read(newest(vec![merged.clone(), above.clone()]));
            let after = read(newest(vec![filter(merged), above]));
            prop_assert_eq!(before, after);
        }
    }
}
