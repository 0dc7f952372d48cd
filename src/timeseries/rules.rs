//! Compaction rules (`TS.CREATERULE src dst AGGREGATION agg bucketDuration
//! [alignTimestamp]`, `TS.DELETERULE src dst`, RedisTimeSeries 1.10): every bucket of the
//! source that closes is folded by the rule's aggregator and written into the destination
//! at the bucket's start, with the destination's `LAST` semantics.
//!
//! A rule lives in the source's metadata ([`CompactionRule`]) and the destination names
//! its source (`source_key`), both durable entries of the shard. Nothing else is stored:
//! the bucket a rule has open is the one holding the source's newest sample, and its
//! aggregate is computed from the source's samples when needed (a closed bucket when a
//! sample lands past it, an older bucket again when an out-of-order sample lands in it,
//! the open bucket for `LATEST`). So a restart loses nothing: the rule continues from the
//! source's samples where it stopped. With both series on one shard, the destination's
//! write rides the same WAL batch as the sample that closed the bucket, so both are
//! durable together; with the destination on another shard, the closed bucket is handed
//! over at least once ([`super::handover`]).
//!
//! As in RedisTimeSeries, a rule folds only the samples that come after it: the bucket
//! open when it is created starts empty (the rule's `samples_from_ms`). `TS.DEL` on a
//! source recalculates or removes the destination's buckets it touched ([`after_delete`]).

use crate::base::SeqNo;
use crate::resp;
use crate::store::ShardStore;

use super::aggregate::{Aggregation, Aggregator, BucketTimestamp};
use super::chunk::Sample;
use super::exec::NO_KEY;
use super::handover::{self, PendingUnlink, UnlinkSide};
use super::keys;
use super::meta::{CompactionRule, SeriesMeta};
use super::neighbours;
use super::series::{self, SeriesCache, SeriesError};
use super::twa;

fn refused(text: &str) -> SeriesError {
    SeriesError::Refused(text.to_string())
}

fn wrong_arity(name: &str) -> SeriesError {
    SeriesError::Refused(crate::command::wrong_arity(name))
}

/// The bucket arithmetic of `rule` (no reporting options: a compaction writes at the
/// bucket's start).
fn buckets(rule: &CompactionRule) -> Aggregation {
    Aggregation {
        aggregator: rule.aggregator,
        bucket_ms: rule.bucket_ms,
        align_ms: rule.align_ms,
        align_to_end: false,
        bucket_timestamp: BucketTimestamp::Start,
        empty: false,
    }
}

/// The metadata of series `key`, or the error RedisTimeSeries gives for a missing key
/// or one holding a string.
fn meta_of(
    store: &ShardStore,
    cache: &mut SeriesCache,
    key: &[u8],
) -> Result<SeriesMeta, SeriesError> {
    if series::string_exists(store, key)? {
        return Err(refused(super::exec::WRONGTYPE));
    }
    Ok(series::load(store, cache, key)?
        .ok_or_else(|| refused(NO_KEY))?
        .meta
        .clone())
}

/// Stores `meta` as series `key`'s metadata and in the cache.
fn put_meta(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    key: &[u8],
    meta: SeriesMeta,
) -> Result<SeqNo, SeriesError> {
    let seq = store.put(&keys::meta_key(key), &meta.encode());
    if let Some(state) = series::load(store, cache, key)? {
        state.meta = meta;
        state.wrote(seq);
    }
    Ok(seq)
}

/// A parsed `TS.CREATERULE`: its keys and the rule to add to the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRequest {
    /// The source series.
    pub src_key: Vec<u8>,
    /// The rule (with `samples_from_ms` still 0: set when it is added).
    pub rule: CompactionRule,
}

