//! `SLOWLOG GET [count] | LEN | RESET | HELP`: the commands that ran longer than
//! `--slowlog-log-slower-than` microseconds, as Redis 7.0's `slowlog.c` keeps them.
//!
//! Each shard logs the commands its connections ran, newest first, at most
//! `--slowlog-max-len` of them, in its [`super::metrics::ShardMetrics`] (behind a lock only
//! the logging shard and a `SLOWLOG` reader take). Ids come from one server-wide counter, so
//! `SLOWLOG GET` merges the shards' logs by id, newest first, as one log would list them.
//! The duration is the command's own time on the shard's loop, the same figure as
//! `INFO commandstats`. An entry keeps at most [`ARGS_MAX`] arguments of at most
//! [`ARG_BYTES_MAX`] bytes each, with Redis's markers for what was cut; `AUTH` and `HELLO`
//! keep no password.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::metrics::ShardMetrics;
use crate::command::server::SlowlogSub;
use crate::command::CommandKind;
use crate::resp;

/// Arguments an entry keeps (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
pub const ARGS_MAX: usize = 32;
/// Bytes an argument keeps (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
pub const ARG_BYTES_MAX: usize = 128;

/// One slow command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlowlogEntry {
    /// Server-wide id, increasing.
    pub id: u64,
    /// When it ran, Unix seconds.
    pub unix_secs: u64,
    /// Its time on the loop, in microseconds.
    pub duration_us: u64,
    /// Its arguments, name first, cut as described in the module documentation.
    pub args: Vec<Vec<u8>>,
    /// The client's address, `ip:port`.
    pub client_addr: String,
    /// The client's name (`CLIENT SETNAME`), empty if none.
    pub client_name: Vec<u8>,
}

/// The arguments as an entry keeps them.
fn kept_args(kind: Option<CommandKind>, args: &[&[u8]]) -> Vec<Vec<u8>> {
    let redact_from = match kind {
        Some(CommandKind::Auth) => 1,
        Some(CommandKind::Hello) => args
            .iter()
            .position(|a| a.eq_ignore_ascii_case(b"AUTH"))
            .map_or(usize::MAX, |at| at + 1),
        _ => usize::MAX,
    };
    let shown = if args.len() > ARGS_MAX {
        ARGS_MAX - 1
    } else {
        args.len()
    };
    let mut kept: Vec<Vec<u8>> = args[..shown]
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            if i >= redact_from {
                b"(redacted)".to_vec()
            } else if arg.len() > ARG_BYTES_MAX {
                let mut cut = arg[..ARG_BYTES_MAX].to_vec();
                cut.extend_from_slice(
                    format!("... ({} more bytes)", arg.len() - ARG_BYTES_MAX).as_bytes(),
                );
                cut
            } else {
                arg.to_vec()
            }
        })
        .collect();
    if args.len() > ARGS_MAX {
        kept.push(format!("... ({} more arguments)", args.len() - shown).into_bytes());
    }
    kept
}

impl ShardMetrics {
    /// Logs a command that took `duration_us` if that reaches `log_slower_than_us`
    /// (negative: never), keeping at most `max_len` entries. `next_id` is the server-wide
    /// id counter.
    pub fn slowlog_record(
        &self,
        next_id: &std::sync::atomic::AtomicU64,
        (log_slower_than_us, max_len): (i64, usize),
        kind: Option<CommandKind>,
        args: &[&[u8]],
        duration_us: u64,
        client: (String, Vec<u8>),
    ) {
        let Ok(threshold) = u64::try_from(log_slower_than_us) else {
            return;
        };
        if duration_us < threshold || max_len == 0 {
            return;
        }
        let entry = SlowlogEntry {
            id: next_id.fetch_add(1, Ordering::Relaxed),
            unix_secs: crate::base::unix_now_ms() / 1000,
            duration_us,
            args: kept_args(kind, args),
            client_addr: client.0,
            client_name: client.1,
        };
        let mut log = self.slowlog();
        log.push_front(entry);
        log.truncate(max_len);
    }

