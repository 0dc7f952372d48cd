//! The connection commands' arguments: `HELLO` and `CLIENT`, with Redis 7.0's errors
//! (`networking.c` `helloCommand`, `clientCommand`).

use super::{unknown_subcommand, wrong_arity, Command};
use crate::resp::Protocol;

/// `CLIENT` subcommands.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// `CLIENT KILL addr` or `CLIENT KILL <filter> <value> ...`: close the matching
    /// clients of every shard.
    Kill(KillFilter),
    /// `CLIENT NO-EVICT on|off` (tskv evicts no clients; shown in `CLIENT LIST` flags).
    NoEvict(bool),
    /// `CLIENT REPLY ON|OFF|SKIP`.
    Reply(ReplyMode),
}

/// What `CLIENT REPLY` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    /// Send replies again (this one is `+OK`).
    On,
    /// Send no reply, to this command or any after it, until `CLIENT REPLY ON`.
    Off,
    /// Send no reply to this command and the next one.
    Skip,
}

/// Which clients `CLIENT KILL` closes: those matching every filter given. Owned, to be
/// sent to every shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KillFilter {
    /// The old form, `CLIENT KILL addr`: replies `+OK` or `-ERR No such client`
    /// instead of the number of clients closed.
    pub old_form: bool,
    /// `ID id`.
    pub id: Option<u64>,
    /// `ADDR ip:port`: the client's address, as `CLIENT LIST` prints it.
    pub addr: Option<String>,
    /// `LADDR ip:port`: the server address the client connected to.
    pub laddr: Option<String>,
    /// `TYPE` named a kind of client tskv never has (`master`, `replica`, `pubsub`).
    pub none_match: bool,
    /// `SKIPME yes|no` (`yes` by default in the new form, `no` in the old one).
    pub skip_me: bool,
    /// `MAXAGE seconds` (Redis 7.4's filter): only clients connected longer than this.
    pub max_age_secs: Option<u64>,
}

impl KillFilter {
    /// Whether a client with these properties matches (the caller applies `skip_me`).
    pub fn matches(&self, id: u64, addr: &str, laddr: &str, age_secs: u64) -> bool {
        !self.none_match
            && self.id.is_none_or(|wanted| wanted == id)
            && self.addr.as_deref().is_none_or(|wanted| wanted == addr)
            && self.laddr.as_deref().is_none_or(|wanted| wanted == laddr)
            && self.max_age_secs.is_none_or(|max| age_secs > max)
    }
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
            Self::Kill(_) => "client|kill",
            Self::NoEvict(_) => "client|no-evict",
            Self::Reply(_) => "client|reply",
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
    /// `AUTH username password`, checked by the shard against `--requirepass`.
    pub auth: Option<(&'a [u8], &'a [u8])>,
}

/// The text Redis 7.0 sends for a name with a blank, a newline or a special byte.
const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

/// The one user tskv has, as Redis without ACLs: `default`, whose password is
/// `--requirepass` (without it, `nopass`: any password is accepted).
const DEFAULT_USER: &[u8] = b"default";

/// Redis 7.0's reply to a wrong user or password.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Checks `AUTH [username] password` (or `HELLO ... AUTH username password`) against the
/// server's `requirepass`, with Redis 7.0's replies: the one-argument form without a
/// configured password is an error, a user other than `default` or a wrong password is
/// [`WRONGPASS`]. Passwords are compared in time independent of where they differ.
///
/// # Errors
/// The error line to send.
pub fn check_credentials(
    username: Option<&[u8]>,
    password: &[u8],
    requirepass: Option<&str>,
) -> Result<(), &'static str> {
    let Some(expected) = requirepass else {
        return match username {
            None => Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
            Some(user) if user == DEFAULT_USER => Ok(()),
            Some(_) => Err(WRONGPASS),
        };
    };
    let user_ok = username.is_none_or(|user| user == DEFAULT_USER);
    let expected = expected.as_bytes();
    let same_len = expected.len() == password.len();
    let diff = expected
        .iter()
        .zip(password)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if user_ok && same_len && diff == 0 {
        Ok(())
    } else {
        Err(WRONGPASS)
    }
}

