//! Range queries (`TS.RANGE`, `TS.REVRANGE`, and each series of `TS.MRANGE`), produced
//! chunk by chunk from a frozen view of the series.
//!
//! A query runs in two steps:
//!
//! 1. [`RangeSource::open`] freezes what the query reads, as of the command: the keys of
//!    the series' sealed chunks that overlap the range, with the encoded chunks of its
//!    first 256 KiB (so a short range reads each chunk once), a [`RangeView`] of the
//!    other chunks' keys (memtable copies and the table files, reference counted), and a
//!    copy of the open samples in the range.
//! 2. A [`RangeCursor`] walks that source one *segment* at a time, in reply order: a
//!    segment is one sealed chunk's samples merged with the open samples up to its last
//!    timestamp (the open sample wins at an equal timestamp: it is newer), and a last
//!    segment holds the open samples after every chunk. Each segment's samples go through
//!    `FILTER_BY_TS`, `FILTER_BY_VALUE`, the aggregation ([`Bucketer`]) and `COUNT`.
//!    `TS.REVRANGE` walks the segments backwards, each reversed.
//!
//! Memory is one chunk's samples and one bucket's, whatever the range, so a reply too
//! large to build at once is streamed ([`RangeStream`]): RESP needs the array's length
//! first, so a first walk counts the entries and a second produces them as the client
//! reads. Both walks see the same frozen source, so they agree.

use std::cell::RefCell;

use super::aggregate::{Aggregator, Bucketer, TwaBounds};
use super::args::RangeArgs;
use super::chunk::{self, Sample};
use super::keys;
use super::marks::{self, ChunkWalk, StoredChunk};
use super::neighbours;
use super::series::{self, SeriesError, SeriesState};
use crate::block_cache::BlockCache;
use crate::block_cache::PinnedBlocks;
use crate::resp::{self, Protocol};
use crate::store::{RangeView, ShardStore};

mod stream;
pub use stream::{RangeStream, StreamedRange, STREAM_PLAN_SEGMENTS};

/// A range reply of more entries than this is streamed, not built at once: 32,768
/// samples or buckets (about 1 MiB in RESP2), almost four days of 10-second samples.
pub const INLINE_REPLY_ENTRIES_MAX: u64 = 32_768;

/// Encoded chunk bytes a `TS.MRANGE` series keeps from its listing (16 KiB), as a reply
/// may stream many series at once.
pub const MRANGE_KEPT_CHUNK_BYTES_MAX: usize = 16 * 1024;

/// Entries a shard's part of a `TS.MRANGE` reply builds at once over all its series
/// (32,768, about 1 MiB in RESP2, as for one range): the series after that bound are
/// streamed whatever their length, and keep none of their chunks from the listing, so
/// a query over thousands of series holds a frozen view of each, not their samples.
pub const MRANGE_INLINE_PART_ENTRIES_MAX: u64 = INLINE_REPLY_ENTRIES_MAX;

/// Reply bytes a streamed range adds to the connection's write buffer per step, before it
/// lets the socket take them.
pub const STREAM_STEP_BYTES: usize = 256 * 1024;

/// What shapes a range query's output, after the key.
#[derive(Clone, Debug)]
struct Plan {
    /// Stored samples in `[from_ms, to_ms]` (retention and `LATEST` applied).
    from_ms: u64,
    to_ms: u64,
    args: RangeArgs,
    reverse: bool,
}

/// Encoded chunk bytes a source keeps from the scan that lists its chunks (256 KiB):
/// a range that fits is read once; the chunks past it are looked up again in the view.
const KEPT_CHUNK_BYTES_MAX: usize = 256 * 1024;

/// A sealed chunk of the range: its key, its last timestamp, and its encoding if kept.
#[derive(Clone, Debug)]
struct ChunkRef {
    key: [u8; 18],
    first_ts_ms: u64,
    last_ts_ms: u64,
    sample_count: u32,
    value: Option<Vec<u8>>,
    /// Ranges its deletion marks remove ([`super::marks`]); usually none.
    deleted: Vec<(u64, u64)>,
}

/// What a range query reads, frozen when the command ran: `Send`, so a reply may be
/// streamed from it on the connection's shard.
#[derive(Clone, Debug)]
pub struct RangeSource {
    plan: Plan,
    chunks: Vec<ChunkRef>,
    /// Open samples in the range, in time order, then the `LATEST` bucket if any.
    open: Vec<Sample>,
    view: Option<RangeView>,
    /// For `twa`: the range's bounds and the samples right outside it, frozen with it.
    twa_bounds: TwaBounds,
    /// Chunks read from tables with `pread`, for lack of the owning store's cache.
    uncached_reads: std::cell::Cell<u64>,
    /// Blocks read through a shard's ring for the chunks a stream walks next
    /// ([`RangeStream::plan`]).
    pinned: PinnedBlocks,
}

