//! The storage mechanism of series on one shard's [`ShardStore`]: loading a series' state,
//! adding samples, sealing unsealed samples into chunks, reading a time range (deleting is
//! in `super::delete`, re-exported here).
//! Every write goes through [`ShardStore::put`] / [`ShardStore::delete`], so it rides the
//! WAL and group commit like a `SET`, and the caller acknowledges it once the returned
//! sequence number is durable.

use std::collections::HashMap;
use std::sync::Arc;

use crate::base::codec::FormatError;
use crate::base::{SeqNo, StoreError};
use crate::store::{Lookup, ShardStore};

use super::chunk::{self, ChunkEncoding, Sample};
pub use super::delete::{delete_range, delete_series};
use super::keys;
use super::marks::{ChunkWalk, StoredChunk};
use super::meta::{DuplicatePolicy, SeriesMeta};
use super::open::{checkpoint_seal_min, OpenBudget, OpenSamples, EARLY_SEAL_SAMPLES_MIN};
pub use super::seal::seal;

/// A failure reading or writing a series.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeriesError {
    /// The store failed (I/O, a damaged block).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A chunk, sample or metadata entry did not decode.
    #[error("damaged time-series entry: {0}")]
    Format(#[from] FormatError),
    /// A command-level refusal: the error reply text.
    #[error("{0}")]
    Refused(String),
}

/// What the shard keeps in memory about a series it has touched: derived from the store,
/// rebuilt by [`load`] after a restart.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesState {
    /// Its settings.
    pub meta: SeriesMeta,
    /// Samples not yet sealed into a chunk, in memory ([`super::open`]).
    pub open: OpenSamples,
    /// The newest sample, if any.
    pub last: Option<Sample>,
    /// No sealed chunk holds a sample after this timestamp (`None`: no chunk), so a
    /// sample after it needs no chunk read to find a duplicate. An upper bound: deleting
    /// samples leaves it.
    pub sealed_until_ms: Option<u64>,
    /// No string of the series' name existed when the store's
    /// [`ShardStore::memtable_writes`] was this count (`u64::MAX`: not known), so a
    /// command need not look for one again until some other write happened.
    pub no_string_at_writes: u64,
    /// The sequence number of the newest write to the series (its metadata, samples,
    /// chunks, deletion marks, or the string of its name that a deletion hid) since the
    /// cache loaded it, and at load the store's last sequence number, which bounds every
    /// earlier write. A read of this series replies once this is durable, so it never
    /// shows what a crash could take back, and never waits for the fdatasync of other
    /// series' writes.
    pub written_seq: SeqNo,
}

impl SeriesState {
    /// Takes note of a write to the series with sequence number `seq`.
    pub fn wrote(&mut self, seq: SeqNo) {
        self.written_seq = self.written_seq.max(seq);
    }
}

/// The series states of one shard, by user key.
#[derive(Debug, Default)]
pub struct SeriesCache {
    states: HashMap<Vec<u8>, SeriesState, foldhash::fast::RandomState>,
    /// The names of every series on the shard.
    pub directory: super::directory::SeriesDirectory,
    /// Which shard this is, to tell a rule's local destination from a remote one.
    pub route: super::handover::Route,
    /// What the shard must tell other shards about rules, queued by the requests that
    /// ran; the shard's loop takes them.
    pub notices: Vec<super::handover::RuleNotice>,
    /// Open samples of every series here, and their bound ([`OpenBudget`]).
    open_total: Arc<OpenBudget>,
    /// Per destination series here whose rule's source lives on another shard: the
    /// source's key and its open bucket as that shard last sent it
    /// ([`super::handover::RuleNotice::Latest`]), for `LATEST`. In memory only: the
    /// source's shard sends it again as it starts.
    pub remote_latest: HashMap<Vec<u8>, (Vec<u8>, Option<Sample>)>,
    /// Series written by a transaction across shards that is not decided yet: none is
    /// sealed until it is ([`SeriesCache::hold_seals`]).
    seals_held: std::collections::HashSet<Vec<u8>>,
}

