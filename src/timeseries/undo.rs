//! A transaction across shards on this shard's series: what its part's sample writes
//! changed, and writing that back if the transaction does not commit.
//!
//! A part may write samples with `TS.ADD`, `TS.MADD`, `TS.INCRBY` and `TS.DECRBY` (the
//! shard's transaction code refuses `TS.CREATE`, `TS.ALTER` and `TS.DEL` across shards).
//! Before each such request runs, [`SeriesUndo::before`] keeps the *before-image* of the
//! one sample it writes, the first time the part touches that (series, timestamp): no
//! series yet, no sample there, or the value there. If the transaction does not commit,
//! [`SeriesUndo::undo`] writes them back as ordinary writes after the part: a series the
//! part created is deleted, a sample it added is deleted, an overwritten value is put
//! back.
//!
//! **Why the part's samples stay open.** While the part is undecided, the series is not
//! sealed ([`SeriesCache::hold_seals`]): its new samples are open samples only, each one
//! WAL record in the part's range, which replay skips unless the transaction committed
//! ([`crate::wal::tx`]). A seal would write chunks mixing them with older samples, under
//! the part's range too, and a delete after it could not restore those chunks as they
//! were. A checkpoint may still insert the open samples into the memtable about to
//! freeze; the store does not flush a memtable holding a write of an undecided part.
//!
//! **Refused across shards:** a sample write to a series that is the source or the
//! destination of a compaction rule: a closed bucket may move to another shard, outside
//! the transaction, and could not be taken back.

use crate::store::ShardStore;

use super::chunk::Sample;
use super::exec;
use super::meta::DuplicatePolicy;
use super::series::{self, SeriesCache, SeriesError};

/// The error a sample write to a series with a compaction rule gets inside a
/// transaction across shards.
pub const RULE_SERIES_ACROSS_SHARDS: &str = "ERR tskv cannot write samples to a time series that is the source or destination of a compaction rule in a transaction across shards";

/// What one transaction's part changed in this shard's series, in the order first
/// touched.
#[derive(Debug, Default)]
pub struct SeriesUndo {
    series: Vec<SeriesBefore>,
}

/// One series' before-images.
#[derive(Debug)]
struct SeriesBefore {
    key: Vec<u8>,
    /// There was no series of this name: the undo deletes it.
    created: bool,
    /// Each timestamp written, and the value it held before (`None`: no sample).
    samples: Vec<(u64, Option<f64>)>,
}

impl SeriesUndo {
    /// Before `request` (from [`exec::encode_request`]) runs at `now_ms` in the part: if
    /// it writes a sample, keeps what that sample's place holds now (the first time this
    /// part touches it) and holds the series' seals until the transaction is decided.
    ///
    /// # Errors
    /// The error reply text of a request the part must not run: a sample write to a
    /// series with a compaction rule ([`RULE_SERIES_ACROSS_SHARDS`]), or a failed read.
    pub fn before(
        &mut self,
        store: &ShardStore,
        cache: &mut SeriesCache,
        request: &[u8],
        now_ms: u64,
    ) -> Result<(), String> {
        let Some((_, args)) = exec::decode_request(request) else {
            return Ok(());
        };
        let Some((key, ts_ms)) = exec::sample_written(&args, now_ms) else {
            return Ok(());
        };
        let storage = |e: SeriesError| format!("ERR storage error: {e}");
        if let Some(known) = self.series.iter().position(|s| s.key == key) {
            if self.series[known].created || self.series[known].samples.iter().any(|s| s.0 == ts_ms)
            {
                return Ok(());
            }
        }
        let before = match series::load(store, cache, key).map_err(storage)? {
            None => None,
            Some(state) if !state.meta.rules.is_empty() || state.meta.source_key.is_some() => {
                return Err(RULE_SERIES_ACROSS_SHARDS.into());
            }
            Some(state) => Some(series::value_at(store, state, ts_ms).map_err(storage)?),
        };
        cache.hold_seals(key);
        let entry = match self.series.iter().position(|s| s.key == key) {
            Some(at) => &mut self.series[at],
            None => {
                self.series.push(SeriesBefore {
                    key: key.to_vec(),
                    created: before.is_none(),
                    samples: Vec::new(),
                });
                self.series.last_mut().expect("just pushed")
            }
        };
        if let Some(value) = before {
            entry.samples.push((ts_ms, value));
        }
        Ok(())
    }

    /// The transaction committed: its series may be sealed again.
    pub fn release(self, cache: &mut SeriesCache) {
        for series in self.series {
            cache.release_seals(&series.key);
        }
    }

    /// The transaction did not commit: writes back every before-image, as ordinary
    /// writes, then releases the seals. A write-back that fails is logged: the part's
    /// own records still do not count after a restart.
    pub fn undo(self, store: &mut ShardStore, cache: &mut SeriesCache) {
        for series in self.series.iter().rev() {
            if let Err(e) = undo_series(store, cache, series) {
                tracing::error!(
                    "undoing a transaction's samples of time series '{}': {e}",
                    String::from_utf8_lossy(&series.key)
                );
            }
        }
        self.release(cache);
    }
}

/// Writes back one series' before-images: deletes it if the part created it; otherwise
/// deletes the samples the part added, reloads the state (its newest sample may have
/// gone), and puts the overwritten values back.
fn undo_series(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    before: &SeriesBefore,
) -> Result<(), String> {
    let key = &before.key[..];
    if before.created {
        return exec::delete_series(store, cache, key).map(|_| ());
    }
    let storage = |e: SeriesError| format!("ERR storage error: {e}");
    let Some(state) = series::load(store, cache, key).map_err(storage)? else {
        return Ok(());
    };
    for &(ts_ms, _) in before.samples.iter().filter(|(_, v)| v.is_none()) {
        series::delete_range(store, state, ts_ms, ts_ms).map_err(storage)?;
    }
    cache.forget(store, key);
    let Some(state) = series::load(store, cache, key).map_err(storage)? else {
        return Ok(());
    };
    for &(ts_ms, value) in &before.samples {
        if let Some(value) = value {
            let sample = Sample { ts_ms, value };
            series::add(store, state, sample, Some(DuplicatePolicy::Last), false)
                .map_err(storage)?;
        }
    }
    Ok(())
}
