//! Single-key operations ([`Op`]): routing each to the shard that owns its key
//! ([`Shard::scatter`]), running those owned here against the store ([`Shard::run_op`]),
//! and the messages between shards that carry them and their results.

use super::conn::{Reply, Slot};
use super::mesh::{self, Message, Op, OpResult, ReplyTo, ShardId};
use super::metrics::ShardMetrics;
use super::{fetch, strings, Shard};
use crate::base::SeqNo;
use crate::command::SetCondition;

use super::exec::{storage_error, Wait};

impl Shard {
    /// Runs each single-key part on its owning shard: local parts now, remote parts by
    /// message. Checks capacity for every remote part first, so a command is never half
    /// sent.
    pub(super) fn scatter(
        &mut self,
        key: (u32, u32),
        reply: Reply,
        ops: &[Op<&[u8]>],
    ) -> Result<(), Wait> {
        let shards = self.shards;
        let owner = move |part: usize, op: &Op<&[u8]>| match op {
            Op::Get(k) | Op::Exists(k) | Op::Del(k) | Op::Set { key: k, .. } => {
                mesh::shard_of(k, shards)
            }
            Op::Series { key: k, .. } | Op::Inspect { key: k, .. } => mesh::shard_of(k, shards),
            Op::DbSize
            | Op::Keys(_)
            | Op::RandomKey
            | Op::ClientList
            | Op::ClientKill { .. }
            | Op::SeriesAll { .. }
            | Op::Admin(_) => ShardId(part),
            Op::Scan { shard, .. } => *shard,
            Op::Strings(op) => mesh::shard_of(op.keys()[0], shards),
            Op::Batch { shard, .. } | Op::Unwatch { shard, .. } => *shard,
            Op::Watch { key: k, .. }
            | Op::ReadVersion(k)
            | Op::KeyType(k)
            | Op::PutVersion { key: k, .. } => mesh::shard_of(k, shards),
        };
        let mut remote_parts = 0u32;
        if self.shards > 1 {
            let cap = self.config().shard_queue_len;
            let mut wanted = std::mem::take(&mut self.wanted_scratch);
            wanted.clear();
            wanted.resize(self.shards, 0);
            for (part, op) in ops.iter().enumerate() {
                let to = owner(part, op);
                if to != self.id {
                    wanted[to.0] += 1;
                    remote_parts += 1;
                }
            }
            let full = wanted
                .iter()
                .zip(&self.in_flight_to)
                .any(|(&w, &f)| w > 0 && w + f > cap.max(w));
            self.wanted_scratch = wanted;
            if full {
                return Err(Wait::Capacity);
            }
            let output_max = self.config().client_output_bytes_max;
            let conn = self.conn(key).expect("caller checked");
            if remote_parts > 0 && !conn.remote_window_allows(remote_parts as usize, output_max) {
                return Err(Wait::Output);
            }
        }
        if self.txp.holds_any()
            && ops
                .iter()
                .enumerate()
                .any(|(part, op)| owner(part, op) == self.id && self.txp.locks_any(op.user_keys()))
        {
            return Err(Wait::Locked);
        }
        let ack = self.ack_seq();
        let conn = self.conn_mut(key).expect("caller checked");
        let slot_id = conn.first_slot_id + conn.slots.len() as u64;
        let mut slot = Slot {
            gate: SeqNo(0),
            parts_left: remote_parts,
            reply,
            error: None,
            // Stamped by `push_slot`.
            proto: crate::resp::Protocol::Resp2,
            silent: false,
        };
        let mut deferred_parts = 0;
        for (part, op) in ops.iter().enumerate() {
            let to = owner(part, op);
            let reply_to = ReplyTo {
                conn_index: key.0,
                conn_gen: key.1,
                slot_id,
                part: part as u32,
            };
            if to == self.id && self.defer_part(op, self.id, reply_to) {
                // Answered later (a flush, a key count), like a remote part.
                slot.parts_left += 1;
                deferred_parts += 1;
            } else if to == self.id {
                let (result, gate) = self.run_op(op);
                slot.gate = slot.gate.max(gate);
                slot.apply(part as u32, result);
            } else {
                self.outbox[to.0].push_back(Message::Request {
                    reply_to,
                    op: op.to_owned_op(),
                });
                self.in_flight_to[to.0] += 1;
                ShardMetrics::add(&self.metrics().forwarded_requests, 1);
            }
        }
        slot.refuse_if_over(self.config().client_output_bytes_max);
        let gated = slot.gate > ack;
        let conn = self.conn_mut(key).expect("caller checked");
        conn.remote_parts_in_flight += remote_parts as usize + deferred_parts;
        let id = conn.push_slot(slot, ack);
        debug_assert_eq!(id, slot_id);
        if gated && !conn.waiting_durable {
            conn.waiting_durable = true;
            self.durable_waiters.push(key);
        }
        self.mark_dirty(key);
        Ok(())
    }