impl SeriesCache {
    /// Forgets a series (deleted, or to be reloaded from the store). Its open samples are
    /// put into the memtable first ([`OpenSamples::checkpoint`]), so a reload finds them.
    pub fn forget(&mut self, store: &mut ShardStore, key: &[u8]) {
        if let Some(mut state) = self.states.remove(key) {
            state.open.checkpoint(store, state.meta.series_id);
            state.open.release();
        }
    }

    /// Takes note of a write with sequence number `seq` to series `key`, if cached (a
    /// series loaded later gets the store's last sequence number anyway).
    pub fn wrote(&mut self, key: &[u8], seq: SeqNo) {
        if let Some(state) = self.states.get_mut(key) {
            state.wrote(seq);
        }
    }

    /// Remembers a new series' state.
    pub fn insert(&mut self, key: &[u8], state: SeriesState) {
        if let Some(mut old) = self.states.insert(key.to_vec(), state) {
            old.open.release();
        }
    }

    /// An empty cache whose shard holds at most about `max` open samples (the default is
    /// [`super::open::OPEN_SAMPLES_MAX_PER_SHARD`]).
    pub fn with_open_samples_max(max: usize) -> Self {
        Self {
            open_total: Arc::new(OpenBudget::new(max)),
            ..Self::default()
        }
    }

    /// Open samples held by the shard's series in all (`INFO`'s `ts_open_samples`).
    pub fn open_samples(&self) -> usize {
        self.open_total.total()
    }

    /// No open samples, counted in this shard's total: for a new series' state.
    pub fn no_open_samples(&self) -> OpenSamples {
        OpenSamples::new(&self.open_total)
    }

    /// The state of series `key` if the cache holds it (no store read).
    pub fn state(&self, key: &[u8]) -> Option<&SeriesState> {
        self.states.get(key)
    }

    /// Holds the seals of series `key` until [`SeriesCache::release_seals`]: its samples
    /// stay open samples, whose WAL records replay skips if the transaction that wrote
    /// them does not commit, and which are undone one by one. A seal would mix them into
    /// chunks with samples older than the transaction.
    pub fn hold_seals(&mut self, key: &[u8]) {
        if !self.seals_held.contains(key) {
            self.seals_held.insert(key.to_vec());
        }
    }

    /// Lets series `key` be sealed again (its transaction is decided).
    pub fn release_seals(&mut self, key: &[u8]) {
        self.seals_held.remove(key);
    }

    /// Whether series `key`'s seals are held ([`SeriesCache::hold_seals`]).
    pub fn seals_held(&self, key: &[u8]) -> bool {
        !self.seals_held.is_empty() && self.seals_held.contains(key)
    }

    /// Before the memtable freezes: seals each series holding at least
    /// [`checkpoint_seal_min`] open samples, and puts the other series' open samples that
    /// are not in the memtable yet into it (a series whose seal fails is stored too).
    pub(super) fn checkpoint_all(&mut self, store: &mut ShardStore) {
        for (key, state) in &mut self.states {
            let may_seal = !self.seals_held.contains(key);
            if may_seal && state.open.len() >= checkpoint_seal_min(seal_threshold(&state.meta)) {
                match seal(store, state) {
                    Ok(_) => continue,
                    Err(e) => tracing::error!("time-series seal at a checkpoint: {e}"),
                }
            }
            state.open.checkpoint(store, state.meta.series_id);
        }
    }
}

/// Whether `key` holds a string.
///
/// # Errors
/// A failed read.
pub fn string_exists(store: &ShardStore, key: &[u8]) -> Result<bool, StoreError> {
    Ok(store.get(key)?.is_some_and(|found| found.value.is_some()))
}

