//! What a time-series request will read from the store, said before it runs, so that the
//! shard can read the blocks through its ring first (`shard::fetch_ts`). Pure: it looks
//! at the request's arguments and the series' state in memory, never at the store.
//!
//! A read is a [`Reach`]: a key range and where the reader stops in it. Each mirrors a
//! reader of [`super::series`] (`scan_chunks`, `scan_samples`, `load`),
//! [`super::info`] or [`super::directory`], and stops where they do, by the same rules
//! ([`chunk::walk_ends`], [`keys::sample_walk_ts`]), so a plan that
//! is checked by scanning from memory ([`crate::store::ShardStore::first_block_missing`])
//! reads exactly the entries the reader will.
//!
//! A series not in the shard's cache is loaded first: its metadata, seal mark, unsealed
//! samples and every chunk ([`load_reaches`]), which covers any chunk range the command
//! reads after. What is not planned (it reads with blocking reads, counted in `INFO`'s
//! `block_reads_blocking`): the other series a compaction rule touches (`TS.ADD` into a
//! rule's source, `LATEST`), a series deleted by `DEL` or a string write, requests
//! inside a transaction batch, the seal a memtable checkpoint makes (no request waits for
//! it; it reads only when out-of-order samples overlap chunks on disk), and the chunks a streamed range reply reads after its
//! command ran ([`super::range`]: a streaming reader would plan each step with
//! [`crate::store::ShardStore::blocks_in_range`]).

use crate::sstable::TableEntry;

use super::args;
use super::chunk;
use super::keys::{self, KeyClass};
use super::series::{self, SeriesState};

/// A range of store keys a time-series reader goes through, and where it stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// One key's newest version (a point lookup).
    Key(Vec<u8>),
    /// The sealed chunks of series `id` that may hold samples in `[from_ms, to_ms]`: from
    /// the one keyed at or after `from_ms` up to the first whose first sample is after
    /// `to_ms` (`scan_chunks`).
    Chunks {
        /// The series id.
        id: u64,
        /// First timestamp wanted (ms).
        from_ms: u64,
        /// Last timestamp wanted (ms).
        to_ms: u64,
    },
    /// The unsealed sample entries of series `id` in `[from_ms, to_ms]` (`scan_samples`).
    Samples {
        /// The series id.
        id: u64,
        /// First timestamp wanted (ms).
        from_ms: u64,
        /// Last timestamp wanted (ms).
        to_ms: u64,
    },
    /// Every series' metadata entry: what building the label index reads.
    Metas,
}

impl Reach {
    /// The first key the reader seeks to.
    pub fn start_key(&self) -> Vec<u8> {
        match *self {
            Self::Key(ref key) => key.clone(),
            Self::Chunks { id, from_ms, .. } => keys::chunk_key(id, from_ms).to_vec(),
            Self::Samples { id, from_ms, .. } => keys::sample_key(id, from_ms).to_vec(),
            Self::Metas => keys::meta_key(b""),
        }
    }

    /// The last key the reader surely reads (it may read one entry past it, the one that
    /// tells it to stop: [`Reach::ends_at`]).
    pub fn end_key(&self) -> Vec<u8> {
        match *self {
            Self::Key(ref key) => key.clone(),
            Self::Chunks { id, to_ms, .. } => keys::chunk_key(id, to_ms).to_vec(),
            Self::Samples { id, to_ms, .. } => keys::sample_key(id, to_ms).to_vec(),
            Self::Metas => keys::USER_KEYS_END.to_vec(),
        }
    }

    /// Whether the reader stops at `entry` (having read it), as the readers do.
    pub fn ends_at(&self, entry: &TableEntry) -> bool {
        match *self {
            Self::Key(_) => true,
            // A damaged header ends the reader (with an error).
            Self::Chunks { id, to_ms, .. } => {
                chunk::walk_ends(&entry.key, entry.value.as_deref(), id, to_ms).unwrap_or(true)
            }
            Self::Samples { id, to_ms, .. } => {
                keys::sample_walk_ts(&entry.key, id, to_ms).is_none()
            }
            Self::Metas => !matches!(keys::classify(&entry.key), KeyClass::Series(_)),
        }
    }
}

