//! Parsing of the commands that set, read or clear a key's expiry deadline: `SET`'s
//! extended options (`EX PX EXAT PXAT KEEPTTL GET`), `SETEX`, `PSETEX`, `GETEX`, `EXPIRE`,
//! `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`, `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME` and
//! `PERSIST`. Each becomes a [`StringOp`], run whole on the shard owning its key.
//!
//! Option grammar, precedence and error texts follow Redis 7.0: `t_string.c`
//! (`parseExtendedStringArgumentsOrReply`, `getExpireMillisecondsOrReply`) and `expire.c`
//! (`parseExtendedExpireArgumentsOrReply`, `expireGenericCommand`). Deadlines are absolute
//! Unix milliseconds, computed on the owning shard when the op runs, as Redis computes them
//! when the command runs (so a queued `MULTI` command counts from `EXEC`).

use super::strings::{parse_strict_i64, NOT_AN_INTEGER};
use super::{Command, CommandKind, SetCondition, StringOp};

/// A deadline as a request gives it, in milliseconds: from now (`EX`, `PX`, `EXPIRE`,
/// `PEXPIRE`) or from the Unix epoch (`EXAT`, `PXAT`, `EXPIREAT`, `PEXPIREAT`). Seconds are
/// already multiplied (overflow refused at parsing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadlineArg {
    /// Whether `ms` counts from the epoch rather than from now.
    pub absolute: bool,
    /// Milliseconds; may be negative for the `EXPIRE` family (a deadline in the past).
    pub ms: i64,
}

impl DeadlineArg {
    /// The absolute deadline in Unix ms at `now_ms`, or `None` if it overflows `i64`
    /// (Redis: `ERR invalid expire time in '<cmd>' command`).
    pub fn resolve(self, now_ms: u64) -> Option<i64> {
        if self.absolute {
            Some(self.ms)
        } else {
            self.ms.checked_add(i64::try_from(now_ms).ok()?)
        }
    }
}

/// What `SET` does to the key's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetExpiry {
    /// No option: the new value has no deadline (an old one is dropped).
    Clear,
    /// `KEEPTTL`: the new value keeps the key's current deadline.
    Keep,
    /// `EX`, `PX`, `EXAT`, `PXAT`, and `SETEX`/`PSETEX`.
    At(DeadlineArg),
}

/// What `GETEX` does to the key's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetExExpiry {
    /// No option: nothing (a plain `GET`).
    Unchanged,
    /// `PERSIST`: drop the deadline.
    Persist,
    /// `EX`, `PX`, `EXAT`, `PXAT`.
    At(DeadlineArg),
    /// A deadline argument Redis refuses, with the error it gives once the key is found
    /// (a missing key answers nil first, as in `getexCommand`).
    Refused(&'static str),
}

/// `GETEX`'s error for a deadline that is not positive or overflows.
const GETEX_INVALID_EXPIRE_TIME: &str = "ERR invalid expire time in 'getex' command";

/// The conditions of `EXPIRE key t [NX|XX|GT|LT]`; `XX` combines with `GT` or `LT`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireFlags {
    /// Only if the key has no deadline.
    pub nx: bool,
    /// Only if the key has a deadline.
    pub xx: bool,
    /// Only if the new deadline is later than the current (none counts as infinite).
    pub gt: bool,
    /// Only if the new deadline is earlier than the current (none counts as infinite).
    pub lt: bool,
}

impl ExpireFlags {
    /// Whether a key whose deadline is `current` (`None` = none) may get deadline `when`,
    /// as `expireGenericCommand` decides.
    pub fn allow(self, current: Option<i64>, when: i64) -> bool {
        if self.nx && current.is_some() {
            return false;
        }
        if self.xx && current.is_none() {
            return false;
        }
        if self.gt && current.is_none_or(|current| when <= current) {
            return false;
        }
        if self.lt && current.is_some_and(|current| when >= current) {
            return false;
        }
        true
    }
}

/// `ERR invalid expire time in '<name>' command`.
pub fn invalid_expire_time(kind: CommandKind) -> String {
    format!("ERR invalid expire time in '{}' command", kind.name())
}

/// The option words of `SET` and `GETEX` (`parseExtendedStringArgumentsOrReply`).
#[derive(Clone, Copy, Debug, Default)]
struct Extended<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    /// `EX`/`PX`/`EXAT`/`PXAT`: the unit's milliseconds, whether absolute, the argument.
    expire: Option<(i64, bool, &'a [u8])>,
}

