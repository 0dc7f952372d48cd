//! The server commands that tools send: `TIME`, `WAIT`, `MEMORY`, `OBJECT` and
//! `COMMAND`, with Redis 7.0's errors (`server.c` `timeCommand` and `commandCommand`,
//! `replication.c` `waitCommand`, `object.c` `memoryCommand` and `objectCommand`).
//!
//! `MEMORY`, `OBJECT` and `COMMAND` are container commands: each subcommand has its own arity, and an
//! argument count that does not fit it names the subcommand (`'object|encoding'`), as in
//! Redis 7.

use super::keyspec::{
    Subcommand, COMMAND_SUBCOMMANDS, MEMORY_SUBCOMMANDS, OBJECT_SUBCOMMANDS, SLOWLOG_SUBCOMMANDS,
};
use super::strings::{parse_strict_i64, NOT_AN_INTEGER};
use super::{unknown_subcommand, wrong_arity, Command};

/// What `MEMORY USAGE` and `OBJECT` ask about one key, answered by the shard that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyQuery {
    /// `OBJECT ENCODING`: `int`, `embstr` or `raw`, as Redis would store the value.
    Encoding,
    /// `OBJECT FREQ`: an error under the default `noeviction` policy, as in Redis.
    Freq,
    /// `OBJECT IDLETIME`: seconds since the last access (tskv keeps none: always 0).
    IdleTime,
    /// `OBJECT REFCOUNT`: 1, or `i32::MAX` for the integers Redis shares (0 to 9999).
    RefCount,
    /// `MEMORY USAGE`: the bytes the key and its value take in tskv's store.
    MemoryUsage,
}

/// A parsed `TIME`, `WAIT`, `MEMORY` or `OBJECT` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCommand<'a> {
    /// `TIME`: the server's clock as `[unix seconds, microseconds]`.
    Time,
    /// `WAIT numreplicas timeout`: a single node has no replicas, so 0 at once.
    Wait,
    /// `MEMORY USAGE key [SAMPLES n]` or `OBJECT <sub> key`.
    Key {
        /// The key.
        key: &'a [u8],
        /// What is asked.
        query: KeyQuery,
    },
    /// `MEMORY DOCTOR`.
    MemoryDoctor,
    /// `MEMORY STATS`.
    MemoryStats,
    /// `MEMORY MALLOC-STATS`.
    MemoryMallocStats,
    /// `MEMORY PURGE`.
    MemoryPurge,
    /// `MEMORY HELP` / `OBJECT HELP` / `SLOWLOG HELP`: the lines to send.
    Help(&'static [&'static str]),
    /// `SLOWLOG GET|LEN|RESET`.
    Slowlog(SlowlogSub),
}

/// The `SLOWLOG` subcommands but `HELP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowlogSub {
    /// `SLOWLOG GET [count]`: up to `count` entries (`None`: all, from `-1`).
    Get(Option<usize>),
    /// `SLOWLOG LEN`.
    Len,
    /// `SLOWLOG RESET`.
    Reset,
}

/// Entries `SLOWLOG GET` returns without a count, as Redis.
pub const SLOWLOG_GET_COUNT_DEFAULT: usize = 10;

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// `SLOWLOG <subcommand> ...` (Redis 7.0's `slowlogCommand`).
pub(super) fn parse_slowlog<'a>(rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let sub = match subcommand("slowlog", rest[0], rest.len() + 1, SLOWLOG_SUBCOMMANDS)? {
        "get" => match rest.get(1) {
            None => SlowlogSub::Get(Some(SLOWLOG_GET_COUNT_DEFAULT)),
            Some(count) => match parse_strict_i64(count) {
                Some(-1) => SlowlogSub::Get(None),
                Some(n) if n >= 0 => {
                    SlowlogSub::Get(Some(usize::try_from(n).unwrap_or(usize::MAX)))
                }
                _ => return Err("ERR count should be greater than or equal to -1".into()),
            },
        },
        "len" => SlowlogSub::Len,
        "reset" => SlowlogSub::Reset,
        _ => return Ok(Command::Server(ServerCommand::Help(SLOWLOG_HELP))),
    };
    Ok(Command::Server(ServerCommand::Slowlog(sub)))
}

