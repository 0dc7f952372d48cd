//! `TS.RANGE` aggregation: samples grouped into buckets of `bucket_ms` aligned to
//! `align_ms`, each folded by one aggregator, as RedisTimeSeries 1.10 defines them
//! (redis.io, "TS.RANGE": "AGGREGATION aggregator bucketDuration", "ALIGN",
//! "BUCKETTIMESTAMP", "EMPTY").
//!
//! A bucket holding timestamp `t` starts at `t - ((t - align) mod bucket)` (floor modulo),
//! never below 0. Pure: no storage, tested on its own.

use super::chunk::Sample;
pub use super::twa::TwaBounds;
use super::twa::{self, Edges, Walk};

/// The aggregators of `AGGREGATION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregator {
    /// Arithmetic mean.
    Avg,
    /// Sum.
    Sum,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Maximum minus minimum.
    Range,
    /// Number of samples.
    Count,
    /// Value of the earliest sample.
    First,
    /// Value of the latest sample.
    Last,
    /// Population standard deviation.
    StdP,
    /// Sample standard deviation.
    StdS,
    /// Population variance.
    VarP,
    /// Sample variance.
    VarS,
    /// Time-weighted average.
    Twa,
}

impl Aggregator {
    const ALL: [(Self, &'static str); 13] = [
        (Self::Avg, "avg"),
        (Self::Sum, "sum"),
        (Self::Min, "min"),
        (Self::Max, "max"),
        (Self::Range, "range"),
        (Self::Count, "count"),
        (Self::First, "first"),
        (Self::Last, "last"),
        (Self::StdP, "std.p"),
        (Self::StdS, "std.s"),
        (Self::VarP, "var.p"),
        (Self::VarS, "var.s"),
        (Self::Twa, "twa"),
    ];

    /// Parses an aggregator name, case-insensitively.
    pub fn parse(name: &[u8]) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| name.eq_ignore_ascii_case(n.as_bytes()))
            .map(|(a, _)| *a)
    }

    /// The aggregator's name, lower-case, as `AGGREGATION` spells it.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, n)| *n)
            .expect("every aggregator has a name")
    }

    /// A one-byte code for the aggregator, for stored compaction rules.
    pub fn tag(self) -> u8 {
        Self::ALL
            .iter()
            .position(|(a, _)| *a == self)
            .expect("every aggregator is listed") as u8
    }

    /// The aggregator of a code from [`Aggregator::tag`].
    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.get(usize::from(tag)).map(|(a, _)| *a)
    }

    /// Folds one bucket's samples (non-empty, in time order).
    pub fn fold(self, samples: &[Sample]) -> f64 {
        let n = samples.len() as f64;
        let values = || samples.iter().map(|s| s.value);
        let sum: f64 = values().sum();
        let min = values().fold(f64::INFINITY, f64::min);
        let max = values().fold(f64::NEG_INFINITY, f64::max);
        let squares = || {
            let mean = sum / n;
            values().map(|v| (v - mean) * (v - mean)).sum::<f64>()
        };
        let sample_var = || {
            if samples.len() > 1 {
                squares() / (n - 1.0)
            } else {
                0.0
            }
        };
        match self {
            Self::Avg => sum / n,
            Self::Sum => sum,
            Self::Min => min,
            Self::Max => max,
            Self::Range => max - min,
            Self::Count => n,
            Self::First => samples[0].value,
            Self::Last => samples[samples.len() - 1].value,
            Self::VarP => squares() / n,
            Self::StdP => (squares() / n).sqrt(),
            Self::VarS => sample_var(),
            Self::StdS => sample_var().sqrt(),
            // Without neighbours: the area under the samples over their own span.
            Self::Twa => twa::bucket_value(
                twa::Bucket {
                    samples,
                    before: None,
                    after: None,
                    edges: Edges {
                        start_ms: 0,
                        end_ms: u64::MAX,
                    },
                },
                false,
            ),
        }
    }

    /// The value reported for an empty bucket with `EMPTY`: 0 for `sum` and `count`, the
    /// previous bucket's last value for `last`, NaN otherwise (`twa` interpolates, in
    /// [`Bucketer`]).
    fn empty_value(self, previous_last: f64) -> f64 {
        match self {
            Self::Sum | Self::Count => 0.0,
            Self::Last => previous_last,
            _ => f64::NAN,
        }
    }
}

/// Which timestamp a bucket is reported at (`BUCKETTIMESTAMP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketTimestamp {
    /// The bucket's start (`-`, the default).
    Start,
    /// Its end (`+`).
    End,
    /// Its middle (`~`).
    Mid,
}

