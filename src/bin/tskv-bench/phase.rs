//! The phases of a run (setup phases, the measured run, ramp steps) on the one
//! [`ClientPool`]: what each phase is ([`PhaseSpec`]), what they share ([`RunContext`]),
//! how one runs (start the threads, collect, profile the measured window) and how
//! connections and `--requests` are spread over the threads.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::cli::Args;
use crate::engine::{ClientPool, ConnectionPlan, EngineConfig, OpenLoop, ThreadPlan};
use crate::host::HostManifest;
use crate::presets::describe;
use crate::profiler::Profiler;
use crate::progress::{self, CollectOptions, Collected, HdrLog};
use crate::ramp;
use crate::report::{secs_to_ns, PhaseInfo, RunReport};
use crate::runfile;
use crate::workload::{share, WorkloadConfig};

/// One phase to run: setup, the measured run, or a ramp step.
pub struct PhaseSpec {
    /// What the report says about the phase.
    pub info: PhaseInfo,
    /// What it sends.
    pub workload: WorkloadConfig,
    /// `None`: closed loop.
    pub open_loop: Option<OpenLoop>,
    /// Warm-up length from the phase's start.
    pub warmup_ns: u64,
    /// Measured length after warm-up; `None` when a request count ends the phase.
    pub duration_ns: Option<u64>,
    /// `--requests` split over the connections.
    pub requests: Option<u64>,
    /// Setup phases: each thread does exactly its share of this many requests.
    pub setup_total: Option<u64>,
    /// Base seed of the phase's request streams.
    pub seed: u64,
    /// Write this phase's intervals into the `--hdr-log`.
    pub hdr_logged: bool,
    /// Prefix of its interval-log tags.
    pub tag_prefix: String,
    /// Start the profiler when this phase's measured window opens.
    pub profile_start: bool,
    /// Stop the profiler when this phase ends.
    pub profile_stop: bool,
}

/// What every phase shares.
pub struct RunContext<'a> {
    /// The flags.
    pub args: &'a Args,
    /// The servers, resolved once.
    pub addrs: Vec<SocketAddr>,
    /// The host manifest every report carries.
    pub host: HostManifest,
    /// `--perf-record` or `--perf-cmd`, run over the measured window.
    pub profiler: Option<Arc<Mutex<Profiler>>>,
    /// Set by SIGINT: every phase stops issuing, drains, and the run reports what it has.
    pub interrupted: Arc<AtomicBool>,
    /// `--hdr-log`, shared by the phases that log.
    pub hdr_log: Option<Mutex<HdrLog>>,
    /// The client threads and their connections, kept from phase to phase.
    pub pool: ClientPool,
}

/// Whether a client thread of the phase ended with an error.
pub fn thread_failed(collected: &Collected) -> bool {
    collected.threads.iter().any(|t| t.error.is_some())
}

impl RunContext<'_> {
    /// The measured run (or, with a rate, the first ramp step's shape).
    pub fn main_spec(&self, workload: WorkloadConfig, seed: u64) -> PhaseSpec {
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

    /// The report of phase `spec` run with `seed`, from its collected intervals.
    pub fn report<'a>(
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
pub fn run_ramp(
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

/// Runs one phase: starts the pool's client threads together, collects their
/// intervals, and starts / stops the profiler around the measured window if asked.
pub fn run_phase(
    ctx: &RunContext<'_>,
    spec: &PhaseSpec,
) -> Result<(Collected, f64), Box<dyn Error>> {
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

/// Connection i goes to thread i mod threads and target i mod targets; with `requests`,
/// each connection's share (N / clients, the remainder to the first ones) is added to its
/// thread's quota.
pub fn plan_threads(args: &Args, addrs: &[SocketAddr], requests: Option<u64>) -> Vec<ThreadPlan> {
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
    use clap::Parser;

    use super::*;

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
}
