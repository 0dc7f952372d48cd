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
//! Redis says of `SCAN`.

use super::scan::user_key;
use crate::base::StoreError;
use crate::block_cache::PinnedBlocks;
use crate::glob::glob_match;
use crate::store::{BlockFetch, ShardStore};
use crate::timeseries::keys::{self, KeyClass};

/// Blocks read after the missing one, in the same table, when a walk misses: a walk goes
/// on in key order, so the next blocks are wanted next, and one ring round trip brings
/// them all (4 blocks of 4 KiB: a `SCAN` step of the default `COUNT` 10 rarely needs more).
pub const SCAN_READAHEAD_BLOCKS: usize = 4;

/// Where a walk ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// Every key of the shard was examined.
    Exhausted,
    /// The entry limit was reached; this key is the next to examine.
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
    /// The matching user keys found, in key order.
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
            keys: Vec::new(),
            end: None,
        }
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
        store: &ShardStore,
        pinned: &PinnedBlocks,
        needs: &mut WalkNeeds,
    ) {
        self.advance(store, Some(pinned), needs);
        if self.end.is_none() && needs.is_empty() {
            // A miss that named no block (cannot happen: the scan and the lookup of the
            // blocks use the same version); finish with blocking reads rather than spin.
            self.advance(store, None, needs);
        }
    }

    /// Goes on to the end, reading what is not in memory with blocking `pread`s (counted
    /// in the cache's blocking reads).
    pub fn advance_blocking(&mut self, store: &ShardStore) {
        self.advance(store, None, &mut WalkNeeds::default());
    }

    fn advance(
        &mut self,
        store: &ShardStore,
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
        store: &ShardStore,
        pinned: Option<&PinnedBlocks>,
        needs: &mut WalkNeeds,
    ) -> Result<bool, StoreError> {
        let iter = match pinned {
            Some(pinned) => store.scan_in_memory(&self.next, pinned),
            None => store.scan_from(&self.next),
        };
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
                    store.blocks_after_miss(
                        table_id,
                        block_index,
                        SCAN_READAHEAD_BLOCKS,
                        pinned,
                        &mut needs.scan_blocks,
                    );
                    stopped = true;
                    break;
                }
                Err(e) => return Err(e),
            };
            if entry.key.as_slice() >= keys::USER_KEYS_END.as_slice() {
                self.end = Some(WalkEnd::Exhausted);
                return Ok(false);
            }
            if self.examined == self.limit {
                self.end = Some(WalkEnd::At(entry.key));
                return Ok(false);
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
            if let Some((user, type_name)) = user_key(store, &entry.key, entry.value.is_some()) {
                if self.filter.wants(user, type_name) {
                    self.keys.push(user.to_vec());
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
