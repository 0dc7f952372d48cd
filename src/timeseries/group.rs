//! `TS.MRANGE` / `TS.MREVRANGE ... GROUPBY label REDUCE reducer` (RedisTimeSeries 1.10,
//! redis.io "TS.MRANGE"): the matching series that carry `label` are grouped by its value,
//! and each group's samples are reduced timestamp by timestamp into one series named
//! `label=value`, with the labels `label`, `__reducer__` and `__source__` (the source keys,
//! comma-separated).
//!
//! Every shard runs the range of its own matching series (filters and aggregation
//! included, `COUNT` not), one series at a time, and reduces them per group and
//! timestamp into [`Partial`]s, which it sends as one [`GroupPart`] per group; the
//! connection's shard merges the parts, finishes the reducer and encodes the reply
//! ([`encode`]). What travels is one partial per group, shard and timestamp, not the
//! series: a day of 1,000 series in 10 groups is about 10 × 8,640 partials per shard.
//! Values are folded in key order within a shard and the shards' partials merged in the
//! order of their first key, so a reply does not change between runs; the sums' rounding
//! may differ in the last bits from folding every series in one sequence. Groups come in byte order of
//! their label value, sources in key order; a reduced series is in time order (reverse
//! for `TS.MREVRANGE`) and `COUNT` cuts the reduced series, as in RedisTimeSeries.
//!
//! ```text
//!  group part: label_value_len u32 | label_value | source_count u32 | source_count × (len u32 | key)
//!              | ts_count u32 | ts_count × (ts_ms u64 | count u64 | sum | min | max | mean | m2 as f64)
//!              (little-endian; travels between shards of one process, never stored)
//! ```

use std::collections::BTreeMap;

use crate::resp::{self, resp3, Protocol};

use super::aggregate::Aggregator;
use super::args::ArgError;
use super::chunk::Sample;
use super::multi::{encode_labels, LabelChoice};
use super::reply;

/// The reducers `REDUCE` accepts: the aggregators but `first`, `last` and `twa`.
const REDUCERS: [Aggregator; 10] = [
    Aggregator::Avg,
    Aggregator::Sum,
    Aggregator::Min,
    Aggregator::Max,
    Aggregator::Range,
    Aggregator::Count,
    Aggregator::StdP,
    Aggregator::StdS,
    Aggregator::VarP,
    Aggregator::VarS,
];

/// A parsed `GROUPBY label REDUCE reducer` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupBy {
    /// The label whose value names the group.
    pub label: Vec<u8>,
    /// How the values of one timestamp are folded.
    pub reducer: Aggregator,
    /// The reducer as the client spelled it, lower-cased: the `__reducer__` label.
    pub reducer_name: String,
}

/// Splits the arguments after `FILTER` into the filter expressions and the `GROUPBY`
/// clause, if any.
///
/// # Errors
/// As RedisTimeSeries 1.10: wrong arity unless `GROUPBY` is followed by exactly a label,
/// `REDUCE` and a reducer; `ERR TSDB: failed parsing reducer` for an unknown reducer.
pub fn split<'a, 'b>(
    command: &[u8],
    after_filter: &'a [&'b [u8]],
) -> Result<(&'a [&'b [u8]], Option<GroupBy>), ArgError> {
    let Some(at) = after_filter
        .iter()
        .position(|a| a.eq_ignore_ascii_case(b"GROUPBY"))
    else {
        return Ok((after_filter, None));
    };
    let clause = &after_filter[at + 1..];
    let [label, reduce, reducer] = clause else {
        return Err(crate::command::wrong_arity(
            &String::from_utf8_lossy(command).to_ascii_lowercase(),
        ));
    };
    if !reduce.eq_ignore_ascii_case(b"REDUCE") {
        return Err(crate::command::wrong_arity(
            &String::from_utf8_lossy(command).to_ascii_lowercase(),
        ));
    }
    let reducer_kind = Aggregator::parse(reducer)
        .filter(|a| REDUCERS.contains(a))
        .ok_or_else(|| "ERR TSDB: failed parsing reducer".to_string())?;
    let group_by = GroupBy {
        label: label.to_vec(),
        reducer: reducer_kind,
        reducer_name: String::from_utf8_lossy(reducer).to_ascii_lowercase(),
    };
    Ok((&after_filter[..at], Some(group_by)))
}

/// The reduction so far of the values at one timestamp: enough to finish every reducer,
/// and to merge with another shard's. Values are added one by one with Welford's update,
/// and two partials merge with Chan, Golub and LeVeque's pairwise formula for the
/// variance ("Updating formulae and a pairwise algorithm for computing sample
/// variances", 1979).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Partial {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    /// Sum of squared differences from the mean.
    m2: f64,
}

