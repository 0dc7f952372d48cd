//! The connection commands: `HELLO` (which switches a connection between RESP2 and RESP3)
//! and `CLIENT`, with the line format of Redis 7.0's `CLIENT LIST` (`networking.c`
//! `catClientInfoString`).
//!
//! A `CLIENT LIST` line has every field Redis 7.0 prints, in its order. Fields that tskv
//! tracks are real: `id addr laddr fd name age idle flags multi qbuf rbs obl oll omem
//! tot-mem events cmd resp` (`flags`: `x` in a transaction, `e` after `CLIENT NO-EVICT
//! on`, else `N`; `multi`: commands queued, -1 outside `MULTI`). The rest get the value
//! Redis shows for a plain client that uses no such feature: `db=0 sub=0 psub=0 ssub=0
//! argv-mem=0 multi-mem=0 rbp=0 qbuf-free=0 user=default redir=-1` (tskv
//! has one database, no pub/sub, no ACL users, no client tracking, and does not keep a
//! read-buffer peak).
//!
//! `CLIENT KILL` goes to every shard, each closing its matching connections; the
//! requesting client is judged by its own shard, and closed after its reply, as in Redis.

use std::os::fd::AsRawFd;

use super::conn::{Conn, Reply, ReplySending};
use super::mesh::{Op, OpResult};
use super::Shard;
use crate::command::client::{check_credentials, KillFilter, ReplyMode};
use crate::command::{ClientSub, HelloArgs};

/// How often idle clients are looked for when `--timeout` is set.
const IDLE_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Redis 7.0's reply to `HELLO` without `AUTH` from a client that has not authenticated.
const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";
use crate::resp::{self, resp3, Protocol};

impl Shard {
    /// `HELLO`: switch protocol and set the name if asked, then reply with the server's
    /// fields (a map in RESP3, a flat array in RESP2), as Redis 7.0's `helloCommand`.
    pub(super) fn hello(&mut self, key: (u32, u32), args: HelloArgs<'_>) {
        let requirepass = self.config().access.requirepass.clone();
        let Some(conn) = self.conn_mut(key) else {
            return;
        };
        let refusal = match args.auth {
            Some((user, password)) => {
                check_credentials(Some(user), password, requirepass.as_deref()).err()
            }
            None if !conn.authenticated => Some(HELLO_NOAUTH),
            None => None,
        };
        if let Some(refusal) = refusal {
            let mut reply = Vec::new();
            resp::error(&mut reply, refusal);
            self.push_ready(key, Reply::Encoded(reply));
            return;
        }
        conn.authenticated = true;
        if let Some(name) = args.name {
            conn.name = (!name.is_empty()).then(|| name.to_vec());
        }
        if let Some(proto) = args.proto {
            conn.proto = proto;
        }
        let (proto, id) = (conn.proto, conn.id);
        let mut reply = Vec::new();
        resp3::map_header(&mut reply, proto, 7);
        for (name, value) in [("server", "tskv"), ("version", env!("CARGO_PKG_VERSION"))] {
            resp::bulk(&mut reply, name.as_bytes());
            resp::bulk(&mut reply, value.as_bytes());
        }
        resp::bulk(&mut reply, b"proto");
        resp::integer(&mut reply, proto.version());
        resp::bulk(&mut reply, b"id");
        resp::integer(&mut reply, id as i64);
        for (name, value) in [("mode", "standalone"), ("role", "master")] {
            resp::bulk(&mut reply, name.as_bytes());
            resp::bulk(&mut reply, value.as_bytes());
        }
        resp::bulk(&mut reply, b"modules");
        resp::array_header(&mut reply, 0);
        self.push_ready(key, Reply::Encoded(reply));
    }

    /// How long until idle clients are next looked for; `None` without `--timeout`.
    pub(super) fn idle_sweep_wait(&self) -> Option<std::time::Duration> {
        (self.config().access.idle_timeout_secs > 0).then(|| {
            self.next_idle_sweep
                .saturating_duration_since(std::time::Instant::now())
        })
    }