/// Parses the options of `SET` (`for_set`) or `GETEX`, with Redis's precedence: an option
/// that conflicts with one before it is a syntax error, as is a missing argument.
fn parse_extended<'a>(options: &[&'a [u8]], for_set: bool) -> Result<Extended<'a>, String> {
    let syntax = || "ERR syntax error".to_owned();
    let mut parsed = Extended::default();
    let mut i = 0;
    while i < options.len() {
        let option = options[i];
        let next = options.get(i + 1).copied();
        let is = |word: &str| option.eq_ignore_ascii_case(word.as_bytes());
        let has_other_expiry = |unit: Option<(i64, bool)>| {
            parsed.keep_ttl
                || parsed.persist
                || parsed
                    .expire
                    .is_some_and(|(ms, absolute, _)| Some((ms, absolute)) != unit)
        };
        if for_set && is("NX") && !parsed.xx {
            parsed.nx = true;
        } else if for_set && is("XX") && !parsed.nx {
            parsed.xx = true;
        } else if for_set && is("GET") {
            parsed.get = true;
        } else if for_set && is("KEEPTTL") && !parsed.persist && parsed.expire.is_none() {
            parsed.keep_ttl = true;
        } else if !for_set && is("PERSIST") && !parsed.keep_ttl && parsed.expire.is_none() {
            parsed.persist = true;
        } else {
            let unit = if is("EX") {
                (1000, false)
            } else if is("PX") {
                (1, false)
            } else if is("EXAT") {
                (1000, true)
            } else if is("PXAT") {
                (1, true)
            } else {
                return Err(syntax());
            };
            let Some(value) = next else {
                return Err(syntax());
            };
            if has_other_expiry(Some(unit)) {
                return Err(syntax());
            }
            parsed.expire = Some((unit.0, unit.1, value));
            i += 1;
        }
        i += 1;
    }
    Ok(parsed)
}

