//! # tskv-bench — a load generator for RESP servers (tskv, Redis)
//!
//! ```text
//!  cli (flags) ──► main: phases (load / create-series, run or ramp steps), threads and
//!                  connections ──► engine: one epoll loop per thread
//!                                    │  workload ─► keydist, tsbs
//!                                    │  resp_client (encode, parse)
//!   report, ramp ◄── progress (main thread) ◄──┘  stats, once a second
//!   profiler: perf record (or any command) over the measured window
//!   plot ◄── runfile (JSON report / interval log) ──► compare      (`plot`, `compare`, --plot)
//! ```
//!
//! * [`cli`] holds the flags and [`limits`] every limit.
//! * [`workload`] draws requests (SET/GET mix, YCSB preset or `--command` templates with keys
//!   from [`keydist`]; TSBS cpu-only series from [`tsbs`]) and encodes them.
//! * [`resp_client`] encodes commands and parses replies incrementally.
//! * [`engine`] runs the client threads, closed or open loop, over [`sys`] (epoll, CPU clocks,
//!   signals: the only `unsafe`).
//! * [`stats`] is what a thread records per interval; [`progress`] gathers the intervals on
//!   the main thread (progress line, HdrHistogram log, totals); [`report`] prints the table and
//!   the JSON with the [`host`] manifest; [`ramp`] judges a rate ramp; [`profiler`] runs a
//!   profiler over the measured window.
//! * [`runfile`] reads a finished run back (JSON report or interval log), [`plot`] draws its
//!   SVG charts and [`compare`] sets runs side by side.
//! * The client threads and their connections live for the whole run ([`engine::ClientPool`]):
//!   setup phases, the measured run and every ramp step share them. SIGINT ends the run
//!   early, with its report, JSON, interval log and charts.

mod cli;
mod compare;
mod engine;
mod host;
mod keydist;
mod limits;
mod plot;
mod profiler;
mod progress;
mod ramp;
mod report;
mod resp_client;
mod runfile;
mod stats;
mod sys;
mod tsbs;
mod workload;

