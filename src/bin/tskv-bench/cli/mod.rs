//! Command-line flags and their value parsers.

mod values;

use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

use crate::limits;
use crate::ramp::RateRamp;

pub use self::values::{CpuList, KeyDistKind, Preset, Ratio, ValueSize};

/// The flags of `tskv-bench`.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(group(clap::ArgGroup::new("open_loop").args(["rate", "rate_ramp"])))]
#[command(
    name = "tskv-bench",
    version,
    args_conflicts_with_subcommands = true,
    about = "Load generator for RESP servers (tskv, Redis): closed or open loop, SET/GET mix \
             or YCSB / TSBS presets, rate ramps, HdrHistogram latencies, its own CPU use and a \
             host manifest"
)]
pub struct Args {
    /// `plot` or `compare` a finished run instead of running one.
    #[command(subcommand)]
    #[serde(skip)]
    pub tool: Option<Tool>,

    /// Server host (ignored when --target is given).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Server port (ignored when --target is given).
    #[arg(long, default_value_t = 6380)]
    pub port: u16,

    /// A server as HOST:PORT; repeat to spread connections over several servers round-robin.
    #[arg(long = "target", value_name = "HOST:PORT")]
    pub targets: Vec<String>,

    /// Client threads, each with its own epoll loop.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// CPUs to pin client threads to, e.g. `1`, `0,1` or `2-3`; thread i gets the
    /// (i mod len)-th CPU.
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<CpuList>,

    /// Connections in total, spread over the threads.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,

    /// Requests each connection keeps outstanding at most.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,

    /// Closed loop: send --pipeline requests, wait for all their replies, then send the
    /// next batch, as redis-benchmark's -P does (instead of refilling each slot as soon as
    /// its reply arrives). Use it to compare figures with redis-benchmark.
    #[arg(long)]
    pub pipeline_batch: bool,

    /// Total request rate in ops/s: open loop. Without it the run is closed loop.
    #[arg(long, value_name = "OPS_PER_S")]
    pub rate: Option<f64>,

    /// Open loop with exponential inter-arrival times instead of evenly spaced sends.
    #[arg(long, requires = "open_loop")]
    pub poisson: bool,

    /// Measured seconds (after warm-up). Default 10 unless --requests is given.
    #[arg(long, value_name = "SECS", conflicts_with = "requests")]
    pub duration: Option<f64>,

    /// Measured requests in total (after warm-up).
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,

    /// Seconds of load before measuring; excluded from all statistics.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub warmup: f64,

    /// SET:GET mix, e.g. `1:10` [default: 1:10].
    #[arg(long, conflicts_with = "workload")]
    pub ratio: Option<Ratio>,

    /// A command template to send instead of the SET/GET mix, e.g. `SET key:__key__
    /// __value__`: words split at spaces, `__key__` becomes the drawn key's index
    /// zero-padded to 12 digits (--keys, --key-dist; --key-prefix does not apply) and
    /// `__value__` a value of --value-size bytes. Repeat for a mix; any reply but an error
    /// counts as success. Each template is one row of the report, named by its first word
    /// (with #N when two share it).
    #[arg(long = "command", value_name = "TEMPLATE", conflicts_with_all = ["ratio", "workload", "load"])]
    pub templates: Vec<String>,

    /// Weight of the --command just before it [default: 1]: templates are drawn in
    /// proportion to their weights.
    #[arg(long = "command-weight", value_name = "N", requires = "templates")]
    pub template_weight_flags: Vec<u32>,

    /// The weight of each --command, in order (filled by [`Args::parse_from_env`] from the
    /// flags' positions).
    #[arg(skip)]
    pub template_weights: Vec<u32>,

    /// A preset workload instead of --ratio. YCSB presets send 1000-byte values unless
    /// --value-size is given; INSERTs write keys beyond --keys, which `latest` follows.
    /// There are no range commands yet, so a YCSB SCAN of L keys is an MGET of L
    /// consecutive keys from the drawn one. The TSBS presets send TS.* commands (see
    /// --hosts, --create-series, --dump-commands).
    #[arg(long, value_enum, value_name = "NAME")]
    pub workload: Option<Preset>,

