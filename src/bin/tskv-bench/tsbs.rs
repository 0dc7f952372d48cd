//! The TSBS "cpu-only" use case, for the time-series presets: `--hosts` simulated hosts
//! that each report the ten `cpu` metrics every 10 s of simulated time, starting at
//! 2016-01-01T00:00:00Z (TSBS's default start).
//!
//! * Ingest: per host and simulated timestamp, one `TS.MADD` of ten `key timestamp value`
//!   triples. Each series is a clamped random walk in [0, 100]: it starts at a uniform
//!   value and moves by a normal step (σ = 1, as TSBS's cpu generator) that is additionally
//!   cut at ±[`STEP_MAX`], so a reader of the data can check the steps.
//! * Queries: `TS.RANGE key from to` over a random one-hour window of one series, and
//!   TSBS's single-groupby shape `TS.MRANGE from to FILTER measurement=cpu hostname=host_N`
//!   (every metric of one host over a random hour).
//! * Series: `cpu:host_N:METRIC`, created with `TS.CREATE key LABELS ...` carrying TSBS's
//!   host tags (hostname, region, datacenter, rack, os, arch, team, service,
//!   service_version, service_environment) plus `measurement` and `field`.
//!
//! Pure: a seeded generator produces the same commands every time.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::keydist::fnv1a_64;

/// The ten metrics of TSBS's `cpu` measurement, in its order.
pub const METRICS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

/// Series per host.
pub const METRICS_PER_HOST: u64 = METRICS.len() as u64;

/// The first simulated timestamp, ms since the Unix epoch (2016-01-01T00:00:00Z).
pub const EPOCH_MS: u64 = 1_451_606_400_000;

/// Simulated time between two readings of a host.
pub const INTERVAL_MS: u64 = 10_000;

/// Length of a query window.
pub const QUERY_WINDOW_MS: u64 = 3_600_000;

/// Smallest and largest metric value.
pub const VALUE_MIN: f64 = 0.0;
/// Largest metric value.
pub const VALUE_MAX: f64 = 100.0;

/// Largest random-walk step (3 σ of the normal step).
pub const STEP_MAX: f64 = 3.0;