/// Parses `TS.CREATERULE src dst AGGREGATION agg bucketDuration [alignTimestamp]` (`args`
/// with the name), checked in RedisTimeSeries's order up to the keys' existence.
///
/// # Errors
/// Its error texts: wrong arity, the aggregation's, same keys.
pub fn parse_create(args: &[&[u8]]) -> Result<RuleRequest, SeriesError> {
    if !(6..=7).contains(&args.len()) || !args[3].eq_ignore_ascii_case(b"AGGREGATION") {
        return Err(wrong_arity("ts.createrule"));
    }
    let aggregator =
        Aggregator::parse(args[4]).ok_or_else(|| refused("ERR TSDB: Unknown aggregation type"))?;
    let bucket_ms = crate::command::parse_i64(args[5])
        .ok_or_else(|| refused("ERR TSDB: Couldn't parse AGGREGATION"))?;
    if bucket_ms <= 0 {
        return Err(refused(
            "ERR TSDB: bucketDuration must be greater than zero",
        ));
    }
    let align_ms = match args.get(6) {
        Some(word) => crate::command::parse_i64(word)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| refused("ERR TSDB: Couldn't parse alignTimestamp"))?,
        None => 0,
    };
    let (src, dst) = (args[1], args[2]);
    if src == dst {
        return Err(refused(
            "ERR TSDB: the source key and destination key should be different",
        ));
    }
    Ok(RuleRequest {
        src_key: src.to_vec(),
        rule: CompactionRule {
            dest_key: dst.to_vec(),
            aggregator,
            bucket_ms: bucket_ms as u64,
            align_ms,
            samples_from_ms: 0,
        },
    })
}

/// The metadata of source `src`, if it may take a rule.
///
/// # Errors
/// A missing key, a string, a source that is a destination.
pub fn check_source(
    store: &ShardStore,
    cache: &mut SeriesCache,
    src: &[u8],
) -> Result<SeriesMeta, SeriesError> {
    let src_meta = meta_of(store, cache, src)?;
    if src_meta.source_key.is_some() {
        return Err(refused(
            "ERR TSDB: the source key already has a source rule",
        ));
    }
    Ok(src_meta)
}

/// Makes `dst` the destination of a rule from `src` (its `sourceKey`), if it may be one.
///
/// # Errors
/// A missing key, a string, a destination that has rules or a source already.
pub fn link_destination(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    src: &[u8],
    dst: &[u8],
) -> Result<SeqNo, SeriesError> {
    let mut dst_meta = meta_of(store, cache, dst)?;
    if !dst_meta.rules.is_empty() {
        return Err(refused(
            "ERR TSDB: the destination key already has a dst rule",
        ));
    }
    if dst_meta.source_key.is_some() {
        return Err(refused(
            "ERR TSDB: the destination key already has a src rule",
        ));
    }
    dst_meta.source_key = Some(src.to_vec());
    put_meta(store, cache, dst, dst_meta)
}

/// Adds `request`'s rule to its source (checked again: with a destination on another
/// shard, the source may have changed while the destination was linked). The rule folds
/// the samples after the source's newest one only, so the bucket open now starts empty,
/// as in RedisTimeSeries.
///
/// # Errors
/// As [`check_source`].
pub fn add_rule(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    request: &RuleRequest,
) -> Result<SeqNo, SeriesError> {
    let src = &request.src_key;
    let mut src_meta = check_source(store, cache, src)?;
    let newest = series::load(store, cache, src)?.and_then(|s| s.last);
    let mut rule = request.rule.clone();
    rule.samples_from_ms = newest.map_or(0, |l| l.ts_ms.saturating_add(1));
    src_meta.rules.push(rule);
    put_meta(store, cache, src, src_meta)
}

/// `TS.CREATERULE` with both series on this shard, checked in RedisTimeSeries's order.
///
/// # Errors
/// Its error texts: those of [`parse_create`], [`check_source`], [`link_destination`].
pub fn create(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    args: &[&[u8]],
    out: &mut Vec<u8>,
) -> Result<SeqNo, SeriesError> {
    let request = parse_create(args)?;
    check_source(store, cache, &request.src_key)?;
    let linked = link_destination(store, cache, &request.src_key, &request.rule.dest_key)?;
    let seq = linked.max(add_rule(store, cache, &request)?);
    resp::simple(out, "OK");
    Ok(seq)
}

