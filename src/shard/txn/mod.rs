//! Transactions across shards: `EXEC`, `MSETNX` and `RENAME`/`RENAMENX` whose keys live on
//! several shards, atomic (no other client sees part of one) and durable as one unit (all
//! or nothing after a crash).
//!
//! The shard of the client's connection **coordinates**; every shard owning some of the
//! keys **participates** ([`participant`]). The steps, as [`TxMessage`]s over the bounded
//! queues between shards:
//!
//! 1. **Lock**, one participant at a time in ascending shard order: each locks all the
//!    transaction's keys it owns at once, waiting its turn behind the transactions that
//!    hold or earlier asked for one of them. While a key is locked, every other request
//!    reading or writing it waits (a `DBSIZE`, `SCAN` or `KEYS` does not).
//! 2. **Run** the ops on their shards (with the `WATCH` check first, on the watched keys'
//!    shards, before anything else runs). Each participant keeps what the keys it changes
//!    held before, writes its part's records with a `TxPart` marker in the same WAL batch
//!    ([`crate::wal::tx`]), and answers once they are durable. `MSETNX` and `RENAME` take
//!    two runs: read, then write what the reads decided.
//! 3. **Commit**: the coordinator appends a `TxCommit` record to its own WAL; the
//!    transaction is committed once that record is durable, and only then does the client
//!    get its reply.
//! 4. **Release**: each participant writes its own `TxCommit` (so its part no longer needs
//!    the coordinator's WAL), unlocks, and answers; the coordinator then lets its record
//!    go with its segment. If a part could not be made durable (a failed fdatasync), the
//!    transaction does not commit: the other participants write back what their part
//!    overwrote (a key's value and deadline, a time-series sample's before-image), as
//!    ordinary writes that come after it, and the client gets the error.
//!
//! **Why it cannot deadlock.** A transaction waits for a lock only at one shard at a time,
//! and only for a transaction that holds a key there (which is past this shard in the
//! ascending order, or running) or that asked for one earlier at the same shard. Every
//! wait points to a higher shard, or to an earlier arrival at the same shard, so the waits
//! cannot form a cycle; and a transaction holding all its locks never waits for a lock
//! again. The steps themselves never wait behind ordinary requests: the queues between
//! shards are drained into each shard's memory (a parked request stays there, not in the
//! queue), and transaction messages are not counted against a sender's in-flight cap.
//!
//! Dragonfly (following the VLL paper) schedules a transaction on all its shards in one
//! parallel hop and orders each shard's queue by a global transaction id; locking shard by
//! shard costs a hop per participant instead, but needs no global order, and the proof
//! above is short. Dragonfly's transactions are in memory; these are durable.
//!
//! **Why it is all or nothing.** Replay counts a part only if some shard's WAL holds the
//! transaction's `TxCommit` ([`crate::wal::tx::TxOutcomes`]); a shard never flushes an
//! undecided part into an SSTable (nor seals a time series an undecided part wrote, so its
//! samples stay open samples inside the part, [`crate::timeseries::undo`]); the
//! coordinator's record stays on disk until every
//! participant has its own. A client's next request waits until its transaction has
//! replied, and the transaction's keys stay locked until each participant has released
//! them, so nothing later sees the keys before the transaction.

pub(super) mod messages;
mod participant;
mod program;

use std::collections::{HashMap, VecDeque};

pub(super) use participant::Participant;
pub(super) use program::{Plan, Program, Unit};

use super::conn::{Reply, Slot};
use super::exec::Wait;
use super::mesh::{shard_of, Message, Op, OpResult, OwnedOp, RunOutcome, ShardId, TxMessage};
use super::Shard;
use crate::base::SeqNo;
use crate::wal::tx::TxId;

/// An owned key.
pub(super) type Key = Box<[u8]>;

/// The transactions this shard coordinates, and their commit records waiting for
/// durability.
#[derive(Debug, Default)]
pub(super) struct Coordinator {
    txs: HashMap<TxId, Coordinated>,
    /// `TxCommit` records appended, oldest first, with their sequence numbers.
    commits: VecDeque<(SeqNo, TxId)>,
}

impl Coordinator {
    /// Whether no transaction is in progress here.
    pub(super) fn is_idle(&self) -> bool {
        self.txs.is_empty()
    }
}

