//! The time-weighted average (`twa`) of a bucket, as RedisTimeSeries 1.10 computes it
//! (redis.io, "TS.RANGE": "twa: time-weighted average over the bucket's timeframe"; the
//! `EMPTY` table: "based on linear interpolation of neighbouring buckets").
//!
//! The series is read as a piecewise-linear function through its samples. A bucket's
//! value is the area under that function over the bucket's *edges* divided by their
//! span:
//!
//! ```text
//!   value
//!     │        s1 ●───────● s2
//!     │  va ◆─────┘        └──────◆ vb          ◆ interpolated on the line to the
//!     │ ●─┘                         └──● next     neighbour outside the bucket
//!     │ before   │                  │
//!     └──────────┼──────────────────┼───────── time
//!               ta (left edge)     tb (right edge)
//! ```
//!
//! * The edges of a bucket starting at `s` are `ta = max(s, from)` and
//!   `tb = min(s + bucketDuration, to)`: a range query cuts the first and last bucket
//!   at its own bounds (`from`, `to` inclusive); a compaction rule's bucket is
//!   `[s, s + bucketDuration]`.
//! * With a sample *before* the bucket (the previous bucket's last sample, or for the
//!   first bucket of a range the series' last sample before it), the area starts at `ta`
//!   with the value interpolated there; without one it starts at the first sample.
//!   Likewise with a sample *after* the bucket the area ends at `tb`, else at the last
//!   sample.
//! * Each segment adds the trapezoid `(v1 + v2) * (t2 - t1) / 2`; the value is the sum
//!   over `|end - start|`, or the (single) sample's value when that span is 0.
//! * An empty bucket between two samples (`EMPTY`) is the average of the line between
//!   them over its edges: `(v(ta) + v(tb)) / 2`.
//!
//! RedisTimeSeries adds the segments in the order it walks the samples (backwards for
//! `TS.REVRANGE`) and so does this module, so both round alike. Timestamp differences are
//! signed here. RedisTimeSeries takes them in unsigned 64-bit arithmetic, which differs
//! only for a neighbour that a filter left inside the bucket it serves (it takes the
//! neighbours of a range from the unfiltered series): there its difference wraps and its
//! value is meaningless (about -2.3e20 in one case), while this module's stays on the
//! line through the samples. That one case is deliberately not matched.

use super::chunk::Sample;

/// The part of the time line a bucket's average covers: `[start_ms, end_ms]`, both
/// inclusive (see the module doc for how a bucket's edges are cut).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edges {
    /// `ta`: where the area starts when there is a sample before the bucket.
    pub start_ms: u64,
    /// `tb`: where the area ends when there is a sample after the bucket.
    pub end_ms: u64,
}

/// One bucket's samples with what lies around it.
#[derive(Clone, Copy, Debug)]
pub struct Bucket<'a> {
    /// The bucket's samples, non-empty, in time order.
    pub samples: &'a [Sample],
    /// The nearest sample before the bucket, if any.
    pub before: Option<Sample>,
    /// The nearest sample after the bucket, if any.
    pub after: Option<Sample>,
    /// The bucket's edges.
    pub edges: Edges,
}

/// `t2 - t1` in milliseconds, signed (see the module doc).
fn span(t1: u64, t2: u64) -> f64 {
    (i128::from(t2) - i128::from(t1)) as f64
}

/// The trapezoid from `a` to `b` (`a` earlier).
fn trapezoid(a: Sample, b: Sample) -> f64 {
    ((a.value + b.value) * span(a.ts_ms, b.ts_ms)) / 2.0
}

/// The value at `ts_ms` on the line through `a` and `b` (`a` earlier).
fn interpolate(a: Sample, b: Sample, ts_ms: u64) -> f64 {
    a.value + (span(a.ts_ms, ts_ms) * (b.value - a.value)) / span(a.ts_ms, b.ts_ms)
}

/// The area from `edge_ms` to `first`, the line coming from `before`.
fn area_in(before: Sample, first: Sample, edge_ms: u64) -> f64 {
    let at_edge = interpolate(before, first, edge_ms);
    ((at_edge + first.value) * span(edge_ms, first.ts_ms)) / 2.0
}

