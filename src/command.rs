//! Typed commands: turns a request's arguments into a [`Command`], or into the error reply
//! Redis would give (same wording, see Redis's `server.c` `processCommand`).
//!
//! This file is the command table ([`CommandKind`]) and the parsing of the first commands;
//! [`client`] parses `HELLO` and `CLIENT`, [`strings`] the string and counter commands,
//! [`server`] `TIME`, `WAIT`, `MEMORY`, `OBJECT` and `COMMAND`; [`keyspec`] says where each
//! command's keys are;
//! [`admin`] `SAVE`, `BGSAVE`, `LASTSAVE`, `FLUSHDB` and `FLUSHALL`.

pub mod admin;
pub mod client;
pub mod expiry;
pub mod keyspec;
pub mod list;
pub mod server;
pub mod strings;

pub use admin::AdminCommand;
pub use client::{ClientSub, HelloArgs};
pub use server::{CommandSub, KeyQuery, ServerCommand};
pub use strings::StringOp;

/// The commands tskv knows, for per-command statistics (`INFO commandstats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CommandKind {
    /// PING.
    Ping,
    /// ECHO.
    Echo,
    /// QUIT.
    Quit,
    /// HELLO.
    Hello,
    /// SELECT.
    Select,
    /// CLIENT and its subcommands.
    Client,
    /// COMMAND and its subcommands.
    Command,
    /// CONFIG and its subcommands.
    Config,
    /// SET.
    Set,
    /// GET.
    Get,
    /// DEL.
    Del,
    /// EXISTS.
    Exists,
    /// MGET.
    MGet,
    /// MSET.
    MSet,
    /// DBSIZE.
    DbSize,
    /// INFO.
    Info,
    /// SHUTDOWN.
    Shutdown,
    /// SCAN.
    Scan,
    /// KEYS.
    Keys,
    /// TYPE.
    Type,
    /// INCR.
    Incr,
    /// DECR.
    Decr,
    /// INCRBY.
    IncrBy,
    /// DECRBY.
    DecrBy,
    /// INCRBYFLOAT.
    IncrByFloat,
    /// APPEND.
    Append,
    /// STRLEN.
    StrLen,
    /// GETRANGE.
    GetRange,
    /// SETRANGE.
    SetRange,
    /// GETSET.
    GetSet,
    /// GETDEL.
    GetDel,
    /// SETNX.
    SetNx,
    /// MSETNX.
    MSetNx,
    /// RENAME.
    Rename,
    /// RENAMENX.
    RenameNx,
    /// UNLINK (the same as DEL: tskv frees nothing in the background).
    Unlink,
    /// TOUCH (the same as EXISTS: tskv keeps no access times).
    Touch,
    /// RANDOMKEY.
    RandomKey,
    /// MULTI.
    Multi,
    /// EXEC.
    Exec,
    /// DISCARD.
    Discard,
    /// WATCH.
    Watch,
    /// UNWATCH.
    Unwatch,
    /// AUTH.
    Auth,
    /// SETEX.
    SetEx,
    /// PSETEX.
    PSetEx,
    /// GETEX.
    GetEx,
    /// EXPIRE.
    Expire,
    /// PEXPIRE.
    PExpire,
    /// EXPIREAT.
    ExpireAt,
    /// PEXPIREAT.
    PExpireAt,
    /// TTL.
    Ttl,
    /// PTTL.
    PTtl,
    /// EXPIRETIME.
    ExpireTime,
    /// PEXPIRETIME.
    PExpireTime,
    /// PERSIST.
    Persist,
    /// TS.CREATE (RedisTimeSeries; see [`crate::timeseries`]).
    TsCreate,
    /// TS.ALTER.
    TsAlter,
    /// TS.ADD.
    TsAdd,
    /// TS.MADD.
    TsMAdd,
    /// TS.INCRBY.
    TsIncrBy,
    /// TS.DECRBY.
    TsDecrBy,
    /// TS.DEL.
    TsDel,
    /// TS.GET.
    TsGet,
    /// TS.RANGE.
    TsRange,
    /// TS.REVRANGE.
    TsRevRange,
    /// TS.INFO.
    TsInfo,
    /// TS.MGET.
    TsMGet,
    /// TS.MRANGE.
    TsMRange,
    /// TS.MREVRANGE.
    TsMRevRange,
    /// TS.QUERYINDEX.
    TsQueryIndex,
    /// TS.CREATERULE.
    TsCreateRule,
    /// TS.DELETERULE.
    TsDeleteRule,
    /// TIME.
    Time,
    /// WAIT (0 at once: a single node has no replicas).
    Wait,
    /// MEMORY and its subcommands.
    Memory,
    /// OBJECT and its subcommands.
    Object,
    /// SLOWLOG and its subcommands.
    Slowlog,
    /// SAVE.
    Save,
    /// BGSAVE.
    BgSave,
    /// LASTSAVE.
    LastSave,
    /// FLUSHDB.
    FlushDb,
    /// FLUSHALL.
    FlushAll,
}

