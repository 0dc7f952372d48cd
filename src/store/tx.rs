//! A store's side of transactions across shards ([`crate::wal::tx`]): the parts it
//! writes, the commits it records, and what they hold back.
//!
//! * While a part of this shard is undecided, a frozen memtable holding any of its writes
//!   is not flushed ([`Transactions::blocks_flush`]): the writes of a transaction that
//!   may still not commit stay in the WAL, where replay can skip them, never in an SSTable.
//! * The coordinator's `TxCommit` holds its WAL segment (and every later one) until each
//!   participant has its own `TxCommit` durable ([`ShardStore::release_commit_hold`]).

use std::collections::BTreeMap;

use super::ShardStore;
use crate::base::SeqNo;
use crate::wal::record::RecordKind;
use crate::wal::tx::{TxId, TxPart};
use crate::wal::SegmentNo;

/// The undecided transactions of one store and the commit records it must keep.
#[derive(Debug, Default)]
pub(super) struct Transactions {
    /// Undecided transactions with a part here, and the first sequence number of it.
    open: BTreeMap<TxId, SeqNo>,
    /// `TxCommit` records this store wrote as coordinator, and the segment each went to,
    /// kept until every participant wrote its own.
    commit_holds: BTreeMap<TxId, SegmentNo>,
}

impl Transactions {
    /// Whether a memtable whose newest write is `last_seq` holds a write of an undecided
    /// transaction.
    pub(super) fn blocks_flush(&self, last_seq: SeqNo) -> bool {
        self.open.values().any(|&first| first <= last_seq)
    }

    /// The oldest WAL segment a kept commit record is in.
    pub(super) fn oldest_held_segment(&self) -> Option<SegmentNo> {
        self.commit_holds.values().min().copied()
    }
}

impl ShardStore {
    /// Starts a part of a transaction across shards: returns the sequence number its first
    /// write will get, for [`ShardStore::tx_part_end`].
    pub fn tx_part_begin(&self) -> SeqNo {
        SeqNo(self.last_seq.0 + 1)
    }

    /// Ends the part of transaction `id` begun at `first`: if it wrote, marks its writes
    /// with a `TxPart` record in the same batch, so they count after a crash only if the
    /// transaction commits, and returns that record's sequence number. The transaction
    /// stays undecided here until [`ShardStore::commit_tx`] or [`ShardStore::abort_tx`].
    pub fn tx_part_end(&mut self, id: TxId, first: SeqNo) -> Option<SeqNo> {
        if self.last_seq < first {
            return None;
        }
        self.txs.open.entry(id).or_insert(first);
        let part = TxPart {
            id,
            first,
            last: self.last_seq,
        };
        let seq = self.next_seq();
        self.wal
            .append(RecordKind::TxPart, seq, b"", &part.encode(), None);
        Some(seq)
    }

    /// Whether this store holds an undecided part of `id`.
    pub fn has_tx_part(&self, id: TxId) -> bool {
        self.txs.open.contains_key(&id)
    }

    /// Records that transaction `id` committed: appends a `TxCommit` record and returns its
    /// sequence number (the acknowledgement must wait for it). With `hold`, this is the
    /// coordinator's commit point, kept on disk until [`ShardStore::release_commit_hold`].
    pub fn commit_tx(&mut self, id: TxId, hold: bool) -> SeqNo {
        self.txs.open.remove(&id);
        let seq = self.next_seq();
        self.wal
            .append(RecordKind::TxCommit, seq, b"", &id.0.to_le_bytes(), None);
        if hold {
            // A rotation already asked for sends it to the next segment: holding the
            // current one too is merely cautious.
            self.txs.commit_holds.insert(id, self.wal.current().number);
        }
        seq
    }

    /// Every participant of `id` has its own `TxCommit` durable: the coordinator's record
    /// may go with its segment.
    pub fn release_commit_hold(&mut self, id: TxId) {
        self.txs.commit_holds.remove(&id);
    }

    /// Transaction `id` will not commit: its part here is decided (the caller has written
    /// back what the part overwrote, as ordinary writes).
    pub fn abort_tx(&mut self, id: TxId) {
        self.txs.open.remove(&id);
    }

    /// Writes a `TxCommit` for each committed transaction this shard's WAL has a part of
    /// but no commit of its own (found at open), and waits for their fdatasync.
    pub(super) fn resolve_at_open(&mut self, ids: &[TxId]) -> Result<(), crate::base::StoreError> {
        for &id in ids {
            self.commit_tx(id, false);
        }
        if let Some(batch) = self.take_wal_batch()? {
            self.write_batch_sync(batch)?;
        }
        Ok(())
    }
}
