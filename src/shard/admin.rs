//! Server administration on the shards: `SAVE`, `BGSAVE`, `LASTSAVE`, `FLUSHDB` and
//! `FLUSHALL`.
//!
//! - **`SAVE`** goes to every shard as an [`AdminOp::Save`] part. Each shard asks its store
//!   to freeze the active memtable ([`ShardStore::request_freeze`]) and answers its part
//!   once every write it had when the part arrived is in an installed SSTable
//!   ([`ShardStore::flushed_seq`]); meanwhile the part waits in [`Saves`] while the shard
//!   serves everyone else. The reply is `+OK` once every shard answered.
//! - **`BGSAVE`** starts the same freeze on every shard and replies `+Background saving
//!   started` once each one has it in hand.
//! - **`LASTSAVE`** is the oldest of the shards' last save times: every write of every
//!   shard older than it is in an SSTable. A shard's time moves when a flush is installed
//!   (that flush covers every write up to its freeze) or when a save finds nothing to
//!   flush; at start it is the time the store was opened, as Redis reports its last load.
//! - **`FLUSHDB` / `FLUSHALL`** go to every shard as [`AdminOp::FlushAll`], a write: each
//!   shard's store appends a drop-all WAL record and empties itself in memory
//!   ([`ShardStore::drop_all`], which describes the crash safety), and the part's reply
//!   waits for the fdatasync covering that record like a `SET`'s. `ASYNC` and `SYNC` do
//!   the same: the old tables are deleted in the background either way.
//!
//! [`ShardStore::request_freeze`]: crate::store::ShardStore::request_freeze
//! [`ShardStore::flushed_seq`]: crate::store::ShardStore::flushed_seq
//! [`ShardStore::drop_all`]: crate::store::ShardStore::drop_all

use std::time::UNIX_EPOCH;

use super::conn::Reply;
use super::exec::Wait;
use super::mesh::{Message, Op, OpResult, ReplyTo, ShardId};
use super::metrics::ShardMetrics;
use super::Shard;
use crate::base::SeqNo;
use crate::command::AdminCommand;
use crate::resp;

/// One shard's part of an administration command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminOp {
    /// `SAVE`: answered once every write the shard had is in an SSTable.
    Save,
    /// `BGSAVE`: start flushing the memtable; answered at once.
    BgSave,
    /// `FLUSHALL`: drop every key; answered once the drop is durable.
    FlushAll,
}

impl AdminOp {
    /// Whether the part writes (refused by a shard that refuses writes).
    pub fn writes(self) -> bool {
        self == Self::FlushAll
    }
}

/// The `SAVE` parts a shard has not answered yet, and its `BGSAVE` in progress.
#[derive(Debug, Default)]
pub(super) struct Saves {
    /// Each part: the sequence number every write up to which must be flushed, the shard
    /// that asked (this one for a local part) and where its answer goes.
    waiting: Vec<(SeqNo, ShardId, ReplyTo)>,
    /// A `BGSAVE`'s target, until the flushes reach it (`rdb_bgsave_in_progress`).
    background: Option<SeqNo>,
}

impl Shard {
    /// Runs an administration command of connection `key`.
    pub(super) fn admin_command(
        &mut self,
        key: (u32, u32),
        command: AdminCommand,
    ) -> Result<(), Wait> {
        let part = match command {
            AdminCommand::LastSave => {
                let mut reply = Vec::new();
                resp::integer(&mut reply, last_save_unix_s(&self.shared.metrics) as i64);
                self.push_ready(key, Reply::Encoded(reply));
                return Ok(());
            }
            AdminCommand::Save => (AdminOp::Save, Reply::AllOk),
            AdminCommand::BgSave => (
                AdminOp::BgSave,
                Reply::Static(b"+Background saving started\r\n"),
            ),
            AdminCommand::FlushAll => (AdminOp::FlushAll, Reply::AllOk),
        };
        let ops = vec![Op::Admin(part.0); self.shards];
        self.scatter(key, part.1, &ops)
    }

    /// Runs this shard's part of an administration command; `SAVE`'s waiting parts went
    /// to [`Shard::defer_save`] before. Returns the result and the sequence number its
    /// reply waits for.
    pub(super) fn admin_op(&mut self, op: AdminOp) -> (OpResult, SeqNo) {
        if let Some(reason) = &self.poisoned {
            // No flush runs on a shard that refuses writes, so no save can finish.
            return (OpResult::Err(reason.clone()), SeqNo(0));
        }
        match op {
            AdminOp::Save => {
                self.store.note_saved();
                self.publish_save_stats();
                (OpResult::Ok, SeqNo(0))
            }
            AdminOp::BgSave => {
                self.store.request_freeze();
                if self.store.has_unflushed_writes() {
                    let target = self.store.last_seq();
                    self.saves.background =
                        Some(self.saves.background.unwrap_or_default().max(target));
                } else {
                    self.store.note_saved();
                }
                (OpResult::Ok, SeqNo(0))
            }
            AdminOp::FlushAll => {
                let seq = self.store.drop_all();
                // What the shard remembers of series and key counts went with the keys;
                // which shard this is did not.
                let route = self.series.route;
                self.series = Default::default();
                self.series.route = route;
                self.live_keys_counted = None;
                (OpResult::Ok, seq)
            }
        }
    }

