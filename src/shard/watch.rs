//! `WATCH` / `UNWATCH`: optimistic locking for transactions, as Redis 7.0's `multi.c`.
//!
//! `WATCH key...` records, on the shard that owns each key, the version it has now:
//! the sequence number of its newest version and whether it is live (a string or a
//! series; expired or deleted is not live). `EXEC` sends the client's id with its batch to
//! that same shard, which compares before running anything: a key whose newest version
//! is newer, or that became live or stopped being live (an expiry counts, as in Redis 7),
//! aborts the transaction and `EXEC` replies null. Comparing versions needs no hook in any
//! write path, and since requests between two shards run in the order they were sent, the
//! `WATCH` is recorded before the `EXEC` that follows it is checked.
//!
//! A tombstone that compaction later drops makes a deleted key's version read as 0, older
//! than recorded: not a change, as it should be. Watching a series sees its creation,
//! deletion and `TS.ALTER` (its metadata), not the samples added to it.
//!
//! Watched keys may live on any shards: a transaction whose keys or watched keys span
//! shards runs as a transaction across shards ([`super::txn`]), which checks every
//! watched shard, with all the transaction's keys locked, before any of it runs. The versions are kept per shard for at most [`WATCHED_KEY_BYTES_MAX`] bytes of keys; past
//! that the oldest client's watches are forgotten, and its `EXEC` aborts (a retry, never a
//! lost update). `EXEC`, `DISCARD`, `UNWATCH` and closing the connection end a client's
//! watches.

use std::collections::{HashMap, VecDeque};

use super::conn::Reply;
use super::exec::Wait;
use super::mesh::{shard_of, Message, Op, ReplyTo, ShardId};
use super::Shard;
use crate::base::SeqNo;
use crate::store::ShardStore;

/// Bytes of watched keys a shard remembers before it forgets the oldest client's.
pub const WATCHED_KEY_BYTES_MAX: usize = 16 << 20;

/// A key's version when it was watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mark {
    /// Sequence number of its newest version (0: none).
    seq: SeqNo,
    /// Whether it held a live value (string or series).
    live: bool,
}

impl Mark {
    /// What `key` holds now in `store`; a failed read is treated as a change.
    fn of(store: &ShardStore, key: &[u8]) -> Option<Self> {
        let string = store.get(key).ok()?;
        let series = crate::timeseries::series::series_lookup(store, key).ok()?;
        let seq = [
            string.as_ref().map(|l| l.seq),
            series.as_ref().map(|l| l.seq),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or_default();
        let live =
            string.is_some_and(|l| l.value.is_some()) || series.is_some_and(|l| l.value.is_some());
        Some(Self { seq, live })
    }

    /// Whether the key changed between `self` (when watched) and `now`.
    fn changed_to(self, now: Option<Self>) -> bool {
        now.is_none_or(|now| now.live != self.live || now.seq > self.seq)
    }
}

/// A watched key and its version then (`None`: it could not be read).
type Watched = (Box<[u8]>, Option<Mark>);

/// The keys each client watches on this shard, with their versions.
#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    clients: HashMap<u64, Vec<Watched>>,
    /// Clients in the order they first watched here, for forgetting the oldest.
    order: VecDeque<u64>,
    key_bytes: usize,
}

impl WatchRegistry {
    /// Records `key`'s version now for `client`.
    fn watch(&mut self, store: &ShardStore, client: u64, key: &[u8]) {
        let mark = Mark::of(store, key);
        if !self.clients.contains_key(&client) {
            self.order.push_back(client);
        }
        self.clients
            .entry(client)
            .or_default()
            .push((key.into(), mark));
        self.key_bytes += key.len();
        while self.key_bytes > WATCHED_KEY_BYTES_MAX {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.forget(oldest);
        }
    }