impl CommandKind {
    /// Every kind, in `repr` order.
    pub const ALL: [CommandKind; 83] = [
        Self::Ping,
        Self::Echo,
        Self::Quit,
        Self::Hello,
        Self::Select,
        Self::Client,
        Self::Command,
        Self::Config,
        Self::Set,
        Self::Get,
        Self::Del,
        Self::Exists,
        Self::MGet,
        Self::MSet,
        Self::DbSize,
        Self::Info,
        Self::Shutdown,
        Self::Scan,
        Self::Keys,
        Self::Type,
        Self::Incr,
        Self::Decr,
        Self::IncrBy,
        Self::DecrBy,
        Self::IncrByFloat,
        Self::Append,
        Self::StrLen,
        Self::GetRange,
        Self::SetRange,
        Self::GetSet,
        Self::GetDel,
        Self::SetNx,
        Self::MSetNx,
        Self::Rename,
        Self::RenameNx,
        Self::Unlink,
        Self::Touch,
        Self::RandomKey,
        Self::Multi,
        Self::Exec,
        Self::Discard,
        Self::Watch,
        Self::Unwatch,
        Self::Auth,
        Self::SetEx,
        Self::PSetEx,
        Self::GetEx,
        Self::Expire,
        Self::PExpire,
        Self::ExpireAt,
        Self::PExpireAt,
        Self::Ttl,
        Self::PTtl,
        Self::ExpireTime,
        Self::PExpireTime,
        Self::Persist,
        Self::TsCreate,
        Self::TsAlter,
        Self::TsAdd,
        Self::TsMAdd,
        Self::TsIncrBy,
        Self::TsDecrBy,
        Self::TsDel,
        Self::TsGet,
        Self::TsRange,
        Self::TsRevRange,
        Self::TsInfo,
        Self::TsMGet,
        Self::TsMRange,
        Self::TsMRevRange,
        Self::TsQueryIndex,
        Self::TsCreateRule,
        Self::TsDeleteRule,
        Self::Time,
        Self::Wait,
        Self::Memory,
        Self::Object,
        Self::Slowlog,
        Self::Save,
        Self::BgSave,
        Self::LastSave,
        Self::FlushDb,
        Self::FlushAll,
    ];

