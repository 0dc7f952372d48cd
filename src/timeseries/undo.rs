//! A transaction across shards on this shard's series: what its part's writes changed,
//! and writing that back if the transaction does not commit.
//!
//! A part may create series with `TS.CREATE`, alter them with `TS.ALTER` and write samples
//! with `TS.ADD`, `TS.MADD`, `TS.INCRBY` and `TS.DECRBY` (the shard's transaction code
//! refuses `TS.DEL` across shards). Before each such request runs, [`SeriesUndo::before`]
//! keeps the *before-image* of what it writes, the first time the part touches it: no
//! series yet, the series' settings, or for the one sample it writes, no sample at that
//! timestamp or the value there. If the transaction does not commit, [`SeriesUndo::undo`]
//! writes them back as ordinary writes after the part: a series the part created is
//! deleted, altered settings (labels included) are put back, a sample it added is
//! deleted, an overwritten value is put back.
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

use crate::base::SeqNo;
use crate::store::ShardStore;

use super::chunk::Sample;
use super::exec::{self, SeriesWrite};
use super::keys;
use super::meta::{DuplicatePolicy, SeriesMeta};
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

/// What [`SeriesUndo::before`] kept for one request: dropped again with
/// [`SeriesUndo::failed`] if the request failed.
#[derive(Clone, Copy, Debug)]
pub struct Kept {
    /// The series' place in [`SeriesUndo::series`].
    series_index: usize,
    /// The request marked the series as created.
    created: bool,
    /// The request kept the series' settings.
    settings: bool,
    /// The request added the last sample image of the series.
    sample: bool,
}

/// One series' before-images.
#[derive(Debug)]
struct SeriesBefore {
    key: Vec<u8>,
    /// There was no series of this name: the undo deletes it.
    created: bool,
    /// Its settings before a `TS.ALTER`.
    settings: Option<Box<SeriesMeta>>,
    /// Each timestamp written, and the value it held before (`None`: no sample).
    samples: Vec<(u64, Option<f64>)>,
}

/// What one request's write held before.
#[derive(Debug, PartialEq)]
enum Image {
    /// No series of that name.
    NoSeries,
    /// The series' settings.
    Settings(Box<SeriesMeta>),
    /// The sample's timestamp and value (`None`: no sample there).
    Sample(u64, Option<f64>),
}

