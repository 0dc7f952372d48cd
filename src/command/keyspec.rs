//! Where each command's keys are: Redis 7's key specifications, the one source of the
//! legacy `(first key, last key, step)` triple that `COMMAND` also reports, of `COMMAND
//! GETKEYS`, and of the routing checks that look at keys (reserved keys).
//!
//! Every key-bearing command tskv shares with Redis has Redis 7.0's specs, flags and
//! notes included (`tests/server_command_info.rs` compares them with a real
//! `redis-server`), so cluster-aware clients and proxies find the keys where they look.
//! The time-series commands, which RedisTimeSeries 1.10 registers without specs, get
//! specs from their legacy triple: `RW update` for writes, `RO access` for reads.

use super::CommandKind;

/// One key specification as Redis 7 reports it: keys start at argument `begin_index`
/// (`begin_search` of type `index`) and run over a range (`find_keys` of type `range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// Redis's `notes`, if it has any for this spec.
    pub notes: Option<&'static str>,
    /// Redis's flags (`RO`, `RW`, `OW`, `RM`, `access`, `update`, `insert`, `delete`, ...).
    pub flags: &'static [&'static str],
    /// The index of the first key (the command's name is 0).
    pub begin_index: i64,
    /// The last key, relative to the first if 0 or more, from the end if negative (-1:
    /// the last argument).
    pub last_key: i64,
    /// The distance between keys.
    pub key_step: i64,
}

const fn range(flags: &'static [&'static str], last_key: i64, key_step: i64) -> KeySpec {
    KeySpec {
        notes: None,
        flags,
        begin_index: 1,
        last_key,
        key_step,
    }
}

const fn one(flags: &'static [&'static str]) -> KeySpec {
    range(flags, 0, 1)
}

/// A `&'static [KeySpec]` of constant specs.
macro_rules! specs {
    ($($spec:expr),*) => {{
        const SPECS: &[KeySpec] = &[$($spec),*];
        SPECS
    }};
}

const RO: &[&str] = &["RO"];
const RO_ACCESS: &[&str] = &["RO", "access"];
const RW_ACCESS_UPDATE: &[&str] = &["RW", "access", "update"];
const RW_UPDATE: &[&str] = &["RW", "update"];
const OW_INSERT: &[&str] = &["OW", "insert"];

/// The order in which Redis 7.0 lists ACL categories (its `ACLCommandCategories`).
const ACL_CATEGORY_ORDER: &[&str] = &[
    "@keyspace",
    "@read",
    "@write",
    "@set",
    "@sortedset",
    "@list",
    "@hash",
    "@string",
    "@bitmap",
    "@hyperloglog",
    "@geo",
    "@stream",
    "@pubsub",
    "@admin",
    "@fast",
    "@slow",
    "@blocking",
    "@dangerous",
    "@connection",
    "@transaction",
    "@scripting",
];

/// A subcommand of a container command (`MEMORY`, `OBJECT`, `COMMAND`), as `COMMAND`
/// lists it in its entry's last field. Its parser checks arguments against this table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subcommand {
    /// The subcommand's name after the container's (`usage` of `memory|usage`).
    pub name: &'static str,
    /// Arity in Redis's convention, the container's name and the subcommand's included.
    pub arity: i32,
    /// Redis's flags that tskv acts on (`readonly`).
    pub flags: &'static [&'static str],
    /// Redis 7.0's ACL categories.
    pub acl_categories: &'static [&'static str],
    /// Where its keys are.
    pub key_specs: &'static [KeySpec],
}

const fn sub(
    name: &'static str,
    arity: i32,
    acl_categories: &'static [&'static str],
) -> Subcommand {
    Subcommand {
        name,
        arity,
        flags: &[],
        acl_categories,
        key_specs: &[],
    }
}

