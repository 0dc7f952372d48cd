//! The multi-series commands `TS.QUERYINDEX`, `TS.MGET` and `TS.MRANGE` / `TS.MREVRANGE`:
//! a label filter (RedisTimeSeries 1.10's forms, redis.io "TS.MGET": `label=value`,
//! `label!=value`, `label=`, `label!=`, `label=(v1,v2,...)`, `label!=(v1,v2,...)`) is sent
//! to every shard; each matches it against the labels in the metadata of its own series
//! and answers one encoded entry per match; the connection's shard merges the entries in
//! key order, as RedisTimeSeries lists them outside a cluster.
//!
//! `GROUPBY` / `REDUCE` is in [`super::group`].
//!
//! There is no secondary label index yet: a shard reads all its series' metadata entries
//! (one key range) per query.

use crate::base::SeqNo;
use crate::resp::{self, resp3, Protocol};
use crate::shard::mesh::OpResult;
use crate::store::ShardStore;

use super::args::{self, ArgError};
use super::chunk::Sample;
use super::group::{GroupQuery, GroupedEntry};
use super::keys::{self, KeyClass};
use super::meta::SeriesMeta;
use super::reply;
use super::series::{self, SeriesCache, SeriesError};

/// One label predicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// `label=value` or `label=(a,b)`: the label is one of the values.
    In(Vec<u8>, Vec<Vec<u8>>),
    /// `label!=value` or `label!=(a,b)`: the label is absent or none of the values.
    NotIn(Vec<u8>, Vec<Vec<u8>>),
    /// `label=`: the label is absent.
    Absent(Vec<u8>),
    /// `label!=`: the label is present.
    Present(Vec<u8>),
}

impl Matcher {
    fn matches(&self, labels: &[(Vec<u8>, Vec<u8>)]) -> bool {
        let value_of = |name: &[u8]| labels.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        match self {
            Self::In(name, values) => value_of(name).is_some_and(|v| values.contains(v)),
            Self::NotIn(name, values) => !value_of(name).is_some_and(|v| values.contains(v)),
            Self::Absent(name) => value_of(name).is_none(),
            Self::Present(name) => value_of(name).is_some(),
        }
    }
}

/// Parses the filter expressions after `FILTER`.
///
/// # Errors
/// `ERR TSDB: failed parsing labels` for a malformed one, `ERR TSDB: please provide at
/// least one matcher` when none is `label=value` or `label=(...)`.
pub fn parse_filter(exprs: &[&[u8]]) -> Result<Vec<Matcher>, ArgError> {
    let failed = || "ERR TSDB: failed parsing labels".to_string();
    let mut out = Vec::new();
    for expr in exprs {
        let at = expr.iter().position(|&b| b == b'=').ok_or_else(failed)?;
        let negated = at > 0 && expr[at - 1] == b'!';
        let name = expr[..if negated { at - 1 } else { at }].to_vec();
        let value = &expr[at + 1..];
        if name.is_empty() {
            return Err(failed());
        }
        let values: Vec<Vec<u8>> = match value {
            [] => Vec::new(),
            [b'(', list @ .., b')'] => list.split(|&b| b == b',').map(<[u8]>::to_vec).collect(),
            v => vec![v.to_vec()],
        };
        out.push(match (negated, values.is_empty()) {
            (false, true) => Matcher::Absent(name),
            (true, true) => Matcher::Present(name),
            (false, false) => Matcher::In(name, values),
            (true, false) => Matcher::NotIn(name, values),
        });
    }
    if !out.iter().any(|m| matches!(m, Matcher::In(..))) {
        return Err("ERR TSDB: please provide at least one matcher".into());
    }
    Ok(out)
}

/// Which labels an entry carries (`WITHLABELS`, `SELECTED_LABELS`, or none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelChoice {
    /// Neither option: an empty list.
    None,
    /// `WITHLABELS`: every label.
    All,
    /// `SELECTED_LABELS l ...`: these, a missing one with a null value.
    Selected(Vec<Vec<u8>>),
}

