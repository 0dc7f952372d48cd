//! Executing requests: parse each of a connection's requests into a command, refuse or
//! defer it (authentication, transactions, backpressure, stalls, block reads), and run it,
//! through [`super::ops`] for the parts that touch keys, queueing its reply slot.

use super::conn::{Reply, Slot};
use super::mesh::{Op, ShardId};
use super::metrics::ShardMetrics;
use super::{fetch, scan, Shard};
use crate::command::{self, Command, CommandKind, SetCondition};
use crate::config::FsyncMode;
use crate::resp::{self, Parsed};

/// What processing a connection's buffered requests ended with.
pub(super) enum Progress {
    /// Every complete request was executed.
    Done,
    /// Stopped before a request that must wait (backpressure, full queue, write stall).
    Blocked,
    /// Stopped before a request whose SSTable blocks are being read through the ring; the
    /// completion puts the connection back on the ready list.
    Fetching,
    /// The connection was closed.
    Closed,
}

/// Why a request cannot run now.
pub(super) enum Wait {
    /// The connection's unsent replies passed the cap.
    Output,
    /// A peer's queue is at its in-flight cap, or the memtable is stalled.
    Capacity,
    /// Block reads were submitted for the keys it reads.
    Fetch,
    /// A transaction across shards holds a key it needs, or the connection's own
    /// transaction has not replied yet ([`super::txn`]).
    Locked,
}

impl Shard {
    /// Executes the complete requests buffered on `key`'s connection, in order.
    pub(super) fn process_requests(&mut self, key: (u32, u32)) -> Progress {
        let Some(conn) = self.conn_mut(key) else {
            return Progress::Closed;
        };
        let mut rbuf = std::mem::take(&mut conn.rbuf);
        let Some(mut parser) = conn.parser.take() else {
            return Progress::Closed;
        };
        let mut args = std::mem::take(&mut self.args);
        let mut slices_storage = std::mem::take(&mut self.arg_slices);
        let mut progress = Progress::Done;
        let mut protocol_error = None;
        loop {
            let Some(conn) = self.conn(key) else {
                progress = Progress::Closed;
                break;
            };
            if conn.close_after_flush {
                rbuf.clear();
                break;
            }
            let data = rbuf.data();
            if data.is_empty() {
                break;
            }
            let consumed = match parser.parse(data, &mut args) {
                Ok(Parsed::Incomplete) => break,
                Ok(Parsed::Request { consumed }) => consumed,
                Err(e) => {
                    protocol_error = Some(format!("ERR {e}"));
                    rbuf.clear();
                    break;
                }
            };
            if args.is_empty() {
                rbuf.consume(consumed);
                continue;
            }
            let mut slices = recycle(slices_storage);
            slices.extend(parser.args(data, &args));
            let executed = self.execute(key, &slices);
            slices_storage = recycle(slices);
            match executed {
                Ok(()) => rbuf.consume(consumed),
                Err(wait) => {
                    if let Wait::Output = wait {
                        ShardMetrics::add(&self.metrics().backpressure_events, 1);
                    }
                    // The same request is parsed again when retried.
                    parser.reset();
                    progress = match wait {
                        Wait::Fetch => Progress::Fetching,
                        Wait::Output | Wait::Capacity | Wait::Locked => Progress::Blocked,
                    };
                    break;
                }
            }
        }
        self.args = args;
        self.arg_slices = slices_storage;
        let Some(conn) = self.conn_mut(key) else {
            return Progress::Closed;
        };
        conn.rbuf = rbuf;
        conn.parser = Some(parser);
        if let Some(message) = protocol_error {
            self.protocol_error(key, &message);
            return Progress::Done;
        }
        if matches!(progress, Progress::Blocked) {
            conn.blocked = true;
            self.blocked.push(key);
        }
        progress
    }