/// Whether a string of `key`'s name shadows the series of that name ([`string_exists`]),
/// without a read when the cached series saw none and no write happened since (a string
/// can appear only through a write to the memtable: [`ShardStore::memtable_writes`]).
///
/// # Errors
/// A failed read.
pub fn string_shadows(
    store: &ShardStore,
    cache: &mut SeriesCache,
    key: &[u8],
) -> Result<bool, StoreError> {
    let writes = store.memtable_writes();
    if !string_check_needed(cache.states.get(key), writes) {
        return Ok(false);
    }
    let found = store.get(key)?;
    let exists = found.as_ref().is_some_and(|f| f.value.is_some());
    if let Some(state) = cache.states.get_mut(key).filter(|_| !exists) {
        state.no_string_at_writes = writes;
        // A string whose deletion a crash could take back would shadow the series again.
        if let Some(tombstone) = found {
            state.wrote(tombstone.seq);
        }
    }
    Ok(exists)
}

/// Whether a command on the series in `state` (`None`: not cached) must look for a string
/// of its name in the store: unless one was looked for and not found with the store at
/// `memtable_writes` ([`ShardStore::memtable_writes`]). The one rule of
/// [`string_shadows`] and of the plan that reads its blocks first (`super::plan`).
pub fn string_check_needed(state: Option<&SeriesState>, memtable_writes: u64) -> bool {
    state.is_none_or(|s| s.no_string_at_writes != memtable_writes)
}

/// Whether `key` names a series (metadata present).
///
/// # Errors
/// A failed read.
pub fn series_exists(store: &ShardStore, key: &[u8]) -> Result<bool, StoreError> {
    Ok(series_lookup(store, key)?.is_some_and(|found| found.value.is_some()))
}

/// The newest version of series `key`'s metadata entry (a tombstone included), for a
/// caller that must wait until what it read is durable.
///
/// # Errors
/// A failed read.
pub fn series_lookup(store: &ShardStore, key: &[u8]) -> Result<Option<Lookup>, StoreError> {
    store.get(&keys::meta_key(key))
}

/// The state of series `key`, from the cache or the store; `None` if there is no series.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn load<'c>(
    store: &ShardStore,
    cache: &'c mut SeriesCache,
    key: &[u8],
) -> Result<Option<&'c mut SeriesState>, SeriesError> {
    if !cache.states.contains_key(key) {
        let Some(meta) = store.get(&keys::meta_key(key))?.and_then(|f| f.value) else {
            return Ok(None);
        };
        let meta = SeriesMeta::decode(&meta)?;
        let id = meta.series_id;
        // Sample entries older than the seal mark were sealed before a crash.
        let sealed_seq = store
            .get(&keys::sealed_key(id))?
            .filter(|found| found.value.is_some())
            .map_or(SeqNo(0), |found| found.seq);
        let (open, stale): (Vec<_>, Vec<_>) = scan_samples(store, id, 0, u64::MAX)?
            .into_iter()
            .partition(|&(_, seq)| seq > sealed_seq);
        let stale = stale.into_iter().map(|(s, _)| s.ts_ms).collect();
        let mut last = open.last().map(|&(s, _)| s);
        let mut sealed_until_ms = None;
        if let Some(chunk) = last_chunk(store, id)? {
            let newest = *chunk.last().expect("chunks are never empty");
            sealed_until_ms = Some(newest.ts_ms);
            if last.is_none_or(|l| newest.ts_ms > l.ts_ms) {
                last = Some(newest);
            }
        }
        let state = SeriesState {
            meta,
            open: OpenSamples::loaded(&cache.open_total, open, stale),
            last,
            sealed_until_ms,
            no_string_at_writes: u64::MAX,
            written_seq: store.last_seq(),
        };
        cache.states.insert(key.to_vec(), state);
    }
    Ok(cache.states.get_mut(key))
}

