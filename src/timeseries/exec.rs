//! Running one time-series request on the shard that owns its key: the requests travel
//! between shards as bytes ([`encode_request`]), and each returns its complete reply in
//! the client's protocol (errors included, so a `TS.MADD` part can fail alone) and the
//! sequence number the reply must wait for.

use crate::base::SeqNo;
use crate::resp::{self, Protocol};
use crate::shard::mesh::OpResult;
use crate::store::ShardStore;

use super::args::{self, SeriesOptions, TimestampArg};
use super::chunk::{ChunkEncoding, Sample};
use super::meta::{SeriesMeta, CHUNK_SIZE_DEFAULT_BYTES};
use super::range::{RangeReply, RangeSource, RangeStream, StreamedRange};
use super::reply;
use super::rules;
use super::series::{self, SeriesCache, SeriesError, SeriesState};

/// Redis's reply for a command on a key of another type.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// RedisTimeSeries's reply for a command on a missing series.
pub const NO_KEY: &str = "ERR TSDB: the key does not exist";

/// Serializes a request for a cross-shard message: the protocol of the client's
/// connection (its version, one byte), then each argument (command name first) as
/// `len u32 LE | bytes`. The owning shard encodes the reply in that protocol.
pub fn encode_request(proto: Protocol, args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + args.iter().map(|a| a.len() + 4).sum::<usize>());
    out.push(proto.version() as u8);
    for arg in args {
        out.extend_from_slice(&(arg.len() as u32).to_le_bytes());
        out.extend_from_slice(arg);
    }
    out
}

/// Splits a request made by [`encode_request`] back into its protocol and arguments;
/// `None` if the bytes are not one.
pub fn decode_request(bytes: &[u8]) -> Option<(Protocol, Vec<&[u8]>)> {
    let (&version, mut rest) = bytes.split_first()?;
    let proto = Protocol::from_version(i64::from(version))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        out.push(rest.get(4..4 + len)?);
        rest = &rest[4 + len..];
    }
    Some((proto, out))
}

/// Runs `request` (from [`encode_request`]; name, key, arguments) against this shard's
/// store. Returns the reply and the sequence number it waits for: the last write's, or
/// for a read everything written so far (a read must not show what a crash could take
/// back).
pub fn run(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    request: &[u8],
    now_ms: u64,
) -> (OpResult, SeqNo) {
    let Some((proto, args)) = decode_request(request).filter(|(_, a)| a.len() >= 2) else {
        return (
            OpResult::Err("ERR internal error: bad time-series request".into()),
            SeqNo(0),
        );
    };
    let mut out = Vec::new();
    let mut streamed = None;
    match dispatch(store, cache, &args, now_ms, proto, &mut out, &mut streamed) {
        Ok(seq) => match streamed {
            Some(stream) => (OpResult::Stream(StreamedRange(stream)), seq),
            None => (OpResult::Encoded(out), seq),
        },
        // A refusal may rest on state not yet durable: it waits like a read.
        Err(SeriesError::Refused(text)) => {
            out.clear();
            resp::error(&mut out, &text);
            (OpResult::Encoded(out), store.last_seq())
        }
        Err(e) => {
            cache.forget(store, args[1]);
            tracing::error!("time-series storage error: {e}");
            (OpResult::Err(format!("ERR storage error: {e}")), SeqNo(0))
        }
    }
}

fn refused(text: &str) -> SeriesError {
    SeriesError::Refused(text.to_string())
}

fn name_is(args: &[&[u8]], name: &str) -> bool {
    args[0].eq_ignore_ascii_case(name.as_bytes())
}