/// The area from `last` to `edge_ms`, the line going to `after`.
fn area_out(last: Sample, after: Sample, edge_ms: u64) -> f64 {
    let at_edge = interpolate(last, after, edge_ms);
    ((at_edge + last.value) * span(last.ts_ms, edge_ms)) / 2.0
}

/// The `twa` of `bucket`, adding its segments in time order, or backwards if `reverse`
/// (`TS.REVRANGE`), as RedisTimeSeries does.
pub fn bucket_value(bucket: Bucket<'_>, reverse: bool) -> f64 {
    let samples = bucket.samples;
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let left = bucket
        .before
        .map(|b| area_in(b, first, bucket.edges.start_ms));
    let right = bucket.after.map(|a| area_out(last, a, bucket.edges.end_ms));
    let inner = samples.windows(2).map(|w| trapezoid(w[0], w[1]));
    let mut area = 0.0;
    if reverse {
        area += right.unwrap_or(0.0);
        for t in inner.rev() {
            area += t;
        }
        area += left.unwrap_or(0.0);
    } else {
        area += left.unwrap_or(0.0);
        for t in inner {
            area += t;
        }
        area += right.unwrap_or(0.0);
    }
    let from_ms = bucket.before.map_or(first.ts_ms, |_| bucket.edges.start_ms);
    let to_ms = bucket.after.map_or(last.ts_ms, |_| bucket.edges.end_ms);
    if from_ms == to_ms {
        // Only one sample can span nothing: its value.
        return if reverse { first.value } else { last.value };
    }
    area / from_ms.abs_diff(to_ms) as f64
}

/// The `twa` of an empty bucket with edges `edges` between samples `before` and `after`
/// (`EMPTY`): the mean of the line between them over the edges.
pub fn empty_value(before: Sample, after: Sample, edges: Edges) -> f64 {
    let at_start = interpolate(before, after, edges.start_ms);
    let at_end = interpolate(before, after, edges.end_ms);
    (at_start + at_end) / 2.0
}

/// What `twa` needs of a range beyond its samples: the range's bounds, which cut its
/// first and last bucket, and the series' samples right outside it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwaBounds {
    /// The range's first millisecond (`fromTimestamp`).
    pub from_ms: u64,
    /// The range's last millisecond (`toTimestamp`).
    pub to_ms: u64,
    /// The series' last sample before the range, if any.
    pub before: Option<Sample>,
    /// The series' first sample after the range, if any.
    pub after: Option<Sample>,
}

impl TwaBounds {
    /// No bounds and no neighbours: each bucket on its own samples.
    pub const NONE: Self = Self {
        from_ms: 0,
        to_ms: u64::MAX,
        before: None,
        after: None,
    };
}

/// The unfiltered samples around a gap between buckets, in time order (`None` when one
/// side is missing).
pub type Gap = Option<(Sample, Sample)>;

/// `twa`'s view of a walk over a range, in walk order (backwards for `TS.REVRANGE`): the
/// samples next to its first and last bucket, and, when a filter drops samples, the
/// unfiltered samples around each gap between buckets (RedisTimeSeries looks both up in
/// the unfiltered series). A bucket is `(raw start, raw end)`, the end exclusive.
#[derive(Clone, Debug)]
pub struct Walk {
    /// The range's bounds and outer neighbours.
    pub bounds: TwaBounds,
    reverse: bool,
    /// The sample before the first bucket in walk order: the range's neighbour on that
    /// side, or the last sample a filter dropped before the first one kept.
    pub entry: Option<Sample>,
    /// The first sample a filter dropped after the newest one kept.
    exit: Option<Sample>,
    /// The unfiltered samples either side of where a gap after the current bucket would
    /// start (in walk order: its end, or backwards one bucket below its start).
    gap_before: Option<Sample>,
    gap_after: Option<Sample>,
    /// Those samples for the gap before the current bucket, in time order.
    gap: Gap,
}

