//! Compaction rules across shards, the store's side: a closed bucket whose destination
//! lives on another shard is recorded durably as *pending* until that shard acknowledges
//! it, and what the shards tell each other about their rules is queued here for the
//! shard's loop to send ([`RuleNotice`]; the messages themselves are in
//! `crate::shard::ts_rules`).
//!
//! # Why pending entries, not a per-rule mark
//!
//! A rule's destination write cannot ride the source's WAL batch when the destination
//! belongs to another shard, whose WAL is its own. So the hand-over is *at-least-once and
//! idempotent*: a bucket is written into the destination at its start timestamp with
//! `LAST`, so writing it twice, or writing a newer value of it, leaves the destination
//! right. Each closed (or recomputed) bucket is recorded as one pending entry
//! (`0xFF 0x04 <source id> <bucket start> <destination>`, see [`super::keys`]) in the
//! same WAL batch as the sample that closed it, so the two are durable together. The
//! entry goes once the destination's shard answers that the bucket is durable there; after
//! a crash the shard reads its pending entries (one range scan of pending entries only,
//! not of every series) and sends each bucket again, recomputed from the source's samples.
//!
//! A per-rule mark ("dst holds every bucket before t") would be one entry per rule, but an
//! out-of-order sample into an old bucket would have to move the mark back and resend
//! every bucket since; a pending entry per bucket resends only what changed, and a
//! `TS.DEL` over many buckets names exactly the buckets it touched.
//!
//! Deleting one series of a rule across shards works the same way: a pending unlink
//! entry (in the WAL batch of the deletion) tells the other series' shard to let go of the
//! rule, and goes once that shard acknowledges it; after a crash it is sent again.
//!
//! A bucket is sent only once its pending entry (and so every sample it folds) is
//! acknowledged on the source's shard, so the destination never holds a value a crash of
//! the source could take back.

use crate::base::SeqNo;
use crate::datadir::{shard_of, ShardId};
use crate::store::ShardStore;

use super::chunk::Sample;
use super::keys;
use super::meta::DuplicatePolicy;
use super::series::{self, SeriesCache, SeriesError};

/// Which shard the cache's series live on, to tell a rule's local destination from a
/// remote one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// This shard.
    pub shard: ShardId,
    /// How many shards the server runs.
    pub shards: usize,
}

impl Default for Route {
    fn default() -> Self {
        Self {
            shard: ShardId(0),
            shards: 1,
        }
    }
}

impl Route {
    /// The shard owning series `key`.
    pub fn owner(&self, key: &[u8]) -> ShardId {
        shard_of(key, self.shards)
    }

    /// Whether series `key` lives on this shard.
    pub fn is_local(&self, key: &[u8]) -> bool {
        self.owner(key) == self.shard
    }
}

/// A closed bucket of a rule into another shard's series, not yet acknowledged there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PendingBucket {
    /// The source series' id (a replaced source has another).
    pub series_id: u64,
    /// The bucket's start, where the destination holds its value.
    pub bucket_start_ms: u64,
    /// The destination series' user key.
    pub dst_key: Vec<u8>,
}

impl PendingBucket {
    /// Its durable entry's key.
    pub fn key(&self) -> Vec<u8> {
        keys::pending_key(self.series_id, self.bucket_start_ms, &self.dst_key)
    }
}

/// Something a shard must tell another about a rule, queued by the store-level code and
/// sent by the shard's loop.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleNotice {
    /// A bucket became pending (closed, or recomputed) by writes up to `seq`; it may be
    /// sent once `seq` is acknowledged.
    Bucket {
        /// The bucket.
        pending: PendingBucket,
        /// The source series' user key.
        src_key: Vec<u8>,
        /// The sequence number of its pending entry.
        seq: SeqNo,
    },
    /// One series of a rule was deleted; the other, on another shard, must let go of it.
    Unlink(PendingUnlink),
    /// The open bucket of a rule into another shard's series may have changed by writes
    /// up to `seq`: its value goes to that shard once `seq` is acknowledged, for `LATEST`
    /// there ([`super::rules::latest`]).
    Latest {
        /// The source series' user key.
        src_key: Vec<u8>,
        /// The destination series' user key.
        dst_key: Vec<u8>,
        /// The sequence number of the last write it reflects.
        seq: SeqNo,
    },
}