fn dispatch(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    args: &[&[u8]],
    now_ms: u64,
    proto: Protocol,
    out: &mut Vec<u8>,
    streamed: &mut Option<Box<RangeStream>>,
) -> Result<SeqNo, SeriesError> {
    let key = args[1];
    if name_is(args, "TYPE") {
        let name = if series::string_exists(store, key)? {
            "string"
        } else if series::series_exists(store, key)? {
            "TSDB-TYPE"
        } else {
            "none"
        };
        resp::simple(out, name);
        return Ok(store.last_seq());
    }
    if name_is(args, "TS.CREATERULE") {
        return rules::create(store, cache, args, out);
    }
    if name_is(args, "TS.DELETERULE") {
        return rules::delete(store, cache, args, out);
    }
    let rest = &args[1..];
    // RedisTimeSeries checks these arguments before it looks at the key.
    if name_is(args, "TS.ADD") || name_is(args, "TS.MADD") {
        args::parse_value(rest[2]).ok_or_else(|| refused("ERR TSDB: invalid value"))?;
        args::parse_timestamp(rest[1]).map_err(SeriesError::Refused)?;
    }
    let options = if name_is(args, "TS.CREATE") {
        Some(args::parse_series_options(rest).map_err(SeriesError::Refused)?)
    } else {
        None
    };
    // A string shadows a series of the same name (SET replaced it).
    if series::string_shadows(store, cache, key)? {
        return Err(refused(if options.is_some() {
            "ERR TSDB: key already exists"
        } else {
            WRONGTYPE
        }));
    }
    if let Some(options) = options {
        if series::load(store, cache, key)?.is_some() {
            return Err(refused("ERR TSDB: key already exists"));
        }
        let seq = create(store, cache, key, &options);
        resp::simple(out, "OK");
        return Ok(seq);
    }
    if name_is(args, "TS.ADD") {
        return ts_add(store, cache, rest, now_ms, out);
    }
    if name_is(args, "TS.INCRBY") || name_is(args, "TS.DECRBY") {
        return ts_incrby(store, cache, rest, name_is(args, "TS.DECRBY"), now_ms, out);
    }
    if name_is(args, "TS.MADD") {
        let value = args::parse_value(rest[2]).ok_or_else(|| refused("ERR TSDB: invalid value"))?;
        let ts = args::parse_timestamp(rest[1]).map_err(SeriesError::Refused)?;
        series::load(store, cache, key)?.ok_or_else(|| refused(NO_KEY))?;
        let ts_ms = resolve_ts(ts, now_ms);
        let (reply_ts_ms, seq) = add_or_ignore(store, cache, key, Sample { ts_ms, value }, None)?;
        resp::integer(out, reply_ts_ms as i64);
        return Ok(seq);
    }
    if name_is(args, "TS.GET") {
        // RedisTimeSeries's TSDB_get: `key [LATEST]`, nothing else.
        if rest.len() > 2 {
            return Err(SeriesError::Refused(crate::command::wrong_arity("ts.get")));
        }
        series::load(store, cache, key)?.ok_or_else(|| refused(NO_KEY))?;
        let latest_wanted = match rest.get(1) {
            Some(word) if word.eq_ignore_ascii_case(b"LATEST") => true,
            Some(_) => return Err(refused("ERR TSDB: wrong 3rd argument")),
            None => false,
        };
        match newest_sample(store, cache, key, latest_wanted)? {
            Some(last) => reply::sample(out, proto, last),
            None => resp::array_header(out, 0),
        }
        return Ok(read_gate(store, cache, key, latest_wanted));
    }
    if name_is(args, "TS.RANGE") || name_is(args, "TS.REVRANGE") {
        let range = args::parse_range(rest).map_err(SeriesError::Refused)?;
        let state = series::load(store, cache, key)?
            .ok_or_else(|| refused(NO_KEY))?
            .clone();
        let latest = match range.latest {
            true => rules::latest(store, cache, key, &state.meta)?,
            false => None,
        };
        let reverse = name_is(args, "TS.REVRANGE");
        let gate = read_gate(store, cache, key, range.latest);
        let source = RangeSource::open(store, &state, range, latest, reverse)?;
        match super::range::reply(store, source, proto)? {
            RangeReply::Encoded(bytes, _) => *out = bytes,
            RangeReply::Stream(stream) => *streamed = Some(stream),
        }
        return Ok(gate);
    }
    let state = series::load(store, cache, key)?.ok_or_else(|| refused(NO_KEY))?;
    if name_is(args, "TS.INFO") {
        let debug = rest
            .get(1)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"DEBUG"));
        let gate = state.written_seq;
        super::info::info(store, state, key, debug, proto, out)?;
        return Ok(gate);
    }
    if name_is(args, "TS.DEL") {
        let (from_ms, to_ms) = args::parse_del(rest).map_err(SeriesError::Refused)?;
        // Only a rule's buckets need the state as it was (and the removed timestamps).
        let before = (!state.meta.rules.is_empty()).then(|| state.clone());
        let with_rules = before.is_some();
        let (removed, seq) = series::delete_range(store, state, from_ms, to_ms, with_rules)?;
        cache.forget(store, key);
        let mut seq = seq.max(store.last_seq());
        if let (Some(before), false) = (before, removed.ts_ms.is_empty()) {
            seq = seq.max(rules::after_delete(
                store,
                cache,
                key,
                &before,
                &removed.ts_ms,
            )?);
        }
        resp::integer(out, removed.count as i64);
        return Ok(seq);
    }
    if name_is(args, "TS.ALTER") {
        let options = args::parse_series_options(rest).map_err(SeriesError::Refused)?;
        let meta = &mut state.meta;
        meta.retention_ms = options.retention_ms.unwrap_or(meta.retention_ms);
        meta.chunk_size_bytes = options.chunk_size_bytes.unwrap_or(meta.chunk_size_bytes);
        meta.duplicate_policy = options.duplicate_policy.or(meta.duplicate_policy);
        let relabeled = options.labels.is_some();
        if let Some(labels) = options.labels {
            meta.labels = labels;
        }
        meta.ignore = options.ignore.unwrap_or(meta.ignore);
        let seq = store.put(&super::keys::meta_key(key), &meta.encode());
        let labels = relabeled.then(|| meta.labels.clone());
        state.wrote(seq);
        if let Some(labels) = labels {
            cache.directory.insert(key, &labels);
        }
        resp::simple(out, "OK");
        return Ok(seq);
    }
    Err(SeriesError::Refused(format!(
        "ERR unknown command '{}'",
        String::from_utf8_lossy(args[0])
    )))
}

