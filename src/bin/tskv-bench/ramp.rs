//! `--rate-ramp`: a series of open-loop steps at rising rates, and the throughput-versus-
//! latency table with its knee. Pure: main runs the steps, this module parses the flag and
//! judges the results.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::Serialize;
use serde_json::{json, Value};

use crate::limits;

/// `START:END:STEP:SECONDS`: rates START, START+STEP, ... up to END ops/s, SECONDS each.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateRamp {
    /// First rate, ops/s.
    pub start_per_s: f64,
    /// Last rate at most, ops/s.
    pub end_per_s: f64,
    /// Increment, ops/s.
    pub step_per_s: f64,
    /// Measured seconds per step.
    pub step_secs: f64,
}

impl FromStr for RateRamp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [start, end, step, secs] = parts[..] else {
            return Err(format!("rate ramp {s:?} is not START:END:STEP:SECONDS"));
        };
        let number = |name: &str, text: &str| -> Result<f64, String> {
            let value: f64 = text
                .trim()
                .parse()
                .map_err(|e| format!("{name} {text:?}: {e}"))?;
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(format!("{name} must be a positive number, got {text:?}"))
            }
        };
        let ramp = RateRamp {
            start_per_s: number("START", start)?,
            end_per_s: number("END", end)?,
            step_per_s: number("STEP", step)?,
            step_secs: number("SECONDS", secs)?,
        };
        if ramp.end_per_s < ramp.start_per_s {
            return Err(format!("rate ramp {s}: END is below START"));
        }
        let steps = ramp.rates().len();
        if steps > limits::RAMP_STEPS_MAX {
            return Err(format!(
                "rate ramp {s} has {steps} steps; at most {} are allowed",
                limits::RAMP_STEPS_MAX
            ));
        }
        Ok(ramp)
    }
}

impl fmt::Display for RateRamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.start_per_s, self.end_per_s, self.step_per_s, self.step_secs
        )
    }
}

impl RateRamp {
    /// The target rate of every step, in order.
    pub fn rates(&self) -> Vec<f64> {
        // A step count, not repeated addition: 0.1-sized steps must not lose the last one
        // to rounding.
        let count = ((self.end_per_s - self.start_per_s) / self.step_per_s + 1e-9).floor();
        let count = (count as usize).min(limits::RAMP_STEPS_MAX) + 1;
        (0..count)
            .map(|i| self.start_per_s + i as f64 * self.step_per_s)
            .collect()
    }
}

/// What one step achieved.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// Intended rate, ops/s.
    pub target_per_s: f64,
    /// Answered requests per second of the step's window.
    pub achieved_per_s: f64,
    /// Corrected (from the intended send time) latency percentiles, µs.
    pub corrected_p50_us: f64,
    /// Corrected p99, µs.
    pub corrected_p99_us: f64,
    /// Corrected p99.9, µs.
    pub corrected_p99_9_us: f64,
    /// Requests sent late because their connection's pipeline was full.
    pub behind_schedule: u64,
    /// Error and unexpected replies.
    pub errors: u64,
    /// Requests lost or never sent within the drain timeout.
    pub lost_or_unsent: u64,
}

/// The knee: the first step that achieves under [`limits::KNEE_ACHIEVED_MIN_SHARE`] of its
/// target, or whose corrected p99 exceeds [`limits::KNEE_P99_GROWTH_MAX`] times the first
/// step's.
pub fn knee(steps: &[StepResult]) -> Option<usize> {
    let first_p99 = steps.first()?.corrected_p99_us;
    steps.iter().position(|s| {
        s.achieved_per_s < limits::KNEE_ACHIEVED_MIN_SHARE * s.target_per_s
            || s.corrected_p99_us > limits::KNEE_P99_GROWTH_MAX * first_p99
    })
}

