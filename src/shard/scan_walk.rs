//! A walk over a shard's keys in key order that can stop where a block is not in memory
//! and resume there later: the core of `SCAN`, `KEYS` and `RANDOMKEY` on the shard's loop.
//!
//! A walk runs from memory only (the block cache and the blocks pinned for its request).
//! When the merged scan needs a block that is in neither, the walk keeps what it found,
//! notes the first key it has not examined, and names the blocks to read: the missing one
//! and a few after it in the same table ([`SCAN_READAHEAD_BLOCKS`]). The shard reads them
//! through its ring while it serves other connections, then advances the walk again from
//! that key; every scan resumes from a key anyway, so nothing else is saved. A walk that
//! resumes finds every block that was missing in its pinned set, so each round examines
//! at least one more entry or pins one more block: it always ends.
//!
//! What a walk sees: every key present from its start to its end, exactly once (it moves
//! forward in key order); a key written or deleted meanwhile may or may not be seen, as
//! Redis says of `SCAN`. A walk runs over the live store, or over a frozen
//! [`Snapshot`] (a streamed `KEYS` reply, [`super::keys_cursor`]), which sees exactly the
//! same keys however often it is walked: [`WalkSource`] is what a walk reads.

use std::cell::RefCell;

use crate::base::StoreError;
use crate::block_cache::{BlockCache, BlockSource, PinnedBlocks};
use crate::compaction::merge::MergeIter;
use crate::glob::glob_match;
use crate::store::{BlockFetch, Miss, ShardStore, Snapshot};
use crate::timeseries::keys::{self, KeyClass};

/// Blocks read after the missing one, in the same table, when a walk misses: a walk goes
/// on in key order, so the next blocks are wanted next, and one ring round trip brings
/// them all (4 blocks of 4 KiB: a `SCAN` step of the default `COUNT` 10 rarely needs more).
pub const SCAN_READAHEAD_BLOCKS: usize = 4;

/// What a walk reads: the live store, or a snapshot of it with the store's block cache.
pub trait WalkSource {
    /// A scan from `start`: from memory only (the cache and `pinned`) when `pinned` is
    /// given, else reading missing blocks with a blocking `pread`.
    fn scan<'a>(&'a self, start: &[u8], pinned: Option<&'a PinnedBlocks>) -> MergeIter<'a>;
    /// The blocks to read after a scan from memory missed ([`ShardStore::blocks_after_miss`]).
    fn blocks_after_miss(&self, miss: Miss, pinned: &PinnedBlocks, out: &mut Vec<BlockFetch>);
    /// The blocks a lookup of `key` would read ([`ShardStore::blocks_to_fetch`]).
    fn blocks_to_fetch(&self, key: &[u8], out: &mut Vec<BlockFetch>);
    /// Whether `key` holds a live value (a string shadowing the series of its name).
    ///
    /// # Errors
    /// A failed read.
    fn is_live(&self, key: &[u8]) -> Result<bool, StoreError>;
}

impl WalkSource for ShardStore {
    fn scan<'a>(&'a self, start: &[u8], pinned: Option<&'a PinnedBlocks>) -> MergeIter<'a> {
        match pinned {
            Some(pinned) => self.scan_in_memory(start, pinned),
            None => self.scan_from(start),
        }
    }

    fn blocks_after_miss(&self, miss: Miss, pinned: &PinnedBlocks, out: &mut Vec<BlockFetch>) {
        let (table_id, block_index) = (miss.table_id, miss.block_index);
        ShardStore::blocks_after_miss(
            self,
            table_id,
            block_index,
            miss.readahead_blocks,
            pinned,
            out,
        );
    }

    fn blocks_to_fetch(&self, key: &[u8], out: &mut Vec<BlockFetch>) {
        ShardStore::blocks_to_fetch(self, key, out);
    }

    fn is_live(&self, key: &[u8]) -> Result<bool, StoreError> {
        crate::timeseries::series::string_exists(self, key)
    }
}

/// A snapshot walked on the shard's loop, through the block cache of the store that took
/// it (table ids are per store).
#[derive(Clone, Copy, Debug)]
pub struct SnapshotSource<'a> {
    /// The frozen view.
    pub snapshot: &'a Snapshot,
    /// The shard's block cache.
    pub cache: &'a RefCell<BlockCache>,
}