/// `COMMAND` subcommands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandSub<'a> {
    /// `COMMAND`: every command's entry.
    List,
    /// `COMMAND COUNT`.
    Count,
    /// `COMMAND DOCS [name...]`: each named command's (or every command's) documentation.
    Docs(Vec<&'a [u8]>),
    /// `COMMAND INFO [name...]`: the entries of the named commands (nil for an unknown
    /// name), or every entry without names.
    Info(Vec<&'a [u8]>),
    /// `COMMAND GETKEYS command arg...`: the keys of that request.
    GetKeys(Vec<&'a [u8]>),
    /// `COMMAND LIST`: every command's name.
    Names,
    /// `COMMAND HELP`.
    Help,
}

/// Redis 7.0's reply to `OBJECT FREQ` when the maxmemory policy is not LFU (tskv has no
/// eviction, like Redis's default `noeviction`).
pub const FREQ_WITHOUT_LFU: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value (in tskv: in its store).",
    "HELP",
    "    Print this help.",
];

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation Redis would use for the value.",
    "FREQ <key>",
    "    Not tracked: tskv has no LFU eviction policy.",
    "IDLETIME <key>",
    "    Always 0: tskv keeps no access times.",
    "REFCOUNT <key>",
    "    Return the number of references Redis would keep to the value.",
    "HELP",
    "    Print this help.",
];

/// `TIME`.
pub(super) fn parse_time<'a>() -> Result<Command<'a>, String> {
    Ok(Command::Server(ServerCommand::Time))
}

/// `WAIT numreplicas timeout`: both integers, the timeout not negative.
pub(super) fn parse_wait<'a>(rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    parse_strict_i64(rest[0]).ok_or(NOT_AN_INTEGER)?;
    let timeout_ms =
        parse_strict_i64(rest[1]).ok_or("ERR timeout is not an integer or out of range")?;
    if timeout_ms < 0 {
        return Err("ERR timeout is negative".into());
    }
    Ok(Command::Server(ServerCommand::Wait))
}

/// Looks `sub` up among a container's subcommands ([`super::keyspec`]); the error is Redis's
/// for an unknown subcommand or a count of arguments (`n`, the container's name included)
/// that does not fit.
fn subcommand(
    container: &str,
    sub: &[u8],
    n: usize,
    table: &[Subcommand],
) -> Result<&'static str, String> {
    let Some(&Subcommand { name, arity, .. }) = table
        .iter()
        .find(|entry| sub.eq_ignore_ascii_case(entry.name.as_bytes()))
    else {
        return Err(unknown_subcommand(sub, &container.to_ascii_uppercase()));
    };
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return Err(wrong_arity(&format!("{container}|{name}")));
    }
    Ok(name)
}

/// `MEMORY <subcommand> ...`.
pub(super) fn parse_memory<'a>(rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let command = match subcommand("memory", rest[0], rest.len() + 1, MEMORY_SUBCOMMANDS)? {
        "usage" => {
            let mut options = rest[2..].iter();
            while let Some(option) = options.next() {
                match options.next() {
                    Some(count) if option.eq_ignore_ascii_case(b"SAMPLES") => {
                        // Sampling is for aggregates; a string is measured whole.
                        let samples = parse_strict_i64(count).ok_or(NOT_AN_INTEGER)?;
                        if samples < 0 {
                            return Err("ERR syntax error".into());
                        }
                    }
                    _ => return Err("ERR syntax error".into()),
                }
            }
            ServerCommand::Key {
                key: rest[1],
                query: KeyQuery::MemoryUsage,
            }
        }
        "doctor" => ServerCommand::MemoryDoctor,
        "stats" => ServerCommand::MemoryStats,
        "malloc-stats" => ServerCommand::MemoryMallocStats,
        "purge" => ServerCommand::MemoryPurge,
        _ => ServerCommand::Help(MEMORY_HELP),
    };
    Ok(Command::Server(command))
}

/// `OBJECT <subcommand> ...`.
pub(super) fn parse_object<'a>(rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let query = match subcommand("object", rest[0], rest.len() + 1, OBJECT_SUBCOMMANDS)? {
        "encoding" => KeyQuery::Encoding,
        "freq" => KeyQuery::Freq,
        "idletime" => KeyQuery::IdleTime,
        "refcount" => KeyQuery::RefCount,
        _ => return Ok(Command::Server(ServerCommand::Help(OBJECT_HELP))),
    };
    Ok(Command::Server(ServerCommand::Key {
        key: rest[1],
        query,
    }))
}