    /// Executes one request, or says why it must wait (nothing was done then).
    fn execute(&mut self, key: (u32, u32), args: &[&[u8]]) -> Result<(), Wait> {
        let started = std::time::Instant::now();
        let output_max = self.config().client_output_bytes_max;
        let conn = self.conn(key).expect("caller checked");
        if conn.unsent_bytes() + conn.slot_bytes > output_max || conn.slots.len() > output_max / 16
        {
            return Err(Wait::Output);
        }
        if conn.tx_in_flight {
            // Nothing may overtake the connection's transaction across shards.
            return Err(Wait::Locked);
        }
        let (kind, parsed) = command::parse(args);
        if let Some(conn) = self.conn_mut(key) {
            conn.last_command_at = std::time::Instant::now();
            conn.last_command = match &parsed {
                Ok(Command::Client(sub)) => sub.full_name(),
                _ => kind.map_or("NULL", CommandKind::name),
            };
        }
        // As Redis: an unknown command or a wrong argument count is reported first, then a
        // client that has not authenticated gets NOAUTH for anything but AUTH/HELLO/QUIT.
        let needs_auth =
            kind.is_some_and(|k| !k.allowed_before_auth() && k.accepts_arg_count(args.len()));
        if needs_auth && !self.conn(key).is_some_and(|c| c.authenticated) {
            let metrics = self.metrics();
            ShardMetrics::add(&metrics.total_commands, 1);
            if let Some(kind) = kind {
                ShardMetrics::add(&metrics.command_rejected[kind as usize], 1);
            }
            self.push_ready(key, Reply::Static(b"-NOAUTH Authentication required.\r\n"));
            return Ok(());
        }
        if self.in_transaction(key) && self.queue_in_transaction(key, args, &parsed) {
            ShardMetrics::add(&self.metrics().total_commands, 1);
            return Ok(());
        }
        let metrics = self.metrics();
        let command = match parsed {
            Ok(command) => command,
            Err(message) => {
                ShardMetrics::add(&metrics.total_commands, 1);
                ShardMetrics::add(&metrics.command_errors, 1);
                if let Some(kind) = kind {
                    ShardMetrics::add(&metrics.command_rejected[kind as usize], 1);
                }
                let mut reply = Vec::new();
                resp::error(&mut reply, &message);
                self.push_ready(key, Reply::Encoded(reply));
                return Ok(());
            }
        };
        if kind.is_some_and(|k| self.refused_reserved_key(key, k, args)) {
            return Ok(());
        }
        // A poisoned shard refuses writes where they execute (`run_op`), so that a write
        // to a key of a healthy shard still succeeds through this shard's connections.
        if kind.is_some_and(CommandKind::is_write)
            && self.poisoned.is_none()
            && !self.store.can_accept_writes()
        {
            self.store.note_write_stall();
            return Err(Wait::Capacity);
        }
        // A transaction's writes wait out a write stall like any write (its runtime
        // errors, a refusing shard's included, are per command inside the EXEC reply).
        if matches!(command, Command::Exec) && !self.store.can_accept_writes() {
            self.store.note_write_stall();
            return Err(Wait::Capacity);
        }
        self.fetch_blocks(key, &command)?;
        self.fetches.running = Some(fetch::Waiter::Conn(key));
        self.pin_series_blocks(fetch::Waiter::Conn(key));
        let executed = self.execute_command(key, command);
        self.unpin_series_blocks();
        self.fetches.running = None;
        executed?;
        ShardMetrics::add(&self.metrics().total_commands, 1);
        if let Some(kind) = kind {
            // The command's own time on the loop, as Redis's commandstats measure it: a
            // request that waited (for blocks, a peer or room) counts its last run only.
            let us = started.elapsed().as_micros() as u64;
            let metrics = self.metrics();
            ShardMetrics::add(&metrics.command_calls[kind as usize], 1);
            ShardMetrics::add(&metrics.command_usec[kind as usize], us);
            metrics.latencies().record_command(kind, us);
            self.slowlog_record(key, kind, args, us);
        }
        Ok(())
    }

    /// Submits the block reads the command's local lookups need, unless its reads just
    /// completed (then it runs now, reading anything evicted meanwhile itself).
    fn fetch_blocks(&mut self, key: (u32, u32), command: &Command<'_>) -> Result<(), Wait> {
        let id = self.id;
        let conn = self.conn_mut(key).expect("caller checked");
        let reads_done = std::mem::take(&mut conn.block_reads_done);
        if let Some(op) = walk_op(command, id) {
            // A walk goes on where it stopped, whether or not its reads just completed.
            let reads = self.plan_walk(&op, fetch::Waiter::Conn(key));
            if reads == 0 {
                return Ok(());
            }
            let conn = self.conn_mut(key).expect("caller checked");
            conn.block_reads_pending = reads;
            return Err(Wait::Fetch);
        }
        // A time-series command goes on with its planning, whether or not its reads just
        // completed ([`super::fetch_ts`]).
        if let Some(reads) = self.plan_series_command(command, fetch::Waiter::Conn(key)) {
            if reads == 0 {
                return Ok(());
            }
            let conn = self.conn_mut(key).expect("caller checked");
            conn.block_reads_pending = reads;
            return Err(Wait::Fetch);
        }
        if reads_done {
            return Ok(());
        }
        let conn = self.conn_mut(key).expect("caller checked");
        let conn_id = conn.id;
        let (id, shards) = (self.id, self.shards);
        let (transaction_keys, watched) = match command {
            Command::Exec => (self.transaction_keys(key), self.watched_keys(Some(conn_id))),
            _ => (Vec::new(), Vec::new()),
        };
        let keys = read_keys(command)
            .into_iter()
            .chain(transaction_keys.iter().map(Vec::as_slice))
            .chain(watched.iter().map(|k| &**k))
            .filter(|k| fetch::is_local(k, id, shards));
        let keys: smallvec::SmallVec<[&[u8]; 8]> = keys.collect();
        if keys.is_empty() {
            return Ok(());
        }
        let reads = self.fetch_for(keys, fetch::Waiter::Conn(key));
        if reads == 0 {
            return Ok(());
        }
        let conn = self.conn_mut(key).expect("caller checked");
        conn.block_reads_pending = reads;
        Err(Wait::Fetch)
    }

