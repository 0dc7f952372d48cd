//! # tskv-bench — a load generator for RESP servers (tskv, Redis)
//!
//! ```text
//!  cli (flags) ──► main: plan threads and connections ──► engine: one epoll loop per thread
//!                                                            │  workload ─► keydist
//!                                                            │  resp_client (encode, parse)
//!                     report ◄── progress (main thread) ◄────┘  stats, once a second
//! ```
//!
//! * [`cli`] holds the flags and [`limits`] every limit.
//! * [`workload`] draws requests (SET/GET mix, keys from [`keydist`], values).
//! * [`resp_client`] encodes commands and parses replies incrementally.
//! * [`engine`] runs the client threads, closed or open loop, over [`sys`] (epoll, CPU clocks:
//!   the only `unsafe`).
//! * [`stats`] is what a thread records per interval; [`progress`] gathers the intervals on
//!   the main thread (progress line, HdrHistogram log, totals); [`report`] prints the table and
//!   the JSON with the [`host`] manifest.

mod cli;
mod engine;
mod host;
mod keydist;
mod limits;
mod progress;
mod report;
mod resp_client;
mod stats;
mod sys;
mod workload;

use std::error::Error;
use std::io::{BufWriter, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;

use crate::cli::Args;
use crate::engine::{ConnectionPlan, EngineConfig, OpenLoop, ThreadPlan};
use crate::progress::CollectOptions;
use crate::report::{secs_to_ns, RunReport};
use crate::stats::WorkerMessage;
use crate::workload::{Workload, WorkloadConfig};

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tskv-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, Box<dyn Error>> {
    args.validate()?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let workload = WorkloadConfig {
        ratio: args.ratio,
        keys: args.keys,
        key_dist: args.key_dist,
        key_prefix: args.key_prefix.as_bytes().to_vec(),
        value_size: args.value_size,
    };
    if let Some(count) = args.dump_keys {
        dump_keys(&workload, seed, args.threads, count)?;
        return Ok(ExitCode::SUCCESS);
    }
    let addrs = resolve(&args.target_strings())?;
    let config = Arc::new(EngineConfig {
        pipeline: args.pipeline,
        open_loop: args.rate.map(|rate_per_s| OpenLoop {
            rate_per_s,
            poisson: args.poisson,
        }),
        warmup_ns: secs_to_ns(args.warmup),
        duration_ns: args.duration_secs().map(secs_to_ns),
        clients_total: args.clients,
        threads: args.threads,
        seed,
        workload,
    });
    if let Some(cpus) = &args.cpus {
        // The main thread only merges once a second; keep it off the server's cores too.
        core_affinity::set_for_current(core_affinity::CoreId { id: cpus.0[0] });
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    let mut starts = Vec::new();
    for plan in plan_threads(args, &addrs) {
        let (start_tx, start_rx) = mpsc::channel();
        starts.push(start_tx);
        handles.push(engine::spawn_thread(
            Arc::clone(&config),
            plan,
            tx.clone(),
            start_rx,
            Arc::clone(&stop),
        )?);
    }
    drop(tx);

    let failures = wait_until_connected(&rx, args.threads);
    if !failures.is_empty() {
        for start in &starts {
            let _ = start.send(None);
        }
        for handle in handles {
            let _ = handle.join();
        }
        return Err(failures.join("; ").into());
    }
    let base = Instant::now();
    let start_wall = SystemTime::now();
    for start in &starts {
        let _ = start.send(Some(base));
    }
    let options = CollectOptions {
        threads: args.threads,
        warmup_ns: config.warmup_ns,
        base,
        start_wall,
        open_loop: config.open_loop.is_some(),
        quiet: args.quiet,
        hdr_log: args.hdr_log.clone(),
    };
    let collected = progress::collect(&rx, &options, &stop)?;
    for handle in handles {
        if handle.join().is_err() {
            return Err("a client thread panicked".into());
        }
    }

    let report = RunReport {
        args,
        seed,
        targets: addrs.iter().map(ToString::to_string).collect(),
        collected: &collected,
        host: host::HostManifest::collect(),
        started_unix_s: start_wall
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let failed = collected.threads.iter().any(|t| t.error.is_some());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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

/// Connection i goes to thread i mod threads and target i mod targets; with `--requests`,
/// each connection's share (N / clients, the remainder to the first ones) is added to its
/// thread's quota.
fn plan_threads(args: &Args, addrs: &[SocketAddr]) -> Vec<ThreadPlan> {
    let mut plans: Vec<ThreadPlan> = (0..args.threads)
        .map(|thread_index| ThreadPlan {
            thread_index,
            cpu: args.cpus.as_ref().map(|c| c.0[thread_index % c.0.len()]),
            connections: Vec::new(),
            quota: args.requests.map(|_| 0),
        })
        .collect();
    let clients = args.clients as u64;
    for global_index in 0..args.clients {
        let plan = &mut plans[global_index % args.threads];
        plan.connections.push(ConnectionPlan {
            global_index,
            addr: addrs[global_index % addrs.len()],
        });
        if let (Some(quota), Some(total)) = (&mut plan.quota, args.requests) {
            *quota += total / clients + u64::from((global_index as u64) < total % clients);
        }
    }
    plans
}

/// Waits for every thread's Ready or Failed and returns the failures.
fn wait_until_connected(rx: &mpsc::Receiver<WorkerMessage>, threads: usize) -> Vec<String> {
    let mut failures = Vec::new();
    let mut answered = 0;
    while answered < threads {
        match rx.recv() {
            Ok(WorkerMessage::Ready) => answered += 1,
            Ok(WorkerMessage::Failed(thread, message)) => {
                answered += 1;
                failures.push(format!("client thread {thread}: {message}"));
            }
            Ok(_) => {}
            Err(_) => {
                failures.push("a client thread ended before connecting".into());
                break;
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
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
        let plans = plan_threads(&args, &addrs);
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
