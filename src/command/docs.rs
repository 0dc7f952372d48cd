//! What `COMMAND DOCS` says of each command ([`CommandDocs`]): Redis 7.0's summary,
//! first version and complexity for the commands tskv shares with it (word for word, so
//! that clients and tools that show them read what Redis says; `tests/server_command_info.rs`
//! compares them with a real `redis-server`), and tskv's own for RedisTimeSeries's, with
//! RedisTimeSeries's first versions and tskv's complexities. The documentation group is
//! [`CommandKind::group`].

use super::CommandKind;

/// One command's documentation, as `COMMAND DOCS` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandDocs {
    /// One line saying what the command does.
    pub summary: &'static str,
    /// The Redis (or RedisTimeSeries) version that introduced the command.
    pub since: &'static str,
    /// Its time complexity, in words.
    pub complexity: &'static str,
    /// For a deprecated command, the version that deprecated it and what replaces it
    /// (Redis's `deprecated_since` and `replaced_by`, with `doc_flags: [deprecated]`).
    pub deprecated: Option<(&'static str, &'static str)>,
}

const fn docs(summary: &'static str, since: &'static str, complexity: &'static str) -> CommandDocs {
    CommandDocs {
        summary,
        since,
        complexity,
        deprecated: None,
    }
}

impl CommandDocs {
    /// The same documentation, marked deprecated `since`, replaced by `replaced_by`.
    const fn deprecated(self, since: &'static str, replaced_by: &'static str) -> Self {
        Self {
            deprecated: Some((since, replaced_by)),
            ..self
        }
    }
}

