//! Every limit and option of the server in one place, with its unit in its name.
//!
//! Defaults are chosen for a small host; each can be changed by a `tskv-server` flag.

use std::net::IpAddr;
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
    /// Target size of one SSTable data block before compression-free encoding.
    pub sstable_block_bytes: usize,
    /// Bloom filter bits per key (10 gives about 1% false positives).
    pub bloom_bits_per_key: usize,
    /// When and how SSTables are merged.
    pub compaction: CompactionOptions,
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
/// Default for [`StoreOptions::wal_segment_bytes`]: 64 MiB.
pub const WAL_SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            memtable_bytes: MEMTABLE_BYTES_DEFAULT,
            wal_segment_bytes: WAL_SEGMENT_BYTES_DEFAULT,
            sstable_block_bytes: 4096,
            bloom_bits_per_key: 10,
            compaction: CompactionOptions::default(),
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
}

/// Default for [`ServerConfig::client_output_bytes_max`]: 16 MiB.
pub const CLIENT_OUTPUT_BYTES_MAX_DEFAULT: usize = 16 << 20;
/// Default for [`ServerConfig::shard_queue_len`]: 4096 messages.
pub const SHARD_QUEUE_LEN_DEFAULT: usize = 4096;
/// Default for [`ServerConfig::conn_reads_per_iteration_max`]: 8 reads (of at least
/// 16 KiB each), enough to take a large pipeline batch in one turn without starving others.
pub const CONN_READS_PER_ITERATION_MAX_DEFAULT: usize = 8;

// A reply to a maximal request must fit under the output cap for backpressure to make progress.
const _: () = assert!(CLIENT_OUTPUT_BYTES_MAX_DEFAULT >= INLINE_BYTES_MAX_DEFAULT);
// The memtable must hold at least one maximal value.
const _: () = assert!(MEMTABLE_BYTES_DEFAULT >= 2 * (1 << 20));
