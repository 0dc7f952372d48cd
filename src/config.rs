//! Every limit and option of the server in one place, with its unit in its name.
//!
//! Defaults are chosen for a small host; each can be changed by a `tskv-server` flag. Every
//! flag has a valid range here (`*_RANGE`), which `tskv-server` enforces when it parses its
//! command line, naming the flag and the range in its error.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// When a write is acknowledged relative to the fdatasync that makes it durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncMode {
    /// Acknowledge only after the fdatasync covering the write completed (group commit).
    Always,
    /// Acknowledge after the WAL write; fdatasync every `fsync_period_ms`.
    Periodic,
    /// Acknowledge after the WAL write; never fdatasync (the OS decides).
    Never,
}

/// Limits on what one client may send or leave unread.
#[derive(Clone, Copy, Debug)]
pub struct ProtocolLimits {
    /// Largest bulk string a request may carry (Redis: `proto-max-bulk-len`, 512 MiB).
    pub bulk_bytes_max: usize,
    /// Largest number of elements in a request array (`*<n>`).
    pub array_len_max: usize,
    /// Longest inline command line, without its line ending (Redis: 64 KiB).
    pub inline_bytes_max: usize,
}

/// Default for [`ProtocolLimits::bulk_bytes_max`]: 64 MiB.
pub const BULK_BYTES_MAX_DEFAULT: usize = 64 << 20;
/// Default for [`ProtocolLimits::array_len_max`]: 1,048,576 elements.
pub const ARRAY_LEN_MAX_DEFAULT: usize = 1 << 20;
/// Default for [`ProtocolLimits::inline_bytes_max`]: 64 KiB, as Redis.
pub const INLINE_BYTES_MAX_DEFAULT: usize = 64 << 10;

impl Default for ProtocolLimits {
    fn default() -> Self {
        Self {
            bulk_bytes_max: BULK_BYTES_MAX_DEFAULT,
            array_len_max: ARRAY_LEN_MAX_DEFAULT,
            inline_bytes_max: INLINE_BYTES_MAX_DEFAULT,
        }
    }
}

/// Options of the per-shard storage engine.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Size at which the active memtable is frozen and flushed to an SSTable.
    pub memtable_bytes: usize,
    /// Size each WAL segment is preallocated to; a segment is closed when the next batch
    /// would not fit.
    pub wal_segment_bytes: u64,
    /// Whether a new WAL segment is written with zeros after it is preallocated, so that
    /// small writes each followed by an fdatasync do not also journal an extent conversion
    /// on ext4 and XFS ([`crate::wal::writer::PreparedSegment`]). It doubles the bytes the
    /// WAL writes (a 64 MiB segment of zeros on a background thread, then the records), so
    /// it pays only when writes are synced one by one or in small groups; the embedded
    /// [`crate::engine::Engine`] turns it off in [`crate::engine::Durability::Buffered`].
    pub wal_zero_fill: bool,
    /// Target size of one SSTable data block before compression-free encoding.
    pub sstable_block_bytes: usize,
    /// Bloom filter bits per key (10 gives about 1% false positives).
    pub bloom_bits_per_key: usize,
    /// When and how SSTables are merged.
    pub compaction: CompactionOptions,
    /// Bytes of SSTable data blocks each shard keeps in memory for point lookups
    /// ([`crate::block_cache`]); 0 disables the cache.
    pub block_cache_bytes: u64,
    /// Makes the filter each compaction passes its entries through (`None`: entries are
    /// written as merged). The server installs the time-series deletion marks' filter
    /// (`crate::timeseries::marks::compaction_filter`).
    pub compaction_filter: Option<crate::compaction::filter::CompactionFilterFactory>,
}

/// Options of the leveled compaction policy (see [`crate::compaction::picker`]).
#[derive(Clone, Debug)]
pub struct CompactionOptions {
    /// Level-0 tables (flushed memtables) at which they are merged into level 1.
    pub l0_trigger_tables: usize,
    /// Target size of level 1; deeper levels are `level_size_ratio` times the one above.
    pub level1_target_bytes: u64,
    /// Size ratio between adjacent levels from level 1 down.
    pub level_size_ratio: u64,
    /// Size at which a compaction cuts an output table.
    pub target_table_bytes: usize,
}

