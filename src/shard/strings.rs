//! Executing the string and counter commands ([`StringOp`]) on the shard that owns their
//! keys: read the current value, compute, write, all within one turn of the shard's loop,
//! so no other request sees the key in between.
//!
//! Durability follows `SET`: a reply that wrote waits for the fdatasync of its own WAL
//! record, one that only read waits for the record of the version it read (the returned
//! [`SeqNo`] is that gate). The lookups read from memory: the shard fetched the SSTable
//! blocks they need through its ring before running the op (`fetch`).
//!
//! Replies and error texts are Redis 7.0's (`t_string.c`). One difference: `INCRBYFLOAT`
//! computes in exact decimal when both numbers have at most 17 decimals and a magnitude
//! below about 1.7e21 (else in binary64), where Redis uses the x87 80-bit `long double`;
//! both print 17 decimals with trailing zeros cut, so they agree except where Redis shows
//! rounding noise (`1000 + 0.1` is `1000.1` here, `1000.09999999999999998` in Redis).

use super::conn::Reply;
use super::exec::Wait;
use super::mesh::{self, Op, OpResult};
use super::txn::Plan;
use super::Shard;
use crate::base::SeqNo;
use crate::command::strings::{
    parse_float, parse_strict_i64, Float, StringOp, FIXED_SCALE, NOT_AN_INTEGER, NOT_A_FLOAT,
};
use crate::store::ShardStore;

/// `RENAME` of, or onto, a time series.
pub(super) const RENAME_SERIES: &str =
    "ERR tskv cannot rename a time series key, nor rename onto one";

/// `ERR string exceeds maximum allowed size (proto-max-bulk-len)`.
const TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

impl Shard {
    /// Routes a string command to the shard owning its keys. An `MSETNX` or `RENAME` whose
    /// keys live on more than one shard runs as a transaction across shards
    /// ([`super::txn`]): it reads, then writes what the reads decided, with all its keys
    /// locked, and is durable as one unit.
    pub(super) fn string_command(
        &mut self,
        key: (u32, u32),
        op: StringOp<&[u8]>,
    ) -> Result<(), Wait> {
        if !keys_span_shards(&op, self.shards) {
            return self.scatter(key, Reply::Single(None), &[Op::Strings(op)]);
        }
        let keys: Vec<Box<[u8]>> = op.keys().iter().map(|&k| k.into()).collect();
        let plan = two_run_plan(&op).expect("only MSETNX and RENAME have keys on several shards");
        let reads = plan.first_run();
        self.begin_tx(key, Reply::Single(None), plan, reads, keys, None)
    }
}

/// The transaction across shards an `MSETNX` or `RENAME` runs as (`None` for the other
/// string commands, whose one key lives on one shard).
pub(super) fn two_run_plan(op: &StringOp<&[u8]>) -> Option<Plan> {
    match op {
        StringOp::MSetNx(pairs) => Some(Plan::MSetNx(
            pairs.iter().map(|&(k, v)| (k.into(), v.into())).collect(),
        )),
        StringOp::Rename { from, to, nx } => Some(Plan::Rename {
            from: (*from).into(),
            to: (*to).into(),
            nx: *nx,
        }),
        _ => None,
    }
}

/// Whether the keys of a multi-key op (`MSETNX`, `RENAME`, `RENAMENX`) live on more than
/// one shard, so that it runs as a transaction across shards ([`two_run_plan`]).
pub(super) fn keys_span_shards(op: &StringOp<&[u8]>, shards: usize) -> bool {
    let keys = op.keys();
    let first = mesh::shard_of(keys[0], shards);
    keys.iter().any(|k| mesh::shard_of(k, shards) != first)
}

/// Runs `op` against `store`. `value_bytes_max` is the longest value `APPEND` and
/// `SETRANGE` may build (the server's `--max-bulk-bytes`, which `CONFIG GET
/// proto-max-bulk-len` reports). Returns the result and the sequence number the reply
/// must wait for.
pub(super) fn run(
    store: &mut ShardStore,
    op: &StringOp<&[u8]>,
    value_bytes_max: usize,
) -> (OpResult, SeqNo) {
    let mut reads = Reads::default();
    let result = run_inner(store, op, value_bytes_max, &mut reads);
    match result {
        Ok((result, wrote)) => (result, wrote.unwrap_or(reads.gate)),
        Err(message) => (OpResult::Err(message), reads.gate),
    }
}

/// The highest sequence number of the versions read, so a reply that only read waits
/// for what it saw to be durable.
#[derive(Default)]
pub(super) struct Reads {
    gate: SeqNo,
}

/// A string value with its deadline (absolute Unix ms), if it has one.
pub(super) type Deadlined = (Vec<u8>, Option<u64>);

/// What a key holds, for the commands that accept any type (`EXPIRE`, `TTL`, ...).
pub(super) enum KeyState {
    /// No live key.
    Missing,
    /// A string, with its deadline (absolute Unix ms) if it has one.
    String(Vec<u8>, Option<u64>),
    /// A time series.
    Series,
}