/// What a read of series `key` (cached: the caller loaded it) waits for: the series'
/// newest write ([`SeriesState::written_seq`]); with `LATEST`, everything written so far,
/// as the open bucket comes from the rule's source.
fn read_gate(store: &ShardStore, cache: &SeriesCache, key: &[u8], latest: bool) -> SeqNo {
    match cache.state(key) {
        Some(state) if !latest => state.written_seq,
        _ => store.last_seq(),
    }
}

fn resolve_ts(ts: TimestampArg, now_ms: u64) -> u64 {
    match ts {
        TimestampArg::At(ms) => ms,
        TimestampArg::Now => now_ms,
    }
}

/// Creates series `key` (the caller checked it does not exist) and caches its state.
fn create(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    key: &[u8],
    options: &SeriesOptions,
) -> SeqNo {
    let meta = SeriesMeta {
        // The sequence number the metadata write is about to get: unique on the shard.
        series_id: store.last_seq().0 + 1,
        retention_ms: options.retention_ms.unwrap_or(0),
        encoding: options.encoding.unwrap_or(ChunkEncoding::Gorilla),
        chunk_size_bytes: options.chunk_size_bytes.unwrap_or(CHUNK_SIZE_DEFAULT_BYTES),
        duplicate_policy: options.duplicate_policy,
        labels: options.labels.clone().unwrap_or_default(),
        ignore: options.ignore.unwrap_or_default(),
        source_key: None,
        rules: Vec::new(),
    };
    let seq = store.put(&super::keys::meta_key(key), &meta.encode());
    debug_assert_eq!(seq.0, meta.series_id);
    cache.directory.insert(key, &meta.labels);
    cache.insert(
        key,
        SeriesState {
            meta,
            open: cache.no_open_samples(),
            last: None,
            sealed_until_ms: None,
            no_string_at_writes: u64::MAX,
            written_seq: seq,
        },
    );
    seq
}

