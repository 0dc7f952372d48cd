//! Parsing the time-series commands' arguments the way RedisTimeSeries 1.10 does
//! (`src/query_language.c` and `src/module.c` of RedisTimeSeries): options are found by
//! keyword anywhere after the key, case-insensitively, and unknown words are ignored, as
//! `RMUtil_ArgIndex` does there. Errors are RedisTimeSeries's texts, `ERR TSDB: ...`.
//!
//! Everything here is pure: it takes the arguments after the command name and returns a
//! typed request or the error reply text.

use super::aggregate::{Aggregation, Aggregator, BucketTimestamp};
use super::chunk::ChunkEncoding;
use super::meta::DuplicatePolicy;
use crate::command::{parse_i64, wrong_arity};

/// A parse failure: the error reply text, without the leading `-`.
pub type ArgError = String;

/// `TS.CREATE` / `TS.ADD` / `TS.INCRBY` / `TS.ALTER` series options; `None` when not given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesOptions {
    /// `RETENTION ms`.
    pub retention_ms: Option<u64>,
    /// `ENCODING COMPRESSED|UNCOMPRESSED` (or the bare words).
    pub encoding: Option<ChunkEncoding>,
    /// `CHUNK_SIZE bytes`.
    pub chunk_size_bytes: Option<u32>,
    /// `DUPLICATE_POLICY policy`.
    pub duplicate_policy: Option<DuplicatePolicy>,
    /// `LABELS name value ...`.
    pub labels: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    /// `IGNORE maxTimeDiff maxValDiff`.
    pub ignore: Option<IgnoreWindow>,
}

/// `IGNORE maxTimeDiff maxValDiff` (RedisTimeSeries 1.12): under `DUPLICATE_POLICY LAST`,
/// a sample at or after the newest one, within `max_time_diff_ms` of it and within
/// `max_value_diff` of its value, is not stored (the reply is the newest timestamp).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IgnoreWindow {
    /// Largest time distance from the newest sample that is ignored, in milliseconds.
    pub max_time_diff_ms: u64,
    /// Largest absolute value difference from the newest sample that is ignored.
    pub max_value_diff: f64,
}

/// A timestamp argument: a number, or `*` for the server's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampArg {
    /// Milliseconds.
    At(u64),
    /// `*`.
    Now,
}

/// `TS.RANGE` / `TS.REVRANGE` arguments after the key. The default is `- +`: every
/// sample, no option.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RangeArgs {
    /// `fromTimestamp` (`-` is 0).
    pub from_ms: u64,
    /// `toTimestamp`, `None` for `+` (the series' last timestamp).
    pub to_ms: Option<u64>,
    /// `COUNT n`: most samples (or buckets) replied.
    pub count: Option<u64>,
    /// `FILTER_BY_TS ts...`, sorted.
    pub filter_by_ts: Option<Vec<u64>>,
    /// `FILTER_BY_VALUE min max`.
    pub filter_by_value: Option<(f64, f64)>,
    /// `AGGREGATION ...` with its `ALIGN`, `BUCKETTIMESTAMP` and `EMPTY`.
    pub aggregation: Option<Aggregation>,
    /// `LATEST`: a compacted series also reports its still-open bucket.
    pub latest: bool,
}

fn tsdb(text: &str) -> ArgError {
    format!("ERR TSDB: {text}")
}

/// The index of the first argument equal to `word` (case-insensitive), at or after `from`.
fn find(args: &[&[u8]], word: &str, from: usize) -> Option<usize> {
    (from..args.len()).find(|&i| args[i].eq_ignore_ascii_case(word.as_bytes()))
}

fn parse_u64(bytes: &[u8]) -> Option<u64> {
    parse_i64(bytes).and_then(|n| u64::try_from(n).ok())
}