/// Writes stop (a write stall) while level 0 holds this many times
/// [`CompactionOptions::l0_trigger_tables`] tables, until compaction catches up: RocksDB's
/// default ratio (`level0_stop_writes_trigger` 36 for a trigger of 4). Without it, a write
/// load faster than compaction would grow level 0, and the cost of every read, forever.
pub const L0_STOP_TABLES_PER_TRIGGER: usize = 9;
/// Writes slow down (a write slowdown) while level 0 holds at least this many times
/// [`CompactionOptions::l0_trigger_tables`] tables, before they stop: RocksDB's default
/// ratio (`level0_slowdown_writes_trigger` 20 for a trigger of 4). In the band from here to
/// the stop, each WAL batch makes the next one wait ([`write_slowdown_delay`]), so a write
/// load faster than compaction is slowed gradually instead of hitting the wall at once.
pub const L0_SLOWDOWN_TABLES_PER_TRIGGER: usize = 5;
const _: () = assert!(L0_SLOWDOWN_TABLES_PER_TRIGGER < L0_STOP_TABLES_PER_TRIGGER);
/// In the slowdown band, the least wait after a WAL batch per level-0 table at or above the
/// slowdown threshold: 1 ms at the threshold, 16 ms at the stop of the default options.
pub const WRITE_SLOWDOWN_DELAY_US_PER_TABLE: u64 = 1_000;
/// In the slowdown band, the write rate allowed at the slowdown threshold, divided by the
/// tables at or above it: RocksDB's default `delayed_write_rate`, 16 MiB/s.
pub const WRITE_SLOWDOWN_RATE_BYTES_PER_S: u64 = 16 << 20;

/// How long the next WAL batch waits after one of `batch_bytes` was submitted while level 0
/// held `depth_tables` tables at or above the slowdown threshold (0: not in the band, no
/// wait). Both the floor ([`WRITE_SLOWDOWN_DELAY_US_PER_TABLE`]) and the byte cost at
/// [`WRITE_SLOWDOWN_RATE_BYTES_PER_S`] grow linearly with the depth, so the deeper level 0
/// is, the slower writes go, whether they come as many small batches or few large ones.
pub fn write_slowdown_delay(depth_tables: usize, batch_bytes: usize) -> std::time::Duration {
    let depth = depth_tables as u64;
    let rate_us = (batch_bytes as u64).saturating_mul(1_000_000) / WRITE_SLOWDOWN_RATE_BYTES_PER_S;
    let us = WRITE_SLOWDOWN_DELAY_US_PER_TABLE
        .max(rate_us)
        .saturating_mul(depth);
    std::time::Duration::from_micros(us)
}
/// Default for [`CompactionOptions::l0_trigger_tables`]: 4 tables, as LevelDB and RocksDB.
pub const L0_TRIGGER_TABLES_DEFAULT: usize = 4;
/// Default for [`CompactionOptions::level1_target_bytes`]: 256 MiB, as RocksDB's
/// `max_bytes_for_level_base`.
pub const LEVEL1_TARGET_BYTES_DEFAULT: u64 = 256 << 20;
/// Default for [`CompactionOptions::level_size_ratio`]: 10, as LevelDB and RocksDB.
pub const LEVEL_SIZE_RATIO_DEFAULT: u64 = 10;
/// Default for [`CompactionOptions::target_table_bytes`]: 32 MiB (one memtable's worth).
pub const TARGET_TABLE_BYTES_DEFAULT: usize = 32 << 20;

impl Default for CompactionOptions {
    fn default() -> Self {
        Self {
            l0_trigger_tables: L0_TRIGGER_TABLES_DEFAULT,
            level1_target_bytes: LEVEL1_TARGET_BYTES_DEFAULT,
            level_size_ratio: LEVEL_SIZE_RATIO_DEFAULT,
            target_table_bytes: TARGET_TABLE_BYTES_DEFAULT,
        }
    }
}

