//! `MULTI` / `EXEC` / `DISCARD`: queueing a transaction, and running it on one shard or
//! across shards.
//!
//! Between `MULTI` and `EXEC` a connection's commands are checked and queued (`+QUEUED`),
//! as in Redis 7.0's `multi.c`: a command that cannot parse (unknown, wrong arity, a bad
//! argument) gets its error and marks the transaction, whose `EXEC` then answers
//! `-EXECABORT Transaction discarded because of previous errors.` and runs nothing.
//!
//! Time-series commands on one series (`TS.CREATE`, `TS.ADD`, `TS.MADD`, `TS.RANGE`, ...)
//! may be queued. Across shards, those that create or alter a series or write samples
//! (`TS.CREATE`, `TS.ALTER`, `TS.ADD`, `TS.MADD`, `TS.INCRBY`, `TS.DECRBY`) and the reads
//! (`TS.GET`, `TS.RANGE`, `TS.REVRANGE`, `TS.INFO`) run like string ops; an `EXEC` whose
//! keys span shards and that holds `TS.DEL` runs nothing and answers an error naming it, and a
//! sample write to a series with a compaction rule gets an error inside the reply
//! ([`crate::timeseries::undo`]). Label-filtered ones (`TS.MGET`, `TS.MRANGE`,
//! `TS.QUERYINDEX`) and rules are refused when queued.
//!
//! `EXEC` of a transaction whose keys all live on one shard sends it to that shard as one
//! [`Op::Batch`], which that shard runs in one turn of its loop: no other request runs in
//! between, so no client sees part of it. Its writes join the same WAL group commit, and
//! the `EXEC` reply waits for the fdatasync that covers the last of them, as a `SET`'s
//! does. A command that fails at run time (`INCR` of a non-number) gets its error inside
//! the `EXEC` reply and the others still run, as in Redis.
//!
//! A transaction whose keys (or watched keys) live on several shards runs as a
//! transaction across shards ([`super::txn`]): locked, run, and committed as one unit on
//! all of them; an `MSETNX` or `RENAME` whose own keys span shards takes two runs of it in
//! its place ([`super::txn::Program`]). Commands over the
//! whole key space (`DBSIZE`, `KEYS`, `SCAN`, `RANDOMKEY`, `INFO`, `CLIENT LIST`) and
//! connection-changing ones (`HELLO`, `CLIENT`, `CONFIG`, `COMMAND`, `SHUTDOWN`) are
//! refused when queued, and the transaction is aborted; `WAIT` (0) and `TIME` are
//! answered by the connection's shard, as in Redis.

use super::conn::{Reply, Slot};
use super::exec::Wait;
use super::mesh::{shard_of, Op, OwnedOp};
use super::txn::{Plan, Program, Unit};
use super::Shard;
use crate::command::{self, Command, CommandKind, ServerCommand};
use crate::resp;

/// The commands a connection queued since `MULTI`.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// Each queued request's arguments, name first.
    queued: Vec<Vec<Vec<u8>>>,
    /// A queued command was refused: `EXEC` aborts.
    aborted: bool,
}

impl Transaction {
    /// How many commands are queued (`CLIENT LIST` `multi=`).
    pub(crate) fn queued_count(&self) -> usize {
        self.queued.len()
    }
}

impl Shard {
    /// Whether `key`'s connection is between `MULTI` and `EXEC`/`DISCARD`.
    pub(super) fn in_transaction(&self, key: (u32, u32)) -> bool {
        self.conn(key).is_some_and(|c| c.transaction.is_some())
    }

    /// Queues a request of a connection in a transaction, replying `+QUEUED` or the
    /// error that aborts it. Returns false for the requests that run at once instead:
    /// `EXEC`, `DISCARD`, `MULTI` (an error, not queued) and `QUIT`.
    pub(super) fn queue_in_transaction(
        &mut self,
        key: (u32, u32),
        args: &[&[u8]],
        parsed: &Result<Command<'_>, String>,
    ) -> bool {
        let checked = match parsed {
            // As in Redis, WATCH inside MULTI runs at once (and is refused).
            Ok(
                Command::Exec
                | Command::Discard
                | Command::Multi
                | Command::Quit
                | Command::Watch(_),
            ) => return false,
            Ok(command) => self.check_queueable(command),
            Err(message) => Err(message.clone()),
        };
        let Some(conn) = self.conn_mut(key) else {
            return true;
        };
        let transaction = conn.transaction.get_or_insert_with(Default::default);
        let reply = match checked {
            Ok(()) => {
                transaction
                    .queued
                    .push(args.iter().map(|a| a.to_vec()).collect());
                Reply::Static(b"+QUEUED\r\n")
            }
            Err(message) => {
                transaction.aborted = true;
                let mut reply = Vec::new();
                resp::error(&mut reply, &message);
                Reply::Encoded(reply)
            }
        };
        self.push_ready(key, reply);
        true
    }

