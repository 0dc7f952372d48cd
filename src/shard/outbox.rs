//! This shard's side of the queues between shards ([`super::mesh`]): messages queued for a
//! peer (or for itself: a transaction's coordinator and participant can be one shard),
//! held until the acknowledgement point passes what they depend on, pushed into the
//! peers' queues, and drained from them.

use std::sync::atomic::Ordering;

use super::mesh::{self, Message, ShardId};
use super::Shard;
use crate::base::SeqNo;

impl Shard {
    /// Queues `message` for shard `to` (this shard's own queue when `to` is itself).
    pub(super) fn post(&mut self, to: ShardId, message: Message) {
        self.outbox[to.0].push_back(message);
    }

    /// Queues `message` for `to` once the acknowledgement point reaches `gate`.
    pub(super) fn post_when_durable(&mut self, to: ShardId, gate: SeqNo, message: Message) {
        if gate <= self.ack_seq() {
            self.post(to, message);
            return;
        }
        // Kept ordered by gate, so it drains from the front.
        let tail_gate = self.remote_waiting.back().map_or(SeqNo(0), |(g, _, _)| *g);
        self.remote_waiting
            .push_back((gate.max(tail_gate), to, message));
    }

    /// Whether replies (local or to peers) wait for the acknowledgement point.
    pub(super) fn has_gated_replies(&self) -> bool {
        !self.durable_waiters.is_empty() || !self.remote_waiting.is_empty()
    }

    /// Releases replies (local and to peers) whose gate the acknowledgement point passed.
    pub(super) fn release_acknowledged(&mut self) {
        let ack = self.ack_seq();
        let poisoned = self.poisoned.clone();
        let waiters = std::mem::take(&mut self.durable_waiters);
        for key in waiters {
            let Some(conn) = self.conn_mut(key) else {
                continue;
            };
            conn.waiting_durable = false;
            conn.promote(ack, poisoned.as_deref());
            let still_waiting = conn.has_gated_slots(ack) && poisoned.is_none();
            if still_waiting {
                conn.waiting_durable = true;
                self.durable_waiters.push(key);
            }
            self.mark_dirty(key);
        }
        while let Some((gate, _, _)) = self.remote_waiting.front() {
            if *gate > ack && poisoned.is_none() {
                break;
            }
            let (gate, to, mut message) = self.remote_waiting.pop_front().expect("front exists");
            // What a message reports may not be durable once the shard refuses writes:
            // each kind says so in its own way, or is not sent at all.
            let mut send = true;
            if let (true, Some(reason)) = (gate > ack, &poisoned) {
                match &mut message {
                    Message::Reply { result, .. } => *result = mesh::OpResult::Err(reason.clone()),
                    Message::Tx(mesh::TxMessage::Ran { outcome, .. }) => {
                        *outcome = mesh::RunOutcome::Failed(reason.clone());
                    }
                    Message::Tx(mesh::TxMessage::Released { durable, .. }) => *durable = false,
                    Message::Rule(rule) => send = rule.refuse(reason),
                    _ => {}
                }
            }
            if send {
                self.outbox[to.0].push_back(message);
            }
        }
        self.tx_commits_acknowledged();
        self.unlock_acknowledged();
    }

    /// Pushes queued messages into the peers' queues (as many as fit) and wakes them.
    pub(super) fn send_outbox(&mut self) {
        for to in 0..self.shards {
            let queue = &mut self.outbox[to];
            if queue.is_empty() {
                continue;
            }
            let Some(producer) = self.links.outgoing[to].as_mut() else {
                continue;
            };
            let mut sent = false;
            while let Some(message) = queue.pop_front() {
                match producer.push(message) {
                    Ok(()) => sent = true,
                    Err(rtrb::PushError::Full(message)) => {
                        queue.push_front(message);
                        break;
                    }
                }
            }
            if sent {
                std::sync::atomic::fence(Ordering::SeqCst);
                self.shared.wakers[to].wake_if_sleeping();
            }
        }
    }

    /// Handles every message waiting in the queues from peers, then those this shard sent
    /// itself.
    pub(super) fn drain_queues(&mut self) {
        self.close_keys_cursors();
        self.release_yielded_walks();
        for from in 0..self.shards {
            while let Some(Ok(message)) = self.links.incoming[from].as_mut().map(|c| c.pop()) {
                self.handle_message(ShardId(from), message);
            }
        }
        // Transaction steps this shard sent itself (coordinator and participant at once);
        // those they cause wait for the next pass.
        let own = std::mem::take(&mut self.outbox[self.id.0]);
        for message in own {
            self.handle_message(self.id, message);
        }
    }
}