/// The throughput-versus-latency table, one row per step, the knee marked.
pub fn table(steps: &[StepResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "rate ramp: throughput vs corrected latency (from the intended send time)\n\
         {:>12} {:>12} {:>11} {:>11} {:>11} {:>10} {:>8}",
        "target/s", "achieved/s", "p50 µs", "p99 µs", "p99.9 µs", "behind", "errors"
    );
    let knee = knee(steps);
    for (i, s) in steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>12.0} {:>12.0} {:>11.1} {:>11.1} {:>11.1} {:>10} {:>8}{}",
            s.target_per_s,
            s.achieved_per_s,
            s.corrected_p50_us,
            s.corrected_p99_us,
            s.corrected_p99_9_us,
            s.behind_schedule,
            s.errors,
            if knee == Some(i) { "  <- knee" } else { "" }
        );
    }
    match knee {
        Some(i) => {
            let _ = writeln!(
                out,
                "knee at {:.0} ops/s: achieved under {:.0}% of target or p99 over {:.0}x the \
                 first step's",
                steps[i].target_per_s,
                limits::KNEE_ACHIEVED_MIN_SHARE * 100.0,
                limits::KNEE_P99_GROWTH_MAX
            );
        }
        None => {
            let _ = writeln!(out, "no knee within the ramp");
        }
    }
    if steps.iter().any(|s| s.lost_or_unsent > 0) {
        let _ = writeln!(
            out,
            "warning: some steps lost requests or left scheduled ones unsent (see JSON)"
        );
    }
    out
}

/// The ramp as JSON: every step's row, the knee, and each step's full report.
pub fn json(ramp: &RateRamp, steps: &[StepResult], step_reports: Vec<Value>) -> Value {
    let knee = knee(steps);
    json!({
        "ramp": ramp.to_string(),
        "rows": steps,
        "knee_index": knee,
        "knee_target_per_s": knee.map(|i| steps[i].target_per_s),
        "steps": step_reports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(target: f64, achieved: f64, p99: f64) -> StepResult {
        StepResult {
            target_per_s: target,
            achieved_per_s: achieved,
            corrected_p50_us: p99 / 2.0,
            corrected_p99_us: p99,
            corrected_p99_9_us: p99 * 2.0,
            behind_schedule: 0,
            errors: 0,
            lost_or_unsent: 0,
        }
    }

    #[test]
    fn ramps_parse_into_their_rates() {
        let ramp: RateRamp = "1000:3000:1000:2".parse().unwrap();
        assert_eq!(ramp.rates(), vec![1000.0, 2000.0, 3000.0]);
        assert_eq!(ramp.step_secs, 2.0);
        let ramp: RateRamp = "1000:2500:1000:0.5".parse().unwrap();
        assert_eq!(ramp.rates(), vec![1000.0, 2000.0]);
        let ramp: RateRamp = "0.1:0.3:0.1:1".parse().unwrap();
        assert_eq!(ramp.rates().len(), 3);
        assert!("1000:500:100:1".parse::<RateRamp>().is_err());
        assert!("1000:2000:0:1".parse::<RateRamp>().is_err());
        assert!("1000:2000:100".parse::<RateRamp>().is_err());
        assert!("1:1000000:1:1".parse::<RateRamp>().is_err());
    }

    #[test]
    fn the_knee_is_the_first_step_short_of_target_or_with_a_tenfold_p99() {
        let steps = vec![
            step(1000.0, 1000.0, 100.0),
            step(2000.0, 1990.0, 500.0),
            step(3000.0, 2800.0, 600.0),
            step(4000.0, 2900.0, 90_000.0),
        ];
        assert_eq!(knee(&steps), Some(2));
        let tail = vec![step(1000.0, 1000.0, 100.0), step(2000.0, 2000.0, 1_001.0)];
        assert_eq!(knee(&tail), Some(1));
        let fine = vec![step(1000.0, 1000.0, 100.0), step(2000.0, 1950.0, 900.0)];
        assert_eq!(knee(&fine), None);
        assert_eq!(knee(&[]), None);
        let text = table(&steps);
        assert_eq!(text.matches("<- knee").count(), 1);
        assert!(text.contains("knee at 3000 ops/s"), "{text}");
    }
}
