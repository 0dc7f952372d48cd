//! The samples right next to a time range: the last one before it and the first one after
//! it, sealed or open, inside the retention window. `twa` needs them to interpolate at a
//! bucket's edges ([`super::twa`]); nothing else reads them.
//!
//! Chunks are keyed by their last timestamp, so the first one after `t` is one seek; the
//! last one before `t` is found by seeking windows that grow sixteenfold back from `t`
//! (the store has no backward iterator), each read up to `t` and no further.

use super::chunk::{self, Sample};
use super::keys;
use super::marks::ChunkWalk;
use super::series::{self, SeriesError, SeriesState};
use crate::store::ShardStore;

/// The first window a backward search reads, in milliseconds (about a minute).
const FIRST_WINDOW_MS: u64 = 1 << 16;

/// How much each backward window grows over the one before.
const WINDOW_GROWTH_SHIFT: u32 = 4;

/// The nearer of a sealed and an open candidate: the earlier one when looking `later`
/// than a time, else the later one; at one timestamp the open sample wins, being newer.
fn nearest(sealed: Option<Sample>, open: Option<Sample>, later: bool) -> Option<Sample> {
    match (sealed, open) {
        (Some(s), Some(o)) if (later && s.ts_ms < o.ts_ms) || (!later && s.ts_ms > o.ts_ms) => {
            Some(s)
        }
        (s, o) => o.or(s),
    }
}

/// The series' first sample after `ts_ms`, if any.
///
/// # Errors
/// A failed read or a damaged chunk.
pub fn first_after(
    store: &ShardStore,
    state: &SeriesState,
    ts_ms: u64,
) -> Result<Option<Sample>, SeriesError> {
    let Some(from_ms) = ts_ms.checked_add(1) else {
        return Ok(None);
    };
    let from_ms = from_ms.max(series::retention_cutoff_ms(state));
    let id = state.meta.series_id;
    let mut sealed = None;
    let entries = store.scan_from(&keys::chunk_key(id, from_ms));
    for chunk in ChunkWalk::new(entries, id, u64::MAX) {
        sealed = chunk?.samples()?.into_iter().find(|s| s.ts_ms >= from_ms);
        if sealed.is_some() {
            break;
        }
    }
    let open = state.open.range(from_ms, u64::MAX).next();
    Ok(nearest(sealed, open, true))
}

/// The series' last sample before `ts_ms`, if any.
///
/// # Errors
/// A failed read or a damaged chunk.
pub fn last_before(
    store: &ShardStore,
    state: &SeriesState,
    ts_ms: u64,
) -> Result<Option<Sample>, SeriesError> {
    let cutoff_ms = series::retention_cutoff_ms(state);
    if ts_ms <= cutoff_ms {
        return Ok(None);
    }
    let open = state.open.range(cutoff_ms, ts_ms - 1).last();
    let sealed = last_sealed_before(store, state, ts_ms, cutoff_ms)?;
    Ok(nearest(sealed, open, false))
}

/// The last sealed sample in `[cutoff_ms, ts_ms)`.
fn last_sealed_before(
    store: &ShardStore,
    state: &SeriesState,
    ts_ms: u64,
    cutoff_ms: u64,
) -> Result<Option<Sample>, SeriesError> {
    let id = state.meta.series_id;
    let in_window = |s: &Sample| s.ts_ms >= cutoff_ms && s.ts_ms < ts_ms;
    // The chunk that holds `ts_ms` (or the first after it) may start before it.
    let entries = store.scan_from(&keys::chunk_key(id, ts_ms));
    if let Some(chunk) = ChunkWalk::new(entries, id, u64::MAX).next().transpose()? {
        if chunk::header(&chunk.value)?.first_ts_ms < ts_ms {
            let found = chunk.samples()?.into_iter().rev().find(in_window);
            if found.is_some() {
                return Ok(found);
            }
            // Its samples before `ts_ms` are deleted: look further back, as below.
        }
    }
    // Otherwise the answer is the last sample of the last chunk ending before `ts_ms`.
    let mut window_ms = FIRST_WINDOW_MS;
    loop {
        let low_ms = ts_ms.saturating_sub(window_ms).max(cutoff_ms);
        let mut before = Vec::new();
        let entries = store.scan_from(&keys::chunk_key(id, low_ms));
        for chunk in ChunkWalk::new(entries, id, ts_ms.saturating_sub(1)) {
            let chunk = chunk?;
            if chunk.last_ts_ms >= ts_ms {
                break;
            }
            before.push(chunk);
        }
        // Newest first: a chunk whose samples in the window are all deleted is skipped.
        for chunk in before.iter().rev() {
            let found = chunk.samples()?.into_iter().rev().find(in_window);
            if found.is_some() {
                return Ok(found);
            }
        }
        if low_ms == cutoff_ms {
            return Ok(None);
        }
        window_ms = window_ms.saturating_mul(1 << WINDOW_GROWTH_SHIFT);
    }
}
