//! The final report: a table per command on stdout (ops/s, percentiles in µs, errors,
//! unexpected replies; open loop both corrected and uncorrected rows), the client's own CPU
//! use with a warning when a thread was near saturation, and the same as JSON. The JSON also
//! holds, per command, each latency's `spectrum` as `[percentile %, latency µs]` points (what
//! [`crate::plot`] draws) and the phase's `timeline`: ops/s and p99 per measured second.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::Args;
use crate::host::HostManifest;
use crate::limits;
use crate::plot::spectrum_points;
use crate::progress::Collected;
use crate::ramp::StepResult;
use crate::stats::CommandStats;
use crate::workload::Command;

/// Latency percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p99_9_us: f64,
    /// 99.99th percentile.
    pub p99_99_us: f64,
    /// Largest value.
    pub max_us: f64,
}

impl Percentiles {
    /// Summarises a nanosecond histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1e3;
        Self {
            count: h.len(),
            mean_us: if h.is_empty() { 0.0 } else { h.mean() / 1e3 },
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p99_9_us: us(h.value_at_quantile(0.999)),
            p99_99_us: us(h.value_at_quantile(0.9999)),
            max_us: us(h.max()),
        }
    }
}

/// What one phase of a run (load, create-series, the measured run, a ramp step) was.
#[derive(Debug, Clone)]
pub struct PhaseInfo {
    /// `run`, `load`, `create-series` or `ramp step N`.
    pub label: String,
    /// Open loop at this many ops/s; `None`: closed loop.
    pub rate_per_s: Option<f64>,
    /// Warm-up before the phase's measured window.
    pub warmup_s: f64,
    /// One line saying what was sent.
    pub description: String,
    /// The commands the phase sends, in report order, with their report names.
    pub commands: Vec<(Command, String)>,
    /// Requests each connection keeps outstanding at most.
    pub pipeline: usize,
}

/// Everything about a finished phase that the report shows.
pub struct RunReport<'a> {
    /// The flags.
    pub args: &'a Args,
    /// The phase.
    pub phase: &'a PhaseInfo,
    /// The seed actually used.
    pub seed: u64,
    /// Resolved server addresses.
    pub targets: Vec<String>,
    /// What the client threads reported.
    pub collected: &'a Collected,
    /// The machine.
    pub host: &'a HostManifest,
    /// Wall-clock start, seconds since the Unix epoch.
    pub started_unix_s: f64,
}

/// One table row: a command (or all of them) and one kind of latency.
struct Row<'a> {
    name: &'a str,
    latency: &'static str,
    ok: u64,
    errors: u64,
    unexpected: u64,
    histogram: &'a Histogram<u64>,
}

