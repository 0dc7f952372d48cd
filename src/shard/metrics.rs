//! Per-shard counters, written only by their shard (relaxed atomics) and summed by any
//! shard that answers `INFO` (or the metrics endpoint). Counters take no lock; the latency
//! histograms ([`Latencies`]) take their shard's own mutex, which only a reader of `INFO
//! latencystats` or `/metrics` ever contends for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;

use crate::command::CommandKind;

/// Counters of one shard.
#[derive(Default)]
pub struct ShardMetrics {
    /// Open client connections.
    pub connected_clients: AtomicU64,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Connections refused because the shard was at `clients_per_shard_max`.
    pub rejected_connections: AtomicU64,
    /// Commands processed since start.
    pub total_commands: AtomicU64,
    /// Commands per [`CommandKind`], by its `repr`.
    pub command_calls: CommandCounters,
    /// Microseconds spent executing each [`CommandKind`] (`INFO commandstats` `usec`).
    pub command_usec: CommandCounters,
    /// Calls of each [`CommandKind`] refused before running: a wrong argument count or
    /// syntax, or `NOAUTH` (`rejected_calls`).
    pub command_rejected: CommandCounters,
    /// Execution latency per command, WAL fdatasync latency and group-commit batch sizes.
    pub latencies: Mutex<Latencies>,
    /// The commands of this shard's connections that were slow (`SLOWLOG`), newest first.
    pub slowlog: Mutex<std::collections::VecDeque<super::slowlog::SlowlogEntry>>,
    /// Unknown or malformed commands.
    pub command_errors: AtomicU64,
    /// Times a connection stopped being read because its unsent replies passed the cap.
    pub backpressure_events: AtomicU64,
    /// Connections closed for a protocol error or an oversized request.
    pub protocol_errors: AtomicU64,
    /// Requests forwarded to other shards.
    pub forwarded_requests: AtomicU64,
    /// WAL batches written (group commits).
    pub wal_batches: AtomicU64,
    /// WAL bytes written.
    pub wal_bytes: AtomicU64,
    /// fdatasync calls completed on the WAL.
    pub wal_fsyncs: AtomicU64,
    /// Memtable flushes completed.
    pub flushes: AtomicU64,
    /// Bytes in the active memtable.
    pub memtable_bytes: AtomicU64,
    /// Time-series samples held open in memory (logged to the WAL, not yet sealed).
    pub ts_open_samples: AtomicU64,
    /// Live SSTables.
    pub sstables: AtomicU64,
    /// Live SSTables in level 0 (flushed memtables not yet compacted).
    pub l0_sstables: AtomicU64,
    /// Live SSTables in each level.
    pub level_sstables: [AtomicU64; crate::manifest::LEVELS_MAX],
    /// Bytes of live SSTables in each level.
    pub level_bytes: [AtomicU64; crate::manifest::LEVELS_MAX],
    /// Bytes of live SSTables.
    pub sstable_bytes: AtomicU64,
    /// Compactions installed since start (trivial moves included).
    pub compactions: AtomicU64,
    /// Bytes compactions read.
    pub compaction_read_bytes: AtomicU64,
    /// Bytes compactions wrote.
    pub compaction_written_bytes: AtomicU64,
    /// 1 once a compaction of the shard failed (they stop until restart).
    pub compaction_failed: AtomicU64,
    /// Point lookups served from the block cache.
    pub block_cache_hits: AtomicU64,
    /// Point lookups that read a data block from its file.
    pub block_cache_misses: AtomicU64,
    /// Bytes held by the block cache.
    pub block_cache_bytes: AtomicU64,
    /// Point lookups a table's Bloom filter answered without reading a block.
    pub bloom_negatives: AtomicU64,
    /// Bytes compaction must still rewrite to bring every level within its target.
    pub pending_compaction_bytes: AtomicU64,
    /// Times writes had to wait for a memtable flush (write stalls).
    pub write_stalls: AtomicU64,
    /// Microseconds writes spent stalled, over the stalls that ended.
    pub write_stall_us: AtomicU64,
    /// Times a WAL batch was held back because level 0 was in the slowdown band.
    pub write_slowdowns: AtomicU64,
    /// Microseconds WAL batches were held back by the write slowdown, over holds that ended.
    pub write_slowdown_us: AtomicU64,
    /// SSTable blocks read through the ring for lookups, off the loop.
    pub block_reads: AtomicU64,
    /// SSTable blocks read with a blocking `pread` on the loop after a cache miss (a
    /// lookup whose fetched block was evicted before it ran, a walk op inside a batch).
    pub block_reads_blocking: AtomicU64,
    /// Highest sequence number assigned.
    pub last_seq: AtomicU64,
    /// Highest sequence number durable.
    pub durable_seq: AtomicU64,
    /// WAL records replayed at start.
    pub recovery_replayed_records: AtomicU64,
    /// Torn WAL tail bytes truncated at start.
    pub recovery_truncated_bytes: AtomicU64,
    /// Unix time (seconds) since which every write older is in an SSTable: the last
    /// installed flush, or a save that found nothing to flush, or the store's opening.
    pub last_save_unix_s: AtomicU64,
    /// Writes (sequence numbers) not yet in an SSTable.
    pub changes_since_save: AtomicU64,
    /// 1 while a `BGSAVE`'s flush runs.
    pub bgsave_in_progress: AtomicU64,
    /// Why the shard refuses writes, once a WAL or flush I/O failed.
    pub poisoned: Mutex<Option<String>>,
}

