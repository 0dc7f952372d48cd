//! `TS.MRANGE` / `TS.MREVRANGE ... GROUPBY label REDUCE reducer` (RedisTimeSeries 1.10,
//! redis.io "TS.MRANGE"): the matching series that carry `label` are grouped by its value,
//! and each group's samples are reduced timestamp by timestamp into one series named
//! `label=value`, with the labels `label`, `__reducer__` and `__source__` (the source keys,
//! comma-separated).
//!
//! Every shard runs the range of its own matching series (filters and aggregation
//! included, `COUNT` not) and sends each as a [`GroupedEntry`]; the connection's shard
//! groups them, reduces and encodes the reply ([`encode`]). Groups come in byte order of
//! their label value, sources in key order; a reduced series is in time order (reverse
//! for `TS.MREVRANGE`) and `COUNT` cuts the reduced series, as in RedisTimeSeries.
//!
//! ```text
//!  grouped entry: label_value_len u32 | label_value | count u32 | count × (ts_ms u64 | value f64)
//!                 (little-endian; travels between shards of one process, never stored)
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

/// One series' part of a grouped reply: its group's label value and its range.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupedEntry {
    /// The value of the `GROUPBY` label.
    pub label_value: Vec<u8>,
    /// The series' samples (or buckets) in time order.
    pub samples: Vec<Sample>,
}

impl GroupedEntry {
    /// Serializes the entry (layout in the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.label_value.len() + self.samples.len() * 16);
        out.extend_from_slice(&(self.label_value.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.label_value);
        out.extend_from_slice(&(self.samples.len() as u32).to_le_bytes());
        for s in &self.samples {
            out.extend_from_slice(&s.ts_ms.to_le_bytes());
            out.extend_from_slice(&s.value.to_le_bytes());
        }
        out
    }

    /// Reads an entry made by [`GroupedEntry::encode`]; `None` if the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let take = |rest: &mut &[u8], n: usize| -> Option<Vec<u8>> {
            let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
            *rest = tail;
            Some(head.to_vec())
        };
        let u32_at = |rest: &mut &[u8]| -> Option<usize> {
            Some(u32::from_le_bytes(take(rest, 4)?.try_into().ok()?) as usize)
        };
        let mut rest = bytes;
        let label_len = u32_at(&mut rest)?;
        let label_value = take(&mut rest, label_len)?;
        let count = u32_at(&mut rest)?;
        let mut samples = Vec::with_capacity(count.min(rest.len() / 16));
        for _ in 0..count {
            let ts_ms = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
            let value = f64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
            samples.push(Sample { ts_ms, value });
        }
        rest.is_empty().then_some(Self {
            label_value,
            samples,
        })
    }
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

/// One source series of a group: its key and samples.
type Source = (Vec<u8>, Vec<Sample>);

/// Folds the groups' series into one per label value, in label-value order. `entries`
/// are `(key, GroupedEntry)` in any order.
pub fn reduce(query: &GroupQuery, mut entries: Vec<(Vec<u8>, GroupedEntry)>) -> Vec<Reduced> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut groups: BTreeMap<Vec<u8>, Vec<Source>> = BTreeMap::new();
    for (key, entry) in entries {
        groups
            .entry(entry.label_value)
            .or_default()
            .push((key, entry.samples));
    }
    groups
        .into_iter()
        .map(|(label_value, members)| {
            let mut by_ts: BTreeMap<u64, Vec<Sample>> = BTreeMap::new();
            for (_, samples) in &members {
                for s in samples {
                    by_ts.entry(s.ts_ms).or_default().push(*s);
                }
            }
            let mut samples: Vec<Sample> = by_ts
                .into_iter()
                .map(|(ts_ms, values)| Sample {
                    ts_ms,
                    value: query.group_by.reducer.fold(&values),
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
                sources: members.into_iter().map(|(key, _)| key).collect(),
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
    entries: Vec<(Vec<u8>, Vec<u8>)>,
) {
    let mut decoded = Vec::with_capacity(entries.len());
    for (key, bytes) in entries {
        match GroupedEntry::decode(&bytes) {
            Some(entry) => decoded.push((key, entry)),
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

    fn entry(label_value: &str, samples: &[Sample]) -> GroupedEntry {
        GroupedEntry {
            label_value: label_value.as_bytes().to_vec(),
            samples: samples.to_vec(),
        }
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
    fn entries_round_trip_and_damage_is_refused() {
        let e = entry("user", &[s(1, 100.0), s(2, -0.5)]);
        let bytes = e.encode();
        assert_eq!(GroupedEntry::decode(&bytes), Some(e));
        assert_eq!(GroupedEntry::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(
            GroupedEntry::decode(&[bytes.clone(), vec![0]].concat()),
            None
        );
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
            (b"s3".to_vec(), entry("system", &[s(2, 40.0)])),
            (b"s2".to_vec(), entry("user", &[s(2, 55.0)])),
            (b"s1".to_vec(), entry("user", &[s(1, 100.0), s(2, 95.0)])),
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