impl WalkSource for SnapshotSource<'_> {
    fn scan<'a>(&'a self, start: &[u8], pinned: Option<&'a PinnedBlocks>) -> MergeIter<'a> {
        let source = match pinned {
            Some(pinned) => BlockSource::Memory {
                cache: self.cache,
                pinned,
            },
            None => BlockSource::Cache(self.cache),
        };
        self.snapshot.scan_from(start, source)
    }

    fn blocks_after_miss(&self, miss: Miss, pinned: &PinnedBlocks, out: &mut Vec<BlockFetch>) {
        self.snapshot
            .blocks_after_miss(miss, self.cache, pinned, out);
    }

    fn blocks_to_fetch(&self, key: &[u8], out: &mut Vec<BlockFetch>) {
        self.snapshot.blocks_to_fetch(key, self.cache, out);
    }

    fn is_live(&self, key: &[u8]) -> Result<bool, StoreError> {
        self.snapshot.is_live_cached(key, Some(self.cache))
    }
}

/// The user key an entry shows as, with its type name, or `None` for an entry that is not
/// a live user key (a tombstone, a chunk or sample, a series shadowed by a string).
pub(super) fn user_key<'e>(
    source: &impl WalkSource,
    key: &'e [u8],
    live: bool,
) -> Option<(&'e [u8], &'static str)> {
    if !live {
        return None;
    }
    match keys::classify(key) {
        KeyClass::String => Some((key, "string")),
        KeyClass::Series(user) => {
            // A string of the same name shadows the series; it is listed as the string.
            let shadowed = source.is_live(user).unwrap_or(false);
            (!shadowed).then_some((user, "TSDB-TYPE"))
        }
        KeyClass::Internal => None,
    }
}

/// Where a walk ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// Every key of the shard was examined.
    Exhausted,
    /// The entry limit or the kept bytes' limit was reached; this key is the next to
    /// examine.
    At(Vec<u8>),
    /// The first matching key was found (`first_only`).
    Found,
    /// A read failed: the error's text.
    Failed(String),
}

/// What keys a walk keeps.
#[derive(Clone, Debug, Default)]
pub struct KeyFilter {
    /// `MATCH` pattern.
    pub pattern: Option<Vec<u8>>,
    /// `TYPE`: only keys of this type (`string`, `TSDB-TYPE`).
    pub type_name: Option<Vec<u8>>,
}

impl KeyFilter {
    /// Whether a walk with this filter looks at a store entry of key `key` at all: only
    /// user keys (strings and series) whose name the pattern matches, whatever their type
    /// (a string shadowing a series is looked at). What a snapshot for it must copy.
    pub fn may_want(&self, key: &[u8]) -> bool {
        let user = match keys::classify(key) {
            KeyClass::String => key,
            KeyClass::Series(user) => user,
            KeyClass::Internal => return false,
        };
        self.pattern.as_deref().is_none_or(|p| glob_match(p, user))
    }

    fn wants(&self, user: &[u8], type_name: &str) -> bool {
        self.type_name
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case(type_name.as_bytes()))
            && self.pattern.as_deref().is_none_or(|p| glob_match(p, user))
    }
}

/// The blocks a walk that stopped needs before it can go on.
#[derive(Debug, Default)]
pub struct WalkNeeds {
    /// Blocks of the merged scan: pinned for the walk's request.
    pub scan_blocks: Vec<BlockFetch>,
    /// Blocks of a point lookup (whether a string shadows a series): put in the cache.
    pub point_blocks: Vec<BlockFetch>,
}

impl WalkNeeds {
    /// Nothing to read.
    pub fn is_empty(&self) -> bool {
        self.scan_blocks.is_empty() && self.point_blocks.is_empty()
    }
}

/// One walk's progress.
#[derive(Debug)]
pub struct Walk {
    /// The first key not examined yet.
    next: Vec<u8>,
    examined: usize,
    /// The most entries to examine (`SCAN`'s `COUNT`; `usize::MAX` for `KEYS`).
    limit: usize,
    /// Stop at the first live user key (`RANDOMKEY`).
    first_only: bool,
    /// At the end with nothing found, go on from the first key once (`RANDOMKEY`).
    wrap: bool,
    filter: KeyFilter,
    /// Stop once the keys kept hold this many bytes (`usize::MAX`: no limit).
    kept_bytes_max: usize,
    kept_bytes: usize,
    /// Count the matching keys without keeping them.
    count_only: bool,
    /// Most entries one [`Walk::advance_in_memory`] examines before it yields.
    round_entries_max: usize,
    round_examined: usize,
    yielded: bool,
    /// The matching user keys found so far (kept or not).
    pub matched: u64,
    /// The matching user keys kept, in key order.
    pub keys: Vec<Vec<u8>>,
    /// `None` while the walk goes on.
    pub end: Option<WalkEnd>,
}

