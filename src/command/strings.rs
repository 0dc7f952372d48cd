//! The string and counter commands that read a key's value before they answer or write:
//! `INCR DECR INCRBY DECRBY INCRBYFLOAT APPEND STRLEN GETRANGE SETRANGE GETSET GETDEL SETNX
//! MSETNX`. Each becomes one [`StringOp`], run whole on the shard that owns its keys, so a
//! read-modify-write is atomic (a shard runs one operation at a time).
//!
//! Argument errors are found here, before any key is read, with Redis 7.0's texts
//! (`t_string.c`); errors that depend on the stored value come from
//! [`crate::shard`]'s execution of the op.

use super::expiry::{DeadlineArg, ExpireFlags, GetExExpiry, SetExpiry};
use super::{Command, CommandKind, SetCondition};

/// `ERR value is not an integer or out of range` (Redis's `shared.outofrangeerr` text).
pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
/// `ERR value is not a valid float`.
pub const NOT_A_FLOAT: &str = "ERR value is not a valid float";

/// One string command, generic over how it holds bytes: borrowed from the request (`&[u8]`)
/// or owned to cross to another shard (`Box<[u8]>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StringOp<K> {
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`: add `delta` to the integer stored at `key`
    /// (0 if missing); replies with the new value.
    IncrBy {
        /// The key.
        key: K,
        /// The signed amount to add (`DECRBY n` is `-n`).
        delta: i64,
    },
    /// `INCRBYFLOAT key increment`: replies with the new value as a bulk string.
    IncrByFloat {
        /// The key.
        key: K,
        /// The increment as the client sent it (checked to be a number at parse time).
        delta: K,
    },
    /// `APPEND key value`: replies with the new length in bytes.
    Append {
        /// The key.
        key: K,
        /// The bytes to append.
        value: K,
    },
    /// `STRLEN key`: the value's length in bytes, 0 if missing.
    StrLen(K),
    /// `GETRANGE key start end`: the bytes from `start` to `end` inclusive; negative
    /// offsets count from the end.
    GetRange {
        /// The key.
        key: K,
        /// First byte offset.
        start: i64,
        /// Last byte offset, inclusive.
        end: i64,
    },
    /// `SETRANGE key offset value`: overwrite from byte `offset` (zero-padding a shorter
    /// value); replies with the new length.
    SetRange {
        /// The key.
        key: K,
        /// Byte offset, at least 0.
        offset: u64,
        /// The bytes to write.
        value: K,
    },
    /// `GETSET key value`: set, replying with the old value or null.
    GetSet {
        /// The key.
        key: K,
        /// The new value.
        value: K,
    },
    /// `GETDEL key`: delete, replying with the old value or null.
    GetDel(K),
    /// `SETNX key value`: set if missing; replies 1 if set, 0 if not.
    SetNx {
        /// The key.
        key: K,
        /// The value.
        value: K,
    },
    /// `MSETNX key value [key value ...]`, every key on one shard: set them all if none
    /// exists; replies 1 if set, 0 if not.
    MSetNx(Vec<(K, K)>),
    /// `RENAME key newkey` / `RENAMENX` (`nx`), both keys on one shard: moves the value
    /// and its deadline; `ERR no such key` if `from` is missing.
    Rename {
        /// The key renamed.
        from: K,
        /// Its new name.
        to: K,
        /// `RENAMENX`: only if `to` does not exist (replies 1 or 0 instead of `OK`).
        nx: bool,
    },
    /// `SET` with `GET` or a deadline option, `SETEX`, `PSETEX` (see
    /// [`super::expiry`]): replies `OK`/nil, or the old value with `GET`.
    Set {
        /// The key.
        key: K,
        /// The new value.
        value: K,
        /// NX / XX.
        condition: SetCondition,
        /// The new value's deadline.
        expiry: SetExpiry,
        /// `GET`: reply with the old value.
        get: bool,
        /// The command, for its error texts.
        kind: CommandKind,
    },
    /// `GETEX key [EX|PX|EXAT|PXAT|PERSIST]`: the value, changing its deadline.
    GetEx {
        /// The key.
        key: K,
        /// What happens to the deadline.
        expiry: GetExExpiry,
    },
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`: replies 1 if the deadline was set
    /// (or the key deleted, for a deadline in the past), 0 if not.
    Expire {
        /// The key.
        key: K,
        /// The new deadline.
        when: DeadlineArg,
        /// NX / XX / GT / LT.
        flags: ExpireFlags,
        /// The command, for its error texts.
        kind: CommandKind,
    },
    /// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME` (`kind` says which): -2 if the key is
    /// missing, -1 if it has no deadline.
    Ttl {
        /// The key.
        key: K,
        /// Which of the four.
        kind: CommandKind,
    },
    /// `PERSIST key`: drops the deadline; replies 1 if there was one.
    Persist(K),
}