    /// First SET every one of --keys keys in order (pipelined, closed loop), reported as a
    /// separate load phase before the measured run.
    #[arg(long)]
    pub load: bool,

    /// TSBS presets: simulated hosts (10 cpu series each).
    #[arg(long, default_value_t = 100)]
    pub hosts: u64,

    /// tsbs-cpu-query: queries draw their one-hour windows from this many hours of
    /// simulated time from the TSBS start (2016-01-01T00:00:00Z).
    #[arg(long, value_name = "HOURS", default_value_t = 24)]
    pub ts_span_hours: u64,

    /// TSBS presets: first send `TS.CREATE key LABELS ...` for every series, reported as a
    /// separate phase.
    #[arg(long)]
    pub create_series: bool,

    /// Keyspace size.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,

    /// How keys are drawn from the keyspace [default: uniform; YCSB presets: zipfian,
    /// ycsb-d: latest].
    #[arg(long, value_enum)]
    pub key_dist: Option<KeyDistKind>,

    /// Prefix of every key; the key index follows, zero-padded to 12 digits.
    #[arg(long, default_value = "key:")]
    pub key_prefix: String,

    /// SET value size in bytes: `N` or `MIN-MAX` (uniform) [default: 32; YCSB presets:
    /// 1000, YCSB's 10 fields of 100 bytes].
    #[arg(long, value_name = "N|MIN-MAX")]
    pub value_size: Option<ValueSize>,

    /// Open-loop rate ramp: runs at START, START+STEP, ... up to END ops/s, SECONDS each
    /// (--warmup once before the first step), then prints throughput against corrected
    /// latency per step and marks the knee: the first step that achieves under 95% of its
    /// target, or whose corrected p99 exceeds 10x the first step's.
    #[arg(long, value_name = "START:END:STEP:SECONDS", conflicts_with_all = ["rate", "duration", "requests"])]
    pub rate_ramp: Option<RateRamp>,

    /// Run `perf record -g -p PID -o FILE` over exactly the measured window (started after
    /// warm-up, stopped with SIGINT at the end). If perf cannot start, the benchmark warns
    /// and carries on.
    #[arg(long, value_name = "PID", conflicts_with = "perf_cmd")]
    pub perf_record: Option<u32>,

    /// Output file of --perf-record.
    #[arg(long, value_name = "FILE", default_value = "perf.data")]
    pub perf_output: PathBuf,

    /// A shell command (`sh -c`) started when the measured window starts and sent SIGINT
    /// (its whole process group) when it ends: for other profilers.
    #[arg(long, value_name = "CMD")]
    pub perf_cmd: Option<String>,

    /// Seed; thread i uses seed + i, so the same flags give the same key sequence.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Write everything (flags, statistics, CPU use, host manifest) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write an HdrHistogram interval log (one interval per second per command) to FILE.
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,

    /// Also draw the run's charts as SVG into DIR (created if missing): latency by
    /// percentile per command, throughput and p99 over time, and a ramp's latency against
    /// rate. Ctrl-C still writes them, for the run so far.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,

    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,

    /// Print the first N requests (command and key) of thread 0 and exit.
    #[arg(long, hide = true, value_name = "N")]
    pub dump_keys: Option<u64>,

    /// Print the first N commands of thread 0 as they would be sent (setup phases first),
    /// one a line, arguments escaped as redis-cli does, and exit without connecting.
    #[arg(long, value_name = "N", conflicts_with = "dump_keys")]
    pub dump_commands: Option<u64>,
}