/// Parses a double as Redis does (`strtod` on the whole argument), refusing NaN and the
/// infinities: a sample must be a finite number.
pub fn parse_value(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.starts_with(char::is_whitespace) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses a sample timestamp (`TS.ADD`, `TS.MADD`): an integer or `*`.
///
/// # Errors
/// `ERR TSDB: invalid timestamp` for a non-integer, `..., must be a nonnegative integer`
/// for a negative one.
pub fn parse_timestamp(bytes: &[u8]) -> Result<TimestampArg, ArgError> {
    match parse_i64(bytes) {
        Some(n) if n >= 0 => Ok(TimestampArg::At(n as u64)),
        Some(_) => Err(tsdb("invalid timestamp, must be a nonnegative integer")),
        None if bytes == b"*" => Ok(TimestampArg::Now),
        None => Err(tsdb("invalid timestamp")),
    }
}

/// Parses the series options found anywhere in `args` (the arguments after the command
/// name; `args[0]` is the key). `policy_word` is `DUPLICATE_POLICY` for `TS.CREATE` and
/// `TS.ALTER`, `ON_DUPLICATE` is parsed apart by [`parse_on_duplicate`].
///
/// # Errors
/// RedisTimeSeries's texts for each malformed option.
pub fn parse_series_options(args: &[&[u8]]) -> Result<SeriesOptions, ArgError> {
    let mut options = SeriesOptions::default();
    if let Some(at) = find(args, "LABELS", 1) {
        let mut labels = Vec::new();
        for pair in args[at + 1..].chunks_exact(2) {
            let bad = |v: &[u8]| v.is_empty() || v.iter().any(|b| b"(),".contains(b));
            if pair[0].is_empty() || bad(pair[1]) {
                return Err(tsdb("Couldn't parse LABELS"));
            }
            labels.push((pair[0].to_vec(), pair[1].to_vec()));
        }
        options.labels = Some(labels);
    }
    if let Some(at) = find(args, "RETENTION", 1) {
        let value = args.get(at + 1).and_then(|v| parse_u64(v));
        options.retention_ms = Some(value.ok_or_else(|| tsdb("Couldn't parse RETENTION"))?);
    }
    if let Some(at) = find(args, "CHUNK_SIZE", 1) {
        let value = args.get(at + 1).and_then(|v| parse_i64(v));
        let value = value.ok_or_else(|| tsdb("Couldn't parse CHUNK_SIZE"))?;
        if !(48..=1_048_576).contains(&value) || value % 8 != 0 {
            return Err(tsdb(
                "CHUNK_SIZE value must be a multiple of 8 in the range [48 .. 1048576]",
            ));
        }
        options.chunk_size_bytes = Some(value as u32);
    }
    if let Some(at) = find(args, "ENCODING", 1) {
        let Some(word) = args.get(at + 1) else {
            return Err(wrong_arity_of(args));
        };
        options.encoding = Some(if word.eq_ignore_ascii_case(b"COMPRESSED") {
            ChunkEncoding::Gorilla
        } else if word.eq_ignore_ascii_case(b"UNCOMPRESSED") {
            ChunkEncoding::Uncompressed
        } else {
            return Err(tsdb("unknown ENCODING parameter"));
        });
    } else if find(args, "UNCOMPRESSED", 1).is_some() {
        options.encoding = Some(ChunkEncoding::Uncompressed);
    } else if find(args, "COMPRESSED", 1).is_some() {
        options.encoding = Some(ChunkEncoding::Gorilla);
    }
    options.duplicate_policy = parse_policy(args, "DUPLICATE_POLICY")?;
    if let Some(at) = find(args, "IGNORE", 1) {
        options.ignore = Some(parse_ignore(args.get(at + 1..at + 3).unwrap_or_default())?);
    }
    Ok(options)
}

/// The two numbers after `IGNORE`: a whole number of milliseconds and a finite double,
/// neither negative.
fn parse_ignore(words: &[&[u8]]) -> Result<IgnoreWindow, ArgError> {
    let bad = || tsdb("Couldn't parse IGNORE");
    let [time, value] = words else {
        return Err(bad());
    };
    let time = parse_i64(time).ok_or_else(bad)?;
    let value = parse_value(value).ok_or_else(bad)?;
    if time < 0 || value < 0.0 {
        return Err(tsdb("IGNORE arguments cannot be negative"));
    }
    Ok(IgnoreWindow {
        max_time_diff_ms: time as u64,
        max_value_diff: value,
    })
}

/// The command name is not passed down; errors that RedisTimeSeries reports as wrong
/// arity name the command generically.
fn wrong_arity_of(_args: &[&[u8]]) -> ArgError {
    wrong_arity("ts.create")
}

fn parse_policy(args: &[&[u8]], word: &str) -> Result<Option<DuplicatePolicy>, ArgError> {
    let Some(at) = find(args, word, 1) else {
        return Ok(None);
    };
    let Some(name) = args.get(at + 1) else {
        return Err(tsdb("Couldn't parse DUPLICATE_POLICY"));
    };
    DuplicatePolicy::parse(name)
        .map(Some)
        .ok_or_else(|| tsdb("Unknown DUPLICATE_POLICY"))
}

/// `ON_DUPLICATE policy` of `TS.ADD`.
///
/// # Errors
/// As `DUPLICATE_POLICY`.
pub fn parse_on_duplicate(args: &[&[u8]]) -> Result<Option<DuplicatePolicy>, ArgError> {
    parse_policy(args, "ON_DUPLICATE")
}

fn parse_range_ts(bytes: &[u8], open: &[u8], which: &str) -> Result<Option<u64>, ArgError> {
    if bytes == open {
        return Ok(None);
    }
    parse_u64(bytes)
        .map(Some)
        .ok_or_else(|| tsdb(&format!("wrong {which}")))
}

/// Parses `fromTimestamp toTimestamp` of `TS.DEL` (both inclusive; `-` and `+` allowed).
///
/// # Errors
/// `ERR TSDB: wrong fromTimestamp` / `wrong toTimestamp`.
pub fn parse_del(args: &[&[u8]]) -> Result<(u64, u64), ArgError> {
    let from = parse_range_ts(args[1], b"-", "fromTimestamp")?.unwrap_or(0);
    let to = parse_range_ts(args[2], b"+", "toTimestamp")?.unwrap_or(u64::MAX);
    Ok((from, to))
}

/// Parses `TS.RANGE key from to [options]`: `args[0]` is the key.
///
/// # Errors
/// RedisTimeSeries's text for the first malformed part.
pub fn parse_range(args: &[&[u8]]) -> Result<RangeArgs, ArgError> {
    let from_ms = parse_range_ts(args[1], b"-", "fromTimestamp")?.unwrap_or(0);
    let to_ms = parse_range_ts(args[2], b"+", "toTimestamp")?;
    let mut range = RangeArgs {
        from_ms,
        to_ms,
        count: None,
        filter_by_ts: None,
        filter_by_value: None,
        aggregation: None,
        latest: find(args, "LATEST", 3).is_some(),
    };
    if let Some(at) = find(args, "COUNT", 3) {
        let value = args
            .get(at + 1)
            .ok_or_else(|| tsdb("COUNT argument is missing"))?;
        range.count = Some(parse_u64(value).ok_or_else(|| tsdb("Couldn't parse COUNT"))?);
    }
    if let Some(at) = find(args, "FILTER_BY_VALUE", 3) {
        if at + 2 >= args.len() {
            return Err(tsdb("FILTER_BY_VALUE one or more arguments are missing"));
        }
        let min = parse_float(args[at + 1]).ok_or_else(|| tsdb("Couldn't parse MIN"))?;
        let max = parse_float(args[at + 2]).ok_or_else(|| tsdb("Couldn't parse MAX"))?;
        range.filter_by_value = Some((min, max));
    }
    if let Some(at) = find(args, "FILTER_BY_TS", 3) {
        let list: Vec<u64> = args[at + 1..].iter().map_while(|a| parse_u64(a)).collect();
        if list.is_empty() {
            return Err(tsdb("FILTER_BY_TS one or more arguments are missing"));
        }
        let mut list = list;
        list.sort_unstable();
        range.filter_by_ts = Some(list);
    }
    range.aggregation = parse_aggregation(args, from_ms, to_ms)?;
    if find(args, "ALIGN", 3).is_some() && range.aggregation.is_none() {
        return Err(tsdb("ALIGN parameter can only be used with AGGREGATION"));
    }
    Ok(range)
}

fn parse_float(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.parse::<f64>().ok().filter(|v| !v.is_nan())
}

fn parse_aggregation(
    args: &[&[u8]],
    from_ms: u64,
    to_ms: Option<u64>,
) -> Result<Option<Aggregation>, ArgError> {
    let Some(at) = find(args, "AGGREGATION", 3) else {
        return Ok(None);
    };
    let (Some(name), Some(bucket)) = (args.get(at + 1), args.get(at + 2)) else {
        return Err(tsdb("Couldn't parse AGGREGATION"));
    };
    let aggregator = Aggregator::parse(name).ok_or_else(|| tsdb("Unknown aggregation type"))?;
    let bucket_ms = parse_i64(bucket).ok_or_else(|| tsdb("Couldn't parse AGGREGATION"))?;
    if bucket_ms <= 0 {
        return Err(tsdb("bucketDuration must be greater than zero"));
    }
    let mut align_ms = 0;
    if let Some(at) = find(args, "ALIGN", 3) {
        let word = args.get(at + 1).ok_or_else(|| wrong_arity("ts.range"))?;
        align_ms = match *word {
            b"-" => from_ms,
            b"+" => to_ms.unwrap_or(0),
            w if w.eq_ignore_ascii_case(b"start") => from_ms,
            w if w.eq_ignore_ascii_case(b"end") => to_ms.unwrap_or(0),
            w => parse_u64(w).ok_or_else(|| tsdb("unknown ALIGN parameter"))?,
        };
    }
    let mut bucket_timestamp = BucketTimestamp::Start;
    if let Some(at) = find(args, "BUCKETTIMESTAMP", 3) {
        let word = args.get(at + 1).copied().unwrap_or_default();
        bucket_timestamp = match word {
            b"-" => BucketTimestamp::Start,
            b"+" => BucketTimestamp::End,
            b"~" => BucketTimestamp::Mid,
            w if w.eq_ignore_ascii_case(b"start") => BucketTimestamp::Start,
            w if w.eq_ignore_ascii_case(b"end") => BucketTimestamp::End,
            w if w.eq_ignore_ascii_case(b"mid") => BucketTimestamp::Mid,
            _ => return Err(tsdb("unknown BUCKETTIMESTAMP parameter")),
        };
    }
    Ok(Some(Aggregation {
        aggregator,
        bucket_ms: bucket_ms as u64,
        align_ms,
        align_to_end: to_ms.is_none()
            && find(args, "ALIGN", 3).is_some_and(|at| {
                args.get(at + 1)
                    .is_some_and(|w| *w == b"+" || w.eq_ignore_ascii_case(b"end"))
            }),
        bucket_timestamp,
        empty: find(args, "EMPTY", 3).is_some(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&'static str]) -> Vec<&'static [u8]> {
        list.iter().map(|w| w.as_bytes()).collect()
    }

    #[test]
    fn ignore_takes_two_non_negative_numbers() {
        let o = parse_series_options(&words(&["k", "IGNORE", "10", "0.5"])).unwrap();
        assert_eq!(
            o.ignore,
            Some(IgnoreWindow {
                max_time_diff_ms: 10,
                max_value_diff: 0.5
            })
        );
        for bad in [
            &["k", "IGNORE"][..],
            &["k", "IGNORE", "1"],
            &["k", "IGNORE", "x", "1"],
        ] {
            assert_eq!(
                parse_series_options(&words(bad)).unwrap_err(),
                "ERR TSDB: Couldn't parse IGNORE",
                "{bad:?}"
            );
        }
        for bad in [["k", "IGNORE", "-1", "1"], ["k", "IGNORE", "1", "-0.5"]] {
            assert_eq!(
                parse_series_options(&words(&bad)).unwrap_err(),
                "ERR TSDB: IGNORE arguments cannot be negative"
            );
        }
    }

    #[test]
    fn create_options_anywhere_and_errors() {
        let o = parse_series_options(&words(&["k", "LABELS", "a", "1", "b", "2"])).unwrap();
        assert_eq!(o.labels.unwrap().len(), 2);
        let o = parse_series_options(&words(&["k", "retention", "10", "DUPLICATE_POLICY", "max"]))
            .unwrap();
        assert_eq!(o.retention_ms, Some(10));
        assert_eq!(o.duplicate_policy, Some(DuplicatePolicy::Max));
        assert_eq!(
            parse_series_options(&words(&["k", "RETENTION", "-1"])).unwrap_err(),
            "ERR TSDB: Couldn't parse RETENTION"
        );
        assert_eq!(
            parse_series_options(&words(&["k", "CHUNK_SIZE", "20"])).unwrap_err(),
            "ERR TSDB: CHUNK_SIZE value must be a multiple of 8 in the range [48 .. 1048576]"
        );
        assert_eq!(
            parse_series_options(&words(&["k", "ENCODING", "zip"])).unwrap_err(),
            "ERR TSDB: unknown ENCODING parameter"
        );
        assert_eq!(
            parse_series_options(&words(&["k", "DUPLICATE_POLICY", "x"])).unwrap_err(),
            "ERR TSDB: Unknown DUPLICATE_POLICY"
        );
    }

    #[test]
    fn values_and_timestamps() {
        assert_eq!(parse_value(b"1e3"), Some(1000.0));
        assert_eq!(parse_value(b"nan"), None);
        assert_eq!(parse_value(b"inf"), None);
        assert_eq!(parse_value(b"abc"), None);
        assert_eq!(parse_timestamp(b"*"), Ok(TimestampArg::Now));
        assert_eq!(
            parse_timestamp(b"-1").unwrap_err(),
            "ERR TSDB: invalid timestamp, must be a nonnegative integer"
        );
    }

    #[test]
    fn range_options() {
        let r = parse_range(&words(&[
            "k",
            "-",
            "+",
            "FILTER_BY_TS",
            "30",
            "10",
            "COUNT",
            "2",
            "AGGREGATION",
            "avg",
            "10",
        ]))
        .unwrap();
        assert_eq!(r.filter_by_ts, Some(vec![10, 30]));
        assert_eq!(r.count, Some(2));
        assert_eq!(r.aggregation.unwrap().bucket_ms, 10);
        assert_eq!(
            parse_range(&words(&["k", "x", "+"])).unwrap_err(),
            "ERR TSDB: wrong fromTimestamp"
        );
        assert_eq!(
            parse_range(&words(&["k", "-", "+", "AGGREGATION", "foo", "10"])).unwrap_err(),
            "ERR TSDB: Unknown aggregation type"
        );
        assert_eq!(
            parse_range(&words(&["k", "-", "+", "AGGREGATION", "avg", "0"])).unwrap_err(),
            "ERR TSDB: bucketDuration must be greater than zero"
        );
        assert_eq!(
            parse_range(&words(&["k", "-", "+", "ALIGN", "0"])).unwrap_err(),
            "ERR TSDB: ALIGN parameter can only be used with AGGREGATION"
        );
    }
}