impl Partial {
    /// The partial of one value.
    pub fn of(value: f64) -> Self {
        Self {
            count: 1,
            sum: value,
            min: value,
            max: value,
            mean: value,
            m2: 0.0,
        }
    }

    /// Adds one value.
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
    }

    /// Merges another partial of the same timestamp into this one.
    pub fn merge(&mut self, other: &Partial) {
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        let (a, b) = (self.count as f64, other.count as f64);
        self.mean += delta * b / count as f64;
        self.m2 += other.m2 + delta * delta * a * b / count as f64;
        self.count = count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The reduced value by `reducer` (one of [`REDUCERS`]).
    pub fn finish(&self, reducer: Aggregator) -> f64 {
        let n = self.count as f64;
        let sample_var = if self.count > 1 {
            self.m2 / (n - 1.0)
        } else {
            0.0
        };
        match reducer {
            Aggregator::Avg => self.sum / n,
            Aggregator::Sum => self.sum,
            Aggregator::Min => self.min,
            Aggregator::Max => self.max,
            Aggregator::Range => self.max - self.min,
            Aggregator::Count => n,
            Aggregator::VarP => self.m2 / n,
            Aggregator::StdP => (self.m2 / n).sqrt(),
            Aggregator::VarS => sample_var,
            Aggregator::StdS => sample_var.sqrt(),
            // Not reducers (refused by `split`).
            Aggregator::First | Aggregator::Last | Aggregator::Twa => f64::NAN,
        }
    }
}

/// One shard's part of one group: the group's label value, the shard's series in it (in
/// key order), and their values reduced per timestamp so far. A shard sends this instead
/// of its series' ranges, so what travels is about one series per group and shard.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupPart {
    /// The value of the `GROUPBY` label.
    pub label_value: Vec<u8>,
    /// The shard's series of the group, in the order they were added.
    pub sources: Vec<Vec<u8>>,
    /// Timestamp and partial, in time order.
    pub partials: BTreeMap<u64, Partial>,
}

impl GroupPart {
    /// Adds one series (`key`, its range in time order); series go in key order.
    pub fn add_series(&mut self, key: Vec<u8>, samples: &[Sample]) {
        self.sources.push(key);
        for s in samples {
            self.partials
                .entry(s.ts_ms)
                .and_modify(|p| p.add(s.value))
                .or_insert_with(|| Partial::of(s.value));
        }
    }

    /// Serializes the part (layout in the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.label_value.len() + self.partials.len() * 56);
        put_bytes(&mut out, &self.label_value);
        out.extend_from_slice(&(self.sources.len() as u32).to_le_bytes());
        for key in &self.sources {
            put_bytes(&mut out, key);
        }
        out.extend_from_slice(&(self.partials.len() as u32).to_le_bytes());
        for (ts_ms, p) in &self.partials {
            out.extend_from_slice(&ts_ms.to_le_bytes());
            out.extend_from_slice(&p.count.to_le_bytes());
            for x in [p.sum, p.min, p.max, p.mean, p.m2] {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// Reads a part made by [`GroupPart::encode`]; `None` if the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut rest = bytes;
        let label_value = take_bytes(&mut rest)?;
        let source_count = take_u32(&mut rest)?;
        let mut sources = Vec::with_capacity(source_count.min(rest.len() / 4));
        for _ in 0..source_count {
            sources.push(take_bytes(&mut rest)?);
        }
        let ts_count = take_u32(&mut rest)?;
        let mut partials = BTreeMap::new();
        for _ in 0..ts_count {
            let ts_ms = take_u64(&mut rest)?;
            let count = take_u64(&mut rest)?;
            let mut x = [0.0; 5];
            for slot in &mut x {
                *slot = f64::from_bits(take_u64(&mut rest)?);
            }
            let [sum, min, max, mean, m2] = x;
            let partial = Partial {
                count,
                sum,
                min,
                max,
                mean,
                m2,
            };
            if count == 0 || partials.insert(ts_ms, partial).is_some() {
                return None;
            }
        }
        rest.is_empty().then_some(Self {
            label_value,
            sources,
            partials,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
    *rest = tail;
    Some(head)
}

fn take_u32(rest: &mut &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(take(rest, 4)?.try_into().ok()?) as usize)
}

fn take_u64(rest: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(rest, 8)?.try_into().ok()?))
}

fn take_bytes(rest: &mut &[u8]) -> Option<Vec<u8>> {
    let len = take_u32(rest)?;
    Some(take(rest, len)?.to_vec())
}

/// What the encoder needs besides the entries: the clause, the direction, `COUNT`, and
/// which of the reduced series' labels to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupQuery {
    /// The `GROUPBY` clause.
    pub group_by: GroupBy,
    /// `TS.MREVRANGE`: newest first.
    pub reverse: bool,
    /// `COUNT n` of the reduced series.
    pub count: Option<u64>,
    /// `WITHLABELS`, `SELECTED_LABELS l ...` or neither.
    pub labels: LabelChoice,
}

