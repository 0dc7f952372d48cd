//! Every limit and fixed interval of the load generator, with its unit in its name.

/// Bytes read from a socket per `read(2)`; also the initial reply buffer size.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Longest bulk string reply accepted (Redis's own `proto-max-bulk-len` default).
pub const BULK_LEN_MAX_BYTES: usize = 512 * 1024 * 1024;

/// Longest simple string, error or integer line accepted, CRLF included.
pub const LINE_LEN_MAX_BYTES: usize = 64 * 1024;

/// Most elements accepted in one array reply.
pub const ARRAY_LEN_MAX: usize = 1 << 20;

/// Deepest nesting of array replies accepted.
pub const ARRAY_DEPTH_MAX: usize = 16;

/// Largest value size a SET may carry.
pub const VALUE_SIZE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Largest `--pipeline` depth.
pub const PIPELINE_MAX: usize = 4096;

/// Most readiness events handled per `epoll_wait`.
pub const EPOLL_EVENTS_MAX: usize = 256;

/// Length of one progress / interval-log interval.
pub const INTERVAL_NS: u64 = 1_000_000_000;

/// Intervals shorter than this (the drain at the end of a run) get no progress line.
pub const PROGRESS_INTERVAL_MIN_NS: u64 = 100_000_000;

/// Highest latency a histogram can hold (one hour); longer values are recorded as this.
pub const HISTOGRAM_MAX_NS: u64 = 3_600_000_000_000;

/// Significant decimal digits the histograms keep.
pub const HISTOGRAM_SIGFIG: u8 = 3;

/// After the last request is issued, how long outstanding replies are awaited before they
/// are counted as lost.
pub const DRAIN_TIMEOUT_NS: u64 = 10_000_000_000;

/// A connection with requests outstanding and no reply for this long fails the run.
pub const REPLY_TIMEOUT_NS: u64 = 30_000_000_000;

/// A send deadline closer than this is not slept for: the loop polls instead. Kept tiny:
/// measured on a 2-core VM, polling for the last 20 µs before a deadline did not make sends
/// measurably more punctual (wake-up latency dominates) but cost CPU.
pub const SPIN_THRESHOLD_NS: u64 = 2_000;

/// TCP connect timeout.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// Keys are the prefix followed by the key index, zero-padded to this many digits
/// (as redis-benchmark's `__rand_int__`), so every key of a run has the same length.
pub const KEY_DIGITS: usize = 12;

/// A client thread busy more than this share of the measured window is near saturation.
pub const BUSY_WARN_PCT: f64 = 90.0;

/// Keyspace sizes up to this get an exact zeta sum; above it the tail is approximated.
pub const ZETA_EXACT_ITEMS_MAX: u64 = 1_000_000;

const _: () = assert!(LINE_LEN_MAX_BYTES <= READ_CHUNK_BYTES);
const _: () = assert!(SPIN_THRESHOLD_NS < INTERVAL_NS);

/// Most steps a `--rate-ramp` may have.
pub const RAMP_STEPS_MAX: usize = 1000;

/// A ramp step achieving less than this share of its target rate is the knee.
pub const KNEE_ACHIEVED_MIN_SHARE: f64 = 0.95;

/// A ramp step whose corrected p99 exceeds this multiple of the first step's is the knee.
pub const KNEE_P99_GROWTH_MAX: f64 = 10.0;

/// YCSB's default record: 10 fields of 100 bytes.
pub const YCSB_VALUE_BYTES: usize = 1000;

/// Longest YCSB scan (workload E's `maxscanlength`).
pub const YCSB_SCAN_LEN_MAX: u32 = 100;

/// Pipeline depth of the `--load` phase when `--pipeline` is shallower.
pub const LOAD_PIPELINE_MIN: usize = 16;

/// After SIGINT, how long a profiler may take to write its output and exit before it is
/// killed.
pub const PROFILER_EXIT_TIMEOUT_MS: u64 = 30_000;

/// A profiler that exits this soon after its start is reported as having failed to start.
pub const PROFILER_START_CHECK_MS: u64 = 300;

/// Most `--command` templates one run may send (each has its own report row).
pub const TEMPLATES_MAX: usize = 8;