impl<K: AsRef<[u8]>> StringOp<K> {
    /// Whether the op may write (it is refused on a shard that refuses writes).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Self::StrLen(_) | Self::GetRange { .. } | Self::Ttl { .. }
        )
    }

    /// The op holding borrowed bytes.
    pub fn as_borrowed(&self) -> StringOp<&[u8]> {
        self.map(|k| k.as_ref())
    }

    /// The op holding copies of its bytes, to send to another shard.
    pub fn to_owned_op(&self) -> StringOp<Box<[u8]>> {
        self.map(|k| Box::from(k.as_ref()))
    }

    fn map<'s, T>(&'s self, f: impl Fn(&'s K) -> T) -> StringOp<T> {
        match self {
            Self::IncrBy { key, delta } => StringOp::IncrBy {
                key: f(key),
                delta: *delta,
            },
            Self::IncrByFloat { key, delta } => StringOp::IncrByFloat {
                key: f(key),
                delta: f(delta),
            },
            Self::Append { key, value } => StringOp::Append {
                key: f(key),
                value: f(value),
            },
            Self::StrLen(key) => StringOp::StrLen(f(key)),
            Self::GetRange { key, start, end } => StringOp::GetRange {
                key: f(key),
                start: *start,
                end: *end,
            },
            Self::SetRange { key, offset, value } => StringOp::SetRange {
                key: f(key),
                offset: *offset,
                value: f(value),
            },
            Self::GetSet { key, value } => StringOp::GetSet {
                key: f(key),
                value: f(value),
            },
            Self::GetDel(key) => StringOp::GetDel(f(key)),
            Self::SetNx { key, value } => StringOp::SetNx {
                key: f(key),
                value: f(value),
            },
            Self::MSetNx(pairs) => {
                StringOp::MSetNx(pairs.iter().map(|(k, v)| (f(k), f(v))).collect())
            }
            Self::Rename { from, to, nx } => StringOp::Rename {
                from: f(from),
                to: f(to),
                nx: *nx,
            },
            Self::Set {
                key,
                value,
                condition,
                expiry,
                get,
                kind,
            } => StringOp::Set {
                key: f(key),
                value: f(value),
                condition: *condition,
                expiry: *expiry,
                get: *get,
                kind: *kind,
            },
            Self::GetEx { key, expiry } => StringOp::GetEx {
                key: f(key),
                expiry: *expiry,
            },
            Self::Expire {
                key,
                when,
                flags,
                kind,
            } => StringOp::Expire {
                key: f(key),
                when: *when,
                flags: *flags,
                kind: *kind,
            },
            Self::Ttl { key, kind } => StringOp::Ttl {
                key: f(key),
                kind: *kind,
            },
            Self::Persist(key) => StringOp::Persist(f(key)),
        }
    }
}

impl<'k> StringOp<&'k [u8]> {
    /// The keys the op reads (and may write), in argument order.
    pub fn keys(&self) -> smallvec::SmallVec<[&'k [u8]; 2]> {
        match *self {
            Self::IncrBy { key, .. }
            | Self::IncrByFloat { key, .. }
            | Self::Append { key, .. }
            | Self::GetRange { key, .. }
            | Self::SetRange { key, .. }
            | Self::GetSet { key, .. }
            | Self::SetNx { key, .. }
            | Self::StrLen(key)
            | Self::GetDel(key)
            | Self::Set { key, .. }
            | Self::GetEx { key, .. }
            | Self::Expire { key, .. }
            | Self::Ttl { key, .. }
            | Self::Persist(key) => smallvec::smallvec![key],
            Self::MSetNx(ref pairs) => pairs.iter().map(|(k, _)| *k).collect(),
            Self::Rename { from, to, .. } => smallvec::smallvec![from, to],
        }
    }
}

/// Parses the arguments after the name of string command `kind` (arity already checked).
pub(super) fn parse<'a>(kind: CommandKind, rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let integer = |arg: &[u8]| parse_strict_i64(arg).ok_or_else(|| NOT_AN_INTEGER.to_owned());
    let op = match kind {
        CommandKind::Incr => StringOp::IncrBy {
            key: rest[0],
            delta: 1,
        },
        CommandKind::Decr => StringOp::IncrBy {
            key: rest[0],
            delta: -1,
        },
        CommandKind::IncrBy => StringOp::IncrBy {
            key: rest[0],
            delta: integer(rest[1])?,
        },
        CommandKind::DecrBy => {
            let delta = integer(rest[1])?;
            let delta = delta.checked_neg().ok_or("ERR decrement would overflow")?;
            StringOp::IncrBy {
                key: rest[0],
                delta,
            }
        }
        CommandKind::IncrByFloat => {
            if parse_float(rest[1]).is_none() {
                return Err(NOT_A_FLOAT.into());
            }
            StringOp::IncrByFloat {
                key: rest[0],
                delta: rest[1],
            }
        }
        CommandKind::Append => StringOp::Append {
            key: rest[0],
            value: rest[1],
        },
        CommandKind::StrLen => StringOp::StrLen(rest[0]),
        CommandKind::GetRange => StringOp::GetRange {
            key: rest[0],
            start: integer(rest[1])?,
            end: integer(rest[2])?,
        },
        CommandKind::SetRange => {
            let offset = integer(rest[1])?;
            let offset = u64::try_from(offset).map_err(|_| "ERR offset is out of range")?;
            StringOp::SetRange {
                key: rest[0],
                offset,
                value: rest[2],
            }
        }
        CommandKind::GetSet => StringOp::GetSet {
            key: rest[0],
            value: rest[1],
        },
        CommandKind::GetDel => StringOp::GetDel(rest[0]),
        CommandKind::SetNx => StringOp::SetNx {
            key: rest[0],
            value: rest[1],
        },
        CommandKind::MSetNx => {
            if !rest.len().is_multiple_of(2) {
                return Err(super::wrong_arity("msetnx"));
            }
            StringOp::MSetNx(rest.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect())
        }
        CommandKind::Rename | CommandKind::RenameNx => StringOp::Rename {
            from: rest[0],
            to: rest[1],
            nx: kind == CommandKind::RenameNx,
        },
        other => unreachable!("{} is not a string command", other.name()),
    };
    Ok(Command::Strings(op))
}

