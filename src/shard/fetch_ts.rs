//! Time-series reads that never block the shard's loop: the planning half of
//! [`super::fetch`] for `TS.*` requests.
//!
//! A time-series request reads more than one key: a string of its name (which shadows the
//! series), its metadata, and then, with the series id, chunk ranges, its unsealed samples
//! and seal mark ([`crate::timeseries::plan`] says which from the arguments and the series'
//! state). Before the request runs, the shard plans it in rounds:
//!
//! 1. Every read the request will make ([`Reach`]) is run now as a scan from memory only
//!    ([`ShardStore::first_block_missing`]): the cache plus the blocks already pinned for
//!    this request. A reach that needs nothing more is done.
//! 2. For a reach that missed, the block it missed and every block of its key range that
//!    memory lacks ([`ShardStore::blocks_in_range`]) are read through the ring, pinned
//!    for the request (so nothing it needs can be evicted while it waits) and put in the
//!    cache (a range reply looks each chunk up, and a lookup that misses fills the cache:
//!    without it a hot series' blocks would be read again by every query), and the
//!    request waits as any request that reads through the ring does.
//! 3. When the reads are in, planning goes on from step 1: reaches that needed the series
//!    id (known from the metadata just read, or at once for a series in the shard's cache)
//!    are planned now, and a reader that read past the end of its range names the block it
//!    stopped in. When a round misses nothing, the request runs with its pins served as if
//!    cached ([`ShardStore::pin_for_request`]): it reads nothing from disk.
//!
//! Bounds: a request pins at most [`SERIES_PINNED_BLOCKS_MAX`] blocks and waits at most
//! [`SERIES_PLAN_ROUNDS_MAX`] rounds; past either, it runs, and reads what it still lacks
//! itself (blocking reads, counted in `INFO`'s `block_reads_blocking`). A huge range thus
//! completes with pinned memory bounded per waiting request (connections waiting at once
//! times the bound, in all), at the cost of blocking for its tail. A streamed range reply
//! ([`crate::timeseries::range`]) reads its chunks after the command ran, as the client
//! reads, and plans each step itself (`RangeStream::plan`, in `super::conns`).
//! Reaches not planned at all are listed in [`crate::timeseries::plan`]. A failed ring read pins nothing: the next round
//! reads the block again, and the last lets the request read it itself and report the error.
//!
//! [`ShardStore::first_block_missing`]: crate::store::ShardStore::first_block_missing
//! [`ShardStore::blocks_in_range`]: crate::store::ShardStore::blocks_in_range
//! [`ShardStore::pin_for_request`]: crate::store::ShardStore::pin_for_request

use super::fetch::{Keep, Waiter};
use super::mesh::{self, Op};
use super::Shard;
use crate::block_cache::PinnedBlocks;
use crate::command::{Command, CommandKind};
use crate::config::{SERIES_PINNED_BLOCKS_MAX, SERIES_PLAN_ROUNDS_MAX};
use crate::store::BlockFetch;
use crate::timeseries::exec::{decode_request, encode_request};
use crate::timeseries::meta::SeriesMeta;
use crate::timeseries::plan::{self, Reach};
use crate::timeseries::{keys, multi, series};

/// The blocks read so far for one waiting time-series request.
#[derive(Debug, Default)]
pub(super) struct SeriesWait {
    /// The request's arguments, encoded: a waiter's next request never takes another's
    /// pins.
    request: Vec<u8>,
    /// The blocks read for it, served as if cached while it is planned and run.
    pub(super) pinned: PinnedBlocks,
    /// Rounds of reads it waited for.
    rounds: u32,
}

/// One request to plan.
struct Planned<'a> {
    args: Vec<&'a [u8]>,
    scope: Scope,
}

/// What a [`Planned`] request's `args` are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// A single series' request: name, key, arguments.
    Single,
    /// A label-filtered request's part on this shard: name, arguments.
    Multi,
    /// `DEL` of one key (name, key), which may name a series to delete whole.
    Del,
}