    /// Executes one operation on this shard's store. Returns the result and the sequence
    /// number the reply must wait for: the write's own, or that of the version read (so a
    /// reader never sees a value that a crash could still take back).
    pub(super) fn run_op(&mut self, op: &Op<&[u8]>) -> (OpResult, SeqNo) {
        if crate::fault::shard_panics(self.id.0) {
            panic!(
                "injected fault ({}={})",
                crate::fault::SHARD_PANIC_VAR,
                self.id.0
            );
        }
        let is_write = match op {
            Op::Set { .. } | Op::Del(_) | Op::PutVersion { .. } => true,
            Op::Strings(op) => op.writes(),
            Op::Series { writes, .. } => *writes,
            Op::Admin(op) => op.writes(),
            _ => false,
        };
        if is_write {
            if let Some(reason) = &self.poisoned {
                return (OpResult::Err(reason.clone()), SeqNo(0));
            }
        }
        match *op {
            Op::Get(k) => match self.store.get(k) {
                Ok(Some(found)) if found.value.is_some() => {
                    (OpResult::Value(found.value), found.seq)
                }
                Ok(string) => match self.series_on_miss(k, string) {
                    Ok((true, gate)) => (OpResult::WrongType, gate),
                    Ok((false, gate)) => (OpResult::Value(None), gate),
                    Err(e) => (OpResult::Err(storage_error(&e)), SeqNo(0)),
                },
                Err(e) => (OpResult::Err(storage_error(&e)), SeqNo(0)),
            },
            Op::Exists(k) => match self.store.get(k) {
                Ok(Some(found)) if found.value.is_some() => (OpResult::Int(1), found.seq),
                Ok(string) => match self.series_on_miss(k, string) {
                    Ok((exists, gate)) => (OpResult::Int(i64::from(exists)), gate),
                    Err(e) => (OpResult::Err(storage_error(&e)), SeqNo(0)),
                },
                Err(e) => (OpResult::Err(storage_error(&e)), SeqNo(0)),
            },
            Op::Set {
                key,
                value,
                condition,
            } => {
                if condition != SetCondition::Always {
                    let (exists, seen) = match self.key_exists(key) {
                        Ok(found) => found,
                        Err(e) => return (OpResult::Err(storage_error(&e)), SeqNo(0)),
                    };
                    if exists == (condition == SetCondition::IfAbsent) {
                        return (OpResult::NotApplied, seen);
                    }
                }
                // SET replaces a key of any type: a series of that name goes first.
                if let Err(message) = self.replace_series(key) {
                    return (OpResult::Err(message), SeqNo(0));
                }
                let seq = self.store.put(key, value);
                (OpResult::Ok, seq)
            }
            Op::Del(k) => self.del_op(k),
            Op::DbSize => match self.live_keys() {
                Ok(count) => (
                    OpResult::KeyCount {
                        keys: count.keys as i64,
                        expires: count.expires as i64,
                    },
                    self.store.last_seq(),
                ),
                Err(e) => (OpResult::Err(storage_error(&e)), SeqNo(0)),
            },
            // Keys listed may come from writes not yet durable: wait for all of them.
            Op::Scan { .. } | Op::Keys(_) | Op::RandomKey => {
                (self.run_walk(op), self.store.last_seq())
            }
            Op::Series { request, .. } => self.series_op(request),
            Op::SeriesAll { request } => self.series_all_op(request),
            Op::Strings(ref op) => {
                let value_bytes_max = self.config().limits.bulk_bytes_max;
                let (result, gate) = strings::run(&mut self.store, op, value_bytes_max);
                self.after_string_write(op, result, gate)
            }
            Op::Admin(op) => self.admin_op(op),
            Op::ClientList => (self.client_lines(), SeqNo(0)),
            Op::ClientKill {
                ref filter,
                skip_id,
            } => (self.kill_clients(filter, skip_id), SeqNo(0)),
            Op::Inspect { key, query } => self.inspect_op(key, query),
            Op::Watch { key, client } => {
                self.watch_op(key, client);
                (OpResult::Ok, SeqNo(0))
            }
            Op::Unwatch { client, .. } => {
                self.unwatch_op(client);
                (OpResult::Ok, SeqNo(0))
            }
            Op::Batch {
                watch: Some(client),
                ..
            } if !self.watched_unchanged(client) => (OpResult::ExecAborted, self.store.last_seq()),
            Op::KeyType(k) => match self.store.get(k) {
                Ok(Some(found)) if found.value.is_some() => {
                    (OpResult::TypeName("string"), found.seq)
                }
                Ok(string) => match self.series_on_miss(k, string) {
                    Ok((true, gate)) => (OpResult::TypeName("TSDB-TYPE"), gate),
                    Ok((false, gate)) => (OpResult::TypeName("none"), gate),
                    Err(e) => (OpResult::Err(storage_error(&e)), SeqNo(0)),
                },
                Err(e) => (OpResult::Err(storage_error(&e)), SeqNo(0)),
            },
            Op::ReadVersion(k) => match self.store.get(k) {
                Ok(Some(found)) if found.value.is_some() => (
                    OpResult::Version(found.value.map(|v| (v, found.expire_at_ms))),
                    found.seq,
                ),
                Ok(string) => match self.series_on_miss(k, string) {
                    Ok((true, gate)) => (OpResult::WrongType, gate),
                    Ok((false, gate)) => (OpResult::Version(None), gate),
                    Err(e) => (OpResult::Err(storage_error(&e)), SeqNo(0)),
                },
                Err(e) => (OpResult::Err(storage_error(&e)), SeqNo(0)),
            },
            Op::PutVersion {
                key,
                value,
                expire_at_ms,
            } => (
                OpResult::Ok,
                self.store.put_expiring(key, value, expire_at_ms),
            ),
            Op::Batch { ref ops, .. } => {
                let mut gate = SeqNo(0);
                let results = ops
                    .iter()
                    .map(|op| {
                        let (result, op_gate) = self.run_op(op);
                        gate = gate.max(op_gate);
                        // A transaction's replies are built at once.
                        self.stream_built(result)
                    })
                    .collect();
                (OpResult::Batch(results), gate)
            }
        }
    }

