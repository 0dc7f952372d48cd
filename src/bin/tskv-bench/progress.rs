//! The main thread during a run: gathers each interval from every client thread, prints the
//! live progress line, writes the HdrHistogram interval log, sums the measured intervals
//! into the run's totals and samples the process's CPU use over the measured window.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use crate::limits;
use crate::stats::{new_histogram, IntervalClock, PerCommand, ThreadSummary, WorkerMessage};
use crate::sys;
use crate::workload::Command;

/// What the collector needs to know about the run.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Client threads that will report.
    pub threads: usize,
    /// Warm-up length.
    pub warmup_ns: u64,
    /// The run's time origin, shared with the client threads.
    pub base: Instant,
    /// Wall-clock time of `base`, for the interval log's StartTime.
    pub start_wall: SystemTime,
    /// Open loop: the corrected histograms are the headline.
    pub open_loop: bool,
    /// No progress line.
    pub quiet: bool,
    /// Where to write the interval log.
    pub hdr_log: Option<PathBuf>,
    /// The commands the workload sends: the ones the interval log has tags for.
    pub commands: Vec<Command>,
}

/// Everything the client threads reported.
#[derive(Debug)]
pub struct Collected {
    /// Measured statistics per command (warm-up excluded).
    pub totals: PerCommand,
    /// Requests written per command over the whole run, warm-up included.
    pub sent_all: [u64; Command::ALL.len()],
    /// How each thread finished.
    pub threads: Vec<ThreadSummary>,
    /// Process CPU time over the measured window.
    pub process_cpu_ns: u64,
    /// Wall time of the measured window as the main thread saw it.
    pub process_window_ns: u64,
}

#[derive(Default)]
struct PendingInterval {
    reports: usize,
    end_ns: u64,
    commands: PerCommand,
}