    /// Closes the clients that sent nothing for `--timeout` seconds and wait for no reply,
    /// as Redis's `timeout` (checked about once a second).
    pub(super) fn close_idle_clients(&mut self) {
        let timeout_secs = self.config().access.idle_timeout_secs;
        let now = std::time::Instant::now();
        if timeout_secs == 0 || now < self.next_idle_sweep {
            return;
        }
        self.next_idle_sweep = now + IDLE_SWEEP_INTERVAL;
        let timeout = std::time::Duration::from_secs(timeout_secs);
        let idle: Vec<(u32, u32)> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(index, conn)| {
                let conn = conn.as_ref()?;
                let quiet =
                    conn.slots.is_empty() && conn.unsent_bytes() == 0 && conn.unparsed_bytes() == 0;
                (quiet && now.duration_since(conn.last_command_at) > timeout)
                    .then_some((index as u32, conn.gen))
            })
            .collect();
        for key in idle {
            tracing::debug!(
                shard = self.id.0,
                "closing a client idle for over {timeout_secs} s"
            );
            self.close_conn(key);
        }
    }

    /// `AUTH [username] password` against `--requirepass` ([`check_credentials`]).
    pub(super) fn auth(&mut self, key: (u32, u32), username: Option<&[u8]>, password: &[u8]) {
        let checked = check_credentials(
            username,
            password,
            self.config().access.requirepass.as_deref(),
        );
        let mut reply = Vec::new();
        match checked {
            Ok(()) => {
                if let Some(conn) = self.conn_mut(key) {
                    conn.authenticated = true;
                }
                reply.extend_from_slice(b"+OK\r\n");
            }
            Err(line) => resp::error(&mut reply, line),
        }
        self.push_ready(key, Reply::Encoded(reply));
    }

    /// `CLIENT ...`. `CLIENT LIST` asks every shard for its connections' lines.
    pub(super) fn client(
        &mut self,
        key: (u32, u32),
        sub: ClientSub<'_>,
    ) -> Result<(), super::exec::Wait> {
        if let ClientSub::List { any: true } = sub {
            let ops = vec![Op::ClientList; self.shards];
            return self.scatter(key, Reply::ClientLines(Vec::new()), &ops);
        }
        if let ClientSub::Kill(filter) = sub {
            return self.client_kill(key, filter);
        }
        let mut reply = Vec::new();
        let Some(conn) = self.conn_mut(key) else {
            return Ok(());
        };
        let proto = conn.proto;
        match sub {
            ClientSub::SetName(name) => {
                conn.name = (!name.is_empty()).then(|| name.to_vec());
                reply.extend_from_slice(b"+OK\r\n");
            }
            ClientSub::GetName => match &conn.name {
                Some(name) => resp::bulk(&mut reply, name),
                None => resp3::null(&mut reply, proto),
            },
            ClientSub::Id => resp::integer(&mut reply, conn.id as i64),
            ClientSub::SetInfo => reply.extend_from_slice(b"+OK\r\n"),
            ClientSub::List { .. } => resp3::verbatim(&mut reply, proto, b"txt", b""),
            ClientSub::Info => {
                let line = client_line(conn);
                resp3::verbatim(&mut reply, proto, b"txt", &line);
            }
            ClientSub::NoEvict(on) => {
                conn.no_evict = on;
                reply.extend_from_slice(b"+OK\r\n");
            }
            // As Redis: `ON` answers `+OK`; `OFF` and `SKIP` answer nothing themselves
            // (`push_slot` marks this reply and the ones they silence).
            ClientSub::Reply(ReplyMode::On) => {
                conn.reply_sending = ReplySending::On;
                reply.extend_from_slice(b"+OK\r\n");
            }
            ClientSub::Reply(ReplyMode::Off) => conn.reply_sending = ReplySending::Off,
            ClientSub::Reply(ReplyMode::Skip) => {
                if conn.reply_sending != ReplySending::Off {
                    conn.reply_sending = ReplySending::SkipNext;
                }
            }
            ClientSub::Kill(_) => unreachable!("handled above"),
        }
        self.push_ready(key, Reply::Encoded(reply));
        Ok(())
    }

    /// `CLIENT KILL`: every shard closes its matching clients; this client, if it
    /// matches and `SKIPME no`, is closed once its reply is sent.
    fn client_kill(
        &mut self,
        key: (u32, u32),
        filter: KillFilter,
    ) -> Result<(), super::exec::Wait> {
        let Some(conn) = self.conn(key) else {
            return Ok(());
        };
        let (addr, laddr) = addr_strings(conn);
        let me = conn.id;
        let kills_me =
            !filter.skip_me && filter.matches(me, &addr, &laddr, conn.accepted.elapsed().as_secs());
        let reply = Reply::Killed {
            old_form: filter.old_form,
            count: i64::from(kills_me),
        };
        let ops = vec![
            Op::ClientKill {
                filter,
                skip_id: me,
            };
            self.shards
        ];
        self.scatter(key, reply, &ops)?;
        if kills_me {
            if let Some(conn) = self.conn_mut(key) {
                conn.close_after_flush = true;
            }
        }
        Ok(())
    }

    /// Closes this shard's clients that match `filter`, but client `skip_id`; returns how
    /// many as an [`OpResult::Int`].
    pub(super) fn kill_clients(&mut self, filter: &KillFilter, skip_id: u64) -> OpResult {
        let victims: Vec<(u32, u32)> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(index, conn)| {
                let conn = conn.as_ref()?;
                let (addr, laddr) = addr_strings(conn);
                let age_secs = conn.accepted.elapsed().as_secs();
                (conn.id != skip_id && filter.matches(conn.id, &addr, &laddr, age_secs))
                    .then_some((index as u32, conn.gen))
            })
            .collect();
        for &victim in &victims {
            tracing::debug!(shard = self.id.0, "CLIENT KILL closes a client");
            self.close_conn(victim);
        }
        OpResult::Int(victims.len() as i64)
    }

    /// The `CLIENT LIST` lines of this shard's connections (one [`OpResult::Keys`] entry
    /// each, ending in `\n`).
    pub(super) fn client_lines(&self) -> OpResult {
        OpResult::Keys {
            next_cursor: 0,
            keys: self.conns.iter().flatten().map(client_line).collect(),
        }
    }
}