/// The samples of the newest chunk of series `id` that has any (deletion marks applied).
fn last_chunk(store: &ShardStore, id: u64) -> Result<Option<Vec<Sample>>, SeriesError> {
    let walk = || ChunkWalk::new(store.scan_from(&keys::chunk_key(id, 0)), id, u64::MAX);
    let Some(newest) = walk().last().transpose()? else {
        return Ok(None);
    };
    let samples = newest.samples()?;
    if !samples.is_empty() {
        return Ok(Some(samples));
    }
    // Marks emptied it (`TS.DEL` deletes such a chunk instead, so only a chunk written
    // otherwise gets here): the newest one with a sample left.
    let mut found = None;
    for chunk in walk() {
        let samples = chunk?.samples()?;
        if !samples.is_empty() {
            found = Some(samples);
        }
    }
    Ok(found)
}

/// Sample entries of series `id` in the LSM tree with `from_ms <= ts <= to_ms`, with their
/// sequence numbers, in time order.
fn scan_samples(
    store: &ShardStore,
    id: u64,
    from_ms: u64,
    to_ms: u64,
) -> Result<Vec<(Sample, SeqNo)>, SeriesError> {
    let mut out = Vec::new();
    for entry in store.scan_from(&keys::sample_key(id, from_ms)) {
        let entry = entry?;
        let Some(ts_ms) = keys::sample_walk_ts(&entry.key, id, to_ms) else {
            break;
        };
        if let Some(value) = entry.value {
            let sample = Sample {
                ts_ms,
                value: decode_sample_value(&value)?,
            };
            out.push((sample, entry.seq));
        }
    }
    Ok(out)
}

fn decode_sample_value(bytes: &[u8]) -> Result<f64, FormatError> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| FormatError {
        reason: "unsealed sample value is not 8 bytes",
        offset: 0,
    })?;
    Ok(f64::from_le_bytes(raw))
}

/// Sealed chunks of series `id` that may hold samples in `[from_ms, to_ms]`: their keys
/// and samples (deletion marks applied, so possibly none), in time order.
pub(super) fn scan_chunks(
    store: &ShardStore,
    id: u64,
    from_ms: u64,
    to_ms: u64,
) -> Result<Vec<StoredChunk>, SeriesError> {
    ChunkWalk::new(store.scan_from(&keys::chunk_key(id, from_ms)), id, to_ms).collect()
}

/// The oldest timestamp still inside the retention window, 0 without retention.
pub fn retention_cutoff_ms(state: &SeriesState) -> u64 {
    match (state.meta.retention_ms, state.last) {
        (0, _) | (_, None) => 0,
        (retention_ms, Some(last)) => last.ts_ms.saturating_sub(retention_ms),
    }
}

/// Every sample of the series in `[from_ms, to_ms]` inside the retention window, in time
/// order: sealed chunks merged with open samples.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn read_range(
    store: &ShardStore,
    state: &SeriesState,
    from_ms: u64,
    to_ms: u64,
) -> Result<Vec<Sample>, SeriesError> {
    let from_ms = from_ms.max(retention_cutoff_ms(state));
    if from_ms > to_ms {
        return Ok(Vec::new());
    }
    let id = state.meta.series_id;
    let mut sealed = Vec::new();
    for chunk in scan_chunks(store, id, from_ms, to_ms)? {
        sealed.extend(
            chunk
                .samples()?
                .into_iter()
                .filter(|s| (from_ms..=to_ms).contains(&s.ts_ms)),
        );
    }
    Ok(super::range::merge(
        sealed,
        state.open.range(from_ms, to_ms).collect(),
    ))
}

/// The value stored at `ts_ms`, open or sealed (retention aside).
///
/// # Errors
/// A failed read or a damaged entry.
pub fn value_at(
    store: &ShardStore,
    state: &SeriesState,
    ts_ms: u64,
) -> Result<Option<f64>, SeriesError> {
    if let Some(value) = state.open.get(ts_ms) {
        return Ok(Some(value));
    }
    if state.sealed_until_ms.is_none_or(|until| ts_ms > until) {
        return Ok(None);
    }
    let id = state.meta.series_id;
    let Some(chunk) = scan_chunks(store, id, ts_ms, ts_ms)?.into_iter().next() else {
        return Ok(None);
    };
    if chunk.is_deleted(ts_ms) {
        return Ok(None);
    }
    Ok(chunk::decode(&chunk.value)?
        .into_iter()
        .find(|s| s.ts_ms == ts_ms)
        .map(|s| s.value))
}

