//! The serving shard's end of a `KEYS` reply: gathering every shard's part, and streaming
//! the parts that shards keep behind a cursor ([`super::keys_cursor`]) in batches pulled as
//! the connection's socket drains.
//!
//! Every shard answers with its keys when they are few ([`crate::config::KEYS_WHOLE_BYTES_MAX`]),
//! else with an [`OpenCursor`] and its count. Once all parts are in, a reply with no cursor
//! is encoded at once, as before; otherwise the array header (the keys given plus every
//! cursor's count) and the keys given go out first, then [`KeysPull`] pulls one batch at
//! a time from each cursor in turn: a pull is sent when the last batch was written into
//! the connection's buffer and the socket took enough of it, so a client that stops
//! reading holds one batch per reply, and a reply holds one cursor per shard.
//!
//! A reply takes one of [`KEYS_REPLIES_MAX`] slots server-wide from its start to its end
//! ([`KeysTicket`]); a `KEYS` that finds none waits, its connection blocked.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::keys_cursor::{OpenCursor, Requester};
use super::mesh::{Message, OpResult, ShardId};
use super::stream::ReplyStream;
use super::{Shard, Shared};
use crate::config::KEYS_REPLIES_MAX;
use crate::resp;

/// One of the [`KEYS_REPLIES_MAX`] `KEYS` replies under way; given back when dropped.
pub struct KeysTicket(Arc<Shared>);

impl std::fmt::Debug for KeysTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeysTicket")
    }
}

impl KeysTicket {
    /// Takes a slot, or `None` when all are taken.
    pub fn take(shared: &Arc<Shared>) -> Option<Self> {
        let taken = shared.keys_replies.fetch_add(1, Ordering::AcqRel);
        if taken >= KEYS_REPLIES_MAX {
            shared.keys_replies.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(Arc::clone(shared)))
    }
}