impl RangeSource {
    /// Freezes what `TS.RANGE`/`TS.REVRANGE` (`reverse`) with `args` reads of the series
    /// in `state`, with `latest` the still-open bucket of a compaction destination
    /// (`LATEST`). Reads the headers of the chunks in the range from `store`.
    ///
    /// # Errors
    /// A failed read or a damaged chunk header.
    pub fn open(
        store: &ShardStore,
        state: &SeriesState,
        args: RangeArgs,
        latest: Option<Sample>,
        reverse: bool,
    ) -> Result<Self, SeriesError> {
        Self::open_keeping(store, state, args, latest, reverse, KEPT_CHUNK_BYTES_MAX)
    }

    /// As [`RangeSource::open`], keeping at most `kept_bytes_max` of encoded chunks from
    /// the listing (the rest are looked up again when walked).
    ///
    /// # Errors
    /// A failed read or a damaged chunk header.
    pub fn open_keeping(
        store: &ShardStore,
        state: &SeriesState,
        mut args: RangeArgs,
        latest: Option<Sample>,
        reverse: bool,
        kept_bytes_max: usize,
    ) -> Result<Self, SeriesError> {
        let newest = state.last.into_iter().chain(latest).map(|s| s.ts_ms).max();
        let mut source = Self {
            plan: Plan {
                from_ms: 1,
                to_ms: 0,
                args: args.clone(),
                reverse,
            },
            chunks: Vec::new(),
            open: Vec::new(),
            view: None,
            twa_bounds: TwaBounds::NONE,
            uncached_reads: std::cell::Cell::new(0),
            pinned: PinnedBlocks::new(),
        };
        let Some(newest) = newest else {
            return Ok(source);
        };
        let to_ms = args.to_ms.unwrap_or(newest);
        if let Some(aggregation) = args.aggregation.as_mut() {
            if aggregation.align_to_end {
                aggregation.align_ms = to_ms;
            }
        }
        // LATEST: the open bucket of a compaction comes after its stored buckets.
        let latest_all = latest;
        let latest = latest.filter(|l| (args.from_ms..=to_ms).contains(&l.ts_ms));
        let stored_to_ms = match latest {
            Some(open) => open.ts_ms.saturating_sub(1).min(to_ms),
            None => to_ms,
        };
        let from_ms = args.from_ms.max(series::retention_cutoff_ms(state));
        let stored = state.last.is_some()
            && from_ms <= stored_to_ms
            && latest.is_none_or(|open| open.ts_ms > 0);
        if stored {
            let id = state.meta.series_id;
            let mut kept_bytes = 0;
            let entries = store.scan_from(&keys::chunk_key(id, from_ms));
            for stored in ChunkWalk::new(entries, id, stored_to_ms) {
                let StoredChunk {
                    last_ts_ms,
                    value,
                    deleted,
                    ..
                } = stored?;
                let header = chunk::header(&value)?;
                kept_bytes += value.len();
                source.chunks.push(ChunkRef {
                    key: keys::chunk_key(id, last_ts_ms),
                    first_ts_ms: header.first_ts_ms,
                    last_ts_ms,
                    sample_count: header.sample_count,
                    value: (kept_bytes <= kept_bytes_max).then_some(value),
                    deleted,
                });
            }
            let first_not_kept = source.chunks.iter().find(|c| c.value.is_none());
            if let (Some(first), Some(last)) = (first_not_kept, source.chunks.last()) {
                source.view = Some(store.range_view(&first.key, &last.key));
            }
            source.open = state.open.range(from_ms, stored_to_ms).collect();
        }
        let is_twa = args
            .aggregation
            .is_some_and(|a| a.aggregator == Aggregator::Twa);
        if is_twa && stored {
            source.twa_bounds = twa_bounds(store, state, args.from_ms, to_ms, from_ms, latest_all)?;
        }
        source.open.extend(latest);
        source.plan = Plan {
            from_ms,
            to_ms: stored_to_ms,
            args,
            reverse,
        };
        Ok(source)
    }

    /// Whether a filter may drop samples of the range.
    fn filters(&self) -> bool {
        let args = &self.plan.args;
        args.filter_by_ts.is_some() || args.filter_by_value.is_some()
    }