fn label_choice(options: &[&[u8]]) -> LabelChoice {
    if options
        .iter()
        .any(|a| a.eq_ignore_ascii_case(b"WITHLABELS"))
    {
        return LabelChoice::All;
    }
    match options
        .iter()
        .position(|a| a.eq_ignore_ascii_case(b"SELECTED_LABELS"))
    {
        Some(at) => LabelChoice::Selected(options[at + 1..].iter().map(|l| l.to_vec()).collect()),
        None => LabelChoice::None,
    }
}

/// Appends the labels `choice` picks from `labels` (`all` is what `WITHLABELS` shows, a
/// subset of `labels` for a reduced series in RESP3).
pub fn encode_labels(
    out: &mut Vec<u8>,
    proto: Protocol,
    labels: &[(&[u8], &[u8])],
    all: &[(&[u8], &[u8])],
    choice: &LabelChoice,
) {
    match choice {
        LabelChoice::None => reply::labels(out, proto, std::iter::empty()),
        LabelChoice::All => reply::labels(out, proto, all.iter().map(|(n, v)| (*n, Some(*v)))),
        LabelChoice::Selected(names) => {
            let value = |name: &[u8]| labels.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
            reply::labels(
                out,
                proto,
                names.iter().map(|name| (name.as_slice(), value(name))),
            );
        }
    }
}

/// How the connection's shard frames the merged entries: a set (`TS.QUERYINDEX`) or a
/// map from key to entry (`TS.MGET`, `TS.MRANGE`) in RESP3, an array in RESP2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Keys only.
    Set,
    /// Key, then the entry.
    Map,
}

impl Merge {
    /// The framing of the multi-series request `args` (name first).
    pub fn of(args: &[&[u8]]) -> Self {
        if args[0].eq_ignore_ascii_case(b"TS.QUERYINDEX") {
            Self::Set
        } else {
            Self::Map
        }
    }
}

/// Appends every shard's entries (`(key, encoded entry)`), in key order, framed by `merge`.
pub fn encode_merged(
    out: &mut Vec<u8>,
    proto: Protocol,
    merge: Merge,
    mut entries: Vec<(Vec<u8>, Vec<u8>)>,
) {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    match (proto, merge) {
        (Protocol::Resp2, _) => resp::array_header(out, entries.len()),
        (Protocol::Resp3, Merge::Set) => resp3::set_header(out, proto, entries.len()),
        (Protocol::Resp3, Merge::Map) => resp3::map_header(out, proto, entries.len()),
    }
    for (_, entry) in entries {
        out.extend_from_slice(&entry);
    }
}

/// Runs a multi-series request (name first: `TS.QUERYINDEX`, `TS.MGET`, `TS.MRANGE`,
/// `TS.MREVRANGE`, arguments as the client sent them) on this shard: one `(key, entry)`
/// per matching series, the entry encoded as its part of the reply.
pub fn run_all(
    store: &ShardStore,
    cache: &mut SeriesCache,
    proto: Protocol,
    args: &[&[u8]],
) -> (OpResult, SeqNo) {
    match entries(store, cache, proto, args) {
        Ok(list) => (OpResult::Entries(list), store.last_seq()),
        Err(SeriesError::Refused(text)) => (OpResult::Err(text), SeqNo(0)),
        Err(e) => (OpResult::Err(format!("ERR storage error: {e}")), SeqNo(0)),
    }
}

/// Checks a multi-series request's syntax where the client's shard can (before it is
/// sent to every shard), so a malformed one gets one error.
///
/// # Errors
/// The error reply text.
pub fn check(args: &[&[u8]]) -> Result<(), ArgError> {
    let (_, filter) = split_filter(args)?;
    parse_filter(filter)?;
    if is_range(args) {
        range_args(args)?;
    }
    Ok(())
}

