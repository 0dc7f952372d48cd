//! What a client thread records per interval and per command, and what it hands to the main
//! thread. Latencies are nanoseconds in HdrHistograms.

use hdrhistogram::Histogram;

use crate::limits;
use crate::workload::Command;

/// An empty latency histogram (1 ns .. [`limits::HISTOGRAM_MAX_NS`], 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, limits::HISTOGRAM_MAX_NS, limits::HISTOGRAM_SIGFIG)
        .expect("static histogram bounds are valid")
}

/// One command's counts and latencies over an interval (or, merged, over the run).
#[derive(Debug, Clone)]
pub struct CommandStats {
    /// Requests written to a socket (warm-up included).
    pub sent: u64,
    /// Replies of the expected kind.
    pub ok: u64,
    /// Error replies (`-...`); for `TS.MADD`, failed samples (error elements of its reply).
    pub errors: u64,
    /// Samples stored by multi-sample writes (`TS.MADD`: the non-error elements of its
    /// reply); 0 for other commands.
    pub samples: u64,
    /// Replies of the wrong kind (e.g. a SET answered by anything but `+OK`).
    pub unexpected: u64,
    /// Open loop: requests sent late because their connection's pipeline was full.
    pub behind_schedule: u64,
    /// Open loop: latency from the intended send time (coordinated omission corrected).
    pub corrected: Histogram<u64>,
    /// Latency from the actual send (all a closed loop has).
    pub uncorrected: Histogram<u64>,
    /// Open loop: actual send time − intended send time of each measured request: how late
    /// the client itself was (a full pipeline, or a slow wake-up).
    pub send_lag: Histogram<u64>,
}

impl Default for CommandStats {
    fn default() -> Self {
        Self {
            sent: 0,
            ok: 0,
            errors: 0,
            samples: 0,
            unexpected: 0,
            behind_schedule: 0,
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            send_lag: new_histogram(),
        }
    }
}

impl CommandStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &CommandStats) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.errors += other.errors;
        self.samples += other.samples;
        self.unexpected += other.unexpected;
        self.behind_schedule += other.behind_schedule;
        // Most commands are idle in most runs: skip scanning their empty histograms.
        for (into, from) in [
            (&mut self.corrected, &other.corrected),
            (&mut self.uncorrected, &other.uncorrected),
            (&mut self.send_lag, &other.send_lag),
        ] {
            if !from.is_empty() {
                into.add(from).expect("histograms share bounds");
            }
        }
    }
}

/// Per-command statistics, indexed by [`Command::index`].
pub type PerCommand = [CommandStats; Command::COUNT];

/// The boundaries of the progress intervals, the same for every thread: whole seconds from
/// the start during warm-up (the last one cut at the end of warm-up), then whole seconds
/// from the end of warm-up.
#[derive(Debug, Clone, Copy)]
pub struct IntervalClock {
    warmup_ns: u64,
    warmup_intervals: u64,
}

impl IntervalClock {
    /// Intervals for a run whose first `warmup_ns` are warm-up.
    pub fn new(warmup_ns: u64) -> Self {
        Self {
            warmup_ns,
            warmup_intervals: warmup_ns.div_ceil(limits::INTERVAL_NS),
        }
    }

    /// Length of the warm-up, ns from the run's start.
    pub fn warmup_ns(&self) -> u64 {
        self.warmup_ns
    }

    /// Start and end (ns since the run's start) of interval `index`, and whether it is warm-up.
    pub fn bounds(&self, index: u32) -> (u64, u64, bool) {
        let index = u64::from(index);
        if index < self.warmup_intervals {
            let start = index * limits::INTERVAL_NS;
            (
                start,
                (start + limits::INTERVAL_NS).min(self.warmup_ns),
                true,
            )
        } else {
            let start = self.warmup_ns + (index - self.warmup_intervals) * limits::INTERVAL_NS;
            (start, start + limits::INTERVAL_NS, false)
        }
    }
}

/// One thread's statistics for one interval.
#[derive(Debug)]
pub struct IntervalReport {
    /// Which interval (see [`IntervalClock`]).
    pub index: u32,
    /// Interval end as the thread saw it, ns since the run's start (the last interval of a
    /// thread ends early, when it finishes).
    pub end_ns: u64,
    /// The statistics. During warm-up they hold warm-up requests only, afterwards measured
    /// requests only.
    pub commands: PerCommand,
}

/// How a client thread finished.
#[derive(Debug, Clone, Default)]
pub struct ThreadSummary {
    /// Which client thread.
    pub thread_index: usize,
    /// The CPU it was pinned to.
    pub cpu: Option<usize>,
    /// Its last interval index; every interval up to it has been sent.
    pub last_interval: u32,
    /// CPU time it used over its measured window.
    pub cpu_ns: u64,
    /// Wall time of its measured window (end of warm-up to its finish).
    pub window_ns: u64,
    /// When it received its last reply to a measured request, ns since the run's start.
    pub last_measured_reply_ns: Option<u64>,
    /// Requests sent but never answered before the drain timeout.
    pub lost: u64,
    /// Open loop: requests due in the run that were never sent before the drain timeout.
    pub unsent: u64,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

/// Messages from client threads to the main thread.
#[derive(Debug)]
pub enum WorkerMessage {
    /// Connected and waiting for the start.
    Ready,
    /// Could not start (pinning or connecting failed).
    Failed(usize, String),
    /// One finished interval.
    Interval(Box<IntervalReport>),
    /// The thread's last message.
    Done(ThreadSummary),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_cut_at_the_end_of_warmup() {
        let clock = IntervalClock::new(1_500_000_000);
        assert_eq!(clock.bounds(0), (0, 1_000_000_000, true));
        assert_eq!(clock.bounds(1), (1_000_000_000, 1_500_000_000, true));
        assert_eq!(clock.bounds(2), (1_500_000_000, 2_500_000_000, false));
        let none = IntervalClock::new(0);
        assert_eq!(none.bounds(0), (0, 1_000_000_000, false));
    }

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = CommandStats::default();
        let mut b = CommandStats::default();
        a.ok = 1;
        a.uncorrected.record(100).unwrap();
        b.ok = 2;
        b.errors = 1;
        b.uncorrected.record(300).unwrap();
        a.merge(&b);
        assert_eq!((a.ok, a.errors, a.uncorrected.len()), (3, 1, 2));
    }
}
