//! Reads that never block the shard's loop.
//!
//! Before a request that reads keys runs, the shard asks its store which SSTable data
//! blocks the lookups would read from disk ([`ShardStore::blocks_to_fetch`]). If there are
//! any, it submits their reads through its io_uring and sets the request aside; the loop
//! serves everyone else meanwhile. When the last read completes, the blocks are in the
//! block cache and the request runs, now from memory. Order is kept:
//!
//! - **A local connection** stops executing at the request that waits (it is re-parsed
//!   when it runs), so its later requests cannot overtake it, and its replies still leave
//!   in request order. It is put back on the ready list by the completion.
//! - **Requests from another shard** wait in a per-source queue: while one from shard `s`
//!   waits, every later request from `s` queues behind it, since a connection's requests
//!   for this shard all come through that one queue, in order.
//!
//! The request that waited runs without planning again, so it makes progress even if its
//! block was evicted meanwhile (it then reads the block itself). A failed read caches
//! nothing; the lookup reads the block itself and reports the error.
//!
//! `SCAN`, `KEYS` and `RANDOMKEY` plan by running: their [`Walk`] goes on from memory
//! until it ends or misses a block; then the blocks it names are read through the ring
//! and pinned for its request, the request waits as above, and the walk goes on from
//! where it stopped when they are in. The request runs once its walk has ended, taking
//! the walk's result. Only a walk op that arrives by a path that does not plan (inside a
//! batch) walks with blocking reads, counted in `INFO`'s `block_reads_blocking`. A `KEYS`
//! walk that finds too many keys to build its part at once goes on as a count over a
//! snapshot, planned the same way, and so do the batches later pulled from that snapshot
//! ([`super::keys_cursor`]).
//!
//! Time-series requests plan in rounds too, their blocks pinned for them: metadata first,
//! then the chunk ranges the series id leads to ([`super::fetch_ts`]).
//!
//! [`ShardStore::blocks_to_fetch`]: crate::store::ShardStore::blocks_to_fetch

use std::collections::{HashMap, VecDeque};

use super::mesh::{self, Message, Op, OpResult, ShardId};
use super::metrics::ShardMetrics;
use super::scan_walk::{SnapshotSource, Walk, WalkEnd, WalkNeeds};
use super::{scan, tag_of, Shard, TAG_BLOCK_READ};
use crate::block_cache::PinnedBlocks;
use crate::config::KEYS_WALK_ROUND_ENTRIES_MAX;
use crate::runtime::uring::Completion;
use crate::store::{BlockFetch, Snapshot};

/// Who waits for a block read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Waiter {
    /// A local connection, at the request it stopped at.
    Conn((u32, u32)),
    /// The queue of requests from another shard.
    Source(ShardId),
    /// A transaction across shards that just locked its keys here: they are read into
    /// the cache before the coordinator hears of the lock, so its part runs from memory.
    TxLock(crate::wal::tx::TxId),
    /// A streamed `KEYS` reply's cursor gathering a batch ([`super::keys_cursor`]).
    KeysCursor(u64),
    /// A local connection's streamed reply, for its next step ([`super::conns`]).
    Stream((u32, u32)),
}

/// A walk (`SCAN`, `KEYS`, `RANDOMKEY`) planned for a waiter, with the blocks read for it.
#[derive(Debug)]
struct WalkWait {
    /// The request the walk is for: a waiter's next request never takes another's walk.
    op: WalkOp,
    walk: Walk,
    pinned: PinnedBlocks,
    /// A `KEYS` walk that found too many keys to build its part at once counts them again
    /// on a snapshot, which its part is then streamed from ([`super::keys_cursor`]).
    snapshot: Option<Box<Snapshot>>,
}

/// What identifies a walk op's request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum WalkOp {
    Scan(u64),
    Keys(Vec<u8>),
    RandomKey,
}