/// `COMMAND [<subcommand> ...]`.
pub(super) fn parse_command<'a>(rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let Some(sub) = rest.first() else {
        return Ok(Command::Command(CommandSub::List));
    };
    let parsed = match subcommand("command", sub, rest.len() + 1, COMMAND_SUBCOMMANDS)? {
        "count" => CommandSub::Count,
        "docs" => CommandSub::Docs(rest[1..].to_vec()),
        "info" => CommandSub::Info(rest[1..].to_vec()),
        "getkeys" => CommandSub::GetKeys(rest[1..].to_vec()),
        // `FILTERBY` is not supported.
        "list" if rest.len() > 1 => return Err("ERR syntax error".into()),
        "list" => CommandSub::Names,
        _ => CommandSub::Help,
    };
    Ok(Command::Command(parsed))
}

/// Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`: longer strings are stored `raw`.
const EMBSTR_BYTES_MAX: usize = 44;

/// Redis's `OBJ_SHARED_INTEGERS`: integers below it share one object.
const SHARED_INTEGERS: i64 = 10_000;

/// How Redis 7.0 would encode `value` stored by `SET` (`object.c` `tryObjectEncoding`):
/// `int` for a decimal integer of at most 20 bytes that `string2ll` accepts, `embstr` up
/// to 44 bytes, `raw` beyond.
pub fn string_encoding(value: &[u8]) -> &'static str {
    if value.len() <= 20 && parse_strict_i64(value).is_some() {
        "int"
    } else if value.len() <= EMBSTR_BYTES_MAX {
        "embstr"
    } else {
        "raw"
    }
}

/// `OBJECT REFCOUNT` as Redis 7.0 answers for `value` stored by `SET` under the default
/// policy: `i32::MAX` (`OBJ_SHARED_REFCOUNT`) for the shared integers 0 to 9999, else 1.
pub fn string_refcount(value: &[u8]) -> i64 {
    match parse_strict_i64(value) {
        Some(n) if value.len() <= 20 && (0..SHARED_INTEGERS).contains(&n) => i64::from(i32::MAX),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&'static str]) -> Vec<&'static [u8]> {
        list.iter().map(|w| w.as_bytes()).collect()
    }

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(string_encoding(b"1"), "int");
        assert_eq!(string_encoding(b"-9223372036854775808"), "int");
        assert_eq!(string_encoding(b"9223372036854775808"), "embstr");
        assert_eq!(string_encoding(b"007"), "embstr");
        assert_eq!(string_encoding(b"-0"), "embstr");
        assert_eq!(string_encoding(&[b'x'; 44]), "embstr");
        assert_eq!(string_encoding(&[b'x'; 45]), "raw");
        assert_eq!(string_refcount(b"9999"), i64::from(i32::MAX));
        assert_eq!(string_refcount(b"10000"), 1);
        assert_eq!(string_refcount(b"-1"), 1);
    }

    #[test]
    fn subcommand_errors_name_the_subcommand() {
        assert_eq!(
            parse_object(&words(&["encoding"])).unwrap_err(),
            "ERR wrong number of arguments for 'object|encoding' command"
        );
        assert_eq!(
            parse_object(&words(&["foo", "k"])).unwrap_err(),
            "ERR unknown subcommand 'foo'. Try OBJECT HELP."
        );
        assert_eq!(
            parse_memory(&words(&["usage", "k", "samples", "-1"])).unwrap_err(),
            "ERR syntax error"
        );
        assert_eq!(
            parse_memory(&words(&["usage", "k", "samples"])).unwrap_err(),
            "ERR syntax error"
        );
        assert_eq!(
            parse_memory(&words(&["doctor", "x"])).unwrap_err(),
            "ERR wrong number of arguments for 'memory|doctor' command"
        );
        assert!(parse_memory(&words(&["USAGE", "k", "SAMPLES", "0"])).is_ok());
    }

    #[test]
    fn wait_checks_its_arguments() {
        assert_eq!(
            parse_wait(&words(&["0", "-1"])).unwrap_err(),
            "ERR timeout is negative"
        );
        assert_eq!(parse_wait(&words(&["x", "0"])).unwrap_err(), NOT_AN_INTEGER);
        assert!(parse_wait(&words(&["1", "100"])).is_ok());
    }
}