impl SeriesUndo {
    /// Before `request` (from [`exec::encode_request`]) runs at `now_ms` in the part: if
    /// it creates a series, alters one or writes a sample, keeps what that holds now (the
    /// first time this part touches it) and holds the series' seals until the
    /// transaction is decided. Returns what it kept, if anything.
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
    ) -> Result<Option<Kept>, String> {
        let Some((_, args)) = exec::decode_request(request) else {
            return Ok(None);
        };
        let Some((key, write)) = exec::series_written(&args, now_ms) else {
            return Ok(None);
        };
        let storage = |e: SeriesError| format!("ERR storage error: {e}");
        let known = self.series.iter().position(|s| s.key == key);
        if let Some(known) = known.map(|at| &self.series[at]) {
            let seen = match write {
                SeriesWrite::Create => false,
                SeriesWrite::Settings => known.settings.is_some(),
                SeriesWrite::Sample(ts_ms) => known.samples.iter().any(|s| s.0 == ts_ms),
            };
            if known.created || seen {
                return Ok(None);
            }
        }
        let image = match (series::load(store, cache, key).map_err(storage)?, write) {
            (None, SeriesWrite::Settings) => return Ok(None),
            (None, _) => Image::NoSeries,
            // A `TS.CREATE` of an existing series writes nothing.
            (Some(_), SeriesWrite::Create) => return Ok(None),
            (Some(state), SeriesWrite::Settings) => Image::Settings(Box::new(state.meta.clone())),
            (Some(state), SeriesWrite::Sample(_))
                if !state.meta.rules.is_empty() || state.meta.source_key.is_some() =>
            {
                return Err(RULE_SERIES_ACROSS_SHARDS.into());
            }
            (Some(state), SeriesWrite::Sample(ts_ms)) => Image::Sample(
                ts_ms,
                series::value_at(store, state, ts_ms).map_err(storage)?,
            ),
        };
        cache.hold_seals(key);
        let series_index = known.unwrap_or_else(|| {
            self.series.push(SeriesBefore {
                key: key.to_vec(),
                created: false,
                settings: None,
                samples: Vec::new(),
            });
            self.series.len() - 1
        });
        let entry = &mut self.series[series_index];
        let kept = Kept {
            series_index,
            created: image == Image::NoSeries,
            settings: matches!(image, Image::Settings(_)),
            sample: matches!(image, Image::Sample(..)),
        };
        match image {
            Image::NoSeries => entry.created = true,
            Image::Settings(meta) => entry.settings = Some(meta),
            Image::Sample(ts_ms, value) => entry.samples.push((ts_ms, value)),
        }
        Ok(Some(kept))
    }

    /// The request [`SeriesUndo::before`] kept `kept` for failed: it wrote no sample and
    /// no settings, so their before-images go, and so does the mark of a series it would
    /// have created unless it did create it (`TS.INCRBY` checks its value after that).
    /// The series' seals stay held until the decision.
    pub fn failed(&mut self, kept: Kept, store: &ShardStore, cache: &mut SeriesCache) {
        let Some(entry) = self.series.get_mut(kept.series_index) else {
            return;
        };
        if kept.created && !cache.directory.contains(store, &entry.key).unwrap_or(true) {
            entry.created = false;
        }
        if kept.settings {
            entry.settings = None;
        }
        if kept.sample {
            entry.samples.pop();
        }
    }

    /// The transaction is decided (by the write with sequence number `decided_seq`, or
    /// the last write of its undo): its series may be sealed again, and a read of one of
    /// them waits for that write, since until it is durable a crash could still take the
    /// part's samples back.
    pub fn release(self, cache: &mut SeriesCache, decided_seq: SeqNo) {
        for series in self.series {
            cache.release_seals(&series.key);
            cache.wrote(&series.key, decided_seq);
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
        self.release(cache, store.last_seq());
    }
}

