//! The write slowdown: while level 0 is in the band between the slowdown threshold and
//! the stop ([`crate::config::L0_SLOWDOWN_TABLES_PER_TRIGGER`],
//! [`crate::config::L0_STOP_TABLES_PER_TRIGGER`]), each WAL batch submitted makes the next
//! one wait [`crate::config::write_slowdown_delay`], as RocksDB's delayed write rate does.
//!
//! Nothing blocks: the committer simply does not take the next batch before its time, the
//! records keep gathering in the pending WAL, and the shard loop sleeps at most until then
//! ([`Slowdown::wait`]) while it goes on serving reads and other connections. A write's
//! reply is gated on its batch, so the client sees the delay as a slower acknowledgement.

use std::time::{Duration, Instant};

/// The slowdown state of one shard's WAL and its counters.
#[derive(Debug, Default)]
pub(super) struct Slowdown {
    /// The next WAL batch is not submitted before this, while level 0 is in the band.
    next_submit_at: Option<Instant>,
    /// Since when records have been held back, if they are.
    held_since: Option<Instant>,
    /// Times a batch was held back (`write_slowdowns`).
    slowdowns: u64,
    /// Microseconds batches were held back, over the holds that ended (`write_slowdown_us`).
    slowdown_us: u64,
}

impl Slowdown {
    /// Whether the pending WAL records must wait now, given level 0's depth into the band
    /// (`depth_tables`, 0 below it). Counts a slowdown when a hold begins and its time when
    /// it ends; leaving the band (compaction caught up) ends a hold at once.
    pub(super) fn holds(&mut self, depth_tables: usize, now: Instant) -> bool {
        let held = depth_tables > 0 && self.next_submit_at.is_some_and(|at| now < at);
        if held {
            if self.held_since.is_none() {
                self.held_since = Some(now);
                self.slowdowns += 1;
            }
        } else if let Some(since) = self.held_since.take() {
            self.slowdown_us += now.saturating_duration_since(since).as_micros() as u64;
        }
        held
    }

    /// A batch of `batch_bytes` was submitted at `now` with level 0 `depth_tables` into
    /// the band: the next one waits accordingly (not at all below the band).
    pub(super) fn submitted(&mut self, depth_tables: usize, batch_bytes: usize, now: Instant) {
        self.next_submit_at = (depth_tables > 0)
            .then(|| now + crate::config::write_slowdown_delay(depth_tables, batch_bytes));
    }

    /// Whether records are being held back now.
    pub(super) fn holding(&self) -> bool {
        self.held_since.is_some()
    }

    /// How long the loop may sleep before the held batch is due, rounded up to the
    /// millisecond of its epoll timeout (rounding down would spin); `None` when nothing is
    /// held.
    pub(super) fn wait(&self, now: Instant) -> Option<Duration> {
        self.held_since?;
        let left = self.next_submit_at?.saturating_duration_since(now);
        Some(Duration::from_millis(left.as_micros().div_ceil(1000) as u64))
    }

    /// Slowdowns since start, and the microseconds of those that ended.
    pub(super) fn counters(&self) -> (u64, u64) {
        (self.slowdowns, self.slowdown_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_in_the_band_holds_the_next_until_its_delay_passed() {
        let mut slowdown = Slowdown::default();
        let t0 = Instant::now();
        assert!(!slowdown.holds(3, t0), "nothing submitted yet");
        slowdown.submitted(3, 100, t0);
        let delay = crate::config::write_slowdown_delay(3, 100);
        assert_eq!(
            delay,
            Duration::from_millis(3),
            "the per-table floor, 3 deep"
        );
        let t1 = t0 + Duration::from_micros(500);
        assert!(slowdown.holds(3, t1));
        assert!(
            slowdown.holds(3, t1 + Duration::from_micros(100)),
            "same hold"
        );
        assert_eq!(slowdown.counters(), (1, 0));
        assert_eq!(
            slowdown.wait(t1),
            Some(Duration::from_millis(3)),
            "2.5 ms up"
        );
        assert!(!slowdown.holds(3, t0 + delay));
        assert_eq!(slowdown.counters(), (1, 2_500));
        assert_eq!(slowdown.wait(t0 + delay), None);
    }

    #[test]
    fn leaving_the_band_ends_a_hold_and_below_it_nothing_waits() {
        let mut slowdown = Slowdown::default();
        let t0 = Instant::now();
        slowdown.submitted(16, 1 << 20, t0);
        assert!(slowdown.holds(16, t0));
        assert!(
            !slowdown.holds(0, t0 + Duration::from_millis(1)),
            "compacted"
        );
        assert_eq!(slowdown.counters(), (1, 1_000));
        slowdown.submitted(0, 1 << 20, t0);
        assert!(
            !slowdown.holds(5, t0),
            "a batch below the band sets no delay"
        );
    }

    #[test]
    fn the_delay_grows_with_the_depth_and_the_batch_bytes() {
        let delay = crate::config::write_slowdown_delay;
        assert_eq!(delay(0, 1 << 20), Duration::ZERO);
        assert!(delay(2, 10) > delay(1, 10));
        // 1 MiB at 16 MiB/s is 62.5 ms, per table of depth.
        assert_eq!(delay(1, 1 << 20), Duration::from_micros(62_500));
        assert_eq!(delay(4, 1 << 20), Duration::from_micros(250_000));
    }
}
