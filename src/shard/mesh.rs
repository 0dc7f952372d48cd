//! Cross-shard messaging: one bounded single-producer/single-consumer queue per ordered
//! pair of shards, and a waker per shard.
//!
//! A shard that needs a key owned by another sends it a [`Message::Request`]; the owner
//! executes it and sends a [`Message::Reply`] back on its own queue to the sender. A sender
//! keeps at most `shard_queue_len` requests in flight to each peer, and each queue holds
//! `2 × shard_queue_len` messages, so both requests and the replies they cause always fit.
//!
//! Wake-ups follow the usual sleeping-flag protocol: a shard about to block sets its
//! `sleeping` flag, re-checks its queues, and only then waits; a sender pushes, then writes
//! the receiver's eventfd only if the flag is set. Both sides use sequentially consistent
//! operations, so a message is never left unseen by a sleeping shard.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::command::client::KillFilter;
use crate::command::{KeyQuery, SetCondition, StringOp};
use crate::runtime::sys::EventFd;

// The shard id and key routing belong to the data directory's layout; re-exported so the
// shard code keeps naming them from here.
pub use crate::datadir::{shard_of, ShardId};
// The steps of a transaction across shards live with the protocol that sends them.
pub use super::txn::messages::{RunOutcome, TxMessage};

/// A single-key operation, borrowed (local execution) or owned (sent to another shard).
#[derive(Clone, Debug)]
pub enum Op<K> {
    /// Read a key's value.
    Get(K),
    /// Whether a key exists.
    Exists(K),
    /// Write a value under a condition.
    Set {
        /// The key.
        key: K,
        /// The value.
        value: K,
        /// NX / XX.
        condition: SetCondition,
    },
    /// Delete a key; the result counts 1 if it existed.
    Del(K),
    /// Count the shard's live keys.
    DbSize,
    /// One step of `SCAN` on `shard` (not chosen by key): resume at `cursor`.
    Scan {
        /// The shard whose keys are scanned.
        shard: ShardId,
        /// The full `SCAN` cursor (it names the shard and its saved position).
        cursor: u64,
        /// About how many keys to examine.
        count: usize,
        /// `MATCH` pattern.
        pattern: Option<K>,
        /// `TYPE`: only keys of this type (`string`, `TSDB-TYPE`); the scan still
        /// advances over the others.
        type_name: Option<K>,
    },
    /// Every live key of the shard matching a pattern (`KEYS`).
    Keys(K),
    /// A time-series request on `key` (and `TYPE`), run by
    /// [`crate::timeseries::exec::run`].
    Series {
        /// The user key: routes the request.
        key: K,
        /// The arguments, name first, from [`crate::timeseries::exec::encode_request`].
        request: K,
        /// Whether it may write (refused on a poisoned shard).
        writes: bool,
    },
    /// A label-filtered time-series request (`TS.MGET`, `TS.MRANGE`, `TS.QUERYINDEX`),
    /// sent to every shard ([`crate::timeseries::multi`]).
    SeriesAll {
        /// The arguments, name first, from [`crate::timeseries::exec::encode_request`].
        request: K,
    },
    /// A string or counter command, run whole by the shard owning its keys.
    Strings(StringOp<K>),
    /// One live key of the shard, picked at random, or none (`RANDOMKEY`).
    RandomKey,
    /// The `CLIENT LIST` lines of the shard's connections.
    ClientList,
    /// Close the shard's connections that match (`CLIENT KILL`); the result counts them.
    ClientKill {
        /// Which clients.
        filter: KillFilter,
        /// The requesting client, which its own shard handles.
        skip_id: u64,
    },
    /// `OBJECT` or `MEMORY USAGE` of one key.
    Inspect {
        /// The key.
        key: K,
        /// What is asked.
        query: KeyQuery,
    },
    /// A shard's part of `SAVE`, `BGSAVE` or `FLUSHALL` (sent to every shard).
    Admin(super::admin::AdminOp),
    /// A transaction's ops (`EXEC`), all on `shard`, run in one turn of its loop.
    Batch {
        /// The shard owning every key of the ops.
        shard: ShardId,
        /// The ops, in order.
        ops: Vec<Op<K>>,
        /// The client whose `WATCH`ed keys (on `shard`) must be unchanged, else nothing
        /// runs ([`OpResult::ExecAborted`]); its watches end either way.
        watch: Option<u64>,
    },
    /// `WATCH`: remember the version of `key` (owned by this shard) for client `client`.
    Watch {
        /// The key.
        key: K,
        /// The watching client's id.
        client: u64,
    },
    /// Forget every key client `client` watches on `shard` (`UNWATCH`, `DISCARD`, a
    /// closed connection).
    Unwatch {
        /// The shard holding the watches.
        shard: ShardId,
        /// The client's id.
        client: u64,
    },
    /// The type of a key, as `TYPE` names it ([`OpResult::TypeName`]; `TYPE` inside
    /// `MULTI`).
    KeyType(K),
    /// A transaction's read of a key's whole version, value and deadline
    /// ([`OpResult::Version`]; `RENAME` across shards).
    ReadVersion(K),
    /// A transaction's write of a value with its deadline (`RENAME` across shards).
    PutVersion {
        /// The key.
        key: K,
        /// The value.
        value: K,
        /// Its deadline (absolute Unix ms), if any.
        expire_at_ms: Option<u64>,
    },
}