impl Shard {
    /// Plans a time-series command of a local connection: its single-series requests on
    /// keys this shard owns, or this shard's part of a label-filtered one; also `DEL` of
    /// keys this shard owns (each may be a series, deleted whole). `None` if it has
    /// nothing of that kind here; else the reads submitted for `waiter` (0: run now).
    pub(super) fn plan_series_command(
        &mut self,
        command: &Command<'_>,
        waiter: Waiter,
    ) -> Option<u32> {
        let local = |key: &[u8]| mesh::shard_of(key, self.shards) == self.id;
        if let Command::Del(ref keys) = *command {
            // `DEL` of a series reads all of it: planned as the series' own requests.
            let requests: Vec<Planned<'_>> = keys
                .iter()
                .filter(|key| local(key))
                .map(|&key| Planned {
                    args: vec![b"DEL", key],
                    scope: Scope::Del,
                })
                .collect();
            if requests.is_empty() {
                return None;
            }
            let identity = || {
                let mut words: Vec<&[u8]> = vec![b"DEL"];
                words.extend(keys.iter().copied());
                encode_request(crate::resp::Protocol::Resp2, &words)
            };
            return Some(self.plan_series(&requests, identity, waiter));
        }
        let Command::Series(kind, ref args) = *command else {
            return None;
        };
        let name = kind.name().as_bytes();
        // Ingest fast path: appends to cached series that read nothing need no planning
        // (nor the requests and identity built below, per sample).
        let samples = match kind {
            CommandKind::TsMAdd => Some(args.chunks_exact(3)),
            CommandKind::TsAdd if args.len() >= 3 => Some(args[..3].chunks_exact(3)),
            _ => None,
        };
        if let Some(mut samples) = samples {
            let writes = self.store.memtable_writes();
            let in_memory = samples.all(|s| {
                !local(s[0]) || plan::add_reads_nothing(self.series.state(s[0]), s[1], writes)
            });
            if in_memory && !self.fetches.series.contains_key(&waiter) {
                return Some(0);
            }
        }
        let requests: Vec<Planned<'_>> = if kind.is_multi_series() {
            let mut words = vec![name];
            words.extend_from_slice(args);
            vec![Planned {
                args: words,
                scope: Scope::Multi,
            }]
        } else if kind == CommandKind::TsMAdd {
            args.chunks_exact(3)
                .filter(|s| local(s[0]))
                .map(|s| Planned {
                    args: vec![name, s[0], s[1], s[2]],
                    scope: Scope::Single,
                })
                .collect()
        } else if args.first().is_some_and(|key| local(key)) {
            let mut words = vec![name];
            words.extend_from_slice(args);
            vec![Planned {
                args: words,
                scope: Scope::Single,
            }]
        } else {
            Vec::new()
        };
        if requests.is_empty() {
            return None;
        }
        let identity = || {
            let mut words = vec![name];
            words.extend_from_slice(args);
            encode_request(crate::resp::Protocol::Resp2, &words)
        };
        Some(self.plan_series(&requests, identity, waiter))
    }

    /// Plans a time-series request from another shard (or this one's own queue). `None`
    /// if `op` is not one; else the reads submitted for `waiter` (0: run now).
    pub(super) fn plan_series_op(&mut self, op: &Op<&[u8]>, waiter: Waiter) -> Option<u32> {
        let (request, scope) = match *op {
            Op::Series { request, .. } => (request, Scope::Single),
            Op::SeriesAll { request } => (request, Scope::Multi),
            Op::Del(key) => {
                let requests = [Planned {
                    args: vec![b"DEL", key],
                    scope: Scope::Del,
                }];
                let identity = || encode_request(crate::resp::Protocol::Resp2, &[b"DEL", key]);
                return Some(self.plan_series(&requests, identity, waiter));
            }
            _ => return None,
        };
        let Some((_, args)) = decode_request(request).filter(|(_, a)| a.len() >= 2) else {
            return Some(0);
        };
        let requests = [Planned { args, scope }];
        Some(self.plan_series(&requests, || request.to_vec(), waiter))
    }

    /// One round of planning (module doc): returns the reads submitted for `waiter`.
    /// `request` names the request (computed only when a waiter's plan is kept or
    /// compared: most requests find everything in memory at once).
    fn plan_series(
        &mut self,
        requests: &[Planned<'_>],
        request: impl Fn() -> Vec<u8>,
        waiter: Waiter,
    ) -> u32 {
        let mut wait = self
            .fetches
            .series
            .remove(&waiter)
            .filter(|w| w.request == request())
            .unwrap_or_default();
        let budget = SERIES_PINNED_BLOCKS_MAX.saturating_sub(wait.pinned.len());
        if wait.rounds >= SERIES_PLAN_ROUNDS_MAX || budget == 0 {
            self.fetches.series.insert(waiter, wait);
            return 0;
        }
        self.store.pin_for_request(std::mem::take(&mut wait.pinned));
        let mut needed = Vec::new();
        for planned in requests {
            match planned.scope {
                Scope::Multi => self.plan_multi(&planned.args, budget, &mut needed),
                Scope::Single => self.plan_single(&planned.args, budget, &mut needed),
                Scope::Del => self.plan_del(planned.args[1], budget, &mut needed),
            }
        }
        wait.pinned = self.store.unpin_request();
        if needed.is_empty() && wait.pinned.is_empty() {
            return 0;
        }
        let submitted = if needed.is_empty() {
            0
        } else {
            wait.rounds += 1;
            self.submit_reads(needed.into_iter(), waiter, Keep::Series)
        };
        if wait.request.is_empty() {
            wait.request = request();
        }
        self.fetches.series.insert(waiter, wait);
        submitted
    }

    /// Plans a request on one series (`args`: name, key, arguments).
    fn plan_single(&mut self, args: &[&[u8]], budget: usize, needed: &mut Vec<BlockFetch>) {
        let key = args[1];
        let mut reaches = Vec::new();
        let state = self.series.state(key);
        let string_check = series::string_check_needed(state, self.store.memtable_writes());
        plan::key_reaches(key, string_check, state.is_some(), &mut reaches);
        if !self.plan_reaches(&reaches, budget, needed) {
            return;
        }
        reaches.clear();
        self.series_reaches(
            key,
            |state, out| plan::command_reaches(args, state, out),
            &mut reaches,
        );
        self.plan_reaches(&reaches, budget, needed);
    }

    /// Plans `DEL` of `key`: the string and the series' metadata, and for a series what
    /// deleting it reads (every chunk and sample entry, or loading it).
    fn plan_del(&mut self, key: &[u8], budget: usize, needed: &mut Vec<BlockFetch>) {
        let mut reaches = vec![Reach::Key(key.to_vec()), Reach::Key(keys::meta_key(key))];
        if !self.plan_reaches(&reaches, budget, needed) {
            return;
        }
        reaches.clear();
        self.series_reaches(
            key,
            |state, out| plan::load_reaches(state.meta.series_id, out),
            &mut reaches,
        );
        self.plan_reaches(&reaches, budget, needed);
    }

    /// Plans this shard's part of a label-filtered request (`args`: name, arguments): the
    /// label index if not built yet, then every series it matches here.
    fn plan_multi(&mut self, args: &[&[u8]], budget: usize, needed: &mut Vec<BlockFetch>) {
        if !self.series.directory.is_indexed()
            && !self.plan_reaches(&[Reach::Metas], budget, needed)
        {
            return;
        }
        let Ok(matchers) = multi::filter_of(args) else {
            return;
        };
        // Reads from memory: the metadata entries were just found there.
        let Ok(matched) = self.series.directory.select(&self.store, &matchers) else {
            return;
        };
        let range = multi::is_range(args)
            .then(|| multi::range_args(args).ok())
            .flatten();
        let indexed_only = args[0].eq_ignore_ascii_case(b"TS.QUERYINDEX");
        let mut reaches = Vec::new();
        for key in &matched {
            let cached = indexed_only || self.series.state(key).is_some();
            plan::key_reaches(key, true, cached, &mut reaches);
        }
        if !self.plan_reaches(&reaches, budget, needed) || indexed_only {
            return;
        }
        reaches.clear();
        for key in &matched {
            self.series_reaches(
                key,
                |state, out| {
                    if let Some(range) = &range {
                        plan::range_reaches(state, range, out);
                    }
                },
                &mut reaches,
            );
        }
        self.plan_reaches(&reaches, budget, needed);
    }

    /// Adds what a request reads of series `key` once its metadata is in memory: for a
    /// series in the cache, what `command` says of its state; else what loading it reads
    /// (which covers any chunk range the command reads after).
    fn series_reaches(
        &self,
        key: &[u8],
        command: impl FnOnce(&crate::timeseries::series::SeriesState, &mut Vec<Reach>),
        out: &mut Vec<Reach>,
    ) {
        if let Some(state) = self.series.state(key) {
            command(state, out);
            return;
        }
        // In memory: the caller planned the metadata key and nothing missed.
        let meta = self.store.get(&keys::meta_key(key)).ok().flatten();
        let meta = meta.and_then(|found| found.value);
        if let Some(Ok(meta)) = meta.map(|m| SeriesMeta::decode(&m)) {
            plan::load_reaches(meta.series_id, out);
        }
    }

    /// Checks `reaches` from memory; adds to `needed` the blocks of those that missed,
    /// up to `budget` in all. Returns whether every reach was found in memory.
    fn plan_reaches(&self, reaches: &[Reach], budget: usize, needed: &mut Vec<BlockFetch>) -> bool {
        let mut complete = true;
        let mut point = Vec::new();
        for reach in reaches {
            if needed.len() >= budget {
                return false;
            }
            if let Reach::Key(key) = reach {
                // A point lookup reads one block per candidate table: no scan needed.
                point.clear();
                self.store.blocks_to_fetch(key, &mut point);
                complete &= point.is_empty();
                for fetch in point.drain(..) {
                    if !needed.iter().any(|f| same_block(f, &fetch)) {
                        needed.push(fetch);
                    }
                }
                continue;
            }
            let missed = self
                .store
                .first_block_missing(&reach.start_key(), |entry| reach.ends_at(entry));
            // A damaged block: the request, run, reports it.
            let Ok(Some(missed)) = missed else {
                continue;
            };
            complete = false;
            if !needed.iter().any(|f| same_block(f, &missed)) {
                needed.push(missed);
            }
            let left = budget.saturating_sub(needed.len());
            self.store
                .blocks_in_range(&reach.start_key(), &reach.end_key(), left, needed);
        }
        complete
    }

    /// Serves the blocks pinned for `waiter`'s request as if cached while it runs.
    pub(super) fn pin_series_blocks(&mut self, waiter: Waiter) {
        if let Some(wait) = self.fetches.series.remove(&waiter) {
            self.store.pin_for_request(wait.pinned);
        }
    }

    /// Drops the pins of the request that just ran ([`Shard::pin_series_blocks`]).
    pub(super) fn unpin_series_blocks(&mut self) {
        drop(self.store.unpin_request());
    }
}

fn same_block(a: &BlockFetch, b: &BlockFetch) -> bool {
    a.table.id() == b.table.id() && a.index == b.index
}
