//! The messages of a transaction across shards ([`super`]) on the queues between shards,
//! carried by [`Message::Tx`](crate::shard::mesh::Message::Tx).

use crate::shard::mesh::{OpResult, OwnedOp};
use crate::wal::tx::TxId;

/// The steps of a transaction across shards between its coordinator (the shard of the
/// client's connection) and each participant (a shard owning some of its keys); see
/// the shard module `txn` for the protocol.
#[derive(Debug)]
pub enum TxMessage {
    /// Coordinator → participant: lock `keys` for transaction `id` (it waits its turn
    /// if another transaction holds one of them).
    Lock {
        /// The transaction.
        id: TxId,
        /// The keys of this participant the transaction reads or writes.
        keys: Vec<Box<[u8]>>,
        /// The client whose watched keys here the transaction's run checks first (their
        /// blocks are read with the keys').
        watch: Option<u64>,
    },
    /// Participant → coordinator: the keys are locked.
    Locked {
        /// The transaction.
        id: TxId,
    },
    /// Coordinator → participant: run these ops (with their positions in the whole
    /// transaction) as the participant's part; if `watch` names a client, only if the keys
    /// it watches here are unchanged.
    Run {
        /// The transaction.
        id: TxId,
        /// The ops and their positions.
        ops: Vec<(u32, OwnedOp)>,
        /// The client whose watched keys (on this shard) must be unchanged.
        watch: Option<u64>,
    },
    /// Participant → coordinator, once the part's writes are durable: the results.
    Ran {
        /// The transaction.
        id: TxId,
        /// Each op's result with its position.
        results: Vec<(u32, OpResult)>,
        /// What happened to the part.
        outcome: RunOutcome,
        /// Whether the part wrote anything (a transaction none of whose parts wrote needs
        /// no commit record).
        wrote: bool,
    },
    /// Coordinator → participant: the transaction committed (`commit`) or not; unlock.
    Release {
        /// The transaction.
        id: TxId,
        /// Whether it committed.
        commit: bool,
        /// False if the coordinator could not make its commit record durable: the
        /// participant's own record decides, so its keys stay locked until that is durable.
        confirmed: bool,
    },
    /// Participant → coordinator: released; for a commit, once the participant's own
    /// commit record is durable.
    Released {
        /// The transaction.
        id: TxId,
        /// False if the participant's own commit record could not be made durable (it
        /// refuses writes now): the coordinator's record must then stay.
        durable: bool,
    },
}

/// How a participant's part of a transaction went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// It ran and its writes are durable.
    Done,
    /// A watched key had changed: nothing ran.
    WatchChanged,
    /// Its writes could not be made durable (the shard refuses writes now): the reason.
    Failed(String),
}
