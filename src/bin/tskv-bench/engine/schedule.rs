//! Rate control: when a request may be issued. A connection's [`Schedule`] of intended send
//! times (open loop), and the [`Issuer`] that decides whether a request belongs to the phase
//! (warm-up, measured window, `--requests` quota, SIGINT) and issues it.

use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp};

use super::conn::{Conn, InFlight};
use super::recorder::Recorder;
use super::EngineConfig;
use crate::workload::{Command, Workload};

/// Open-loop parameters.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoop {
    /// Total intended requests per second over all connections.
    pub rate_per_s: f64,
    /// Exponential gaps instead of even spacing.
    pub poisson: bool,
}

/// A connection's intended send times (open loop), ns since the run's start.
#[derive(Debug, Clone)]
pub(super) enum Schedule {
    Closed,
    Even {
        phase_ns: f64,
        period_ns: f64,
        issued: u64,
    },
    Poisson {
        next_ns: f64,
        gap: Exp<f64>,
    },
}

impl Schedule {
    pub(super) fn new(config: &EngineConfig, global_index: usize, rng: &mut SmallRng) -> Self {
        let Some(open) = config.open_loop else {
            return Schedule::Closed;
        };
        let period_ns = config.clients_total as f64 * 1e9 / open.rate_per_s;
        if open.poisson {
            let gap = Exp::new(1.0 / period_ns).expect("positive rate");
            Schedule::Poisson {
                next_ns: gap.sample(rng),
                gap,
            }
        } else {
            Schedule::Even {
                phase_ns: period_ns * global_index as f64 / config.clients_total as f64,
                period_ns,
                issued: 0,
            }
        }
    }

    pub(super) fn next_ns(&self) -> u64 {
        match self {
            Schedule::Closed => 0,
            Schedule::Even {
                phase_ns,
                period_ns,
                issued,
            } => (phase_ns + *issued as f64 * period_ns) as u64,
            Schedule::Poisson { next_ns, .. } => *next_ns as u64,
        }
    }

    pub(super) fn advance(&mut self, rng: &mut SmallRng) {
        match self {
            Schedule::Closed => {}
            Schedule::Even { issued, .. } => *issued += 1,
            Schedule::Poisson { next_ns, gap } => *next_ns += gap.sample(rng),
        }
    }
}

/// Decides whether a request may be issued and issues it.
pub(super) struct Issuer {
    /// The thread's request stream.
    pub(super) workload: Workload,
    /// Most requests outstanding per connection.
    pub(super) pipeline: usize,
    /// Closed loop: refill a connection only once all its requests were answered.
    pub(super) pipeline_batch: bool,
    /// End of the warm-up, ns since the phase's start.
    pub(super) warmup_end_ns: u64,
    /// No request intended at or after this is issued (`--duration`, or SIGINT).
    pub(super) issue_end_ns: Option<u64>,
    /// Measured requests this thread may still issue (`--requests`).
    pub(super) quota_left: Option<u64>,
    /// SIGINT arrived: nothing more is issued, warm-up or not.
    pub(super) interrupted: bool,
}

impl Issuer {
    /// Whether a request intended at `intended_ns` belongs to the run.
    pub(super) fn may_issue(&self, intended_ns: u64) -> bool {
        if self.interrupted {
            return false;
        }
        if intended_ns < self.warmup_end_ns {
            return true;
        }
        self.issue_end_ns.is_none_or(|end| intended_ns < end) && self.quota_left != Some(0)
    }

    pub(super) fn issue(
        &mut self,
        conn: &mut Conn,
        rec: &mut Recorder,
        intended_ns: u64,
        now_ns: u64,
        behind: bool,
    ) {
        let request = self.workload.next(&mut conn.out);
        let measured = intended_ns >= self.warmup_end_ns;
        if measured {
            if let Some(quota) = &mut self.quota_left {
                debug_assert!(*quota > 0, "issued beyond the quota");
                *quota = quota.saturating_sub(1);
            }
        }
        rec.on_send(
            request.command,
            measured,
            behind,
            now_ns.saturating_sub(intended_ns),
        );
        conn.inflight.push_back(InFlight {
            request,
            intended_ns,
            sent_ns: now_ns,
            measured,
            rmw_read: request.command == Command::Rmw,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use rand::SeedableRng;

    use super::*;
    use crate::cli::{KeyDistKind, ValueSize};
    use crate::workload::{Mix, OpWeights, WorkloadConfig};

    fn config(clients_total: usize, open_loop: Option<OpenLoop>) -> EngineConfig {
        EngineConfig {
            pipeline: 1,
            pipeline_batch: false,
            open_loop,
            warmup_ns: 1_000,
            duration_ns: Some(10_000),
            clients_total,
            threads: 1,
            seed: 0,
            interrupted: Arc::new(AtomicBool::new(false)),
            workload: WorkloadConfig {
                mix: Mix::KeyValue(OpWeights {
                    read: 1,
                    update: 1,
                    ..OpWeights::default()
                }),
                keys: 10,
                key_dist: KeyDistKind::Uniform,
                key_prefix: b"k:".to_vec(),
                value_size: ValueSize {
                    min_bytes: 1,
                    max_bytes: 1,
                },
                scan_len_max: 100,
            },
        }
    }

    #[test]
    fn even_schedules_are_phase_shifted_into_a_smooth_aggregate() {
        // 4 connections at 4000 ops/s in total: 1 ms apart each, 250 µs apart together.
        let open = OpenLoop {
            rate_per_s: 4000.0,
            poisson: false,
        };
        let cfg = config(4, Some(open));
        let mut rng = SmallRng::seed_from_u64(0);
        let mut sends = Vec::new();
        for conn in 0..4 {
            let mut schedule = Schedule::new(&cfg, conn, &mut rng);
            for _ in 0..5 {
                sends.push(schedule.next_ns());
                schedule.advance(&mut rng);
            }
        }
        sends.sort_unstable();
        let gaps: Vec<u64> = sends.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g == 250_000), "{gaps:?}");
        assert_eq!(sends[0], 0);
    }

    #[test]
    fn poisson_schedules_keep_the_mean_rate() {
        let open = OpenLoop {
            rate_per_s: 1000.0,
            poisson: true,
        };
        let cfg = config(2, Some(open));
        let mut rng = SmallRng::seed_from_u64(1);
        let mut schedule = Schedule::new(&cfg, 0, &mut rng);
        let count = 20_000u64;
        for _ in 0..count {
            schedule.advance(&mut rng);
        }
        // One of 2 connections at 1000 ops/s in total: a mean gap of 2 ms.
        let mean_gap_ns = schedule.next_ns() as f64 / count as f64;
        assert!(
            (mean_gap_ns - 2e6).abs() < 0.03 * 2e6,
            "mean gap {mean_gap_ns} ns"
        );
    }

    #[test]
    fn requests_are_issued_in_warmup_and_window_and_within_the_quota() {
        let cfg = config(1, None);
        let mut issuer = Issuer {
            workload: Workload::new(&cfg.workload, 0, 0, 1),
            pipeline: 1,
            pipeline_batch: false,
            warmup_end_ns: 1_000,
            issue_end_ns: Some(11_000),
            quota_left: None,
            interrupted: false,
        };
        assert!(issuer.may_issue(0) && issuer.may_issue(10_999));
        assert!(!issuer.may_issue(11_000));
        issuer.issue_end_ns = None;
        issuer.quota_left = Some(0);
        // Warm-up requests do not count against the quota; measured ones do.
        assert!(issuer.may_issue(999));
        assert!(!issuer.may_issue(1_000));
    }
}
