//! The connection commands' arguments: `HELLO` and `CLIENT`, with Redis 7.0's errors
//! (`networking.c` `helloCommand`, `clientCommand`).

use super::{unknown_subcommand, wrong_arity, Command};
use crate::resp::Protocol;

/// `CLIENT` subcommands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientSub<'a> {
    /// `CLIENT SETNAME name` (an empty name clears it).
    SetName(&'a [u8]),
    /// `CLIENT GETNAME`.
    GetName,
    /// `CLIENT ID`.
    Id,
    /// `CLIENT SETINFO LIB-NAME|LIB-VER value` (accepted and ignored).
    SetInfo,
    /// `CLIENT LIST [TYPE type]`: every client of every shard, one line each.
    List {
        /// False when `TYPE` names a kind of client tskv never has (`master`, `replica`,
        /// `pubsub`): the list is empty.
        any: bool,
    },
    /// `CLIENT INFO`: this connection's line of `CLIENT LIST`.
    Info,
}

impl ClientSub<'_> {
    /// The name `CLIENT LIST` shows in `cmd=` for this subcommand (`client|list`).
    pub fn full_name(&self) -> &'static str {
        match self {
            Self::SetName(_) => "client|setname",
            Self::GetName => "client|getname",
            Self::Id => "client|id",
            Self::SetInfo => "client|setinfo",
            Self::List { .. } => "client|list",
            Self::Info => "client|info",
        }
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloArgs<'a> {
    /// The protocol to switch to; `None` keeps the connection's.
    pub proto: Option<Protocol>,
    /// `SETNAME`'s name, already checked like `CLIENT SETNAME`'s.
    pub name: Option<&'a [u8]>,
}

/// The text Redis 7.0 sends for a name with a blank, a newline or a special byte.
const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

/// The user every connection is authenticated as: tskv has no users or passwords, which
/// is Redis's default configuration (user `default` with `nopass`).
const DEFAULT_USER: &[u8] = b"default";

/// Parses `HELLO`'s arguments in Redis 7.0's order: the version (`-NOPROTO` unless 2 or
/// 3), then the options left to right (a bad name fails at once), then `AUTH`. As with
/// Redis without `requirepass`, `AUTH default <any password>` succeeds and any other user
/// gets `-WRONGPASS`.
pub(super) fn parse_hello<'a>(rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let mut args = HelloArgs {
        proto: None,
        name: None,
    };
    let Some((version, mut options)) = rest.split_first() else {
        return Ok(Command::Hello(args));
    };
    let version = super::parse_i64(version)
        .ok_or("ERR Protocol version is not an integer or out of range")?;
    args.proto =
        Some(Protocol::from_version(version).ok_or("NOPROTO unsupported protocol version")?);
    let mut user = None;
    while let Some((option, after)) = options.split_first() {
        match after {
            [username, _password, more @ ..] if option.eq_ignore_ascii_case(b"AUTH") => {
                user = Some(*username);
                options = more;
            }
            [name, more @ ..] if option.eq_ignore_ascii_case(b"SETNAME") => {
                args.name = Some(checked_name(name)?);
                options = more;
            }
            _ => {
                return Err(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(option)
                ))
            }
        }
    }
    if user.is_some_and(|user| user != DEFAULT_USER) {
        return Err("WRONGPASS invalid username-password pair or user is disabled.".into());
    }
    Ok(Command::Hello(args))
}

/// Parses `CLIENT <subcommand> ...`.
pub(super) fn parse_client<'a>(rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let (sub, args) = (rest[0], &rest[1..]);
    let is = |name: &[u8]| sub.eq_ignore_ascii_case(name);
    let parsed = match args {
        [name] if is(b"SETNAME") => ClientSub::SetName(checked_name(name)?),
        [] if is(b"GETNAME") => ClientSub::GetName,
        [] if is(b"ID") => ClientSub::Id,
        [] if is(b"INFO") => ClientSub::Info,
        [_, _] if is(b"SETINFO") => ClientSub::SetInfo,
        [] if is(b"LIST") => ClientSub::List { any: true },
        [option, kind] if is(b"LIST") && option.eq_ignore_ascii_case(b"TYPE") => {
            let known = [&b"normal"[..], b"master", b"replica", b"slave", b"pubsub"];
            if !known.iter().any(|k| kind.eq_ignore_ascii_case(k)) {
                return Err(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(kind)
                ));
            }
            ClientSub::List {
                any: kind.eq_ignore_ascii_case(b"normal"),
            }
        }
        _ if is(b"LIST") => return Err("ERR syntax error".into()),
        _ => {
            let name = match () {
                () if is(b"SETNAME") => "client|setname",
                () if is(b"GETNAME") => "client|getname",
                () if is(b"ID") => "client|id",
                () if is(b"INFO") => "client|info",
                () if is(b"SETINFO") => "client|setinfo",
                () => return Err(unknown_subcommand(sub, "CLIENT")),
            };
            return Err(wrong_arity(name));
        }
    };
    Ok(Command::Client(parsed))
}

/// A client name as Redis's `validateClientName` accepts it: bytes `!` to `~` only.
fn checked_name(name: &[u8]) -> Result<&[u8], String> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(BAD_NAME.into());
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(words: &[&'static str]) -> Result<Command<'static>, String> {
        let args: Vec<&'static [u8]> = words.iter().map(|w| w.as_bytes()).collect();
        parse_hello(&args)
    }

    #[test]
    fn hello_checks_like_redis_7() {
        assert_eq!(
            hello(&["3", "SETNAME", "a"]),
            Ok(Command::Hello(HelloArgs {
                proto: Some(Protocol::Resp3),
                name: Some(b"a"),
            }))
        );
        assert_eq!(
            hello(&["4"]).unwrap_err(),
            "NOPROTO unsupported protocol version"
        );
        assert_eq!(
            hello(&["x"]).unwrap_err(),
            "ERR Protocol version is not an integer or out of range"
        );
        assert_eq!(
            hello(&["3", "SETNAME"]).unwrap_err(),
            "ERR Syntax error in HELLO option 'SETNAME'"
        );
        assert_eq!(hello(&["3", "SETNAME", "a b"]).unwrap_err(), BAD_NAME);
        assert!(hello(&["2", "AUTH", "default", "anything"]).is_ok());
        assert!(hello(&["2", "AUTH", "bob", "x"])
            .unwrap_err()
            .starts_with("WRONGPASS"));
    }
}