impl RunReport<'_> {
    fn open_loop(&self) -> bool {
        self.phase.rate_per_s.is_some()
    }

    /// Measured window in seconds: end of warm-up to the last reply of a measured request.
    pub fn window_s(&self) -> f64 {
        let warmup_ns = secs_to_ns(self.phase.warmup_s);
        let last = self
            .collected
            .threads
            .iter()
            .filter_map(|t| t.last_measured_reply_ns)
            .max();
        last.map_or(0.0, |l| l.saturating_sub(warmup_ns) as f64 / 1e9)
    }

    fn all_commands(&self) -> CommandStats {
        let mut all = CommandStats::default();
        for stats in &self.collected.totals {
            all.merge(stats);
        }
        all
    }

    fn pinned_cores(&self) -> (usize, String) {
        match &self.args.cpus {
            Some(cpus) => {
                let mut distinct = cpus.0.clone();
                distinct.sort_unstable();
                distinct.dedup();
                (distinct.len(), format!("pinned core(s) {cpus}"))
            }
            None => {
                let n = self.host.cores_available.unwrap_or(1);
                (n, "available core(s), unpinned".to_string())
            }
        }
    }

    /// Process CPU use over the measured window: % of one core, % of the pinned cores.
    pub fn cpu_pct(&self) -> (f64, f64) {
        let c = self.collected;
        if c.process_window_ns == 0 {
            return (0.0, 0.0);
        }
        let one_core = c.process_cpu_ns as f64 / c.process_window_ns as f64 * 100.0;
        (one_core, one_core / self.pinned_cores().0 as f64)
    }

    /// The share of its measured window each thread spent on the CPU, in %.
    pub fn busy_pct(&self) -> Vec<f64> {
        self.collected
            .threads
            .iter()
            .map(|t| {
                if t.window_ns == 0 {
                    0.0
                } else {
                    t.cpu_ns as f64 / t.window_ns as f64 * 100.0
                }
            })
            .collect()
    }

    /// The human-readable report.
    pub fn table(&self) -> String {
        let a = self.args;
        let mut out = String::new();
        let mode = match self.phase.rate_per_s {
            Some(rate) => format!(
                "open loop at {rate} ops/s ({})",
                if a.poisson {
                    "Poisson arrivals"
                } else {
                    "evenly spaced"
                }
            ),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(
            out,
            "tskv-bench {}: {mode}, {} connection(s) x pipeline {} over {} thread(s), target(s) {}",
            self.phase.label,
            a.clients,
            self.phase.pipeline,
            a.threads,
            self.targets.join(" ")
        );
        let _ = writeln!(
            out,
            "measured {:.2} s after {} s warm-up; {}; seed {}",
            self.window_s(),
            self.phase.warmup_s,
            self.phase.description,
            self.seed
        );
        let _ = writeln!(
            out,
            "\n{:<9} {:<12} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "command",
            "latency",
            "ops/s",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "p99.9 µs",
            "p99.99 µs",
            "max µs",
            "errors",
            "unexpected"
        );
        let all = self.all_commands();
        let window_s = self.window_s();
        for row in self.rows(&all) {
            let p = Percentiles::of(row.histogram);
            let ops = per_s(row.ok, window_s);
            let _ = writeln!(
                out,
                "{:<9} {:<12} {:>11.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>10}",
                row.name, row.latency, ops, p.p50_us, p.p90_us, p.p99_us, p.p99_9_us, p.p99_99_us,
                p.max_us, row.errors, row.unexpected
            );
        }
        out.push('\n');
        self.notes(&mut out, &all);
        out
    }

    fn rows<'a>(&'a self, all: &'a CommandStats) -> Vec<Row<'a>> {
        let mut rows = Vec::new();
        let named = self
            .phase
            .commands
            .iter()
            .map(|(c, name)| (name.as_str(), &self.collected.totals[c.index()]))
            .chain(std::iter::once(("ALL", all)));
        for (name, stats) in named {
            let mut push = |latency, histogram| {
                rows.push(Row {
                    name,
                    latency,
                    ok: stats.ok,
                    errors: stats.errors,
                    unexpected: stats.unexpected,
                    histogram,
                })
            };
            if self.open_loop() {
                push("corrected", &stats.corrected);
                push("uncorrected", &stats.uncorrected);
            } else {
                push("closed-loop", &stats.uncorrected);
            }
        }
        rows
    }

    fn notes(&self, out: &mut String, all: &CommandStats) {
        if all.samples > 0
            || self
                .phase
                .commands
                .iter()
                .any(|(c, _)| *c == Command::TsMadd)
        {
            let window_s = self.window_s();
            let _ = writeln!(
                out,
                "samples stored: {} ({:.0} samples/s); TS.MADD errors count failed samples",
                all.samples,
                per_s(all.samples, window_s)
            );
        }
        if self.open_loop() {
            let _ = writeln!(
                out,
                "behind schedule (sent late because the connection's pipeline was full): {}",
                all.behind_schedule
            );
            let lag = Percentiles::of(&all.send_lag);
            let _ = writeln!(
                out,
                "send lag (actual - intended send time): p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
                lag.p50_us, lag.p99_us, lag.p99_9_us, lag.max_us
            );
        }
        let lost: u64 = self.collected.threads.iter().map(|t| t.lost).sum();
        let unsent: u64 = self.collected.threads.iter().map(|t| t.unsent).sum();
        if lost + unsent > 0 {
            let _ = writeln!(
                out,
                "warning: {lost} request(s) never answered and {unsent} scheduled request(s) never \
                 sent within the {} s drain timeout",
                limits::DRAIN_TIMEOUT_NS / 1_000_000_000
            );
        }
        let (one_core, of_pinned) = self.cpu_pct();
        let (_, cores) = self.pinned_cores();
        let _ = writeln!(
            out,
            "client CPU: {one_core:.1}% of one core, {of_pinned:.1}% of the {cores}"
        );
        for (thread, busy) in self.collected.threads.iter().zip(self.busy_pct()) {
            let cpu = thread
                .cpu
                .map_or("unpinned".to_string(), |c| format!("cpu {c}"));
            let _ = writeln!(
                out,
                "  thread {} ({cpu}): busy {busy:.1}%",
                thread.thread_index
            );
            if busy > limits::BUSY_WARN_PCT {
                let _ = writeln!(
                    out,
                    "warning: client thread {} was busy {busy:.0}% of the measured window: the \
                     client is near saturation and may be what is measured",
                    thread.thread_index
                );
            }
        }
        for thread in &self.collected.threads {
            if let Some(error) = &thread.error {
                let _ = writeln!(out, "error: client thread {}: {error}", thread.thread_index);
            }
        }
    }

    /// This phase as a ramp row at `target_per_s`.
    pub fn step_result(&self, target_per_s: f64) -> StepResult {
        let all = self.all_commands();
        let window_s = self.window_s();
        let corrected = Percentiles::of(&all.corrected);
        StepResult {
            target_per_s,
            achieved_per_s: per_s(all.ok, window_s),
            corrected_p50_us: corrected.p50_us,
            corrected_p99_us: corrected.p99_us,
            corrected_p99_9_us: corrected.p99_9_us,
            behind_schedule: all.behind_schedule,
            errors: all.errors + all.unexpected,
            lost_or_unsent: self
                .collected
                .threads
                .iter()
                .map(|t| t.lost + t.unsent)
                .sum(),
        }
    }

    /// The JSON report: what [`RunReport::run_json`] says about the whole run, then
    /// [`RunReport::phase_json`].
    pub fn json(&self) -> Value {
        let mut report = self.run_json();
        if let (Value::Object(report), Value::Object(phase)) = (&mut report, self.phase_json()) {
            report.extend(phase);
        }
        report
    }

    /// The run's context: tool, flags, seed, targets, host.
    pub fn run_json(&self) -> Value {
        json!({
            "tool": "tskv-bench",
            "version": env!("CARGO_PKG_VERSION"),
            "started_unix_s": self.started_unix_s,
            "flags": self.args,
            "argv": std::env::args().collect::<Vec<_>>(),
            "seed": self.seed,
            "targets": self.targets,
            "host": self.host,
        })
    }

    /// This phase's statistics.
    pub fn phase_json(&self) -> Value {
        let window_s = self.window_s();
        let command_json = |stats: &CommandStats, sent: u64| {
            let mut latency = serde_json::Map::new();
            if self.open_loop() {
                latency.insert("corrected".into(), json!(Percentiles::of(&stats.corrected)));
                latency.insert("send_lag".into(), json!(Percentiles::of(&stats.send_lag)));
            }
            latency.insert(
                "uncorrected".into(),
                json!(Percentiles::of(&stats.uncorrected)),
            );
            let mut spectrum = serde_json::Map::new();
            if self.open_loop() {
                spectrum.insert("corrected".into(), json!(spectrum_points(&stats.corrected)));
            }
            spectrum.insert(
                "uncorrected".into(),
                json!(spectrum_points(&stats.uncorrected)),
            );
            json!({
                "sent": sent,
                "ops": stats.ok,
                "ops_per_s": per_s(stats.ok, window_s),
                "errors": stats.errors,
                "samples": stats.samples,
                "samples_per_s": per_s(stats.samples, window_s),
                "unexpected": stats.unexpected,
                "behind_schedule": stats.behind_schedule,
                "latency_us": latency,
                "spectrum": spectrum,
            })
        };
        let mut commands = serde_json::Map::new();
        for (c, name) in &self.phase.commands {
            let stats = &self.collected.totals[c.index()];
            commands.insert(
                name.to_ascii_lowercase(),
                command_json(stats, self.collected.sent_all[c.index()]),
            );
        }
        let all = self.all_commands();
        let sent_all: u64 = self.collected.sent_all.iter().sum();
        let (one_core, of_pinned) = self.cpu_pct();
        let threads: Vec<Value> = self
            .collected
            .threads
            .iter()
            .zip(self.busy_pct())
            .map(|(t, busy)| {
                json!({
                    "index": t.thread_index,
                    "cpu": t.cpu,
                    "busy_pct": busy,
                    "cpu_s": t.cpu_ns as f64 / 1e9,
                    "window_s": t.window_ns as f64 / 1e9,
                    "lost": t.lost,
                    "unsent": t.unsent,
                    "error": t.error,
                })
            })
            .collect();
        json!({
            "phase": self.phase.label,
            "workload": self.phase.description,
            "rate_per_s": self.phase.rate_per_s,
            "phase_started_unix_s": self.started_unix_s,
            "mode": if self.open_loop() { "open" } else { "closed" },
            "window_s": window_s,
            "commands": commands,
            "total": command_json(&all, sent_all),
            "lost": self.collected.threads.iter().map(|t| t.lost).sum::<u64>(),
            "unsent": self.collected.threads.iter().map(|t| t.unsent).sum::<u64>(),
            "timeline": self.collected.timeline,
            "cpu": {
                "process_pct_of_one_core": one_core,
                "process_pct_of_pinned_cores": of_pinned,
                "pinned_cores": self.pinned_cores().0,
                "window_s": self.collected.process_window_ns as f64 / 1e9,
                "busy_warn_pct": limits::BUSY_WARN_PCT,
                "threads": threads,
            },
        })
    }
}

/// `count` per second over a window of `window_s` seconds; 0 for an empty window.
fn per_s(count: u64, window_s: f64) -> f64 {
    if window_s > 0.0 {
        count as f64 / window_s
    } else {
        0.0
    }
}

/// Seconds (a flag) to nanoseconds.
pub fn secs_to_ns(secs: f64) -> u64 {
    (secs * 1e9).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn percentiles_are_in_microseconds() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((p.p50_us - 500.0).abs() < 1.0, "{}", p.p50_us);
        assert!((p.p99_us - 990.0).abs() < 1.0, "{}", p.p99_us);
        assert!((p.max_us - 1000.0).abs() < 1.0, "{}", p.max_us);
        assert_eq!(Percentiles::of(&new_histogram()).count, 0);
    }
}