#[derive(Debug)]
struct Coordinated {
    /// The client's connection and its reply slot.
    conn: (u32, u32),
    slot_id: u64,
    plan: Plan,
    /// Participants in ascending shard order, each with the keys it locks.
    participants: Vec<(ShardId, Vec<Box<[u8]>>)>,
    /// How many participants have locked so far.
    locked: usize,
    /// The watched keys' shards and the client, until their check ran.
    watch: Option<(Vec<ShardId>, u64)>,
    /// The shards whose parts ran first for the `WATCH` check, excluded from the rest of
    /// that run.
    ran_first: Vec<ShardId>,
    /// The current run's ops (in the transaction's order) and their results.
    ops: Vec<OwnedOp>,
    results: Vec<Option<OpResult>>,
    /// Answers still expected for the current step.
    awaiting: usize,
    /// A part failed (its reason), or a watched key changed.
    failed: Option<String>,
    watch_changed: bool,
    /// The second run of an `MSETNX` or `RENAME` has been sent.
    second_run: bool,
    /// What the client gets once the transaction is decided.
    result: Option<OpResult>,
    /// A participant could not make its own commit record durable: the coordinator's
    /// must stay.
    keep_commit: bool,
    /// Some part wrote: the transaction needs a commit record.
    wrote: bool,
}

/// The shard owning an op's key.
fn owner(op: &OwnedOp, shards: usize) -> ShardId {
    let op = op.as_borrowed();
    let keys = op.user_keys();
    shard_of(keys.first().copied().unwrap_or_default(), shards)
}

impl Shard {
    /// Whether `ops` (with the watched keys' shards) touch more than one shard: such a
    /// transaction needs [`Shard::begin_tx`].
    pub(super) fn spans_shards(&self, ops: &[Op<&[u8]>], watch: &[ShardId]) -> bool {
        let mut shards = ops
            .iter()
            .flat_map(|op| op.user_keys())
            .map(|k| shard_of(k, self.shards))
            .chain(watch.iter().copied());
        let Some(first) = shards.next() else {
            return false;
        };
        shards.any(|s| s != first)
    }

