//! The per-core shard: one thread, one edge-triggered epoll loop over its own listening
//! socket (`SO_REUSEPORT`), its connections, its cross-shard queues' waker and its
//! io_uring's completion eventfd.
//!
//! One loop iteration:
//! 1. wait for readiness (or not at all when work is queued);
//! 2. reap io_uring completions: a finished WAL write + fdatasync advances the
//!    acknowledgement point and releases the replies gated on it;
//! 3. drain the cross-shard queues (execute requests, fill replies);
//! 4. read and execute requests of ready connections;
//! 5. group commit: everything written during the iteration becomes one WAL batch, one
//!    write and (with `--fsync always`) one linked fdatasync, submitted while the next
//!    batch gathers; start a memtable flush if one is due;
//! 6. push queued messages to peers and send replies.
//!
//! Who owns what: `admin` runs `SAVE`, `BGSAVE`, `LASTSAVE` and `FLUSHALL` and holds
//! the `SAVE` parts waiting for a flush; `committer` owns the writes in flight through the ring (WAL batches,
//! flushes, periodic fdatasyncs) and the acknowledgement point; [`conn`] is one connection
//! with its buffers and reply slots, [`reply`] the assembly of one reply; `exec` turns a
//! connection's requests into commands (`strings` the string and counter commands,
//! `expiry` deadlines, `client` `HELLO` and `CLIENT`, `multi` queueing transactions and
//! running those on one shard, `txn` transactions across shards (locks, parts, commit),
//! `watch` `WATCH`, `inspect` `TIME`, `WAIT`, `MEMORY` and `OBJECT`, `slowlog` `SLOWLOG`,
//! `commands` `COMMAND`, `dbsize` key counts off the loop, `ts_route` the time-series
//! commands, `ts_rules` compaction rules across shards); `ops` routes each
//! single-key operation to its owning shard and runs those owned here; `fetch` owns the
//! block reads of lookups and the requests waiting on them; `slowdown` the write slowdown
//! that holds WAL batches back while level 0 is deep;
//! [`scan`] the `SCAN` positions; [`keys_cursor`] and [`keys_reply`] the two ends of a
//! streamed `KEYS` reply; [`mesh`] the queues to other shards and `outbox` this
//! shard's side of them (messages held until durable, sent, drained); `conns` the
//! connection table (accepting, servicing within budgets, writing replies). This file is
//! the loop that ties them together.
//!
//! # Invariant: a connection with buffered complete requests and room to reply is always on the ready list
//!
//! Epoll is edge-triggered: bytes already read raise no new event, so a connection that
//! stops being processed with complete requests in its read buffer would wait until its
//! client sends more, which a pipelining client waiting for its replies never does. Each
//! way a connection can stop puts it back in line:
//! - **Read budget** (`conn_reads_per_iteration_max`): every read is followed by an
//!   execution pass, and a connection whose budget ran out with the socket not drained is
//!   listed as ready for the next iteration (`Shard::service`).
//! - **Write stall, output backpressure, full cross-shard window**: the request that cannot
//!   run is left unparsed and the connection goes on the blocked list, which is moved back
//!   to the ready list at the start of every servicing pass; while it is not empty the loop
//!   waits at most 1 ms. A finished flush also releases it at once.
//! - **Cross-shard replies and replies gated on an fdatasync** do not stop execution: later
//!   requests run meanwhile, and the replies are sent when they complete, in order.
//! - **Poisoned shard**: writes are answered with the error at once, nothing waits.
//! - **Block reads** (`fetch`): a request whose lookups need SSTable blocks from disk
//!   stops its connection until the ring has read them; the last completion puts the
//!   connection back on the ready list.

mod admin;
mod client;
mod commands;
mod committer;
pub mod conn;
mod conns;
mod dbsize;
mod drain;
mod exec;
mod expiry;
mod fetch;
mod fetch_ts;
pub(crate) mod info;
mod inspect;
pub mod keys_cursor;
pub mod keys_reply;
pub mod mesh;
pub mod metrics;
mod multi;
mod ops;
mod outbox;
pub mod reply;
pub mod scan;
pub mod scan_walk;
mod slowdown;
mod slowlog;
pub mod stream;
mod strings;
mod ts_latest;
mod ts_route;
mod ts_rules;
mod txn;
mod watch;

use std::collections::VecDeque;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Instant;