/// An [`Op`] that owns its bytes, for a queue.
pub type OwnedOp = Op<Box<[u8]>>;

impl OwnedOp {
    /// Borrows the bytes.
    pub fn as_borrowed(&self) -> Op<&[u8]> {
        match self {
            Op::Get(k) => Op::Get(k),
            Op::Exists(k) => Op::Exists(k),
            Op::Set {
                key,
                value,
                condition,
            } => Op::Set {
                key,
                value,
                condition: *condition,
            },
            Op::Del(k) => Op::Del(k),
            Op::DbSize => Op::DbSize,
            Op::Scan {
                shard,
                cursor,
                count,
                pattern,
                type_name,
            } => Op::Scan {
                shard: *shard,
                cursor: *cursor,
                count: *count,
                pattern: pattern.as_deref(),
                type_name: type_name.as_deref(),
            },
            Op::Keys(p) => Op::Keys(p),
            Op::Series {
                key,
                request,
                writes,
            } => Op::Series {
                key,
                request,
                writes: *writes,
            },
            Op::SeriesAll { request } => Op::SeriesAll { request },
            Op::Strings(op) => Op::Strings(op.as_borrowed()),
            Op::RandomKey => Op::RandomKey,
            Op::ClientList => Op::ClientList,
            Op::ClientKill { filter, skip_id } => Op::ClientKill {
                filter: filter.clone(),
                skip_id: *skip_id,
            },
            Op::Inspect { key, query } => Op::Inspect { key, query: *query },
            Op::Admin(op) => Op::Admin(*op),
            Op::Batch { shard, ops, watch } => Op::Batch {
                shard: *shard,
                ops: ops.iter().map(OwnedOp::as_borrowed).collect(),
                watch: *watch,
            },
            Op::Watch { key, client } => Op::Watch {
                key,
                client: *client,
            },
            Op::Unwatch { shard, client } => Op::Unwatch {
                shard: *shard,
                client: *client,
            },
            Op::ReadVersion(k) => Op::ReadVersion(k),
            Op::KeyType(k) => Op::KeyType(k),
            Op::PutVersion {
                key,
                value,
                expire_at_ms,
            } => Op::PutVersion {
                key,
                value,
                expire_at_ms: *expire_at_ms,
            },
        }
    }
}