/// Default for [`StoreOptions::memtable_bytes`]: 32 MiB.
pub const MEMTABLE_BYTES_DEFAULT: usize = 32 << 20;
/// Default for [`StoreOptions::block_cache_bytes`]: 64 MiB per shard.
pub const BLOCK_CACHE_BYTES_DEFAULT: u64 = 64 << 20;
/// Valid range of `--block-cache-bytes`.
pub const BLOCK_CACHE_BYTES_RANGE: RangeInclusive<u64> = 0..=(1 << 40);
/// Default for [`StoreOptions::wal_segment_bytes`]: 64 MiB.
pub const WAL_SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            memtable_bytes: MEMTABLE_BYTES_DEFAULT,
            wal_segment_bytes: WAL_SEGMENT_BYTES_DEFAULT,
            wal_zero_fill: true,
            sstable_block_bytes: 4096,
            bloom_bits_per_key: 10,
            compaction: CompactionOptions::default(),
            block_cache_bytes: BLOCK_CACHE_BYTES_DEFAULT,
            compaction_filter: None,
        }
    }
}

/// Everything a running server needs to know, built from the command line.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: IpAddr,
    /// TCP port; 0 lets the kernel pick a free one.
    pub port: u16,
    /// Directory holding one sub-directory per shard.
    pub data_dir: PathBuf,
    /// Number of shard threads (each pinned to a core when possible).
    pub shards: usize,
    /// When writes are acknowledged.
    pub fsync: FsyncMode,
    /// Period of the background fdatasync in [`FsyncMode::Periodic`].
    pub fsync_period_ms: u64,
    /// Request size limits.
    pub limits: ProtocolLimits,
    /// Unsent reply bytes above which a connection is no longer read (backpressure).
    pub client_output_bytes_max: usize,
    /// Maximum number of client connections per shard; more are accepted and closed with an error.
    pub clients_per_shard_max: usize,
    /// Capacity of each cross-shard queue, in messages; also the cap on requests one shard
    /// has in flight to another.
    pub shard_queue_len: usize,
    /// Socket reads per connection per loop iteration, so one busy client cannot starve
    /// the others; a connection with input left is serviced again on the next iteration.
    pub conn_reads_per_iteration_max: usize,
    /// Storage engine options.
    pub store: StoreOptions,
    /// The core the compaction thread is pinned to; `None`: the last core.
    pub compaction_core: Option<usize>,
    /// Access control: the password clients must give (`AUTH`) before any other command.
    pub access: AccessConfig,
    /// Where the Prometheus metrics endpoint listens; `None`: no endpoint.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Which commands `SLOWLOG` keeps.
    pub slowlog: SlowlogConfig,
}

/// Which commands the slow log keeps, as Redis's `slowlog-log-slower-than` and
/// `slowlog-max-len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowlogConfig {
    /// Commands taking at least this many microseconds are logged; negative: none, 0: all.
    pub log_slower_than_us: i64,
    /// Entries kept per shard; older ones are dropped.
    pub max_len: usize,
}

impl Default for SlowlogConfig {
    fn default() -> Self {
        Self {
            log_slower_than_us: SLOWLOG_LOG_SLOWER_THAN_US_DEFAULT,
            max_len: SLOWLOG_MAX_LEN_DEFAULT,
        }
    }
}

/// Default for [`SlowlogConfig::log_slower_than_us`]: 10 ms, as Redis.
pub const SLOWLOG_LOG_SLOWER_THAN_US_DEFAULT: i64 = 10_000;
/// Default for [`SlowlogConfig::max_len`]: 128, as Redis.
pub const SLOWLOG_MAX_LEN_DEFAULT: usize = 128;

/// Valid [`SlowlogConfig::max_len`]: 0 to 100,000 entries per shard (each up to about
/// 4 KiB of arguments).
pub const SLOWLOG_MAX_LEN_RANGE: RangeInclusive<u64> = 0..=100_000;