use crate::base::SeqNo;
use crate::compaction;
use crate::config::ServerConfig;
use crate::runtime::epoll::{Epoll, Event, Interest};
use crate::runtime::sys::EventFd;
use crate::runtime::uring::{Completion, Ring};
use crate::store::ShardStore;

use conn::Conn;
use mesh::{Links, Message, ShardId, Waker};
use metrics::ShardMetrics;

/// State shared by all shards and the main thread. Only atomics and eventfds: no lock on
/// the data path.
pub struct Shared {
    /// The configuration.
    pub config: ServerConfig,
    /// One waker per shard.
    pub wakers: Vec<Waker>,
    /// One metrics block per shard.
    pub metrics: Vec<ShardMetrics>,
    /// Set when the server is stopping.
    pub stop: AtomicBool,
    /// Set when a shard failed, or the server stops before every shard finished opening:
    /// some peer may never take part in the shutdown handshake (`intake_stopped`) or answer
    /// a request, so a stopping shard waits only for its own WAL writes in flight. Nothing
    /// acknowledged is at risk: an acknowledgement is only sent once its write is durable
    /// (or written, with `--fsync periodic|never`).
    pub peers_may_be_gone: AtomicBool,
    /// Shards that have stopped taking new requests (shutdown phase one).
    pub intake_stopped: AtomicUsize,
    /// Written by a shard that received `SHUTDOWN`; watched by the main thread.
    pub shutdown_requested: EventFd,
    /// The next transaction-across-shards id ([`crate::wal::tx::TxId`]), starting above
    /// every id in the WALs at start-up.
    pub next_tx_id: AtomicU64,
    /// Source of client ids.
    pub next_client_id: AtomicU64,
    /// The next `SLOWLOG` entry id, server-wide.
    pub next_slowlog_id: AtomicU64,
    /// Client connections open across all shards, checked against `maxclients` at accept.
    pub clients: AtomicUsize,
    /// `KEYS` replies under way ([`crate::config::KEYS_REPLIES_MAX`]).
    pub keys_replies: AtomicUsize,
    /// When the server started.
    pub started: Instant,
}

const TOKEN_LISTENER: u64 = 0;
const TOKEN_WAKER: u64 = 1;
const TOKEN_RING: u64 = 2;
const TOKEN_CONN_BASE: u64 = 16;

const TAG_BLOCK_READ: u64 = 6;

/// The ring tag of operation `kind` (a `TAG_*`) of in-flight write `id`.
fn tag_of(kind: u64, id: u64) -> u64 {
    kind | (id << 8)
}

/// Epoll events handled per wait.
const EPOLL_EVENTS_MAX: usize = 1024;
/// io_uring submission queue entries.
const RING_ENTRIES: u32 = 256;

/// One shard thread's state.
pub struct Shard {
    id: ShardId,
    shards: usize,
    shared: Arc<Shared>,
    store: ShardStore,
    epoll: Epoll,
    ring: Ring,
    listener: Option<TcpListener>,
    /// A descriptor held in reserve (on `/dev/null`) and let go when `accept` runs out of
    /// descriptors, so a queued connection can still be taken, told why and closed
    /// instead of waiting for an edge-triggered readiness that never comes again.
    reserve_fd: Option<std::fs::File>,
    /// When idle clients are next looked for (`--timeout`).
    next_idle_sweep: Instant,
    links: Links,
    /// Requests in flight to each peer (sent, reply not yet received).
    in_flight_to: Vec<usize>,
    /// Messages waiting for room in a peer's queue.
    outbox: Vec<VecDeque<Message>>,
    /// Replies to peers waiting for the acknowledgement point, in gate order.
    remote_waiting: VecDeque<(SeqNo, ShardId, Message)>,
    conns: Vec<Option<Conn>>,
    free_conns: Vec<u32>,
    next_gen: u32,
    /// Connections with readable input to process.
    ready: Vec<(u32, u32)>,
    /// Connections blocked on backpressure, a full queue or a write stall.
    blocked: Vec<(u32, u32)>,
    /// Connections with replies gated on the acknowledgement point.
    durable_waiters: Vec<(u32, u32)>,
    /// Connections with unsent bytes.
    dirty: Vec<(u32, u32)>,
    /// The writes in flight through the ring and the acknowledgement point.
    committer: committer::Committer,
    poisoned: Option<String>,
    draining: bool,
    args: Vec<std::ops::Range<usize>>,
    /// Reused storage for the argument slices of one request.
    arg_slices: Vec<&'static [u8]>,
    /// Reused per-peer part counts of one command.
    wanted_scratch: Vec<usize>,
    events: Vec<Event>,
    completions: Vec<Completion>,
    /// Block reads in flight for lookups, and requests from peers waiting on them.
    fetches: fetch::Fetches,
    /// Saved positions of the `SCAN` iterations over this shard's keys.
    scan_positions: scan::ScanPositions,
    /// What this shard keeps in memory about the series it has touched.
    series: crate::timeseries::series::SeriesCache,
    /// Compaction rules across shards: commands waiting for the other shard, buckets
    /// being handed over.
    rule_links: ts_rules::RuleLinks,
    /// The store version whose counters `INFO` shows (weak: it must not pin old files).
    published_version: std::sync::Weak<crate::version::Version>,
    /// The live key count and the last sequence number it was counted at.
    live_keys_counted: Option<(SeqNo, scan::KeyCount)>,
    /// Versions of the keys clients `WATCH` on this shard.
    watches: watch::WatchRegistry,
    /// The transactions across shards this shard coordinates ([`txn`]).
    txc: txn::Coordinator,
    /// The locks and parts of transactions across shards on this shard's keys.
    txp: txn::Participant,
    /// `SAVE` parts waiting for a flush, and a `BGSAVE` in progress.
    saves: admin::Saves,
    /// `DBSIZE` parts waiting for a key count off the loop.
    key_counts: dbsize::KeyCounts,
    /// The snapshots this shard streams `KEYS` replies from.
    keys_cursors: keys_cursor::KeysCursors,
}

