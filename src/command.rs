//! Typed commands: turns a request's arguments into a [`Command`], or into the error reply
//! Redis would give (same wording, see Redis's `server.c` `processCommand`).
//!
//! This file parses the first commands and dispatches the rest: [`kind`] is the command
//! table ([`CommandKind`]), [`keyspec`] says where each command's keys are and [`list`]
//! groups them for the README; [`client`] parses `HELLO` and `CLIENT`, [`strings`] the
//! string and counter commands, [`expiry`] the commands on deadlines, [`server`] `TIME`,
//! `WAIT`, `MEMORY`, `OBJECT`, `SLOWLOG` and `COMMAND`, [`admin`] `SAVE`, `BGSAVE`,
//! `LASTSAVE`, `FLUSHDB` and `FLUSHALL`.

pub mod admin;
pub mod client;
pub mod docs;
pub mod expiry;
pub mod keyspec;
pub mod kind;
pub mod list;
pub mod server;
pub mod strings;

pub use admin::AdminCommand;
pub use client::{ClientSub, HelloArgs};
pub use docs::CommandDocs;
pub use kind::CommandKind;
pub use server::{CommandSub, KeyQuery, ServerCommand};
pub use strings::StringOp;

/// The condition of `SET key value [NX|XX]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetCondition {
    /// Always set.
    Always,
    /// Only if the key does not exist (`NX`).
    IfAbsent,
    /// Only if the key exists (`XX`).
    IfPresent,
}