/// Merges every shard's parts into one reduced series per label value, in label-value
/// order. Parts merge in the order of their first source key, so the result does not
/// depend on which shard answered first.
pub fn reduce(query: &GroupQuery, mut parts: Vec<GroupPart>) -> Vec<Reduced> {
    parts.sort_by(|a, b| {
        (&a.label_value, a.sources.first()).cmp(&(&b.label_value, b.sources.first()))
    });
    let mut groups: BTreeMap<Vec<u8>, GroupPart> = BTreeMap::new();
    for part in parts {
        let group = groups.entry(part.label_value).or_default();
        group.sources.extend(part.sources);
        for (ts_ms, partial) in part.partials {
            group
                .partials
                .entry(ts_ms)
                .and_modify(|p| p.merge(&partial))
                .or_insert(partial);
        }
    }
    groups
        .into_iter()
        .map(|(label_value, mut group)| {
            group.sources.sort();
            let reducer = query.group_by.reducer;
            let mut samples: Vec<Sample> = group
                .partials
                .iter()
                .map(|(&ts_ms, p)| Sample {
                    ts_ms,
                    value: p.finish(reducer),
                })
                .collect();
            if query.reverse {
                samples.reverse();
            }
            if let Some(count) = query.count {
                samples.truncate(usize::try_from(count).unwrap_or(usize::MAX));
            }
            Reduced {
                label_value,
                sources: group.sources,
                samples,
            }
        })
        .collect()
}

/// One reduced series of a grouped reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Reduced {
    /// The group's label value.
    pub label_value: Vec<u8>,
    /// The grouped keys, in key order (the `__source__` label joins them with commas).
    pub sources: Vec<Vec<u8>>,
    /// The reduced samples, in reply order.
    pub samples: Vec<Sample>,
}