/// One counter per [`CommandKind`], indexed by its `repr`. (A newtype because the
/// standard library derives `Default` only for arrays of up to 32 elements.)
pub struct CommandCounters([AtomicU64; CommandKind::ALL.len()]);

impl Default for CommandCounters {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl std::ops::Index<usize> for CommandCounters {
    type Output = AtomicU64;

    fn index(&self, index: usize) -> &AtomicU64 {
        &self.0[index]
    }
}

/// Latency distributions of one shard ([HdrHistogram], two significant digits).
///
/// [HdrHistogram]: https://hdrhistogram.github.io/HdrHistogram/
pub struct Latencies {
    /// Execution time of each [`CommandKind`] in microseconds, by `repr`; created at the
    /// first call.
    pub command_us: Vec<Option<Histogram<u64>>>,
    /// From submitting a WAL batch's write to its fdatasync's completion, in microseconds.
    pub wal_sync_us: Histogram<u64>,
    /// Bytes per group-commit batch.
    pub wal_batch_bytes: Histogram<u64>,
}

/// Significant digits of every latency histogram: 1% resolution.
const HISTOGRAM_DIGITS: u8 = 2;

/// A histogram for values from 1 up to `max`, saturating above.
pub fn histogram(max: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max, HISTOGRAM_DIGITS).expect("valid histogram bounds")
}

/// Longest latency a histogram tells apart: one minute, in microseconds.
pub const LATENCY_US_MAX: u64 = 60_000_000;

impl Default for Latencies {
    fn default() -> Self {
        Self {
            command_us: (0..CommandKind::ALL.len()).map(|_| None).collect(),
            wal_sync_us: histogram(LATENCY_US_MAX),
            wal_batch_bytes: histogram(1 << 40),
        }
    }
}

impl Latencies {
    /// Records one execution of `kind` that took `us` microseconds.
    pub fn record_command(&mut self, kind: CommandKind, us: u64) {
        self.command_us[kind as usize]
            .get_or_insert_with(|| histogram(LATENCY_US_MAX))
            .saturating_record(us.max(1));
    }
}

impl ShardMetrics {
    /// Locks the shard's latency histograms (a poisoned lock still holds valid counts).
    pub fn latencies(&self) -> std::sync::MutexGuard<'_, Latencies> {
        self.latencies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets a gauge.
    pub fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }
}

/// Sums one counter over all shards.
pub fn sum(shards: &[ShardMetrics], field: impl Fn(&ShardMetrics) -> &AtomicU64) -> u64 {
    shards
        .iter()
        .map(|m| field(m).load(Ordering::Relaxed))
        .sum()
}

impl super::Shard {
    /// Publishes the store's counters for `INFO`. Runs every loop iteration, so it reads
    /// only cheap fields; the per-version ones are published when the version changed.
    pub(super) fn publish_store_stats(&mut self) {
        let metrics = &self.shared.metrics[self.id.0];
        ShardMetrics::set(&metrics.memtable_bytes, self.store.memtable_bytes() as u64);
        ShardMetrics::set(&metrics.ts_open_samples, self.series.open_samples() as u64);
        ShardMetrics::set(&metrics.last_seq, self.store.last_seq().0);
        ShardMetrics::set(&metrics.durable_seq, self.store.durable_seq().0);
        let cache = self.store.block_cache_stats();
        ShardMetrics::set(&metrics.block_cache_hits, cache.hits);
        ShardMetrics::set(&metrics.block_cache_misses, cache.misses);
        ShardMetrics::set(&metrics.block_cache_bytes, cache.bytes);
        ShardMetrics::set(&metrics.bloom_negatives, cache.bloom_negatives);
        ShardMetrics::set(&metrics.block_reads_blocking, cache.blocking_reads);
        let (stalls, stall_us) = self.store.write_stalls();
        ShardMetrics::set(&metrics.write_stalls, stalls);
        ShardMetrics::set(&metrics.write_stall_us, stall_us);
        let (slowdowns, slowdown_us) = self.committer.write_slowdowns();
        ShardMetrics::set(&metrics.write_slowdowns, slowdowns);
        ShardMetrics::set(&metrics.write_slowdown_us, slowdown_us);
        let version = std::sync::Arc::downgrade(self.store.version());
        if version.ptr_eq(&self.published_version) {
            return;
        }
        self.published_version = version;
        let stats = self.store.stats();
        ShardMetrics::set(&metrics.sstables, stats.sstables as u64);
        ShardMetrics::set(&metrics.l0_sstables, stats.level_tables[0] as u64);
        for (level, (&tables, &bytes)) in stats
            .level_tables
            .iter()
            .zip(&stats.level_bytes)
            .enumerate()
        {
            ShardMetrics::set(&metrics.level_sstables[level], tables as u64);
            ShardMetrics::set(&metrics.level_bytes[level], bytes);
        }
        ShardMetrics::set(&metrics.sstable_bytes, stats.sstable_bytes);
        ShardMetrics::set(
            &metrics.pending_compaction_bytes,
            stats.pending_compaction_bytes,
        );
        ShardMetrics::set(&metrics.compactions, stats.compactions);
        ShardMetrics::set(&metrics.compaction_read_bytes, stats.compaction.read_bytes);
        ShardMetrics::set(
            &metrics.compaction_written_bytes,
            stats.compaction.written_bytes,
        );
        ShardMetrics::set(
            &metrics.compaction_failed,
            u64::from(stats.compaction_error.is_some()),
        );
    }
}