    /// Whether every sample in the range is an entry of the reply (no aggregation, no
    /// filter), so counting needs no decoding where chunk headers tell.
    fn is_raw(&self) -> bool {
        let args = &self.plan.args;
        args.aggregation.is_none() && args.filter_by_ts.is_none() && args.filter_by_value.is_none()
    }

    /// Segments: one per chunk, then the open samples after the last chunk.
    fn segment_count(&self) -> usize {
        self.chunks.len() + 1
    }

    /// The chunk of the segment taken `walk_index`-th in reply order (none for the open
    /// samples after every chunk).
    fn walk_chunk(&self, walk_index: usize) -> Option<&ChunkRef> {
        self.chunks.get(self.segment_at(walk_index))
    }

    /// The segment taken `walk_index`-th in reply order: backwards for `TS.REVRANGE`.
    fn segment_at(&self, walk_index: usize) -> usize {
        match self.plan.reverse {
            false => walk_index,
            true => self.segment_count() - 1 - walk_index,
        }
    }

    /// Which open samples segment `index` holds: those after the previous chunk's last
    /// timestamp, up to its own chunk's (every one left, after the last chunk).
    fn open_span(&self, index: usize) -> std::ops::Range<usize> {
        let after = |chunk: &ChunkRef| self.open.partition_point(|s| s.ts_ms <= chunk.last_ts_ms);
        let from = index.checked_sub(1).map_or(0, |i| after(&self.chunks[i]));
        let to = self.chunks.get(index).map_or(self.open.len(), after);
        from..to
    }

    /// The samples of segment `index` (in time order), read through `cache` (the cache
    /// of the store the source was opened on, or `None` to `pread`).
    fn segment(
        &self,
        index: usize,
        cache: Option<&RefCell<BlockCache>>,
    ) -> Result<Vec<Sample>, SeriesError> {
        let open_span = self.open_span(index);
        let Some(chunk) = self.chunks.get(index) else {
            return Ok(self.open[open_span].to_vec());
        };
        let sealed = match &chunk.value {
            Some(value) => chunk::decode(value)?,
            None => {
                let view = self.view.as_ref().expect("a chunk not kept is in the view");
                let (value, preads) = view.get_pinned(&chunk.key, cache, &self.pinned)?;
                if cache.is_none() {
                    self.uncached_reads.set(self.uncached_reads.get() + preads);
                }
                match value {
                    Some(value) => chunk::decode(&value)?,
                    // Deleted since the list was made: impossible in a frozen view.
                    None => Vec::new(),
                }
            }
        };
        let (from_ms, to_ms) = (self.plan.from_ms, self.plan.to_ms);
        let mut sealed = sealed;
        if !chunk.deleted.is_empty() {
            sealed.retain(|s| !marks::is_deleted(&chunk.deleted, s.ts_ms));
        }
        if !(from_ms <= chunk.first_ts_ms && chunk.last_ts_ms <= to_ms) {
            sealed.retain(|s| (from_ms..=to_ms).contains(&s.ts_ms));
        }
        let open = &self.open[open_span];
        if open.is_empty() {
            return Ok(sealed);
        }
        Ok(merge(sealed, open.to_vec()))
    }

    /// The number of samples in segment `index`, known without reading its chunk when
    /// the chunk lies inside the range, no deletion mark cuts it and no open sample falls
    /// in its span.
    fn segment_len(
        &self,
        index: usize,
        cache: Option<&RefCell<BlockCache>>,
    ) -> Result<usize, SeriesError> {
        let open_span = self.open_span(index);
        let Some(chunk) = self.chunks.get(index) else {
            return Ok(open_span.len());
        };
        let inside = self.plan.from_ms <= chunk.first_ts_ms && chunk.last_ts_ms <= self.plan.to_ms;
        if inside && open_span.is_empty() && chunk.deleted.is_empty() {
            return Ok(chunk.sample_count as usize);
        }
        Ok(self.segment(index, cache)?.len())
    }
}

/// What `twa` needs of a range over `[range_from_ms, to_ms]` (stored samples from
/// `from_ms`, the retention window applied): the bounds, the series' last sample before
/// `from_ms`, and its first after `to_ms`, or else `latest` (the open bucket of a
/// compaction) when it lies past the range and past every stored sample, as
/// RedisTimeSeries's `LATEST` writes it into the series for the query.
fn twa_bounds(
    store: &ShardStore,
    state: &SeriesState,
    range_from_ms: u64,
    to_ms: u64,
    from_ms: u64,
    latest: Option<Sample>,
) -> Result<TwaBounds, SeriesError> {
    let newest_stored_ms = state.last.map_or(0, |l| l.ts_ms);
    let after = match neighbours::first_after(store, state, to_ms)? {
        Some(after) => Some(after),
        None => latest.filter(|l| l.ts_ms > to_ms && to_ms > newest_stored_ms),
    };
    Ok(TwaBounds {
        from_ms: range_from_ms,
        to_ms,
        before: neighbours::last_before(store, state, from_ms)?,
        after,
    })
}