impl WalkOp {
    fn of(op: &Op<&[u8]>) -> Option<Self> {
        match *op {
            Op::Scan { cursor, .. } => Some(Self::Scan(cursor)),
            Op::Keys(pattern) => Some(Self::Keys(pattern.to_vec())),
            Op::RandomKey => Some(Self::RandomKey),
            _ => None,
        }
    }
}

/// Where a block read through the ring goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keep {
    /// Into the block cache (a point lookup's block).
    Cache,
    /// Pinned for the waiter's walk.
    Walk,
    /// Pinned for the waiter's time-series request ([`super::fetch_ts`]), and put in the
    /// cache too, as the chunk lookups it stands for would.
    Series,
    /// Pinned in the waiter's streamed reply only: its table may be another shard's,
    /// whose table ids are not this cache's.
    Stream,
}

/// The shard's block reads in flight and the requests from other shards waiting on them.
#[derive(Debug, Default)]
pub(super) struct Fetches {
    /// Per read: the block, who waits, and where the block goes.
    reads: HashMap<u64, (BlockFetch, Waiter, Keep)>,
    /// The walks planned, per waiter (one request of each waits at a time).
    walks: HashMap<Waiter, WalkWait>,
    /// The time-series requests planned, per waiter ([`super::fetch_ts`]).
    pub(super) series: HashMap<Waiter, super::fetch_ts::SeriesWait>,
    /// Waiters whose walk stopped at its entry budget: released on the next turn of the
    /// loop as if their one block read completed ([`Shard::release_yielded_walks`]).
    yielded: Vec<Waiter>,
    /// Who the request running now is for (its walk is taken from `walks`).
    pub(super) running: Option<Waiter>,
    next_id: u64,
    /// Per source shard: requests set aside, oldest first.
    deferred: Vec<VecDeque<Message>>,
    /// Per source shard: reads its oldest deferred request waits for.
    source_reads_pending: Vec<u32>,
    scratch: Vec<BlockFetch>,
}

impl Fetches {
    /// State for a shard with `shards` peers.
    pub(super) fn new(shards: usize) -> Self {
        Self {
            deferred: (0..shards).map(|_| VecDeque::new()).collect(),
            source_reads_pending: vec![0; shards],
            ..Self::default()
        }
    }

    /// Nothing in flight and nothing set aside.
    pub(super) fn is_idle(&self) -> bool {
        self.reads.is_empty()
            && self.yielded.is_empty()
            && self.deferred.iter().all(VecDeque::is_empty)
    }

    /// Whether a walk waits for the next turn of the loop.
    pub(super) fn has_yielded(&self) -> bool {
        !self.yielded.is_empty()
    }

    /// Whether requests from `from` are being held back.
    pub(super) fn holds(&self, from: ShardId) -> bool {
        !self.deferred[from.0].is_empty()
    }
}

/// The keys a request from another shard reads before it can answer (none, one, or
/// several for `MSETNX`).
pub(super) fn read_keys<'k>(op: &Op<&'k [u8]>) -> smallvec::SmallVec<[&'k [u8]; 2]> {
    match op {
        Op::Get(k)
        | Op::Exists(k)
        | Op::Del(k)
        | Op::Series { key: k, .. }
        | Op::Watch { key: k, .. }
        | Op::KeyType(k)
        | Op::Inspect { key: k, .. } => {
            smallvec::smallvec![*k]
        }
        Op::Set { key, condition, .. } if *condition != crate::command::SetCondition::Always => {
            smallvec::smallvec![*key]
        }
        Op::Strings(op) => op.keys(),
        Op::Batch { ops, .. } => ops.iter().flat_map(read_keys).collect(),
        _ => smallvec::SmallVec::new(),
    }
}

