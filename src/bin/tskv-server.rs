//! `tskv-server`: starts the thread-per-core RESP server. See `--help` and README.md.

use std::net::{IpAddr, ToSocketAddrs};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use tskv::config::{self, AccessConfig, FsyncMode, ProtocolLimits, ServerConfig, StoreOptions};

/// mimalloc instead of glibc malloc: the data path allocates many small keys and values per
/// request, and frees whole memtables at once after a flush, where glibc's consolidation
/// showed up in profiles. Left out in sanitizer builds (`--cfg tskv_sanitize`, set by
/// `scripts/sanitize.sh`): AddressSanitizer checks heap accesses only in memory from the
/// malloc it intercepts, and mimalloc takes its memory straight from `mmap`.
#[cfg(not(tskv_sanitize))]
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
///
/// Sizes take a unit: k, m, g (powers of 1000) or kb/KiB, mb/MiB, gb/GiB (powers of 1024),
/// as in redis.conf; `64MiB` is 67108864 bytes. An out-of-range value is refused with the
/// valid range.
#[derive(Debug, Parser)]
#[command(name = "tskv-server", version, about)]
struct Args {
    /// Address to listen on: an IP address or a host name (resolved once at start-up; its
    /// first IPv4 address, else its first address).
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_bind)]
    bind: IpAddr,
    /// TCP port (0 picks a free port; the ready line says which). A port another process
    /// listens on is refused ("address already in use").
    #[arg(long, default_value_t = 6380)]
    port: u16,
    /// Data directory (one sub-directory per shard).
    #[arg(long, default_value = "./tskv-data")]
    data_dir: PathBuf,
    /// Number of shard threads, each pinned to a core, 1 to 1024 [default: the count the
    /// data directory was created with, else the available cores].
    #[arg(long, value_parser = count_in::<usize>(config::SHARDS_RANGE))]
    shards: Option<usize>,
    /// When writes are acknowledged relative to fdatasync.
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    fsync: Fsync,
    /// fdatasync period for --fsync periodic, in milliseconds (1 to 3600000).
    #[arg(long, default_value_t = 1000, value_parser = count_in::<u64>(config::FSYNC_PERIOD_MS_RANGE))]
    fsync_period_ms: u64,
    /// Memtable size per shard at which it is flushed to an SSTable (64KiB to 64GiB).
    #[arg(long, default_value_t = config::MEMTABLE_BYTES_DEFAULT, value_parser = bytes_in::<usize>(config::MEMTABLE_BYTES_RANGE))]
    memtable_bytes: usize,
    /// SSTable data blocks each shard caches for point lookups, in bytes (0: none).
    #[arg(long, default_value_t = config::BLOCK_CACHE_BYTES_DEFAULT, value_parser = bytes_in::<u64>(config::BLOCK_CACHE_BYTES_RANGE))]
    block_cache_bytes: u64,
    /// WAL segment size, preallocated (64KiB to 64GiB).
    #[arg(long, default_value_t = config::WAL_SEGMENT_BYTES_DEFAULT, value_parser = bytes_in::<u64>(config::WAL_SEGMENT_BYTES_RANGE))]
    wal_segment_bytes: u64,
    /// Largest bulk string in a request (1 byte to 4GiB).
    #[arg(long, default_value_t = config::BULK_BYTES_MAX_DEFAULT, value_parser = bytes_in::<usize>(config::BULK_BYTES_MAX_RANGE))]
    max_bulk_bytes: usize,
    /// Largest number of elements in a request array (1 to 2147483647).
    #[arg(long, default_value_t = config::ARRAY_LEN_MAX_DEFAULT, value_parser = count_in::<usize>(config::ARRAY_LEN_MAX_RANGE))]
    max_array_len: usize,
    /// Longest inline command line (1 byte to 1GiB).
    #[arg(long, default_value_t = config::INLINE_BYTES_MAX_DEFAULT, value_parser = bytes_in::<usize>(config::INLINE_BYTES_MAX_RANGE))]
    max_inline_bytes: usize,
    /// Unsent reply bytes per connection above which it is no longer read (1 byte to 64GiB).
    #[arg(long, default_value_t = config::CLIENT_OUTPUT_BYTES_MAX_DEFAULT, value_parser = bytes_in::<usize>(config::CLIENT_OUTPUT_BYTES_MAX_RANGE))]
    client_output_bytes_max: usize,
    /// Client connections per shard (1 to 1000000).
    #[arg(long, default_value_t = 10_000, value_parser = count_in::<usize>(config::CLIENTS_PER_SHARD_MAX_RANGE))]
    max_clients_per_shard: usize,
    /// Capacity of each cross-shard queue, in messages (1 to 1048576).
    #[arg(long, default_value_t = config::SHARD_QUEUE_LEN_DEFAULT, value_parser = count_in::<usize>(config::SHARD_QUEUE_LEN_RANGE))]
    shard_queue_len: usize,
    /// Socket reads per connection per loop iteration before other connections get a turn
    /// (1 to 1024).
    #[arg(long, default_value_t = config::CONN_READS_PER_ITERATION_MAX_DEFAULT, value_parser = count_in::<usize>(config::CONN_READS_PER_ITERATION_MAX_RANGE))]
    conn_reads_per_iteration_max: usize,
    /// Core the compaction thread is pinned to [default: the last core].
    #[arg(long)]
    compaction_core: Option<usize>,
    /// Password every client must give with AUTH (or HELLO ... AUTH default PASSWORD)
    /// before any other command.
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,
    /// With `yes`, refuse to listen on an address other than loopback without
    /// --requirepass.
    #[arg(long, value_name = "yes|no", default_value = "yes", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    protected_mode: bool,
    /// Client connections across all shards (1 to 1000000).
    #[arg(long, default_value_t = config::CLIENTS_MAX_DEFAULT, value_parser = count_in::<usize>(config::CLIENTS_MAX_RANGE))]
    maxclients: usize,
    /// Close a client after this many seconds without a request; 0 never does
    /// (0 to 31536000).
    #[arg(long, value_name = "SECONDS", default_value_t = 0, value_parser = count_in::<u64>(config::IDLE_TIMEOUT_SECS_RANGE))]
    timeout: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9121) [default: off].
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Log commands that run at least this long in SLOWLOG; negative logs none, 0 all.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = config::SLOWLOG_LOG_SLOWER_THAN_US_DEFAULT, allow_negative_numbers = true)]
    slowlog_log_slower_than: i64,
    /// Slow commands kept per shard (0 to 100000).
    #[arg(long, default_value_t = config::SLOWLOG_MAX_LEN_DEFAULT, value_parser = count_in::<usize>(config::SLOWLOG_MAX_LEN_RANGE))]
    slowlog_max_len: usize,
}