/// Whether `sample` is dropped by the series' `IGNORE` window (RedisTimeSeries 1.12,
/// "TS.CREATE"): the series' duplicate policy is `LAST`, the sample is at or after the
/// newest one, at most `max_time_diff_ms` after it, and its value within `max_value_diff`
/// of the newest value. The command then replies the newest timestamp and stores nothing.
pub fn ignores(state: &SeriesState, sample: Sample) -> bool {
    let Some(last) = state.last else {
        return false;
    };
    let window = state.meta.ignore;
    state.meta.duplicate_policy == Some(DuplicatePolicy::Last)
        && sample.ts_ms >= last.ts_ms
        && sample.ts_ms - last.ts_ms <= window.max_time_diff_ms
        && (sample.value - last.value).abs() <= window.max_value_diff
}

/// Adds one sample under the series' duplicate policy (or `policy_override`), sealing
/// the unsealed samples into chunks when there are enough and `may_seal`
/// ([`SeriesCache::hold_seals`]). Returns the sequence number of the last write.
///
/// # Errors
/// [`SeriesError::Refused`] with RedisTimeSeries's text for a sample older than the
/// retention window or a duplicate under `BLOCK`; a failed read.
pub fn add(
    store: &mut ShardStore,
    state: &mut SeriesState,
    sample: Sample,
    policy_override: Option<DuplicatePolicy>,
    may_seal: bool,
) -> Result<SeqNo, SeriesError> {
    let id = state.meta.series_id;
    let mut value = sample.value;
    if let Some(last) = state.last {
        let retention_ms = state.meta.retention_ms;
        if retention_ms > 0 && sample.ts_ms < last.ts_ms && last.ts_ms - sample.ts_ms > retention_ms
        {
            return Err(SeriesError::Refused(
                "ERR TSDB: Timestamp is older than retention".into(),
            ));
        }
        if sample.ts_ms <= last.ts_ms {
            if let Some(old) = value_at(store, state, sample.ts_ms)? {
                let policy = policy_override
                    .or(state.meta.duplicate_policy)
                    .unwrap_or(DuplicatePolicy::Block);
                value = policy.resolve(old, value).ok_or_else(|| {
                    SeriesError::Refused(
                        "ERR TSDB: Error at upsert, update is not supported when DUPLICATE_POLICY is set to BLOCK mode"
                            .into(),
                    )
                })?;
            }
        }
    }
    let key = keys::sample_key(id, sample.ts_ms);
    let mut seq = store.log_put(&key, &value.to_le_bytes());
    let sample = Sample {
        ts_ms: sample.ts_ms,
        value,
    };
    state.open.upsert(sample, seq);
    if state.last.is_none_or(|l| sample.ts_ms >= l.ts_ms) {
        state.last = Some(Sample {
            ts_ms: sample.ts_ms,
            value,
        });
    }
    state.wrote(seq);
    if may_seal && seal_due(state, state.open.len()) {
        seq = seq.max(seal(store, state)?);
    }
    Ok(seq)
}

/// Whether `open` open samples of `state` make a seal ([`add`]'s rule; a planner asks it
/// to read a seal's chunks before the add runs).
pub fn seal_due(state: &SeriesState, open: usize) -> bool {
    open >= seal_threshold(&state.meta)
        || (open >= EARLY_SEAL_SAMPLES_MIN && state.open.shard_over_budget())
}

/// Open samples that make a seal: about one chunk's worth.
fn seal_threshold(meta: &SeriesMeta) -> usize {
    let bytes = meta.chunk_size_bytes as usize;
    match meta.encoding {
        ChunkEncoding::Gorilla => (bytes / 4).max(8),
        ChunkEncoding::Uncompressed => (bytes / 16).max(3),
    }
}
