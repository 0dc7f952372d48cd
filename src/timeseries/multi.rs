//! The multi-series commands `TS.QUERYINDEX`, `TS.MGET` and `TS.MRANGE` / `TS.MREVRANGE`:
//! a label filter ([`super::filter`]) is sent to every shard; each answers it from its
//! label index ([`super::label_index`], kept by [`super::directory`]), reads only the
//! matching series, and answers one encoded entry per match; the connection's shard merges
//! the entries in key order, as RedisTimeSeries lists them outside a cluster.
//!
//! `GROUPBY` / `REDUCE` is in [`super::group`].

use crate::base::SeqNo;
use crate::resp::{self, resp3, Protocol};
use crate::shard::mesh::OpResult;
use crate::store::ShardStore;

use super::args::{self, ArgError};
use super::filter::parse_filter;
use super::group::{GroupPart, GroupQuery};
use super::range::{self, RangeReply, RangeSource, StreamedRange};
use super::reply;
use super::series::{self, SeriesCache, SeriesError};

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

/// One series' part of a multi-series reply: its key, its encoded entry, and, when its
/// range is too long to build at once, the range to stream right after the entry (which
/// then ends where its samples begin).
pub type EntryPart = (Vec<u8>, Vec<u8>, Option<StreamedRange>);

/// Appends the header that frames `count` merged entries: an array in RESP2; in RESP3 a
/// set (`TS.QUERYINDEX`) or a map.
pub fn merged_header(out: &mut Vec<u8>, proto: Protocol, merge: Merge, count: usize) {
    match (proto, merge) {
        (Protocol::Resp2, _) => resp::array_header(out, count),
        (Protocol::Resp3, Merge::Set) => resp3::set_header(out, proto, count),
        (Protocol::Resp3, Merge::Map) => resp3::map_header(out, proto, count),
    }
}

/// Appends every shard's entries, in key order, framed by `merge`. Entries with a range to
/// stream are sent as a stream instead (`shard::stream`), never through here.
pub fn encode_merged(
    out: &mut Vec<u8>,
    proto: Protocol,
    merge: Merge,
    mut entries: Vec<EntryPart>,
) {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    merged_header(out, proto, merge, entries.len());
    for (_, entry, range) in entries {
        debug_assert!(range.is_none(), "a streamed entry is sent as a stream");
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

/// The label filter of a multi-series request (name first).
///
/// # Errors
/// The error reply text for a malformed request.
pub fn filter_of(args: &[&[u8]]) -> Result<Vec<super::filter::Matcher>, ArgError> {
    parse_filter(split_filter(args)?.1)
}

/// Whether `args` (name first) is `TS.MRANGE` or `TS.MREVRANGE`.
pub fn is_range(args: &[&[u8]]) -> bool {
    args[0].eq_ignore_ascii_case(b"TS.MRANGE") || args[0].eq_ignore_ascii_case(b"TS.MREVRANGE")
}

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

/// The time range and options of a `TS.MRANGE` / `TS.MREVRANGE` request (name first).
///
/// # Errors
/// The error reply text for malformed arguments.
pub fn range_args(args: &[&[u8]]) -> Result<args::RangeArgs, ArgError> {
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
) -> Result<Vec<EntryPart>, SeriesError> {
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
    for key in cache.directory.select(store, &matchers)? {
        // A string shadows a series of its name (a data directory from before SET
        // replaced series).
        if !series::string_exists(store, &key)? {
            matching.push(key);
        }
    }
    let mut out = Vec::with_capacity(matching.len());
    // Entries this part may still build at once ([`range::MRANGE_INLINE_PART_ENTRIES_MAX`]).
    let mut inline_left = range::MRANGE_INLINE_PART_ENTRIES_MAX;
    // GROUPBY: this shard's series reduced per group, added in key order.
    let mut groups: std::collections::BTreeMap<Vec<u8>, GroupPart> = Default::default();
    if grouped.is_some() {
        matching.sort();
    }
    for key in matching {
        let mut entry = Vec::new();
        if args[0].eq_ignore_ascii_case(b"TS.QUERYINDEX") {
            resp::bulk(&mut entry, &key);
            out.push((key, entry, None));
            continue;
        }
        let state = series::load(store, cache, &key)?
            .expect("the label index lists existing series only")
            .clone();
        let meta = &state.meta;
        let latest = match latest_wanted {
            true => super::rules::latest(store, cache, &key, meta)?,
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
            let samples = super::range::collect(store, &state, range, latest, false)?;
            let part = groups
                .entry(label_value.clone())
                .or_insert_with(|| GroupPart {
                    label_value: label_value.clone(),
                    ..GroupPart::default()
                });
            part.add_series(key, &samples);
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
            let kept_bytes_max = match inline_left {
                0 => 0,
                _ => range::MRANGE_KEPT_CHUNK_BYTES_MAX,
            };
            let source =
                RangeSource::open_keeping(store, &state, range, latest, reverse, kept_bytes_max)?;
            match range::reply_within(store, source, proto, inline_left)? {
                RangeReply::Encoded(samples, count) => {
                    inline_left -= count;
                    entry.extend_from_slice(&samples);
                }
                RangeReply::Stream(stream) => {
                    out.push((key, entry, Some(StreamedRange(stream))));
                    continue;
                }
            }
        } else {
            match latest.or(state
                .last
                .filter(|l| l.ts_ms >= series::retention_cutoff_ms(&state)))
            {
                Some(last) => reply::sample(&mut entry, proto, last),
                None => resp::array_header(&mut entry, 0),
            }
        }
        out.push((key, entry, None));
    }
    for (label_value, part) in groups {
        out.push((label_value, part.encode(), None));
    }
    Ok(out)
}