/// Receives client-thread messages until every thread is done. Sets `stop` when a thread
/// fails, so the others end too.
///
/// # Errors
/// The I/O error of creating or writing the interval log.
pub fn collect(
    rx: &Receiver<WorkerMessage>,
    options: &CollectOptions,
    stop: &AtomicBool,
) -> io::Result<Collected> {
    let mut log_file = match &options.hdr_log {
        Some(path) => Some(BufWriter::new(File::create(path)?)),
        None => None,
    };
    let mut serializer = V2DeflateSerializer::new();
    let mut log = match log_file.as_mut() {
        Some(file) => Some(
            IntervalLogWriterBuilder::new()
                .add_comment("tskv-bench latency intervals; values in nanoseconds")
                .add_comment(
                    "tags: the lower-case command name (open loop: corrected latency) and \
                     NAME-uncorrected, e.g. set/set-uncorrected",
                )
                .with_start_time(options.start_wall)
                .with_base_time(options.start_wall)
                .with_max_value_divisor(1e6)
                .begin_log_with(file, &mut serializer)?,
        ),
        None => None,
    };
    let mut state = CollectState::new(options);
    let mut done_last: Vec<Option<u32>> = vec![None; options.threads];
    let mut summaries = Vec::with_capacity(options.threads);
    let warmup_end = options.base + Duration::from_nanos(options.warmup_ns);
    let mut window_start = (options.warmup_ns == 0).then(process_sample);
    while summaries.len() < options.threads {
        let wait = match window_start {
            None => warmup_end.saturating_duration_since(Instant::now()),
            Some(_) => Duration::from_millis(250),
        };
        match rx.recv_timeout(wait) {
            Ok(WorkerMessage::Interval(report)) => {
                let pending = state.pending.entry(report.index).or_default();
                pending.reports += 1;
                pending.end_ns = pending.end_ns.max(report.end_ns);
                for (total, part) in pending.commands.iter_mut().zip(&report.commands) {
                    total.merge(part);
                }
            }
            Ok(WorkerMessage::Done(summary)) => {
                if summary.error.is_some() {
                    stop.store(true, Ordering::Relaxed);
                }
                done_last[summary.thread_index] = Some(summary.last_interval);
                summaries.push(summary);
            }
            Ok(WorkerMessage::Ready | WorkerMessage::Failed(..)) => {}
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if window_start.is_none() && Instant::now() >= warmup_end {
            window_start = Some(process_sample());
        }
        while state.is_complete(state.next_index, &done_last) {
            state.emit_next(log.as_mut())?;
        }
    }
    while state.pending.contains_key(&state.next_index) {
        state.emit_next(log.as_mut())?;
    }
    state.progress.finish();
    drop(log);
    if let Some(mut file) = log_file {
        file.flush()?;
    }
    let (end_instant, end_cpu) = process_sample();
    let (start_instant, start_cpu) = window_start.unwrap_or((end_instant, end_cpu));
    summaries.sort_by_key(|s| s.thread_index);
    Ok(Collected {
        totals: state.totals,
        sent_all: state.sent_all,
        threads: summaries,
        process_cpu_ns: duration_ns(end_cpu.saturating_sub(start_cpu)),
        process_window_ns: duration_ns(end_instant.saturating_duration_since(start_instant)),
    })
}

fn process_sample() -> (Instant, Duration) {
    (Instant::now(), sys::process_cpu_time().unwrap_or_default())
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Merged intervals waiting for their last thread, and the running totals.
struct CollectState {
    clock: IntervalClock,
    threads: usize,
    open_loop: bool,
    commands: Vec<Command>,
    pending: BTreeMap<u32, PendingInterval>,
    next_index: u32,
    totals: PerCommand,
    sent_all: [u64; Command::ALL.len()],
    progress: Progress,
}

impl CollectState {
    fn new(options: &CollectOptions) -> Self {
        Self {
            clock: IntervalClock::new(options.warmup_ns),
            threads: options.threads,
            open_loop: options.open_loop,
            commands: options.commands.clone(),
            pending: BTreeMap::new(),
            next_index: 0,
            totals: PerCommand::default(),
            sent_all: [0; Command::ALL.len()],
            progress: Progress::new(options.quiet),
        }
    }

    /// Every thread has either reported interval `index` or finished before it.
    fn is_complete(&self, index: u32, done_last: &[Option<u32>]) -> bool {
        let Some(pending) = self.pending.get(&index) else {
            return false;
        };
        let finished_before = done_last
            .iter()
            .filter(|d| d.is_some_and(|last| last < index))
            .count();
        pending.reports + finished_before == self.threads
    }

    fn emit_next(
        &mut self,
        log: Option<&mut IntervalLogWriter<'_, '_, BufWriter<File>, V2DeflateSerializer>>,
    ) -> io::Result<()> {
        let index = self.next_index;
        self.next_index += 1;
        let Some(interval) = self.pending.remove(&index) else {
            return Ok(());
        };
        let (start_ns, nominal_end_ns, warmup) = self.clock.bounds(index);
        let end_ns = interval.end_ns.min(nominal_end_ns).max(start_ns + 1);
        for (sent, stats) in self.sent_all.iter_mut().zip(&interval.commands) {
            *sent += stats.sent;
        }
        self.progress
            .show(start_ns, end_ns, warmup, &interval.commands, self.open_loop);
        if warmup {
            return Ok(());
        }
        if let Some(log) = log {
            let commands = (&interval.commands, &self.commands[..]);
            write_interval(log, start_ns, end_ns, commands, self.open_loop)?;
        }
        for (total, part) in self.totals.iter_mut().zip(&interval.commands) {
            total.merge(part);
        }
        Ok(())
    }
}

fn write_interval<W: Write>(
    log: &mut IntervalLogWriter<'_, '_, W, V2DeflateSerializer>,
    start_ns: u64,
    end_ns: u64,
    (commands, active): (&PerCommand, &[Command]),
    open_loop: bool,
) -> io::Result<()> {
    let start = Duration::from_nanos(start_ns);
    let length = Duration::from_nanos(end_ns - start_ns);
    for &command in active {
        let stats = &commands[command.index()];
        let name = command.name().to_ascii_lowercase();
        let uncorrected_tag = format!("{name}-uncorrected");
        let mut entries: Vec<(&Histogram<u64>, &str)> = Vec::new();
        if open_loop {
            entries.push((&stats.corrected, &name));
            entries.push((&stats.uncorrected, &uncorrected_tag));
        } else {
            entries.push((&stats.uncorrected, &name));
        }
        for (histogram, tag) in entries {
            log.write_histogram(histogram, start, length, Tag::new(tag))
                .map_err(|e| io::Error::other(format!("interval log: {e}")))?;
        }
    }
    Ok(())
}

/// The live progress line on stderr: rewritten in place on a terminal, one line a second
/// otherwise.
struct Progress {
    quiet: bool,
    terminal: bool,
    shown: bool,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        Self {
            quiet,
            terminal: io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn show(
        &mut self,
        start_ns: u64,
        end_ns: u64,
        warmup: bool,
        commands: &PerCommand,
        open_loop: bool,
    ) {
        // The last interval of a run can be a few milliseconds of draining replies: a
        // rate over it would be noise.
        if self.quiet || end_ns - start_ns < limits::PROGRESS_INTERVAL_MIN_NS {
            return;
        }
        let mut merged = new_histogram();
        let mut ops = 0u64;
        let mut bad = 0u64;
        for stats in commands {
            ops += stats.ok;
            bad += stats.errors + stats.unexpected;
            let latency = if open_loop {
                &stats.corrected
            } else {
                &stats.uncorrected
            };
            merged.add(latency).expect("histograms share bounds");
        }
        let seconds = (end_ns - start_ns) as f64 / 1e9;
        let p99 = if merged.is_empty() {
            "-".to_string()
        } else {
            format!("{:.0} µs", merged.value_at_quantile(0.99) as f64 / 1e3)
        };
        let mut line = format!(
            "[{:7.1}s] {:>11.0} ops/s  p99{} {:>10}",
            end_ns as f64 / 1e9,
            ops as f64 / seconds,
            if open_loop { " (corrected)" } else { "" },
            p99
        );
        if bad > 0 {
            line.push_str(&format!("  errors+unexpected {bad}"));
        }
        if warmup {
            line.push_str("  (warm-up)");
        }
        let mut stderr = io::stderr().lock();
        let _ = if self.terminal {
            write!(stderr, "\r{line}\x1b[K")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
        self.shown = true;
    }

    fn finish(&self) {
        if self.shown && self.terminal {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn interval_log_reads_back_with_tags_per_command() {
        let mut commands = PerCommand::default();
        commands[Command::Set.index()]
            .corrected
            .record(2_000)
            .unwrap();
        commands[Command::Get.index()]
            .corrected
            .record(5_000)
            .unwrap();
        commands[Command::Get.index()]
            .corrected
            .record(7_000)
            .unwrap();
        commands[Command::Get.index()]
            .uncorrected
            .record(1_000)
            .unwrap();
        let mut bytes = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        {
            let mut log = IntervalLogWriterBuilder::new()
                .with_max_value_divisor(1e6)
                .begin_log_with(&mut bytes, &mut serializer)
                .unwrap();
            let active = [Command::Set, Command::Get];
            write_interval(
                &mut log,
                1_000_000_000,
                2_000_000_000,
                (&commands, &active),
                true,
            )
            .unwrap();
        }
        let mut seen = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(interval) = entry.unwrap() {
                assert_eq!(interval.start_timestamp(), Duration::from_secs(1));
                assert_eq!(interval.duration(), Duration::from_secs(1));
                assert!(!interval.encoded_histogram().is_empty());
                // The max column is in ms (divisor 1e6 over nanoseconds).
                let max_us = (interval.max() * 1e3).round() as u64;
                seen.push((interval.tag().unwrap().as_str().to_string(), max_us));
            }
        }
        let expected = [
            ("set", 2),
            ("set-uncorrected", 0),
            ("get", 7),
            ("get-uncorrected", 1),
        ];
        let expected: Vec<(String, u64)> =
            expected.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        assert_eq!(seen, expected);
    }
}