impl Shard {
    /// Opens the shard's store (recovering it with `outcome`, the transactions across
    /// shards that committed; its covered WAL segments stay until
    /// [`Shard::delete_covered_wal_segments`]), creates its epoll instance and io_uring
    /// and registers the listener, the waker and the ring's eventfd.
    ///
    /// # Errors
    /// A message naming what failed: store recovery, io_uring set-up (e.g. refused by a
    /// seccomp policy), or epoll registration.
    pub fn open(
        id: ShardId,
        shared: Arc<Shared>,
        listener: TcpListener,
        links: Links,
        store_dir: &std::path::Path,
        outcome: &crate::wal::tx::ShardOutcome,
        compaction: SyncSender<compaction::core::Request>,
    ) -> Result<Self, String> {
        let config = &shared.config;
        let mut store = ShardStore::open_shard(store_dir, &config.store, outcome).map_err(|e| {
            format!(
                "shard {}: cannot open store in {}: {e}",
                id.0,
                store_dir.display()
            )
        })?;
        let waker_owner = Arc::clone(&shared);
        let notify = Box::new(move || waker_owner.wakers[id.0].wake());
        store
            .attach_compaction_core(id.0, compaction, notify)
            .map_err(|e| format!("shard {}: {e}", id.0))?;
        let ring = Ring::new(RING_ENTRIES)
            .map_err(|e| format!("shard {}: cannot set up io_uring: {e}", id.0))?;
        let epoll =
            Epoll::new(EPOLL_EVENTS_MAX).map_err(|e| format!("shard {}: epoll: {e}", id.0))?;
        let register = || -> io::Result<()> {
            epoll.add(listener.as_raw_fd(), TOKEN_LISTENER, Interest::Read)?;
            epoll.add(
                shared.wakers[id.0].eventfd().raw(),
                TOKEN_WAKER,
                Interest::Read,
            )?;
            epoll.add(ring.eventfd().raw(), TOKEN_RING, Interest::Read)
        };
        register().map_err(|e| format!("shard {}: epoll registration: {e}", id.0))?;
        let shards = config.shards;
        let stats = store.stats();
        let metrics = &shared.metrics[id.0];
        ShardMetrics::set(
            &metrics.recovery_replayed_records,
            stats.recovery_replayed_records,
        );
        ShardMetrics::set(
            &metrics.recovery_truncated_bytes,
            stats.recovery_truncated_bytes,
        );
        let mut shard = Self {
            id,
            shards,
            store,
            epoll,
            ring,
            listener: Some(listener),
            reserve_fd: std::fs::File::open("/dev/null").ok(),
            next_idle_sweep: Instant::now(),
            links,
            in_flight_to: vec![0; shards],
            outbox: (0..shards).map(|_| VecDeque::new()).collect(),
            remote_waiting: VecDeque::new(),
            conns: Vec::new(),
            free_conns: Vec::new(),
            next_gen: 1,
            ready: Vec::new(),
            blocked: Vec::new(),
            durable_waiters: Vec::new(),
            dirty: Vec::new(),
            committer: committer::Committer::new(id.0, config.fsync, config.fsync_period_ms),
            poisoned: None,
            draining: false,
            args: Vec::new(),
            arg_slices: Vec::new(),
            wanted_scratch: Vec::new(),
            events: Vec::with_capacity(EPOLL_EVENTS_MAX),
            completions: Vec::new(),
            published_version: std::sync::Weak::new(),
            live_keys_counted: None,
            watches: watch::WatchRegistry::default(),
            txc: txn::Coordinator::default(),
            txp: txn::Participant::default(),
            saves: admin::Saves::default(),
            key_counts: dbsize::KeyCounts::default(),
            keys_cursors: keys_cursor::KeysCursors::default(),
            scan_positions: scan::ScanPositions::default(),
            series: Default::default(),
            rule_links: ts_rules::RuleLinks::new(shards),
            fetches: fetch::Fetches::new(shards),
            shared,
        };
        shard.series.route = crate::timeseries::handover::Route { shard: id, shards };
        // Built before any client: a blind `SET` or a `DEL` asks the directory whether it
        // replaces a series, and building it reads every metadata entry, which would
        // otherwise stall the loop at the first such write after a start. The same scan
        // finds the rules into other shards' series, whose open buckets for `LATEST` those
        // shards keep in memory only: they are computed now and sent once serving.
        match shard.series.directory.read_at_start(&shard.store) {
            Ok(rules) => {
                let route = shard.series.route;
                for (src_key, dst_key) in rules.into_iter().filter(|(_, d)| !route.is_local(d)) {
                    shard.rule_links.latest.changed(src_key, dst_key, SeqNo(0));
                }
                shard.compute_latest();
            }
            Err(e) => tracing::error!(
                shard = id.0,
                "reading the series directory at start-up: {e}; read again when needed"
            ),
        }
        shard.publish_store_stats();
        Ok(shard)
    }

    fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    fn metrics(&self) -> &ShardMetrics {
        &self.shared.metrics[self.id.0]
    }

    /// The acknowledgement point: durable in `--fsync always`, written otherwise.
    fn ack_seq(&self) -> SeqNo {
        self.committer.ack_seq(&self.store)
    }

    /// Runs the loop until the server stops and this shard's in-flight work is finished.
    ///
    /// # Errors
    /// A fatal error of epoll itself.
    pub fn run(mut self) -> io::Result<()> {
        loop {
            let timeout_ms = self.wait_timeout_ms();
            self.wait(timeout_ms)?;
            self.handle_events();
            self.reap_ring();
            self.poll_compaction();
            self.drain_queues();
            if self.shared.stop.load(Ordering::SeqCst) && !self.draining {
                self.begin_drain();
            }
            if !self.draining {
                self.service_connections();
            }
            self.pump_rules();
            self.start_writes();
            self.submit_ring();
            self.send_outbox();
            self.write_dirty();
            // A streamed reply's next step may have queued its block reads.
            self.submit_ring();
            self.close_idle_clients();
            self.publish_store_stats();
            if self.draining && self.drained() {
                break;
            }
        }
        self.finish();
        Ok(())
    }

    /// Submits what the loop queued on the ring (nothing to do if nothing was queued).
    fn submit_ring(&mut self) {
        if let Err(e) = self.ring.submit() {
            self.poison(format!("io_uring submit failed: {e}"));
        }
    }

    fn wait_timeout_ms(&self) -> i32 {
        let has_work = !self.ready.is_empty()
            || !self.dirty.is_empty()
            || self.store.checkpoint_wanted()
            || self.outbox.iter().any(|q| !q.is_empty())
            || self.fetches.has_yielded()
            || self.rules_have_work()
            || (self.poisoned.is_some() && self.has_gated_replies())
            || (self.committer.has_wal_room()
                && !self.committer.slowdown_holding()
                && self.poisoned.is_none()
                && self.store.has_pending_wal());
        if has_work {
            return 0;
        }
        if self.draining || !self.blocked.is_empty() || self.store.flush_encoding() {
            return 1;
        }
        let waits = [
            self.committer.periodic_wait(&self.store),
            self.committer.slowdown_wait(),
            self.idle_sweep_wait(),
        ];
        match waits.into_iter().flatten().min() {
            Some(left) => left.as_millis().min(i32::MAX as u128) as i32,
            None => -1,
        }
    }