impl Walk {
    /// A walk over a range with `bounds`, backwards if `reverse`.
    pub fn new(bounds: TwaBounds, reverse: bool) -> Self {
        Self {
            bounds,
            reverse,
            entry: if reverse { bounds.after } else { bounds.before },
            exit: None,
            gap_before: None,
            gap_after: None,
            gap: None,
        }
    }

    /// The sample after the last bucket in walk order, when the walk ends.
    pub fn beyond(&self) -> Option<Sample> {
        let range_side = if self.reverse {
            self.bounds.before
        } else {
            self.bounds.after
        };
        self.exit.or(range_side)
    }

    /// The unfiltered samples around the gap before the current bucket (time order),
    /// known only in a filtered walk.
    pub fn gap_neighbours(&self) -> Gap {
        self.gap
    }

    /// Notes `sample`, dropped by a filter while `current` is the open bucket.
    pub fn dropped(&mut self, sample: Sample, current: Option<(i128, i128)>, bucket_ms: u64) {
        match current {
            None => self.entry = Some(sample),
            Some(current) => {
                if self.exit.is_none() {
                    self.exit = Some(sample);
                }
                self.track(sample, current, bucket_ms);
            }
        }
    }

    /// Notes `sample`, kept, before it goes into the buckets while `current` is open: if
    /// it opens a new bucket, returns the unfiltered samples around the gap it ends.
    pub fn kept(&mut self, sample: Sample, current: Option<(i128, i128)>) -> Option<Gap> {
        self.exit = None;
        let (start, end) = current?;
        let ts = i128::from(sample.ts_ms);
        if start <= ts && ts < end {
            return None;
        }
        let (before, after) = if self.reverse {
            (self.gap_before.or(Some(sample)), self.gap_after)
        } else {
            (self.gap_before, self.gap_after.or(Some(sample)))
        };
        self.gap_before = None;
        self.gap_after = None;
        Some(before.zip(after))
    }

    /// After `sample` went into bucket `current`: `opened` is what [`Walk::kept`]
    /// returned for it.
    pub fn opened(
        &mut self,
        opened: Option<Gap>,
        sample: Sample,
        current: (i128, i128),
        bucket_ms: u64,
    ) {
        if let Some(gap) = opened {
            self.gap = gap;
        }
        self.track(sample, current, bucket_ms);
    }