    /// Whether a command may be queued, or why not.
    fn check_queueable(&self, command: &Command<'_>) -> Result<(), String> {
        if let Command::Series(kind, _) = command {
            return if queueable_series(*kind) {
                Ok(())
            } else {
                Err("ERR this command is not allowed inside MULTI in tskv (label-filtered time-series commands and compaction rules are not queued)".into())
            };
        }
        if plan(command).is_none() {
            return Err("ERR this command is not allowed inside MULTI in tskv (commands over the whole key space, time-series and connection commands are not queued)".into());
        }
        Ok(())
    }

    /// `MULTI`.
    pub(super) fn multi(&mut self, key: (u32, u32)) {
        let Some(conn) = self.conn_mut(key) else {
            return;
        };
        let reply = if conn.transaction.is_some() {
            error_reply("ERR MULTI calls can not be nested")
        } else {
            conn.transaction = Some(Transaction::default());
            Reply::Static(b"+OK\r\n")
        };
        self.push_ready(key, reply);
    }

    /// `DISCARD`: ends the transaction and the connection's watches.
    pub(super) fn discard(&mut self, key: (u32, u32)) -> Result<(), Wait> {
        let Some(conn) = self.conn_mut(key) else {
            return Ok(());
        };
        if conn.transaction.is_none() {
            self.push_ready(key, error_reply("ERR DISCARD without MULTI"));
            return Ok(());
        }
        self.unwatch(key)?;
        if let Some(conn) = self.conn_mut(key) {
            conn.transaction = None;
        }
        Ok(())
    }

    /// `EXEC`: runs the queued commands as one batch on their shard. The transaction is
    /// kept until the batch is sent, so a request that must wait is retried whole.
    pub(super) fn exec(&mut self, key: (u32, u32)) -> Result<(), Wait> {
        let Some(conn) = self.conn_mut(key) else {
            return Ok(());
        };
        let Some(transaction) = &conn.transaction else {
            self.push_ready(key, error_reply("ERR EXEC without MULTI"));
            return Ok(());
        };
        if transaction.aborted {
            let (client, shards) = (conn.id, std::mem::take(&mut conn.watch_shards));
            for shard in shards {
                self.forget_watches(key, client, shard);
            }
            if let Some(conn) = self.conn_mut(key) {
                conn.transaction = None;
            }
            let abort = "EXECABORT Transaction discarded because of previous errors.";
            self.push_ready(key, error_reply(abort));
            return Ok(());
        }
        let queued = transaction.queued.clone();
        let watch_shards = conn.watch_shards.clone();
        let client = conn.id;
        let proto = self.proto(key);
        let mut replies = Vec::with_capacity(queued.len());
        let mut ops = Vec::new();
        let mut series_refused = None;
        for args in &queued {
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let command = command::parse(&args)
                .1
                .expect("a queued command parsed when it was queued");
            if let Command::Series(kind, _) = &command {
                if !series_across_shards(*kind) {
                    series_refused = series_refused.or(Some(*kind));
                }
            }
            let (reply, command_ops) =
                owned_plan(&command, proto).expect("queued commands have a plan");
            replies.push((Slot::ready(reply), command_ops.len()));
            ops.extend(command_ops);
        }
        let borrowed: Vec<Op<&[u8]>> = ops.iter().map(|op| op.as_borrowed()).collect();
        let spans_shards = self.spans_shards(&borrowed, &watch_shards);
        if let (true, Some(kind)) = (spans_shards, series_refused) {
            // Nothing ran: the transaction ends as an aborted one does.
            for shard in watch_shards {
                self.forget_watches(key, client, shard);
            }
            if let Some(conn) = self.conn_mut(key) {
                conn.transaction = None;
                conn.watch_shards.clear();
            }
            self.push_ready(key, error_reply(&series_across_shards_error(kind)));
            return Ok(());
        }
        if spans_shards {
            let keys = borrowed
                .iter()
                .flat_map(|op| op.user_keys())
                .map(Into::into)
                .collect();
            let watch = (!watch_shards.is_empty()).then_some((watch_shards, client));
            let program = self.exec_program(&borrowed);
            let first = program.first_run();
            let reply = Reply::Exec(replies);
            self.begin_tx(key, reply, Plan::Exec(program), first, keys, watch)?;
        } else {
            let shard = borrowed
                .iter()
                .flat_map(|op| op.user_keys())
                .map(|k| shard_of(k, self.shards))
                .chain(watch_shards.iter().copied())
                .next()
                .unwrap_or(self.id);
            let watch = (!watch_shards.is_empty()).then_some(client);
            let batch = Op::Batch {
                shard,
                ops: borrowed,
                watch,
            };
            self.scatter(key, Reply::Exec(replies), &[batch])?;
        }
        if let Some(conn) = self.conn_mut(key) {
            conn.transaction = None;
            conn.watch_shards.clear();
        }
        Ok(())
    }