/// Parses `yes` or `no`, as Redis's boolean options.
fn parse_yes_no(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("{text:?} is neither yes nor no")),
    }
}

/// A clap value parser for a plain number in `range`.
fn count_in<T: TryFrom<u64>>(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |text| {
        let n = text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{text:?} is not a whole number"))?;
        let n = config::check_range(n, &range, |n| n.to_string())?;
        T::try_from(n).map_err(|_| format!("{n} does not fit this machine"))
    }
}

/// A clap value parser for a size with an optional unit ([`config::parse_size_bytes`]) in
/// `range`.
fn bytes_in<T: TryFrom<u64>>(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |text| {
        let n = config::parse_size_bytes(text)?;
        let n = config::check_range(n, &range, config::show_bytes)?;
        T::try_from(n).map_err(|_| format!("{n} does not fit this machine"))
    }
}

/// Parses `--bind`: an IP address as it is, or a host name resolved now, preferring its
/// first IPv4 address (the default bind is IPv4 loopback, and `localhost` often lists
/// `::1` first).
fn parse_bind(text: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip);
    }
    let addrs: Vec<IpAddr> = (text, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host name {text:?}: {e}"))?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|ip| ip.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("host name {text:?} has no address"))
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
    let shards = match args.shards {
        Some(shards) => shards,
        // A data directory keeps the count it was created with (keys are hashed to shards).
        None => match tskv::server::recorded_shard_count(&args.data_dir) {
            Ok(Some(recorded)) => recorded,
            Ok(None) => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(*config::SHARDS_RANGE.end() as usize),
            Err(e) => {
                eprintln!("tskv-server: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
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
        shard_queue_len: args.shard_queue_len,
        conn_reads_per_iteration_max: args.conn_reads_per_iteration_max,
        store: StoreOptions {
            memtable_bytes: args.memtable_bytes,
            block_cache_bytes: args.block_cache_bytes,
            wal_segment_bytes: args.wal_segment_bytes,
            compaction_filter: Some(tskv::timeseries::marks::compaction_filter),
            ..StoreOptions::default()
        },
        compaction_core: args.compaction_core,
        access: AccessConfig {
            requirepass: args.requirepass,
            protected_mode: args.protected_mode,
            clients_max: args.maxclients,
            idle_timeout_secs: args.timeout,
        },
        metrics_addr: args.metrics_addr,
        slowlog: config::SlowlogConfig {
            log_slower_than_us: args.slowlog_log_slower_than,
            max_len: args.slowlog_max_len,
        },
    };
    match tskv::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tskv-server: {e}");
            ExitCode::FAILURE
        }
    }
}