impl CommandKind {
    /// The command's documentation for `COMMAND DOCS`.
    pub fn docs(self) -> CommandDocs {
        match self {
            Self::Ping => docs(
                "Ping the server",
                "1.0.0",
                "O(1)",
            ),
            Self::Echo => docs(
                "Echo the given string",
                "1.0.0",
                "O(1)",
            ),
            Self::Quit => docs(
                "Close the connection",
                "1.0.0",
                "O(1)",
            ),
            Self::Hello => docs(
                "Handshake with Redis",
                "6.0.0",
                "O(1)",
            ),
            Self::Select => docs(
                "Change the selected database for the current connection",
                "1.0.0",
                "O(1)",
            ),
            Self::Client => docs(
                "A container for client connection commands",
                "2.4.0",
                "Depends on subcommand.",
            ),
            Self::Command => docs(
                "Get array of Redis command details",
                "2.8.13",
                "O(N) where N is the total number of Redis commands",
            ),
            Self::Config => docs(
                "A container for server configuration commands",
                "2.0.0",
                "Depends on subcommand.",
            ),
            Self::Set => docs(
                "Set the string value of a key",
                "1.0.0",
                "O(1)",
            ),
            Self::Get => docs(
                "Get the value of a key",
                "1.0.0",
                "O(1)",
            ),
            Self::Del => docs(
                "Delete a key",
                "1.0.0",
                "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
            ),
            Self::Exists => docs(
                "Determine if a key exists",
                "1.0.0",
                "O(N) where N is the number of keys to check.",
            ),
            Self::MGet => docs(
                "Get the values of all the given keys",
                "1.0.0",
                "O(N) where N is the number of keys to retrieve.",
            ),
            Self::MSet => docs(
                "Set multiple keys to multiple values",
                "1.0.1",
                "O(N) where N is the number of keys to set.",
            ),
            Self::DbSize => docs(
                "Return the number of keys in the selected database",
                "1.0.0",
                "O(1)",
            ),
            Self::Info => docs(
                "Get information and statistics about the server",
                "1.0.0",
                "O(1)",
            ),
            Self::Shutdown => docs(
                "Synchronously save the dataset to disk and then shut down the server",
                "1.0.0",
                "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
            ),
            Self::Scan => docs(
                "Incrementally iterate the keys space",
                "2.8.0",
                "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
            ),
            Self::Keys => docs(
                "Find all keys matching the given pattern",
                "1.0.0",
                "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.",
            ),
            Self::Type => docs(
                "Determine the type stored at key",
                "1.0.0",
                "O(1)",
            ),
            Self::Incr => docs(
                "Increment the integer value of a key by one",
                "1.0.0",
                "O(1)",
            ),
            Self::Decr => docs(
                "Decrement the integer value of a key by one",
                "1.0.0",
                "O(1)",
            ),
            Self::IncrBy => docs(
                "Increment the integer value of a key by the given amount",
                "1.0.0",
                "O(1)",
            ),
            Self::DecrBy => docs(
                "Decrement the integer value of a key by the given number",
                "1.0.0",
                "O(1)",
            ),
            Self::IncrByFloat => docs(
                "Increment the float value of a key by the given amount",
                "2.6.0",
                "O(1)",
            ),
            Self::Append => docs(
                "Append a value to a key",
                "2.0.0",
                "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.",
            ),
            Self::StrLen => docs(
                "Get the length of the value stored in a key",
                "2.2.0",
                "O(1)",
            ),
            Self::GetRange => docs(
                "Get a substring of the string stored at a key",
                "2.4.0",
                "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.",
            ),
            Self::SetRange => docs(
                "Overwrite part of a string at key starting at the specified offset",
                "2.2.0",
                "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.",
            ),
            Self::GetSet => docs(
                "Set the string value of a key and return its old value",
                "1.0.0",
                "O(1)",
            ).deprecated("6.2.0", "`SET` with the `!GET` argument"),
            Self::GetDel => docs(
                "Get the value of a key and delete the key",
                "6.2.0",
                "O(1)",
            ),
            Self::SetNx => docs(
                "Set the value of a key, only if the key does not exist",
                "1.0.0",
                "O(1)",
            ),
            Self::MSetNx => docs(
                "Set multiple keys to multiple values, only if none of the keys exist",
                "1.0.1",
                "O(N) where N is the number of keys to set.",
            ),
            Self::Rename => docs(
                "Rename a key",
                "1.0.0",
                "O(1)",
            ),
            Self::RenameNx => docs(
                "Rename a key, only if the new key does not exist",
                "1.0.0",
                "O(1)",
            ),
            Self::Unlink => docs(
                "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
                "4.0.0",
                "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.",
            ),
            Self::Touch => docs(
                "Alters the last access time of a key(s). Returns the number of existing keys specified.",
                "3.2.1",
                "O(N) where N is the number of keys that will be touched.",
            ),
            Self::RandomKey => docs(
                "Return a random key from the keyspace",
                "1.0.0",
                "O(1)",
            ),
            Self::Multi => docs(
                "Mark the start of a transaction block",
                "1.2.0",
                "O(1)",
            ),
            Self::Exec => docs(
                "Execute all commands issued after MULTI",
                "1.2.0",
                "Depends on commands in the transaction",
            ),
            Self::Discard => docs(
                "Discard all commands issued after MULTI",
                "2.0.0",
                "O(N), when N is the number of queued commands",
            ),
            Self::Watch => docs(
                "Watch the given keys to determine execution of the MULTI/EXEC block",
                "2.2.0",
                "O(1) for every key.",
            ),
            Self::Unwatch => docs(
                "Forget about all watched keys",
                "2.2.0",
                "O(1)",
            ),
            Self::Auth => docs(
                "Authenticate to the server",
                "1.0.0",
                "O(N) where N is the number of passwords defined for the user",
            ),
            Self::SetEx => docs(
                "Set the value and expiration of a key",
                "2.0.0",
                "O(1)",
            ),
            Self::PSetEx => docs(
                "Set the value and expiration in milliseconds of a key",
                "2.6.0",
                "O(1)",
            ),
            Self::GetEx => docs(
                "Get the value of a key and optionally set its expiration",
                "6.2.0",
                "O(1)",
            ),
            Self::Expire => docs(
                "Set a key's time to live in seconds",
                "1.0.0",
                "O(1)",
            ),
            Self::PExpire => docs(
                "Set a key's time to live in milliseconds",
                "2.6.0",
                "O(1)",
            ),
            Self::ExpireAt => docs(
                "Set the expiration for a key as a UNIX timestamp",
                "1.2.0",
                "O(1)",
            ),
            Self::PExpireAt => docs(
                "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
                "2.6.0",
                "O(1)",
            ),
            Self::Ttl => docs(
                "Get the time to live for a key in seconds",
                "1.0.0",
                "O(1)",
            ),
            Self::PTtl => docs(
                "Get the time to live for a key in milliseconds",
                "2.6.0",
                "O(1)",
            ),
            Self::ExpireTime => docs(
                "Get the expiration Unix timestamp for a key",
                "7.0.0",
                "O(1)",
            ),
            Self::PExpireTime => docs(
                "Get the expiration Unix timestamp for a key in milliseconds",
                "7.0.0",
                "O(1)",
            ),
            Self::Persist => docs(
                "Remove the expiration from a key",
                "2.2.0",
                "O(1)",
            ),
            Self::TsCreate => docs(
                "Creates a time series, with its retention, duplicate policy and labels",
                "1.0.0",
                "O(L) where L is the number of labels",
            ),
            Self::TsAlter => docs(
                "Changes a time series' retention, chunk size, duplicate policy or labels",
                "1.0.0",
                "O(L) where L is the number of labels given",
            ),
            Self::TsAdd => docs(
                "Adds a sample to a time series, creating the series if needed",
                "1.0.0",
                "O(R) where R is the number of compaction rules of the series",
            ),
            Self::TsMAdd => docs(
                "Adds samples to one or more time series",
                "1.0.0",
                "O(N*R) where N is the number of samples and R the compaction rules of their series",
            ),
            Self::TsIncrBy => docs(
                "Adds to the value of a time series' latest sample, or appends a sample with the sum",
                "1.0.0",
                "O(R) where R is the number of compaction rules of the series",
            ),
            Self::TsDecrBy => docs(
                "Subtracts from the value of a time series' latest sample, or appends a sample with the difference",
                "1.0.0",
                "O(R) where R is the number of compaction rules of the series",
            ),
            Self::TsDel => docs(
                "Deletes the samples of a time series between two timestamps",
                "1.6.0",
                "O(N) where N is the number of samples deleted",
            ),
            Self::TsGet => docs(
                "Returns the latest sample of a time series",
                "1.0.0",
                "O(1)",
            ),
            Self::TsRange => docs(
                "Returns the samples of a time series in a timestamp range, oldest first, optionally aggregated",
                "1.0.0",
                "O(C+K) where C is the number of chunks the range overlaps and K the number of samples in it",
            ),
            Self::TsRevRange => docs(
                "Returns the samples of a time series in a timestamp range, newest first, optionally aggregated",
                "1.4.0",
                "O(C+K) where C is the number of chunks the range overlaps and K the number of samples in it",
            ),
            Self::TsInfo => docs(
                "Returns a time series' settings, labels, rules and statistics",
                "1.0.0",
                "O(1)",
            ),
            Self::TsMGet => docs(
                "Returns the latest sample of every time series whose labels match a filter",
                "1.0.0",
                "O(S) where S is the number of series on the server",
            ),
            Self::TsMRange => docs(
                "Returns the samples in a timestamp range of every time series whose labels match a filter, oldest first",
                "1.0.0",
                "O(S+C+K) where S is the number of series, C the chunks the ranges overlap and K the samples in them",
            ),
            Self::TsMRevRange => docs(
                "Returns the samples in a timestamp range of every time series whose labels match a filter, newest first",
                "1.4.0",
                "O(S+C+K) where S is the number of series, C the chunks the ranges overlap and K the samples in them",
            ),
            Self::TsQueryIndex => docs(
                "Returns the keys of the time series whose labels match a filter",
                "1.0.0",
                "O(S) where S is the number of series on the server",
            ),
            Self::TsCreateRule => docs(
                "Creates a compaction rule that aggregates a time series into another",
                "1.0.0",
                "O(1)",
            ),
            Self::TsDeleteRule => docs(
                "Deletes a compaction rule",
                "1.0.0",
                "O(1)",
            ),
            Self::Time => docs(
                "Return the current server time",
                "2.6.0",
                "O(1)",
            ),
            Self::Wait => docs(
                "Wait for the synchronous replication of all the write commands sent in the context of the current connection",
                "3.0.0",
                "O(1)",
            ),
            Self::Memory => docs(
                "A container for memory diagnostics commands",
                "4.0.0",
                "Depends on subcommand.",
            ),
            Self::Object => docs(
                "A container for object introspection commands",
                "2.2.3",
                "Depends on subcommand.",
            ),
            Self::Slowlog => docs(
                "A container for slow log commands",
                "2.2.12",
                "Depends on subcommand.",
            ),
            Self::Save => docs(
                "Synchronously save the dataset to disk",
                "1.0.0",
                "O(N) where N is the total number of keys in all databases",
            ),
            Self::BgSave => docs(
                "Asynchronously save the dataset to disk",
                "1.0.0",
                "O(1)",
            ),
            Self::LastSave => docs(
                "Get the UNIX time stamp of the last successful save to disk",
                "1.0.0",
                "O(1)",
            ),
            Self::FlushDb => docs(
                "Remove all keys from the current database",
                "1.0.0",
                "O(N) where N is the number of keys in the selected database",
            ),
            Self::FlushAll => docs(
                "Remove all keys from all databases",
                "1.0.0",
                "O(N) where N is the total number of keys in all databases",
            ),
        }
    }
}