impl Shard {
    /// Plans the block reads that lookups of `keys` (owned by this shard) need and submits
    /// them for `waiter`. Returns how many were submitted; 0 means run now.
    pub(super) fn fetch_for<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        waiter: Waiter,
    ) -> u32 {
        let mut needed = std::mem::take(&mut self.fetches.scratch);
        needed.clear();
        for key in keys {
            self.store.blocks_to_fetch(key, &mut needed);
            // A lookup that misses the string looks for a series of that name.
            let meta_key = crate::timeseries::keys::meta_key(key);
            self.store.blocks_to_fetch(&meta_key, &mut needed);
        }
        let submitted = self.submit_reads(needed.drain(..), waiter, Keep::Cache);
        needed.clear();
        self.fetches.scratch = needed;
        submitted
    }

    /// Submits the reads of `blocks` for `waiter`, kept as `keep` says. Returns
    /// how many were submitted: fewer when the ring is full (the request then reads what
    /// is still missing itself).
    pub(super) fn submit_reads(
        &mut self,
        blocks: impl Iterator<Item = BlockFetch>,
        waiter: Waiter,
        keep: Keep,
    ) -> u32 {
        let mut submitted = 0;
        for fetch in blocks {
            let (offset, len) = fetch.table.table().block_extent(fetch.index);
            let file = std::sync::Arc::clone(fetch.table.table().file());
            let id = self.fetches.next_id;
            let queued = self
                .ring
                .read_at(file, vec![0; len], offset, tag_of(TAG_BLOCK_READ, id));
            if queued.is_err() {
                break;
            }
            self.fetches.next_id += 1;
            self.fetches.reads.insert(id, (fetch, waiter, keep));
            submitted += 1;
        }
        if submitted > 0 {
            ShardMetrics::add(&self.metrics().block_reads, u64::from(submitted));
        }
        submitted
    }

    /// Plans `op` if it is a walk op (`SCAN` of this shard, `KEYS`, `RANDOMKEY`): goes on
    /// with its walk (started now, or where it stopped) from memory, and submits the reads
    /// it needs for `waiter`. Returns how many were submitted; 0 means run now (the walk
    /// has ended, or `op` is not a walk op).
    pub(super) fn plan_walk(&mut self, op: &Op<&[u8]>, waiter: Waiter) -> u32 {
        let Some(walk_op) = WalkOp::of(op) else {
            return 0;
        };
        let whole_max = self.keys_whole_bytes_max();
        let planned = self.take_walk(waiter, &walk_op).or_else(|| {
            let walk = scan::walk_for(op, &self.scan_positions, self.id, whole_max)?;
            Some(WalkWait {
                op: walk_op,
                walk,
                pinned: PinnedBlocks::new(),
                snapshot: None,
            })
        });
        let Some(mut planned) = planned else {
            return 0;
        };
        loop {
            let submitted = self.advance_walk(&mut planned, waiter);
            if submitted > 0 {
                self.fetches.walks.insert(waiter, planned);
                return submitted;
            }
            if planned.walk.yielded() {
                // It waits one turn of the loop as if for one block read.
                self.fetches.walks.insert(waiter, planned);
                self.fetches.yielded.push(waiter);
                return 1;
            }
            let too_many = matches!(planned.walk.end, Some(WalkEnd::At(_)));
            if !(matches!(planned.op, WalkOp::Keys(_)) && too_many && planned.snapshot.is_none()) {
                break;
            }
            // Too many keys to build this part at once: count them on a snapshot, and
            // stream them from it when the request runs.
            let filter = planned.walk.filter().clone();
            planned.snapshot = Some(Box::new(self.keys_snapshot(&filter)));
            planned.walk = Walk::count(filter).with_round_entries_max(KEYS_WALK_ROUND_ENTRIES_MAX);
            planned.pinned.clear();
        }
        self.fetches.walks.insert(waiter, planned);
        0
    }

    /// Goes on with `planned`'s walk from memory, over its snapshot if it has one, and
    /// submits the reads it needs for `waiter`; returns how many (0: the walk ended).
    fn advance_walk(&mut self, planned: &mut WalkWait, waiter: Waiter) -> u32 {
        let examined = planned.walk.examined();
        let mut needs = WalkNeeds::default();
        let cache = self.store.block_cache();
        match planned.snapshot.as_deref() {
            Some(snapshot) => {
                let source = SnapshotSource { snapshot, cache };
                planned
                    .walk
                    .advance_in_memory(&source, &planned.pinned, &mut needs);
            }
            None => planned
                .walk
                .advance_in_memory(&self.store, &planned.pinned, &mut needs),
        }
        if planned.walk.examined() > examined {
            // Progress: the blocks behind the walk are not needed again.
            planned.pinned.clear();
        }
        if needs.is_empty() {
            return 0;
        }
        let submitted = self.submit_reads(needs.scan_blocks.into_iter(), waiter, Keep::Walk)
            + self.submit_reads(needs.point_blocks.into_iter(), waiter, Keep::Cache);
        if submitted == 0 {
            // The ring is full: finish the walk with blocking reads.
            match planned.snapshot.as_deref() {
                Some(snapshot) => {
                    let cache = self.store.block_cache();
                    planned
                        .walk
                        .advance_blocking(&SnapshotSource { snapshot, cache });
                }
                None => planned.walk.advance_blocking(&self.store),
            }
        }
        submitted
    }

    /// Runs a walk op (`SCAN`, `KEYS`, `RANDOMKEY`) of the request running now: takes its
    /// planned walk, or, for a request that was not planned, walks with blocking reads.
    pub(super) fn run_walk(&mut self, op: &Op<&[u8]>) -> OpResult {
        let planned = match (self.fetches.running, WalkOp::of(op)) {
            (Some(waiter), Some(walk_op)) => self.take_walk(waiter, &walk_op),
            _ => None,
        };
        let planned = planned.filter(|planned| planned.walk.end.is_some());
        if let Some(WalkWait {
            walk,
            snapshot: Some(snapshot),
            ..
        }) = planned
        {
            return match walk.end {
                Some(WalkEnd::Failed(message)) => OpResult::Err(message),
                _ => self.open_keys_cursor(*snapshot, walk.filter().clone(), walk.matched),
            };
        }
        // A walk that was not planned (or not to its end) is built whole, reading with
        // blocking reads.
        let walk = planned.map(|planned| planned.walk).or_else(|| {
            let mut walk = scan::walk_for(op, &self.scan_positions, self.id, usize::MAX)?;
            walk.advance_blocking(&self.store);
            Some(walk)
        });
        match walk {
            Some(walk) => scan::walk_result(op, walk, &mut self.scan_positions, self.shards),
            None => OpResult::Err("ERR invalid cursor".into()),
        }
    }

    /// The walk planned for `waiter`'s request `op`, if any; one planned for another
    /// request is dropped.
    fn take_walk(&mut self, waiter: Waiter, op: &WalkOp) -> Option<WalkWait> {
        self.fetches
            .walks
            .remove(&waiter)
            .filter(|planned| planned.op == *op)
    }

    /// Forgets the walk or time-series request planned for `waiter` (its connection
    /// closed).
    pub(super) fn drop_walk(&mut self, waiter: Waiter) {
        self.fetches.walks.remove(&waiter);
        self.fetches.series.remove(&waiter);
    }

    /// Sets a request from `from` aside behind the ones already held, or because it
    /// waits for `reads` block reads of its own.
    pub(super) fn defer_request(&mut self, from: ShardId, message: Message, reads: u32) {
        self.fetches.source_reads_pending[from.0] += reads;
        self.fetches.deferred[from.0].push_back(message);
    }

    /// A block read finished: cache the block, and release its waiter once its last read
    /// is in.
    pub(super) fn block_read_completion(&mut self, completion: Completion) {
        let id = completion.tag >> 8;
        let Some((fetch, waiter, keep)) = self.fetches.reads.remove(&id) else {
            debug_assert!(false, "completion of an unknown block read");
            return;
        };
        if let Ok(n) = completion.result {
            let mut buf = completion.buf;
            buf.truncate(n);
            let fill = matches!(keep, Keep::Cache | Keep::Series);
            match self.store.fetched_block(&fetch, buf, fill) {
                Ok(block) if keep == Keep::Stream => {
                    if let Waiter::Stream(key) = waiter {
                        let streaming = self.conn_mut(key).and_then(|c| c.streaming.as_mut());
                        if let Some(streaming) = streaming {
                            streaming.pin(&fetch, block);
                        }
                    }
                }
                Ok(block) if keep != Keep::Cache => {
                    let index = u32::try_from(fetch.index).expect("fewer than 2^32 blocks");
                    let pinned = match (keep, waiter) {
                        (Keep::Walk, Waiter::KeysCursor(id)) => self.keys_cursors.pinned_mut(id),
                        (Keep::Walk, _) => {
                            self.fetches.walks.get_mut(&waiter).map(|w| &mut w.pinned)
                        }
                        _ => self.fetches.series.get_mut(&waiter).map(|w| &mut w.pinned),
                    };
                    if let Some(pinned) = pinned {
                        pinned.insert((fetch.table.id(), index), block);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(shard = self.id.0, error = %e, "block read through the ring failed its check");
                }
            }
        }
        self.read_done(waiter);
    }

    /// Releases the walks that yielded on the last turn, as their read's completion would.
    pub(super) fn release_yielded_walks(&mut self) {
        for waiter in std::mem::take(&mut self.fetches.yielded) {
            self.read_done(waiter);
        }
    }

    /// One of `waiter`'s reads is in: once its last one is, it goes on.
    fn read_done(&mut self, waiter: Waiter) {
        match waiter {
            Waiter::Conn(key) => {
                let Some(conn) = self.conn_mut(key) else {
                    return;
                };
                conn.block_reads_pending = conn.block_reads_pending.saturating_sub(1);
                if conn.block_reads_pending == 0 {
                    conn.block_reads_done = true;
                    self.ready.push(key);
                }
            }
            Waiter::Source(from) => {
                let pending = &mut self.fetches.source_reads_pending[from.0];
                *pending = pending.saturating_sub(1);
                if *pending == 0 {
                    self.resume_source(from);
                }
            }
            Waiter::TxLock(id) => self.tx_lock_read_done(id),
            Waiter::KeysCursor(id) => self.keys_cursor_read_done(id),
            Waiter::Stream(key) => {
                let Some(conn) = self.conn_mut(key) else {
                    return;
                };
                conn.stream_reads_pending = conn.stream_reads_pending.saturating_sub(1);
                if conn.stream_reads_pending == 0 {
                    self.mark_dirty(key);
                }
            }
        }
    }

    /// Runs the requests held from `from`, in order: the first without planning its
    /// lookups (its blocks were just read) but going on with its walk or time-series
    /// planning if it has one, each
    /// later one after planning, stopping at one that must wait.
    fn resume_source(&mut self, from: ShardId) {
        let mut first = true;
        while let Some(message) = self.fetches.deferred[from.0].pop_front() {
            let Message::Request { reply_to, op } = message else {
                debug_assert!(false, "only requests are held");
                continue;
            };
            let waiter = Waiter::Source(from);
            let mut reads = self.plan_walk(&op.as_borrowed(), waiter);
            if reads == 0 {
                // A time-series request goes on with its planning, as a walk does.
                match self.plan_series_op(&op.as_borrowed(), waiter) {
                    Some(series_reads) => reads = series_reads,
                    None if !first => {
                        reads = self.fetch_for(read_keys(&op.as_borrowed()), waiter);
                    }
                    None => {}
                }
            }
            if reads > 0 {
                self.fetches.source_reads_pending[from.0] += reads;
                self.fetches.deferred[from.0].push_front(Message::Request { reply_to, op });
                return;
            }
            first = false;
            self.execute_request(from, reply_to, op, true);
        }
    }
}

/// Whether `key` of a local request is owned by shard `id` of `shards`.
pub(super) fn is_local(key: &[u8], id: ShardId, shards: usize) -> bool {
    mesh::shard_of(key, shards) == id
}