use std::error::Error;
use std::io::{BufWriter, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use serde_json::{json, Value};
use signal_hook::consts::SIGINT;

use crate::cli::{Args, KeyDistKind, Preset, Ratio, Tool, ValueSize};
use crate::engine::{ClientPool, ConnectionPlan, EngineConfig, OpenLoop, ThreadPlan};
use crate::host::HostManifest;
use crate::profiler::{Profiler, ProfilerSpec};
use crate::progress::{CollectOptions, Collected, HdrLog};
use crate::report::{secs_to_ns, PhaseInfo, RunReport};
use crate::tsbs::TsbsConfig;
use crate::workload::{share, Command, Mix, OpWeights, Workload, WorkloadConfig};

/// The mix without `--ratio` or `--workload`.
const DEFAULT_RATIO: Ratio = Ratio { set: 1, get: 10 };
/// SET value size without `--value-size`, outside YCSB presets.
const DEFAULT_VALUE_BYTES: usize = 32;

fn main() -> ExitCode {
    let args = Args::parse_from_env();
    let result = match &args.tool {
        Some(tool) => run_tool(tool),
        None => run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tskv-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// `plot` and `compare`: work on finished runs.
fn run_tool(tool: &Tool) -> Result<ExitCode, Box<dyn Error>> {
    match tool {
        Tool::Plot { input, out } => {
            let run = runfile::load(input)?;
            for path in plot::write_charts(&run, out)? {
                println!("wrote {}", path.display());
            }
        }
        Tool::Compare { runs, out } => {
            let (table, chart) = compare::compare(runs, out)?;
            print!("{table}");
            println!("wrote {}", chart.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One phase to run: setup, the measured run, or a ramp step.
struct PhaseSpec {
    info: PhaseInfo,
    workload: WorkloadConfig,
    open_loop: Option<OpenLoop>,
    warmup_ns: u64,
    duration_ns: Option<u64>,
    /// `--requests` split over the connections.
    requests: Option<u64>,
    /// Setup phases: each thread does exactly its share of this many requests.
    setup_total: Option<u64>,
    seed: u64,
    /// Write this phase's intervals into the `--hdr-log`.
    hdr_logged: bool,
    /// Prefix of its interval-log tags.
    tag_prefix: String,
    /// Start the profiler when this phase's measured window opens.
    profile_start: bool,
    /// Stop the profiler when this phase ends.
    profile_stop: bool,
}

/// What every phase shares.
struct RunContext<'a> {
    args: &'a Args,
    addrs: Vec<SocketAddr>,
    host: HostManifest,
    profiler: Option<Arc<Mutex<Profiler>>>,
    /// Set by SIGINT: every phase stops issuing, drains, and the run reports what it has.
    interrupted: Arc<AtomicBool>,
    hdr_log: Option<Mutex<HdrLog>>,
    /// The client threads and their connections, kept from phase to phase.
    pool: ClientPool,
}

fn run(args: &Args) -> Result<ExitCode, Box<dyn Error>> {
    args.validate()?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let workload = workload_config(args);
    let setups = setup_phases(args);
    if let Some(count) = args.dump_keys {
        dump_keys(&workload, seed, args.threads, count)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(count) = args.dump_commands {
        dump_commands(&setups, &workload, seed, args.threads, count)?;
        return Ok(ExitCode::SUCCESS);
    }
    let profiler = match (args.perf_record, &args.perf_cmd) {
        (Some(pid), _) => Some(ProfilerSpec::PerfRecord {
            pid,
            output: args.perf_output.clone(),
        }),
        (None, Some(line)) => Some(ProfilerSpec::Shell(line.clone())),
        (None, None) => None,
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    // A first Ctrl-C ends the run early with its report; a second one exits at once.
    signal_hook::flag::register_conditional_shutdown(SIGINT, 2, Arc::clone(&interrupted))?;
    signal_hook::flag::register(SIGINT, Arc::clone(&interrupted))?;
    let host = HostManifest::collect();
    let hdr_log = match &args.hdr_log {
        Some(path) => {
            let host_line = runfile::host_line(&json!(host));
            let flags =
                runfile::flags_line(&json!({ "argv": std::env::args().collect::<Vec<_>>() }));
            let log = HdrLog::create(path, SystemTime::now(), &host_line, &flags)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Some(Mutex::new(log))
        }
        None => None,
    };
    let addrs = resolve(&args.target_strings())?;
    let pool = ClientPool::connect(plan_threads(args, &addrs, None))?;
    let ctx = RunContext {
        args,
        addrs,
        pool,
        host,
        profiler: profiler.map(|spec| Arc::new(Mutex::new(Profiler::new(spec)))),
        interrupted,
        hdr_log,
    };
    if let Some(cpus) = &args.cpus {
        // The main thread only merges once a second; keep it off the server's cores too.
        core_affinity::set_for_current(core_affinity::CoreId { id: cpus.0[0] });
    }

    let mut failed = false;
    let mut setup_json = serde_json::Map::new();
    for (label, setup) in setups {
        let total = setup.setup_total();
        let spec = PhaseSpec {
            info: PhaseInfo {
                label: label.clone(),
                rate_per_s: None,
                warmup_s: 0.0,
                description: describe(&setup, None),
                commands: setup.named_commands(),
                pipeline: args.pipeline.max(limits::LOAD_PIPELINE_MIN),
            },
            workload: setup,
            open_loop: None,
            warmup_ns: 0,
            duration_ns: None,
            requests: None,
            setup_total: total,
            seed,
            hdr_logged: false,
            tag_prefix: String::new(),
            profile_start: false,
            profile_stop: false,
        };
        let (collected, started) = run_phase(&ctx, &spec)?;
        let report = ctx.report(&spec, seed, &collected, started);
        print!("{}", report.table());
        failed |= thread_failed(&collected);
        setup_json.insert(label.replace('-', "_"), report.phase_json());
        if ctx.interrupted.load(Ordering::Relaxed) {
            break;
        }
    }

    let mut json = match args.rate_ramp {
        None if ctx.interrupted.load(Ordering::Relaxed) => {
            json!({"tool": "tskv-bench", "interrupted": "during a setup phase"})
        }
        None => {
            let spec = ctx.main_spec(workload, seed);
            let (collected, started) = run_phase(&ctx, &spec)?;
            let report = ctx.report(&spec, seed, &collected, started);
            print!("{}", report.table());
            failed |= thread_failed(&collected);
            report.json()
        }
        Some(ramp) => {
            let (json, ramp_failed) = run_ramp(&ctx, &ramp, &workload, seed)?;
            failed |= ramp_failed;
            json
        }
    };
    if let Value::Object(map) = &mut json {
        map.extend(setup_json);
        if let Some(profiler) = &ctx.profiler {
            let profiler = profiler.lock().unwrap_or_else(PoisonError::into_inner);
            map.insert("profiler".into(), profiler.json());
        }
    }
    let interrupted = ctx.interrupted.load(Ordering::Relaxed);
    if let Value::Object(map) = &mut json {
        map.insert("interrupted".into(), json!(interrupted));
    }
    if let Some(log) = &ctx.hdr_log {
        let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
        log.flush()
            .map_err(|e| format!("cannot write the --hdr-log: {e}"))?;
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&json)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(dir) = &args.plot {
        for path in plot::write_charts(&runfile::from_json(&json)?, dir)? {
            println!("wrote {}", path.display());
        }
    }
    if interrupted {
        println!("interrupted (SIGINT): the figures above cover the run up to then");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn thread_failed(collected: &Collected) -> bool {
    collected.threads.iter().any(|t| t.error.is_some())
}

impl RunContext<'_> {
    /// The measured run (or, with a rate, the first ramp step's shape).
    fn main_spec(&self, workload: WorkloadConfig, seed: u64) -> PhaseSpec {
        let args = self.args;
        PhaseSpec {
            info: PhaseInfo {
                label: "run".into(),
                rate_per_s: args.rate,
                warmup_s: args.warmup,
                description: describe(&workload, args.workload),
                commands: workload.named_commands(),
                pipeline: args.pipeline,
            },
            workload,
            open_loop: args.rate.map(|rate_per_s| OpenLoop {
                rate_per_s,
                poisson: args.poisson,
            }),
            warmup_ns: secs_to_ns(args.warmup),
            duration_ns: args.duration_secs().map(secs_to_ns),
            requests: args.requests,
            setup_total: None,
            seed,
            hdr_logged: true,
            tag_prefix: String::new(),
            profile_start: true,
            profile_stop: true,
        }
    }

    fn report<'a>(
        &'a self,
        spec: &'a PhaseSpec,
        seed: u64,
        collected: &'a Collected,
        started_unix_s: f64,
    ) -> RunReport<'a> {
        RunReport {
            args: self.args,
            phase: &spec.info,
            seed,
            targets: self.addrs.iter().map(ToString::to_string).collect(),
            collected,
            host: &self.host,
            started_unix_s,
        }
    }
}

/// Runs the ramp's steps, prints each step's report and the ramp table; returns the JSON
/// and whether a client thread failed.
fn run_ramp(
    ctx: &RunContext<'_>,
    ramp: &ramp::RateRamp,
    workload: &WorkloadConfig,
    seed: u64,
) -> Result<(Value, bool), Box<dyn Error>> {
    let args = ctx.args;
    let rates = ramp.rates();
    let mut rows = Vec::new();
    let mut step_json = Vec::new();
    let mut failed = false;
    let mut run_json = Value::Null;
    for (i, &rate_per_s) in rates.iter().enumerate() {
        let first = i == 0;
        // Another seed per step, so a step does not replay the previous step's keys.
        let step_seed = seed.wrapping_add((i as u64) << 32);
        let mut spec = ctx.main_spec(workload.clone(), step_seed);
        spec.info.label = format!("ramp step {} of {}", i + 1, rates.len());
        spec.info.rate_per_s = Some(rate_per_s);
        spec.info.warmup_s = if first { args.warmup } else { 0.0 };
        spec.open_loop = Some(OpenLoop {
            rate_per_s,
            poisson: args.poisson,
        });
        spec.warmup_ns = secs_to_ns(spec.info.warmup_s);
        spec.duration_ns = Some(secs_to_ns(ramp.step_secs));
        spec.requests = None;
        spec.tag_prefix = format!("{}{rate_per_s}-", runfile::HLOG_RATE_TAG_PREFIX);
        spec.profile_start = first;
        spec.profile_stop = i + 1 == rates.len();
        let (collected, started) = run_phase(ctx, &spec)?;
        let report = ctx.report(&spec, step_seed, &collected, started);
        if !args.quiet {
            print!("{}", report.table());
        }
        failed |= thread_failed(&collected);
        rows.push(report.step_result(rate_per_s));
        step_json.push(report.phase_json());
        if first {
            run_json = report.run_json();
        }
        if failed || ctx.interrupted.load(Ordering::Relaxed) {
            break;
        }
    }
    print!("{}", ramp::table(&rows));
    if let Value::Object(map) = &mut run_json {
        map.insert("mode".into(), json!("ramp"));
        map.insert("ramp".into(), ramp::json(ramp, &rows, step_json));
    }
    Ok((run_json, failed))
}

/// Runs one phase: spawns the client threads, starts them together, collects their
/// intervals, and starts / stops the profiler around the measured window if asked.
fn run_phase(ctx: &RunContext<'_>, spec: &PhaseSpec) -> Result<(Collected, f64), Box<dyn Error>> {
    let args = ctx.args;
    let config = Arc::new(EngineConfig {
        pipeline: spec.info.pipeline,
        pipeline_batch: args.pipeline_batch && spec.open_loop.is_none(),
        open_loop: spec.open_loop,
        warmup_ns: spec.warmup_ns,
        duration_ns: spec.duration_ns,
        clients_total: args.clients,
        threads: args.threads,
        seed: spec.seed,
        workload: spec.workload.clone(),
        interrupted: Arc::clone(&ctx.interrupted),
    });
    let mut plans = plan_threads(args, &ctx.addrs, spec.requests);
    if let Some(total) = spec.setup_total {
        for plan in &mut plans {
            let range = share(total, plan.thread_index, args.threads);
            plan.quota = Some(range.end - range.start);
        }
    }
    let quotas: Vec<Option<u64>> = plans.iter().map(|p| p.quota).collect();
    let (base, start_wall) = ctx.pool.start_phase(&config, &quotas);
    let starter = match &ctx.profiler {
        Some(profiler) if spec.profile_start => {
            let profiler = Arc::clone(profiler);
            let window_start = base + Duration::from_nanos(spec.warmup_ns);
            Some(thread::spawn(move || {
                thread::sleep(window_start.saturating_duration_since(Instant::now()));
                profiler
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .start();
            }))
        }
        _ => None,
    };
    let options = CollectOptions {
        threads: args.threads,
        warmup_ns: config.warmup_ns,
        base,
        start_wall,
        open_loop: config.open_loop.is_some(),
        quiet: args.quiet,
        tag_prefix: spec.tag_prefix.clone(),
        commands: spec.info.commands.clone(),
    };
    let mut hdr_log = match (&ctx.hdr_log, spec.hdr_logged) {
        (Some(log), true) => Some(log.lock().unwrap_or_else(PoisonError::into_inner)),
        _ => None,
    };
    let collected = progress::collect(
        ctx.pool.messages(),
        &options,
        ctx.pool.stop_flag(),
        hdr_log.as_deref_mut(),
    );
    drop(hdr_log);
    if let Some(starter) = starter {
        let _ = starter.join();
    }
    if let (Some(profiler), true) = (&ctx.profiler, spec.profile_stop) {
        profiler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop();
    }
    let collected = collected?;
    let started_unix_s = start_wall
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    Ok((collected, started_unix_s))
}

/// The workload of the measured run, from `--workload` or `--ratio` and the size flags.
fn workload_config(args: &Args) -> WorkloadConfig {
    let fleet = TsbsConfig {
        hosts: args.hosts,
        span_hours: args.ts_span_hours,
    };
    let ycsb = |read, update, insert, scan, rmw| {
        Mix::KeyValue(OpWeights {
            read,
            update,
            insert,
            scan,
            rmw,
        })
    };
    let (mix, key_dist) = match args.workload {
        None if !args.templates.is_empty() => (
            Mix::Templates(workload::templates(&args.templates, &args.template_weights)),
            KeyDistKind::Uniform,
        ),
        None => {
            let ratio = args.ratio.unwrap_or(DEFAULT_RATIO);
            (ycsb(ratio.get, ratio.set, 0, 0, 0), KeyDistKind::Uniform)
        }
        Some(Preset::YcsbA) => (ycsb(50, 50, 0, 0, 0), KeyDistKind::Zipfian),
        Some(Preset::YcsbB) => (ycsb(95, 5, 0, 0, 0), KeyDistKind::Zipfian),
        Some(Preset::YcsbC) => (ycsb(100, 0, 0, 0, 0), KeyDistKind::Zipfian),
        Some(Preset::YcsbD) => (ycsb(95, 0, 5, 0, 0), KeyDistKind::Latest),
        Some(Preset::YcsbE) => (ycsb(0, 0, 5, 95, 0), KeyDistKind::Zipfian),
        Some(Preset::YcsbF) => (ycsb(50, 0, 0, 0, 50), KeyDistKind::Zipfian),
        Some(Preset::TsbsCpuIngest) => (Mix::TsIngest(fleet), KeyDistKind::Uniform),
        Some(Preset::TsbsCpuQuery) => (Mix::TsQuery(fleet), KeyDistKind::Uniform),
    };
    let default_bytes = if args.workload.is_some_and(Preset::is_ycsb) {
        limits::YCSB_VALUE_BYTES
    } else {
        DEFAULT_VALUE_BYTES
    };
    WorkloadConfig {
        mix,
        keys: args.keys,
        key_dist: args.key_dist.unwrap_or(key_dist),
        key_prefix: args.key_prefix.as_bytes().to_vec(),
        value_size: args.value_size.unwrap_or(ValueSize {
            min_bytes: default_bytes,
            max_bytes: default_bytes,
        }),
        scan_len_max: limits::YCSB_SCAN_LEN_MAX,
    }
}

/// The setup phases `--load` and `--create-series` ask for, with their labels.
fn setup_phases(args: &Args) -> Vec<(String, WorkloadConfig)> {
    let main = workload_config(args);
    let mut phases = Vec::new();
    if args.load {
        let mut load = main.clone();
        load.mix = Mix::Load;
        load.key_dist = KeyDistKind::Sequential;
        phases.push(("load".to_string(), load));
    }
    if args.create_series {
        let mut create = main.clone();
        create.mix = Mix::TsCreate(TsbsConfig {
            hosts: args.hosts,
            span_hours: args.ts_span_hours,
        });
        phases.push(("create-series".to_string(), create));
    }
    phases
}

/// One line saying what a workload sends.
fn describe(workload: &WorkloadConfig, preset: Option<Preset>) -> String {
    let dist = workload
        .key_dist
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string());
    let ValueSize {
        min_bytes,
        max_bytes,
    } = workload.value_size;
    let keys = format!(
        "{} keys {dist}; values {min_bytes}-{max_bytes} bytes",
        workload.keys
    );
    match &workload.mix {
        Mix::KeyValue(w) if preset.is_none() => format!("SET:GET {}:{}; {keys}", w.update, w.read),
        Mix::KeyValue(w) => {
            let total = f64::from(w.read + w.update + w.insert + w.scan + w.rmw);
            let mut parts = Vec::new();
            for (weight, what) in [
                (w.read, "GET"),
                (w.update, "SET"),
                (w.insert, "INSERT (SET of a new key beyond --keys)"),
                (
                    w.scan,
                    "SCAN (MGET of 1..=100 consecutive keys: no range command yet)",
                ),
                (w.rmw, "RMW (GET then SET of one key)"),
            ] {
                if weight > 0 {
                    parts.push(format!("{:.0}% {what}", f64::from(weight) / total * 100.0));
                }
            }
            let name = preset.map(Preset::name).unwrap_or_default();
            format!("workload {name}: {}; {keys}", parts.join(", "))
        }
        Mix::Load => format!("load: SET every key once, in order; {keys}"),
        Mix::TsCreate(fleet) => format!(
            "create-series: TS.CREATE of {} series (cpu:host_N:METRIC) with TSBS host labels",
            fleet.series_count()
        ),
        Mix::TsIngest(fleet) => format!(
            "workload tsbs-cpu-ingest: TS.MADD of the 10 cpu metrics per host and 10 s of \
             simulated time; {} hosts from 2016-01-01T00:00:00Z",
            fleet.hosts
        ),
        Mix::Templates(specs) => {
            let total: u32 = specs.iter().map(|s| s.weight).sum();
            let parts: Vec<String> = specs
                .iter()
                .map(|s| {
                    let share = f64::from(s.weight) / f64::from(total.max(1)) * 100.0;
                    format!("{share:.0}% {} ({})", s.words.join(" "), s.name)
                })
                .collect();
            format!("templates: {}; {keys}", parts.join(", "))
        }
        Mix::TsQuery(fleet) => format!(
            "workload tsbs-cpu-query: TS.RANGE of one series or TS.MRANGE ... FILTER \
             hostname=host_N over random 1 h windows of the first {} h; {} hosts",
            fleet.span_hours, fleet.hosts
        ),
    }
}

/// Prints the first `count` requests of thread 0 as `COMMAND key`, one a line.
fn dump_keys(
    workload: &WorkloadConfig,
    seed: u64,
    threads: usize,
    count: u64,
) -> std::io::Result<()> {
    let mut generator = Workload::new(workload, seed, 0, threads);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        let request = generator.next_request();
        let name = request.command.name();
        let key = generator.key_text(request.key_index);
        out.write_all(name.as_bytes())?;
        out.write_all(b" ")?;
        out.write_all(key)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Prints the first `count` commands thread 0 would send: its share of each setup phase,
/// then the run (an RMW's SET right after its GET). One command a line, arguments escaped.
fn dump_commands(
    setups: &[(String, WorkloadConfig)],
    workload: &WorkloadConfig,
    seed: u64,
    threads: usize,
    count: u64,
) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut left = count;
    let mut encoded = Vec::new();
    let mut emit = |generator: &mut Workload, left: &mut u64| -> std::io::Result<()> {
        encoded.clear();
        let request = generator.next(&mut encoded);
        if request.command == Command::Rmw {
            generator.encode_set(&request, &mut encoded);
        }
        let mut pos = 0;
        while *left > 0 {
            let Some((args, used)) = resp_client::decode_command(&encoded[pos..]) else {
                break;
            };
            let mut line = Vec::new();
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    line.push(b' ');
                }
                escape_arg(arg, &mut line);
            }
            line.push(b'\n');
            out.write_all(&line)?;
            pos += used;
            *left -= 1;
        }
        Ok(())
    };
    for (_, setup) in setups {
        let mut generator = Workload::new(setup, seed, 0, threads);
        let range = share(setup.setup_total().unwrap_or(0), 0, threads);
        for _ in range {
            if left == 0 {
                break;
            }
            emit(&mut generator, &mut left)?;
        }
    }
    let mut generator = Workload::new(workload, seed, 0, threads);
    while left > 0 {
        emit(&mut generator, &mut left)?;
    }
    out.flush()
}

/// Appends `arg` as redis-cli prints it: bare if it is non-empty printable ASCII without
/// spaces or quotes, else double-quoted with `\"`, `\\`, `\n`, `\r`, `\t` and `\xNN`.
fn escape_arg(arg: &[u8], out: &mut Vec<u8>) {
    let bare = !arg.is_empty()
        && arg
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b'\'');
    if bare {
        out.extend_from_slice(arg);
        return;
    }
    out.push(b'"');
    for &b in arg {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b' ' => out.push(b' '),
            b if b.is_ascii_graphic() => out.push(b),
            b => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

fn resolve(targets: &[String]) -> Result<Vec<SocketAddr>, String> {
    targets
        .iter()
        .map(|t| {
            t.to_socket_addrs()
                .map_err(|e| format!("cannot resolve {t}: {e}"))?
                .next()
                .ok_or_else(|| format!("{t} resolves to no address"))
        })
        .collect()
}

/// Connection i goes to thread i mod threads and target i mod targets; with `requests`,
/// each connection's share (N / clients, the remainder to the first ones) is added to its
/// thread's quota.
fn plan_threads(args: &Args, addrs: &[SocketAddr], requests: Option<u64>) -> Vec<ThreadPlan> {
    let mut plans: Vec<ThreadPlan> = (0..args.threads)
        .map(|thread_index| ThreadPlan {
            thread_index,
            cpu: args.cpus.as_ref().map(|c| c.0[thread_index % c.0.len()]),
            connections: Vec::new(),
            quota: requests.map(|_| 0),
        })
        .collect();
    let clients = args.clients as u64;
    for global_index in 0..args.clients {
        let plan = &mut plans[global_index % args.threads];
        plan.connections.push(ConnectionPlan {
            global_index,
            addr: addrs[global_index % addrs.len()],
        });
        if let (Some(quota), Some(total)) = (&mut plan.quota, requests) {
            *quota += total / clients + u64::from((global_index as u64) < total % clients);
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn connections_and_quotas_spread_round_robin() {
        let args = Args::try_parse_from([
            "tskv-bench",
            "--threads",
            "2",
            "--clients",
            "5",
            "--requests",
            "103",
            "--cpus",
            "1",
        ])
        .unwrap();
        let addrs: Vec<SocketAddr> = vec![
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        ];
        let plans = plan_threads(&args, &addrs, args.requests);
        let globals: Vec<Vec<usize>> = plans
            .iter()
            .map(|p| p.connections.iter().map(|c| c.global_index).collect())
            .collect();
        assert_eq!(globals, vec![vec![0, 2, 4], vec![1, 3]]);
        assert_eq!(plans[0].connections[1].addr.port(), 1);
        assert_eq!(plans[1].connections[0].addr.port(), 2);
        // 103 over 5 connections: 21, 21, 21, 20, 20.
        assert_eq!(plans[0].quota, Some(21 + 21 + 20));
        assert_eq!(plans[1].quota, Some(21 + 20));
        assert!(plans.iter().all(|p| p.cpu == Some(1)));
    }

    #[test]
    fn presets_resolve_to_their_mix_distribution_and_value_size() {
        let parse = |flags: &[&str]| {
            let mut argv = vec!["tskv-bench"];
            argv.extend_from_slice(flags);
            Args::try_parse_from(argv).unwrap()
        };
        let plain = workload_config(&parse(&[]));
        assert_eq!(plain.key_dist, KeyDistKind::Uniform);
        assert_eq!(plain.value_size.max_bytes, 32);
        let d = workload_config(&parse(&["--workload", "ycsb-d"]));
        assert_eq!(d.key_dist, KeyDistKind::Latest);
        assert_eq!(d.value_size.max_bytes, 1000);
        assert_eq!(d.commands(), vec![Command::Get, Command::Insert]);
        let f = workload_config(&parse(&["--workload", "ycsb-f", "--value-size", "10"]));
        assert_eq!(f.value_size.max_bytes, 10);
        assert_eq!(f.commands(), vec![Command::Get, Command::Rmw]);
        let e = parse(&["--workload", "ycsb-e", "--load"]);
        assert!(describe(&workload_config(&e), Some(Preset::YcsbE)).contains("MGET"));
        assert_eq!(setup_phases(&e).len(), 1);
        let ts = parse(&["--workload", "tsbs-cpu-ingest", "--create-series"]);
        assert_eq!(workload_config(&ts).commands(), vec![Command::TsMadd]);
        assert_eq!(setup_phases(&ts)[0].1.setup_total(), Some(1000));
    }

    #[test]
    fn arguments_are_escaped_like_redis_cli() {
        let escaped = |arg: &[u8]| {
            let mut out = Vec::new();
            escape_arg(arg, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(escaped(b"TS.MADD"), "TS.MADD");
        assert_eq!(escaped(b"a b"), "\"a b\"");
        assert_eq!(escaped(b""), "\"\"");
        assert_eq!(escaped(b"q\"\\\n\x01"), "\"q\\\"\\\\\\n\\x01\"");
    }
}