impl Op<&[u8]> {
    /// Copies the bytes, to send the operation to another shard.
    pub fn to_owned_op(&self) -> OwnedOp {
        match *self {
            Op::Get(k) => Op::Get(k.into()),
            Op::Exists(k) => Op::Exists(k.into()),
            Op::Set {
                key,
                value,
                condition,
            } => Op::Set {
                key: key.into(),
                value: value.into(),
                condition,
            },
            Op::Del(k) => Op::Del(k.into()),
            Op::DbSize => Op::DbSize,
            Op::Scan {
                shard,
                cursor,
                count,
                pattern,
                type_name,
            } => Op::Scan {
                shard,
                cursor,
                count,
                pattern: pattern.map(Into::into),
                type_name: type_name.map(Into::into),
            },
            Op::Keys(p) => Op::Keys(p.into()),
            Op::Series {
                key,
                request,
                writes,
            } => Op::Series {
                key: key.into(),
                request: request.into(),
                writes,
            },
            Op::SeriesAll { request } => Op::SeriesAll {
                request: request.into(),
            },
            Op::Strings(ref op) => Op::Strings(op.to_owned_op()),
            Op::RandomKey => Op::RandomKey,
            Op::ClientList => Op::ClientList,
            Op::ClientKill {
                ref filter,
                skip_id,
            } => Op::ClientKill {
                filter: filter.clone(),
                skip_id,
            },
            Op::Inspect { key, query } => Op::Inspect {
                key: key.into(),
                query,
            },
            Op::Admin(op) => Op::Admin(op),
            Op::Batch {
                shard,
                ref ops,
                watch,
            } => Op::Batch {
                shard,
                ops: ops.iter().map(Op::to_owned_op).collect(),
                watch,
            },
            Op::Watch { key, client } => Op::Watch {
                key: key.into(),
                client,
            },
            Op::Unwatch { shard, client } => Op::Unwatch { shard, client },
            Op::ReadVersion(k) => Op::ReadVersion(k.into()),
            Op::KeyType(k) => Op::KeyType(k.into()),
            Op::PutVersion {
                key,
                value,
                expire_at_ms,
            } => Op::PutVersion {
                key: key.into(),
                value: value.into(),
                expire_at_ms,
            },
        }
    }

    /// The user keys the operation reads or writes (none for whole-shard operations):
    /// what a transaction across shards locks, and what waits while one holds them.
    pub fn user_keys(&self) -> smallvec::SmallVec<[&[u8]; 2]> {
        match self {
            Op::Get(k)
            | Op::Exists(k)
            | Op::Del(k)
            | Op::Set { key: k, .. }
            | Op::Series { key: k, .. }
            | Op::Inspect { key: k, .. }
            | Op::Watch { key: k, .. }
            | Op::ReadVersion(k)
            | Op::KeyType(k)
            | Op::PutVersion { key: k, .. } => smallvec::smallvec![*k],
            Op::Strings(op) => op.keys(),
            Op::Batch { ops, .. } => ops.iter().flat_map(Op::user_keys).collect(),
            Op::DbSize
            | Op::Scan { .. }
            | Op::Keys(_)
            | Op::SeriesAll { .. }
            | Op::RandomKey
            | Op::ClientList
            | Op::ClientKill { .. }
            | Op::Admin(_)
            | Op::Unwatch { .. } => smallvec::SmallVec::new(),
        }
    }
}

/// The outcome of an [`Op`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// A value or none (`GET`).
    Value(Option<Vec<u8>>),
    /// A count (`EXISTS`, `DEL`, `DBSIZE`).
    Int(i64),
    /// Written (`SET`).
    Ok,
    /// Not written because of `NX`/`XX` (null reply).
    NotApplied,
    /// Keys found (`SCAN`, `KEYS`) and, for `SCAN`, the cursor to go on with.
    Keys {
        /// The next `SCAN` cursor (0: done); unused by `KEYS`.
        next_cursor: u64,
        /// The keys.
        keys: Vec<Vec<u8>>,
    },
    /// An error reply text without the leading `-`.
    Err(String),
    /// A complete encoded reply (time-series commands; their errors too).
    Encoded(Vec<u8>),
    /// A range reply too large to build at once, sent as the client reads it
    /// ([`crate::timeseries::range::RangeStream`]).
    Stream(crate::timeseries::range::StreamedRange),
    /// The key holds a series, not a string: `WRONGTYPE` for `GET`, nil in `MGET`.
    WrongType,
    /// One shard's part of a multi-series reply: `(key, encoded entry)` per series.
    Entries(Vec<crate::timeseries::multi::EntryPart>),
    /// The results of an [`Op::Batch`], one per op.
    Batch(Vec<OpResult>),
    /// A watched key changed: the transaction did not run (`EXEC` replies null).
    ExecAborted,
    /// A key's type as `TYPE` replies it ([`Op::KeyType`]): `string`, `TSDB-TYPE` or
    /// `none`.
    TypeName(&'static str),
    /// A key's whole version ([`Op::ReadVersion`]): its value and deadline, or none.
    Version(Option<(Vec<u8>, Option<u64>)>),
    /// A shard's part of a `KEYS` reply too large to build at once: the snapshot it
    /// streams from and how many keys it holds ([`super::keys_cursor`]).
    KeysCursor(super::keys_cursor::OpenCursor),
    /// A shard's live keys ([`Op::DbSize`]) and how many of them have a deadline.
    KeyCount {
        /// Live user keys.
        keys: i64,
        /// Those with an expiry deadline.
        expires: i64,
    },
}

