//! A series' open samples: those not yet sealed into a chunk, held in the shard's memory
//! and carried by the WAL, one record per sample.
//!
//! `TS.ADD` logs its sample with [`ShardStore::log_put`] (a WAL record under the sample's
//! key, [`keys::sample_key`], and no memtable insert) and keeps it here, so a sample costs
//! its WAL bytes and a push onto a vector: no memtable entry to write on the way in and
//! no tombstone to write when it is sealed. Two moments put samples into the LSM tree:
//!
//! * **Checkpoint.** Before the shard's memtable freezes, every sample logged since it
//!   became active must be in it, or the flush would retire the WAL segment that is the
//!   sample's only durable copy. The store asks ([`ShardStore::checkpoint_wanted`]) and
//!   [`checkpoint`] inserts each sample not yet there under its original sequence number
//!   ([`ShardStore::insert_logged`]). A sample so *stored* gets a tombstone when it is
//!   sealed; most samples are sealed before any checkpoint and never do. A series that
//!   holds at least [`checkpoint_seal_min`] open samples is sealed instead (a smaller
//!   chunk, with its seal mark, in the memtable about to freeze): a stored sample takes
//!   about 44 bytes on disk until the next seal, a sealed one 1 to 8 bytes.
//! * **Seal** ([`super::series::seal`]): the samples become a chunk, and a seal mark
//!   ([`keys::sealed_key`]) is written. Its sequence number tells samples sealed before it
//!   from open ones: after a crash, replay inserts every logged sample into the memtable,
//!   and [`super::series::load`] takes as open only the sample entries newer than the mark;
//!   older ones were sealed (they are *stale*, deleted at the next seal).
//!
//! The shard bounds the samples it holds open ([`OpenBudget`]): past
//! [`OPEN_SAMPLES_MAX_PER_SHARD`] in all, a series that receives a sample and holds at least
//! [`EARLY_SEAL_SAMPLES_MIN`] is sealed at once, with a smaller chunk.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::base::SeqNo;
use crate::store::ShardStore;

use super::chunk::Sample;
use super::keys;
use super::series::SeriesCache;

/// Open samples a shard holds in all before it seals series early (about 32 bytes each:
/// 64 MiB).
pub const OPEN_SAMPLES_MAX_PER_SHARD: usize = 2 << 20;

/// The fewest open samples a series is sealed with because the shard holds too many.
pub const EARLY_SEAL_SAMPLES_MIN: usize = 16;

/// At a checkpoint, a series holding at least 1/`CHECKPOINT_SEAL_DIVISOR` of the open
/// samples that make a seal is sealed rather than stored sample by sample.
///
/// Why: a stored open sample is an LSM entry of its own (a 17-byte key, an 8-byte value
/// and the entry's framing: about 44 bytes of SSTable each, measured with
/// `scripts/bench-ts-bytes.sh`), kept until the next seal and compaction remove it; a
/// chunk costs about 80 bytes once (header, CRC, key, first value and timestamp) plus its
/// Gorilla bits. A quarter of a seal's worth (256 samples at the default `CHUNK_SIZE`)
/// bounds what the extra, smaller chunks add to about 0.3 bytes a sample even if every
/// seal of a series came from a checkpoint.
pub const CHECKPOINT_SEAL_DIVISOR: usize = 4;

/// The fewest open samples a series is sealed with at a checkpoint, given the number that
/// makes a regular seal ([`CHECKPOINT_SEAL_DIVISOR`]; never below
/// [`EARLY_SEAL_SAMPLES_MIN`]).
pub fn checkpoint_seal_min(seal_samples: usize) -> usize {
    (seal_samples / CHECKPOINT_SEAL_DIVISOR).max(EARLY_SEAL_SAMPLES_MIN)
}

/// The open samples of one shard's series in all, and how many it holds before sealing
/// early.
#[derive(Debug)]
pub struct OpenBudget {
    total: AtomicUsize,
    max: usize,
}

impl OpenBudget {
    /// A budget of `max` open samples.
    pub fn new(max: usize) -> Self {
        Self {
            total: AtomicUsize::new(0),
            max,
        }
    }

    /// Open samples held now.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Default for OpenBudget {
    fn default() -> Self {
        Self::new(OPEN_SAMPLES_MAX_PER_SHARD)
    }
}