/// Parses `HELLO`'s arguments in Redis 7.0's order: the version (`-NOPROTO` unless 2 or
/// 3), then the options left to right (a bad name fails at once). `AUTH`'s credentials
/// are checked by the shard ([`check_credentials`]), which knows the password.
pub(super) fn parse_hello<'a>(rest: &[&'a [u8]]) -> Result<Command<'a>, String> {
    let mut args = HelloArgs {
        proto: None,
        name: None,
        auth: None,
    };
    let Some((version, mut options)) = rest.split_first() else {
        return Ok(Command::Hello(args));
    };
    let version = super::parse_i64(version)
        .ok_or("ERR Protocol version is not an integer or out of range")?;
    args.proto =
        Some(Protocol::from_version(version).ok_or("NOPROTO unsupported protocol version")?);
    while let Some((option, after)) = options.split_first() {
        match after {
            [username, password, more @ ..] if option.eq_ignore_ascii_case(b"AUTH") => {
                args.auth = Some((username, password));
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
        [_, ..] if is(b"KILL") => ClientSub::Kill(parse_kill(args)?),
        [mode] if is(b"NO-EVICT") => match on_off(mode) {
            Some(on) => ClientSub::NoEvict(on),
            None => return Err("ERR syntax error".into()),
        },
        [mode] if is(b"REPLY") => ClientSub::Reply(match mode {
            m if m.eq_ignore_ascii_case(b"ON") => ReplyMode::On,
            m if m.eq_ignore_ascii_case(b"OFF") => ReplyMode::Off,
            m if m.eq_ignore_ascii_case(b"SKIP") => ReplyMode::Skip,
            _ => return Err("ERR syntax error".into()),
        }),
        _ => {
            let name = match () {
                () if is(b"KILL") => "client|kill",
                () if is(b"NO-EVICT") => "client|no-evict",
                () if is(b"REPLY") => "client|reply",
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

fn on_off(word: &[u8]) -> Option<bool> {
    if word.eq_ignore_ascii_case(b"ON") {
        Some(true)
    } else if word.eq_ignore_ascii_case(b"OFF") {
        Some(false)
    } else {
        None
    }
}

/// `CLIENT KILL`'s arguments after `KILL`, checked left to right with Redis 7.0's
/// errors: one argument is the old form (an address); more are filter/value pairs.
fn parse_kill(args: &[&[u8]]) -> Result<KillFilter, String> {
    if let [addr] = args {
        return Ok(KillFilter {
            old_form: true,
            addr: Some(String::from_utf8_lossy(addr).into_owned()),
            ..KillFilter::default()
        });
    }
    let mut filter = KillFilter {
        skip_me: true,
        ..KillFilter::default()
    };
    let text = |value: &[u8]| String::from_utf8_lossy(value).into_owned();
    for pair in args.chunks(2) {
        let [name, value] = pair else {
            return Err("ERR syntax error".into());
        };
        let is = |word: &[u8]| name.eq_ignore_ascii_case(word);
        if is(b"ID") {
            let id = super::strings::parse_strict_i64(value)
                .filter(|&id| id >= 1)
                .ok_or("ERR client-id should be greater than 0")?;
            filter.id = Some(id as u64);
        } else if is(b"TYPE") {
            let known = [&b"normal"[..], b"master", b"replica", b"slave", b"pubsub"];
            if !known.iter().any(|k| value.eq_ignore_ascii_case(k)) {
                return Err(format!("ERR Unknown client type '{}'", text(value)));
            }
            filter.none_match |= !value.eq_ignore_ascii_case(b"normal");
        } else if is(b"ADDR") {
            filter.addr = Some(text(value));
        } else if is(b"LADDR") {
            filter.laddr = Some(text(value));
        } else if is(b"USER") {
            if *value != DEFAULT_USER {
                return Err(format!("ERR No such user '{}'", text(value)));
            }
        } else if is(b"SKIPME") {
            filter.skip_me = match value {
                v if v.eq_ignore_ascii_case(b"yes") => true,
                v if v.eq_ignore_ascii_case(b"no") => false,
                _ => return Err("ERR syntax error".into()),
            };
        } else if is(b"MAXAGE") {
            let secs =
                super::strings::parse_strict_i64(value).ok_or(super::strings::NOT_AN_INTEGER)?;
            filter.max_age_secs = Some(secs.max(0) as u64);
        } else {
            return Err("ERR syntax error".into());
        }
    }
    Ok(filter)
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
                auth: None,
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
    }

    #[test]
    fn credentials_follow_redis() {
        let secret = Some("s3cret");
        assert_eq!(check_credentials(None, b"s3cret", secret), Ok(()));
        assert_eq!(
            check_credentials(Some(b"default"), b"s3cret", secret),
            Ok(())
        );
        assert_eq!(check_credentials(None, b"s3cre", secret), Err(WRONGPASS));
        assert_eq!(check_credentials(None, b"s3cret!", secret), Err(WRONGPASS));
        assert_eq!(check_credentials(None, b"S3cret", secret), Err(WRONGPASS));
        assert_eq!(
            check_credentials(Some(b"bob"), b"s3cret", secret),
            Err(WRONGPASS)
        );
        assert!(check_credentials(None, b"x", None)
            .unwrap_err()
            .starts_with("ERR AUTH <password> called without any password configured"));
        assert_eq!(check_credentials(Some(b"default"), b"x", None), Ok(()));
        assert_eq!(check_credentials(Some(b"bob"), b"x", None), Err(WRONGPASS));
    }
}