    /// The program of a transaction across shards over the queued `ops`: consecutive
    /// ordinary ops share a run; an `MSETNX` or `RENAME` whose keys span shards takes two
    /// runs in its place ([`super::txn::Unit`]).
    fn exec_program(&self, ops: &[Op<&[u8]>]) -> Program {
        let mut units = Vec::new();
        let mut plain = Vec::new();
        for (index, op) in ops.iter().enumerate() {
            let index = index as u32;
            let two_runs = match op {
                Op::Strings(op) if super::strings::keys_span_shards(op, self.shards) => {
                    super::strings::two_run_plan(op)
                }
                _ => None,
            };
            match two_runs {
                Some(plan) => {
                    if !plain.is_empty() {
                        units.push(Unit::Ops(std::mem::take(&mut plain)));
                    }
                    units.push(Unit::TwoRuns { index, plan });
                }
                None => plain.push((index, op.to_owned_op())),
            }
        }
        if !plain.is_empty() {
            units.push(Unit::Ops(plain));
        }
        Program::new(units, ops.len())
    }

    /// The keys `EXEC` will read, for its block reads before it runs.
    pub(super) fn transaction_keys(&self, key: (u32, u32)) -> Vec<Vec<u8>> {
        let Some(transaction) = self.conn(key).and_then(|c| c.transaction.as_ref()) else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        for args in &transaction.queued {
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            if let (_, Ok(command)) = command::parse(&args) {
                if let Some((_, ops)) = owned_plan(&command, crate::resp::Protocol::Resp2) {
                    let ops = ops.iter().map(|op| op.as_borrowed());
                    keys.extend(ops.filter_map(|op| op_key(&op).map(<[u8]>::to_vec)));
                }
            }
        }
        keys
    }
}

/// Whether a queued time-series command may run in a transaction across shards: those
/// that create or alter a series or write samples of one (their before-images are undone
/// series by series and sample by sample, [`crate::timeseries::undo`]) and the reads.
/// Deleting samples by range (`TS.DEL`) is not undone across shards.
fn series_across_shards(kind: CommandKind) -> bool {
    kind != CommandKind::TsDel
}

/// Why an `EXEC` whose keys span shards and that holds `kind` runs nothing.
fn series_across_shards_error(kind: CommandKind) -> String {
    format!(
        "ERR tskv cannot run {} in a transaction across shards (TS.DEL needs every key of the transaction on one shard)",
        kind.name().to_ascii_uppercase()
    )
}

/// The time-series commands that may be queued: those on one series (`TS.MADD`: one per
/// sample). Label-filtered ones go to every shard, and rules may take a second round to
/// another shard, so those are refused, as `KEYS` is.
fn queueable_series(kind: CommandKind) -> bool {
    !kind.is_multi_series()
        && !matches!(kind, CommandKind::TsCreateRule | CommandKind::TsDeleteRule)
}