/// Parses a decimal `i64` exactly as Redis's `string2ll`: an optional `-`, no `+`, no
/// spaces, no leading zeros (`"0"` alone is zero, `"-0"` and `"007"` are refused).
pub fn parse_strict_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'0'] => return Some(0),
        [b'-', rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// A number `INCRBYFLOAT` accepts, as Redis's `string2ld` (C's `strtold` on the whole
/// argument, no leading space, not NaN), except that hexadecimal floats are refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Float {
    /// Exactly `units / 10^17`: every decimal with at most 17 digits after the point and
    /// a magnitude below about 1.7e21.
    Fixed(i128),
    /// Any other value, to binary64 precision (infinities included).
    Binary(f64),
}

/// 10^17: [`Float::Fixed`] counts units of 10^-17, the 17 decimals `INCRBYFLOAT` prints.
pub const FIXED_SCALE: i128 = 100_000_000_000_000_000;

/// Parses `bytes` as [`Float`]; `None` if `INCRBYFLOAT` must refuse it.
pub fn parse_float(bytes: &[u8]) -> Option<Float> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.len() >= 5 * 1024 || text.starts_with(char::is_whitespace) {
        return None;
    }
    let unsigned = text.trim_start_matches(['+', '-']);
    if unsigned.len() + 1 < text.len() {
        return None;
    }
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        let negative = text.starts_with('-');
        return Some(Float::Binary(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }));
    }
    // Only digits, one point, and an exponent: what Rust's parser accepts beyond that
    // ("nan", "inf" spellings) was handled or must be refused.
    if !unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let binary: f64 = text.parse().ok()?;
    Some(fixed_decimal(text).map_or(Float::Binary(binary), Float::Fixed))
}

/// `text` in units of 10^-17 if that is exact and fits.
fn fixed_decimal(text: &str) -> Option<i128> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits = whole.bytes().chain(fraction.bytes());
    let mut units: i128 = 0;
    for digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        units = units
            .checked_mul(10)?
            .checked_add(i128::from(digit - b'0'))?;
    }
    // units × 10^(exponent − fraction digits) × 10^17.
    let shift = 17 + i64::from(exponent) - fraction.len() as i64;
    if shift >= 0 {
        units = units.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?;
    } else {
        let divisor = 10i128.checked_pow(u32::try_from(-shift).ok()?)?;
        if units % divisor != 0 {
            return None;
        }
        units /= divisor;
    }
    Some(if negative { -units } else { units })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers_follow_string2ll() {
        assert_eq!(parse_strict_i64(b"0"), Some(0));
        assert_eq!(parse_strict_i64(b"-12"), Some(-12));
        assert_eq!(parse_strict_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_strict_i64(b"-9223372036854775808"), Some(i64::MIN));
        for refused in [
            &b""[..],
            b"-0",
            b"007",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1.0",
            b"-",
        ] {
            assert_eq!(parse_strict_i64(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn floats_are_exact_decimals_when_they_can_be() {
        assert_eq!(parse_float(b"1.5"), Some(Float::Fixed(FIXED_SCALE * 3 / 2)));
        assert_eq!(parse_float(b"-0.1"), Some(Float::Fixed(-FIXED_SCALE / 10)));
        assert_eq!(
            parse_float(b"5.0e3"),
            Some(Float::Fixed(5000 * FIXED_SCALE))
        );
        assert_eq!(parse_float(b".5"), Some(Float::Fixed(FIXED_SCALE / 2)));
        assert_eq!(parse_float(b"1e-20"), Some(Float::Binary(1e-20)));
        assert_eq!(parse_float(b"inf"), Some(Float::Binary(f64::INFINITY)));
        for refused in [&b""[..], b" 1", b"nan", b"abc", b"1x", b"0x10", b"--1"] {
            assert_eq!(parse_float(refused), None, "{refused:?}");
        }
    }
}
