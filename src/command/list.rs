//! The list of supported commands that README.md shows, rendered from the command table
//! so it cannot drift: `tests/readme_commands.rs` fails, printing the text to paste, when
//! README's list differs from [`readme_list`].

use super::CommandKind;

/// Redis's documentation groups, in the order README lists them.
const GROUPS: [(&str, &str); 6] = [
    ("connection", "Connection"),
    ("generic", "Keys"),
    ("string", "Strings and counters"),
    ("transactions", "Transactions"),
    ("server", "Server"),
    ("timeseries", "Time series (RedisTimeSeries)"),
];

impl CommandKind {
    /// The command's group in Redis's documentation (`connection`, `generic`, `string`,
    /// `transactions`, `server`; `timeseries` for RedisTimeSeries's).
    pub fn group(self) -> &'static str {
        match self {
            Self::Ping
            | Self::Echo
            | Self::Quit
            | Self::Hello
            | Self::Select
            | Self::Client
            | Self::Auth => "connection",
            Self::Del
            | Self::Exists
            | Self::Unlink
            | Self::Touch
            | Self::Type
            | Self::Scan
            | Self::Keys
            | Self::RandomKey
            | Self::Object
            | Self::Wait
            | Self::Expire
            | Self::PExpire
            | Self::ExpireAt
            | Self::PExpireAt
            | Self::Ttl
            | Self::PTtl
            | Self::ExpireTime
            | Self::PExpireTime
            | Self::Persist
            | Self::Rename
            | Self::RenameNx => "generic",
            Self::Multi | Self::Exec | Self::Discard | Self::Watch | Self::Unwatch => {
                "transactions"
            }
            Self::Command
            | Self::Config
            | Self::DbSize
            | Self::Info
            | Self::Shutdown
            | Self::Time
            | Self::Memory
            | Self::Slowlog => "server",
            Self::Save | Self::BgSave | Self::LastSave | Self::FlushDb | Self::FlushAll => "server",
            Self::Set
            | Self::Get
            | Self::MGet
            | Self::MSet
            | Self::MSetNx
            | Self::SetNx
            | Self::SetEx
            | Self::PSetEx
            | Self::GetEx
            | Self::GetSet
            | Self::GetDel
            | Self::GetRange
            | Self::SetRange
            | Self::StrLen
            | Self::Append
            | Self::Incr
            | Self::Decr
            | Self::IncrBy
            | Self::DecrBy
            | Self::IncrByFloat => "string",
            // Every other kind is a time-series command; no default, so that a new command
            // must be placed here before it compiles.
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
            | Self::TsMGet
            | Self::TsMRange
            | Self::TsMRevRange
            | Self::TsQueryIndex
            | Self::TsCreateRule
            | Self::TsDeleteRule => "timeseries",
        }
    }
}

/// README's list of commands: one line per group, the names in upper case and in
/// alphabetical order.
pub fn readme_list() -> String {
    let mut out = String::new();
    for (group, title) in GROUPS {
        let mut names: Vec<String> = CommandKind::ALL
            .iter()
            .filter(|kind| kind.group() == group)
            .map(|kind| kind.name().to_ascii_uppercase())
            .collect();
        names.sort();
        let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
        out.push_str(&format!("- **{title}:** {}\n", quoted.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_in_a_listed_group() {
        for kind in CommandKind::ALL {
            assert!(
                GROUPS.iter().any(|(group, _)| *group == kind.group()),
                "{kind:?}"
            );
        }
        let list = readme_list();
        assert!(list.contains("`GET`") && list.contains("`TS.MRANGE`"));
    }
}