    /// Starts a transaction across shards for connection `key`: its reply (`reply`, filled
    /// by the final [`OpResult`]), what it does (`plan`), its first run's ops, every key it
    /// may touch, and the watched keys' shards with the client id.
    pub(super) fn begin_tx(
        &mut self,
        key: (u32, u32),
        reply: Reply,
        plan: Plan,
        ops: Vec<OwnedOp>,
        keys: Vec<Box<[u8]>>,
        watch: Option<(Vec<ShardId>, u64)>,
    ) -> Result<(), Wait> {
        if !self.store.can_accept_writes() && self.poisoned.is_none() {
            self.store.note_write_stall();
            return Err(Wait::Capacity);
        }
        let id = TxId(
            self.shared
                .next_tx_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let mut participants: Vec<(ShardId, Vec<Box<[u8]>>)> = Vec::new();
        for k in keys {
            let shard = shard_of(&k, self.shards);
            match participants.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, theirs)) if theirs.contains(&k) => {}
                Some((_, theirs)) => theirs.push(k),
                None => participants.push((shard, vec![k])),
            }
        }
        for &shard in watch.iter().flat_map(|(shards, _)| shards) {
            if !participants.iter().any(|(s, _)| *s == shard) {
                participants.push((shard, Vec::new()));
            }
        }
        participants.sort_by_key(|(s, _)| s.0);
        let ack = self.ack_seq();
        let conn = self.conn_mut(key).expect("caller checked");
        let slot = Slot {
            gate: SeqNo(0),
            parts_left: 1,
            reply,
            error: None,
            proto: crate::resp::Protocol::Resp2,
            silent: false,
        };
        let slot_id = conn.push_slot(slot, ack);
        conn.remote_parts_in_flight += 1;
        conn.tx_in_flight = true;
        let results = vec![None; ops.len()];
        self.txc.txs.insert(
            id,
            Coordinated {
                conn: key,
                slot_id,
                plan,
                participants,
                locked: 0,
                watch,
                ran_first: Vec::new(),
                ops,
                results,
                awaiting: 0,
                failed: None,
                second_run: false,
                watch_changed: false,
                result: None,
                keep_commit: false,
                wrote: false,
            },
        );
        self.lock_next(id);
        Ok(())
    }

    /// Asks the next participant for its locks, or runs once all are held.
    fn lock_next(&mut self, id: TxId) {
        let Some(tx) = self.txc.txs.get(&id) else {
            return;
        };
        match tx.participants.get(tx.locked) {
            Some((shard, keys)) => {
                let watch = tx
                    .watch
                    .as_ref()
                    .filter(|(shards, _)| shards.contains(shard))
                    .map(|(_, client)| *client);
                let message = TxMessage::Lock {
                    id,
                    keys: keys.clone(),
                    watch,
                };
                let shard = *shard;
                self.post(shard, Message::Tx(message));
            }
            None => self.start_run(id),
        }
    }

    /// Sends the current run: to the watched keys' shards alone first if a check is due.
    fn start_run(&mut self, id: TxId) {
        let shards = self.shards;
        let Some(tx) = self.txc.txs.get_mut(&id) else {
            return;
        };
        tx.results = vec![None; tx.ops.len()];
        if let Some((watched, client)) = tx.watch.take() {
            let sends: Vec<_> = watched
                .iter()
                .map(|&shard| (shard, ops_of(&tx.ops, shard, shards)))
                .collect();
            tx.ran_first = watched;
            tx.awaiting = sends.len();
            for (shard, ops) in sends {
                let message = TxMessage::Run {
                    id,
                    ops,
                    watch: Some(client),
                };
                self.post(shard, Message::Tx(message));
            }
            return;
        }
        self.send_run(id, &[]);
    }

    /// Sends each participant (but those in `except`) its ops of the current run.
    fn send_run(&mut self, id: TxId, except: &[ShardId]) {
        let shards = self.shards;
        let Some(tx) = self.txc.txs.get_mut(&id) else {
            return;
        };
        let mut sends = Vec::new();
        for (shard, _) in &tx.participants {
            if except.contains(shard) {
                continue;
            }
            let ops = ops_of(&tx.ops, *shard, shards);
            if !ops.is_empty() {
                sends.push((*shard, ops));
            }
        }
        tx.awaiting = sends.len();
        if sends.is_empty() {
            self.run_done(id);
            return;
        }
        for (shard, ops) in sends {
            let message = TxMessage::Run {
                id,
                ops,
                watch: None,
            };
            self.post(shard, Message::Tx(message));
        }
    }

    /// Handles a transaction step addressed to this shard as coordinator.
    pub(super) fn tx_coordinator(&mut self, message: TxMessage) {
        match message {
            TxMessage::Locked { id } => {
                if let Some(tx) = self.txc.txs.get_mut(&id) {
                    tx.locked += 1;
                }
                self.lock_next(id);
            }
            TxMessage::Ran {
                id,
                results,
                outcome,
                wrote,
            } => {
                let Some(tx) = self.txc.txs.get_mut(&id) else {
                    return;
                };
                tx.wrote |= wrote;
                for (index, result) in results {
                    if let Some(entry) = tx.results.get_mut(index as usize) {
                        *entry = Some(result);
                    }
                }
                match outcome {
                    RunOutcome::Done => {}
                    RunOutcome::WatchChanged => tx.watch_changed = true,
                    RunOutcome::Failed(reason) => {
                        tx.failed.get_or_insert(reason);
                    }
                }
                tx.awaiting -= 1;
                if tx.awaiting > 0 {
                    return;
                }
                let first = std::mem::take(&mut tx.ran_first);
                if !first.is_empty() && !tx.watch_changed && tx.failed.is_none() {
                    self.send_run(id, &first);
                    return;
                }
                self.run_done(id);
            }
            TxMessage::Released { id, durable } => {
                let Some(tx) = self.txc.txs.get_mut(&id) else {
                    return;
                };
                tx.keep_commit |= !durable;
                tx.awaiting -= 1;
                if tx.awaiting == 0 {
                    let keep = tx.keep_commit;
                    self.txc.txs.remove(&id);
                    if !keep {
                        self.store.release_commit_hold(id);
                    }
                }
            }
            other => debug_assert!(false, "{other:?} is for a participant"),
        }
    }

    /// A run finished: decide what follows from its results.
    fn run_done(&mut self, id: TxId) {
        let Some(tx) = self.txc.txs.get_mut(&id) else {
            return;
        };
        if tx.watch_changed {
            return self.abort(id, OpResult::ExecAborted);
        }
        if let Some(reason) = tx.failed.clone() {
            return self.abort(id, OpResult::Err(reason));
        }
        let results: Vec<OpResult> = std::mem::take(&mut tx.results)
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| OpResult::Err("ERR internal error: missing result".into()))
            })
            .collect();
        match tx.plan.after_run(results, &mut tx.second_run) {
            Ok(ops) => {
                tx.ops = ops;
                self.start_run(id);
            }
            Err(result) => self.commit(id, result),
        }
    }

    /// Appends the commit record; the client's reply and the releases wait for it. A
    /// transaction that wrote nothing (only reads, or an `MSETNX` that found a key) needs
    /// none: its reads already waited for what they saw to be durable.
    fn commit(&mut self, id: TxId, result: OpResult) {
        if !self.txc.txs.get(&id).is_some_and(|tx| tx.wrote) {
            return self.release_all(id, true, true, result);
        }
        if let Some(reason) = self.poisoned.clone() {
            return self.abort(id, OpResult::Err(reason));
        }
        let seq = self.store.commit_tx(id, true);
        if let Some(tx) = self.txc.txs.get_mut(&id) {
            tx.result = Some(result);
        }
        self.txc.commits.push_back((seq, id));
    }

    /// Ends the transactions whose commit record the acknowledgement point passed:
    /// replies, and releases them as committed.
    ///
    /// Once this shard refuses writes, a commit record not yet durable may or may not be on
    /// disk, so the transaction is released as committed all the same (every part is
    /// durable, and each participant's own commit record makes it count), and the client
    /// is told that the outcome is not confirmed. Undoing it instead could leave half of
    /// it after a restart, if the record did reach the disk.
    pub(super) fn tx_commits_acknowledged(&mut self) {
        let ack = self.ack_seq();
        while let Some(&(seq, id)) = self.txc.commits.front() {
            if seq > ack && self.poisoned.is_none() {
                break;
            }
            self.txc.commits.pop_front();
            let result = self
                .txc
                .txs
                .get_mut(&id)
                .and_then(|tx| tx.result.take())
                .unwrap_or(OpResult::Ok);
            let result = match (&self.poisoned, seq > ack) {
                (Some(reason), true) => OpResult::Err(format!(
                    "{reason}; the transaction across shards is not confirmed: after a restart it is either wholly there or wholly absent"
                )),
                _ => result,
            };
            let confirmed = seq <= ack;
            self.release_all(id, true, confirmed, result);
        }
    }

    /// The transaction will not commit: every participant writes back what its part
    /// overwrote, and the client gets `result`.
    fn abort(&mut self, id: TxId, result: OpResult) {
        self.release_all(id, false, true, result);
    }

    /// Replies to the client and tells every participant the decision.
    fn release_all(&mut self, id: TxId, commit: bool, confirmed: bool, result: OpResult) {
        let Some(tx) = self.txc.txs.get_mut(&id) else {
            return;
        };
        let shards: Vec<ShardId> = tx.participants.iter().map(|(s, _)| *s).collect();
        tx.awaiting = shards.len();
        let (conn, slot_id) = (tx.conn, tx.slot_id);
        if !commit {
            // The coordinator's own part is undone like any other's; no record to keep.
            tx.keep_commit = false;
        }
        for shard in shards {
            let message = TxMessage::Release {
                id,
                commit,
                confirmed,
            };
            self.post(shard, Message::Tx(message));
        }
        self.finish_tx_reply(conn, slot_id, result);
    }

    /// Fills the client's reply and lets its connection go on.
    fn finish_tx_reply(&mut self, key: (u32, u32), slot_id: u64, result: OpResult) {
        let ack = self.ack_seq();
        let poisoned = self.poisoned.clone();
        let output_max = self.config().client_output_bytes_max;
        let Some(conn) = self.conn_mut(key) else {
            return;
        };
        conn.tx_in_flight = false;
        if conn.apply_remote(slot_id, 0, result, output_max) {
            conn.promote(ack, poisoned.as_deref());
        }
        self.mark_dirty(key);
        self.ready.push(key);
    }
}

/// The ops of `ops` owned by `shard`, with their positions.
fn ops_of(ops: &[OwnedOp], shard: ShardId, shards: usize) -> Vec<(u32, OwnedOp)> {
    ops.iter()
        .enumerate()
        .filter(|(_, op)| owner(op, shards) == shard)
        .map(|(i, op)| (i as u32, op.as_borrowed().to_owned_op()))
        .collect()
}