/// A parsed request; byte slices borrow the connection's read buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `PING [message]`.
    Ping(Option<&'a [u8]>),
    /// `ECHO message`.
    Echo(&'a [u8]),
    /// `QUIT`.
    Quit,
    /// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
    Hello(HelloArgs<'a>),
    /// `SELECT 0`.
    Select,
    /// `CLIENT ...`.
    Client(ClientSub<'a>),
    /// `COMMAND ...`.
    Command(CommandSub<'a>),
    /// `CONFIG GET pattern...`.
    ConfigGet(Vec<&'a [u8]>),
    /// `SET key value [NX|XX]`.
    Set {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
        /// NX / XX.
        condition: SetCondition,
    },
    /// `GET key`.
    Get(&'a [u8]),
    /// `DEL key [key ...]`.
    Del(Vec<&'a [u8]>),
    /// `EXISTS key [key ...]`.
    Exists(Vec<&'a [u8]>),
    /// `MGET key [key ...]`.
    MGet(Vec<&'a [u8]>),
    /// `MSET key value [key value ...]`.
    MSet(Vec<(&'a [u8], &'a [u8])>),
    /// `DBSIZE`.
    DbSize,
    /// `INFO [section ...]`.
    Info(Vec<&'a [u8]>),
    /// `SHUTDOWN [NOSAVE|SAVE|NOW|FORCE|ABORT]`.
    Shutdown,
    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
    Scan(ScanArgs<'a>),
    /// `KEYS pattern`.
    Keys(&'a [u8]),
    /// `TYPE key`.
    Type(&'a [u8]),
    /// A string or counter command (`INCR`, `APPEND`, `MSETNX`, ...).
    Strings(StringOp<&'a [u8]>),
    /// `RANDOMKEY`.
    RandomKey,
    /// `MULTI`.
    Multi,
    /// `EXEC`.
    Exec,
    /// `DISCARD`.
    Discard,
    /// `WATCH key [key ...]`.
    Watch(Vec<&'a [u8]>),
    /// `UNWATCH`.
    Unwatch,
    /// `AUTH [username] password`.
    Auth {
        /// The user; `None` means `default`.
        username: Option<&'a [u8]>,
        /// The password.
        password: &'a [u8],
    },
    /// A time-series command: its kind and its arguments after the name.
    Series(CommandKind, Vec<&'a [u8]>),
    /// `TIME`, `WAIT`, `MEMORY ...` or `OBJECT ...`.
    Server(ServerCommand<'a>),
    /// `SAVE`, `BGSAVE`, `LASTSAVE`, `FLUSHDB`, `FLUSHALL`.
    Admin(AdminCommand),
}

/// The arguments of `SCAN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanArgs<'a> {
    /// The cursor: 0 to start; what the previous call returned to go on.
    pub cursor: u64,
    /// `MATCH pattern` ([`crate::glob`]).
    pub pattern: Option<&'a [u8]>,
    /// `COUNT count`: about how many keys to examine (default 10).
    pub count: usize,
    /// `TYPE type`: only keys of this type (every key is a `string` today).
    pub type_name: Option<&'a [u8]>,
}

/// Default of `SCAN ... COUNT`, as Redis.
pub const SCAN_COUNT_DEFAULT: usize = 10;

/// Parses `args` (name first). Returns the kind (for statistics, when the name is known)
/// and the command or the full error reply text without the leading `-`.
pub fn parse<'a>(args: &[&'a [u8]]) -> (Option<CommandKind>, Result<Command<'a>, String>) {
    let Some(kind) = args.first().and_then(|name| CommandKind::lookup(name)) else {
        return (None, Err(unknown_command(args)));
    };
    if !kind.accepts_arg_count(args.len()) {
        return (Some(kind), Err(wrong_arity(kind.name())));
    }
    (Some(kind), parse_known(kind, args))
}

fn parse_known<'a>(kind: CommandKind, args: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let rest = &args[1..];
    match kind {
        CommandKind::Ping => match rest {
            [] => Ok(Command::Ping(None)),
            [msg] => Ok(Command::Ping(Some(msg))),
            _ => Err(wrong_arity("ping")),
        },
        CommandKind::Echo => Ok(Command::Echo(rest[0])),
        CommandKind::Quit => Ok(Command::Quit),
        CommandKind::Hello => client::parse_hello(rest),
        CommandKind::Select => match parse_i64(rest[0]) {
            Some(0) => Ok(Command::Select),
            Some(_) => Err("ERR DB index is out of range".into()),
            None => Err("ERR value is not an integer or out of range".into()),
        },
        CommandKind::Client => client::parse_client(rest),
        CommandKind::Command => server::parse_command(rest),
        CommandKind::Config => {
            if rest[0].eq_ignore_ascii_case(b"GET") {
                if rest.len() < 2 {
                    return Err(wrong_arity("config|get"));
                }
                Ok(Command::ConfigGet(rest[1..].to_vec()))
            } else {
                Err(unknown_subcommand(rest[0], "CONFIG"))
            }
        }
        CommandKind::Set => expiry::parse_set(rest),
        CommandKind::Get => Ok(Command::Get(rest[0])),
        CommandKind::Del | CommandKind::Unlink => Ok(Command::Del(rest.to_vec())),
        CommandKind::Exists | CommandKind::Touch => Ok(Command::Exists(rest.to_vec())),
        CommandKind::MGet => Ok(Command::MGet(rest.to_vec())),
        CommandKind::MSet => {
            if !rest.len().is_multiple_of(2) {
                return Err(wrong_arity("mset"));
            }
            Ok(Command::MSet(
                rest.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect(),
            ))
        }
        CommandKind::DbSize => Ok(Command::DbSize),
        CommandKind::Info => Ok(Command::Info(rest.to_vec())),
        CommandKind::Shutdown => Ok(Command::Shutdown),
        CommandKind::Scan => parse_scan(rest),
        CommandKind::Keys => Ok(Command::Keys(rest[0])),
        CommandKind::Type => Ok(Command::Type(rest[0])),
        CommandKind::RandomKey => Ok(Command::RandomKey),
        CommandKind::Multi => Ok(Command::Multi),
        CommandKind::Exec => Ok(Command::Exec),
        CommandKind::Discard => Ok(Command::Discard),
        CommandKind::Watch => Ok(Command::Watch(rest.to_vec())),
        CommandKind::Unwatch => Ok(Command::Unwatch),
        CommandKind::Auth => match rest {
            [password] => Ok(Command::Auth {
                username: None,
                password,
            }),
            [username, password] => Ok(Command::Auth {
                username: Some(username),
                password,
            }),
            _ => Err("ERR syntax error".into()),
        },
        CommandKind::Incr
        | CommandKind::Decr
        | CommandKind::IncrBy
        | CommandKind::DecrBy
        | CommandKind::IncrByFloat
        | CommandKind::Append
        | CommandKind::StrLen
        | CommandKind::GetRange
        | CommandKind::SetRange
        | CommandKind::GetSet
        | CommandKind::GetDel
        | CommandKind::SetNx
        | CommandKind::MSetNx
        | CommandKind::Rename
        | CommandKind::RenameNx => strings::parse(kind, rest),
        CommandKind::Save
        | CommandKind::BgSave
        | CommandKind::LastSave
        | CommandKind::FlushDb
        | CommandKind::FlushAll => admin::parse(kind, rest),
        CommandKind::SetEx
        | CommandKind::PSetEx
        | CommandKind::GetEx
        | CommandKind::Expire
        | CommandKind::PExpire
        | CommandKind::ExpireAt
        | CommandKind::PExpireAt
        | CommandKind::Ttl
        | CommandKind::PTtl
        | CommandKind::ExpireTime
        | CommandKind::PExpireTime
        | CommandKind::Persist => expiry::parse(kind, rest),
        CommandKind::Time => server::parse_time(),
        CommandKind::Wait => server::parse_wait(rest),
        CommandKind::Memory => server::parse_memory(rest),
        CommandKind::Object => server::parse_object(rest),
        CommandKind::Slowlog => server::parse_slowlog(rest),
        kind => {
            if kind == CommandKind::TsMAdd && !rest.len().is_multiple_of(3) {
                return Err(wrong_arity(kind.name()));
            }
            Ok(Command::Series(kind, rest.to_vec()))
        }
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`, with Redis's errors.
fn parse_scan<'a>(rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let cursor = std::str::from_utf8(rest[0])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or("ERR invalid cursor")?;
    let mut args = ScanArgs {
        cursor,
        pattern: None,
        count: SCAN_COUNT_DEFAULT,
        type_name: None,
    };
    let mut options = rest[1..].chunks(2);
    for option in &mut options {
        let [name, value] = option else {
            return Err("ERR syntax error".into());
        };
        if name.eq_ignore_ascii_case(b"MATCH") {
            args.pattern = Some(value);
        } else if name.eq_ignore_ascii_case(b"COUNT") {
            match parse_i64(value) {
                Some(n) if n >= 1 => args.count = n as usize,
                Some(_) => return Err("ERR syntax error".into()),
                None => return Err("ERR value is not an integer or out of range".into()),
            }
        } else if name.eq_ignore_ascii_case(b"TYPE") {
            args.type_name = Some(value);
        } else {
            return Err("ERR syntax error".into());
        }
    }
    Ok(Command::Scan(args))
}

/// Parses a decimal `i64` the way Redis's `string2ll` does (no spaces, no `+`): an
/// optional `-`, then ASCII digits, at most 20 bytes in all. Accepts exactly what
/// `str::parse::<i64>` accepts of such bytes (tested against it), without validating
/// UTF-8 first: timestamps and counts are parsed once per sample on the ingest path.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.len() > 20 {
        return None;
    }
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulated negative, so that i64::MIN fits.
    let mut n: i64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(digit))?;
    }
    if negative {
        Some(n)
    } else {
        n.checked_neg()
    }
}

/// `ERR wrong number of arguments for '<name>' command`.
pub fn wrong_arity(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

fn unknown_subcommand(sub: &[u8], command: &str) -> String {
    format!(
        "ERR unknown subcommand '{}'. Try {command} HELP.",
        truncated(sub, 128)
    )
}

/// Redis's text for an unknown command: the name and the first arguments, each quoted and
/// followed by a space, cut at 128 bytes each.
fn unknown_command(args: &[&[u8]]) -> String {
    let name = args.first().copied().unwrap_or_default();
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        truncated(name, 128)
    );
    for arg in args.iter().skip(1) {
        if text.len() >= 128 + 64 {
            break;
        }
        text.push('\'');
        text.push_str(&truncated(arg, 128));
        text.push_str("' ");
    }
    text
}

fn truncated(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)])
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