    /// Keeps the unfiltered samples nearest either side of where a gap after `current`
    /// would start: forward its end; backwards the start of the bucket below it, where
    /// RedisTimeSeries starts looking.
    fn track(&mut self, sample: Sample, (start, end): (i128, i128), bucket_ms: u64) {
        let ts = i128::from(sample.ts_ms);
        if self.reverse {
            if ts >= start - i128::from(bucket_ms) {
                self.gap_after = Some(sample);
            } else if self.gap_before.is_none() {
                self.gap_before = Some(sample);
            }
        } else if ts < end {
            self.gap_before = Some(sample);
        } else if self.gap_after.is_none() {
            self.gap_after = Some(sample);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts_ms: u64, value: f64) -> Sample {
        Sample { ts_ms, value }
    }

    fn edges(start_ms: u64, end_ms: u64) -> Edges {
        Edges { start_ms, end_ms }
    }

    /// A neighbour that a filter left inside the bucket it serves (its timestamp after the
    /// bucket's start): the value stays on the line through the samples, where
    /// RedisTimeSeries's unsigned differences wrap into a meaningless one.
    #[test]
    fn a_neighbour_inside_the_bucket_gives_a_value_on_the_line() {
        let bucket = Bucket {
            samples: &[s(17, 4.0), s(19, 4.0)],
            before: Some(s(15, 2.0)),
            after: None,
            edges: edges(10, 19),
        };
        // The line through (15, 2) and (17, 4) is at -3 at 10: from 10 to 17 the area is
        // (-3 + 4) / 2 * 7, then 4 * 2 to 19, over 9 ms.
        let want = (3.5 + 8.0) / 9.0;
        for reverse in [false, true] {
            let value = bucket_value(bucket, reverse);
            assert!((value - want).abs() < 1e-9, "{value} against {want}");
        }
    }

    /// The mean over `[from, to]` of the piecewise-linear function through `points` (in
    /// time order), by trapezoids between the points inside and the interpolated ends;
    /// the function's value at `from` when the span is 0.
    fn mean_of_line(points: &[(f64, f64)], from: f64, to: f64) -> f64 {
        let at = |t: f64| -> f64 {
            let i = points.iter().rposition(|p| p.0 <= t).unwrap_or(0);
            let j = (i + 1).min(points.len() - 1);
            let (a, b) = (points[i], points[j]);
            if a.0 == b.0 {
                a.1
            } else {
                a.1 + (t - a.0) * (b.1 - a.1) / (b.0 - a.0)
            }
        };
        if from == to {
            return at(from);
        }
        let mut cuts = vec![from];
        cuts.extend(points.iter().map(|p| p.0).filter(|&t| t > from && t < to));
        cuts.push(to);
        let area: f64 = cuts
            .windows(2)
            .map(|w| (at(w[0]) + at(w[1])) / 2.0 * (w[1] - w[0]))
            .sum();
        area / (to - from)
    }

    /// The definition written out plainly: the line through `before`, the samples and
    /// `after`, averaged from the left edge (or the first sample, without `before`) to
    /// the right edge (or the last sample, without `after`).
    fn reference(bucket: Bucket<'_>) -> f64 {
        let mut points: Vec<(f64, f64)> = Vec::new();
        points.extend(bucket.before.map(|b| (b.ts_ms as f64, b.value)));
        points.extend(bucket.samples.iter().map(|p| (p.ts_ms as f64, p.value)));
        points.extend(bucket.after.map(|a| (a.ts_ms as f64, a.value)));
        let samples = bucket.samples;
        let from = match bucket.before {
            Some(_) => bucket.edges.start_ms as f64,
            None => samples[0].ts_ms as f64,
        };
        let to = match bucket.after {
            Some(_) => bucket.edges.end_ms as f64,
            None => samples[samples.len() - 1].ts_ms as f64,
        };
        mean_of_line(&points, from, to)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// RedisTimeSeries's flow test "test_agg_twa" case 18, first query: `TS.RANGE ts18
    /// 12 20 AGGREGATION twa 100` over 100@10 110@13 115@15 109@19 130@25.
    #[test]
    fn range_cut_inside_one_bucket_interpolates_at_its_bounds() {
        let samples = [s(13, 110.0), s(15, 115.0), s(19, 109.0)];
        let bucket = Bucket {
            samples: &samples,
            before: Some(s(10, 100.0)),
            after: Some(s(25, 130.0)),
            edges: edges(12, 20),
        };
        let va = 100.0 + 10.0 * 2.0 / 3.0;
        let vb = 109.0 + 21.0 / 6.0;
        let want = ((va + 110.0) * 1.0 + 225.0 * 2.0 + 224.0 * 4.0 + (vb + 109.0) * 1.0) / 16.0;
        assert!(close(bucket_value(bucket, false), want));
        assert!(close(bucket_value(bucket, true), want));
    }

    #[test]
    fn without_neighbours_the_area_spans_the_samples_only() {
        let samples = [s(13, 13.0), s(17, 21.0)];
        let lone = Bucket {
            samples: &samples,
            before: None,
            after: None,
            edges: edges(10, 20),
        };
        assert_eq!(bucket_value(lone, false), 17.0);
        let single = Bucket {
            samples: &samples[..1],
            ..lone
        };
        assert_eq!(bucket_value(single, false), 13.0);
        // A sample on the bucket's left edge with one before it spans nothing.
        let on_edge = Bucket {
            samples: &[s(10, 4.0)],
            before: Some(s(5, 1.0)),
            after: None,
            edges: edges(10, 20),
        };
        assert_eq!(bucket_value(on_edge, true), 4.0);
    }

    #[test]
    fn an_empty_bucket_is_the_line_between_its_neighbours() {
        // Flow test case 100: 100@20 130@50, bucket [30, 40].
        let v = empty_value(s(20, 100.0), s(50, 130.0), edges(30, 40));
        assert_eq!(v, 115.0);
    }

    proptest::proptest! {
        /// A whole series through the streaming bucketer, forward and reversed, with or
        /// without `EMPTY`: every bucket (empty ones too) is the mean of the line through
        /// all samples over the bucket, cut to the span of the samples.
        #[test]
        fn streamed_buckets_average_the_line_through_the_series(
            gaps in proptest::collection::vec(1u64..40, 1..40),
            values in proptest::collection::vec(-1e3f64..1e3, 40),
            bucket_ms in 1u64..30,
            empty: bool,
            reverse: bool,
        ) {
            use super::super::aggregate::{Aggregation, Aggregator, BucketTimestamp, Bucketer};
            let mut ts_ms = 0;
            let samples: Vec<Sample> = gaps
                .iter()
                .zip(&values)
                .map(|(gap, &v)| {
                    ts_ms += gap;
                    s(ts_ms, v)
                })
                .collect();
            let aggregation = Aggregation {
                aggregator: Aggregator::Twa,
                bucket_ms,
                align_ms: 0,
                align_to_end: false,
                bucket_timestamp: BucketTimestamp::Start,
                empty,
            };
            let mut got = Vec::new();
            let mut bucketer = Bucketer::new(aggregation, reverse);
            let ordered: Vec<Sample> = match reverse {
                true => samples.iter().rev().copied().collect(),
                false => samples.clone(),
            };
            for sample in ordered {
                bucketer.push(sample, &mut |b| got.push(b));
            }
            bucketer.finish(&mut |b| got.push(b));
            if reverse {
                got.reverse();
            }
            let points: Vec<(f64, f64)> =
                samples.iter().map(|p| (p.ts_ms as f64, p.value)).collect();
            let (first, last) = (samples[0].ts_ms, samples[samples.len() - 1].ts_ms);
            let mut starts: Vec<u64> = samples.iter().map(|p| p.ts_ms - p.ts_ms % bucket_ms).collect();
            starts.dedup();
            if empty {
                starts = (starts[0]..=starts[starts.len() - 1]).step_by(bucket_ms as usize).collect();
            }
            proptest::prop_assert_eq!(got.len(), starts.len());
            for (bucket, start) in got.iter().zip(starts) {
                proptest::prop_assert_eq!(bucket.ts_ms, start);
                let (from, to) = (start.max(first), (start + bucket_ms).min(last));
                let want = mean_of_line(&points, from as f64, to as f64);
                proptest::prop_assert!(close(bucket.value, want), "{:?} vs {}", bucket, want);
            }
        }

        /// Any bucket, forward or reversed, equals the plain integral of the
        /// piecewise-linear function over its edges.
        #[test]
        fn matches_the_integral_of_the_linear_interpolation(
            gaps in proptest::collection::vec(1u64..20, 1..12),
            values in proptest::collection::vec(-1e3f64..1e3, 14),
            before_gap in proptest::option::of(1u64..30),
            after_gap in proptest::option::of(1u64..30),
            cut_in in 0u64..5,
            cut_out in 0u64..5,
            reverse: bool,
        ) {
            let mut ts_ms = 100;
            let samples: Vec<Sample> = gaps
                .iter()
                .zip(&values)
                .map(|(gap, &v)| {
                    ts_ms += gap;
                    s(ts_ms, v)
                })
                .collect();
            let (first, last) = (samples[0].ts_ms, samples[samples.len() - 1].ts_ms);
            let before = before_gap.map(|g| s(first - g - cut_in, values[12]));
            let after = after_gap.map(|g| s(last + g + cut_out, values[13]));
            let bucket = Bucket {
                samples: &samples,
                before,
                after,
                edges: edges(first - cut_in, last + cut_out),
            };
            let (got, want) = (bucket_value(bucket, reverse), reference(bucket));
            proptest::prop_assert!(close(got, want), "{} vs {}", got, want);
        }
    }
}