/// A read-only subcommand whose key is its first argument (`OBJECT ENCODING key`).
const fn keyed(
    name: &'static str,
    arity: i32,
    acl_categories: &'static [&'static str],
) -> Subcommand {
    Subcommand {
        name,
        arity,
        flags: &["readonly"],
        acl_categories,
        key_specs: &[KeySpec {
            notes: None,
            flags: RO,
            begin_index: 2,
            last_key: 0,
            key_step: 1,
        }],
    }
}

const SLOW: &[&str] = &["@slow"];
const SLOW_CONNECTION: &[&str] = &["@slow", "@connection"];
const KEYSPACE_READ_SLOW: &[&str] = &["@keyspace", "@read", "@slow"];

/// `MEMORY`'s subcommands.
pub const MEMORY_SUBCOMMANDS: &[Subcommand] = &[
    keyed("usage", -3, &["@read", "@slow"]),
    sub("doctor", 2, SLOW),
    sub("stats", 2, SLOW),
    sub("malloc-stats", 2, SLOW),
    sub("purge", 2, SLOW),
    sub("help", 2, SLOW),
];

/// `SLOWLOG`'s subcommands.
pub const SLOWLOG_SUBCOMMANDS: &[Subcommand] = &[
    sub("get", -2, ADMIN_SLOW_DANGEROUS),
    sub("len", 2, ADMIN_SLOW_DANGEROUS),
    sub("reset", 2, ADMIN_SLOW_DANGEROUS),
    sub("help", 2, SLOW),
];

const ADMIN_SLOW_DANGEROUS: &[&str] = &["@admin", "@slow", "@dangerous"];

/// `OBJECT`'s subcommands.
pub const OBJECT_SUBCOMMANDS: &[Subcommand] = &[
    keyed("encoding", 3, KEYSPACE_READ_SLOW),
    keyed("freq", 3, KEYSPACE_READ_SLOW),
    keyed("idletime", 3, KEYSPACE_READ_SLOW),
    keyed("refcount", 3, KEYSPACE_READ_SLOW),
    sub("help", 2, &["@keyspace", "@slow"]),
];

/// `COMMAND`'s subcommands.
pub const COMMAND_SUBCOMMANDS: &[Subcommand] = &[
    sub("count", 2, SLOW_CONNECTION),
    sub("docs", -2, SLOW_CONNECTION),
    sub("info", -2, SLOW_CONNECTION),
    sub("getkeys", -4, SLOW_CONNECTION),
    sub("list", -2, SLOW_CONNECTION),
    sub("help", 2, SLOW_CONNECTION),
];

