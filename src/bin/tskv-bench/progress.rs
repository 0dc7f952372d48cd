//! The main thread during a run: gathers each interval from every client thread, prints the
//! live progress line, writes the HdrHistogram interval log, sums the measured intervals
//! into the run's totals and samples the process's CPU use over the measured window.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use serde::Serialize;

use crate::limits;
use crate::runfile::{HLOG_FLAGS_PREFIX, HLOG_HOST_PREFIX};
use crate::stats::{new_histogram, IntervalClock, PerCommand, ThreadSummary, WorkerMessage};
use crate::sys;
use crate::workload::Command;

/// The interval log's max column is in milliseconds (values are nanoseconds).
const HLOG_MAX_VALUE_DIVISOR: f64 = 1e6;

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
    /// Prefix of this phase's interval-log tags (a ramp step's `rateR-`).
    pub tag_prefix: String,
    /// The commands the workload sends, with their report names: the ones the interval
    /// log has tags for.
    pub commands: Vec<(Command, String)>,
}

/// Everything the client threads reported.
#[derive(Debug)]
pub struct Collected {
    /// Measured statistics per command (warm-up excluded).
    pub totals: PerCommand,
    /// Requests written per command over the whole run, warm-up included.
    pub sent_all: [u64; Command::COUNT],
    /// How each thread finished.
    pub threads: Vec<ThreadSummary>,
    /// Process CPU time over the measured window.
    pub process_cpu_ns: u64,
    /// Wall time of the measured window as the main thread saw it.
    pub process_window_ns: u64,
    /// Every measured interval of at least [`limits::PROGRESS_INTERVAL_MIN_NS`].
    pub timeline: Vec<IntervalSummary>,
}

/// One measured interval over all commands, for the report's timeline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IntervalSummary {
    /// Interval end, seconds since the end of warm-up.
    pub end_s: f64,
    /// Answered requests per second of the interval.
    pub ops_per_s: f64,
    /// p99 of the headline latency (open loop: corrected), µs.
    pub p99_us: f64,
}

#[derive(Default)]
struct PendingInterval {
    reports: usize,
    end_ns: u64,
    commands: PerCommand,
}

/// The HdrHistogram interval log of a whole run (`--hdr-log`): one file for every phase
/// that logs, each interval stamped from the log's base time.
pub struct HdrLog {
    file: BufWriter<File>,
    serializer: V2DeflateSerializer,
    base: SystemTime,
}

/// The interval log writer of one phase.
type PhaseLogWriter<'a> = IntervalLogWriter<'a, 'a, BufWriter<File>, V2DeflateSerializer>;

impl HdrLog {
    /// Creates `path` and writes the header: what the tags mean, the host and the flags,
    /// and `base` as StartTime and BaseTime.
    ///
    /// # Errors
    /// The I/O error of creating or writing the file.
    pub fn create(path: &Path, base: SystemTime, host: &str, flags: &str) -> io::Result<Self> {
        let mut file = BufWriter::new(File::create(path)?);
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment("tskv-bench latency intervals; values in nanoseconds")
            .add_comment(
                "tags: the lower-case command name (open loop: corrected latency) and \
                 NAME-uncorrected, e.g. set/set-uncorrected; a rate ramp's steps prefix \
                 rateR- (R ops/s), e.g. rate2000-get",
            )
            .add_comment(&format!("{HLOG_HOST_PREFIX}{host}"))
            .add_comment(&format!("{HLOG_FLAGS_PREFIX}{flags}"))
            .with_start_time(base)
            .with_base_time(base)
            .with_max_value_divisor(HLOG_MAX_VALUE_DIVISOR)
            .begin_log_with(&mut file, &mut serializer)?;
        Ok(Self {
            file,
            serializer,
            base,
        })
    }

    /// A writer for one phase (it notes the max-value divisor again, as a comment).
    fn phase_writer(&mut self) -> io::Result<PhaseLogWriter<'_>> {
        IntervalLogWriterBuilder::new()
            .with_max_value_divisor(HLOG_MAX_VALUE_DIVISOR)
            .begin_log_with(&mut self.file, &mut self.serializer)
    }

    /// Flushes what is buffered.
    ///
    /// # Errors
    /// The I/O error of writing the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Receives client-thread messages until every thread is done, writing each measured
