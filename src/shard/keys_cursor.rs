//! The walked shard's end of a streamed `KEYS` reply: a cursor over a frozen snapshot of
//! the shard's keys, pulled one batch at a time by the shard serving the connection
//! ([`super::keys_reply`]).
//!
//! A `KEYS` part whose matching keys pass [`KEYS_WHOLE_BYTES_MAX`] is not built at once.
//! The shard takes a [`Snapshot`] (the active memtable's matching keys copied, the frozen
//! memtables and the current version's tables held by reference counting, so no flush or
//! compaction deletes a file under it) and counts its matching keys in a first walk; the
//! count goes back in the part's result ([`OpenCursor`]), since the reply's array header
//! needs it before the first key. Each pull then walks the same snapshot on from where the
//! last one stopped, for up to [`KEYS_BATCH_BYTES`] of keys ([`KeysMessage`]). Both walks
//! read blocks as every walk does: from memory, missing blocks read through the ring and
//! pinned for the cursor ([`super::fetch`]), so none blocks the loop. The snapshot sees
//! the same keys on every walk, so the keys sent are exactly the keys counted, whatever
//! is written, flushed or compacted meanwhile.
//!
//! A cursor lives until its last batch was taken, or until its [`OpenCursor`] is dropped
//! (the reply ended, failed, or its connection closed), wherever that happens: the drop
//! lists the cursor as closed and wakes its shard, which forgets it
//! ([`Shard::close_keys_cursors`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::fetch::{Keep, Waiter};
use super::mesh::{Message, OpResult, ShardId};
use super::scan_walk::{KeyFilter, SnapshotSource, Walk, WalkEnd, WalkNeeds};
use super::{Shard, Shared};
use crate::block_cache::PinnedBlocks;
use crate::config::{KEYS_BATCH_BYTES, KEYS_WALK_ROUND_ENTRIES_MAX, KEYS_WHOLE_BYTES_MAX};
use crate::store::Snapshot;

/// Messages between the shard serving a streamed `KEYS` reply and a shard it pulls from.
#[derive(Debug)]
pub enum KeysMessage {
    /// Asks for the next batch of cursor `cursor` for connection `conn` of the sender.
    Pull {
        /// The cursor.
        cursor: u64,
        /// The connection (slab index, generation) whose reply it is.
        conn: (u32, u32),
    },
    /// A batch: `OpResult::Keys` whose `next_cursor` is 0 once the cursor is exhausted, or
    /// `OpResult::Err` (then the cursor is gone).
    Batch {
        /// The cursor.
        cursor: u64,
        /// The connection it is for.
        conn: (u32, u32),
        /// The keys.
        result: OpResult,
    },
}

/// Who asked for the batch a cursor is gathering.
#[derive(Clone, Copy, Debug)]
pub(super) enum Requester {
    /// A connection of this shard.
    Local((u32, u32)),
    /// A connection of shard `.0`.
    Remote(ShardId, (u32, u32)),
}

/// A shard's open cursors. Memory per cursor: its snapshot (the active memtable's matching
/// keys, everything else shared), one batch and the blocks pinned for its walk.
#[derive(Debug, Default)]
pub(super) struct KeysCursors {
    open: HashMap<u64, Cursor>,
    next_id: u64,
    /// Cursors whose [`OpenCursor`] was dropped, to forget.
    closed: Arc<Mutex<Vec<u64>>>,
}

#[derive(Debug)]
struct Cursor {
    snapshot: Snapshot,
    walk: Walk,
    pinned: PinnedBlocks,
    reads_pending: u32,
    requester: Option<Requester>,
}

impl KeysCursors {
    /// The blocks pinned for cursor `id`'s walk, if it is open.
    pub(super) fn pinned_mut(&mut self, id: u64) -> Option<&mut PinnedBlocks> {
        self.open.get_mut(&id).map(|c| &mut c.pinned)
    }
}

/// The handle of an open cursor, held by the reply it belongs to: how many keys it will
/// send, and where to pull them. Dropping the last clone closes the cursor.
#[derive(Clone, Debug)]
pub struct OpenCursor(Arc<CursorGuard>);

struct CursorGuard {
    shard: ShardId,
    id: u64,
    count: u64,
    closed: Arc<Mutex<Vec<u64>>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CursorGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorGuard")
            .field("shard", &self.shard)
            .field("id", &self.id)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Drop for CursorGuard {
    fn drop(&mut self) {
        self.closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.id);
        self.shared.wakers[self.shard.0].wake();
    }
}

impl OpenCursor {
    /// The shard whose snapshot it walks.
    pub fn shard(&self) -> ShardId {
        self.0.shard
    }

    /// The cursor's id on that shard.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The matching keys it will send, all batches together.
    pub fn count(&self) -> u64 {
        self.0.count
    }
}

impl PartialEq for OpenCursor {
    fn eq(&self, other: &Self) -> bool {
        (self.shard(), self.id()) == (other.shard(), other.id())
    }
}

impl Eq for OpenCursor {}

impl Shard {
    /// The most bytes of matching keys one shard's `KEYS` part is built at once with.
    pub(super) fn keys_whole_bytes_max(&self) -> usize {
        let share = self.config().client_output_bytes_max / self.shards.max(1);
        KEYS_WHOLE_BYTES_MAX.min(share).max(1)
    }