    /// Runs a request from shard `from` and queues its reply (after the acknowledgement
    /// point passes what it depends on).
    ///
    /// A request touching a key a transaction across shards holds is parked instead, and
    /// so, with `behind_parked`, is one that came after a parked request from `from`.
    pub(super) fn execute_request(
        &mut self,
        from: ShardId,
        reply_to: ReplyTo,
        op: mesh::OwnedOp,
        behind_parked: bool,
    ) {
        if (self.txp.holds_any() && self.txp.locks_any(op.as_borrowed().user_keys()))
            || (behind_parked && self.txp.parks(from))
        {
            self.txp.park(from, Message::Request { reply_to, op });
            return;
        }
        if self.defer_part(&op.as_borrowed(), from, reply_to) {
            return;
        }
        self.fetches.running = Some(fetch::Waiter::Source(from));
        self.pin_series_blocks(fetch::Waiter::Source(from));
        let (result, gate) = self.run_op(&op.as_borrowed());
        self.unpin_series_blocks();
        self.fetches.running = None;
        self.post_when_durable(from, gate, Message::Reply { reply_to, result });
    }

    /// Handles one message from shard `from`.
    pub(super) fn handle_message(&mut self, from: ShardId, message: Message) {
        match message {
            Message::Request { reply_to, op } => {
                if self.txp.parks(from)
                    || (self.txp.holds_any() && self.txp.locks_any(op.as_borrowed().user_keys()))
                {
                    self.txp.park(from, Message::Request { reply_to, op });
                    return;
                }
                if self.fetches.holds(from) {
                    self.defer_request(from, Message::Request { reply_to, op }, 0);
                    return;
                }
                let watched = match op {
                    Op::Batch { watch, .. } => self.watched_keys(watch),
                    _ => Vec::new(),
                };
                let mut reads = self.plan_walk(&op.as_borrowed(), fetch::Waiter::Source(from));
                if reads == 0 {
                    let borrowed = op.as_borrowed();
                    reads = match self.plan_series_op(&borrowed, fetch::Waiter::Source(from)) {
                        Some(series_reads) => series_reads,
                        None => {
                            let keys = fetch::read_keys(&borrowed)
                                .into_iter()
                                .chain(watched.iter().map(|k| &**k));
                            self.fetch_for(keys, fetch::Waiter::Source(from))
                        }
                    };
                }
                if reads > 0 {
                    self.defer_request(from, Message::Request { reply_to, op }, reads);
                    return;
                }
                self.execute_request(from, reply_to, op, true);
            }

            Message::Tx(step) => match step {
                mesh::TxMessage::Lock { .. }
                | mesh::TxMessage::Run { .. }
                | mesh::TxMessage::Release { .. } => self.tx_participant(from, step),
                mesh::TxMessage::Locked { .. }
                | mesh::TxMessage::Ran { .. }
                | mesh::TxMessage::Released { .. } => self.tx_coordinator(step),
            },
            Message::Rule(rule) => self.handle_rule_message(from, rule),
            Message::Keys(keys) => self.handle_keys_message(from, keys),

            Message::Reply { reply_to, result } => {
                self.in_flight_to[from.0] = self.in_flight_to[from.0].saturating_sub(1);
                let key = (reply_to.conn_index, reply_to.conn_gen);
                let ack = self.ack_seq();
                let poisoned = self.poisoned.clone();
                let output_max = self.config().client_output_bytes_max;
                let Some(conn) = self.conn_mut(key) else {
                    return;
                };
                if !conn.apply_remote(reply_to.slot_id, reply_to.part, result, output_max) {
                    return;
                }
                if conn.promote(ack, poisoned.as_deref()) {
                    self.mark_dirty(key);
                }
            }
        }
    }
}