    /// The shard's slow log, newest first.
    pub fn slowlog(&self) -> std::sync::MutexGuard<'_, VecDeque<SlowlogEntry>> {
        self.slowlog.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Encodes the reply to `sub` over every shard's log (`RESET` clears them).
/// `SLOWLOG GET` is arrays and integers in RESP2 and RESP3 alike, as in Redis.
pub fn reply(out: &mut Vec<u8>, sub: SlowlogSub, shards: &[ShardMetrics]) {
    match sub {
        SlowlogSub::Len => {
            let len: usize = shards.iter().map(|m| m.slowlog().len()).sum();
            resp::integer(out, len as i64);
        }
        SlowlogSub::Reset => {
            for metrics in shards {
                metrics.slowlog().clear();
            }
            out.extend_from_slice(b"+OK\r\n");
        }
        SlowlogSub::Get(count) => {
            let mut entries: Vec<SlowlogEntry> = shards
                .iter()
                .flat_map(|m| m.slowlog().iter().cloned().collect::<Vec<_>>())
                .collect();
            entries.sort_unstable_by_key(|e| std::cmp::Reverse(e.id));
            entries.truncate(count.unwrap_or(usize::MAX));
            resp::array_header(out, entries.len());
            for entry in entries {
                resp::array_header(out, 6);
                resp::integer(out, entry.id as i64);
                resp::integer(out, entry.unix_secs as i64);
                resp::integer(out, entry.duration_us as i64);
                resp::array_header(out, entry.args.len());
                for arg in &entry.args {
                    resp::bulk(out, arg);
                }
                resp::bulk(out, entry.client_addr.as_bytes());
                resp::bulk(out, &entry.client_name);
            }
        }
    }
}

impl super::Shard {
    /// Logs the command connection `key` just ran, if it was slow (see the module
    /// documentation).
    pub(super) fn slowlog_record(
        &self,
        key: (u32, u32),
        kind: CommandKind,
        args: &[&[u8]],
        duration_us: u64,
    ) {
        let config = self.config().slowlog;
        let Ok(threshold) = u64::try_from(config.log_slower_than_us) else {
            return;
        };
        if duration_us < threshold {
            return;
        }
        let client = self.conn(key).map_or_else(Default::default, |conn| {
            let addr = conn
                .addrs
                .map_or_else(String::new, |(peer, _)| peer.to_string());
            (addr, conn.name.clone().unwrap_or_default())
        });
        self.metrics().slowlog_record(
            &self.shared.next_slowlog_id,
            (config.log_slower_than_us, config.max_len),
            Some(kind),
            args,
            duration_us,
            client,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_arguments_and_passwords_are_cut_as_redis_cuts_them() {
        let long = vec![b'x'; 200];
        let kept = kept_args(Some(CommandKind::Set), &[b"SET", b"k", &long]);
        assert_eq!(kept[2].len(), 128 + "... (72 more bytes)".len());
        assert!(kept[2].ends_with(b"... (72 more bytes)"));
        let many: Vec<&[u8]> = std::iter::repeat_n(&b"a"[..], 40).collect();
        let kept = kept_args(Some(CommandKind::MGet), &many);
        assert_eq!(kept.len(), 32);
        assert_eq!(kept[31], b"... (9 more arguments)");
        let kept = kept_args(Some(CommandKind::Auth), &[b"AUTH", b"user", b"secret"]);
        assert_eq!(
            kept,
            vec![
                b"AUTH".to_vec(),
                b"(redacted)".to_vec(),
                b"(redacted)".to_vec()
            ]
        );
        let kept = kept_args(
            Some(CommandKind::Hello),
            &[b"HELLO", b"3", b"AUTH", b"default", b"pw"],
        );
        assert_eq!(&kept[3..], [b"(redacted)".to_vec(), b"(redacted)".to_vec()]);
    }
}