    /// The snapshot a streamed `KEYS` part with `filter` walks: the active memtable's
    /// keys that filter may want are copied, the rest is shared.
    pub(super) fn keys_snapshot(&self, filter: &KeyFilter) -> Snapshot {
        let end = crate::timeseries::keys::USER_KEYS_END;
        self.store
            .snapshot_where(Some(&end), |key| filter.may_want(key))
    }

    /// Opens a cursor over `snapshot`, whose count walk found `count` keys `filter` keeps.
    pub(super) fn open_keys_cursor(
        &mut self,
        snapshot: Snapshot,
        filter: KeyFilter,
        count: u64,
    ) -> OpResult {
        let cursors = &mut self.keys_cursors;
        let id = cursors.next_id;
        cursors.next_id += 1;
        let walk = Walk::batch(
            Vec::new(),
            KEYS_WALK_ROUND_ENTRIES_MAX,
            KEYS_BATCH_BYTES,
            filter,
        );
        cursors.open.insert(
            id,
            Cursor {
                snapshot,
                walk,
                pinned: PinnedBlocks::new(),
                reads_pending: 0,
                requester: None,
            },
        );
        OpResult::KeysCursor(OpenCursor(Arc::new(CursorGuard {
            shard: self.id,
            id,
            count,
            closed: Arc::clone(&cursors.closed),
            shared: Arc::clone(&self.shared),
        })))
    }

    /// Gathers the next batch of cursor `cursor` for `requester`, sent when it is complete
    /// (now, or once the blocks it needs are read).
    pub(super) fn pull_keys(&mut self, cursor: u64, requester: Requester) {
        match self.keys_cursors.open.get_mut(&cursor) {
            Some(open) if open.requester.is_none() => {
                open.requester = Some(requester);
                self.advance_keys_cursor(cursor);
            }
            found => {
                let message = match found {
                    Some(_) => "ERR internal error: a KEYS batch was pulled twice",
                    None => "ERR internal error: the KEYS reply's cursor is gone",
                };
                self.send_keys_batch(requester, cursor, OpResult::Err(message.into()));
            }
        }
    }

    /// A block read for cursor `id` completed: once its last one is in, it goes on.
    pub(super) fn keys_cursor_read_done(&mut self, id: u64) {
        let Some(open) = self.keys_cursors.open.get_mut(&id) else {
            return;
        };
        open.reads_pending = open.reads_pending.saturating_sub(1);
        if open.reads_pending == 0 {
            self.advance_keys_cursor(id);
        }
    }

    /// Walks cursor `id` on from memory; submits the reads it needs, or sends its batch.
    fn advance_keys_cursor(&mut self, id: u64) {
        let Some(mut open) = self.keys_cursors.open.remove(&id) else {
            return;
        };
        let examined = open.walk.examined();
        let mut needs = WalkNeeds::default();
        let source = SnapshotSource {
            snapshot: &open.snapshot,
            cache: self.store.block_cache(),
        };
        open.walk
            .advance_in_memory(&source, &open.pinned, &mut needs);
        if open.walk.examined() > examined {
            // Progress: the blocks behind the walk are not needed again.
            open.pinned.clear();
        }
        if !needs.is_empty() {
            let waiter = Waiter::KeysCursor(id);
            let submitted = self.submit_reads(needs.scan_blocks.into_iter(), waiter, Keep::Walk)
                + self.submit_reads(needs.point_blocks.into_iter(), waiter, Keep::Cache);
            if submitted > 0 {
                open.reads_pending = submitted;
                self.keys_cursors.open.insert(id, open);
                return;
            }
            // The ring is full: finish the batch with blocking reads.
            let source = SnapshotSource {
                snapshot: &open.snapshot,
                cache: self.store.block_cache(),
            };
            open.walk.advance_blocking(&source);
        }
        let requester = open
            .requester
            .take()
            .expect("a batch is gathered for a pull");
        let result = match open.walk.next_batch() {
            Some(keys) => {
                self.keys_cursors.open.insert(id, open);
                OpResult::Keys {
                    next_cursor: 1,
                    keys,
                }
            }
            None => match open.walk.end.take() {
                Some(WalkEnd::Failed(message)) => OpResult::Err(message),
                _ => OpResult::Keys {
                    next_cursor: 0,
                    keys: std::mem::take(&mut open.walk.keys),
                },
            },
        };
        self.send_keys_batch(requester, id, result);
    }

    fn send_keys_batch(&mut self, requester: Requester, cursor: u64, result: OpResult) {
        match requester {
            Requester::Local(conn) => self.deliver_keys_batch(conn, self.id, cursor, result),
            Requester::Remote(to, conn) => {
                let batch = super::keys_cursor::KeysMessage::Batch {
                    cursor,
                    conn,
                    result,
                };
                self.post(to, Message::Keys(batch));
            }
        }
    }

    /// Handles a `KEYS` message from shard `from`.
    pub(super) fn handle_keys_message(&mut self, from: ShardId, message: KeysMessage) {
        match message {
            KeysMessage::Pull { cursor, conn } => {
                self.pull_keys(cursor, Requester::Remote(from, conn));
            }
            KeysMessage::Batch {
                cursor,
                conn,
                result,
            } => self.deliver_keys_batch(conn, from, cursor, result),
        }
    }

    /// Forgets the cursors whose [`OpenCursor`] was dropped (reads of theirs still in
    /// flight find no cursor when they complete).
    pub(super) fn close_keys_cursors(&mut self) {
        let closed = std::mem::take(
            &mut *self
                .keys_cursors
                .closed
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for id in closed {
            self.keys_cursors.open.remove(&id);
        }
    }
}