/// Which side of a rule a [`PendingUnlink`] is applied to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnlinkSide {
    /// The source was deleted: the destination no longer names it (`sourceKey`).
    Destination,
    /// The destination was deleted: the source drops its rule into it.
    Source,
}

/// A deleted series' rule, to be let go of by the other series' shard; durable until that
/// shard acknowledges it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PendingUnlink {
    /// The side that lets go (whose shard the unlink goes to).
    pub side: UnlinkSide,
    /// The rule's source.
    pub src_key: Vec<u8>,
    /// The rule's destination.
    pub dst_key: Vec<u8>,
}

impl PendingUnlink {
    /// Its durable entry's key.
    pub fn key(&self) -> Vec<u8> {
        let side = match self.side {
            UnlinkSide::Destination => 0,
            UnlinkSide::Source => 1,
        };
        keys::unlink_key(side, &self.src_key, &self.dst_key)
    }

    /// The key of the series that lets go (its shard applies the unlink).
    pub fn applies_to(&self) -> &[u8] {
        match self.side {
            UnlinkSide::Destination => &self.dst_key,
            UnlinkSide::Source => &self.src_key,
        }
    }
}

/// Records that `unlink` must reach the other series' shard (in the WAL batch of the
/// deletion), and queues its notice.
pub fn mark_unlink(store: &mut ShardStore, cache: &mut SeriesCache, unlink: PendingUnlink) {
    record_unlink(store, &unlink);
    cache.notices.push(RuleNotice::Unlink(unlink));
}

/// Records `unlink`'s entry only (no notice): `TS.CREATERULE` across shards records the
/// unlink of its destination before it asks that shard to link it, and drops the entry
/// with the rule's own write, so a crash in between makes a restart unlink the
/// destination again. Returns the write's sequence number.
pub fn record_unlink(store: &mut ShardStore, unlink: &PendingUnlink) -> SeqNo {
    store.put(&unlink.key(), &[])
}

/// Drops `unlink`'s entry: the other shard acknowledged it.
pub fn finish_unlink(store: &mut ShardStore, unlink: &PendingUnlink) -> SeqNo {
    store.delete(&unlink.key())
}

/// Every pending unlink of the shard (what a start-up sends again).
///
/// # Errors
/// A failed read.
pub fn scan_unlinks(store: &ShardStore) -> Result<Vec<PendingUnlink>, SeriesError> {
    let mut out = Vec::new();
    for entry in store.scan_from(&keys::UNLINK_START) {
        let entry = entry?;
        let Some((side, src, dst)) = keys::parse_unlink_key(&entry.key) else {
            break;
        };
        if entry.value.is_some() {
            out.push(PendingUnlink {
                side: if side == 0 {
                    UnlinkSide::Destination
                } else {
                    UnlinkSide::Source
                },
                src_key: src.to_vec(),
                dst_key: dst.to_vec(),
            });
        }
    }
    Ok(out)
}

/// Applies `unlink` on this shard (the other series'): a destination forgets its source,
/// or a source drops its rule. A series that is gone, or no longer linked, needs nothing.
/// Returns the sequence number the acknowledgement waits for.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn apply_unlink(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    unlink: &PendingUnlink,
) -> Result<SeqNo, SeriesError> {
    let (src, dst) = (&unlink.src_key, &unlink.dst_key);
    let done = match unlink.side {
        UnlinkSide::Destination => super::rules::unlink_destination(store, cache, src, dst),
        UnlinkSide::Source => super::rules::drop_rule(store, cache, src, dst),
    };
    match done {
        Err(SeriesError::Refused(_)) => Ok(store.last_seq()),
        other => other,
    }
}