/// One open sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpenSample {
    /// Timestamp and value.
    pub sample: Sample,
    /// The sequence number of the WAL record that logged its current value.
    pub seq: SeqNo,
    /// Its current value is in the memtable (a checkpoint inserted it, or replay did).
    pub in_memtable: bool,
    /// A sample entry for its timestamp exists in the LSM tree (the seal deletes it).
    pub stored: bool,
}

/// The open samples of one series, in time order, with the shard-wide count they add to.
#[derive(Clone, Debug, Default)]
pub struct OpenSamples {
    samples: Vec<OpenSample>,
    /// Timestamps of sample entries in the LSM tree sealed before a crash (older than the
    /// series' seal mark): the next seal deletes them.
    stale: Vec<u64>,
    /// Some sample is not in the memtable yet.
    dirty: bool,
    /// Open samples of every series of the shard.
    shard_total: Arc<OpenBudget>,
}

impl PartialEq for OpenSamples {
    fn eq(&self, other: &Self) -> bool {
        self.samples == other.samples && self.stale == other.stale
    }
}

impl OpenSamples {
    /// No open samples, counted in `shard_total`.
    pub fn new(shard_total: &Arc<OpenBudget>) -> Self {
        Self {
            shard_total: Arc::clone(shard_total),
            ..Self::default()
        }
    }

    /// Loaded from the store: `stored` sample entries (all in the LSM tree, so none dirty)
    /// and `stale` ones to delete at the next seal.
    pub fn loaded(
        shard_total: &Arc<OpenBudget>,
        stored: Vec<(Sample, SeqNo)>,
        stale: Vec<u64>,
    ) -> Self {
        shard_total.total.fetch_add(stored.len(), Ordering::Relaxed);
        Self {
            samples: stored
                .into_iter()
                .map(|(sample, seq)| OpenSample {
                    sample,
                    seq,
                    in_memtable: true,
                    stored: true,
                })
                .collect(),
            stale,
            dirty: false,
            shard_total: Arc::clone(shard_total),
        }
    }

    /// How many samples are open.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is open.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Whether the shard holds more open samples than its budget.
    pub fn shard_over_budget(&self) -> bool {
        self.shard_total.total() > self.shard_total.max
    }

    /// Where `ts_ms` is (`Ok`) or would go (`Err`). Samples out of order mostly arrive
    /// a few places behind the newest (pipelined writers racing), so the last few are
    /// looked at before a binary search, which would miss the cache on a long run.
    fn position(&self, ts_ms: u64) -> Result<usize, usize> {
        const NEAR_END: usize = 8;
        let near = self.samples.len().saturating_sub(NEAR_END);
        for at in (near..self.samples.len()).rev() {
            let here = self.samples[at].sample.ts_ms;
            if here == ts_ms {
                return Ok(at);
            }
            if here < ts_ms {
                return Err(at + 1);
            }
        }
        self.samples[..near].binary_search_by_key(&ts_ms, |s| s.sample.ts_ms)
    }

    /// The value open at `ts_ms`, if any.
    pub fn get(&self, ts_ms: u64) -> Option<f64> {
        self.position(ts_ms)
            .ok()
            .map(|at| self.samples[at].sample.value)
    }

    /// Sets the sample at its timestamp (logged at `seq`), replacing an open one there.
    /// Returns whether it is a new open sample.
    pub fn upsert(&mut self, sample: Sample, seq: SeqNo) -> bool {
        self.dirty = true;
        let fresh = OpenSample {
            sample,
            seq,
            in_memtable: false,
            stored: false,
        };
        let at = match self.samples.last() {
            None => 0,
            Some(last) if last.sample.ts_ms < sample.ts_ms => self.samples.len(),
            Some(_) => match self.position(sample.ts_ms) {
                Ok(at) => {
                    let old = &mut self.samples[at];
                    *old = OpenSample {
                        stored: old.stored,
                        ..fresh
                    };
                    return false;
                }
                Err(at) => at,
            },
        };
        self.samples.insert(at, fresh);
        self.shard_total.total.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The open samples in `[from_ms, to_ms]`, in time order.
    pub fn range(&self, from_ms: u64, to_ms: u64) -> impl Iterator<Item = Sample> + '_ {
        let start = self.samples.partition_point(|s| s.sample.ts_ms < from_ms);
        self.samples[start..]
            .iter()
            .take_while(move |s| s.sample.ts_ms <= to_ms)
            .map(|s| s.sample)
    }

