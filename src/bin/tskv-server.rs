//! `tskv-server`: starts the thread-per-core RESP server. See `--help` and README.md.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use tskv::config::{self, FsyncMode, ProtocolLimits, ServerConfig, StoreOptions};

/// mimalloc instead of glibc malloc: the data path allocates many small keys and values per
/// request, and frees whole memtables at once after a flush, where glibc's consolidation
/// showed up in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Fsync {
    /// Acknowledge a write only after the fdatasync covering it (group commit).
    Always,
    /// Acknowledge after the WAL write; fdatasync every --fsync-period-ms.
    Periodic,
    /// Acknowledge after the WAL write; never fdatasync.
    Never,
}

/// A crash-safe, thread-per-core time-series key-value server speaking RESP.
#[derive(Debug, Parser)]
#[command(name = "tskv-server", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// TCP port (0 picks a free port; the ready line says which).
    #[arg(long, default_value_t = 6380)]
    port: u16,
    /// Data directory (one sub-directory per shard).
    #[arg(long, default_value = "./tskv-data")]
    data_dir: PathBuf,
    /// Number of shard threads, each pinned to a core [default: available cores].
    #[arg(long)]
    shards: Option<usize>,
    /// When writes are acknowledged relative to fdatasync.
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    fsync: Fsync,
    /// fdatasync period for --fsync periodic, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    fsync_period_ms: u64,
    /// Memtable size per shard at which it is flushed to an SSTable, in bytes.
    #[arg(long, default_value_t = config::MEMTABLE_BYTES_DEFAULT)]
    memtable_bytes: usize,
    /// WAL segment size (preallocated), in bytes.
    #[arg(long, default_value_t = config::WAL_SEGMENT_BYTES_DEFAULT)]
    wal_segment_bytes: u64,
    /// Largest bulk string in a request, in bytes.
    #[arg(long, default_value_t = config::BULK_BYTES_MAX_DEFAULT)]
    max_bulk_bytes: usize,
    /// Largest number of elements in a request array.
    #[arg(long, default_value_t = config::ARRAY_LEN_MAX_DEFAULT)]
    max_array_len: usize,
    /// Longest inline command line, in bytes.
    #[arg(long, default_value_t = config::INLINE_BYTES_MAX_DEFAULT)]
    max_inline_bytes: usize,
    /// Unsent reply bytes per connection above which it is no longer read.
    #[arg(long, default_value_t = config::CLIENT_OUTPUT_BYTES_MAX_DEFAULT)]
    client_output_bytes_max: usize,
    /// Client connections per shard.
    #[arg(long, default_value_t = 10_000)]
    max_clients_per_shard: usize,
    /// Capacity of each cross-shard queue, in messages.
    #[arg(long, default_value_t = config::SHARD_QUEUE_LEN_DEFAULT)]
    shard_queue_len: usize,
    /// Socket reads per connection per loop iteration before other connections get a turn.
    #[arg(long, default_value_t = config::CONN_READS_PER_ITERATION_MAX_DEFAULT)]
    conn_reads_per_iteration_max: usize,
    /// Core the compaction thread is pinned to [default: the last core].
    #[arg(long)]
    compaction_core: Option<usize>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let shards = args
        .shards
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let config = ServerConfig {
        bind: args.bind,
        port: args.port,
        data_dir: args.data_dir,
        shards,
        fsync: match args.fsync {
            Fsync::Always => FsyncMode::Always,
            Fsync::Periodic => FsyncMode::Periodic,
            Fsync::Never => FsyncMode::Never,
        },
        fsync_period_ms: args.fsync_period_ms,
        limits: ProtocolLimits {
            bulk_bytes_max: args.max_bulk_bytes,
            array_len_max: args.max_array_len,
            inline_bytes_max: args.max_inline_bytes,
        },
        client_output_bytes_max: args.client_output_bytes_max,
        clients_per_shard_max: args.max_clients_per_shard,
        shard_queue_len: args.shard_queue_len.max(1),
        conn_reads_per_iteration_max: args.conn_reads_per_iteration_max.max(1),
        store: StoreOptions {
            memtable_bytes: args.memtable_bytes.max(4096),
            wal_segment_bytes: args.wal_segment_bytes.max(64 * 1024),
            ..StoreOptions::default()
        },
        compaction_core: args.compaction_core,
    };
    match tskv::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tskv-server: {e}");
            ExitCode::FAILURE
        }
    }
}