/// Writes back one series' before-images: deletes it if the part created it; otherwise
/// puts its settings back, deletes the samples the part added, reloads the state (its
/// newest sample may have gone), and puts the overwritten values back.
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
    if let Some(meta) = &before.settings {
        // First, so the samples go back under the retention they were written with.
        store.put(&keys::meta_key(key), &meta.encode());
        cache.directory.insert(key, &meta.labels);
        cache.forget(store, key);
    }
    let Some(state) = series::load(store, cache, key).map_err(storage)? else {
        return Ok(());
    };
    for &(ts_ms, _) in before.samples.iter().filter(|(_, v)| v.is_none()) {
        series::delete_range(store, state, ts_ms, ts_ms, false).map_err(storage)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreOptions;
    use crate::wal::tx::TxId;

    fn sync(store: &mut ShardStore) {
        if let Some(batch) = store.take_wal_batch().unwrap() {
            store.write_batch_sync(batch).unwrap();
        }
    }

    fn run(store: &mut ShardStore, cache: &mut SeriesCache, words: &[&str]) -> Vec<u8> {
        let words: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        let request = exec::encode_request(crate::resp::Protocol::Resp2, &words);
        match exec::run(store, cache, &request, 0).0 {
            crate::shard::mesh::OpResult::Encoded(bytes) => bytes,
            other => panic!("{other:?}"),
        }
    }

    /// Every sample of series `k`, as `cache` and the store hold it.
    fn samples(store: &ShardStore, cache: &mut SeriesCache) -> Vec<Sample> {
        let state = series::load(store, cache, b"k").unwrap().unwrap();
        series::read_range(store, state, 0, u64::MAX).unwrap()
    }

    /// A store in a new directory with series `k`, whose seal is due every eighth open
    /// sample (a chunk holds about seven), with samples 1..=13: eight sealed, five open.
    /// Returns the directory, the store, its cache and the samples.
    fn series_with_samples() -> (tempfile::TempDir, ShardStore, SeriesCache, Vec<Sample>) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ShardStore::open(dir.path(), &StoreOptions::default()).unwrap();
        let mut cache = SeriesCache::default();
        let create = "TS.CREATE k ENCODING UNCOMPRESSED CHUNK_SIZE 128 DUPLICATE_POLICY LAST";
        let words: Vec<&str> = create.split(' ').collect();
        assert_eq!(run(&mut store, &mut cache, &words), b"+OK\r\n");
        for ts in 1..=13 {
            let ts = ts.to_string();
            run(&mut store, &mut cache, &["TS.ADD", "k", &ts, &ts]);
        }
        sync(&mut store);
        let before = samples(&store, &mut cache);
        (dir, store, cache, before)
    }

    /// Every sample of series `k` after `store` (in `dir`) is closed and opened again.
    fn restarted_samples(dir: tempfile::TempDir, store: ShardStore) -> Vec<Sample> {
        drop(store);
        let store = ShardStore::open(dir.path(), &StoreOptions::default()).unwrap();
        samples(&store, &mut SeriesCache::default())
    }

    /// Runs transaction 1's part on series `k`: overwrites sample 1 and adds two, one
    /// before every sealed sample (a seal would be due and merge them with the sealed
    /// chunks), keeping the before-images in `undo`.
    fn part(store: &mut ShardStore, cache: &mut SeriesCache, undo: &mut SeriesUndo) {
        let first = store.tx_part_begin();
        for (ts, value) in [("1", "100"), ("0", "0"), ("20", "20")] {
            let words: Vec<&[u8]> = ["TS.ADD", "k", ts, value]
                .iter()
                .map(|w| w.as_bytes())
                .collect();
            let request = exec::encode_request(crate::resp::Protocol::Resp2, &words);
            undo.before(store, cache, &request, 0).unwrap();
            exec::run(store, cache, &request, 0);
        }
        store.tx_part_end(TxId(1), first).expect("the part wrote");
        sync(store);
    }

    /// Goal: a part that does not commit leaves the series as it was, in memory after its
    /// undo and after a restart, even where its samples would have made a seal (they
    /// stay open samples while it is undecided, so the undo never rewrites a chunk).
    #[test]
    fn an_undone_part_leaves_the_series_as_it_was_before_and_after_a_restart() {
        let (dir, mut store, mut cache, before) = series_with_samples();
        let mut undo = SeriesUndo::default();
        part(&mut store, &mut cache, &mut undo);
        assert!(cache.seals_held(b"k"));
        assert_eq!(samples(&store, &mut cache).len(), before.len() + 2);
        undo.undo(&mut store, &mut cache);
        store.abort_tx(TxId(1));
        sync(&mut store);
        assert!(!cache.seals_held(b"k"));
        assert_eq!(samples(&store, &mut cache), before, "after the undo");
        assert_eq!(restarted_samples(dir, store), before, "after a restart");
    }

    /// Goal: a checkpoint while a part is undecided puts its samples into the memtable
    /// about to freeze, but that memtable is not flushed before the decision; once the
    /// part is undone and the memtable flushed, a restart (replaying the WAL after the
    /// SSTable) shows the series as before the part.
    #[test]
    fn checkpointed_samples_of_an_undecided_part_wait_for_the_decision() {
        let (dir, mut store, mut cache, before) = series_with_samples();
        let mut undo = SeriesUndo::default();
        part(&mut store, &mut cache, &mut undo);
        store.request_freeze();
        assert!(store.checkpoint_wanted(), "open samples are logged only");
        super::super::open::checkpoint(&mut store, &mut cache);
        assert!(
            store.take_flush_blocking().unwrap().is_none(),
            "a memtable holding an undecided part's samples is flushed"
        );
        undo.undo(&mut store, &mut cache);
        store.abort_tx(TxId(1));
        sync(&mut store);
        let job = store
            .take_flush_blocking()
            .unwrap()
            .expect("decided: it flushes");
        store.flush_sync(job).unwrap();
        assert_eq!(samples(&store, &mut cache), before, "after the undo");
        assert_eq!(restarted_samples(dir, store), before, "after a restart");
    }

    /// Goal: a part never decided (a crash before the commit) is gone after a restart.
    #[test]
    fn an_undecided_part_is_gone_after_a_restart() {
        let (dir, mut store, mut cache, before) = series_with_samples();
        part(&mut store, &mut cache, &mut SeriesUndo::default());
        assert_eq!(restarted_samples(dir, store), before);
    }
}
