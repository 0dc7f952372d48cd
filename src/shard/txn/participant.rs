//! A participant's side of a transaction across shards: its locks, running its part, and
//! releasing it (see [`super`] for the protocol).
//!
//! Locks are per key and granted in arrival order: a request to lock waits while a key it
//! wants is held, or wanted by an earlier waiting request (so none starves). While a key is
//! locked, every other request that reads or writes it waits: a client's own request on
//! this shard is retried from the blocked list (`Wait::Locked`), and a request from
//! another shard is parked with everything that shard sent after it (requests from one
//! shard run in the order they were sent). Requests over the whole key space (`DBSIZE`,
//! `SCAN`, `KEYS`) do not wait.

use std::collections::{HashMap, VecDeque};

use super::super::mesh::{Message, Op, OpResult, OwnedOp, RunOutcome, ShardId, TxMessage};
use super::super::Shard;
use crate::base::SeqNo;
use crate::timeseries::undo::SeriesUndo;
use crate::wal::tx::TxId;

/// What a key held before a transaction's part changed it: its value and deadline, or
/// nothing.
type BeforeImage = Option<(Vec<u8>, Option<u64>)>;

/// The locks of this shard and the parts of the transactions holding them.
#[derive(Debug, Default)]
pub(in crate::shard) struct Participant {
    /// Locked keys and the transaction holding each.
    held: HashMap<Box<[u8]>, TxId>,
    /// Lock requests waiting, oldest first.
    waiting: VecDeque<LockRequest>,
    /// The transactions holding locks here.
    parts: HashMap<TxId, Part>,
    /// Requests from each shard set aside behind a locked key, in arrival order.
    parked: Vec<VecDeque<Message>>,
    /// Transactions whose keys are locked here and whose block reads are in flight: the
    /// coordinator to tell, and the reads left.
    reading: HashMap<TxId, (ShardId, u32)>,
    /// Keys of unconfirmed commits, unlocked once this shard's own commit record (the
    /// sequence number) is durable, in order.
    unlock_after: VecDeque<(SeqNo, Vec<Box<[u8]>>)>,
}

/// A lock request: the coordinator, the transaction, its keys here, and the client whose
/// watched keys here its run checks.
type LockRequest = (ShardId, TxId, Vec<super::Key>, Option<u64>);

/// One transaction's part on this shard.
#[derive(Debug, Default)]
struct Part {
    /// The keys it locked.
    keys: Vec<Box<[u8]>>,
    /// What each key it may have written held before, in the order first touched: written
    /// back if the transaction does not commit.
    before: Vec<(Box<[u8]>, BeforeImage)>,
    /// The same for the samples it wrote to time series.
    series: SeriesUndo,
}

impl Participant {
    /// Whether some key is locked.
    pub(in crate::shard) fn holds_any(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether one of `keys` is locked.
    pub(in crate::shard) fn locks_any<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> bool {
        !self.held.is_empty() && keys.into_iter().any(|k| self.held.contains_key(k))
    }

    /// Whether requests from `from` are parked (a new one must queue behind them).
    pub(in crate::shard) fn parks(&self, from: ShardId) -> bool {
        self.parked.get(from.0).is_some_and(|q| !q.is_empty())
    }

    /// Parks a request from `from`.
    pub(in crate::shard) fn park(&mut self, from: ShardId, message: Message) {
        if self.parked.len() <= from.0 {
            self.parked.resize_with(from.0 + 1, VecDeque::new);
        }
        self.parked[from.0].push_back(message);
    }

    /// Whether nothing is locked, waiting or parked (the shard may stop).
    pub(in crate::shard) fn is_idle(&self) -> bool {
        self.held.is_empty()
            && self.waiting.is_empty()
            && self.parked.iter().all(VecDeque::is_empty)
    }

    /// Whether `keys` can be locked now: none held, none wanted by an earlier waiter.
    fn grantable(&self, keys: &[Box<[u8]>], before: usize) -> bool {
        keys.iter().all(|k| !self.held.contains_key(k))
            && self
                .waiting
                .iter()
                .take(before)
                .all(|(_, _, theirs, _)| !theirs.iter().any(|k| keys.contains(k)))
    }

    fn grant(&mut self, id: TxId, keys: Vec<Box<[u8]>>) {
        for key in &keys {
            self.held.insert(key.clone(), id);
        }
        self.parts.insert(
            id,
            Part {
                keys,
                ..Part::default()
            },
        );
    }
}

impl Shard {
    /// Handles a transaction step addressed to this shard as a participant.
    pub(in crate::shard) fn tx_participant(&mut self, from: ShardId, message: TxMessage) {
        match message {
            TxMessage::Lock { id, keys, watch } => {
                if self.txp.grantable(&keys, self.txp.waiting.len()) {
                    self.grant((from, id, keys), watch);
                } else {
                    self.txp.waiting.push_back((from, id, keys, watch));
                }
            }
            TxMessage::Run { id, ops, watch } => self.run_part(from, id, ops, watch),
            TxMessage::Release {
                id,
                commit,
                confirmed,
            } => self.release_part(from, id, commit, confirmed),
            other => debug_assert!(false, "{other:?} is for a coordinator"),
        }
    }