/// Names the connection slot a reply belongs to on the requesting shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    /// Connection slab index.
    pub conn_index: u32,
    /// Connection generation (a reused index has another).
    pub conn_gen: u32,
    /// Reply slot id within the connection.
    pub slot_id: u64,
    /// Part of a multi-key command (key position).
    pub part: u32,
}

/// A message on a cross-shard queue.
#[derive(Debug)]
pub enum Message {
    /// Execute `op` and reply.
    Request {
        /// Where the reply goes.
        reply_to: ReplyTo,
        /// The operation.
        op: OwnedOp,
    },
    /// The result of an earlier request, already acknowledged by the owner's durability rule.
    Reply {
        /// The request's slot.
        reply_to: ReplyTo,
        /// Its result.
        result: OpResult,
    },
    /// A step of a transaction across shards (the shard module `txn` runs them).
    Tx(TxMessage),
    /// About a compaction rule whose two series are on different shards.
    Rule(RuleMessage),
    /// A pull of a streamed `KEYS` reply, or its batch ([`super::keys_cursor`]).
    Keys(super::keys_cursor::KeysMessage),
}

/// What two shards tell each other about a compaction rule from a series of one into a
/// series of the other (`crate::shard::ts_rules`). An answer is sent once what it reports
/// is acknowledged by the answering shard's durability rule.
#[derive(Debug)]
pub enum RuleMessage {
    /// To the destination's shard (`TS.CREATERULE`'s second round): make `dst_key` the
    /// destination of a rule from `src_key`, after its checks; answered by
    /// [`RuleMessage::Linked`].
    Link {
        /// Names the waiting command on the source's shard.
        token: u64,
        /// The source series.
        src_key: Vec<u8>,
        /// The destination series.
        dst_key: Vec<u8>,
    },
    /// The answer to [`RuleMessage::Link`]: `None` when linked, else the error reply.
    Linked {
        /// The waiting command.
        token: u64,
        /// The error reply text, if refused.
        error: Option<String>,
    },
    /// To the destination's shard: `dst_key` no longer has `src_key` as its source
    /// (`TS.DELETERULE`, a deleted source, a refused second round); answered by
    /// [`RuleMessage::Unlinked`] when `token` is set.
    Unlink {
        /// Names the waiting `TS.DELETERULE`, if one waits.
        token: Option<u64>,
        /// The source series.
        src_key: Vec<u8>,
        /// The destination series.
        dst_key: Vec<u8>,
    },
    /// The answer to [`RuleMessage::Unlink`]: `None` when done, else the error reply.
    Unlinked {
        /// The waiting command.
        token: u64,
        /// The error reply text (a missing destination).
        error: Option<String>,
    },
    /// To the shard of the other series of a deleted series' rule: let go of the rule;
    /// answered by [`RuleMessage::Forgotten`].
    Forget(crate::timeseries::handover::PendingUnlink),
    /// The answer to [`RuleMessage::Forget`]: `done` once durable; false when that shard
    /// refuses writes (the unlink stays pending).
    Forgotten {
        /// Which unlink.
        unlink: crate::timeseries::handover::PendingUnlink,
        /// Whether it is applied.
        done: bool,
    },
    /// To the destination's shard: a bucket of the rule, its value at the bucket's start
    /// (`None`: the bucket lost every sample, remove it); answered by
    /// [`RuleMessage::BucketStored`].
    Bucket {
        /// Which bucket (the source's pending entry).
        pending: crate::timeseries::handover::PendingBucket,
        /// The source series.
        src_key: Vec<u8>,
        /// The aggregate.
        value: Option<f64>,
    },
    /// To the destination's shard: the source's open bucket (`None`: no sample in it), for
    /// `LATEST` there; sent once the writes it reflects are acknowledged, not answered.
    Latest {
        /// The source series.
        src_key: Vec<u8>,
        /// The destination series.
        dst_key: Vec<u8>,
        /// The open bucket: its start and aggregate.
        open: Option<crate::timeseries::chunk::Sample>,
    },
    /// The answer to [`RuleMessage::Bucket`]: `stored` once durable on the destination's
    /// shard; false when that shard refuses writes (the bucket stays pending).
    BucketStored {
        /// Which bucket.
        pending: crate::timeseries::handover::PendingBucket,
        /// Whether it is stored.
        stored: bool,
    },
}