impl Reads {
    /// What `key` holds: a live string (expired ones are missing), a series, or nothing.
    pub(super) fn state(&mut self, store: &ShardStore, key: &[u8]) -> Result<KeyState, String> {
        match store.get(key) {
            Ok(Some(found)) => {
                self.gate = self.gate.max(found.seq);
                if let Some(value) = found.value {
                    return Ok(KeyState::String(value, found.expire_at_ms));
                }
            }
            Ok(None) => {}
            Err(e) => return Err(super::exec::storage_error(&e)),
        }
        match crate::timeseries::series::series_lookup(store, key) {
            Ok(Some(meta)) => {
                self.gate = self.gate.max(meta.seq);
                Ok(if meta.value.is_some() {
                    KeyState::Series
                } else {
                    KeyState::Missing
                })
            }
            Ok(None) => Ok(KeyState::Missing),
            Err(e) => Err(super::exec::storage_error(&e)),
        }
    }

    /// The string at `key` with its deadline; a series of that name is `WRONGTYPE`, as
    /// string commands answer in Redis.
    pub(super) fn string(
        &mut self,
        store: &ShardStore,
        key: &[u8],
    ) -> Result<Option<Deadlined>, String> {
        match self.state(store, key)? {
            KeyState::Missing => Ok(None),
            KeyState::String(value, deadline) => Ok(Some((value, deadline))),
            KeyState::Series => Err(crate::timeseries::exec::WRONGTYPE.into()),
        }
    }

    fn get(&mut self, store: &ShardStore, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(self.string(store, key)?.map(|(value, _)| value))
    }
}