/// Encodes the grouped reply from every shard's entries. RESP2: an array of
/// `[name, labels, samples]`; RESP3 (RedisTimeSeries `src/reply.c`, `ReplySeriesArrayPos`
/// of a reduced series): a map from name to `[labels, {reducers: [r]}, {sources: [k ...]},
/// samples]`, where `WITHLABELS` shows only the group's label.
pub fn encode(
    out: &mut Vec<u8>,
    proto: Protocol,
    query: &GroupQuery,
    entries: Vec<super::multi::EntryPart>,
) {
    let mut decoded = Vec::with_capacity(entries.len());
    for (_, bytes, _) in entries {
        match GroupPart::decode(&bytes) {
            Some(part) => decoded.push(part),
            None => {
                resp::error(out, "ERR internal error: bad grouped entry");
                return;
            }
        }
    }
    let groups = reduce(query, decoded);
    match proto {
        Protocol::Resp2 => resp::array_header(out, groups.len()),
        Protocol::Resp3 => resp3::map_header(out, proto, groups.len()),
    }
    for group in groups {
        let label = &query.group_by.label;
        let mut name = label.clone();
        name.push(b'=');
        name.extend_from_slice(&group.label_value);
        let sources = group.sources.join(&b","[..]);
        let labels: [(&[u8], &[u8]); 3] = [
            (label, &group.label_value),
            (b"__reducer__", query.group_by.reducer_name.as_bytes()),
            (b"__source__", &sources),
        ];
        if proto == Protocol::Resp2 {
            resp::array_header(out, 3);
            resp::bulk(out, &name);
            encode_labels(out, proto, &labels, &labels, &query.labels);
        } else {
            resp::bulk(out, &name);
            resp::array_header(out, 4);
            encode_labels(out, proto, &labels, &labels[..1], &query.labels);
            resp3::map_header(out, proto, 1);
            resp::bulk(out, b"reducers");
            resp::array_header(out, 1);
            resp::bulk(out, query.group_by.reducer_name.as_bytes());
            resp3::map_header(out, proto, 1);
            resp::bulk(out, b"sources");
            resp::array_header(out, group.sources.len());
            for source in &group.sources {
                resp::bulk(out, source);
            }
        }
        reply::samples(out, proto, group.samples.iter());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts_ms: u64, value: f64) -> Sample {
        Sample { ts_ms, value }
    }

    /// One shard's part of a group: its series (key, samples) in key order.
    fn part(label_value: &str, series: &[(&str, &[Sample])]) -> GroupPart {
        let mut part = GroupPart {
            label_value: label_value.as_bytes().to_vec(),
            ..GroupPart::default()
        };
        for (key, samples) in series {
            part.add_series(key.as_bytes().to_vec(), samples);
        }
        part
    }

    #[test]
    fn the_clause_parses_with_redistimeseries_errors() {
        let args = |words: &[&'static str]| -> Vec<&'static [u8]> {
            words.iter().map(|w| w.as_bytes()).collect()
        };
        let ok = args(&["a=1", "GROUPBY", "host", "reduce", "STD.P"]);
        let (filter, group) = split(b"TS.MRANGE", &ok).unwrap();
        assert_eq!(filter, &ok[..1]);
        let group = group.unwrap();
        assert_eq!(
            (group.reducer, group.reducer_name.as_str()),
            (Aggregator::StdP, "std.p")
        );
        let arity = "ERR wrong number of arguments for 'ts.mrange' command";
        for bad in [
            &["a=1", "GROUPBY"][..],
            &["a=1", "GROUPBY", "host"],
            &["a=1", "GROUPBY", "host", "abc", "abc"],
            &["a=1", "GROUPBY", "host", "REDUCE", "max", "x"],
        ] {
            assert_eq!(
                split(b"TS.MRANGE", &args(bad)).unwrap_err(),
                arity,
                "{bad:?}"
            );
        }
        for reducer in ["first", "last", "twa", "bla"] {
            let bad = args(&["a=1", "GROUPBY", "host", "REDUCE", reducer]);
            assert_eq!(
                split(b"TS.MRANGE", &bad).unwrap_err(),
                "ERR TSDB: failed parsing reducer"
            );
        }
    }

    #[test]
    fn parts_round_trip_and_damage_is_refused() {
        let p = part(
            "user",
            &[("a", &[s(1, 100.0), s(2, -0.5)]), ("b", &[s(2, 3.0)])],
        );
        let bytes = p.encode();
        assert_eq!(GroupPart::decode(&bytes), Some(p));
        for cut in 0..bytes.len() {
            assert_eq!(GroupPart::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(GroupPart::decode(&[bytes.clone(), vec![0]].concat()), None);
    }

    proptest::proptest! {
        /// However the series are split between shards, merging the shards' partials
        /// gives every reducer's value of all the values at once (two-pass variance),
        /// within rounding.
        #[test]
        fn merged_partials_reduce_as_one_pass_over_all_values(
            values in proptest::collection::vec(-1e6f64..1e6, 1..40),
            split_at in 0usize..40,
        ) {
            let split_at = split_at.clamp(1, values.len());
            let partial = |vs: &[f64]| {
                let mut p = Partial::of(vs[0]);
                vs[1..].iter().for_each(|&v| p.add(v));
                p
            };
            let mut merged = partial(&values[..split_at]);
            if split_at < values.len() {
                merged.merge(&partial(&values[split_at..]));
            }
            let samples: Vec<Sample> = values.iter().map(|&v| s(0, v)).collect();
            for reducer in REDUCERS {
                let (got, want) = (merged.finish(reducer), reducer.fold(&samples));
                let scale = values.iter().map(|v| v.abs()).fold(1.0, f64::max);
                let tolerance = match reducer {
                    Aggregator::VarP | Aggregator::VarS => 1e-9 * scale * scale,
                    _ => 1e-9 * scale,
                };
                proptest::prop_assert!((got - want).abs() <= tolerance, "{:?}: {} vs {}", reducer, got, want);
            }
        }
    }

    #[test]
    fn groups_reduce_per_timestamp_in_label_order() {
        // RedisTimeSeries's tests/flow/test_ts_mrange_groupby.py data.
        let mut query = GroupQuery {
            group_by: GroupBy {
                label: b"metric_name".to_vec(),
                reducer: Aggregator::Max,
                reducer_name: "max".into(),
            },
            reverse: false,
            count: None,
            labels: LabelChoice::All,
        };
        let entries = vec![
            part("system", &[("s3", &[s(2, 40.0)])]),
            // Two shards' parts of one group.
            part("user", &[("s2", &[s(2, 55.0)])]),
            part("user", &[("s1", &[s(1, 100.0), s(2, 95.0)])]),
        ];
        let groups = reduce(&query, entries.clone());
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].label_value, b"system");
        assert_eq!(groups[1].sources, vec![b"s1".to_vec(), b"s2".to_vec()]);
        assert_eq!(groups[1].samples, vec![s(1, 100.0), s(2, 95.0)]);
        query.group_by.reducer = Aggregator::Sum;
        assert_eq!(
            reduce(&query, entries.clone())[1].samples,
            vec![s(1, 100.0), s(2, 150.0)]
        );
        query.group_by.reducer = Aggregator::Min;
        query.count = Some(1);
        assert_eq!(
            reduce(&query, entries.clone())[1].samples,
            vec![s(1, 100.0)]
        );
        query.reverse = true;
        query.group_by.reducer = Aggregator::Count;
        query.count = None;
        assert_eq!(
            reduce(&query, entries)[1].samples,
            vec![s(2, 2.0), s(1, 1.0)]
        );
    }
}