/// interval into `hdr_log` if given. Sets `stop` when a thread fails, so the others end too.
///
/// # Errors
/// The I/O error of writing the interval log.
pub fn collect(
    rx: &Receiver<WorkerMessage>,
    options: &CollectOptions,
    stop: &AtomicBool,
    hdr_log: Option<&mut HdrLog>,
) -> io::Result<Collected> {
    let offset_ns = hdr_log.as_ref().map_or(0, |log| {
        duration_ns(
            options
                .start_wall
                .duration_since(log.base)
                .unwrap_or_default(),
        )
    });
    let mut log = match hdr_log {
        Some(log) => Some(log.phase_writer()?),
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
            state.emit_next(log.as_mut(), offset_ns)?;
        }
    }
    while state.pending.contains_key(&state.next_index) {
        state.emit_next(log.as_mut(), offset_ns)?;
    }
    state.progress.finish();
    drop(log);
    let (end_instant, end_cpu) = process_sample();
    let (start_instant, start_cpu) = window_start.unwrap_or((end_instant, end_cpu));
    summaries.sort_by_key(|s| s.thread_index);
    Ok(Collected {
        totals: state.totals,
        sent_all: state.sent_all,
        threads: summaries,
        process_cpu_ns: duration_ns(end_cpu.saturating_sub(start_cpu)),
        process_window_ns: duration_ns(end_instant.saturating_duration_since(start_instant)),
        timeline: state.timeline,
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
    commands: Vec<(Command, String)>,
    tag_prefix: String,
    timeline: Vec<IntervalSummary>,
    pending: BTreeMap<u32, PendingInterval>,
    next_index: u32,
    totals: PerCommand,
    sent_all: [u64; Command::COUNT],
    progress: Progress,
}

impl CollectState {
    fn new(options: &CollectOptions) -> Self {
        Self {
            clock: IntervalClock::new(options.warmup_ns),
            threads: options.threads,
            open_loop: options.open_loop,
            commands: options.commands.clone(),
            tag_prefix: options.tag_prefix.clone(),
            timeline: Vec::new(),
            pending: BTreeMap::new(),
            next_index: 0,
            totals: PerCommand::default(),
            sent_all: [0; Command::COUNT],
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
        log: Option<&mut PhaseLogWriter<'_>>,
        offset_ns: u64,
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
            let span = (offset_ns + start_ns, end_ns - start_ns);
            write_interval(log, span, commands, &self.tag_prefix, self.open_loop)?;
        }
        if end_ns - start_ns >= limits::PROGRESS_INTERVAL_MIN_NS {
            let (ops, _, merged) = headline(&interval.commands, self.open_loop);
            let seconds = (end_ns - start_ns) as f64 / 1e9;
            self.timeline.push(IntervalSummary {
                end_s: end_ns.saturating_sub(self.clock.warmup_ns()) as f64 / 1e9,
                ops_per_s: ops as f64 / seconds,
                p99_us: merged.value_at_quantile(0.99) as f64 / 1e3,
            });
        }
        for (total, part) in self.totals.iter_mut().zip(&interval.commands) {
            total.merge(part);
        }
        Ok(())
    }
}

/// Writes one interval: `(start, length)` in ns from the log's base time, a histogram per
/// active command (two in open loop), tagged `PREFIX` + lower-case name.
fn write_interval<W: Write>(
    log: &mut IntervalLogWriter<'_, '_, W, V2DeflateSerializer>,
    (start_ns, length_ns): (u64, u64),
    (commands, active): (&PerCommand, &[(Command, String)]),
    tag_prefix: &str,
    open_loop: bool,
) -> io::Result<()> {
    let start = Duration::from_nanos(start_ns);
    let length = Duration::from_nanos(length_ns);
    for (command, name) in active {
        let stats = &commands[command.index()];
        // A tag holds no spaces or commas (templates are named by their first word).
        let name = format!("{tag_prefix}{}", name.to_ascii_lowercase()).replace([' ', ','], "_");
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

/// An interval over all commands: answered requests, error and unexpected replies, and
/// the merged headline latency (open loop: corrected).
fn headline(commands: &PerCommand, open_loop: bool) -> (u64, u64, Histogram<u64>) {
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
        if !latency.is_empty() {
            merged.add(latency).expect("histograms share bounds");
        }
    }
    (ops, bad, merged)
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
        let (ops, bad, merged) = headline(commands, open_loop);
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
            let active = [(Command::Set, "SET".into()), (Command::Get, "GET".into())];
            write_interval(
                &mut log,
                (1_000_000_000, 1_000_000_000),
                (&commands, &active),
                "",
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