impl Drop for KeysTicket {
    fn drop(&mut self) {
        self.0.keys_replies.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The parts of a `KEYS` reply gathered so far.
#[derive(Debug, Default)]
pub struct KeysParts {
    /// Keys the shards with few matches sent.
    pub keys: Vec<Vec<u8>>,
    /// The cursors of the shards with many.
    pub cursors: Vec<OpenCursor>,
    /// The reply's slot among those under way (`None` in a transaction, built at once).
    pub ticket: Option<KeysTicket>,
}

impl KeysParts {
    /// The streamed reply of parts that include cursors: header, the keys given, then the
    /// cursors' batches.
    pub fn into_stream(self) -> ReplyStream {
        let total =
            self.keys.len() as u64 + self.cursors.iter().map(OpenCursor::count).sum::<u64>();
        let mut head = Vec::new();
        resp::array_header(
            &mut head,
            usize::try_from(total).expect("a count that fits memory's index"),
        );
        for key in &self.keys {
            resp::bulk(&mut head, key);
        }
        let mut stream = ReplyStream::default();
        stream.push_bytes(&head);
        stream.push_keys(Box::new(KeysPull::new(self.cursors, self.ticket)));
        stream
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PullState {
    /// Nothing asked.
    Idle,
    /// A pull is due ([`KeysPull::take_pull`]).
    Wanted,
    /// A pull was sent; its batch has not arrived.
    Sent,
}

/// The streamed part of a `KEYS` reply: the cursors still to pull from, the front one's
/// keys still due, and the batch being written out.
#[derive(Debug)]
pub struct KeysPull {
    cursors: VecDeque<OpenCursor>,
    /// Keys the front cursor still owes.
    owed: u64,
    batch: std::vec::IntoIter<Vec<u8>>,
    state: PullState,
    failed: Option<String>,
    _ticket: Option<KeysTicket>,
}

impl KeysPull {
    fn new(cursors: Vec<OpenCursor>, ticket: Option<KeysTicket>) -> Self {
        let cursors = VecDeque::from(cursors);
        Self {
            owed: cursors.front().map_or(0, OpenCursor::count),
            cursors,
            batch: Vec::new().into_iter(),
            state: PullState::Idle,
            failed: None,
            _ticket: ticket,
        }
    }

    /// Appends keys to `out` until it reaches `target` bytes, the batch runs out (a pull is
    /// then due) or every cursor sent its count; returns true in that last case.
    ///
    /// # Errors
    /// A shard failed to send a batch, or sent more or fewer keys than it counted: the
    /// reply cannot be finished.
    pub fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> Result<bool, String> {
        while out.len() < target {
            if let Some(key) = self.batch.next() {
                resp::bulk(out, &key);
                continue;
            }
            if let Some(message) = &self.failed {
                return Err(message.clone());
            }
            if self.state != PullState::Idle {
                return Ok(false);
            }
            if self.cursors.is_empty() {
                return Ok(true);
            }
            if self.owed == 0 {
                // Dropping the handle closes the cursor on its shard.
                self.cursors.pop_front();
                self.owed = self.cursors.front().map_or(0, OpenCursor::count);
                continue;
            }
            self.state = PullState::Wanted;
            return Ok(false);
        }
        Ok(false)
    }

    /// Whether it waits for a batch, with nothing to write meanwhile.
    pub fn waiting(&self) -> bool {
        self.batch.len() == 0 && self.state != PullState::Idle && self.failed.is_none()
    }

    /// The cursor to pull from now, if a pull is due (it counts as sent).
    pub fn take_pull(&mut self) -> Option<(ShardId, u64)> {
        if self.state != PullState::Wanted {
            return None;
        }
        self.state = PullState::Sent;
        self.cursors.front().map(|c| (c.shard(), c.id()))
    }

    /// Takes the batch of cursor `cursor` of shard `shard`; false if none was asked of it.
    pub fn deliver(&mut self, shard: ShardId, cursor: u64, result: OpResult) -> bool {
        let front = self.cursors.front().map(|c| (c.shard(), c.id()));
        if self.state != PullState::Sent || front != Some((shard, cursor)) {
            return false;
        }
        self.state = PullState::Idle;
        match result {
            OpResult::Keys { next_cursor, keys } => {
                let sent = keys.len() as u64;
                if sent > self.owed || (next_cursor == 0 && sent < self.owed) {
                    self.failed = Some(format!(
                        "ERR internal error: shard {} sent {sent} KEYS keys with {} still counted (last batch: {})",
                        shard.0,
                        self.owed,
                        next_cursor == 0
                    ));
                    return true;
                }
                self.owed -= sent;
                self.batch = keys.into_iter();
            }
            OpResult::Err(message) => self.failed = Some(message),
            other => self.failed = Some(format!("ERR internal error: KEYS batch {other:?}")),
        }
        true
    }
}

impl Shard {
    /// Sends the pull that connection `key`'s streamed `KEYS` reply is due, if any.
    pub(super) fn send_keys_pull(&mut self, key: (u32, u32)) {
        let Some(conn) = self.conn_mut(key) else {
            return;
        };
        let Some((shard, cursor)) = conn
            .streaming
            .as_mut()
            .and_then(ReplyStream::take_keys_pull)
        else {
            return;
        };
        if shard == self.id {
            self.pull_keys(cursor, Requester::Local(key));
            // Pulls run while replies are written, after this iteration's submission:
            // the reads they queued go now, or the loop could sleep with them unsent.
            if let Err(e) = self.ring.submit() {
                self.poison(format!("io_uring submit failed: {e}"));
            }
        } else {
            let pull = super::keys_cursor::KeysMessage::Pull { cursor, conn: key };
            self.post(shard, Message::Keys(pull));
        }
    }

    /// Hands a batch of cursor `cursor` of shard `shard` to connection `conn`'s reply (a
    /// batch for a connection or reply that is gone is dropped).
    pub(super) fn deliver_keys_batch(
        &mut self,
        conn: (u32, u32),
        shard: ShardId,
        cursor: u64,
        result: OpResult,
    ) {
        let Some(open) = self.conn_mut(conn) else {
            return;
        };
        let Some(stream) = open.streaming.as_mut() else {
            return;
        };
        if stream.deliver_keys(shard, cursor, result) {
            self.mark_dirty(conn);
        }
    }
}