impl Reads {
    /// Whether `key` holds anything: a series counts (`SETNX` answers 0 on a key of any
    /// type, as in Redis).
    fn exists(&mut self, store: &ShardStore, key: &[u8]) -> Result<bool, String> {
        match self.get(store, key) {
            Ok(value) => Ok(value.is_some()),
            Err(e) if e == crate::timeseries::exec::WRONGTYPE => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// The result and, if the op wrote, the sequence number of its last write.
pub(super) type Outcome = Result<(OpResult, Option<SeqNo>), String>;

fn run_inner(
    store: &mut ShardStore,
    op: &StringOp<&[u8]>,
    value_bytes_max: usize,
    reads: &mut Reads,
) -> Outcome {
    match *op {
        // The read-modify-writes keep the key's deadline, as Redis's do.
        StringOp::IncrBy { key, delta } => {
            let (current, deadline) = match reads.string(store, key)? {
                Some((value, deadline)) => {
                    (parse_strict_i64(&value).ok_or(NOT_AN_INTEGER)?, deadline)
                }
                None => (0, None),
            };
            let next = current
                .checked_add(delta)
                .ok_or("ERR increment or decrement would overflow")?;
            let seq =
                store.put_expiring(key, itoa::Buffer::new().format(next).as_bytes(), deadline);
            Ok((OpResult::Int(next), Some(seq)))
        }
        StringOp::IncrByFloat { key, delta } => {
            let (current, deadline) = match reads.string(store, key)? {
                Some((value, deadline)) => (parse_float(&value).ok_or(NOT_A_FLOAT)?, deadline),
                None => (Float::Fixed(0), None),
            };
            let delta = parse_float(delta).ok_or(NOT_A_FLOAT)?;
            let text =
                add_floats(current, delta).ok_or("ERR increment would produce NaN or Infinity")?;
            let seq = store.put_expiring(key, text.as_bytes(), deadline);
            Ok((OpResult::Value(Some(text.into_bytes())), Some(seq)))
        }
        StringOp::Append { key, value } => {
            let (mut current, deadline) = reads.string(store, key)?.unwrap_or_default();
            if current.len() + value.len() > value_bytes_max {
                return Err(TOO_LONG.into());
            }
            current.extend_from_slice(value);
            let seq = store.put_expiring(key, &current, deadline);
            Ok((OpResult::Int(current.len() as i64), Some(seq)))
        }
        StringOp::StrLen(key) => {
            let len = reads.get(store, key)?.map_or(0, |v| v.len());
            Ok((OpResult::Int(len as i64), None))
        }
        StringOp::GetRange { key, start, end } => {
            let value = reads.get(store, key)?.unwrap_or_default();
            let range = byte_range(value.len(), start, end);
            Ok((OpResult::Value(Some(value[range].to_vec())), None))
        }
        StringOp::SetRange { key, offset, value } => {
            let current = reads.string(store, key)?;
            let current_len = current.as_ref().map_or(0, |(value, _)| value.len());
            if value.is_empty() {
                return Ok((OpResult::Int(current_len as i64), None));
            }
            let end = offset.saturating_add(value.len() as u64);
            if end > value_bytes_max as u64 {
                return Err(TOO_LONG.into());
            }
            let (offset, end) = (offset as usize, end as usize);
            let (mut next, deadline) = current.unwrap_or_default();
            if next.len() < end {
                next.resize(end, 0);
            }
            next[offset..end].copy_from_slice(value);
            let seq = store.put_expiring(key, &next, deadline);
            Ok((OpResult::Int(next.len() as i64), Some(seq)))
        }
        StringOp::GetSet { key, value } => {
            let old = reads.get(store, key)?;
            let seq = store.put(key, value);
            Ok((OpResult::Value(old), Some(seq)))
        }
        StringOp::GetDel(key) => match reads.get(store, key)? {
            Some(old) => {
                let seq = store.delete(key);
                Ok((OpResult::Value(Some(old)), Some(seq)))
            }
            None => Ok((OpResult::Value(None), None)),
        },
        StringOp::SetNx { key, value } => {
            if reads.exists(store, key)? {
                return Ok((OpResult::Int(0), None));
            }
            let seq = store.put(key, value);
            Ok((OpResult::Int(1), Some(seq)))
        }
        StringOp::MSetNx(ref pairs) => {
            for (key, _) in pairs {
                if reads.exists(store, key)? {
                    return Ok((OpResult::Int(0), None));
                }
            }
            let mut last = None;
            for (key, value) in pairs {
                last = Some(store.put(key, value));
            }
            Ok((OpResult::Int(1), last))
        }
        StringOp::Rename { from, to, nx } => {
            let (value, deadline) = match reads.state(store, from)? {
                KeyState::Missing => return Err("ERR no such key".into()),
                KeyState::Series => return Err(RENAME_SERIES.into()),
                KeyState::String(value, deadline) => (value, deadline),
            };
            let reply = |renamed: bool| match (nx, renamed) {
                (false, _) => OpResult::Ok,
                (true, renamed) => OpResult::Int(i64::from(renamed)),
            };
            if from == to {
                return Ok((reply(!nx), None));
            }
            match reads.state(store, to)? {
                KeyState::Missing => {}
                KeyState::String(..) if nx => return Ok((reply(false), None)),
                KeyState::String(..) => {}
                KeyState::Series if nx => return Ok((reply(false), None)),
                KeyState::Series => return Err(RENAME_SERIES.into()),
            }
            store.put_expiring(to, &value, deadline);
            let seq = store.delete(from);
            Ok((reply(true), Some(seq)))
        }
        StringOp::Set { .. }
        | StringOp::GetEx { .. }
        | StringOp::Expire { .. }
        | StringOp::Ttl { .. }
        | StringOp::Persist(_) => super::expiry::run(store, op, reads),
    }
}

/// The bytes `GETRANGE start end` returns of a value of `len` bytes, as Redis 7.0's
/// `getrangeCommand`: negative offsets count from the end, both are clamped into the
/// value, and an empty range is empty.
fn byte_range(len: usize, start: i64, end: i64) -> std::ops::Range<usize> {
    let len = len as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return 0..0;
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    if start > end {
        return 0..0;
    }
    start as usize..end as usize + 1
}

/// `current + delta` as `INCRBYFLOAT` stores and replies it: 17 decimals with trailing
/// zeros and a trailing point cut, `-0` as `0`; `None` if the sum is not finite.
fn add_floats(current: Float, delta: Float) -> Option<String> {
    if let (Float::Fixed(a), Float::Fixed(b)) = (current, delta) {
        if let Some(sum) = a.checked_add(b) {
            return Some(fixed_text(sum));
        }
    }
    let sum = binary(current) + binary(delta);
    if !sum.is_finite() {
        return None;
    }
    Some(trimmed(format!("{sum:.17}")))
}

fn binary(value: Float) -> f64 {
    match value {
        Float::Fixed(units) => units as f64 / FIXED_SCALE as f64,
        Float::Binary(value) => value,
    }
}

fn fixed_text(units: i128) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let magnitude = units.unsigned_abs();
    let scale = FIXED_SCALE as u128;
    trimmed(format!(
        "{sign}{}.{:017}",
        magnitude / scale,
        magnitude % scale
    ))
}

fn trimmed(mut text: String) -> String {
    if text.contains('.') {
        let kept = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(kept);
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_offsets_match_redis() {
        // "Hello World" examples of Redis's GETRANGE documentation.
        let value = b"This is a string";
        let cut = |start, end| &value[byte_range(value.len(), start, end)];
        assert_eq!(cut(0, 3), b"This");
        assert_eq!(cut(-3, -1), b"ing");
        assert_eq!(cut(0, -1), value);
        assert_eq!(cut(10, 100), b"string");
        assert_eq!(cut(5, 3), b"");
        assert_eq!(cut(-1, -5), b"");
        assert_eq!(cut(-100, 2), b"Thi");
        assert_eq!(byte_range(0, 0, -1), 0..0);
    }

    #[test]
    fn float_sums_print_like_redis() {
        let add = |a: &str, b: &str| {
            add_floats(
                parse_float(a.as_bytes()).unwrap(),
                parse_float(b.as_bytes()).unwrap(),
            )
        };
        assert_eq!(add("10.5", "0.1").as_deref(), Some("10.6"));
        assert_eq!(add("0.1", "0.2").as_deref(), Some("0.3"));
        assert_eq!(add("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(add("0", "-0.0001").as_deref(), Some("-0.0001"));
        assert_eq!(add("1", "-1").as_deref(), Some("0"));
        assert_eq!(add("3", "1.5e-20").as_deref(), Some("3"));
        assert_eq!(add("1", "inf"), None);
    }
}