/// `TS.ADD key ts value [options]`: value first, then timestamp, as RedisTimeSeries
/// checks them; creates the series with the options when absent.
fn ts_add(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    rest: &[&[u8]],
    now_ms: u64,
    out: &mut Vec<u8>,
) -> Result<SeqNo, SeriesError> {
    let key = rest[0];
    let value = args::parse_value(rest[2]).ok_or_else(|| refused("ERR TSDB: invalid value"))?;
    let ts_ms = resolve_ts(
        args::parse_timestamp(rest[1]).map_err(SeriesError::Refused)?,
        now_ms,
    );
    let options_at = 3.min(rest.len());
    let option_args: Vec<&[u8]> = std::iter::once(key)
        .chain(rest[options_at..].iter().copied())
        .collect();
    let on_duplicate = args::parse_on_duplicate(&option_args).map_err(SeriesError::Refused)?;
    let mut created = SeqNo(0);
    if series::load(store, cache, key)?.is_none() {
        let options = args::parse_series_options(&option_args).map_err(SeriesError::Refused)?;
        created = create(store, cache, key, &options);
    }
    let (reply_ts_ms, seq) =
        add_or_ignore(store, cache, key, Sample { ts_ms, value }, on_duplicate)?;
    resp::integer(out, reply_ts_ms as i64);
    Ok(seq.max(created))
}

/// Adds `sample` to series `key` (which exists) unless its `IGNORE` window drops it, and
/// runs the series' compaction rules. Returns the timestamp the command replies (the
/// sample's, or the newest one's when ignored) and the sequence number the reply waits
/// for (the last write's, or everything read when ignored).
fn add_or_ignore(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    key: &[u8],
    sample: Sample,
    policy_override: Option<super::meta::DuplicatePolicy>,
) -> Result<(u64, SeqNo), SeriesError> {
    let may_seal = !cache.seals_held(key);
    let state = series::load(store, cache, key)?.expect("the caller checked it exists");
    if series::ignores(state, sample) {
        let newest_ts_ms = state.last.map_or(sample.ts_ms, |l| l.ts_ms);
        return Ok((newest_ts_ms, store.last_seq()));
    }
    let previous = state.last;
    let has_rules = !state.meta.rules.is_empty();
    let mut seq = series::add(store, state, sample, policy_override, may_seal)?;
    if has_rules {
        seq = seq.max(rules::after_add(store, cache, key, previous, sample)?);
    }
    Ok((sample.ts_ms, seq))
}

/// The newest sample `TS.GET` replies: the open bucket of a compacted series with
/// `LATEST`, else the newest stored sample inside the retention window.
fn newest_sample(
    store: &ShardStore,
    cache: &mut SeriesCache,
    key: &[u8],
    latest_wanted: bool,
) -> Result<Option<Sample>, SeriesError> {
    let state = series::load(store, cache, key)?
        .ok_or_else(|| refused(NO_KEY))?
        .clone();
    if latest_wanted {
        if let Some(open) = rules::latest(store, cache, key, &state.meta)? {
            return Ok(Some(open));
        }
    }
    Ok(state
        .last
        .filter(|l| l.ts_ms >= series::retention_cutoff_ms(&state)))
}

/// `TS.INCRBY|TS.DECRBY key value [TIMESTAMP ts] [options]`.
fn ts_incrby(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    rest: &[&[u8]],
    decrement: bool,
    now_ms: u64,
    out: &mut Vec<u8>,
) -> Result<SeqNo, SeriesError> {
    let key = rest[0];
    let mut created = SeqNo(0);
    if series::load(store, cache, key)?.is_none() {
        let options = args::parse_series_options(rest).map_err(SeriesError::Refused)?;
        created = create(store, cache, key, &options);
    }
    let by = args::parse_value(rest[1])
        .ok_or_else(|| refused("ERR TSDB: invalid increase/decrease value"))?;
    let ts_ms = incrby_ts(rest, now_ms)?;
    let state = series::load(store, cache, key)?.expect("exists or just created");
    if state.last.is_some_and(|l| ts_ms < l.ts_ms) {
        return Err(refused(
            "ERR TSDB: timestamp must be equal to or higher than the maximum existing timestamp",
        ));
    }
    let base = state.last.map_or(0.0, |l| l.value);
    let value = if decrement { base - by } else { base + by };
    let (reply_ts_ms, seq) = add_or_ignore(
        store,
        cache,
        key,
        Sample { ts_ms, value },
        Some(super::meta::DuplicatePolicy::Last),
    )?;
    resp::integer(out, reply_ts_ms as i64);
    Ok(seq.max(created))
}

