//! `TS.INFO key [DEBUG]`: RedisTimeSeries's fields in its order (1.10's, then 1.12's
//! `ignoreMaxTimeDiff` and `ignoreMaxValDiff`), as a flat array of names and values in
//! RESP2 and as a map in RESP3, where the labels are a map too and the chunks of `DEBUG`
//! are maps (RedisTimeSeries `src/module.c`, `TSDB_info`, with `ReplyWithMapOrArray`).

use crate::resp::{self, resp3, Protocol};
use crate::store::ShardStore;

use super::chunk::{self, ChunkEncoding};
use super::keys;
use super::marks::ChunkWalk;
use super::range::{RangeCursor, RangeSource};
use super::reply;
use super::series::{SeriesError, SeriesState};

/// Fields of `TS.INFO` without `DEBUG`; `DEBUG` adds `keySelfName` and `Chunks`.
const FIELD_COUNT: usize = 14;

/// Appends `TS.INFO`'s reply for series `key` in `proto`.
///
/// # Errors
/// A failed read or a damaged entry while walking the series for its statistics.
pub fn info(
    store: &ShardStore,
    state: &SeriesState,
    key: &[u8],
    debug: bool,
    proto: Protocol,
    out: &mut Vec<u8>,
) -> Result<(), SeriesError> {
    let stats = stats(store, state)?;
    let meta = &state.meta;
    resp3::map_header(out, proto, FIELD_COUNT + if debug { 2 } else { 0 });
    let fields: [(&str, i64); 7] = [
        ("totalSamples", stats.total_samples as i64),
        ("memoryUsage", stats.memory_bytes as i64),
        ("firstTimestamp", stats.first_ts_ms as i64),
        ("lastTimestamp", state.last.map_or(0, |l| l.ts_ms as i64)),
        ("retentionTime", meta.retention_ms as i64),
        // The open chunk counts, as in RedisTimeSeries, where a series always has one.
        ("chunkCount", stats.chunks.len() as i64 + 1),
        ("chunkSize", i64::from(meta.chunk_size_bytes)),
    ];
    for (name, value) in fields {
        resp::simple(out, name);
        resp::integer(out, value);
    }
    resp::simple(out, "chunkType");
    resp::simple(
        out,
        match meta.encoding {
            ChunkEncoding::Gorilla => "compressed",
            ChunkEncoding::Uncompressed => "uncompressed",
        },
    );
    resp::simple(out, "duplicatePolicy");
    match meta.duplicate_policy {
        Some(policy) => resp::simple(out, policy.name()),
        None => resp3::null(out, proto),
    }
    resp::simple(out, "labels");
    reply::labels(
        out,
        proto,
        meta.labels
            .iter()
            .map(|(n, v)| (n.as_slice(), Some(v.as_slice()))),
    );
    resp::simple(out, "sourceKey");
    match &meta.source_key {
        Some(source) => resp::bulk(out, source),
        None => resp3::null(out, proto),
    }
    // RESP2: [[dest, bucket, AGG, align] ...]; RESP3: {dest: [bucket, AGG, align]}.
    resp::simple(out, "rules");
    match proto {
        Protocol::Resp2 => resp::array_header(out, meta.rules.len()),
        Protocol::Resp3 => resp3::map_header(out, proto, meta.rules.len()),
    }
    for rule in &meta.rules {
        if proto == Protocol::Resp2 {
            resp::array_header(out, 4);
        }
        resp::bulk(out, &rule.dest_key);
        if proto == Protocol::Resp3 {
            resp::array_header(out, 3);
        }
        resp::integer(out, rule.bucket_ms as i64);
        resp::simple(out, &rule.aggregator.name().to_ascii_uppercase());
        resp::integer(out, rule.align_ms as i64);
    }
    resp::simple(out, "ignoreMaxTimeDiff");
    resp::integer(out, meta.ignore.max_time_diff_ms as i64);
    resp::simple(out, "ignoreMaxValDiff");
    resp3::double(out, proto, meta.ignore.max_value_diff);
    if debug {
        resp::simple(out, "keySelfName");
        resp::bulk(out, key);
        resp::simple(out, "Chunks");
        resp::array_header(out, stats.chunks.len());
        for (first, last, count, bytes) in &stats.chunks {
            resp3::map_header(out, proto, 5);
            for (name, value) in [
                ("startTimestamp", *first as i64),
                ("endTimestamp", *last as i64),
                ("samples", i64::from(*count)),
                ("size", *bytes as i64),
            ] {
                resp::simple(out, name);
                resp::integer(out, value);
            }
            resp::simple(out, "bytesPerSample");
            resp::simple(out, &reply::format_value(*bytes as f64 / f64::from(*count)));
        }
    }
    Ok(())
}

/// What `TS.INFO` reports about storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeriesStats {
    /// Samples inside the retention window.
    pub total_samples: u64,
    /// Bytes of the series' metadata and chunks, and about 26 per open sample.
    pub memory_bytes: u64,
    /// The first timestamp inside the retention window (0 if none).
    pub first_ts_ms: u64,
    /// Sealed chunks: (first ts, last ts, samples, bytes).
    pub chunks: Vec<(u64, u64, u32, usize)>,
}

/// Walks the whole series for `TS.INFO`.
///
/// # Errors
/// A failed read or a damaged entry.
pub fn stats(store: &ShardStore, state: &SeriesState) -> Result<SeriesStats, SeriesError> {
    let id = state.meta.series_id;
    let mut stats = SeriesStats {
        memory_bytes: state.meta.encode().len() as u64 + state.open.len() as u64 * 26,
        ..SeriesStats::default()
    };
    let entries = store.scan_from(&keys::chunk_key(id, 0));
    for chunk in ChunkWalk::new(entries, id, u64::MAX) {
        let chunk = chunk?;
        let h = chunk::header(&chunk.value)?;
        stats.memory_bytes += chunk.value.len() as u64;
        let size_bytes = chunk.value.len();
        if chunk.deleted.is_empty() {
            stats
                .chunks
                .push((h.first_ts_ms, h.last_ts_ms, h.sample_count, size_bytes));
            continue;
        }
        // Cut by deletion marks: what is left of it, until compaction rewrites it.
        let samples = chunk.samples()?;
        if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
            let count = samples.len() as u32;
            stats
                .chunks
                .push((first.ts_ms, last.ts_ms, count, size_bytes));
        }
    }
    // Counted from chunk headers where they tell, never holding the series in memory.
    let everything = super::args::RangeArgs::default();
    let source = RangeSource::open(store, state, everything, None, false)?;
    let cache = Some(store.block_cache());
    stats.total_samples = RangeCursor::new(&source).count_rest(&source, cache)?;
    let (mut cursor, mut first) = (RangeCursor::new(&source), Vec::new());
    while first.is_empty() && cursor.step(&source, cache, &mut first)? {}
    stats.first_ts_ms = first.first().map_or(0, |s| s.ts_ms);
    Ok(stats)
}