/// The client's address and the server address it connected to, as `CLIENT LIST`
/// prints them (empty if the socket could not tell).
fn addr_strings(conn: &Conn) -> (String, String) {
    match conn.addrs {
        Some((peer, local)) => (peer.to_string(), local.to_string()),
        None => (String::new(), String::new()),
    }
}

/// One connection's `CLIENT LIST` line, `\n`-terminated, as Redis 7.0 prints it.
fn client_line(conn: &Conn) -> Vec<u8> {
    let (addr, laddr) = addr_strings(conn);
    // Redis's letters, in its order: `x` in MULTI, `e` no-evict, `N` for none.
    let mut flags = String::new();
    if conn.transaction.is_some() {
        flags.push('x');
    }
    if conn.no_evict {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let multi = conn
        .transaction
        .as_ref()
        .map_or(-1, |t| t.queued_count() as i64);
    let name = conn
        .name
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let unsent = conn.unsent_bytes();
    let output_bytes = unsent + conn.slot_bytes;
    let rbs = conn.rbuf.capacity_bytes();
    let events = if unsent > 0 { "rw" } else { "r" };
    let resp = match conn.proto {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    format!(
        "id={} addr={addr} laddr={laddr} fd={} name={name} age={} idle={} flags={flags} db=0 sub=0 psub=0 ssub=0 multi={multi} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs={rbs} rbp=0 obl={} oll={} omem={} tot-mem={} events={events} cmd={} user=default redir=-1 resp={resp}\n",
        conn.id,
        conn.stream.as_raw_fd(),
        conn.accepted.elapsed().as_secs(),
        conn.last_command_at.elapsed().as_secs(),
        conn.unparsed_bytes(),
        unsent,
        conn.slots.len(),
        output_bytes,
        rbs + conn.wbuf.capacity() + conn.slot_bytes,
        conn.last_command,
    )
    .into_bytes()
}

/// The text of `CLIENT LIST` from every shard's lines: sorted by client id, as Redis
/// lists its clients in the order they connected.
pub(super) fn client_list_text(mut lines: Vec<Vec<u8>>) -> Vec<u8> {
    lines.sort_by_key(|line| line_client_id(line));
    lines.concat()
}

/// The `id=` field at the start of a `CLIENT LIST` line.
fn line_client_id(line: &[u8]) -> u64 {
    let digits = line.strip_prefix(b"id=").unwrap_or_default();
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_list_is_sorted_by_id() {
        let text = client_list_text(vec![
            b"id=12 addr=b\n".to_vec(),
            b"id=3 addr=a\n".to_vec(),
            b"id=100 addr=c\n".to_vec(),
        ]);
        assert_eq!(text, b"id=3 addr=a\nid=12 addr=b\nid=100 addr=c\n");
    }
}