impl RuleMessage {
    /// Turns a message that was waiting for durability into what may be sent now that
    /// the shard refuses writes for `reason`: an answer becomes a refusal (what it reports
    /// may not be durable). A [`RuleMessage::Forget`] is not sent at all (returns false):
    /// its deletion may not be durable, and its pending entry sends it again after a
    /// restart. A `TS.DELETERULE`'s [`RuleMessage::Unlink`] still goes, so its client gets
    /// an answer: the refusal, since its reply waits for the source's write.
    pub fn refuse(&mut self, reason: &str) -> bool {
        match self {
            Self::Linked { error, .. } | Self::Unlinked { error, .. } => {
                *error = Some(reason.to_string());
            }
            Self::BucketStored { stored, .. } => *stored = false,
            Self::Forgotten { done, .. } => *done = false,
            Self::Forget(_) => return false,
            Self::Link { .. } | Self::Unlink { .. } | Self::Bucket { .. } | Self::Latest { .. } => {
            }
        }
        true
    }
}

/// Wakes one shard's loop.
#[derive(Debug)]
pub struct Waker {
    eventfd: EventFd,
    sleeping: AtomicBool,
}

impl Waker {
    /// A waker with a fresh eventfd.
    ///
    /// # Errors
    /// The OS error of `eventfd`.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            eventfd: EventFd::new()?,
            sleeping: AtomicBool::new(false),
        })
    }

    /// The eventfd the owning shard registers with epoll.
    pub fn eventfd(&self) -> &EventFd {
        &self.eventfd
    }

    /// Wakes the shard if it may be asleep (call after pushing to its queue).
    pub fn wake_if_sleeping(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            self.eventfd.notify();
        }
    }

    /// Wakes the shard unconditionally (shutdown).
    pub fn wake(&self) {
        self.eventfd.notify();
    }

    /// Sets or clears the owner's sleeping flag.
    pub fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.store(sleeping, Ordering::SeqCst);
    }
}

/// One shard's ends of the queues: `outgoing[b]` sends to shard b, `incoming[b]` receives
/// from shard b (`None` at the shard's own index).
pub struct Links {
    /// Producers towards each peer.
    pub outgoing: Vec<Option<rtrb::Producer<Message>>>,
    /// Consumers from each peer.
    pub incoming: Vec<Option<rtrb::Consumer<Message>>>,
}

/// Builds the queues for `shards` shards, each of capacity `2 × queue_len`.
pub fn build_links(shards: usize, queue_len: usize) -> Vec<Links> {
    let mut links: Vec<Links> = (0..shards)
        .map(|_| Links {
            outgoing: (0..shards).map(|_| None).collect(),
            incoming: (0..shards).map(|_| None).collect(),
        })
        .collect();
    for from in 0..shards {
        for to in 0..shards {
            if from != to {
                let (producer, consumer) = rtrb::RingBuffer::new(2 * queue_len.max(1));
                links[from].outgoing[to] = Some(producer);
                links[to].incoming[from] = Some(consumer);
            }
        }
    }
    links
}