/// The timestamp `TS.INCRBY|TS.DECRBY key value [TIMESTAMP ts] ...` (`rest`, after the
/// name) writes at: its `TIMESTAMP`, or `now_ms`.
fn incrby_ts(rest: &[&[u8]], now_ms: u64) -> Result<u64, SeriesError> {
    match rest
        .iter()
        .position(|a| a.eq_ignore_ascii_case(b"TIMESTAMP"))
    {
        Some(at) => {
            let word = rest.get(at + 1).copied().unwrap_or_default();
            let ts = args::parse_timestamp(word).map_err(SeriesError::Refused)?;
            Ok(resolve_ts(ts, now_ms))
        }
        None => Ok(now_ms),
    }
}

/// What one time-series request may write to its series (see [`series_written`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesWrite {
    /// The series, if it is missing (`TS.CREATE`).
    Create,
    /// The series' settings (`TS.ALTER`).
    Settings,
    /// The sample at this timestamp (`TS.ADD`, `TS.MADD` for one sample, `TS.INCRBY`,
    /// `TS.DECRBY`), and the series if it is missing (but for `TS.MADD`).
    Sample(u64),
}

/// The series a request (`args`: name, key, arguments) run at `now_ms` may write, and
/// what of it. `None` for every other request, and for a `TS.ADD` or `TS.MADD` whose
/// timestamp or value it will refuse (checked before the key: it then writes nothing). A
/// `TS.INCRBY` checks its other arguments only after it created a missing series, so it
/// is named whatever they hold (a bad `TIMESTAMP` counts as `now_ms`).
pub fn series_written<'a>(args: &[&'a [u8]], now_ms: u64) -> Option<(&'a [u8], SeriesWrite)> {
    let key = *args.get(1)?;
    if name_is(args, "TS.CREATE") {
        return Some((key, SeriesWrite::Create));
    }
    if name_is(args, "TS.ALTER") {
        return Some((key, SeriesWrite::Settings));
    }
    let rest = args.get(1..).filter(|rest| rest.len() >= 2)?;
    let ts_ms = if name_is(args, "TS.ADD") || name_is(args, "TS.MADD") {
        let ts = args::parse_timestamp(rest.get(1)?).ok()?;
        args::parse_value(rest.get(2)?)?;
        resolve_ts(ts, now_ms)
    } else if name_is(args, "TS.INCRBY") || name_is(args, "TS.DECRBY") {
        incrby_ts(rest, now_ms).unwrap_or(now_ms)
    } else {
        return None;
    };
    Some((key, SeriesWrite::Sample(ts_ms)))
}

/// Deletes series `key` if there is one: its metadata, chunks and unsealed samples. This
/// is `DEL`'s part, and what a string write that replaces a key (`SET`, `MSET`) does
/// first, so a series never survives under a string of its name. Returns the sequence
/// number of the deletion, `None` when there was no series (known from memory, without a
/// read of the store).
///
/// # Errors
/// The error reply text of a failed read.
pub fn delete_series(
    store: &mut ShardStore,
    cache: &mut SeriesCache,
    key: &[u8],
) -> Result<Option<SeqNo>, String> {
    let storage = |e: SeriesError| format!("ERR storage error: {e}");
    if !cache.directory.contains(store, key).map_err(storage)? {
        return Ok(None);
    }
    let meta = match series::load(store, cache, key).map_err(storage)? {
        Some(state) => state.meta.clone(),
        None => return Ok(None),
    };
    rules::unlink(store, cache, key, &meta).map_err(storage)?;
    cache.forget(store, key);
    cache.directory.remove(key);
    series::delete_series(store, key, &meta)
        .map(Some)
        .map_err(storage)
}
