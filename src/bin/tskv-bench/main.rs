//! # tskv-bench — a load generator for RESP servers (tskv, Redis)
//!
//! ```text
//!  cli (flags) ──► presets ──► phase: phases (load / create-series, run or ramp steps),
//!                  threads and connections ──► engine: one epoll loop per thread
//!                                    │  workload ─► keydist, tsbs
//!                                    │  resp_client (encode, parse)
//!   report, ramp ◄── progress (main thread) ◄──┘  stats, once a second
//!   profiler: perf record (or any command) over the measured window
//!   plot ◄── runfile (JSON report / interval log) ──► compare      (`plot`, `compare`, --plot)
//! ```
//!
//! * [`cli`] holds the flags and [`limits`] every limit; [`presets`] turns the flags into
//!   workloads and setup phases; [`phase`] runs the phases; [`dump`] prints what would be
//!   sent instead.
//! * [`workload`] draws requests (SET/GET mix, YCSB preset or `--command` templates with keys
//!   from [`keydist`]; TSBS cpu-only series from [`tsbs`]), encodes them and judges their
//!   replies.
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
mod dump;
mod engine;
mod host;
mod keydist;
mod limits;
mod phase;
mod plot;
mod presets;
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
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde_json::{json, Value};
use signal_hook::consts::SIGINT;

use crate::cli::{Args, Tool};
use crate::dump::{dump_commands, dump_keys};
use crate::engine::ClientPool;
use crate::host::HostManifest;
use crate::phase::{plan_threads, run_phase, run_ramp, thread_failed, PhaseSpec, RunContext};
use crate::presets::{describe, setup_phases, workload_config};
use crate::profiler::{Profiler, ProfilerSpec};
use crate::progress::HdrLog;
use crate::report::PhaseInfo;

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

/// Each target's first address.
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