    pub(super) fn push_ready(&mut self, key: (u32, u32), reply: Reply) {
        let ack = self.ack_seq();
        if let Some(conn) = self.conn_mut(key) {
            conn.push_slot(Slot::ready(reply), ack);
        }
        self.mark_dirty(key);
    }

    fn execute_command(&mut self, key: (u32, u32), command: Command<'_>) -> Result<(), Wait> {
        match command {
            Command::Ping(None) => self.push_ready(key, Reply::Static(b"+PONG\r\n")),
            Command::Ping(Some(msg)) | Command::Echo(msg) => {
                let mut reply = Vec::new();
                resp::bulk(&mut reply, msg);
                self.push_ready(key, Reply::Encoded(reply));
            }
            Command::Quit => {
                self.push_ready(key, Reply::Static(b"+OK\r\n"));
                if let Some(conn) = self.conn_mut(key) {
                    conn.close_after_flush = true;
                }
            }
            Command::Hello(args) => self.hello(key, args),
            Command::Select => self.push_ready(key, Reply::Static(b"+OK\r\n")),
            Command::Client(sub) => self.client(key, sub)?,
            Command::Command(sub) => {
                let mut reply = Vec::new();
                super::commands::command_reply(&mut reply, self.proto(key), &sub);
                self.push_ready(key, Reply::Encoded(reply));
            }
            Command::ConfigGet(patterns) => {
                let mut reply = Vec::new();
                super::info::config_get(&mut reply, self.proto(key), self.config(), &patterns);
                self.push_ready(key, Reply::Encoded(reply));
            }
            Command::Info(sections) => self.info(key, &sections)?,
            Command::Shutdown => {
                tracing::info!(shard = self.id.0, "SHUTDOWN requested by a client");
                self.shared.shutdown_requested.notify();
                self.push_ready(key, Reply::Static(b"+OK\r\n"));
            }
            Command::Set {
                key: k,
                value,
                condition,
            } => {
                let op = Op::Set {
                    key: k,
                    value,
                    condition,
                };
                self.scatter(key, Reply::Single(None), &[op])?;
            }
            Command::Get(k) => self.scatter(key, Reply::Single(None), &[Op::Get(k)])?,
            Command::Del(keys) => {
                let ops: Vec<_> = keys.iter().map(|k| Op::Del(*k)).collect();
                self.scatter(key, Reply::Sum(0), &ops)?;
            }
            Command::Exists(keys) => {
                let ops: Vec<_> = keys.iter().map(|k| Op::Exists(*k)).collect();
                self.scatter(key, Reply::Sum(0), &ops)?;
            }
            Command::MGet(keys) => {
                let ops: Vec<_> = keys.iter().map(|k| Op::Get(*k)).collect();
                self.scatter(key, Reply::Values(vec![None; keys.len()]), &ops)?;
            }
            Command::MSet(pairs) => {
                let ops: Vec<_> = pairs
                    .iter()
                    .map(|(k, v)| Op::Set {
                        key: *k,
                        value: *v,
                        condition: SetCondition::Always,
                    })
                    .collect();
                self.scatter(key, Reply::AllOk, &ops)?;
            }
            Command::DbSize => {
                let ops = vec![Op::DbSize; self.shards];
                self.scatter(key, Reply::Sum(0), &ops)?;
            }
            Command::Scan(args) => {
                let shard = scan::cursor_shard(args.cursor);
                if shard.0 >= self.shards {
                    let mut reply = Vec::new();
                    resp::error(&mut reply, "ERR invalid cursor");
                    self.push_ready(key, Reply::Encoded(reply));
                    return Ok(());
                }
                let op = Op::Scan {
                    shard,
                    cursor: args.cursor,
                    count: args.count,
                    pattern: args.pattern,
                    type_name: args.type_name,
                };
                self.scatter(key, Reply::Scan(None), &[op])?;
            }
            Command::Keys(pattern) => {
                let Some(ticket) = super::keys_reply::KeysTicket::take(&self.shared) else {
                    return Err(Wait::Capacity);
                };
                let parts = super::keys_reply::KeysParts {
                    ticket: Some(ticket),
                    ..Default::default()
                };
                let ops = vec![Op::Keys(pattern); self.shards];
                self.scatter(key, Reply::Keys(parts), &ops)?;
            }
            Command::Type(k) => self.series_command(key, CommandKind::Type, &[k])?,
            Command::Series(kind, args) => self.series_command(key, kind, &args)?,
            Command::Strings(op) => self.string_command(key, op)?,
            Command::Multi => self.multi(key),
            Command::Exec => self.exec(key)?,
            Command::Discard => self.discard(key)?,
            Command::Watch(keys) => self.watch(key, &keys)?,
            Command::Unwatch => self.unwatch(key)?,
            Command::Auth { username, password } => self.auth(key, username, password),
            Command::RandomKey => {
                let ops = vec![Op::RandomKey; self.shards];
                self.scatter(key, Reply::RandomKey(Vec::new()), &ops)?;
            }
            Command::Server(command) => self.server_command(key, command)?,
            Command::Admin(command) => self.admin_command(key, command)?,
        }
        Ok(())
    }