/// [`plan`] with owned ops, and the time-series commands too: each becomes the request
/// [`Shard::series_command`] would send (`TS.MADD` one per sample, answered in parts),
/// encoded for `proto`.
fn owned_plan(
    command: &Command<'_>,
    proto: crate::resp::Protocol,
) -> Option<(Reply, Vec<OwnedOp>)> {
    let Command::Series(kind, args) = command else {
        let (reply, ops) = plan(command)?;
        return Some((reply, ops.iter().map(Op::to_owned_op).collect()));
    };
    if !queueable_series(*kind) || args.is_empty() {
        return None;
    }
    let name = kind.name().as_bytes();
    let series = |key: &[u8], words: &[&[u8]]| OwnedOp::Series {
        key: key.into(),
        request: crate::timeseries::exec::encode_request(proto, words).into(),
        writes: kind.is_write(),
    };
    if *kind == CommandKind::TsMAdd {
        let ops: Vec<OwnedOp> = args
            .chunks_exact(3)
            .map(|s| series(s[0], &[name, s[0], s[1], s[2]]))
            .collect();
        return Some((Reply::Parts(vec![None; ops.len()]), ops));
    }
    let mut words = Vec::with_capacity(args.len() + 1);
    words.push(name);
    words.extend_from_slice(args);
    Some((Reply::Single(None), vec![series(args[0], &words)]))
}

fn error_reply(message: &str) -> Reply {
    let mut reply = Vec::new();
    resp::error(&mut reply, message);
    Reply::Encoded(reply)
}

/// The key a single-key op touches.
fn op_key<'k>(op: &Op<&'k [u8]>) -> Option<&'k [u8]> {
    match op {
        Op::Get(k)
        | Op::Exists(k)
        | Op::KeyType(k)
        | Op::Del(k)
        | Op::Set { key: k, .. }
        | Op::Series { key: k, .. } => Some(k),
        Op::Strings(op) => op.keys().first().copied(),
        _ => None,
    }
}

/// How a command runs inside `EXEC`: its reply, and the single-key ops whose results
/// fill it, in order (none for a reply known at once). `None` for a command that may not
/// be queued.
fn plan<'a>(command: &Command<'a>) -> Option<(Reply, Vec<Op<&'a [u8]>>)> {
    use crate::command::SetCondition;
    let plan = match command {
        Command::Ping(None) => (Reply::Static(b"+PONG\r\n"), Vec::new()),
        Command::Ping(Some(msg)) | Command::Echo(msg) => {
            let mut reply = Vec::new();
            resp::bulk(&mut reply, msg);
            (Reply::Encoded(reply), Vec::new())
        }
        Command::Select | Command::Unwatch => (Reply::Static(b"+OK\r\n"), Vec::new()),
        // As Redis inside MULTI: `WAIT` answers at once, `TIME` is read when EXEC runs.
        Command::Server(ServerCommand::Wait) => (Reply::Static(b":0\r\n"), Vec::new()),
        Command::Server(ServerCommand::Time) => {
            (Reply::Encoded(super::inspect::time_reply()), Vec::new())
        }
        Command::Set {
            key,
            value,
            condition,
        } => (
            Reply::Single(None),
            vec![Op::Set {
                key: *key,
                value: *value,
                condition: *condition,
            }],
        ),
        Command::Get(k) => (Reply::Single(None), vec![Op::Get(*k)]),
        Command::Type(k) => (Reply::Single(None), vec![Op::KeyType(*k)]),
        Command::Del(keys) => (Reply::Sum(0), keys.iter().map(|k| Op::Del(*k)).collect()),
        Command::Exists(keys) => (Reply::Sum(0), keys.iter().map(|k| Op::Exists(*k)).collect()),
        Command::MGet(keys) => (
            Reply::Values(vec![None; keys.len()]),
            keys.iter().map(|k| Op::Get(*k)).collect(),
        ),
        Command::MSet(pairs) => (
            Reply::AllOk,
            pairs
                .iter()
                .map(|(k, v)| Op::Set {
                    key: *k,
                    value: *v,
                    condition: SetCondition::Always,
                })
                .collect(),
        ),
        Command::Strings(op) => (Reply::Single(None), vec![Op::Strings(op.clone())]),
        _ => return None,
    };
    Some(plan)
}
