//! The merging iterator: a k-way merge of sorted entry streams (memtables, SSTables) that
//! yields each key once, at its newest version.
//!
//! Sources are sorted by key and hold at most one version of a key each (a memtable and a
//! table both do). A binary heap orders the heads by key, then by sequence number, highest
//! first; the first head of a key wins and the older versions of that key are skipped.
//! Memory is one entry per source, whatever the length of the range. Tombstones are yielded
//! (`value: None`): a scan hides them, a compaction keeps or drops them. A version whose
//! expiry deadline has passed at the merge's `now_ms` ([`crate::base::is_expired`]) is
//! yielded as a tombstone with its sequence number: invisible to scans, and still shadowing
//! the older versions of its key in a compaction that keeps tombstones.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::base::{is_expired, SeqNo, StoreError};
use crate::sstable::TableEntry;

/// A sorted stream of entries from one memtable or table.
pub type EntrySource<'a> = Box<dyn Iterator<Item = Result<TableEntry, StoreError>> + 'a>;

/// A source's current entry in the heap.
struct Head {
    entry: TableEntry,
    source: usize,
}

impl Head {
    fn order_key(&self) -> (&[u8], Reverse<SeqNo>) {
        (&self.entry.key, Reverse(self.entry.seq))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.order_key() == other.order_key()
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

/// Merges `sources` into one stream of the newest version of each key, in key order.
/// Yields the first error of any source and then stops.
pub struct MergeIter<'a> {
    sources: Vec<EntrySource<'a>>,
    heap: BinaryHeap<Reverse<Head>>,
    now_ms: u64,
    started: bool,
    failed: bool,
}

impl<'a> MergeIter<'a> {
    /// A merge of `sources` (each sorted by key, one version per key), expiring deadlines
    /// against `now_ms` (Unix ms; [`crate::base::unix_now_ms`] outside tests).
    pub fn new(sources: Vec<EntrySource<'a>>, now_ms: u64) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            now_ms,
            started: false,
            failed: false,
        }
    }

    /// Pulls the next entry of `source` into the heap.
    fn advance(&mut self, source: usize) -> Result<(), StoreError> {
        if let Some(item) = self.sources[source].next() {
            self.heap.push(Reverse(Head {
                entry: item?,
                source,
            }));
        }
        Ok(())
    }

    fn next_entry(&mut self) -> Result<Option<TableEntry>, StoreError> {
        if !self.started {
            self.started = true;
            for source in 0..self.sources.len() {
                self.advance(source)?;
            }
        }
        let Some(Reverse(head)) = self.heap.pop() else {
            return Ok(None);
        };
        self.advance(head.source)?;
        // Older versions of the same key sit at the top of the heap now: skip them.
        while let Some(Reverse(older)) = self.heap.peek() {
            if older.entry.key != head.entry.key {
                break;
            }
            let source = older.source;
            self.heap.pop();
            self.advance(source)?;
        }
        let mut entry = head.entry;
        if is_expired(entry.expire_at_ms, self.now_ms) {
            entry.value = None;
            entry.expire_at_ms = None;
        }
        Ok(Some(entry))
    }
}

impl Iterator for MergeIter<'_> {
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
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn source(entries: Vec<TableEntry>) -> EntrySource<'static> {
        Box::new(entries.into_iter().map(Ok))
    }

    proptest! {
        /// Against a model: the merge of random sources equals, key by key, the version
        /// with the highest sequence number, a tombstone if that version's deadline has
        /// passed (deadlines one before, at and one after the merge's clock).
        #[test]
        fn yields_the_newest_version_of_each_key_once(
            writes in proptest::collection::vec(
                (0u8..40, any::<bool>(), 0usize..5, proptest::option::of(0u64..3)),
                0..200,
            )
        ) {
            const NOW_MS: u64 = 1_000;
            let mut sources: Vec<BTreeMap<Vec<u8>, TableEntry>> = vec![BTreeMap::new(); 5];
            let mut model: BTreeMap<Vec<u8>, TableEntry> = BTreeMap::new();
            for (seq, (k, live, s, deadline)) in writes.into_iter().enumerate() {
                let expire_at_ms = deadline.filter(|_| live).map(|d| NOW_MS - 1 + d);
                let entry = TableEntry {
                    key: vec![k],
                    seq: SeqNo(seq as u64 + 1),
                    value: live.then(|| vec![k, seq as u8]),
                    expire_at_ms,
                };
                sources[s].insert(vec![k], entry.clone());
                let mut seen = entry;
                if seen.expire_at_ms.is_some_and(|d| d < NOW_MS) {
                    seen.value = None;
                    seen.expire_at_ms = None;
                }
                model.insert(vec![k], seen);
            }
            let merged: Vec<TableEntry> = MergeIter::new(
                sources.into_iter().map(|m| source(m.into_values().collect())).collect(),
                NOW_MS,
            )
            .map(Result::unwrap)
            .collect();
            prop_assert_eq!(merged, model.into_values().collect::<Vec<_>>());
        }
    }

    #[test]
    fn an_error_is_yielded_once_then_the_merge_stops() {
        let bad: EntrySource<'static> = Box::new(
            vec![Err(StoreError::Corruption {
                file: "t".into(),
                offset: 0,
                reason: "test".into(),
            })]
            .into_iter(),
        );
        let mut merge = MergeIter::new(vec![bad], 0);
        assert!(matches!(merge.next(), Some(Err(_))));
        assert!(merge.next().is_none());
    }
}