impl CommandKind {
    /// The subcommands `COMMAND` lists for a container command (none for `CLIENT` and
    /// `CONFIG`, which have no keys).
    pub fn subcommands(self) -> &'static [Subcommand] {
        match self {
            Self::Memory => MEMORY_SUBCOMMANDS,
            Self::Slowlog => SLOWLOG_SUBCOMMANDS,
            Self::Object => OBJECT_SUBCOMMANDS,
            Self::Command => COMMAND_SUBCOMMANDS,
            _ => &[],
        }
    }

    /// The command's key specifications, Redis 7.0's where Redis has the command; empty
    /// for a command without keys.
    pub fn key_specs(self) -> &'static [KeySpec] {
        match self {
            Self::Set => specs![KeySpec {
                notes: Some("RW and ACCESS due to the optional `GET` argument"),
                flags: &["RW", "access", "update", "variable_flags"],
                begin_index: 1,
                last_key: 0,
                key_step: 1,
            }],
            Self::Get | Self::GetRange => specs![one(RO_ACCESS)],
            Self::Type | Self::StrLen => specs![one(RO)],
            Self::Incr
            | Self::Decr
            | Self::IncrBy
            | Self::DecrBy
            | Self::IncrByFloat
            | Self::GetSet => specs![one(RW_ACCESS_UPDATE)],
            Self::Append => specs![one(&["RW", "insert"])],
            Self::SetRange => specs![one(RW_UPDATE)],
            Self::GetDel => specs![one(&["RW", "access", "delete"])],
            Self::SetNx => specs![one(OW_INSERT)],
            Self::Del | Self::Unlink => specs![range(&["RM", "delete"], -1, 1)],
            Self::Exists | Self::Touch => specs![range(RO, -1, 1)],
            Self::MGet => specs![range(RO_ACCESS, -1, 1)],
            Self::MSet => specs![range(&["OW", "update"], -1, 2)],
            Self::MSetNx => specs![range(OW_INSERT, -1, 2)],
            Self::TsMAdd => specs![range(RW_UPDATE, -1, 3)],
            Self::SetEx | Self::PSetEx => specs![one(&["OW", "update"])],
            Self::GetEx => specs![KeySpec {
                notes: Some("RW and UPDATE because it changes the TTL"),
                flags: RW_ACCESS_UPDATE,
                begin_index: 1,
                last_key: 0,
                key_step: 1,
            }],
            Self::Expire | Self::PExpire | Self::ExpireAt | Self::PExpireAt | Self::Persist => {
                specs![one(RW_UPDATE)]
            }
            Self::Ttl | Self::PTtl | Self::ExpireTime | Self::PExpireTime => {
                specs![one(RO_ACCESS)]
            }
            Self::Watch => specs![range(RO, -1, 1)],
            Self::Rename => specs![
                one(&["RW", "access", "delete"]),
                KeySpec {
                    notes: None,
                    flags: &["OW", "update"],
                    begin_index: 2,
                    last_key: 0,
                    key_step: 1,
                }
            ],
            Self::RenameNx => specs![
                one(&["RW", "access", "delete"]),
                KeySpec {
                    notes: None,
                    flags: OW_INSERT,
                    begin_index: 2,
                    last_key: 0,
                    key_step: 1,
                }
            ],
            Self::TsCreateRule | Self::TsDeleteRule => specs![range(RW_UPDATE, 1, 1)],
            kind if kind.is_series() && !kind.is_multi_series() => {
                if kind.is_write() {
                    specs![one(RW_UPDATE)]
                } else {
                    specs![one(RO_ACCESS)]
                }
            }
            _ => &[],
        }
    }

    /// Key positions as `COMMAND` reports them (first key, last key with -1 the last
    /// argument, step; all 0 without keys), derived from [`CommandKind::key_specs`] as
    /// Redis 7 derives them.
    pub fn key_positions(self) -> (i64, i64, i64) {
        legacy_range(self.key_specs())
    }

    /// The positions of the keys in a request (`args`, the name first), as `COMMAND
    /// GETKEYS` reports them; positions past the end are left out, as Redis does for
    /// commands of variable arity.
    pub fn key_indexes(self, args_len: usize) -> Vec<usize> {
        key_indexes(self.key_specs(), args_len)
    }

    /// The ACL categories `COMMAND` reports: from the flags as Redis 7 derives them
    /// (`@write`, `@read`, `@admin @dangerous`, `@fast` or `@slow`) and the command's
    /// group (`@keyspace`, `@string`, `@connection`, `@transaction`; `@timeseries` for the
    /// time-series commands), in the order of Redis's category table.
    pub fn acl_categories(self) -> Vec<&'static str> {
        if matches!(
            self,
            Self::Client | Self::Config | Self::Memory | Self::Object | Self::Slowlog
        ) {
            // Containers: Redis gives the categories to their subcommands.
            return vec!["@slow"];
        }
        let flags = self.flags();
        let mut categories: Vec<&'static str> = self.acl_group().into_iter().collect();
        if flags.contains(&"write") {
            categories.push("@write");
        }
        if flags.contains(&"readonly") {
            categories.push("@read");
        }
        if flags.contains(&"admin") || self == Self::LastSave {
            // `LASTSAVE` is `fast`, not `admin`, but Redis files it under both categories.
            categories.extend(["@admin", "@dangerous"]);
        } else if matches!(
            self,
            Self::Info | Self::Keys | Self::FlushDb | Self::FlushAll
        ) {
            categories.push("@dangerous");
        }
        categories.push(if flags.contains(&"fast") {
            "@fast"
        } else {
            "@slow"
        });
        let rank = |category: &&str| {
            ACL_CATEGORY_ORDER
                .iter()
                .position(|c| c == category)
                .unwrap_or(ACL_CATEGORY_ORDER.len())
        };
        categories.sort_by_key(rank);
        categories
    }
}