/// One `AGGREGATION` clause.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregation {
    /// The aggregator.
    pub aggregator: Aggregator,
    /// Bucket duration in milliseconds (> 0).
    pub bucket_ms: u64,
    /// A timestamp every bucket boundary is aligned to (`ALIGN`, default 0).
    pub align_ms: u64,
    /// `ALIGN +` with `toTimestamp +`: align to the series' last timestamp, known only
    /// when the query runs.
    pub align_to_end: bool,
    /// Where buckets are reported.
    pub bucket_timestamp: BucketTimestamp,
    /// `EMPTY`: report empty buckets between non-empty ones too.
    pub empty: bool,
}

impl Aggregation {
    /// The start of the bucket holding `ts_ms`, before clamping at 0 (the first bucket
    /// may begin before the epoch when the alignment is not a multiple of the duration).
    fn raw_bucket_start(&self, ts_ms: u64) -> i128 {
        let diff = i128::from(ts_ms) - i128::from(self.align_ms);
        i128::from(ts_ms) - diff.rem_euclid(i128::from(self.bucket_ms))
    }

    /// The start of the bucket holding `ts_ms`, never below 0 (RedisTimeSeries's
    /// `BucketStartNormalize`).
    pub fn bucket_start(&self, ts_ms: u64) -> u64 {
        clamp_ts(self.raw_bucket_start(ts_ms))
    }

    /// The first and last millisecond (inclusive) of the bucket holding `ts_ms`, the
    /// first never below 0.
    pub fn bucket_span(&self, ts_ms: u64) -> (u64, u64) {
        let raw = self.raw_bucket_start(ts_ms);
        (
            clamp_ts(raw),
            clamp_ts(raw + i128::from(self.bucket_ms) - 1),
        )
    }

    fn reported_ts(&self, raw_start: i128) -> u64 {
        let start = clamp_ts(raw_start);
        match self.bucket_timestamp {
            BucketTimestamp::Start => start,
            BucketTimestamp::End => start.saturating_add(self.bucket_ms),
            BucketTimestamp::Mid => start.saturating_add(self.bucket_ms / 2),
        }
    }

    /// Aggregates `samples` (in time order) into `(timestamp, value)` buckets, in time
    /// order.
    pub fn apply(&self, samples: &[Sample]) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut bucketer = Bucketer::new(*self, false);
        for &s in samples {
            bucketer.push(s, &mut |b| out.push(b));
        }
        bucketer.finish(&mut |b| out.push(b));
        out
    }
}

/// Aggregation as a stream: samples go in one at a time, in time order or (for
/// `TS.REVRANGE`) in reverse time order, and each bucket comes out as soon as a sample
/// past it arrives, in the same order; with `EMPTY`, the empty buckets between two
/// non-empty ones come out between them. Reversed, the output is exactly
/// [`Aggregation::apply`]'s reversed (up to rounding for `twa`, which adds in walk order
/// as RedisTimeSeries does).
///
/// Memory: the samples of one bucket (the aggregators fold a bucket's samples at once, as
/// `std.s` and `var.s` need two passes over them).
#[derive(Clone, Debug)]
pub struct Bucketer {
    aggregation: Aggregation,
    reverse: bool,
    /// The bucket being filled: its raw start and end (exclusive), and its samples in
    /// arrival order.
    current: Option<(i128, i128)>,
    samples: Vec<Sample>,
    /// The bucket that came out last: its raw start, and its last sample in arrival order
    /// (an empty bucket of `last` after it repeats its value; `twa` interpolates from it).
    previous: Option<(i128, Sample)>,
    /// `Some` for `twa` only.
    twa: Option<Walk>,
}

impl Bucketer {
    /// A bucketer for samples in time order, or in reverse time order if `reverse`.
    pub fn new(aggregation: Aggregation, reverse: bool) -> Self {
        Self::with_twa_bounds(aggregation, reverse, TwaBounds::NONE)
    }

    /// As [`Bucketer::new`], with the range's bounds and neighbours for `twa` (unused by
    /// the other aggregators).
    pub fn with_twa_bounds(aggregation: Aggregation, reverse: bool, bounds: TwaBounds) -> Self {
        let twa = (aggregation.aggregator == Aggregator::Twa).then(|| Walk::new(bounds, reverse));
        Self {
            aggregation,
            reverse,
            current: None,
            samples: Vec::new(),
            previous: None,
            twa,
        }
    }

    /// Whether dropped samples matter ([`Bucketer::skip`]): only to `twa`.
    pub fn wants_skipped(&self) -> bool {
        self.twa.is_some()
    }

    /// Notes a sample of the range that a filter dropped: `twa` takes the first bucket's
    /// and the last bucket's outer neighbours from the unfiltered series, as
    /// RedisTimeSeries does.
    pub fn skip(&mut self, sample: Sample) {
        let bucket_ms = self.aggregation.bucket_ms;
        if let Some(walk) = self.twa.as_mut() {
            walk.dropped(sample, self.current, bucket_ms);
        }
    }