impl Walk {
    /// A walk from `start` examining at most `limit` entries, keeping the keys `filter`
    /// lets through.
    pub fn new(start: Vec<u8>, limit: usize, filter: KeyFilter) -> Self {
        Self {
            next: start,
            examined: 0,
            limit,
            first_only: false,
            wrap: false,
            filter,
            kept_bytes_max: usize::MAX,
            kept_bytes: 0,
            count_only: false,
            round_entries_max: usize::MAX,
            round_examined: 0,
            yielded: false,
            matched: 0,
            keys: Vec::new(),
            end: None,
        }
    }

    /// A walk from `start` that stops once the keys it kept hold `kept_bytes_max` bytes
    /// (or more: the last key is kept whole) or it examined `limit` entries, whichever
    /// comes first.
    pub fn batch(start: Vec<u8>, limit: usize, kept_bytes_max: usize, filter: KeyFilter) -> Self {
        Self {
            kept_bytes_max,
            ..Self::new(start, limit, filter)
        }
    }

    /// A walk over every key that counts the matches ([`Walk::matched`]) and keeps none.
    pub fn count(filter: KeyFilter) -> Self {
        Self {
            count_only: true,
            ..Self::new(Vec::new(), usize::MAX, filter)
        }
    }

    /// Makes each [`Walk::advance_in_memory`] stop after `entries` entries examined, the
    /// walk not ended ([`Walk::yielded`]): a long walk in memory then takes turns with the
    /// other work of the loop.
    pub fn with_round_entries_max(mut self, entries: usize) -> Self {
        self.round_entries_max = entries.max(1);
        self
    }

    /// Whether the last [`Walk::advance_in_memory`] stopped at its entry budget (it needs no
    /// block: run it again on a later turn of the loop).
    pub fn yielded(&self) -> bool {
        self.yielded
    }

    /// The filter it keeps keys with.
    pub fn filter(&self) -> &KeyFilter {
        &self.filter
    }

    /// Takes the keys of a batch that stopped at its limits and goes on from where it
    /// stopped with a fresh budget of entries; `None` once the walk is exhausted or failed
    /// (the keys stay).
    pub fn next_batch(&mut self) -> Option<Vec<Vec<u8>>> {
        let Some(WalkEnd::At(next)) = &mut self.end else {
            return None;
        };
        self.next = std::mem::take(next);
        self.end = None;
        self.examined = 0;
        self.kept_bytes = 0;
        Some(std::mem::take(&mut self.keys))
    }

    /// A walk for the first live user key at or after `start`, wrapping to the first key
    /// of the shard once (`RANDOMKEY`).
    pub fn first_from(start: Vec<u8>) -> Self {
        Self {
            first_only: true,
            wrap: true,
            ..Self::new(start, usize::MAX, KeyFilter::default())
        }
    }

    /// Entries examined so far.
    pub fn examined(&self) -> usize {
        self.examined
    }

    /// Goes on from memory only (the cache and `pinned`) until the walk ends or needs
    /// blocks, which are added to `needs` (then the walk has not ended).
    pub fn advance_in_memory(
        &mut self,
        store: &impl WalkSource,
        pinned: &PinnedBlocks,
        needs: &mut WalkNeeds,
    ) {
        self.round_examined = 0;
        self.yielded = false;
        self.advance(store, Some(pinned), needs);
        if self.end.is_none() && needs.is_empty() && !self.yielded {
            // A miss that named no block (cannot happen: the scan and the lookup of the
            // blocks use the same version); finish with blocking reads rather than spin.
            self.advance(store, None, needs);
        }
    }

    /// Goes on to the end, reading what is not in memory with blocking `pread`s (counted
    /// in the cache's blocking reads).
    pub fn advance_blocking(&mut self, store: &impl WalkSource) {
        self.advance(store, None, &mut WalkNeeds::default());
    }

    fn advance(
        &mut self,
        store: &impl WalkSource,
        pinned: Option<&PinnedBlocks>,
        needs: &mut WalkNeeds,
    ) {
        while self.end.is_none() {
            match self.advance_once(store, pinned, needs) {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => self.end = Some(WalkEnd::Failed(format!("ERR storage error: {e}"))),
            }
            if self.end == Some(WalkEnd::Exhausted) && self.wrap && self.keys.is_empty() {
                self.wrap = false;
                self.next.clear();
                self.end = None;
            }
        }
    }