/// What any command on series `user_key` reads first: whether a string shadows it (when
/// `string_check`, see [`series::string_check_needed`]), and, unless the shard's cache
/// holds the series (`cached`), its metadata.
pub fn key_reaches(user_key: &[u8], string_check: bool, cached: bool, out: &mut Vec<Reach>) {
    if string_check {
        out.push(Reach::Key(user_key.to_vec()));
    }
    if !cached {
        out.push(Reach::Key(keys::meta_key(user_key)));
    }
}

/// What loading series `id` into the cache reads once its metadata is known
/// (`series::load`): the seal mark, every sample entry and every chunk. Deleting the
/// series (`series::delete_series`) reads the same.
pub fn load_reaches(id: u64, out: &mut Vec<Reach>) {
    out.push(Reach::Key(keys::sealed_key(id).to_vec()));
    out.push(Reach::Samples {
        id,
        from_ms: 0,
        to_ms: u64::MAX,
    });
    out.push(Reach::Chunks {
        id,
        from_ms: 0,
        to_ms: u64::MAX,
    });
}

/// What request `args` (name, key, arguments) on a series already in the cache (`state`)
/// reads of its chunks. Malformed arguments read nothing (the command refuses them).
pub fn command_reaches(args: &[&[u8]], state: &SeriesState, out: &mut Vec<Reach>) {
    let (Some(name), Some(rest)) = (args.first(), args.get(1..)) else {
        return;
    };
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    let id = state.meta.series_id;
    if is("TS.RANGE") || is("TS.REVRANGE") {
        if let Ok(range) = args::parse_range(rest) {
            range_reaches(state, &range, out);
        }
    } else if is("TS.DEL") && rest.len() >= 3 {
        if let Ok((from_ms, to_ms)) = args::parse_del(rest) {
            out.push(Reach::Chunks { id, from_ms, to_ms });
        }
    } else if is("TS.INFO") {
        out.push(Reach::Chunks {
            id,
            from_ms: 0,
            to_ms: u64::MAX,
        });
    } else if is("TS.ADD") || is("TS.MADD") {
        let ts_ms = match rest.get(1).map(|ts| args::parse_timestamp(ts)) {
            Some(Ok(args::TimestampArg::At(ts_ms))) => Some(ts_ms),
            _ => None,
        };
        add_reaches(state, ts_ms, out);
    } else if is("TS.INCRBY") || is("TS.DECRBY") {
        add_reaches(state, None, out);
    }
}

/// Whether adding a sample with timestamp argument `ts` to series `state` (if cached)
/// reads nothing from the store: the series is cached, no string check is due
/// ([`series::string_check_needed`] at `memtable_writes`), and [`command_reaches`] of the
/// add names no chunk. The ingest fast path: a `TS.ADD`/`TS.MADD` whose every sample
/// passes needs no planning.
pub fn add_reads_nothing(state: Option<&SeriesState>, ts: &[u8], memtable_writes: u64) -> bool {
    let Some(state) = state else {
        return false;
    };
    if series::string_check_needed(Some(state), memtable_writes) {
        return false;
    }
    let ts_ms = match args::parse_timestamp(ts) {
        Ok(args::TimestampArg::At(ts_ms)) => Some(ts_ms),
        _ => None,
    };
    let mut reaches = Vec::new();
    add_reaches(state, ts_ms, &mut reaches);
    reaches.is_empty()
}

/// What a range query of `state` reads of its chunks (`exec::range_reply`).
pub fn range_reaches(state: &SeriesState, range: &args::RangeArgs, out: &mut Vec<Reach>) {
    let Some(last) = state.last else {
        return;
    };
    let from_ms = range.from_ms.max(series::retention_cutoff_ms(state));
    let to_ms = range.to_ms.unwrap_or(last.ts_ms);
    if from_ms <= to_ms {
        out.push(Reach::Chunks {
            id: state.meta.series_id,
            from_ms,
            to_ms,
        });
    }
}