    /// The keys `client` watches on this shard.
    fn keys_of(&self, client: u64) -> Vec<Box<[u8]>> {
        self.clients
            .get(&client)
            .map(|keys| keys.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    }

    /// Forgets `client`'s watches.
    fn forget(&mut self, client: u64) {
        if let Some(keys) = self.clients.remove(&client) {
            self.key_bytes -= keys.iter().map(|(k, _)| k.len()).sum::<usize>();
            self.order.retain(|&c| c != client);
        }
    }

    /// Whether every key `client` watches is unchanged (false if its watches were
    /// forgotten); ends its watches.
    fn unchanged(&mut self, store: &ShardStore, client: u64) -> bool {
        let Some(keys) = self.clients.get(&client) else {
            return false;
        };
        let unchanged = keys.iter().all(|(key, mark)| match mark {
            Some(mark) => !mark.changed_to(Mark::of(store, key)),
            None => false,
        });
        self.forget(client);
        unchanged
    }
}

impl Shard {
    /// `WATCH key...` from connection `key`: each key's version is recorded on its own
    /// shard.
    pub(super) fn watch(&mut self, key: (u32, u32), keys: &[&[u8]]) -> Result<(), Wait> {
        if self.in_transaction(key) {
            return self.refuse_request(key, "ERR WATCH inside MULTI is not allowed");
        }
        let shards = self.shards;
        let Some(conn) = self.conn(key) else {
            return Ok(());
        };
        let client = conn.id;
        let ops: Vec<Op<&[u8]>> = keys.iter().map(|&k| Op::Watch { key: k, client }).collect();
        self.scatter(key, Reply::AllOk, &ops)?;
        if let Some(conn) = self.conn_mut(key) {
            conn.watch_shards
                .extend(keys.iter().map(|k| shard_of(k, shards)));
            conn.watch_shards.sort_unstable_by_key(|s| s.0);
            conn.watch_shards.dedup();
        }
        Ok(())
    }

    /// `UNWATCH` from connection `key`.
    pub(super) fn unwatch(&mut self, key: (u32, u32)) -> Result<(), Wait> {
        let Some(conn) = self.conn(key) else {
            return Ok(());
        };
        if conn.watch_shards.is_empty() {
            self.push_ready(key, Reply::Static(b"+OK\r\n"));
            return Ok(());
        }
        let client = conn.id;
        let ops: Vec<Op<&[u8]>> = conn
            .watch_shards
            .iter()
            .map(|&shard| Op::Unwatch { shard, client })
            .collect();
        self.scatter(key, Reply::AllOk, &ops)?;
        if let Some(conn) = self.conn_mut(key) {
            conn.watch_shards.clear();
        }
        Ok(())
    }

    /// Ends the watches of a connection that is going away, without a reply.
    pub(super) fn forget_watches(&mut self, (index, gen): (u32, u32), client: u64, shard: ShardId) {
        if shard == self.id {
            self.watches.forget(client);
            return;
        }
        // The reply comes back to a connection that is gone, and is dropped.
        let reply_to = ReplyTo {
            conn_index: index,
            conn_gen: gen,
            slot_id: u64::MAX,
            part: 0,
        };
        self.outbox[shard.0].push_back(Message::Request {
            reply_to,
            op: Op::Unwatch { shard, client }.to_owned_op(),
        });
        self.in_flight_to[shard.0] += 1;
    }

    /// Runs [`Op::Watch`] here.
    pub(super) fn watch_op(&mut self, key: &[u8], client: u64) {
        self.watches.watch(&self.store, client, key);
    }

    /// Runs [`Op::Unwatch`] here.
    pub(super) fn unwatch_op(&mut self, client: u64) {
        self.watches.forget(client);
    }

    /// The keys `client` watches on this shard: their blocks are read through the ring
    /// before its `EXEC` is checked, so the check reads from memory.
    pub(super) fn watched_keys(&self, client: Option<u64>) -> Vec<Box<[u8]>> {
        client.map_or_else(Vec::new, |client| self.watches.keys_of(client))
    }

    /// Whether the keys `client` watches here are unchanged; ends its watches.
    pub(super) fn watched_unchanged(&mut self, client: u64) -> bool {
        self.watches.unchanged(&self.store, client)
    }

    fn refuse_request(&mut self, key: (u32, u32), message: &str) -> Result<(), Wait> {
        let mut reply = Vec::new();
        crate::resp::error(&mut reply, message);
        self.push_ready(key, Reply::Encoded(reply));
        Ok(())
    }
}