    /// Removes the open samples in `[from_ms, to_ms]` and returns them.
    pub fn remove_range(&mut self, from_ms: u64, to_ms: u64) -> Vec<OpenSample> {
        let start = self.samples.partition_point(|s| s.sample.ts_ms < from_ms);
        let end = self.samples.partition_point(|s| s.sample.ts_ms <= to_ms);
        let removed: Vec<OpenSample> = self.samples.drain(start..end.max(start)).collect();
        self.shard_total
            .total
            .fetch_sub(removed.len(), Ordering::Relaxed);
        removed
    }

    /// Takes every open sample and the stale timestamps, for a seal.
    pub fn take(&mut self) -> (Vec<OpenSample>, Vec<u64>) {
        self.dirty = false;
        self.shard_total
            .total
            .fetch_sub(self.samples.len(), Ordering::Relaxed);
        (
            std::mem::take(&mut self.samples),
            std::mem::take(&mut self.stale),
        )
    }

    /// Stops counting these samples in the shard's total (the series is forgotten).
    pub fn release(&mut self) {
        self.shard_total
            .total
            .fetch_sub(self.samples.len(), Ordering::Relaxed);
        self.samples.clear();
    }

    /// Inserts every sample whose current value is not in the memtable yet, under its
    /// original sequence number.
    pub fn checkpoint(&mut self, store: &mut ShardStore, series_id: u64) {
        if !self.dirty {
            return;
        }
        for open in self.samples.iter_mut().filter(|s| !s.in_memtable) {
            store.insert_logged(
                &keys::sample_key(series_id, open.sample.ts_ms),
                open.seq,
                &open.sample.value.to_le_bytes(),
            );
            open.in_memtable = true;
            open.stored = true;
        }
        self.dirty = false;
    }
}