/// Who may connect and for how long, as Redis's `requirepass`, `protected-mode`,
/// `maxclients` and `timeout`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessConfig {
    /// The password of the `default` user; `None`: every connection is authenticated.
    pub requirepass: Option<String>,
    /// Refuse to listen on a non-loopback address without `requirepass`.
    pub protected_mode: bool,
    /// Client connections across all shards; more are accepted and closed with
    /// `-ERR max number of clients reached`.
    pub clients_max: usize,
    /// Seconds a client may stay idle (no request) before it is closed; 0: forever.
    pub idle_timeout_secs: u64,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            requirepass: None,
            protected_mode: true,
            clients_max: CLIENTS_MAX_DEFAULT,
            idle_timeout_secs: 0,
        }
    }
}

/// Default for [`AccessConfig::clients_max`]: 10,000, as Redis's `maxclients`.
pub const CLIENTS_MAX_DEFAULT: usize = 10_000;
/// Valid [`AccessConfig::clients_max`]: 1 to 1,000,000 (each is a file descriptor).
pub const CLIENTS_MAX_RANGE: RangeInclusive<u64> = 1..=1_000_000;
/// Valid [`AccessConfig::idle_timeout_secs`]: 0 (never) to one year.
pub const IDLE_TIMEOUT_SECS_RANGE: RangeInclusive<u64> = 0..=(365 * 24 * 3600);

/// Default for [`ServerConfig::client_output_bytes_max`]: 16 MiB.
pub const CLIENT_OUTPUT_BYTES_MAX_DEFAULT: usize = 16 << 20;
/// Default for [`ServerConfig::shard_queue_len`]: 4096 messages.
pub const SHARD_QUEUE_LEN_DEFAULT: usize = 4096;
/// Default for [`ServerConfig::conn_reads_per_iteration_max`]: 8 reads (of at least
/// 16 KiB each), enough to take a large pipeline batch in one turn without starving others.
pub const CONN_READS_PER_ITERATION_MAX_DEFAULT: usize = 8;

/// Most SSTable data blocks read through the ring and pinned for one waiting time-series
/// request (4 MiB at the default 4 KiB blocks): what it reads beyond them it reads with
/// blocking reads when it runs (see `shard::fetch_ts`).
pub const SERIES_PINNED_BLOCKS_MAX: usize = 1024;
/// Most rounds of ring reads one time-series request waits for before it runs anyway
/// (each round reads what the last showed missing; see `shard::fetch_ts`).
pub const SERIES_PLAN_ROUNDS_MAX: u32 = 8;

/// Bytes of matching keys up to which one shard's part of a `KEYS` reply is built at once
/// (and at most `client_output_bytes_max / shards`, so that the parts built at once fit
/// the output cap together): the common small reply takes one walk and no snapshot. A
/// shard with more streams its part ([`KEYS_BATCH_BYTES`] at a time).
pub const KEYS_WHOLE_BYTES_MAX: usize = 64 << 10;
/// Bytes of keys one pull of a streamed `KEYS` reply brings from a shard (the last key
/// kept whole): what a streamed reply holds per shard besides its snapshot.
pub const KEYS_BATCH_BYTES: usize = 256 << 10;
/// Entries a `KEYS` walk examines per turn of the shard's loop at most (a round of its
/// first walk or of its count, or one pull of a streamed reply), so that a walk over many
/// keys in memory still hands the loop back to the other clients (a pull may then bring
/// no key).
pub const KEYS_WALK_ROUND_ENTRIES_MAX: usize = 100_000;
/// `KEYS` replies under way at once, server-wide; one more waits for a slot (its
/// connection is blocked as on a full queue). Each holds, per shard that streams, a
/// snapshot: a copy of the active memtable's matching keys (at most the memtable's size)
/// and the frozen memtables and tables by reference.
pub const KEYS_REPLIES_MAX: usize = 16;

// A reply to a maximal request must fit under the output cap for backpressure to make progress.
const _: () = assert!(CLIENT_OUTPUT_BYTES_MAX_DEFAULT >= INLINE_BYTES_MAX_DEFAULT);
// The memtable must hold at least one maximal value.
const _: () = assert!(MEMTABLE_BYTES_DEFAULT >= 2 * (1 << 20));