/// What to do with finished runs instead of running one.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Tool {
    /// Draws the charts of a finished run from its --json report or --hdr-log interval log
    /// (a file not ending in .json is read as an interval log).
    Plot {
        /// The run: RUN.json or RUN.hlog.
        #[arg(value_name = "RUN")]
        input: PathBuf,
        /// Where to write the SVG charts.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
    /// Prints ops/s and latency percentiles of two or more --json reports side by side,
    /// with each run's ratio to the first (B/A), and draws their spectra in one chart.
    Compare {
        /// The reports; the first is the base A of every ratio.
        #[arg(value_name = "RUN.json", num_args = 2.., required = true)]
        runs: Vec<PathBuf>,
        /// Where to write compare.svg.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

impl Args {
    /// Parses the process's arguments, attaching each --command-weight to the --command
    /// just before it (which derive-style clap cannot say). Exits with clap's message on a
    /// bad flag, as `Parser::parse` does.
    pub fn parse_from_env() -> Self {
        Self::parse_with_weights(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// [`Args::parse_from_env`] over `argv`.
    ///
    /// # Errors
    /// clap's error for a bad flag, or a --command-weight before any --command.
    pub fn parse_with_weights<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().try_get_matches_from(argv)?;
        let mut args = Self::from_arg_matches(&matches)?;
        let positions = |id: &str| -> Vec<usize> {
            matches
                .indices_of(id)
                .map(Iterator::collect)
                .unwrap_or_default()
        };
        let templates = positions("templates");
        let mut weights = vec![1; templates.len()];
        for (at, &weight) in positions("template_weight_flags")
            .into_iter()
            .zip(&args.template_weight_flags)
        {
            let Some(owner) = templates.iter().rposition(|&t| t < at) else {
                return Err(Self::command().error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--command-weight must follow the --command it weighs",
                ));
            };
            weights[owner] = weight;
        }
        args.template_weights = weights;
        Ok(args)
    }

    /// Checks the relations between flags that clap cannot express.
    ///
    /// # Errors
    /// A sentence naming the offending flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 || self.clients == 0 {
            return Err("--threads and --clients must be at least 1".into());
        }
        if self.clients < self.threads {
            return Err(format!(
                "--clients {} is fewer than --threads {}: each thread needs a connection",
                self.clients, self.threads
            ));
        }
        if self.pipeline == 0 || self.pipeline > limits::PIPELINE_MAX {
            return Err(format!("--pipeline must be 1..={}", limits::PIPELINE_MAX));
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err("--rate must be a positive number of ops/s".into());
            }
        }
        if let Some(d) = self.duration {
            if !(d.is_finite() && d > 0.0) {
                return Err("--duration must be positive".into());
            }
        }
        if self.requests == Some(0) {
            return Err("--requests must be at least 1".into());
        }
        if !(self.warmup.is_finite() && self.warmup >= 0.0) {
            return Err("--warmup must be zero or positive".into());
        }
        if let Some(cpus) = &self.cpus {
            if cpus.0.is_empty() {
                return Err("--cpus is empty".into());
            }
        }
        if self.templates.len() > limits::TEMPLATES_MAX {
            return Err(format!(
                "at most {} --command templates",
                limits::TEMPLATES_MAX
            ));
        }
        if self
            .templates
            .iter()
            .any(|t| t.split_whitespace().next().is_none())
        {
            return Err("a --command template is empty".into());
        }
        if !self.templates.is_empty() && self.template_weights.iter().all(|&w| w == 0) {
            return Err("every --command-weight is 0: nothing to send".into());
        }
        self.validate_presets()
    }

    fn validate_presets(&self) -> Result<(), String> {
        let tsbs = self.workload.is_some_and(Preset::is_tsbs);
        if self.create_series && !tsbs {
            return Err("--create-series needs a tsbs-* --workload".into());
        }
        if self.load && tsbs {
            return Err("--load fills the key-value keyspace; use --create-series for TSBS".into());
        }
        if (tsbs || !self.templates.is_empty()) && self.dump_keys.is_some() {
            return Err(
                "--dump-keys shows the SET/GET mix and YCSB requests; use --dump-commands".into(),
            );
        }
        if self.hosts == 0 {
            return Err("--hosts must be at least 1".into());
        }
        if self.workload == Some(Preset::TsbsCpuIngest) && self.hosts < self.threads as u64 {
            return Err(format!(
                "--hosts {} is fewer than --threads {}: each thread ingests its own hosts",
                self.hosts, self.threads
            ));
        }
        if self.ts_span_hours == 0 {
            return Err("--ts-span-hours must be at least 1".into());
        }
        if self
            .perf_cmd
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err("--perf-cmd is empty".into());
        }
        Ok(())
    }

    /// The servers to connect to, as given: `--target`s, or `--host:--port`.
    pub fn target_strings(&self) -> Vec<String> {
        if self.targets.is_empty() {
            vec![format!("{}:{}", self.host, self.port)]
        } else {
            self.targets.clone()
        }
    }

    /// Measured seconds in duration mode, `None` in requests mode.
    pub fn duration_secs(&self) -> Option<f64> {
        match (self.duration, self.requests) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(10.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_exclude_ratio_and_check_their_companions() {
        let parse = |flags: &[&str]| {
            let mut argv = vec!["tskv-bench"];
            argv.extend_from_slice(flags);
            Args::try_parse_from(argv).map_err(|e| e.to_string())
        };
        let args = parse(&["--workload", "ycsb-e"]).unwrap();
        assert_eq!(args.workload, Some(Preset::YcsbE));
        assert_eq!(Preset::YcsbE.name(), "ycsb-e");
        assert!(parse(&["--workload", "ycsb-a", "--ratio", "1:1"]).is_err());
        assert!(parse(&["--workload", "ycsb-z"]).is_err());
        let no_ts = parse(&["--create-series"]).unwrap();
        assert!(no_ts.validate().is_err());
        let load_ts = parse(&["--workload", "tsbs-cpu-ingest", "--load"]).unwrap();
        assert!(load_ts.validate().is_err());
        let few_hosts = parse(&[
            "--workload",
            "tsbs-cpu-ingest",
            "--hosts",
            "1",
            "--threads",
            "2",
        ])
        .unwrap();
        assert!(few_hosts.validate().is_err());
        assert!(parse(&["--rate-ramp", "1:2:1:1", "--rate", "5"]).is_err());
        assert!(parse(&["--perf-record", "1", "--perf-cmd", "x"]).is_err());
    }

    #[test]
    fn command_weights_attach_to_the_command_before_them() {
        let args = Args::parse_with_weights([
            "tskv-bench",
            "--command",
            "SET k:__key__ __value__",
            "--command-weight",
            "3",
            "--command",
            "GET k:__key__",
            "--command",
            "INCR n",
            "--command-weight",
            "2",
        ])
        .unwrap();
        assert_eq!(args.templates.len(), 3);
        assert_eq!(args.template_weights, vec![3, 1, 2]);
        assert!(Args::parse_with_weights([
            "tskv-bench",
            "--command-weight",
            "2",
            "--command",
            "GET a"
        ])
        .is_err());
        assert!(
            Args::parse_with_weights(["tskv-bench", "--command", "GET a", "--ratio", "1:1"])
                .is_err()
        );
    }

    #[test]
    fn subcommands_take_their_files() {
        let args = Args::parse_with_weights(["tskv-bench", "compare", "a.json", "b.json"]).unwrap();
        let Some(Tool::Compare { runs, .. }) = args.tool else {
            panic!("not compare");
        };
        assert_eq!(runs.len(), 2);
        assert!(Args::parse_with_weights(["tskv-bench", "compare", "a.json"]).is_err());
        let args =
            Args::parse_with_weights(["tskv-bench", "plot", "r.hlog", "--out", "d"]).unwrap();
        assert!(matches!(args.tool, Some(Tool::Plot { .. })));
    }

    #[test]
    fn flags_parse_and_validate() {
        let args = Args::try_parse_from([
            "tskv-bench",
            "--target",
            "a:1",
            "--target",
            "b:2",
            "--rate",
            "100",
            "--poisson",
            "--requests",
            "5",
        ])
        .unwrap();
        assert_eq!(args.target_strings(), vec!["a:1", "b:2"]);
        assert_eq!(args.duration_secs(), None);
        args.validate().unwrap();
        assert!(Args::try_parse_from(["tskv-bench", "--poisson"]).is_err());
        assert!(
            Args::try_parse_from(["tskv-bench", "--duration", "1", "--requests", "1"]).is_err()
        );
        let args =
            Args::try_parse_from(["tskv-bench", "--clients", "1", "--threads", "2"]).unwrap();
        assert!(args.validate().is_err());
    }
}