    /// As [`Bucketer::push`] for a sample a filter kept, where [`Bucketer::skip`] notes the
    /// dropped ones (the plain `push` leaves that bookkeeping out of every other walk).
    pub fn push_kept(&mut self, sample: Sample, out: &mut impl FnMut(Sample)) {
        let gap = self.twa.as_mut().and_then(|w| w.kept(sample, self.current));
        self.push(sample, out);
        let (bucket_ms, current) = (self.aggregation.bucket_ms, self.current);
        if let (Some(walk), Some(current)) = (self.twa.as_mut(), current) {
            walk.opened(gap, sample, current, bucket_ms);
        }
    }

    /// Takes the next sample; `out` gets the buckets it closes.
    pub fn push(&mut self, sample: Sample, out: &mut impl FnMut(Sample)) {
        let ts = i128::from(sample.ts_ms);
        match self.current {
            Some((start, end)) if start <= ts && ts < end => {}
            current => {
                if current.is_some() {
                    self.close(Some(sample), out);
                }
                let start = self.aggregation.raw_bucket_start(sample.ts_ms);
                self.current = Some((start, start + i128::from(self.aggregation.bucket_ms)));
            }
        }
        self.samples.push(sample);
    }

    /// Closes the last bucket.
    pub fn finish(&mut self, out: &mut impl FnMut(Sample)) {
        if self.current.is_some() {
            let beyond = self.twa.as_ref().and_then(Walk::beyond);
            self.close(beyond, out);
        }
    }

    /// The edges of the bucket starting at raw `start` for `twa`: cut at the range.
    fn twa_edges(&self, start: i128) -> Edges {
        let bounds = self.twa.as_ref().map_or(TwaBounds::NONE, |w| w.bounds);
        Edges {
            start_ms: clamp_ts(start).max(bounds.from_ms),
            end_ms: clamp_ts(start + i128::from(self.aggregation.bucket_ms)).min(bounds.to_ms),
        }
    }

    /// Closes the current bucket; `next` is the sample after it in arrival order, if any.
    fn close(&mut self, next: Option<Sample>, out: &mut impl FnMut(Sample)) {
        let (start, _) = self.current.take().expect("a bucket is open");
        let arrival_last = self.samples[self.samples.len() - 1];
        let arrival_first = self.samples[0];
        if self.reverse {
            self.samples.reverse();
        }
        let value = match &self.twa {
            Some(walk) => {
                let prev = self.previous.map(|(_, last)| last).or(walk.entry);
                let (before, after) = if self.reverse {
                    (next, prev)
                } else {
                    (prev, next)
                };
                twa::bucket_value(
                    twa::Bucket {
                        samples: &self.samples,
                        before,
                        after,
                        edges: self.twa_edges(start),
                    },
                    self.reverse,
                )
            }
            None => self.aggregation.aggregator.fold(&self.samples),
        };
        self.samples.clear();
        let bucket = Sample {
            ts_ms: self.aggregation.reported_ts(start),
            value,
        };
        let bucket_ms = i128::from(self.aggregation.bucket_ms);
        if let (true, Some((other, other_last))) = (self.aggregation.empty, self.previous) {
            // Forward, the gaps follow the earlier bucket; reversed, this bucket is the
            // earlier one of the pair. A gap's `last` repeats the earlier bucket's last
            // value; its `twa` is the line from the earlier bucket to the later one.
            let (earlier_start, later_start, earlier_last, later_first) = if self.reverse {
                (start, other, arrival_first, other_last)
            } else {
                (other, start, other_last, arrival_first)
            };
            // A filtered walk takes them from the unfiltered series, as RedisTimeSeries.
            let (earlier_last, later_first) = self
                .twa
                .as_ref()
                .and_then(Walk::gap_neighbours)
                .unwrap_or((earlier_last, later_first));
            let gap_value = |gap: i128| match self.twa {
                Some(_) => twa::empty_value(earlier_last, later_first, self.twa_edges(gap)),
                None => self.aggregation.aggregator.empty_value(earlier_last.value),
            };
            let mut emit = |gap: i128| {
                out(Sample {
                    ts_ms: self.aggregation.reported_ts(gap),
                    value: gap_value(gap),
                })
            };
            if self.reverse {
                let mut gap = later_start - bucket_ms;
                while gap > earlier_start {
                    emit(gap);
                    gap -= bucket_ms;
                }
            } else {
                let mut gap = earlier_start + bucket_ms;
                while gap < later_start {
                    emit(gap);
                    gap += bucket_ms;
                }
            }
        }
        out(bucket);
        self.previous = Some((start, arrival_last));
    }
}

