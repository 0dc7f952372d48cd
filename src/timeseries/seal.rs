//! Sealing a series' open samples into chunks ([`seal`]): each open sample goes into the
//! chunk whose span holds it, or into a new chunk between the existing ones, so a seal
//! rewrites only the chunks that gain samples.

use crate::base::SeqNo;
use crate::store::ShardStore;

use super::chunk::{self, ChunkEncoding, Sample};
use super::keys;
use super::marks::ChunkWalk;
use super::series::{retention_cutoff_ms, scan_chunks, SeriesError, SeriesState};

/// Seals every open sample into chunks: merges them into the chunks whose span holds
/// them, writes the others as new chunks between the existing ones, drops samples older
/// than the retention window, writes the chunks (cut at `chunk_size_bytes` of encoding)
/// and the seal mark ([`keys::sealed_key`]), and deletes the replaced chunks and the
/// sample entries a checkpoint or a crash left in the LSM tree. A chunk that holds no open
/// sample is neither read nor rewritten, so one old out-of-order sample costs one chunk's
/// rewrite, not the series' tail.
///
/// # Errors
/// A failed read or a damaged entry; the open samples are then kept.
pub fn seal(store: &mut ShardStore, state: &mut SeriesState) -> Result<SeqNo, SeriesError> {
    let id = state.meta.series_id;
    if state.open.is_empty() {
        return Ok(SeqNo(0));
    }
    let cutoff_ms = retention_cutoff_ms(state);
    let unsealed: Vec<Sample> = state.open.range(0, u64::MAX).collect();
    let runs = seal_runs(store, id, state.sealed_until_ms, &unsealed)?;
    let expired = if cutoff_ms > 0 {
        scan_chunks(store, id, 0, cutoff_ms - 1)?
    } else {
        Vec::new()
    };
    let (open, stale) = state.open.take();
    let mut seq = SeqNo(0);
    for run in &runs {
        if let Some(chunk) = &run.chunk {
            seq = store.delete(&chunk.key);
        }
    }
    for run in runs {
        let older = run.chunk.map(|c| c.samples).unwrap_or_default();
        let merged: Vec<Sample> = super::range::merge(older, unsealed[run.open].to_vec())
            .into_iter()
            .filter(|s| s.ts_ms >= cutoff_ms)
            .collect();
        for (last_ts_ms, encoded) in cut_chunks(
            &merged,
            state.meta.encoding,
            state.meta.chunk_size_bytes as usize,
        ) {
            seq = store.put(&keys::chunk_key(id, last_ts_ms), &encoded);
            state.sealed_until_ms = state.sealed_until_ms.max(Some(last_ts_ms));
        }
    }
    let stored = open.iter().filter(|o| o.stored).map(|o| o.sample.ts_ms);
    for ts_ms in stored.chain(stale) {
        seq = store.delete(&keys::sample_key(id, ts_ms));
    }
    // Whole chunks that fell out of the retention window.
    for chunk in expired {
        if chunk.last_ts_ms < cutoff_ms {
            seq = store.delete(&chunk.key);
        }
    }
    // Sample entries older than this mark are sealed (see `load`).
    seq = seq.max(store.put(&keys::sealed_key(id), b""));
    state.wrote(seq);
    Ok(seq)
}

/// A chunk a seal rewrites: its key and its live samples.
struct SealedChunk {
    key: Vec<u8>,
    samples: Vec<Sample>,
}

/// Open samples a seal writes together: those inside one chunk's span (merged with it),
/// or those between two chunks (or after the last), which become new chunks there.
struct SealRun {
    chunk: Option<SealedChunk>,
    /// Indices into the open samples, in time order.
    open: std::ops::Range<usize>,
}

/// Splits the open samples `unsealed` (time order) into [`SealRun`]s, with one seek per
/// chunk that holds some (or whose gap before it does). Chunks span `[first sample, key]`
/// and never overlap, so a run's chunks stay inside its chunk's span or its gap.
fn seal_runs(
    store: &ShardStore,
    id: u64,
    sealed_until_ms: Option<u64>,
    unsealed: &[Sample],
) -> Result<Vec<SealRun>, SeriesError> {
    let mut runs = Vec::new();
    let mut at = 0;
    while at < unsealed.len() {
        let ts_ms = unsealed[at].ts_ms;
        // Past every chunk: the rest is one run after them (in-order appends need no read).
        let past_chunks = sealed_until_ms.is_none_or(|until| ts_ms > until);
        let next = match past_chunks {
            true => None,
            false => {
                let entries = store.scan_from(&keys::chunk_key(id, ts_ms));
                ChunkWalk::new(entries, id, u64::MAX).next().transpose()?
            }
        };
        let Some(next) = next else {
            runs.push(SealRun {
                chunk: None,
                open: at..unsealed.len(),
            });
            break;
        };
        let first_ts_ms = chunk::header(&next.value)?.first_ts_ms;
        let (bound_ms, inside) = if first_ts_ms <= ts_ms {
            (next.last_ts_ms, true)
        } else {
            (first_ts_ms - 1, false)
        };
        let end = at + unsealed[at..].partition_point(|s| s.ts_ms <= bound_ms);
        let chunk = match inside {
            true => Some(SealedChunk {
                samples: next.samples()?,
                key: next.key,
            }),
            false => None,
        };
        runs.push(SealRun {
            chunk,
            open: at..end,
        });
        at = end;
    }
    Ok(runs)
}

/// Splits `samples` into runs whose encoding stays within `chunk_size_bytes` (a run of one
/// sample always fits): each run's last timestamp and encoding.
fn cut_chunks(
    samples: &[Sample],
    encoding: ChunkEncoding,
    chunk_size_bytes: usize,
) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = samples;
    while !rest.is_empty() {
        let mut take = rest.len().min(chunk_size_bytes);
        let encoded = loop {
            let encoded = chunk::encode(&rest[..take], encoding);
            if encoded.len() <= chunk_size_bytes || take == 1 {
                break encoded;
            }
            take = (take * chunk_size_bytes / encoded.len()).clamp(1, take - 1);
        };
        out.push((rest[take - 1].ts_ms, encoded));
        rest = &rest[take..];
    }
    out
}
