//! `DBSIZE` (and `INFO keyspace`) without scanning the data on the shard's loop.
//!
//! A shard's part of `DBSIZE` is answered at once from the last count when nothing was
//! written since. Otherwise the shard takes a [`Snapshot`] of its store (the current
//! version, the frozen memtables, and a copy of the active memtable's user keys, values
//! left out: one pass over the active memtable, no disk read), and a helper thread counts
//! the live keys of the snapshot by a merged scan ([`snapshot_user_key_count`]) while the
//! loop serves everyone else. The part waits beside the loop, like a remote part, and is
//! answered when the count arrives (the thread wakes the shard). The count is exact as of
//! the snapshot, which is taken after the request arrived and before it is answered; its
//! reply waits, as every read's, until the writes it counted are durable. A part that
//! arrives while a count of the same state runs joins it; at most
//! `KEY_COUNTS_RUNNING_MAX` counts run at once, and a part past that counts on the loop,
//! as before (exact either way).
//!
//! [`Snapshot`]: crate::store::Snapshot
//! [`snapshot_user_key_count`]: super::scan::snapshot_user_key_count

use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

use super::mesh::{OpResult, ReplyTo, ShardId};
use super::Shard;
use crate::base::SeqNo;

/// Counts running on helper threads at once, per shard; past it a count runs on the loop.
const KEY_COUNTS_RUNNING_MAX: usize = 4;

/// One count on a helper thread: its snapshot's sequence number, where its result
/// arrives, and the parts waiting for it.
type RunningCount = (
    SeqNo,
    Receiver<Result<super::scan::KeyCount, String>>,
    Vec<(ShardId, ReplyTo)>,
);

/// The key counts of one shard in progress, with the parts waiting for them.
#[derive(Debug, Default)]
pub(super) struct KeyCounts {
    running: Vec<RunningCount>,
}

impl Shard {
    /// A `DBSIZE` part for `reply_to` on shard `from`: returns false when the part can run
    /// now (the last count is current, or too many counts run already and it counts on
    /// the loop), else sets it aside for a count of a snapshot taken now (or for a running
    /// count whose snapshot has the same sequence number) and returns true. The snapshot
    /// is taken when the part arrives, so the count holds exactly the writes before it.
    pub(super) fn defer_key_count(&mut self, from: ShardId, reply_to: ReplyTo) -> bool {
        let last_seq = self.store.last_seq();
        let current = self.live_keys_counted.is_some_and(|(seq, count)| {
            seq == last_seq
                && !crate::base::is_expired(count.first_deadline_ms, crate::base::unix_now_ms())
        });
        if current {
            return false;
        }
        if let Some((_, _, waiting)) = self
            .key_counts
            .running
            .iter_mut()
            .find(|(seq, _, _)| *seq == last_seq)
        {
            waiting.push((from, reply_to));
            return true;
        }
        if self.key_counts.running.len() >= KEY_COUNTS_RUNNING_MAX {
            return false;
        }
        let snapshot = self
            .store
            .snapshot(Some(&crate::timeseries::keys::USER_KEYS_END));
        let (done, result) = mpsc::channel();
        let shared = Arc::clone(&self.shared);
        let id = self.id;
        let count = move || {
            let counted =
                super::scan::snapshot_user_key_count(&snapshot).map_err(|e| e.to_string());
            drop(snapshot);
            let _ = done.send(counted);
            shared.wakers[id.0].wake();
        };
        match std::thread::Builder::new()
            .name("tskv-dbsize".into())
            .spawn(count)
        {
            Ok(_) => {
                let waiting = vec![(from, reply_to)];
                self.key_counts.running.push((last_seq, result, waiting));
                true
            }
            Err(e) => {
                tracing::warn!(shard = self.id.0, error = %e, "cannot start a DBSIZE thread; counting on the loop");
                false
            }
        }
    }

    /// Answers the parts of every finished count. Called every loop iteration.
    pub(super) fn complete_key_counts(&mut self) {
        let mut index = 0;
        while index < self.key_counts.running.len() {
            let counted = match self.key_counts.running[index].1.try_recv() {
                Ok(counted) => counted,
                Err(TryRecvError::Empty) => {
                    index += 1;
                    continue;
                }
                Err(TryRecvError::Disconnected) => Err("the DBSIZE thread stopped".into()),
            };
            let (seq, _, waiting) = self.key_counts.running.swap_remove(index);
            if let Ok(count) = counted {
                if self.store.last_seq() == seq {
                    self.live_keys_counted = Some((seq, count));
                }
            }
            for (from, reply_to) in waiting {
                let result = match &counted {
                    Ok(count) => OpResult::KeyCount {
                        keys: count.keys as i64,
                        expires: count.expires as i64,
                    },
                    Err(e) => OpResult::Err(format!("ERR storage error: {e}")),
                };
                self.answer_part(from, reply_to, result, seq);
            }
        }
    }
}