// ---------------------------------------------------------------------------------------------
// Valid ranges of the start-up flags.

/// Valid shard counts. Below one there is no server. Above 1024 the cross-shard mesh alone
/// is out of proportion: every shard has a queue to every other, so its memory grows with
/// the square of the count (measured: 2.7 GB at 64 shards with the default queue length),
/// and the start-up check against physical memory (in `server`) refuses most such counts
/// anyway; 1024 is a ceiling no host this server targets reaches in cores.
pub const SHARDS_RANGE: RangeInclusive<u64> = 1..=1024;
/// Valid [`StoreOptions::memtable_bytes`]: 64 KiB to 64 GiB. Below 64 KiB every few hundred
/// writes would make an SSTable; the memtable lives in memory, hence the ceiling.
pub const MEMTABLE_BYTES_RANGE: RangeInclusive<u64> = (64 << 10)..=(64 << 30);
/// Valid [`StoreOptions::wal_segment_bytes`]: 64 KiB to 64 GiB. A segment is preallocated
/// and zero-filled before use, so a tiny one means a segment switch (two fsyncs and a
/// directory fsync) every few batches.
pub const WAL_SEGMENT_BYTES_RANGE: RangeInclusive<u64> = (64 << 10)..=(64 << 30);
/// Valid [`ServerConfig::fsync_period_ms`]: 1 ms to one hour. Zero would mean "sync
/// continuously", which is `--fsync always`.
pub const FSYNC_PERIOD_MS_RANGE: RangeInclusive<u64> = 1..=3_600_000;
/// Valid [`ProtocolLimits::bulk_bytes_max`]: 1 byte to 4 GiB.
pub const BULK_BYTES_MAX_RANGE: RangeInclusive<u64> = 1..=(4 << 30);
/// Valid [`ProtocolLimits::array_len_max`]: 1 to 2^31 − 1 elements (Redis's own ceiling).
pub const ARRAY_LEN_MAX_RANGE: RangeInclusive<u64> = 1..=(i32::MAX as u64);
/// Valid [`ProtocolLimits::inline_bytes_max`]: 1 byte to 1 GiB.
pub const INLINE_BYTES_MAX_RANGE: RangeInclusive<u64> = 1..=(1 << 30);
/// Valid [`ServerConfig::client_output_bytes_max`]: 1 byte to 64 GiB.
pub const CLIENT_OUTPUT_BYTES_MAX_RANGE: RangeInclusive<u64> = 1..=(64 << 30);
/// Valid [`ServerConfig::clients_per_shard_max`]: 1 to 1,000,000 (each is a file descriptor).
pub const CLIENTS_PER_SHARD_MAX_RANGE: RangeInclusive<u64> = 1..=1_000_000;
/// Valid [`ServerConfig::shard_queue_len`]: 1 to 1,048,576 messages.
pub const SHARD_QUEUE_LEN_RANGE: RangeInclusive<u64> = 1..=(1 << 20);
/// Valid [`ServerConfig::conn_reads_per_iteration_max`]: 1 to 1024 reads.
pub const CONN_READS_PER_ITERATION_MAX_RANGE: RangeInclusive<u64> = 1..=1024;

// Every default lies in its flag's range.
const _: () = assert!(
    MEMTABLE_BYTES_DEFAULT as u64 >= *MEMTABLE_BYTES_RANGE.start()
        && MEMTABLE_BYTES_DEFAULT as u64 <= *MEMTABLE_BYTES_RANGE.end()
);
const _: () = assert!(
    WAL_SEGMENT_BYTES_DEFAULT >= *WAL_SEGMENT_BYTES_RANGE.start()
        && WAL_SEGMENT_BYTES_DEFAULT <= *WAL_SEGMENT_BYTES_RANGE.end()
);
const _: () = assert!(BULK_BYTES_MAX_DEFAULT as u64 <= *BULK_BYTES_MAX_RANGE.end());
const _: () = assert!(ARRAY_LEN_MAX_DEFAULT as u64 <= *ARRAY_LEN_MAX_RANGE.end());
const _: () = assert!(INLINE_BYTES_MAX_DEFAULT as u64 <= *INLINE_BYTES_MAX_RANGE.end());
const _: () =
    assert!(CLIENT_OUTPUT_BYTES_MAX_DEFAULT as u64 <= *CLIENT_OUTPUT_BYTES_MAX_RANGE.end());