    /// Locks `keys` for transaction `id` and reads the SSTable blocks their lookups (and
    /// those of the keys client `watch` watches here) need through the ring; tells the
    /// coordinator once they are in the cache, so the part later runs from memory, not
    /// with a read on the loop.
    fn grant(
        &mut self,
        (coordinator, id, keys): (ShardId, TxId, Vec<super::Key>),
        watch: Option<u64>,
    ) {
        let watched = self.watched_keys(watch);
        let reads = self.fetch_for(
            keys.iter().chain(&watched).map(|k| &**k),
            super::super::fetch::Waiter::TxLock(id),
        );
        self.txp.grant(id, keys);
        if reads == 0 {
            self.post(coordinator, Message::Tx(TxMessage::Locked { id }));
        } else {
            self.txp.reading.insert(id, (coordinator, reads));
        }
    }

    /// A block read for the lock of transaction `id` completed.
    pub(in crate::shard) fn tx_lock_read_done(&mut self, id: TxId) {
        let Some((coordinator, left)) = self.txp.reading.get_mut(&id) else {
            return;
        };
        *left -= 1;
        if *left == 0 {
            let coordinator = *coordinator;
            self.txp.reading.remove(&id);
            self.post(coordinator, Message::Tx(TxMessage::Locked { id }));
        }
    }

    /// Runs a part: checks the watched keys, keeps what each key held before, and runs
    /// the ops as one marked part of the WAL; answers once its writes are durable.
    fn run_part(&mut self, from: ShardId, id: TxId, ops: Vec<(u32, OwnedOp)>, watch: Option<u64>) {
        if let Some(client) = watch {
            if !self.watched_unchanged(client) {
                let message = TxMessage::Ran {
                    id,
                    results: Vec::new(),
                    outcome: RunOutcome::WatchChanged,
                    wrote: false,
                };
                self.post(from, Message::Tx(message));
                return;
            }
        }
        let mut results = Vec::with_capacity(ops.len());
        let mut gate = SeqNo(0);
        let first = self.store.tx_part_begin();
        // One clock for the part: a sample's before-image is kept for the timestamp `*`
        // then means.
        let now_ms = super::super::ts_route::clock_ms();
        for (index, op) in &ops {
            let op = op.as_borrowed();
            let (result, op_gate) = match (self.refuse_series_write(&op), &op) {
                (Some(message), _) => (OpResult::Err(message), SeqNo(0)),
                (
                    None,
                    Op::Series {
                        request, writes, ..
                    },
                ) => self.run_series_op(id, (request, *writes), now_ms),
                (None, _) => {
                    self.keep_before_images(id, &op);
                    self.run_op(&op)
                }
            };
            gate = gate.max(op_gate);
            // A range is built whole here, under the part's locks.
            results.push((*index, self.stream_built(result)));
        }
        let part_seq = self.store.tx_part_end(id, first);
        if let Some(seq) = part_seq {
            gate = gate.max(seq);
        }
        let message = TxMessage::Ran {
            id,
            results,
            outcome: RunOutcome::Done,
            wrote: part_seq.is_some(),
        };
        self.post_when_durable(from, gate, Message::Tx(message));
    }

    /// Runs a time-series request of transaction `id`'s part at `now_ms`, keeping the
    /// before-image of the sample it writes first ([`SeriesUndo::before`]).
    fn run_series_op(
        &mut self,
        id: TxId,
        (request, writes): (&[u8], bool),
        now_ms: u64,
    ) -> (OpResult, SeqNo) {
        let mut kept = None;
        if let Some(part) = self.txp.parts.get_mut(&id) {
            match part
                .series
                .before(&self.store, &mut self.series, request, now_ms)
            {
                Ok(k) => kept = k,
                Err(message) => return (OpResult::Err(message), SeqNo(0)),
            }
        }
        let (result, gate) = match (writes, &self.poisoned) {
            (true, Some(reason)) => (OpResult::Err(reason.clone()), SeqNo(0)),
            _ => self.series_op_at(request, now_ms),
        };
        let failed = match &result {
            OpResult::Err(_) => true,
            OpResult::Encoded(reply) => reply.first() == Some(&b'-'),
            _ => false,
        };
        if let (true, Some(kept), Some(part)) = (failed, kept, self.txp.parts.get_mut(&id)) {
            part.series.failed(kept, &self.store, &mut self.series);
        }
        (result, gate)
    }