/// Removes the rule from `src` into `dst` (the source's half of `TS.DELETERULE`).
///
/// # Errors
/// A missing source, `ERR TSDB: compaction rule does not exist`.
pub fn drop_rule(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    src: &[u8],
    dst: &[u8],
) -> Result<SeqNo, SeriesError> {
    let mut src_meta = meta_of(store, cache, src)?;
    let before = src_meta.rules.len();
    src_meta.rules.retain(|r| r.dest_key != dst);
    if src_meta.rules.len() == before {
        return Err(refused("ERR TSDB: compaction rule does not exist"));
    }
    put_meta(store, cache, src, src_meta)
}

/// `dst` no longer has `src` as its source (the destination's half of `TS.DELETERULE`).
///
/// # Errors
/// A missing destination.
pub fn unlink_destination(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    src: &[u8],
    dst: &[u8],
) -> Result<SeqNo, SeriesError> {
    let mut dst_meta = meta_of(store, cache, dst)?;
    if dst_meta.source_key.as_deref() != Some(src) {
        return Ok(store.last_seq());
    }
    dst_meta.source_key = None;
    put_meta(store, cache, dst, dst_meta)
}

/// `TS.DELETERULE src dst` with both series on this shard.
///
/// # Errors
/// A missing source, `ERR TSDB: compaction rule does not exist`, then a missing
/// destination (the source's rule is gone by then, as in RedisTimeSeries).
pub fn delete(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    args: &[&[u8]],
    out: &mut Vec<u8>,
) -> Result<SeqNo, SeriesError> {
    let (src, dst) = (args[1], args[2]);
    let seq = drop_rule(store, cache, src, dst)?;
    let seq = seq.max(unlink_destination(store, cache, src, dst)?);
    resp::simple(out, "OK");
    Ok(seq)
}

