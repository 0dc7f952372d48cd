//! A client thread's statistics of the current interval: what it records per request sent
//! and per reply, and each finished interval sent to the main thread.

use std::sync::mpsc::Sender;

use super::conn::InFlight;
use crate::stats::{CommandStats, IntervalClock, IntervalReport, PerCommand, WorkerMessage};
use crate::workload::{Command, Outcome};

/// The current interval's statistics; sends each finished interval to the main thread.
pub(super) struct Recorder {
    /// The client thread's index, for its summary.
    pub(super) thread_index: usize,
    clock: IntervalClock,
    /// The current interval (see [`IntervalClock`]).
    pub(super) index: u32,
    /// When the current interval ends, ns since the phase's start.
    pub(super) end_ns: u64,
    warmup: bool,
    commands: PerCommand,
    open_loop: bool,
    /// When the last reply to a measured request arrived, ns since the phase's start.
    pub(super) last_measured_reply_ns: Option<u64>,
    tx: Sender<WorkerMessage>,
}

impl Recorder {
    /// A recorder at the start of a phase whose first `warmup_ns` are warm-up, sending its
    /// intervals on `tx`; `open_loop` also records corrected latencies and send lag.
    pub(super) fn new(
        thread_index: usize,
        warmup_ns: u64,
        open_loop: bool,
        tx: Sender<WorkerMessage>,
    ) -> Self {
        let clock = IntervalClock::new(warmup_ns);
        let (_, end_ns, warmup) = clock.bounds(0);
        Self {
            thread_index,
            clock,
            index: 0,
            end_ns,
            warmup,
            commands: PerCommand::default(),
            open_loop,
            last_measured_reply_ns: None,
            tx,
        }
    }

    /// Sends every interval that ended by `now_ns`.
    pub(super) fn roll_until(&mut self, now_ns: u64) {
        while now_ns >= self.end_ns {
            self.emit(self.end_ns);
            self.index += 1;
            let (_, end_ns, warmup) = self.clock.bounds(self.index);
            self.end_ns = end_ns;
            self.warmup = warmup;
        }
    }

    pub(super) fn emit(&mut self, end_ns: u64) {
        let report = IntervalReport {
            index: self.index,
            end_ns,
            commands: std::mem::take(&mut self.commands),
        };
        // The main thread only goes away after every Done, so a failed send changes nothing.
        let _ = self.tx.send(WorkerMessage::Interval(Box::new(report)));
    }

    pub(super) fn on_send(&mut self, command: Command, measured: bool, behind: bool, lag_ns: u64) {
        let stats = &mut self.commands[command.index()];
        stats.sent += 1;
        if measured && self.open_loop {
            stats.send_lag.saturating_record(lag_ns);
            if behind {
                stats.behind_schedule += 1;
            }
        }
    }

    pub(super) fn on_reply(&mut self, request: &InFlight, outcome: Outcome, now_ns: u64) {
        // A warm-up request answered after the warm-up belongs to no interval.
        if request.measured == self.warmup {
            return;
        }
        let stats = &mut self.commands[request.request.command.index()];
        let count_success = |stats: &mut CommandStats| {
            stats.ok += 1;
            stats
                .uncorrected
                .saturating_record(now_ns.saturating_sub(request.sent_ns));
            if self.open_loop {
                stats
                    .corrected
                    .saturating_record(now_ns.saturating_sub(request.intended_ns));
            }
        };
        match outcome {
            Outcome::Ok => count_success(stats),
            Outcome::Error => stats.errors += 1,
            Outcome::Unexpected => stats.unexpected += 1,
            Outcome::Samples { stored, failed } => {
                stats.samples += stored;
                stats.errors += failed;
                if failed == 0 {
                    count_success(stats);
                }
            }
        }
        if request.measured {
            self.last_measured_reply_ns = Some(now_ns);
        }
    }
}
