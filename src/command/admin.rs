//! Parsing of the server administration commands: `SAVE`, `BGSAVE [SCHEDULE]`,
//! `LASTSAVE`, `FLUSHDB [ASYNC|SYNC]` and `FLUSHALL [ASYNC|SYNC]`, with Redis 7.0's
//! errors (`getFlushCommandFlags` and `bgsaveCommand` in its `db.c` / `rdb.c`).

use super::{Command, CommandKind};

/// An administration command (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    /// `SAVE`: flush every shard's memtable to SSTables and wait until they are installed.
    Save,
    /// `BGSAVE [SCHEDULE]`: start what `SAVE` does and reply at once.
    BgSave,
    /// `LASTSAVE`: unix time of the last completed save of every shard.
    LastSave,
    /// `FLUSHDB` / `FLUSHALL` (tskv has one database): remove every key, durably. `ASYNC`
    /// and `SYNC` are accepted and behave the same (see [`crate::shard`]'s admin part).
    FlushAll,
}

/// Parses the arguments after the name of an administration command `kind`.
///
/// # Errors
/// Redis's `ERR syntax error` for an option it does not know.
pub fn parse<'a>(kind: CommandKind, rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let command = match kind {
        CommandKind::Save => AdminCommand::Save,
        CommandKind::LastSave => AdminCommand::LastSave,
        CommandKind::BgSave => match rest {
            [] => AdminCommand::BgSave,
            [option] if option.eq_ignore_ascii_case(b"SCHEDULE") => AdminCommand::BgSave,
            _ => return Err("ERR syntax error".into()),
        },
        CommandKind::FlushDb | CommandKind::FlushAll => match rest {
            [] => AdminCommand::FlushAll,
            [option]
                if option.eq_ignore_ascii_case(b"ASYNC")
                    || option.eq_ignore_ascii_case(b"SYNC") =>
            {
                AdminCommand::FlushAll
            }
            _ => return Err("ERR syntax error".into()),
        },
        other => unreachable!("{} is not an administration command", other.name()),
    };
    Ok(Command::Admin(command))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&'static str]) -> Result<Command<'static>, String> {
        let args: Vec<&'static [u8]> = words.iter().map(|w| w.as_bytes()).collect();
        crate::command::parse(&args).1
    }

    #[test]
    fn options_and_errors_as_redis() {
        let ok = |c| Ok(Command::Admin(c));
        assert_eq!(parse_words(&["save"]), ok(AdminCommand::Save));
        assert_eq!(
            parse_words(&["BGSAVE", "schedule"]),
            ok(AdminCommand::BgSave)
        );
        assert_eq!(
            parse_words(&["flushall", "ASYNC"]),
            ok(AdminCommand::FlushAll)
        );
        assert_eq!(
            parse_words(&["FLUSHDB", "sync"]),
            ok(AdminCommand::FlushAll)
        );
        assert_eq!(parse_words(&["LASTSAVE"]), ok(AdminCommand::LastSave));
        let syntax = Err("ERR syntax error".to_string());
        assert_eq!(parse_words(&["FLUSHALL", "now"]), syntax);
        assert_eq!(parse_words(&["FLUSHALL", "ASYNC", "SYNC"]), syntax);
        assert_eq!(parse_words(&["BGSAVE", "later"]), syntax);
        assert_eq!(
            parse_words(&["SAVE", "x"]),
            Err("ERR wrong number of arguments for 'save' command".to_string())
        );
        assert_eq!(
            parse_words(&["lastsave", "x"]),
            Err("ERR wrong number of arguments for 'lastsave' command".to_string())
        );
    }
}