    /// Sets aside a part that is answered later, off the order of the loop: a `SAVE`
    /// part waiting for a flush, a `DBSIZE` part waiting for a count ([`super::dbsize`]).
    /// Returns false when `op` runs now instead.
    pub(super) fn defer_part(&mut self, op: &Op<&[u8]>, from: ShardId, reply_to: ReplyTo) -> bool {
        match op {
            Op::Admin(AdminOp::Save) => self.defer_save(from, reply_to),
            Op::DbSize => self.defer_key_count(from, reply_to),
            Op::Series { request, .. } => self.defer_rule_command(request, from, reply_to),
            _ => false,
        }
    }

    /// If a `SAVE` part must wait for a flush, starts the flush, sets the part aside to
    /// be answered to `reply_to` on shard `from`, and returns true.
    fn defer_save(&mut self, from: ShardId, reply_to: ReplyTo) -> bool {
        if self.poisoned.is_some() {
            return false;
        }
        if !self.store.has_unflushed_writes() {
            return false;
        }
        self.store.request_freeze();
        self.saves
            .waiting
            .push((self.store.last_seq(), from, reply_to));
        true
    }

    /// Answers the `SAVE` parts whose writes are all flushed now (or, once the shard
    /// refuses writes, with its reason) and ends a finished `BGSAVE`. Called every loop
    /// iteration; costs nothing when no save waits.
    pub(super) fn complete_saves(&mut self) {
        let flushed = self.store.flushed_seq();
        if self
            .saves
            .background
            .is_some_and(|target| target <= flushed)
        {
            self.saves.background = None;
        }
        // Published before any part is answered, so a `LASTSAVE` after the `SAVE` sees it.
        self.publish_save_stats();
        if self.saves.waiting.is_empty() {
            return;
        }
        let poisoned = self.poisoned.clone();
        let mut waiting = std::mem::take(&mut self.saves.waiting);
        waiting.retain(|&(target, from, reply_to)| {
            let result = match &poisoned {
                Some(reason) => OpResult::Err(reason.clone()),
                None if target <= flushed => OpResult::Ok,
                None => return true,
            };
            self.answer_part(from, reply_to, result, SeqNo(0));
            false
        });
        self.saves.waiting = waiting;
    }

    /// Sends a deferred part's result to the shard that asked for it, or fills in the slot
    /// of one of this shard's connections; either waits until the acknowledgement point
    /// reaches `gate` (what the result read), as [`Shard::execute_request`] does.
    pub(super) fn answer_part(
        &mut self,
        from: ShardId,
        reply_to: ReplyTo,
        result: OpResult,
        gate: SeqNo,
    ) {
        let ack = self.ack_seq();
        if from != self.id {
            self.post_when_durable(from, gate, Message::Reply { reply_to, result });
            return;
        }
        let key = (reply_to.conn_index, reply_to.conn_gen);
        let poisoned = self.poisoned.clone();
        let output_max = self.config().client_output_bytes_max;
        let Some(conn) = self.conn_mut(key) else {
            return;
        };
        if let Some(slot) = conn.slot_mut(reply_to.slot_id) {
            slot.gate = slot.gate.max(gate);
        }
        if !conn.apply_remote(reply_to.slot_id, reply_to.part, result, output_max) {
            return;
        }
        conn.promote(ack, poisoned.as_deref());
        if conn.has_gated_slots(ack) && poisoned.is_none() && !conn.waiting_durable {
            conn.waiting_durable = true;
            self.durable_waiters.push(key);
        }
        self.mark_dirty(key);
    }

    /// Publishes what `LASTSAVE` and `INFO persistence` show of this shard.
    fn publish_save_stats(&self) {
        let metrics = self.metrics();
        let saved_at = self
            .store
            .flushed_at()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        ShardMetrics::set(&metrics.last_save_unix_s, saved_at);
        let changes = self.store.last_seq().0 - self.store.flushed_seq().0;
        ShardMetrics::set(&metrics.changes_since_save, changes);
        ShardMetrics::set(
            &metrics.bgsave_in_progress,
            u64::from(self.saves.background.is_some()),
        );
    }
}

/// `LASTSAVE`: the oldest of the shards' last save times, in unix seconds.
pub(super) fn last_save_unix_s(shards: &[ShardMetrics]) -> u64 {
    shards
        .iter()
        .map(|m| {
            m.last_save_unix_s
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .min()
        .unwrap_or(0)
}