    /// The protocol of `key`'s connection.
    pub(super) fn proto(&self, key: (u32, u32)) -> crate::resp::Protocol {
        self.conn(key).map_or_else(Default::default, |c| c.proto)
    }
}

/// The part of a walk command (`SCAN`, `KEYS`, `RANDOMKEY`) that shard `id` runs itself,
/// as [`Shard::scatter`] will build it, or `None` (another command, or a `SCAN` of
/// another shard).
fn walk_op<'c>(command: &Command<'c>, id: ShardId) -> Option<Op<&'c [u8]>> {
    match command {
        Command::Scan(args) if scan::cursor_shard(args.cursor) == id => Some(Op::Scan {
            shard: id,
            cursor: args.cursor,
            count: args.count,
            pattern: args.pattern,
            type_name: args.type_name,
        }),
        Command::Keys(pattern) => Some(Op::Keys(pattern)),
        Command::RandomKey => Some(Op::RandomKey),
        _ => None,
    }
}

/// Empties a vector of borrowed slices and gives its allocation a new lifetime, so one
/// buffer of argument slices serves every request without reallocating.
fn recycle<'b>(mut slices: Vec<&[u8]>) -> Vec<&'b [u8]> {
    slices.clear();
    slices
        .into_iter()
        .map(|_| -> &'b [u8] { unreachable!("cleared") })
        .collect()
}

/// The error reply for a failed read of the store (logged).
pub(super) fn storage_error(e: &crate::base::StoreError) -> String {
    tracing::error!("storage error: {e}");
    format!("ERR storage error: {e}")
}

/// Whether replies wait for fdatasync (for `INFO`).
pub(super) fn ack_mode_name(mode: FsyncMode) -> &'static str {
    match mode {
        FsyncMode::Always => "always",
        FsyncMode::Periodic => "periodic",
        FsyncMode::Never => "never",
    }
}

/// The keys a command looks up before it can answer (blind writes read nothing).
fn read_keys<'c>(command: &'c Command<'_>) -> smallvec::SmallVec<[&'c [u8]; 8]> {
    match command {
        Command::Get(k) | Command::Type(k) => smallvec::smallvec![*k],
        Command::Set { key, condition, .. } if *condition != SetCondition::Always => {
            smallvec::smallvec![*key]
        }
        Command::Del(keys) | Command::Exists(keys) | Command::MGet(keys) => {
            keys.iter().copied().collect()
        }
        Command::Strings(op) => op.keys().into_iter().collect(),
        Command::Series(kind, args) if !kind.is_multi_series() => smallvec::smallvec![args[0]],
        Command::Watch(keys) => keys.iter().copied().collect(),
        Command::Server(command::ServerCommand::Key { key, .. }) => smallvec::smallvec![*key],
        _ => smallvec::SmallVec::new(),
    }
}