/// Feeds `samples` to `bucketer`, those `keeps` refuses as dropped ones (for `twa`). Kept
/// out of [`RangeCursor::step`], so the loop every other range runs stays as it was.
#[inline(never)]
fn push_noting_skipped(
    bucketer: &mut Bucketer,
    samples: Vec<Sample>,
    keeps: impl Fn(&Sample) -> bool,
    out: &mut Vec<Sample>,
) {
    for s in samples {
        match keeps(&s) {
            true => bucketer.push_kept(s, &mut |b| out.push(b)),
            false => bucketer.skip(s),
        }
    }
}

/// Merges two time-ordered runs; at equal timestamps `newer` wins.
pub(super) fn merge(older: Vec<Sample>, newer: Vec<Sample>) -> Vec<Sample> {
    let mut out = Vec::with_capacity(older.len() + newer.len());
    let (mut a, mut b) = (older.into_iter().peekable(), newer.into_iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.ts_ms < y.ts_ms => out.push(a.next().expect("peeked")),
            (Some(x), Some(y)) if x.ts_ms == y.ts_ms => {
                a.next();
                out.push(b.next().expect("peeked"));
            }
            (_, Some(_)) => out.push(b.next().expect("peeked")),
            (Some(_), None) => out.push(a.next().expect("peeked")),
            (None, None) => return out,
        }
    }
}

/// A position in a [`RangeSource`]'s output.
#[derive(Clone, Debug)]
pub struct RangeCursor {
    /// Segments taken so far, in walk order.
    segments_done: usize,
    bucketer: Option<Bucketer>,
    /// Entries produced so far.
    produced: u64,
    done: bool,
}

impl RangeCursor {
    /// A cursor at the start of `source`'s output.
    pub fn new(source: &RangeSource) -> Self {
        Self {
            segments_done: 0,
            bucketer: source
                .plan
                .args
                .aggregation
                .map(|a| Bucketer::with_twa_bounds(a, source.plan.reverse, source.twa_bounds)),
            produced: 0,
            done: false,
        }
    }

    /// Appends the next entries (samples or buckets) to `out`, in reply order: those of
    /// at least one segment, unless the output has ended. Returns false once it has.
    ///
    /// # Errors
    /// A failed read or a damaged chunk.
    pub fn step(
        &mut self,
        source: &RangeSource,
        cache: Option<&RefCell<BlockCache>>,
        out: &mut Vec<Sample>,
    ) -> Result<bool, SeriesError> {
        let limit = source.plan.args.count.unwrap_or(u64::MAX);
        if self.done || self.produced >= limit {
            self.done = true;
            return Ok(false);
        }
        let start = out.len();
        let total = source.segment_count();
        if self.segments_done < total {
            let index = source.segment_at(self.segments_done);
            self.segments_done += 1;
            let mut samples = source.segment(index, cache)?;
            if source.plan.reverse {
                samples.reverse();
            }
            let args = &source.plan.args;
            let keeps = |s: &Sample| {
                args.filter_by_ts
                    .as_ref()
                    .is_none_or(|list| list.binary_search(&s.ts_ms).is_ok())
                    && args
                        .filter_by_value
                        .is_none_or(|(min, max)| s.value >= min && s.value <= max)
            };
            match self.bucketer.as_mut() {
                // `twa` reads the dropped samples next to the kept ones.
                Some(bucketer) if bucketer.wants_skipped() && source.filters() => {
                    push_noting_skipped(bucketer, samples, keeps, out);
                }
                Some(bucketer) => samples
                    .into_iter()
                    .filter(keeps)
                    .for_each(|s| bucketer.push(s, &mut |b| out.push(b))),
                None => out.extend(samples.into_iter().filter(keeps)),
            }
        } else {
            if let Some(bucketer) = self.bucketer.as_mut() {
                bucketer.finish(&mut |b| out.push(b));
            }
            self.done = true;
        }
        let room = usize::try_from(limit - self.produced).unwrap_or(usize::MAX);
        out.truncate(start + (out.len() - start).min(room));
        self.produced += (out.len() - start) as u64;
        Ok(!self.done || out.len() > start)
    }