fn is_range(args: &[&[u8]]) -> bool {
    args[0].eq_ignore_ascii_case(b"TS.MRANGE") || args[0].eq_ignore_ascii_case(b"TS.MREVRANGE")
}

/// One series' part of a multi-series reply: its key (the merge order) and its encoding.
type Entry = (Vec<u8>, Vec<u8>);

/// The arguments before `FILTER` and the filter expressions after it.
type OptionsAndFilter<'a, 'b> = (&'a [&'b [u8]], &'a [&'b [u8]]);

/// The options before `FILTER` and the filter expressions after it (up to `GROUPBY`).
fn split_filter<'a, 'b>(args: &'a [&'b [u8]]) -> Result<OptionsAndFilter<'a, 'b>, ArgError> {
    let at = if args[0].eq_ignore_ascii_case(b"TS.QUERYINDEX") {
        0
    } else {
        (1..args.len())
            .find(|&i| args[i].eq_ignore_ascii_case(b"FILTER"))
            .ok_or_else(|| {
                crate::command::wrong_arity(&String::from_utf8_lossy(args[0]).to_ascii_lowercase())
            })?
    };
    let mut rest = &args[at + 1..];
    if is_range(args) {
        rest = super::group::split(args[0], rest)?.0;
    }
    Ok((&args[1..at.max(1)], rest))
}

/// The `GROUPBY` clause of a `TS.MRANGE` / `TS.MREVRANGE` request (name first) and what
/// the connection's shard needs to reduce the groups, `None` without one.
///
/// # Errors
/// The error reply text of a malformed request.
pub fn group_query(args: &[&[u8]]) -> Result<Option<GroupQuery>, ArgError> {
    if !is_range(args) {
        return Ok(None);
    }
    let at = (1..args.len())
        .find(|&i| args[i].eq_ignore_ascii_case(b"FILTER"))
        .unwrap_or(args.len() - 1);
    let Some(group_by) = super::group::split(args[0], &args[at + 1..])?.1 else {
        return Ok(None);
    };
    let (options, _) = split_filter(args)?;
    Ok(Some(GroupQuery {
        group_by,
        reverse: args[0].eq_ignore_ascii_case(b"TS.MREVRANGE"),
        count: range_args(args)?.count,
        labels: label_choice(options),
    }))
}

fn range_args(args: &[&[u8]]) -> Result<args::RangeArgs, ArgError> {
    let (options, _) = split_filter(args)?;
    if options.len() < 2 {
        return Err(crate::command::wrong_arity(
            &String::from_utf8_lossy(args[0]).to_ascii_lowercase(),
        ));
    }
    let mut with_key: Vec<&[u8]> = vec![b""];
    with_key.extend_from_slice(options);
    args::parse_range(&with_key)
}

