//! The command table: every command tskv knows ([`CommandKind`]), one row each with its
//! name, arity and flags as Redis's `COMMAND` reports them, its documentation group and
//! its ACL group category. Key specifications live in [`super::keyspec`], documentation
//! text in [`super::docs`], README's list in [`super::list`].

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

/// One row of the command table: what `COMMAND` and `COMMAND DOCS` say of a command,
/// but its key specifications ([`super::keyspec`]) and its documentation text
/// ([`super::docs`]).
struct Row {
    kind: CommandKind,
    /// Lower-case name.
    name: &'static str,
    /// Redis's arity convention (see [`CommandKind::arity`]).
    arity: i32,
    /// Redis's flag names.
    flags: &'static [&'static str],
    /// Redis's documentation group (see [`CommandKind::group`]).
    group: &'static str,
    /// The ACL category of the command's group, if any (`@keyspace`, `@string`, ...).
    acl_group: Option<&'static str>,
}

const fn row(
    kind: CommandKind,
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    group: &'static str,
    acl_group: Option<&'static str>,
) -> Row {
    Row {
        kind,
        name,
        arity,
        flags,
        group,
        acl_group,
    }
}

type Kind = CommandKind;

/// The command table, one row per command in `repr` order (checked at compile time).
#[rustfmt::skip]
const TABLE: [Row; 83] = [
    row(Kind::Ping, "ping", -1, &["fast"], "connection", Some("@connection")),
    row(Kind::Echo, "echo", 2, &["fast"], "connection", Some("@connection")),
    row(Kind::Quit, "quit", -1, &["fast"], "connection", Some("@connection")),
    row(Kind::Hello, "hello", -1, &["fast"], "connection", Some("@connection")),
    row(Kind::Select, "select", 2, &["fast"], "connection", Some("@connection")),
    row(Kind::Client, "client", -2, &[], "connection", None),
    row(Kind::Command, "command", -1, &[], "server", Some("@connection")),
    // CONFIG and the other containers: Redis 7 flags their subcommands, not them.
    row(Kind::Config, "config", -2, &[], "server", None),
    row(Kind::Set, "set", -3, &["write", "denyoom"], "string", Some("@string")),
    row(Kind::Get, "get", 2, &["readonly", "fast"], "string", Some("@string")),
    row(Kind::Del, "del", -2, &["write"], "generic", Some("@keyspace")),
    row(Kind::Exists, "exists", -2, &["readonly", "fast"], "generic", Some("@keyspace")),
    row(Kind::MGet, "mget", -2, &["readonly", "fast"], "string", Some("@string")),
    row(Kind::MSet, "mset", -3, &["write", "denyoom"], "string", Some("@string")),
    row(Kind::DbSize, "dbsize", 1, &["readonly", "fast"], "server", Some("@keyspace")),
    row(Kind::Info, "info", -1, &[], "server", None),
    row(Kind::Shutdown, "shutdown", -1, &["admin"], "server", None),
    row(Kind::Scan, "scan", -2, &["readonly"], "generic", Some("@keyspace")),
    row(Kind::Keys, "keys", 2, &["readonly"], "generic", Some("@keyspace")),
    row(Kind::Type, "type", 2, &["readonly", "fast"], "generic", Some("@keyspace")),
    row(Kind::Incr, "incr", 2, &["write", "denyoom", "fast"], "string", Some("@string")),
    row(Kind::Decr, "decr", 2, &["write", "denyoom", "fast"], "string", Some("@string")),
    row(Kind::IncrBy, "incrby", 3, &["write", "denyoom", "fast"], "string", Some("@string")),
    row(Kind::DecrBy, "decrby", 3, &["write", "denyoom", "fast"], "string", Some("@string")),
    row(Kind::IncrByFloat, "incrbyfloat", 3, &["write", "denyoom", "fast"], "string", Some("@string")),
    row(Kind::Append, "append", 3, &["write", "denyoom", "fast"], "string", Some("@string")),
    row(Kind::StrLen, "strlen", 2, &["readonly", "fast"], "string", Some("@string")),
    row(Kind::GetRange, "getrange", 4, &["readonly"], "string", Some("@string")),
    row(Kind::SetRange, "setrange", 4, &["write", "denyoom"], "string", Some("@string")),
    row(Kind::GetSet, "getset", 3, &["write", "denyoom", "fast"], "string", Some("@string")),
    row(Kind::GetDel, "getdel", 2, &["write", "fast"], "string", Some("@string")),
    row(Kind::SetNx, "setnx", 3, &["write", "denyoom", "fast"], "string", Some("@string")),
    row(Kind::MSetNx, "msetnx", -3, &["write", "denyoom"], "string", Some("@string")),
    row(Kind::Rename, "rename", 3, &["write"], "generic", Some("@keyspace")),
    row(Kind::RenameNx, "renamenx", 3, &["write", "fast"], "generic", Some("@keyspace")),
    row(Kind::Unlink, "unlink", -2, &["write", "fast"], "generic", Some("@keyspace")),
    row(Kind::Touch, "touch", -2, &["readonly", "fast"], "generic", Some("@keyspace")),
    row(Kind::RandomKey, "randomkey", 1, &["readonly"], "generic", Some("@keyspace")),
    row(Kind::Multi, "multi", 1, &["fast"], "transactions", Some("@transaction")),
    row(Kind::Exec, "exec", 1, &[], "transactions", Some("@transaction")),
    row(Kind::Discard, "discard", 1, &["fast"], "transactions", Some("@transaction")),
    row(Kind::Watch, "watch", -2, &["fast"], "transactions", Some("@transaction")),
    row(Kind::Unwatch, "unwatch", 1, &["fast"], "transactions", Some("@transaction")),
    row(Kind::Auth, "auth", -2, &["fast", "no_auth"], "connection", Some("@connection")),
    row(Kind::SetEx, "setex", 4, &["write", "denyoom"], "string", Some("@string")),
    row(Kind::PSetEx, "psetex", 4, &["write", "denyoom"], "string", Some("@string")),
    row(Kind::GetEx, "getex", -2, &["write", "fast"], "string", Some("@string")),
    row(Kind::Expire, "expire", -3, &["write", "fast"], "generic", Some("@keyspace")),
    row(Kind::PExpire, "pexpire", -3, &["write", "fast"], "generic", Some("@keyspace")),
    row(Kind::ExpireAt, "expireat", -3, &["write", "fast"], "generic", Some("@keyspace")),
    row(Kind::PExpireAt, "pexpireat", -3, &["write", "fast"], "generic", Some("@keyspace")),
    row(Kind::Ttl, "ttl", 2, &["readonly", "fast"], "generic", Some("@keyspace")),
    row(Kind::PTtl, "pttl", 2, &["readonly", "fast"], "generic", Some("@keyspace")),
    row(Kind::ExpireTime, "expiretime", 2, &["readonly", "fast"], "generic", Some("@keyspace")),
    row(Kind::PExpireTime, "pexpiretime", 2, &["readonly", "fast"], "generic", Some("@keyspace")),
    row(Kind::Persist, "persist", 2, &["write", "fast"], "generic", Some("@keyspace")),
    // RedisTimeSeries 1.10's `RedisModule_CreateCommand` arities.
    row(Kind::TsCreate, "ts.create", -2, &["write", "denyoom"], "timeseries", Some("@timeseries")),
    row(Kind::TsAlter, "ts.alter", -2, &["write", "denyoom"], "timeseries", Some("@timeseries")),
    row(Kind::TsAdd, "ts.add", -4, &["write", "denyoom"], "timeseries", Some("@timeseries")),
    row(Kind::TsMAdd, "ts.madd", -4, &["write", "denyoom"], "timeseries", Some("@timeseries")),
    row(Kind::TsIncrBy, "ts.incrby", -3, &["write", "denyoom"], "timeseries", Some("@timeseries")),
    row(Kind::TsDecrBy, "ts.decrby", -3, &["write", "denyoom"], "timeseries", Some("@timeseries")),
    row(Kind::TsDel, "ts.del", 4, &["write"], "timeseries", Some("@timeseries")),
    row(Kind::TsGet, "ts.get", -2, &["readonly"], "timeseries", Some("@timeseries")),
    row(Kind::TsRange, "ts.range", -4, &["readonly"], "timeseries", Some("@timeseries")),
    row(Kind::TsRevRange, "ts.revrange", -4, &["readonly"], "timeseries", Some("@timeseries")),
    row(Kind::TsInfo, "ts.info", -2, &["readonly"], "timeseries", Some("@timeseries")),
    row(Kind::TsMGet, "ts.mget", -3, &["readonly"], "timeseries", Some("@timeseries")),
    row(Kind::TsMRange, "ts.mrange", -5, &["readonly"], "timeseries", Some("@timeseries")),
    row(Kind::TsMRevRange, "ts.mrevrange", -5, &["readonly"], "timeseries", Some("@timeseries")),
    row(Kind::TsQueryIndex, "ts.queryindex", -2, &["readonly"], "timeseries", Some("@timeseries")),
    row(Kind::TsCreateRule, "ts.createrule", -6, &["write"], "timeseries", Some("@timeseries")),
    row(Kind::TsDeleteRule, "ts.deleterule", 3, &["write"], "timeseries", Some("@timeseries")),
    row(Kind::Time, "time", 1, &["fast"], "server", None),
    row(Kind::Wait, "wait", 3, &[], "generic", Some("@connection")),
    row(Kind::Memory, "memory", -2, &[], "server", None),
    row(Kind::Object, "object", -2, &[], "generic", None),
    row(Kind::Slowlog, "slowlog", -2, &[], "server", None),
    // Redis 7.0's flags, less those tskv has no use for (noscript, loading, stale).
    row(Kind::Save, "save", 1, &["admin", "no_multi"], "server", None),
    row(Kind::BgSave, "bgsave", -1, &["admin"], "server", None),
    row(Kind::LastSave, "lastsave", 1, &["fast"], "server", None),
    row(Kind::FlushDb, "flushdb", -1, &["write"], "server", Some("@keyspace")),
    row(Kind::FlushAll, "flushall", -1, &["write"], "server", Some("@keyspace")),
];

const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(
            TABLE[i].kind as usize == i,
            "TABLE rows follow the enum's order"
        );
        i += 1;
    }
};

impl CommandKind {
    /// Every kind, in `repr` order.
    pub const ALL: [CommandKind; TABLE.len()] = {
        let mut all = [CommandKind::Ping; TABLE.len()];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].kind;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static Row {
        &TABLE[self as usize]
    }

    /// The lower-case command name, as Redis prints it in errors and `INFO commandstats`.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The flags `COMMAND` reports (Redis's names).
    pub fn flags(self) -> &'static [&'static str] {
        self.row().flags
    }

    /// The command's group in Redis's documentation (`connection`, `generic`, `string`,
    /// `transactions`, `server`; `timeseries` for RedisTimeSeries's).
    pub fn group(self) -> &'static str {
        self.row().group
    }

    /// The ACL category of the command's group (`@connection`, `@transaction`,
    /// `@keyspace`, `@string`, `@timeseries`), if it has one.
    pub(super) fn acl_group(self) -> Option<&'static str> {
        self.row().acl_group
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
        self.row().arity
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
