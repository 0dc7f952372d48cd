//! Executing the commands that set, read or clear a key's expiry deadline ([`StringOp::Set`]
//! with options, [`StringOp::GetEx`], [`StringOp::Expire`], [`StringOp::Ttl`],
//! [`StringOp::Persist`]) on the shard that owns the key, within one turn of its loop.
//!
//! A deadline belongs to a version of the key (WAL record, memtable, SSTable entry), so
//! changing it writes the value again with the new deadline, durably like a `SET`; a
//! deadline already past deletes the key (a tombstone), as Redis's `checkAlreadyExpired`.
//! Replies follow Redis 7.0's `t_string.c` and `expire.c`. A time series cannot expire in
//! tskv: `EXPIRE` of a series is an error, `TTL` answers -1 and `PERSIST` 0.

use super::mesh::OpResult;
use super::strings::{KeyState, Outcome, Reads};
use crate::base::unix_now_ms;
use crate::command::expiry::{invalid_expire_time, GetExExpiry, SetExpiry};
use crate::command::{CommandKind, SetCondition, StringOp};
use crate::store::ShardStore;
use crate::timeseries::exec::WRONGTYPE;

/// `EXPIRE` of a time series: tskv keeps series until `DEL`.
pub const SERIES_CANNOT_EXPIRE: &str = "ERR tskv cannot set a deadline on a time series key";

/// Writes `value` at `key` with deadline `when` (absolute Unix ms), or deletes the key when
/// `when` is not after `now_ms` (Redis's `checkAlreadyExpired`: `when <= now`).
fn put_until(
    store: &mut ShardStore,
    key: &[u8],
    value: &[u8],
    when: i64,
    now_ms: u64,
) -> crate::base::SeqNo {
    match u64::try_from(when) {
        Ok(when) if when > now_ms => store.put_expiring(key, value, Some(when)),
        _ => store.delete(key),
    }
}

/// Runs one of the expiry ops (see the module documentation).
pub(super) fn run(store: &mut ShardStore, op: &StringOp<&[u8]>, reads: &mut Reads) -> Outcome {
    let now_ms = unix_now_ms();
    match *op {
        StringOp::Set {
            key,
            value,
            condition,
            expiry,
            get,
            kind,
        } => {
            // The deadline is checked before the key is read, as in `setCommand`.
            let when = match expiry {
                SetExpiry::At(arg) => Some(
                    arg.resolve(now_ms)
                        .filter(|&when| when > 0)
                        .ok_or_else(|| invalid_expire_time(kind))?,
                ),
                SetExpiry::Keep | SetExpiry::Clear => None,
            };
            let state = reads.state(store, key)?;
            let (found, old, old_deadline) = match state {
                KeyState::Missing => (false, None, None),
                KeyState::String(value, deadline) => (true, Some(value), deadline),
                KeyState::Series if get => return Err(WRONGTYPE.into()),
                KeyState::Series => (true, None, None),
            };
            let refused = match condition {
                SetCondition::Always => false,
                SetCondition::IfAbsent => found,
                SetCondition::IfPresent => !found,
            };
            let reply = |set: bool| match (get, set) {
                (true, _) => OpResult::Value(old.clone()),
                (false, true) => OpResult::Ok,
                (false, false) => OpResult::NotApplied,
            };
            if refused {
                return Ok((reply(false), None));
            }
            let seq = match (when, expiry) {
                (Some(when), _) => put_until(store, key, value, when, now_ms),
                (None, SetExpiry::Keep) => store.put_expiring(key, value, old_deadline),
                (None, _) => store.put(key, value),
            };
            Ok((reply(true), Some(seq)))
        }
        StringOp::GetEx { key, expiry } => {
            let Some((value, deadline)) = reads.string(store, key)? else {
                return Ok((OpResult::Value(None), None));
            };
            let seq = match expiry {
                GetExExpiry::Refused(message) => return Err(message.into()),
                GetExExpiry::Unchanged => None,
                GetExExpiry::Persist => deadline.map(|_| store.put(key, &value)),
                GetExExpiry::At(arg) => {
                    let when = arg
                        .resolve(now_ms)
                        .filter(|&when| when > 0)
                        .ok_or_else(|| invalid_expire_time(CommandKind::GetEx))?;
                    Some(put_until(store, key, &value, when, now_ms))
                }
            };
            Ok((OpResult::Value(Some(value)), seq))
        }
        StringOp::Expire {
            key,
            when,
            flags,
            kind,
        } => {
            let when = when
                .resolve(now_ms)
                .ok_or_else(|| invalid_expire_time(kind))?;
            let (value, current) = match reads.state(store, key)? {
                KeyState::Missing => return Ok((OpResult::Int(0), None)),
                KeyState::Series => return Err(SERIES_CANNOT_EXPIRE.into()),
                KeyState::String(value, current) => (value, current),
            };
            let current = current.map(|d| i64::try_from(d).unwrap_or(i64::MAX));
            if !flags.allow(current, when) {
                return Ok((OpResult::Int(0), None));
            }
            let seq = put_until(store, key, &value, when, now_ms);
            Ok((OpResult::Int(1), Some(seq)))
        }
        StringOp::Ttl { key, kind } => {
            let deadline = match reads.state(store, key)? {
                KeyState::Missing => return Ok((OpResult::Int(-2), None)),
                KeyState::Series | KeyState::String(_, None) => {
                    return Ok((OpResult::Int(-1), None))
                }
                KeyState::String(_, Some(deadline)) => i64::try_from(deadline).unwrap_or(i64::MAX),
            };
            let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
            let reply = match kind {
                CommandKind::Ttl => (deadline - now).max(0).saturating_add(500) / 1000,
                CommandKind::PTtl => (deadline - now).max(0),
                CommandKind::ExpireTime => deadline / 1000,
                _ => deadline,
            };
            Ok((OpResult::Int(reply), None))
        }
        StringOp::Persist(key) => match reads.state(store, key)? {
            KeyState::String(value, Some(_)) => {
                let seq = store.put(key, &value);
                Ok((OpResult::Int(1), Some(seq)))
            }
            _ => Ok((OpResult::Int(0), None)),
        },
        _ => unreachable!("not an expiry op"),
    }
}