/// `getExpireMillisecondsOrReply`: a strictly positive count of the unit, converted to
/// milliseconds without overflow.
fn positive_deadline(
    kind: CommandKind,
    (unit_ms, absolute, value): (i64, bool, &[u8]),
) -> Result<DeadlineArg, String> {
    let count = parse_strict_i64(value).ok_or(NOT_AN_INTEGER)?;
    if count <= 0 {
        return Err(invalid_expire_time(kind));
    }
    let ms = count
        .checked_mul(unit_ms)
        .ok_or_else(|| invalid_expire_time(kind))?;
    Ok(DeadlineArg { absolute, ms })
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms|KEEPTTL]`. A plain or
/// `NX`/`XX` `SET` stays [`Command::Set`] (the fast path); `GET` or a deadline option makes
/// it a [`StringOp::Set`].
pub(super) fn parse_set<'a>(rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let (key, value) = (rest[0], rest[1]);
    let options = parse_extended(&rest[2..], true)?;
    let condition = if options.nx {
        SetCondition::IfAbsent
    } else if options.xx {
        SetCondition::IfPresent
    } else {
        SetCondition::Always
    };
    let expiry = match options.expire {
        Some(expire) => SetExpiry::At(positive_deadline(CommandKind::Set, expire)?),
        None if options.keep_ttl => SetExpiry::Keep,
        None => SetExpiry::Clear,
    };
    if expiry == SetExpiry::Clear && !options.get {
        return Ok(Command::Set {
            key,
            value,
            condition,
        });
    }
    Ok(Command::Strings(StringOp::Set {
        key,
        value,
        condition,
        expiry,
        get: options.get,
        kind: CommandKind::Set,
    }))
}

/// Parses the arguments after the name of expiry command `kind` (arity already checked).
pub(super) fn parse<'a>(kind: CommandKind, rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let key = rest[0];
    let op = match kind {
        CommandKind::SetEx | CommandKind::PSetEx => {
            let unit_ms = if kind == CommandKind::SetEx { 1000 } else { 1 };
            let deadline = positive_deadline(kind, (unit_ms, false, rest[1]))?;
            StringOp::Set {
                key,
                value: rest[2],
                condition: SetCondition::Always,
                expiry: SetExpiry::At(deadline),
                get: false,
                kind,
            }
        }
        CommandKind::GetEx => {
            let options = parse_extended(&rest[1..], false)?;
            let expiry = match options.expire {
                Some(expire) => match positive_deadline(kind, expire) {
                    Ok(deadline) => GetExExpiry::At(deadline),
                    Err(e) if e == NOT_AN_INTEGER => GetExExpiry::Refused(NOT_AN_INTEGER),
                    Err(_) => GetExExpiry::Refused(GETEX_INVALID_EXPIRE_TIME),
                },
                None if options.persist => GetExExpiry::Persist,
                None => GetExExpiry::Unchanged,
            };
            StringOp::GetEx { key, expiry }
        }
        CommandKind::Expire
        | CommandKind::PExpire
        | CommandKind::ExpireAt
        | CommandKind::PExpireAt => {
            let flags = parse_expire_flags(&rest[2..])?;
            let count = parse_strict_i64(rest[1]).ok_or(NOT_AN_INTEGER)?;
            let seconds = matches!(kind, CommandKind::Expire | CommandKind::ExpireAt);
            let ms = if seconds {
                count
                    .checked_mul(1000)
                    .ok_or_else(|| invalid_expire_time(kind))?
            } else {
                count
            };
            let absolute = matches!(kind, CommandKind::ExpireAt | CommandKind::PExpireAt);
            StringOp::Expire {
                key,
                when: DeadlineArg { absolute, ms },
                flags,
                kind,
            }
        }
        CommandKind::Ttl
        | CommandKind::PTtl
        | CommandKind::ExpireTime
        | CommandKind::PExpireTime => StringOp::Ttl { key, kind },
        CommandKind::Persist => StringOp::Persist(key),
        other => unreachable!("{} is not an expiry command", other.name()),
    };
    Ok(Command::Strings(op))
}

/// `parseExtendedExpireArgumentsOrReply`.
fn parse_expire_flags(options: &[&[u8]]) -> Result<ExpireFlags, String> {
    let mut flags = ExpireFlags::default();
    for option in options {
        if option.eq_ignore_ascii_case(b"NX") {
            flags.nx = true;
        } else if option.eq_ignore_ascii_case(b"XX") {
            flags.xx = true;
        } else if option.eq_ignore_ascii_case(b"GT") {
            flags.gt = true;
        } else if option.eq_ignore_ascii_case(b"LT") {
            flags.lt = true;
        } else {
            return Err(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(option)
            ));
        }
    }
    if flags.nx && (flags.xx || flags.gt || flags.lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if flags.gt && flags.lt {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(args: &[&str]) -> Result<Command<'static>, String> {
        let args: Vec<&'static [u8]> = args
            .iter()
            .map(|a| &*Box::leak(a.as_bytes().to_vec().into_boxed_slice()))
            .collect();
        parse_set(&args)
    }

    #[test]
    fn set_options_follow_redis_precedence() {
        assert!(matches!(set(&["k", "v"]), Ok(Command::Set { .. })));
        assert!(matches!(
            set(&["k", "v", "nx", "NX"]),
            Ok(Command::Set { .. })
        ));
        for bad in [
            &["k", "v", "NX", "XX"][..],
            &["k", "v", "EX"],
            &["k", "v", "EX", "1", "PX", "1"],
            &["k", "v", "KEEPTTL", "EX", "1"],
            &["k", "v", "EX", "1", "KEEPTTL"],
            &["k", "v", "PERSIST"],
            &["k", "v", "WHAT"],
        ] {
            assert_eq!(set(bad).unwrap_err(), "ERR syntax error", "{bad:?}");
        }
        assert_eq!(
            set(&["k", "v", "EX", "0"]).unwrap_err(),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(set(&["k", "v", "EX", "x"]).unwrap_err(), NOT_AN_INTEGER);
        assert_eq!(
            set(&["k", "v", "EX", "9223372036854776"]).unwrap_err(),
            "ERR invalid expire time in 'set' command"
        );
        // The later of two identical units wins.
        match set(&["k", "v", "EX", "1", "EX", "2"]) {
            Ok(Command::Strings(StringOp::Set { expiry, .. })) => assert_eq!(
                expiry,
                SetExpiry::At(DeadlineArg {
                    absolute: false,
                    ms: 2000
                })
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expire_flags_combine_as_in_redis() {
        let flags = |words: &[&str]| {
            let words: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
            parse_expire_flags(&words)
        };
        assert!(flags(&["XX", "GT"]).is_ok());
        assert!(flags(&["NX", "GT"])
            .unwrap_err()
            .starts_with("ERR NX and XX"));
        assert!(flags(&["GT", "LT"])
            .unwrap_err()
            .starts_with("ERR GT and LT"));
        assert_eq!(flags(&["ZZ"]).unwrap_err(), "ERR Unsupported option ZZ");
        let gt = ExpireFlags {
            gt: true,
            ..ExpireFlags::default()
        };
        assert!(!gt.allow(None, 10), "no deadline is infinite: GT fails");
        assert!(gt.allow(Some(5), 10));
        let lt = ExpireFlags {
            lt: true,
            ..ExpireFlags::default()
        };
        assert!(lt.allow(None, 10), "no deadline is infinite: LT succeeds");
        assert!(!lt.allow(Some(5), 10));
    }
}
