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
//! source's samples where it stopped. The destination's write rides the same WAL batch
//! as the sample that closed the bucket, so both are durable together.
//!
//! Both series must live on one shard (the router refuses a rule across shards).

use crate::base::SeqNo;
use crate::resp;
use crate::store::ShardStore;

use super::aggregate::{Aggregation, Aggregator, BucketTimestamp};
use super::chunk::Sample;
use super::exec::NO_KEY;
use super::keys;
use super::meta::{CompactionRule, DuplicatePolicy, SeriesMeta};
use super::series::{self, SeriesCache, SeriesError};

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
    }
    Ok(seq)
}

/// `TS.CREATERULE src dst AGGREGATION agg bucketDuration [alignTimestamp]` (`args` with
/// the name), checked in RedisTimeSeries's order.
///
/// # Errors
/// Its error texts: wrong arity, the aggregation's, same keys, missing keys, a source
/// that is a destination, a destination that has rules or a source already.
pub fn create(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    args: &[&[u8]],
    out: &mut Vec<u8>,
) -> Result<SeqNo, SeriesError> {
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
    let mut src_meta = meta_of(store, cache, src)?;
    if src_meta.source_key.is_some() {
        return Err(refused(
            "ERR TSDB: the source key already has a source rule",
        ));
    }
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
    src_meta.rules.push(CompactionRule {
        dest_key: dst.to_vec(),
        aggregator,
        bucket_ms: bucket_ms as u64,
        align_ms,
    });
    let seq = put_meta(store, cache, dst, dst_meta)?.max(put_meta(store, cache, src, src_meta)?);
    resp::simple(out, "OK");
    Ok(seq)
}

/// `TS.DELETERULE src dst`.
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
    let mut src_meta = meta_of(store, cache, src)?;
    let before = src_meta.rules.len();
    src_meta.rules.retain(|r| r.dest_key != dst);
    if src_meta.rules.len() == before {
        return Err(refused("ERR TSDB: compaction rule does not exist"));
    }
    let mut seq = put_meta(store, cache, src, src_meta)?;
    let mut dst_meta = meta_of(store, cache, dst)?;
    dst_meta.source_key = None;
    seq = seq.max(put_meta(store, cache, dst, dst_meta)?);
    resp::simple(out, "OK");
    Ok(seq)
}

/// Unlinks series `key` (about to be deleted, with metadata `meta`) from its rules: its
/// destinations no longer name it as their source, and its source drops the rule into it.
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
        if let Some(state) = series::load(store, cache, &rule.dest_key)? {
            let mut dst_meta = state.meta.clone();
            if dst_meta.source_key.as_deref() == Some(key) {
                dst_meta.source_key = None;
                put_meta(store, cache, &rule.dest_key, dst_meta)?;
            }
        }
    }
    if let Some(src) = &meta.source_key {
        if let Some(state) = series::load(store, cache, src)? {
            let mut src_meta = state.meta.clone();
            src_meta.rules.retain(|r| r.dest_key != key);
            put_meta(store, cache, src, src_meta)?;
        }
    }
    Ok(())
}

/// The aggregate of `rule`'s bucket holding `ts_ms` from the source's samples, `None` if
/// the bucket holds none.
fn bucket_value(
    store: &ShardStore,
    src: &series::SeriesState,
    rule: &CompactionRule,
    ts_ms: u64,
) -> Result<Option<Sample>, SeriesError> {
    let (start, end) = buckets(rule).bucket_span(ts_ms);
    let samples = series::read_range(store, src, start, end)?;
    Ok((!samples.is_empty()).then(|| Sample {
        ts_ms: start,
        value: rule.aggregator.fold(&samples),
    }))
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
    let Some(previous) = previous else {
        return Ok(SeqNo(0));
    };
    let Some(src) = series::load(store, cache, src_key)? else {
        return Ok(SeqNo(0));
    };
    let src = src.clone();
    let mut seq = SeqNo(0);
    for rule in &src.meta.rules {
        let b = buckets(rule);
        let (open, landed) = (b.bucket_start(previous.ts_ms), b.bucket_start(sample.ts_ms));
        let redo_ts_ms = match landed.cmp(&open) {
            std::cmp::Ordering::Greater => previous.ts_ms,
            std::cmp::Ordering::Less => sample.ts_ms,
            std::cmp::Ordering::Equal => continue,
        };
        let Some(bucket) = bucket_value(store, &src, rule, redo_ts_ms)? else {
            continue;
        };
        if let Some(dst) = series::load(store, cache, &rule.dest_key)? {
            seq = seq.max(series::add(
                store,
                dst,
                bucket,
                Some(DuplicatePolicy::Last),
            )?);
        }
    }
    Ok(seq)
}

/// For `LATEST`: the still-open bucket of compacted series `dst_key` (with metadata
/// `dst_meta`), computed from its source; `None` if it is no compaction or the source has
/// no sample.
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
    let Some(src) = series::load(store, cache, src_key)? else {
        return Ok(None);
    };
    let src = src.clone();
    let (Some(rule), Some(last)) = (
        src.meta.rules.iter().find(|r| r.dest_key == dst_key),
        src.last,
    ) else {
        return Ok(None);
    };
    bucket_value(store, &src, rule, last.ts_ms)
}