    /// A write of a key holding a time series, refused inside a transaction across shards:
    /// replacing or deleting a series could not be undone if the transaction failed.
    fn refuse_series_write(&mut self, op: &Op<&[u8]>) -> Option<String> {
        let writes = match op {
            Op::Set { .. } | Op::Del(_) | Op::PutVersion { .. } => true,
            Op::Strings(op) => op.writes(),
            _ => false,
        };
        if !writes {
            return None;
        }
        for key in op.user_keys() {
            match self.series.directory.contains(&self.store, key) {
                Ok(false) => {}
                Ok(true) => {
                    return Some(format!(
                    "ERR tskv cannot change the time series '{}' in a transaction across shards",
                    String::from_utf8_lossy(key)
                ))
                }
                Err(e) => return Some(format!("ERR storage error: {e}")),
            }
        }
        None
    }

    /// Records what each key `op` may write holds now, the first time the part touches it.
    fn keep_before_images(&mut self, id: TxId, op: &Op<&[u8]>) {
        let Some(part) = self.txp.parts.get(&id) else {
            return;
        };
        let mut new = Vec::new();
        for key in op.user_keys() {
            if part.before.iter().any(|(k, _)| &**k == key) || new.iter().any(|(k, _)| k == key) {
                continue;
            }
            let image = match self.store.get(key) {
                Ok(Some(found)) => found.value.map(|v| (v, found.expire_at_ms)),
                // Unreadable now: the op itself will fail on it the same way.
                Ok(None) | Err(_) => None,
            };
            new.push((key.to_vec(), image));
        }
        if let Some(part) = self.txp.parts.get_mut(&id) {
            part.before.extend(
                new.into_iter()
                    .map(|(k, image)| (k.into_boxed_slice(), image)),
            );
        }
    }

    /// Ends the part: on commit, writes this shard's own commit record (if it wrote
    /// anything) and answers once it is durable; otherwise writes back what the part
    /// overwrote. Then unlocks, grants waiting locks and runs parked requests; for a
    /// commit the coordinator could not confirm, only once this shard's own record is
    /// durable (until then a crash could still take the part back).
    fn release_part(&mut self, from: ShardId, id: TxId, commit: bool, confirmed: bool) {
        let mut part = self.txp.parts.remove(&id).unwrap_or_default();
        let series = std::mem::take(&mut part.series);
        let mut gate = SeqNo(0);
        if commit {
            if self.store.has_tx_part(id) {
                gate = self.store.commit_tx(id, false);
            }
            series.release(&mut self.series, self.store.last_seq());
        } else if self.store.has_tx_part(id) {
            // As ordinary writes after the part: whether or not the part's own records
            // survive a crash, these come later and win.
            for (key, image) in part.before.iter().rev() {
                match image {
                    Some((value, expire_at_ms)) => {
                        self.store.put_expiring(key, value, *expire_at_ms);
                    }
                    None => {
                        self.store.delete(key);
                    }
                }
            }
            series.undo(&mut self.store, &mut self.series);
            self.store.abort_tx(id);
        } else {
            series.release(&mut self.series, self.store.last_seq());
        }
        let durable = self.poisoned.is_none() || gate == SeqNo(0);
        let message = Message::Tx(TxMessage::Released { id, durable });
        self.post_when_durable(from, gate, message);
        if !confirmed && gate > self.ack_seq() {
            self.txp.unlock_after.push_back((gate, part.keys));
            return;
        }
        self.unlock(&part.keys);
    }

    /// Unlocks `keys`, grants the waiting locks that can go now, and runs the requests
    /// parked behind them.
    fn unlock(&mut self, keys: &[Box<[u8]>]) {
        for key in keys {
            self.txp.held.remove(key);
        }
        self.grant_waiting();
        self.run_parked();
    }

    /// Unlocks the keys of unconfirmed commits whose own commit record is durable now.
    /// Once this shard refuses writes, they stay locked: whether their part counts is
    /// decided at the next start.
    pub(in crate::shard) fn unlock_acknowledged(&mut self) {
        let ack = self.ack_seq();
        while self
            .txp
            .unlock_after
            .front()
            .is_some_and(|(gate, _)| *gate <= ack)
        {
            let (_, keys) = self.txp.unlock_after.pop_front().expect("front exists");
            self.unlock(&keys);
        }
    }

    /// Grants the waiting lock requests that can go now, in order.
    fn grant_waiting(&mut self) {
        let mut index = 0;
        while index < self.txp.waiting.len() {
            if self.txp.grantable(&self.txp.waiting[index].2, index) {
                let (coordinator, id, keys, watch) =
                    self.txp.waiting.remove(index).expect("in range");
                self.grant((coordinator, id, keys), watch);
            } else {
                index += 1;
            }
        }
    }

    /// Runs parked requests whose keys are free now, each shard's in order.
    fn run_parked(&mut self) {
        for from in 0..self.txp.parked.len() {
            while let Some(Message::Request { op, .. }) = self.txp.parked[from].front() {
                if self.txp.locks_any(op.as_borrowed().user_keys()) {
                    break;
                }
                let message = self.txp.parked[from].pop_front().expect("front exists");
                if let Message::Request { reply_to, op } = message {
                    // Its keys are free; the requests parked behind it wait their turn.
                    self.execute_request(ShardId(from), reply_to, op, false);
                }
            }
        }
    }
}