    /// Group commit, the next memtable flush and a due periodic fdatasync, unless poisoned.
    fn start_writes(&mut self) {
        if self.poisoned.is_some() {
            // Replies queued behind writes that will never be durable get the shard's
            // error now: nothing else would wake them once the ring is idle.
            if self.has_gated_replies() {
                self.release_acknowledged();
            }
            return;
        }
        crate::timeseries::open::checkpoint(&mut self.store, &mut self.series);
        let started = self
            .committer
            .group_commit(&mut self.ring, &mut self.store, self.draining)
            .and_then(|()| self.committer.start_flush(&mut self.ring, &mut self.store))
            .and_then(|()| {
                self.committer
                    .periodic_fsync(&mut self.ring, &self.store, self.draining)
            });
        if let Err(reason) = started {
            self.poison(reason);
        }
    }

    fn wait(&mut self, timeout_ms: i32) -> io::Result<()> {
        self.events.clear();
        if timeout_ms == 0 {
            return self.epoll.wait(&mut self.events, 0);
        }
        let waker = &self.shared.wakers[self.id.0];
        waker.set_sleeping(true);
        let queued = self
            .links
            .incoming
            .iter()
            .flatten()
            .any(|consumer| !consumer.is_empty());
        let result = if queued {
            self.epoll.wait(&mut self.events, 0)
        } else {
            self.epoll.wait(&mut self.events, timeout_ms)
        };
        waker.set_sleeping(false);
        result
    }

    fn handle_events(&mut self) {
        let events = std::mem::take(&mut self.events);
        for event in &events {
            match event.token {
                TOKEN_LISTENER => self.accept(),
                TOKEN_WAKER => self.shared.wakers[self.id.0].eventfd().drain(),
                TOKEN_RING => self.ring.eventfd().drain(),
                token => {
                    let index = (token & 0xffff_ffff) - TOKEN_CONN_BASE;
                    let key = (index as u32, (token >> 32) as u32);
                    if self.conn(key).is_none() {
                        continue;
                    }
                    if event.readable {
                        let conn = self.conn_mut(key).expect("checked");
                        conn.readable = true;
                        conn.hangup_seen |= event.hangup;
                        self.ready.push(key);
                    }
                    if event.writable {
                        self.flush_conn(key);
                    }
                }
            }
        }
        self.events = events;
    }

    fn reap_ring(&mut self) {
        let mut completions = std::mem::take(&mut self.completions);
        self.ring.reap(&mut completions);
        let before = self.ack_seq();
        for completion in completions.drain(..) {
            if completion.tag & 0xff == TAG_BLOCK_READ {
                self.block_read_completion(completion);
                continue;
            }
            let metrics = &self.shared.metrics[self.id.0];
            let done =
                self.committer
                    .completion(completion, &mut self.ring, &mut self.store, metrics);
            if let Err(reason) = done {
                self.poison(reason);
            }
            let metrics = &self.shared.metrics[self.id.0];
            let poisoned = self.poisoned.is_some();
            self.committer
                .retire_wal_writes(&mut self.store, metrics, poisoned);
        }
        self.completions = completions;
        if self.ack_seq() > before || self.poisoned.is_some() {
            self.release_acknowledged();
        }
    }

    /// Takes the compaction core's new versions; a flush that ended releases connections
    /// stalled on a full memtable.
    fn poll_compaction(&mut self) {
        match self.store.poll_compaction() {
            Ok(true) => {
                ShardMetrics::add(&self.metrics().flushes, 1);
                self.unblock_all();
            }
            Ok(false) => {}
            Err(e) => self.poison(format!("installing flushed SSTable failed: {e}")),
        }
        self.complete_saves();
        self.complete_key_counts();
    }

    /// Marks the shard read-only after a failed WAL or SSTable write: the reason is logged,
    /// shown in `INFO`, and every write waiting for durability gets it as an error.
    fn poison(&mut self, reason: String) {
        if self.poisoned.is_some() {
            return;
        }
        tracing::error!(shard = self.id.0, "refusing writes from now on: {reason}");
        let message = format!(
            "ERR shard {} refuses writes after a failed WAL/SSTable write (restart to recover from the WAL): {reason}",
            self.id.0
        );
        *self
            .metrics()
            .poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(reason);
        self.poisoned = Some(message);
        self.release_acknowledged();
    }

    fn unblock_all(&mut self) {
        let blocked = std::mem::take(&mut self.blocked);
        for key in blocked {
            if let Some(conn) = self.conn_mut(key) {
                conn.blocked = false;
                self.ready.push(key);
            }
        }
    }
}
