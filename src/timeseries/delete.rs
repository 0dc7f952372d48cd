//! Deleting samples of a series (`TS.DEL`) and whole series.

use crate::base::SeqNo;
use crate::store::ShardStore;

use super::chunk::{self, Sample};
use super::keys;
use super::meta::SeriesMeta;
use super::open::OpenSample;
use super::series::{retention_cutoff_ms, scan_chunks, SeriesError, SeriesState};

/// Deletes the samples in `[from_ms, to_ms]`; returns the timestamps of those that were
/// inside the retention window (what `TS.DEL` counts), in order, and the sequence number
/// of the last write. The caller reloads the series' state.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn delete_range(
    store: &mut ShardStore,
    state: &mut SeriesState,
    from_ms: u64,
    to_ms: u64,
) -> Result<(Vec<u64>, SeqNo), SeriesError> {
    let id = state.meta.series_id;
    let mut removed = std::collections::BTreeSet::new();
    let mut seq = SeqNo(0);
    // Each open sample has a WAL record that a replay would bring back: a tombstone
    // follows it.
    let gone: Vec<OpenSample> = state.open.remove_range(from_ms, to_ms);
    for open in gone {
        removed.insert(open.sample.ts_ms);
        seq = store.delete(&keys::sample_key(id, open.sample.ts_ms));
    }
    for (key, samples) in scan_chunks(store, id, from_ms, to_ms)? {
        let (gone, kept): (Vec<Sample>, Vec<Sample>) = samples
            .into_iter()
            .partition(|s| (from_ms..=to_ms).contains(&s.ts_ms));
        if gone.is_empty() {
            continue;
        }
        removed.extend(gone.iter().map(|s| s.ts_ms));
        seq = store.delete(&key);
        if let Some(last) = kept.last() {
            seq = store.put(
                &keys::chunk_key(id, last.ts_ms),
                &chunk::encode(&kept, state.meta.encoding),
            );
        }
    }
    let cutoff_ms = retention_cutoff_ms(state);
    Ok((removed.range(cutoff_ms..).copied().collect(), seq))
}

/// Deletes a whole series: its metadata, seal mark, chunks and sample entries. The caller
/// forgot it first ([`SeriesCache::forget`]), which put its open samples into the memtable.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn delete_series(
    store: &mut ShardStore,
    key: &[u8],
    meta: &SeriesMeta,
) -> Result<SeqNo, SeriesError> {
    let id = meta.series_id;
    let mut doomed = Vec::new();
    for start in [keys::chunk_key(id, 0), keys::sample_key(id, 0)] {
        for entry in store.scan_from(&start) {
            let entry = entry?;
            let ours = keys::chunk_key_ts(&entry.key, id)
                .or_else(|| keys::sample_key_ts(&entry.key, id))
                .is_some();
            if !ours {
                break;
            }
            if entry.value.is_some() {
                doomed.push(entry.key);
            }
        }
    }
    for k in &doomed {
        store.delete(k);
    }
    store.delete(&keys::sealed_key(id));
    Ok(store.delete(&keys::meta_key(key)))
}