    /// One scan from `self.next`. `Ok(true)` when it stopped for blocks (in `needs`).
    fn advance_once(
        &mut self,
        store: &impl WalkSource,
        pinned: Option<&PinnedBlocks>,
        needs: &mut WalkNeeds,
    ) -> Result<bool, StoreError> {
        let iter = store.scan(&self.next, pinned);
        let mut last: Option<Vec<u8>> = None;
        let mut stopped = false;
        for entry in iter {
            let entry = match entry {
                Ok(entry) => entry,
                Err(StoreError::BlockNotInMemory {
                    table_id,
                    block_index,
                }) => {
                    let pinned = pinned.expect("only a scan from memory misses");
                    let miss = Miss {
                        table_id,
                        block_index,
                        readahead_blocks: SCAN_READAHEAD_BLOCKS,
                    };
                    store.blocks_after_miss(miss, pinned, &mut needs.scan_blocks);
                    stopped = true;
                    break;
                }
                Err(e) => return Err(e),
            };
            if entry.key.as_slice() >= keys::USER_KEYS_END.as_slice() {
                self.end = Some(WalkEnd::Exhausted);
                return Ok(false);
            }
            if self.examined == self.limit || self.kept_bytes >= self.kept_bytes_max {
                self.end = Some(WalkEnd::At(entry.key));
                return Ok(false);
            }
            if pinned.is_some() && self.round_examined == self.round_entries_max {
                self.yielded = true;
                stopped = true;
                break;
            }
            // Whether a string shadows a series is a point lookup: read its block first.
            if let (Some(_), KeyClass::Series(user), true) =
                (pinned, keys::classify(&entry.key), entry.value.is_some())
            {
                store.blocks_to_fetch(user, &mut needs.point_blocks);
                if !needs.point_blocks.is_empty() {
                    stopped = true;
                    break;
                }
            }
            self.examined += 1;
            self.round_examined += 1;
            if let Some((user, type_name)) = user_key(store, &entry.key, entry.value.is_some()) {
                if self.filter.wants(user, type_name) {
                    self.matched += 1;
                    if !self.count_only {
                        self.kept_bytes += user.len();
                        self.keys.push(user.to_vec());
                    }
                    if self.first_only {
                        self.end = Some(WalkEnd::Found);
                        return Ok(false);
                    }
                }
            }
            last = Some(entry.key);
        }
        if let Some(mut last) = last {
            // The first key after the last one examined.
            last.push(0);
            self.next = last;
        }
        if !stopped {
            self.end = Some(WalkEnd::Exhausted);
        }
        Ok(stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreOptions;

    fn name(i: usize) -> Vec<u8> {
        format!("k{i:04}").into_bytes()
    }

    /// The count and the batches of a streamed `KEYS` walk one snapshot: writes after it
    /// change neither, and the batches together are the keys counted, once each, in
    /// order, each batch stopping at its byte limit.
    #[test]
    fn batches_over_a_snapshot_send_exactly_the_keys_counted_whatever_is_written_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ShardStore::open(dir.path(), &StoreOptions::default()).unwrap();
        for i in 0..1000 {
            store.put(&name(i), b"v");
        }
        store.put(b"other", b"v");
        let filter = KeyFilter {
            pattern: Some(b"k*".to_vec()),
            type_name: None,
        };
        let snapshot = store.snapshot_where(Some(&keys::USER_KEYS_END), |k| filter.may_want(k));
        for i in 0..500 {
            store.delete(&name(i));
            store.put(&[name(i), b"-new".to_vec()].concat(), b"v");
        }
        let source = SnapshotSource {
            snapshot: &snapshot,
            cache: store.block_cache(),
        };
        let mut count = Walk::count(filter.clone());
        count.advance_blocking(&source);
        assert_eq!((count.matched, count.keys.len()), (1000, 0));

        let mut batch = Walk::batch(Vec::new(), usize::MAX, 100, filter);
        let mut sent = Vec::new();
        let mut batches = 0;
        loop {
            batch.advance_blocking(&source);
            match batch.next_batch() {
                Some(keys) => {
                    let bytes: usize = keys.iter().map(Vec::len).sum();
                    assert!((100..105).contains(&bytes), "a batch of {bytes} bytes");
                    sent.extend(keys);
                    batches += 1;
                }
                None => {
                    assert_eq!(batch.end, Some(WalkEnd::Exhausted));
                    sent.append(&mut batch.keys);
                    break;
                }
            }
        }
        assert_eq!(sent, (0..1000).map(name).collect::<Vec<_>>());
        assert_eq!(batches, 1000 * 5 / 100 - 1);

        // A count with an entry budget per turn yields, then goes on where it stopped.
        let mut count = Walk::count(KeyFilter::default()).with_round_entries_max(300);
        let pinned = PinnedBlocks::new();
        let mut turns = 0;
        while count.end.is_none() {
            let mut needs = WalkNeeds::default();
            count.advance_in_memory(&source, &pinned, &mut needs);
            assert!(needs.is_empty(), "all in memory");
            assert_eq!(count.yielded(), count.end.is_none());
            turns += 1;
        }
        assert_eq!((count.matched, turns), (1000, 4));
    }
}