/// Out-of-order open samples a seal's plan names one by one; past this many, one reach
/// over their span.
const SEAL_REACHES_MAX: usize = 32;

/// What adding a sample at `ts_ms` (`None`: the clock's, after the newest) reads: the
/// chunk holding an older timestamp (for its duplicate policy), and what the seal that
/// may follow merges or drops (`series::seal`).
fn add_reaches(state: &SeriesState, ts_ms: Option<u64>, out: &mut Vec<Reach>) {
    let id = state.meta.series_id;
    let sealed_until_ms = state.sealed_until_ms;
    if let Some(ts_ms) = ts_ms.filter(|&t| sealed_until_ms.is_some_and(|until| t <= until)) {
        out.push(Reach::Chunks {
            id,
            from_ms: ts_ms,
            to_ms: ts_ms,
        });
    }
    if !series::seal_due(state, state.open.len() + 1) {
        return;
    }
    // The seal reads the chunk at or after each open sample that is not past every chunk
    // (`seal::seal_runs`): one reach each, or one over their span when there are many.
    if let Some(until_ms) = sealed_until_ms {
        let mut inside: Vec<u64> = state.open.range(0, until_ms).map(|s| s.ts_ms).collect();
        inside.extend(ts_ms.filter(|&t| t <= until_ms));
        inside.sort_unstable();
        inside.dedup();
        match (inside.first(), inside.last()) {
            (Some(&from_ms), Some(&to_ms)) if inside.len() > SEAL_REACHES_MAX => {
                out.push(Reach::Chunks { id, from_ms, to_ms })
            }
            _ => out.extend(inside.into_iter().map(|t| Reach::Chunks {
                id,
                from_ms: t,
                to_ms: t,
            })),
        }
    }
    let newest_ms = state.last.map(|l| l.ts_ms).into_iter().chain(ts_ms).max();
    let retention_ms = state.meta.retention_ms;
    if let Some(cutoff_ms) = newest_ms
        .filter(|_| retention_ms > 0)
        .map(|n| n.saturating_sub(retention_ms))
        .filter(|&c| c > 0)
    {
        out.push(Reach::Chunks {
            id,
            from_ms: 0,
            to_ms: cutoff_ms - 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::SeqNo;

    fn entry(key: &[u8], value: Option<Vec<u8>>) -> TableEntry {
        TableEntry {
            key: key.to_vec(),
            seq: SeqNo(1),
            value,
            expire_at_ms: None,
        }
    }

    #[test]
    fn a_chunk_range_stops_at_the_first_chunk_past_it_or_another_series() {
        let reach = Reach::Chunks {
            id: 7,
            from_ms: 100,
            to_ms: 200,
        };
        let inside = chunk::encode(
            &[chunk::Sample {
                ts_ms: 150,
                value: 1.0,
            }],
            chunk::ChunkEncoding::Gorilla,
        );
        let past = chunk::encode(
            &[chunk::Sample {
                ts_ms: 201,
                value: 1.0,
            }],
            chunk::ChunkEncoding::Gorilla,
        );
        assert!(!reach.ends_at(&entry(&keys::chunk_key(7, 150), Some(inside))));
        assert!(
            !reach.ends_at(&entry(&keys::chunk_key(7, 160), None)),
            "a tombstone"
        );
        assert!(reach.ends_at(&entry(&keys::chunk_key(7, 201), Some(past))));
        assert!(reach.ends_at(&entry(&keys::chunk_key(8, 150), None)));
        assert!(reach.start_key() < reach.end_key());
    }

    #[test]
    fn sample_and_meta_ranges_stop_where_their_readers_do() {
        let reach = Reach::Samples {
            id: 3,
            from_ms: 0,
            to_ms: 10,
        };
        assert!(!reach.ends_at(&entry(&keys::sample_key(3, 10), None)));
        assert!(reach.ends_at(&entry(&keys::sample_key(3, 11), None)));
        assert!(Reach::Metas.ends_at(&entry(&keys::chunk_key(1, 1), None)));
        assert!(!Reach::Metas.ends_at(&entry(&keys::meta_key(b"a"), None)));
    }
}