/// Records that `pending` (of source `src_key`) must reach its destination's shard, and
/// queues its notice. Returns the write's sequence number.
pub fn mark(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    src_key: &[u8],
    pending: PendingBucket,
) -> SeqNo {
    let seq = store.put(&pending.key(), src_key);
    cache.notices.push(RuleNotice::Bucket {
        pending,
        src_key: src_key.to_vec(),
        seq,
    });
    seq
}

/// Drops `pending`'s entry: its destination's shard acknowledged it.
pub fn finish(store: &mut ShardStore, pending: &PendingBucket) -> SeqNo {
    store.delete(&pending.key())
}

/// Every pending bucket of the shard with its source's user key, in key order (what a
/// start-up sends again).
///
/// # Errors
/// A failed read.
pub fn scan_pending(store: &ShardStore) -> Result<Vec<(PendingBucket, Vec<u8>)>, SeriesError> {
    let mut out = Vec::new();
    for entry in store.scan_from(&keys::PENDING_START) {
        let entry = entry?;
        let Some((series_id, bucket_start_ms, dst_key)) = keys::parse_pending_key(&entry.key)
        else {
            break;
        };
        if let Some(src_key) = entry.value {
            let pending = PendingBucket {
                series_id,
                bucket_start_ms,
                dst_key: dst_key.to_vec(),
            };
            out.push((pending, src_key));
        }
    }
    Ok(out)
}

/// What to send for `pending` now, recomputed from source `src_key`'s samples: `None` if
/// the rule is gone (the source was deleted or replaced, or the rule deleted) and the entry
/// can go; `Some(None)` if the bucket holds no sample any more (the destination removes
/// its value); `Some(Some(v))` its aggregate.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn bucket_of(
    store: &ShardStore,
    cache: &mut SeriesCache,
    pending: &PendingBucket,
    src_key: &[u8],
) -> Result<Option<Option<f64>>, SeriesError> {
    let Some(src) = series::load(store, cache, src_key)? else {
        return Ok(None);
    };
    if src.meta.series_id != pending.series_id {
        return Ok(None);
    }
    let src = src.clone();
    let Some(rule) = src
        .meta
        .rules
        .iter()
        .find(|r| r.dest_key == pending.dst_key)
    else {
        return Ok(None);
    };
    let value = super::rules::bucket_value(store, &src, rule, pending.bucket_start_ms)?;
    Ok(Some(value.map(|s| s.value)))
}

/// Writes a bucket of source `src_key`'s rule into destination `dst_key` on its shard:
/// `value` at `bucket_start_ms` with `LAST`, or removes the sample there when `None`.
/// Nothing is written if `dst_key` is no series or no longer names `src_key` as its
/// source (the rule is gone). Returns the sequence number the acknowledgement waits for.
///
/// # Errors
/// A failed read or a damaged entry; a refusal of the sample (a destination's retention).
pub fn store_bucket(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    src_key: &[u8],
    dst_key: &[u8],
    bucket_start_ms: u64,
    value: Option<f64>,
) -> Result<SeqNo, SeriesError> {
    if series::string_exists(store, dst_key)? {
        return Ok(store.last_seq());
    }
    let Some(dst) = series::load(store, cache, dst_key)? else {
        return Ok(store.last_seq());
    };
    if dst.meta.source_key.as_deref() != Some(src_key) {
        return Ok(store.last_seq());
    }
    match value {
        Some(value) => {
            let sample = Sample {
                ts_ms: bucket_start_ms,
                value,
            };
            series::add(store, dst, sample, Some(DuplicatePolicy::Last), true)
        }
        None => {
            let (_, seq) =
                series::delete_range(store, dst, bucket_start_ms, bucket_start_ms, false)?;
            cache.forget(store, dst_key);
            Ok(seq.max(store.last_seq()))
        }
    }
}