const REGIONS: [(&str, &[&str]); 9] = [
    (
        "us-east-1",
        &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
    ),
    ("us-west-1", &["us-west-1a", "us-west-1b"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
];
const OSES: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHES: [&str; 2] = ["x64", "x86"];
const TEAMS: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const ENVIRONMENTS: [&str; 3] = ["production", "staging", "test"];

/// The simulated fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsbsConfig {
    /// Simulated hosts (≥ 1).
    pub hosts: u64,
    /// Queries draw their windows from the first this many hours of simulated time.
    pub span_hours: u64,
}

impl TsbsConfig {
    /// Series in the fleet: hosts × metrics.
    pub fn series_count(&self) -> u64 {
        self.hosts * METRICS_PER_HOST
    }
}

/// `host_N`, TSBS's host name.
pub fn host_name(host: u64) -> String {
    format!("host_{host}")
}

/// The key of series `series_index` (host = index / 10, metric = index % 10).
pub fn series_key(series_index: u64) -> String {
    let host = series_index / METRICS_PER_HOST;
    let metric = METRICS[(series_index % METRICS_PER_HOST) as usize];
    format!("cpu:host_{host}:{metric}")
}

/// The labels of series `series_index`: the host's tags, then measurement and field. A
/// host's tags depend on its index only, so every thread and run agree on them.
pub fn series_labels(series_index: u64) -> Vec<(&'static str, String)> {
    let host = series_index / METRICS_PER_HOST;
    let mut rng = SmallRng::seed_from_u64(fnv1a_64(host));
    let (region, datacenters) = REGIONS[rng.gen_range(0..REGIONS.len())];
    fn pick(rng: &mut SmallRng, options: &[&'static str]) -> &'static str {
        options[rng.gen_range(0..options.len())]
    }
    vec![
        ("hostname", host_name(host)),
        ("region", region.to_string()),
        ("datacenter", pick(&mut rng, datacenters).to_string()),
        ("rack", rng.gen_range(0..100u32).to_string()),
        ("os", pick(&mut rng, &OSES).to_string()),
        ("arch", pick(&mut rng, &ARCHES).to_string()),
        ("team", pick(&mut rng, &TEAMS).to_string()),
        ("service", rng.gen_range(0..20u32).to_string()),
        ("service_version", rng.gen_range(0..2u32).to_string()),
        (
            "service_environment",
            pick(&mut rng, &ENVIRONMENTS).to_string(),
        ),
        ("measurement", "cpu".to_string()),
        (
            "field",
            METRICS[(series_index % METRICS_PER_HOST) as usize].to_string(),
        ),
    ]
}

/// One `TS.MADD`: every metric of one host at one simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestBatch {
    /// The host.
    pub host: u64,
    /// Simulated time, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// One value per metric, in [`METRICS`] order.
    pub values: [f64; METRICS.len()],
}

/// One thread's ingest stream: its hosts (those with `host % threads == thread_index`),
/// round-robin within each simulated timestamp.
#[derive(Debug, Clone)]
pub struct CpuIngest {
    hosts: Vec<u64>,
    values: Vec<[f64; METRICS.len()]>,
    step_index: u64,
    next_host: usize,
    rng: SmallRng,
    step: Normal<f64>,
}

impl CpuIngest {
    /// The stream of thread `thread_index` of `threads` (`threads` ≤ hosts).
    pub fn new(config: &TsbsConfig, seed: u64, thread_index: usize, threads: usize) -> Self {
        let threads = threads.max(1) as u64;
        let hosts: Vec<u64> = (thread_index as u64..config.hosts)
            .step_by(threads as usize)
            .collect();
        assert!(
            !hosts.is_empty(),
            "client thread {thread_index} has no host"
        );
        let mut rng = SmallRng::seed_from_u64(seed);
        let values = hosts
            .iter()
            .map(|_| std::array::from_fn(|_| rng.gen_range(VALUE_MIN..=VALUE_MAX)))
            .collect();
        Self {
            hosts,
            values,
            step_index: 0,
            next_host: 0,
            rng,
            step: Normal::new(0.0, 1.0).expect("unit normal"),
        }
    }

    /// The next batch. A host's first batch carries its initial values; each later one
    /// is one random-walk step further.
    pub fn next_batch(&mut self) -> IngestBatch {
        let slot = self.next_host;
        if self.step_index > 0 {
            for value in &mut self.values[slot] {
                let step = self.step.sample(&mut self.rng).clamp(-STEP_MAX, STEP_MAX);
                *value = (*value + step).clamp(VALUE_MIN, VALUE_MAX);
            }
        }
        let batch = IngestBatch {
            host: self.hosts[slot],
            timestamp_ms: EPOCH_MS + self.step_index * INTERVAL_MS,
            values: self.values[slot],
        };
        self.next_host += 1;
        if self.next_host == self.hosts.len() {
            self.next_host = 0;
            self.step_index += 1;
        }
        batch
    }
}

/// One query of `tsbs-cpu-query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuQuery {
    /// `TS.RANGE key from to` over one series.
    Range {
        /// Series index.
        series: u64,
        /// First ms of the window.
        from_ms: u64,
        /// Last ms of the window (inclusive).
        to_ms: u64,
    },
    /// `TS.MRANGE from to FILTER measurement=cpu hostname=host_N`.
    Mrange {
        /// The host.
        host: u64,
        /// First ms of the window.
        from_ms: u64,
        /// Last ms of the window (inclusive).
        to_ms: u64,
    },
}

/// Draws query `CpuQuery`s: half single-series ranges, half per-host multi-ranges, over
/// random one-hour windows that start on a reading and lie within the span.
#[derive(Debug, Clone)]
pub struct CpuQueries {
    config: TsbsConfig,
    rng: SmallRng,
}

impl CpuQueries {
    /// A seeded query stream.
    pub fn new(config: &TsbsConfig, seed: u64) -> Self {
        Self {
            config: *config,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The next query.
    pub fn next_query(&mut self) -> CpuQuery {
        let span_ms = self.config.span_hours.max(1) * 3_600_000;
        let starts = (span_ms - QUERY_WINDOW_MS) / INTERVAL_MS + 1;
        let from_ms = EPOCH_MS + self.rng.gen_range(0..starts) * INTERVAL_MS;
        let to_ms = from_ms + QUERY_WINDOW_MS - 1;
        if self.rng.gen_bool(0.5) {
            CpuQuery::Range {
                series: self.rng.gen_range(0..self.config.series_count()),
                from_ms,
                to_ms,
            }
        } else {
            CpuQuery::Mrange {
                host: self.rng.gen_range(0..self.config.hosts),
                from_ms,
                to_ms,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: TsbsConfig = TsbsConfig {
        hosts: 7,
        span_hours: 24,
    };

    #[test]
    fn ingest_visits_each_own_host_once_per_timestamp_ten_seconds_apart() {
        let mut ingest = CpuIngest::new(&FLEET, 1, 1, 3);
        let batches: Vec<IngestBatch> = (0..30).map(|_| ingest.next_batch()).collect();
        // Thread 1 of 3 owns hosts 1 and 4.
        let hosts: Vec<u64> = batches.iter().map(|b| b.host).collect();
        assert_eq!(&hosts[..4], &[1, 4, 1, 4]);
        for (i, batch) in batches.iter().enumerate() {
            assert_eq!(batch.timestamp_ms, EPOCH_MS + (i as u64 / 2) * INTERVAL_MS);
        }
    }

    #[test]
    fn values_stay_in_bounds_and_walk_in_bounded_steps() {
        let mut ingest = CpuIngest::new(&FLEET, 9, 0, 1);
        let mut last: Vec<Option<[f64; 10]>> = vec![None; FLEET.hosts as usize];
        let mut moved = 0;
        for _ in 0..FLEET.hosts * 2_000 {
            let batch = ingest.next_batch();
            for &v in &batch.values {
                assert!((VALUE_MIN..=VALUE_MAX).contains(&v), "{v}");
            }
            if let Some(previous) = last[batch.host as usize] {
                for (a, b) in previous.iter().zip(&batch.values) {
                    // A step of exactly STEP_MAX may round up in the last bit.
                    assert!((a - b).abs() <= STEP_MAX + 1e-9, "{a} -> {b}");
                    moved += usize::from(a != b);
                }
            }
            last[batch.host as usize] = Some(batch.values);
        }
        assert!(moved > 1000, "the walk hardly moves: {moved}");
    }

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let draw = |seed| {
            let mut ingest = CpuIngest::new(&FLEET, seed, 0, 2);
            (0..50).map(|_| ingest.next_batch()).collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
        let queries = |seed| {
            let mut q = CpuQueries::new(&FLEET, seed);
            (0..50).map(|_| q.next_query()).collect::<Vec<_>>()
        };
        assert_eq!(queries(5), queries(5));
        assert_ne!(queries(5), queries(6));
    }

    #[test]
    fn query_windows_are_one_hour_inside_the_span() {
        let mut q = CpuQueries::new(&FLEET, 3);
        let (mut ranges, mut mranges) = (0, 0);
        for _ in 0..2_000 {
            let (from_ms, to_ms) = match q.next_query() {
                CpuQuery::Range {
                    series,
                    from_ms,
                    to_ms,
                } => {
                    assert!(series < FLEET.series_count());
                    ranges += 1;
                    (from_ms, to_ms)
                }
                CpuQuery::Mrange {
                    host,
                    from_ms,
                    to_ms,
                } => {
                    assert!(host < FLEET.hosts);
                    mranges += 1;
                    (from_ms, to_ms)
                }
            };
            assert_eq!(to_ms - from_ms + 1, QUERY_WINDOW_MS);
            assert_eq!((from_ms - EPOCH_MS) % INTERVAL_MS, 0);
            assert!(to_ms < EPOCH_MS + 24 * 3_600_000);
        }
        assert!(ranges > 800 && mranges > 800, "{ranges} / {mranges}");
    }

    #[test]
    fn series_keys_and_labels_name_host_and_metric() {
        assert_eq!(series_key(0), "cpu:host_0:usage_user");
        assert_eq!(series_key(23), "cpu:host_2:usage_nice");
        let labels = series_labels(23);
        assert_eq!(labels[0], ("hostname", "host_2".to_string()));
        let region = &labels[1].1;
        assert!(labels[2].1.starts_with(region.as_str()), "{labels:?}");
        assert_eq!(labels.last().unwrap().1, "usage_nice");
        // A host's tags are the same for all its series.
        assert_eq!(series_labels(20)[..10], labels[..10]);
    }
}