/// Unlinks series `key` (about to be deleted, with metadata `meta`) from its rules: its
/// destinations no longer name it as their source, and its source drops the rule into it.
/// The other side of a rule across shards is told by a durable pending unlink
/// ([`handover::mark_unlink`]).
///
/// # Errors
/// A failed read or a damaged entry.
pub fn unlink(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    key: &[u8],
    meta: &SeriesMeta,
) -> Result<(), SeriesError> {
    for rule in &meta.rules {
        if !cache.route.is_local(&rule.dest_key) {
            let unlink = PendingUnlink {
                side: UnlinkSide::Destination,
                src_key: key.to_vec(),
                dst_key: rule.dest_key.clone(),
            };
            handover::mark_unlink(store, cache, unlink);
        } else {
            // A destination that is gone (or a string now) has nothing to let go of.
            match unlink_destination(store, cache, key, &rule.dest_key) {
                Err(SeriesError::Refused(_)) | Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(src) = &meta.source_key {
        if !cache.route.is_local(src) {
            let unlink = PendingUnlink {
                side: UnlinkSide::Source,
                src_key: src.clone(),
                dst_key: key.to_vec(),
            };
            handover::mark_unlink(store, cache, unlink);
        } else if let Some(state) = series::load(store, cache, src)? {
            let mut src_meta = state.meta.clone();
            src_meta.rules.retain(|r| r.dest_key != key);
            put_meta(store, cache, src, src_meta)?;
        }
    }
    Ok(())
}

/// The aggregate of `rule`'s bucket holding `ts_ms` from the source's samples (those the
/// rule folds: from its `samples_from_ms` on), `None` if the bucket holds none.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn bucket_value(
    store: &ShardStore,
    src: &series::SeriesState,
    rule: &CompactionRule,
    ts_ms: u64,
) -> Result<Option<Sample>, SeriesError> {
    let (start, end) = buckets(rule).bucket_span(ts_ms);
    let samples = series::read_range(store, src, start.max(rule.samples_from_ms), end)?;
    if samples.is_empty() {
        return Ok(None);
    }
    let value = match rule.aggregator {
        Aggregator::Twa => twa_value(store, src, rule, &samples, (start, end))?,
        aggregator => aggregator.fold(&samples),
    };
    Ok(Some(Sample {
        ts_ms: start,
        value,
    }))
}

/// The `twa` of the rule's bucket `[start, end]` holding `samples`, as RedisTimeSeries
/// 1.10's compaction computes it: the bucket spans `[start, end + 1]`, the sample before
/// it is the previous bucket's last one (if the rule folded it), and the one after it
/// the sample that closed it (none while the bucket is open, as for `LATEST`).
fn twa_value(
    store: &ShardStore,
    src: &series::SeriesState,
    rule: &CompactionRule,
    samples: &[Sample],
    (start, end): (u64, u64),
) -> Result<f64, SeriesError> {
    let before =
        neighbours::last_before(store, src, start)?.filter(|b| b.ts_ms >= rule.samples_from_ms);
    let bucket = twa::Bucket {
        samples,
        before,
        after: neighbours::first_after(store, src, end)?,
        edges: twa::Edges {
            start_ms: start,
            end_ms: end.saturating_add(1),
        },
    };
    Ok(twa::bucket_value(bucket, false))
}

/// What the destination of a rule needs for one bucket: its start, and its aggregate
/// (`None`: the bucket holds no sample the rule folds, so it is removed).
struct BucketUpdate {
    dst_key: Vec<u8>,
    start_ms: u64,
    value: Option<f64>,
}

/// Reads the bucket of `src`'s `rule` holding `ts_ms`: the update its destination needs,
/// or `None` when there is nothing to write (an empty bucket, unless `remove_empty`).
fn bucket_update(
    store: &ShardStore,
    src: &series::SeriesState,
    rule: &CompactionRule,
    ts_ms: u64,
    remove_empty: bool,
) -> Result<Option<BucketUpdate>, SeriesError> {
    let bucket = bucket_value(store, src, rule, ts_ms)?;
    if bucket.is_none() && !remove_empty {
        return Ok(None);
    }
    Ok(Some(BucketUpdate {
        dst_key: rule.dest_key.clone(),
        start_ms: buckets(rule).bucket_start(ts_ms),
        value: bucket.map(|b| b.value),
    }))
}

/// Writes `update` into the destination of source `src_key` (series `series_id`):
/// directly when the destination is on this shard, else as a pending bucket for its
/// shard.
fn write_bucket(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    src_key: &[u8],
    series_id: u64,
    update: BucketUpdate,
) -> Result<SeqNo, SeriesError> {
    if cache.route.is_local(&update.dst_key) {
        let (dst_key, start_ms, value) = (&update.dst_key, update.start_ms, update.value);
        return handover::store_bucket(store, cache, src_key, dst_key, start_ms, value);
    }
    let pending = handover::PendingBucket {
        series_id,
        bucket_start_ms: update.start_ms,
        dst_key: update.dst_key,
    };
    Ok(handover::mark(store, cache, src_key, pending))
}

/// Runs source `src_key`'s rules after `sample` was stored (`previous` was the newest
/// sample before it): a sample past the open bucket closes it, and one before it
/// recomputes its own bucket; either goes into the destination. Returns the sequence
/// number of the last write (0 if none).
///
/// # Errors
/// A failed read or a damaged entry.
pub fn after_add(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    src_key: &[u8],
    previous: Option<Sample>,
    sample: Sample,
) -> Result<SeqNo, SeriesError> {
    let route = cache.route;
    let Some(src) = series::load(store, cache, src_key)? else {
        return Ok(SeqNo(0));
    };
    // The buckets to bring up to date: a sample past the open bucket closes it, one
    // before it recomputes its own. Most samples land in the open bucket: nothing to do
    // then, and the series' state is not copied.
    let mut due = Vec::new();
    let mut remote = Vec::new();
    for rule in &src.meta.rules {
        if !route.is_local(&rule.dest_key) {
            remote.push(rule.dest_key.clone());
        }
        let Some(previous) = previous else { continue };
        let b = buckets(rule);
        let (open, landed) = (b.bucket_start(previous.ts_ms), b.bucket_start(sample.ts_ms));
        match landed.cmp(&open) {
            std::cmp::Ordering::Greater => due.push((rule, previous.ts_ms)),
            std::cmp::Ordering::Less => due.push((rule, sample.ts_ms)),
            std::cmp::Ordering::Equal => {}
        }
    }
    // Each bucket is read while the source is borrowed, then written.
    let series_id = src.meta.series_id;
    let mut updates = Vec::with_capacity(due.len());
    for (rule, redo_ts_ms) in &due {
        updates.extend(bucket_update(store, src, rule, *redo_ts_ms, false)?);
    }
    for dst_key in remote {
        note_latest_changed(store, cache, src_key, dst_key);
    }
    let mut seq = SeqNo(0);
    for update in updates {
        seq = seq.max(write_bucket(store, cache, src_key, series_id, update)?);
    }
    Ok(seq)
}

/// Runs source `src_key`'s rules after `TS.DEL` removed the samples at `removed_ts_ms`
/// (`before` is the series' state before): as RedisTimeSeries 1.10 documents for
/// `TS.DEL`, each closed bucket that lost samples is recalculated from the samples left,
/// or removed from the destination if none is left; a bucket reaching before the
/// retention window (its original samples partly expired) is left as it was.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn after_delete(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    src_key: &[u8],
    before: &series::SeriesState,
    removed_ts_ms: &[u64],
) -> Result<SeqNo, SeriesError> {
    let Some(newest) = before.last else {
        return Ok(SeqNo(0));
    };
    let cutoff_ms = series::retention_cutoff_ms(before);
    let Some(src) = series::load(store, cache, src_key)? else {
        return Ok(SeqNo(0));
    };
    let src = src.clone();
    let mut seq = SeqNo(0);
    for rule in &src.meta.rules {
        if !cache.route.is_local(&rule.dest_key) {
            note_latest_changed(store, cache, src_key, rule.dest_key.clone());
        }
        let b = buckets(rule);
        let open = b.bucket_start(newest.ts_ms);
        let mut starts: Vec<u64> = removed_ts_ms.iter().map(|&t| b.bucket_start(t)).collect();
        starts.dedup();
        for start in starts {
            // Open, partly expired, or wholly before the rule: not the rule's to change.
            let (_, end) = b.bucket_span(start);
            if start >= open || start < cutoff_ms || end < rule.samples_from_ms {
                continue;
            }
            if let Some(update) = bucket_update(store, &src, rule, start, true)? {
                let id = src.meta.series_id;
                seq = seq.max(write_bucket(store, cache, src_key, id, update)?);
            }
        }
    }
    Ok(seq)
}

/// Queues a [`handover::RuleNotice::Latest`] for the rule of source `src_key` into
/// `dst_key`, a series of another shard: the source's open bucket may have changed by the
/// write just made.
fn note_latest_changed(
    store: &ShardStore,
    cache: &mut SeriesCache,
    src_key: &[u8],
    dst_key: Vec<u8>,
) {
    cache.notices.push(handover::RuleNotice::Latest {
        src_key: src_key.to_vec(),
        dst_key,
        seq: store.last_seq(),
    });
}

/// For `LATEST`: the still-open bucket of compacted series `dst_key` (with metadata
/// `dst_meta`), computed from its source; `None` if it is no compaction or the source has
/// no sample. A source on another shard is not read: its open bucket is what that shard
/// last sent ([`SeriesCache::remote_latest`]), none before it sent one.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn latest(
    store: &ShardStore,
    cache: &mut SeriesCache,
    dst_key: &[u8],
    dst_meta: &SeriesMeta,
) -> Result<Option<Sample>, SeriesError> {
    let Some(src_key) = &dst_meta.source_key else {
        return Ok(None);
    };
    if !cache.route.is_local(src_key) {
        return Ok(cache
            .remote_latest
            .get(dst_key)
            .filter(|(from, _)| from == src_key)
            .and_then(|(_, open)| *open));
    }
    open_bucket(store, cache, src_key, dst_key)
}

/// The open bucket of source `src_key`'s rule into `dst_key` (both keys of series; the
/// source on this shard), `None` if there is no such rule or no sample in the bucket.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn open_bucket(
    store: &ShardStore,
    cache: &mut SeriesCache,
    src_key: &[u8],
    dst_key: &[u8],
) -> Result<Option<Sample>, SeriesError> {
    let Some(src) = series::load(store, cache, src_key)? else {
        return Ok(None);
    };
    let (Some(rule), Some(last)) = (
        src.meta.rules.iter().find(|r| r.dest_key == dst_key),
        src.last,
    ) else {
        return Ok(None);
    };
    bucket_value(store, src, rule, last.ts_ms)
}