    /// Counts the entries left from here to the end.
    ///
    /// # Errors
    /// As [`RangeCursor::step`].
    pub fn count_rest(
        mut self,
        source: &RangeSource,
        cache: Option<&RefCell<BlockCache>>,
    ) -> Result<u64, SeriesError> {
        let args = &source.plan.args;
        if source.is_raw() {
            // Every sample is an entry: count segments from chunk headers where they tell.
            let mut count = 0u64;
            for index in self.segments_done..source.segment_count() {
                count += source.segment_len(index, cache)? as u64;
            }
            return Ok(count.min(args.count.unwrap_or(u64::MAX).saturating_sub(self.produced)));
        }
        let mut scratch = Vec::new();
        let mut count = 0;
        while self.step(source, cache, &mut scratch)? {
            count += scratch.len() as u64;
            scratch.clear();
        }
        Ok(count)
    }
}

/// Every entry of a range query, in reply order (for replies built at once: `TS.MRANGE`).
///
/// # Errors
/// A failed read or a damaged entry.
pub fn collect(
    store: &ShardStore,
    state: &SeriesState,
    args: RangeArgs,
    latest: Option<Sample>,
    reverse: bool,
) -> Result<Vec<Sample>, SeriesError> {
    let source = RangeSource::open(store, state, args, latest, reverse)?;
    let mut cursor = RangeCursor::new(&source);
    let mut out = Vec::new();
    while cursor.step(&source, Some(store.block_cache()), &mut out)? {}
    Ok(out)
}

/// A range reply: built at once, or to stream.
#[derive(Debug)]
pub enum RangeReply {
    /// The encoded reply, and how many entries it holds.
    Encoded(Vec<u8>, u64),
    /// More entries than [`INLINE_REPLY_ENTRIES_MAX`]: stream it.
    Stream(Box<RangeStream>),
}

/// Builds the reply of a range query from `source`, or, past
/// [`INLINE_REPLY_ENTRIES_MAX`] entries, counts them and returns it to stream: as
/// [`reply_within`] with that bound.
///
/// # Errors
/// A failed read or a damaged chunk.
pub fn reply(
    store: &ShardStore,
    source: RangeSource,
    proto: Protocol,
) -> Result<RangeReply, SeriesError> {
    reply_within(store, source, proto, INLINE_REPLY_ENTRIES_MAX)
}

/// Builds the reply of a range query from `source`, or, past `inline_entries_max`
/// entries, counts them and returns it to stream (so with 0, every reply of at least one
/// entry streams). Without aggregation or filters the count comes first, mostly from
/// chunk headers; otherwise the reply is built until it passes the bound.
///
/// # Errors
/// A failed read or a damaged chunk.
pub fn reply_within(
    store: &ShardStore,
    source: RangeSource,
    proto: Protocol,
    inline_entries_max: u64,
) -> Result<RangeReply, SeriesError> {
    let cache = Some(store.block_cache());
    let stream = |source: RangeSource, total: u64| {
        let cursor = RangeCursor::new(&source);
        Ok(RangeReply::Stream(Box::new(RangeStream::new(
            source, cursor, total, proto,
        ))))
    };
    let mut samples = Vec::new();
    if source.is_raw() {
        let total = RangeCursor::new(&source).count_rest(&source, cache)?;
        if total > inline_entries_max {
            return stream(source, total);
        }
        // The length is known: the entries go straight after the header.
        let mut out = Vec::new();
        resp::array_header(&mut out, total as usize);
        let mut cursor = RangeCursor::new(&source);
        while cursor.step(&source, cache, &mut samples)? {
            for s in samples.drain(..) {
                super::reply::sample(&mut out, proto, s);
            }
        }
        debug_assert_eq!(cursor.produced, total, "the count pass and the walk agree");
        return Ok(RangeReply::Encoded(out, total));
    }
    let mut cursor = RangeCursor::new(&source);
    let mut body = Vec::new();
    let mut entries = 0u64;
    while cursor.step(&source, cache, &mut samples)? {
        entries += samples.len() as u64;
        if entries > inline_entries_max {
            let total = RangeCursor::new(&source).count_rest(&source, cache)?;
            return stream(source, total);
        }
        for s in samples.drain(..) {
            super::reply::sample(&mut body, proto, s);
        }
    }
    let mut out = Vec::with_capacity(body.len() + 16);
    resp::array_header(&mut out, usize::try_from(entries).unwrap_or(usize::MAX));
    out.extend_from_slice(&body);
    Ok(RangeReply::Encoded(out, entries))
}
