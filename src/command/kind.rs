//! The command table: every command tskv knows ([`CommandKind`]), with its name, arity
//! and flags as Redis's `COMMAND` reports them. Key specifications live in
//! [`super::keyspec`], documentation groups in [`super::list`].

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