/// The legacy `(first key, last key, step)` of a set of specs, as Redis 7 derives it
/// from them (`populateCommandLegacyRangeSpec`); all 0 without keys.
pub fn legacy_range(specs: &[KeySpec]) -> (i64, i64, i64) {
    let absolute_last = |spec: &KeySpec| {
        if spec.last_key < 0 {
            spec.last_key
        } else {
            spec.begin_index + spec.last_key
        }
    };
    match specs {
        [] => (0, 0, 0),
        [spec] => (spec.begin_index, absolute_last(spec), spec.key_step),
        // Several specs make one range only if each starts right after the one before,
        // a step apart (`populateCommandLegacyRangeSpec`; `RENAME`: 1 and 2 give 1 2 1).
        _ => {
            let mut first = i64::MAX;
            let mut last: Option<i64> = None;
            for spec in specs {
                let follows = last.is_none_or(|last| last == spec.begin_index - 1);
                if spec.key_step != 1 || !follows {
                    return (0, 0, 0);
                }
                first = first.min(spec.begin_index);
                // A negative last key (counted from the end) covers any positive one.
                let this = absolute_last(spec);
                last = Some(match last {
                    Some(prev) if prev < 0 || (this >= 0 && prev >= this) => prev,
                    _ => this,
                });
            }
            (first, last.unwrap_or(0), 1)
        }
    }
}

/// The positions of the keys `specs` find in a request of `args_len` arguments.
pub fn key_indexes(specs: &[KeySpec], args_len: usize) -> Vec<usize> {
    let argc = args_len as i64;
    let mut indexes = Vec::new();
    for spec in specs {
        let first = spec.begin_index;
        let last = if spec.last_key < 0 {
            argc + spec.last_key
        } else {
            first + spec.last_key
        };
        let mut index = first;
        while index <= last && index < argc {
            indexes.push(index as usize);
            index += spec.key_step.max(1);
        }
    }
    indexes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_triples_follow_the_specs() {
        assert_eq!(CommandKind::Get.key_positions(), (1, 1, 1));
        assert_eq!(CommandKind::MSet.key_positions(), (1, -1, 2));
        assert_eq!(CommandKind::TsMAdd.key_positions(), (1, -1, 3));
        assert_eq!(CommandKind::TsRange.key_positions(), (1, 1, 1));
        assert_eq!(CommandKind::TsMRange.key_positions(), (0, 0, 0));
        assert_eq!(CommandKind::Ping.key_positions(), (0, 0, 0));
    }

    #[test]
    fn key_indexes_of_requests() {
        assert_eq!(CommandKind::MSet.key_indexes(5), vec![1, 3]);
        assert_eq!(CommandKind::MSet.key_indexes(4), vec![1, 3]);
        assert_eq!(CommandKind::Del.key_indexes(4), vec![1, 2, 3]);
        assert_eq!(CommandKind::Set.key_indexes(5), vec![1]);
        assert_eq!(CommandKind::TsMAdd.key_indexes(7), vec![1, 4]);
    }

    #[test]
    fn categories_like_redis() {
        assert_eq!(
            CommandKind::Get.acl_categories(),
            ["@read", "@string", "@fast"]
        );
        assert_eq!(
            CommandKind::Del.acl_categories(),
            ["@keyspace", "@write", "@slow"]
        );
        assert_eq!(CommandKind::Ping.acl_categories(), ["@fast", "@connection"]);
    }
}