fn entries(
    store: &ShardStore,
    cache: &mut SeriesCache,
    proto: Protocol,
    args: &[&[u8]],
) -> Result<Vec<Entry>, SeriesError> {
    let (options, filter) = split_filter(args).map_err(SeriesError::Refused)?;
    let matchers = parse_filter(filter).map_err(SeriesError::Refused)?;
    let choice = label_choice(options);
    let grouped = group_query(args).map_err(SeriesError::Refused)?;
    // LATEST: a compacted series also shows its still-open bucket.
    let latest_wanted = if is_range(args) {
        range_args(args).map_err(SeriesError::Refused)?.latest
    } else {
        options.iter().any(|a| a.eq_ignore_ascii_case(b"LATEST"))
    };
    let mut matching = Vec::new();
    for entry in store.scan_from(&keys::meta_key(b"")) {
        let entry = entry?;
        let KeyClass::Series(user) = keys::classify(&entry.key) else {
            break;
        };
        let Some(value) = entry.value else { continue };
        let meta = SeriesMeta::decode(&value)?;
        if matchers.iter().all(|m| m.matches(&meta.labels)) && !series::string_exists(store, user)?
        {
            matching.push((user.to_vec(), meta));
        }
    }
    let mut out = Vec::with_capacity(matching.len());
    for (key, meta) in matching {
        let mut entry = Vec::new();
        if args[0].eq_ignore_ascii_case(b"TS.QUERYINDEX") {
            resp::bulk(&mut entry, &key);
            out.push((key, entry));
            continue;
        }
        let state = series::load(store, cache, &key)?
            .expect("listed above")
            .clone();
        let latest = match latest_wanted {
            true => super::rules::latest(store, cache, &key, &meta)?,
            false => None,
        };
        if let Some(query) = &grouped {
            let label = &query.group_by.label;
            let Some((_, label_value)) = meta.labels.iter().find(|(n, _)| n == label) else {
                continue;
            };
            // COUNT cuts the reduced series, not its sources.
            let range = args::RangeArgs {
                count: None,
                ..range_args(args).map_err(SeriesError::Refused)?
            };
            let samples = super::exec::range_reply(store, &state, range, latest, false)?;
            let entry = GroupedEntry {
                label_value: label_value.clone(),
                samples,
            };
            out.push((key, entry.encode()));
            continue;
        }
        let ranged = is_range(args);
        match proto {
            Protocol::Resp2 => {
                resp::array_header(&mut entry, 3);
                resp::bulk(&mut entry, &key);
            }
            Protocol::Resp3 => {
                resp::bulk(&mut entry, &key);
                resp::array_header(&mut entry, if ranged { 3 } else { 2 });
            }
        }
        let labels: Vec<(&[u8], &[u8])> = meta
            .labels
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        encode_labels(&mut entry, proto, &labels, &labels, &choice);
        if ranged {
            let range = range_args(args).map_err(SeriesError::Refused)?;
            if proto == Protocol::Resp3 {
                // RESP3 names the aggregators of the range (RedisTimeSeries src/reply.c).
                resp3::map_header(&mut entry, proto, 1);
                resp::bulk(&mut entry, b"aggregators");
                let names: Vec<&str> = range
                    .aggregation
                    .iter()
                    .map(|a| a.aggregator.name())
                    .collect();
                resp::array_header(&mut entry, names.len());
                for name in names {
                    resp::bulk(&mut entry, name.as_bytes());
                }
            }
            let reverse = args[0].eq_ignore_ascii_case(b"TS.MREVRANGE");
            let samples: Vec<Sample> =
                super::exec::range_reply(store, &state, range, latest, reverse)?;
            reply::samples(&mut entry, proto, samples.iter());
        } else {
            match latest.or(state
                .last
                .filter(|l| l.ts_ms >= series::retention_cutoff_ms(&state)))
            {
                Some(last) => reply::sample(&mut entry, proto, last),
                None => resp::array_header(&mut entry, 0),
            }
        }
        out.push((key, entry));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn every_filter_form() {
        let series = labels(&[("area", "32"), ("sensor", "2")]);
        let ok = |exprs: &[&str]| {
            let exprs: Vec<&[u8]> = exprs.iter().map(|e| e.as_bytes()).collect();
            parse_filter(&exprs)
                .unwrap()
                .iter()
                .all(|m| m.matches(&series))
        };
        assert!(ok(&["area=32"]));
        assert!(!ok(&["area=31"]));
        assert!(ok(&["area=(31,32)", "sensor!=3"]));
        assert!(!ok(&["area=32", "sensor!=(1,2)"]));
        assert!(ok(&["area=32", "room="]));
        assert!(!ok(&["area=32", "sensor="]));
        assert!(ok(&["area=32", "sensor!="]));
        assert!(!ok(&["area=32", "room!="]));
        let exprs: Vec<&[u8]> = vec![b"area!=1"];
        assert_eq!(
            parse_filter(&exprs).unwrap_err(),
            "ERR TSDB: please provide at least one matcher"
        );
        let exprs: Vec<&[u8]> = vec![b"nolabel"];
        assert_eq!(
            parse_filter(&exprs).unwrap_err(),
            "ERR TSDB: failed parsing labels"
        );
    }
}
