//! Deleting samples of a series (`TS.DEL`) and whole series.

use crate::base::SeqNo;
use crate::store::ShardStore;

use super::chunk;
use super::keys;
use super::marks::{ChunkWalk, StoredChunk};
use super::meta::SeriesMeta;
use super::open::OpenSample;
use super::series::{retention_cutoff_ms, SeriesError, SeriesState};

/// What [`delete_range`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Samples removed that were inside the retention window (what `TS.DEL` counts).
    pub count: u64,
    /// Their timestamps in time order, when asked for (a rule's buckets to recompute).
    pub ts_ms: Vec<u64>,
}

/// Deletes the samples in `[from_ms, to_ms]` without rewriting a chunk ([`super::marks`]):
/// open samples leave memory (a tombstone follows each one's WAL record, which a replay
/// would bring back), a chunk the range covers gets a tombstone, and a chunk it cuts a
/// deletion mark. Reads the chunks the range overlaps, decoding only those it cuts (or
/// all of them when `with_ts`, to list the timestamps). Returns what it removed and the
/// sequence number of the last write. The caller reloads the series' state.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn delete_range(
    store: &mut ShardStore,
    state: &mut SeriesState,
    from_ms: u64,
    to_ms: u64,
    with_ts: bool,
) -> Result<(Removed, SeqNo), SeriesError> {
    let id = state.meta.series_id;
    let cutoff_ms = retention_cutoff_ms(state);
    let mut removed = Removed::default();
    let mut seq = SeqNo(0);
    let mut sealed_ts = Vec::new();
    let gone: Vec<OpenSample> = state.open.remove_range(from_ms, to_ms);
    let mut open_ts: Vec<u64> = gone.iter().map(|o| o.sample.ts_ms).collect();
    for open in gone {
        seq = store.delete(&keys::sample_key(id, open.sample.ts_ms));
    }
    let walk = ChunkWalk::new(store.scan_from(&keys::chunk_key(id, from_ms)), id, to_ms);
    let chunks: Vec<StoredChunk> = walk.collect::<Result<_, _>>()?;
    for chunk in chunks {
        let header = chunk::header(&chunk.value)?;
        let covered = from_ms <= header.first_ts_ms && chunk.last_ts_ms <= to_ms;
        // An open sample may share a timestamp with a sealed one (it wins the tie): the
        // chunk is counted from its header only if no removed open sample falls in it.
        let open_inside = open_ts.partition_point(|&t| t < header.first_ts_ms)
            < open_ts.partition_point(|&t| t <= chunk.last_ts_ms);
        let plain = chunk.deleted.is_empty() && header.first_ts_ms >= cutoff_ms && !open_inside;
        if covered && plain && !with_ts {
            removed.count += u64::from(header.sample_count);
            seq = store.delete(&chunk.key);
            continue;
        }
        let samples = chunk.samples()?;
        let gone: Vec<u64> = samples
            .iter()
            .map(|s| s.ts_ms)
            .filter(|t| (from_ms..=to_ms).contains(t))
            .collect();
        let (Some(&first), Some(&last)) = (gone.first(), gone.last()) else {
            continue;
        };
        seq = if gone.len() == samples.len() {
            store.delete(&chunk.key)
        } else {
            store.put(&keys::mark_key(id, chunk.last_ts_ms, first, last), b"")
        };
        sealed_ts.extend(gone);
    }
    open_ts.extend(sealed_ts);
    open_ts.retain(|&t| t >= cutoff_ms);
    open_ts.sort_unstable();
    open_ts.dedup();
    removed.count += open_ts.len() as u64;
    if with_ts {
        removed.ts_ms = open_ts;
    }
    state.wrote(seq);
    Ok((removed, seq))
}

/// Deletes a whole series: its metadata, seal mark, chunks (with their deletion marks)
/// and sample entries. The caller
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
                .is_some()
                || keys::parse_mark_key(&entry.key).is_some_and(|m| m.series_id == id);
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