fn clamp_ts(ts: i128) -> u64 {
    ts.clamp(0, i128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts_ms: u64, value: f64) -> Sample {
        Sample { ts_ms, value }
    }

    fn agg(aggregator: Aggregator, bucket_ms: u64) -> Aggregation {
        Aggregation {
            aggregator,
            bucket_ms,
            align_ms: 0,
            align_to_end: false,
            bucket_timestamp: BucketTimestamp::Start,
            empty: false,
        }
    }

    #[test]
    fn every_aggregator_on_one_bucket() {
        let b = [
            s(0, 2.0),
            s(2, 4.0),
            s(4, 4.0),
            s(6, 4.0),
            s(8, 5.0),
            s(9, 5.0),
            s(10, 7.0),
            s(11, 9.0),
        ];
        let b = &b[..];
        assert_eq!(Aggregator::Avg.fold(b), 5.0);
        assert_eq!(Aggregator::Sum.fold(b), 40.0);
        assert_eq!(Aggregator::Min.fold(b), 2.0);
        assert_eq!(Aggregator::Max.fold(b), 9.0);
        assert_eq!(Aggregator::Range.fold(b), 7.0);
        assert_eq!(Aggregator::Count.fold(b), 8.0);
        assert_eq!(Aggregator::First.fold(b), 2.0);
        assert_eq!(Aggregator::Last.fold(b), 9.0);
        assert_eq!(Aggregator::VarP.fold(b), 4.0);
        assert_eq!(Aggregator::StdP.fold(b), 2.0);
        assert!((Aggregator::VarS.fold(b) - 32.0 / 7.0).abs() < 1e-12);
        assert!((Aggregator::StdS.fold(b) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(
            Aggregator::Twa.fold(&[s(0, 0.0), s(10, 10.0), s(20, 10.0)]),
            7.5
        );
    }

    #[test]
    fn buckets_align_and_fill_empty_ones() {
        let samples = [s(1, 1.0), s(5, 2.0), s(31, 3.0)];
        let mut a = agg(Aggregator::Sum, 10);
        assert_eq!(a.apply(&samples), vec![s(0, 3.0), s(30, 3.0)]);
        a.empty = true;
        assert_eq!(
            a.apply(&samples),
            vec![s(0, 3.0), s(10, 0.0), s(20, 0.0), s(30, 3.0)]
        );
        a.align_ms = 5;
        a.empty = false;
        a.bucket_timestamp = BucketTimestamp::End;
        assert_eq!(a.apply(&samples), vec![s(10, 1.0), s(15, 2.0), s(35, 3.0)]);
        assert_eq!(a.bucket_start(1), 0, "a bucket never starts below 0");
    }

    proptest::proptest! {
        /// Fed in reverse time order, the bucketer gives `apply`'s buckets reversed, with
        /// every aggregator, alignment, bucket timestamp and `EMPTY` (bit for bit but for
        /// `twa`'s rounding).
        #[test]
        fn reversed_bucketing_is_apply_reversed(
            gaps in proptest::collection::vec(0u64..40, 0..60),
            values in proptest::collection::vec(-1e6f64..1e6, 60),
            tag in 0u8..13,
            bucket_ms in 1u64..50,
            align_ms in 0u64..60,
            stamp in 0u8..3,
            empty: bool,
        ) {
            let mut ts_ms = 0;
            let samples: Vec<Sample> = gaps
                .iter()
                .zip(&values)
                .map(|(gap, &value)| {
                    ts_ms += gap + 1;
                    s(ts_ms, value)
                })
                .collect();
            let aggregation = Aggregation {
                aggregator: Aggregator::from_tag(tag).unwrap(),
                bucket_ms,
                align_ms,
                align_to_end: false,
                bucket_timestamp: [BucketTimestamp::Start, BucketTimestamp::End, BucketTimestamp::Mid]
                    [usize::from(stamp)],
                empty,
            };
            let mut want = aggregation.apply(&samples);
            want.reverse();
            let mut got = Vec::new();
            let mut bucketer = Bucketer::new(aggregation, true);
            for &sample in samples.iter().rev() {
                bucketer.push(sample, &mut |b| got.push(b));
            }
            bucketer.finish(&mut |b| got.push(b));
            proptest::prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                proptest::prop_assert_eq!(g.ts_ms, w.ts_ms);
                // `twa` adds its segments in walk order, so rounds differently reversed.
                let tolerance = match aggregation.aggregator {
                    Aggregator::Twa => 1e-9 * w.value.abs().max(1.0),
                    _ => 0.0,
                };
                let same = (g.value - w.value).abs() <= tolerance
                    || g.value.to_bits() == w.value.to_bits()
                    || (g.value.is_nan() && w.value.is_nan());
                proptest::prop_assert!(same, "{:?} vs {:?}", g, w);
            }
        }
    }
}