/// When the store waits to freeze its memtable ([`ShardStore::checkpoint_wanted`]),
/// seals each series holding at least [`checkpoint_seal_min`] open samples and inserts
/// the other series' open samples that are not in the memtable yet, then lets it freeze
/// ([`ShardStore::checkpointed`]). The shard calls it every loop iteration.
pub fn checkpoint(store: &mut ShardStore, cache: &mut SeriesCache) {
    if !store.checkpoint_wanted() {
        return;
    }
    cache.checkpoint_all(store);
    store.checkpointed();
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Step {
        Upsert(u64, i32),
        RemoveRange(u64, u64),
        Take,
    }

    fn step() -> impl Strategy<Value = Step> {
        // Timestamps in a narrow range, so replacing and inserting in the middle happen.
        prop_oneof![
            8 => (0u64..64, any::<i32>()).prop_map(|(t, v)| Step::Upsert(t, v)),
            1 => (0u64..64, 0u64..16).prop_map(|(t, n)| Step::RemoveRange(t, t + n)),
            1 => Just(Step::Take),
        ]
    }

    /// A new series' state with default settings (Gorilla, 4096-byte chunks) and `id`.
    fn new_state(
        cache: &crate::timeseries::series::SeriesCache,
        id: u64,
    ) -> crate::timeseries::series::SeriesState {
        use crate::timeseries::chunk::ChunkEncoding;
        use crate::timeseries::meta::SeriesMeta;
        let meta = SeriesMeta {
            series_id: id,
            retention_ms: 0,
            encoding: ChunkEncoding::Gorilla,
            chunk_size_bytes: 4096,
            duplicate_policy: None,
            labels: Vec::new(),
            ignore: Default::default(),
            source_key: None,
            rules: Vec::new(),
        };
        crate::timeseries::series::SeriesState {
            meta,
            open: cache.no_open_samples(),
            last: None,
            sealed_until_ms: None,
            no_string_at_writes: u64::MAX,
            written_seq: SeqNo(0),
        }
    }

    /// Goal: a shard holds about its budget of open samples at most: past it, a series
    /// that receives a sample and holds `EARLY_SEAL_SAMPLES_MIN` or more is sealed at once
    /// (here no series would reach a seal of its own), and every sample stays readable.
    #[test]
    fn the_shard_seals_early_past_its_open_samples_budget() {
        use crate::config::StoreOptions;
        use crate::timeseries::series::{self, SeriesCache};

        let dir = tempfile::tempdir().unwrap();
        let mut store = ShardStore::open(dir.path(), &StoreOptions::default()).unwrap();
        let (budget, series_count, rounds) = (200, 40u64, 50u64);
        let mut cache = SeriesCache::with_open_samples_max(budget);
        let key = |i: u64| format!("s{i}").into_bytes();
        for i in 0..series_count {
            let state = new_state(&cache, 1000 + i);
            cache.insert(&key(i), state);
        }
        let bound = budget + series_count as usize * EARLY_SEAL_SAMPLES_MIN;
        for round in 0..rounds {
            for i in 0..series_count {
                let state = series::load(&store, &mut cache, &key(i)).unwrap().unwrap();
                let sample = Sample {
                    ts_ms: round,
                    value: (i * round) as f64,
                };
                series::add(&mut store, state, sample, None, true).unwrap();
                assert!(cache.open_samples() <= bound, "{}", cache.open_samples());
            }
        }
        for i in 0..series_count {
            let state = series::load(&store, &mut cache, &key(i)).unwrap().unwrap();
            let samples = series::read_range(&store, state, 0, u64::MAX).unwrap();
            let want: Vec<Sample> = (0..rounds)
                .map(|round| Sample {
                    ts_ms: round,
                    value: (i * round) as f64,
                })
                .collect();
            assert_eq!(samples, want, "series {i}");
        }
    }

    /// Goal: a series' "no string shadows it" is remembered only until the next write to
    /// the memtable: a string written under its name afterwards is seen at once.
    #[test]
    fn a_string_written_after_the_check_shadows_the_series() {
        use crate::config::StoreOptions;
        use crate::timeseries::series::{string_shadows, SeriesCache};

        let dir = tempfile::tempdir().unwrap();
        let mut store = ShardStore::open(dir.path(), &StoreOptions::default()).unwrap();
        let mut cache = SeriesCache::default();
        let state = new_state(&cache, 7);
        cache.insert(b"temp", state);
        assert!(!string_shadows(&store, &mut cache, b"temp").unwrap());
        assert!(!string_shadows(&store, &mut cache, b"temp").unwrap());
        store.put(b"temp", b"a string");
        assert!(string_shadows(&store, &mut cache, b"temp").unwrap());
    }

    proptest! {
        /// Goal: open samples behave as a map from timestamp to the newest value, in time
        /// order, and the shard-wide count follows every insert, removal and take.
        #[test]
        fn open_samples_match_a_sorted_map(steps in proptest::collection::vec(step(), 1..200)) {
            let total = Arc::new(OpenBudget::default());
            let mut open = OpenSamples::new(&total);
            let mut model: BTreeMap<u64, f64> = BTreeMap::new();
            for (i, step) in steps.into_iter().enumerate() {
                match step {
                    Step::Upsert(ts_ms, v) => {
                        let sample = Sample { ts_ms, value: f64::from(v) };
                        let fresh = open.upsert(sample, SeqNo(i as u64 + 1));
                        prop_assert_eq!(fresh, model.insert(ts_ms, f64::from(v)).is_none());
                    }
                    Step::RemoveRange(from, to) => {
                        let removed: Vec<u64> =
                            open.remove_range(from, to).iter().map(|o| o.sample.ts_ms).collect();
                        let want: Vec<u64> = model.range(from..=to).map(|(t, _)| *t).collect();
                        model.retain(|t, _| !(from..=to).contains(t));
                        prop_assert_eq!(removed, want);
                    }
                    Step::Take => {
                        let (taken, _) = open.take();
                        prop_assert_eq!(taken.len(), model.len());
                        model.clear();
                    }
                }
                let got: Vec<(u64, f64)> =
                    open.range(0, u64::MAX).map(|s| (s.ts_ms, s.value)).collect();
                let want: Vec<(u64, f64)> = model.iter().map(|(t, v)| (*t, *v)).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(total.total(), model.len());
                for ts_ms in 0..80 {
                    prop_assert_eq!(open.get(ts_ms), model.get(&ts_ms).copied());
                }
            }
        }
    }
}