const _: () = assert!(SHARD_QUEUE_LEN_DEFAULT as u64 <= *SHARD_QUEUE_LEN_RANGE.end());
const _: () = assert!(
    CONN_READS_PER_ITERATION_MAX_DEFAULT as u64 <= *CONN_READS_PER_ITERATION_MAX_RANGE.end()
);

/// Parses a size in bytes: a whole number with an optional unit suffix, case-insensitive,
/// with Redis's meanings (as in `redis.conf`) plus the IEC binary units:
///
/// | suffix | factor |
/// | --- | --- |
/// | none, `b` | 1 |
/// | `k`, `m`, `g` | 1000, 1000², 1000³ |
/// | `kb`, `mb`, `gb`, `kib`, `mib`, `gib` | 1024, 1024², 1024³ |
///
/// So `64M` is 64,000,000 bytes and `64MiB` (or `64mb`) is 67,108,864, as in Redis.
///
/// # Errors
/// A message saying what is wrong with `text` (no number, unknown unit, overflow).
pub fn parse_size_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a size: expected a whole number of bytes, optionally with a unit (4k, 64MiB, 1gb)"
        ));
    }
    let factor: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "m" => 1000 * 1000,
        "g" => 1000 * 1000 * 1000,
        "kb" | "kib" => 1 << 10,
        "mb" | "mib" => 1 << 20,
        "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?}: use k, m, g (powers of 1000) or kb/KiB, mb/MiB, gb/GiB (powers of 1024)"
            ))
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Shows a byte count for an error message: `65536 (64 KiB)`.
pub fn show_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (factor, name) in UNITS {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{bytes} ({} {name})", bytes / factor);
        }
    }
    bytes.to_string()
}

/// Checks that `value` lies in `range`; the error states the range, each end shown by `show`.
///
/// # Errors
/// `"must be between A and B"` when it does not.
pub fn check_range(
    value: u64,
    range: &RangeInclusive<u64>,
    show: fn(u64) -> String,
) -> Result<u64, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{} is out of range: must be between {} and {}",
            show(value),
            show(*range.start()),
            show(*range.end())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_redis_and_iec_units() {
        assert_eq!(parse_size_bytes("4096"), Ok(4096));
        assert_eq!(parse_size_bytes("4k"), Ok(4000));
        assert_eq!(parse_size_bytes("4kb"), Ok(4096));
        assert_eq!(parse_size_bytes("4KiB"), Ok(4096));
        assert_eq!(parse_size_bytes("64M"), Ok(64_000_000));
        assert_eq!(parse_size_bytes("32MiB"), Ok(32 << 20));
        assert_eq!(parse_size_bytes("32mb"), Ok(32 << 20));
        assert_eq!(parse_size_bytes("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size_bytes("1g"), Ok(1_000_000_000));
        assert_eq!(parse_size_bytes("7B"), Ok(7));
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5M",
            "12 parsecs",
            "4TiB",
            "99999999999999999999",
        ] {
            assert!(parse_size_bytes(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_size_bytes("20000000000G").is_err(), "overflow");
    }

    #[test]
    fn range_errors_name_both_ends() {
        let err = check_range(0, &MEMTABLE_BYTES_RANGE, show_bytes).unwrap_err();
        assert_eq!(
            err,
            "0 is out of range: must be between 65536 (64 KiB) and 68719476736 (64 GiB)"
        );
        assert_eq!(
            check_range(65536, &MEMTABLE_BYTES_RANGE, show_bytes),
            Ok(65536)
        );
    }
}