    /// The lower-case command name, as Redis prints it in errors and `INFO commandstats`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Echo => "echo",
            Self::Quit => "quit",
            Self::Hello => "hello",
            Self::Select => "select",
            Self::Client => "client",
            Self::Command => "command",
            Self::Config => "config",
            Self::Set => "set",
            Self::Get => "get",
            Self::Del => "del",
            Self::Exists => "exists",
            Self::MGet => "mget",
            Self::MSet => "mset",
            Self::DbSize => "dbsize",
            Self::Info => "info",
            Self::Shutdown => "shutdown",
            Self::Scan => "scan",
            Self::Keys => "keys",
            Self::Type => "type",
            Self::Incr => "incr",
            Self::Decr => "decr",
            Self::IncrBy => "incrby",
            Self::DecrBy => "decrby",
            Self::IncrByFloat => "incrbyfloat",
            Self::Append => "append",
            Self::StrLen => "strlen",
            Self::GetRange => "getrange",
            Self::SetRange => "setrange",
            Self::GetSet => "getset",
            Self::GetDel => "getdel",
            Self::SetNx => "setnx",
            Self::MSetNx => "msetnx",
            Self::Rename => "rename",
            Self::RenameNx => "renamenx",
            Self::Unlink => "unlink",
            Self::Touch => "touch",
            Self::RandomKey => "randomkey",
            Self::Multi => "multi",
            Self::Exec => "exec",
            Self::Discard => "discard",
            Self::Watch => "watch",
            Self::Unwatch => "unwatch",
            Self::Auth => "auth",
            Self::SetEx => "setex",
            Self::PSetEx => "psetex",
            Self::GetEx => "getex",
            Self::Expire => "expire",
            Self::PExpire => "pexpire",
            Self::ExpireAt => "expireat",
            Self::PExpireAt => "pexpireat",
            Self::Ttl => "ttl",
            Self::PTtl => "pttl",
            Self::ExpireTime => "expiretime",
            Self::PExpireTime => "pexpiretime",
            Self::Persist => "persist",
            Self::TsCreate => "ts.create",
            Self::TsAlter => "ts.alter",
            Self::TsAdd => "ts.add",
            Self::TsMAdd => "ts.madd",
            Self::TsIncrBy => "ts.incrby",
            Self::TsDecrBy => "ts.decrby",
            Self::TsDel => "ts.del",
            Self::TsGet => "ts.get",
            Self::TsRange => "ts.range",
            Self::TsRevRange => "ts.revrange",
            Self::TsInfo => "ts.info",
            Self::TsMGet => "ts.mget",
            Self::TsMRange => "ts.mrange",
            Self::TsMRevRange => "ts.mrevrange",
            Self::TsQueryIndex => "ts.queryindex",
            Self::TsCreateRule => "ts.createrule",
            Self::TsDeleteRule => "ts.deleterule",
            Self::Time => "time",
            Self::Wait => "wait",
            Self::Memory => "memory",
            Self::Object => "object",
            Self::Slowlog => "slowlog",
            Self::Save => "save",
            Self::BgSave => "bgsave",
            Self::LastSave => "lastsave",
            Self::FlushDb => "flushdb",
            Self::FlushAll => "flushall",
        }
    }

    /// The flags `COMMAND` reports (Redis's names).
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Self::Ping
            | Self::Echo
            | Self::Quit
            | Self::Hello
            | Self::Select
            | Self::Multi
            | Self::Discard
            | Self::Watch
            | Self::Unwatch
            | Self::Time => &["fast"],
            Self::Auth => &["fast", "no_auth"],
            Self::Client
            | Self::Command
            | Self::Info
            | Self::Exec
            | Self::Config
            | Self::Wait
            | Self::Memory
            | Self::Slowlog
            | Self::Object => &[],
            // CONFIG is a container: Redis 7 flags its subcommands, not it.
            Self::Shutdown => &["admin"],
            Self::Set | Self::MSet | Self::SetRange | Self::MSetNx | Self::SetEx | Self::PSetEx => {
                &["write", "denyoom"]
            }
            Self::GetEx
            | Self::Expire
            | Self::PExpire
            | Self::ExpireAt
            | Self::PExpireAt
            | Self::Persist => &["write", "fast"],
            Self::Ttl | Self::PTtl | Self::ExpireTime | Self::PExpireTime => &["readonly", "fast"],
            Self::Del => &["write"],
            Self::Incr
            | Self::Decr
            | Self::IncrBy
            | Self::DecrBy
            | Self::IncrByFloat
            | Self::Append
            | Self::GetSet
            | Self::SetNx => &["write", "denyoom", "fast"],
            Self::GetDel | Self::Unlink | Self::RenameNx => &["write", "fast"],
            Self::Rename => &["write"],
            Self::Get
            | Self::Exists
            | Self::MGet
            | Self::DbSize
            | Self::Type
            | Self::StrLen
            | Self::Touch => &["readonly", "fast"],
            Self::Scan | Self::Keys | Self::GetRange | Self::RandomKey => &["readonly"],
            Self::TsCreate | Self::TsAlter | Self::TsAdd | Self::TsMAdd => &["write", "denyoom"],
            Self::TsIncrBy | Self::TsDecrBy => &["write", "denyoom"],
            Self::TsDel | Self::TsCreateRule | Self::TsDeleteRule => &["write"],
            Self::TsGet | Self::TsRange | Self::TsRevRange | Self::TsInfo => &["readonly"],
            Self::TsMGet | Self::TsMRange | Self::TsMRevRange | Self::TsQueryIndex => &["readonly"],
            // Redis 7.0's flags, less those tskv has no use for (noscript, loading, stale).
            Self::Save => &["admin", "no_multi"],
            Self::BgSave => &["admin"],
            Self::LastSave => &["fast"],
            Self::FlushDb | Self::FlushAll => &["write"],
        }
    }

    /// Whether the command writes, i.e. its flags name `write` (refused when the shard is
    /// poisoned or stalled).
    pub fn is_write(self) -> bool {
        self.flags().contains(&"write")
    }

    /// Whether the command is a time-series command, run by [`crate::timeseries`].
    pub fn is_series(self) -> bool {
        matches!(
            self,
            Self::TsCreate
                | Self::TsAlter
                | Self::TsAdd
                | Self::TsMAdd
                | Self::TsIncrBy
                | Self::TsDecrBy
                | Self::TsDel
                | Self::TsGet
                | Self::TsRange
                | Self::TsRevRange
                | Self::TsInfo
                | Self::TsCreateRule
                | Self::TsDeleteRule
        ) || self.is_multi_series()
    }

    /// Whether the command is a label-filtered time-series command, sent to every shard.
    pub fn is_multi_series(self) -> bool {
        matches!(
            self,
            Self::TsMGet | Self::TsMRange | Self::TsMRevRange | Self::TsQueryIndex
        )
    }

    /// Arity in Redis's convention: `n > 0` exactly n arguments including the name,
    /// `n < 0` at least `-n`.
    pub fn arity(self) -> i32 {
        match self {
            Self::Ping => -1,
            Self::Echo => 2,
            Self::Quit => -1,
            Self::Hello => -1,
            Self::Select => 2,
            Self::Client => -2,
            Self::Command => -1,
            Self::Config => -2,
            Self::Set => -3,
            Self::Get => 2,
            Self::Del => -2,
            Self::Exists => -2,
            Self::MGet => -2,
            Self::MSet => -3,
            Self::DbSize => 1,
            Self::Info => -1,
            Self::Shutdown => -1,
            Self::Scan => -2,
            Self::Keys => 2,
            Self::Type => 2,
            Self::Incr | Self::Decr | Self::StrLen | Self::GetDel => 2,
            Self::IncrBy
            | Self::DecrBy
            | Self::IncrByFloat
            | Self::Append
            | Self::GetSet
            | Self::SetNx => 3,
            Self::GetRange | Self::SetRange => 4,
            Self::MSetNx => -3,
            Self::Rename | Self::RenameNx => 3,
            Self::Unlink | Self::Touch => -2,
            Self::RandomKey | Self::Multi | Self::Exec | Self::Discard | Self::Unwatch => 1,
            Self::Watch => -2,
            Self::Auth => -2,
            Self::SetEx | Self::PSetEx => 4,
            Self::GetEx => -2,
            Self::Expire | Self::PExpire | Self::ExpireAt | Self::PExpireAt => -3,
            Self::Ttl | Self::PTtl | Self::ExpireTime | Self::PExpireTime | Self::Persist => 2,
            // RedisTimeSeries 1.10's `RedisModule_CreateCommand` arities.
            Self::TsCreate | Self::TsAlter | Self::TsGet | Self::TsInfo => -2,
            Self::TsAdd | Self::TsMAdd | Self::TsRange | Self::TsRevRange => -4,
            Self::TsIncrBy | Self::TsDecrBy => -3,
            Self::TsDel => 4,
            Self::TsMGet => -3,
            Self::TsMRange | Self::TsMRevRange => -5,
            Self::TsQueryIndex => -2,
            Self::TsCreateRule => -6,
            Self::TsDeleteRule => 3,
            Self::Time => 1,
            Self::Wait => 3,
            Self::Memory | Self::Object | Self::Slowlog => -2,
            Self::Save | Self::LastSave => 1,
            Self::BgSave | Self::FlushDb | Self::FlushAll => -1,
        }
    }

    /// Whether `n` arguments (the name included) fit [`CommandKind::arity`].
    pub fn accepts_arg_count(self, n: usize) -> bool {
        let arity = self.arity();
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        (arity > 0 && n == arity) || (arity < 0 && n >= -arity)
    }

    /// Whether a connection may run the command before it authenticated (`AUTH`,
    /// `HELLO`, `QUIT`; Redis's `no_auth` commands).
    pub fn allowed_before_auth(self) -> bool {
        matches!(self, Self::Auth | Self::Hello | Self::Quit)
    }

    /// The kind named `name` (any case), if tskv has it.
    pub fn lookup(name: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| name.eq_ignore_ascii_case(kind.name().as_bytes()))
    }
}

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

/// Parses a decimal `i64` the way Redis's `string2ll` does (no spaces, no `+`).
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes[0] == b'+' || bytes.len() > 20 {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
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
