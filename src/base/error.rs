//! The storage engine's error type.

use std::io;

/// Errors of the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O error, with what was being done and to which file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A checksum or format check failed somewhere a torn write cannot explain.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// The file's path.
        file: String,
        /// Byte offset of the bad record or block.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A WAL segment holds bad bytes that a torn write cannot explain
    /// ([`crate::wal::reader::judge_tail`]): acknowledged writes may be behind them, so
    /// the store refuses to open rather than drop them.
    #[error(
        "WAL segment {file} is corrupt at offset {offset}: {reason}. tskv does not drop \
         acknowledged writes on its own. Keep a copy of the data directory, then run \
         `tskv-tool wal-repair <data directory>` to see what a repair would keep and drop, \
         and add --yes to do it; or restore this shard from a backup"
    )]
    WalCorruption {
        /// The segment's path.
        file: String,
        /// Byte offset where the bad bytes start.
        offset: u64,
        /// What is wrong and why it is not a torn write.
        reason: String,
    },
    /// A read that may not touch the disk (a scan on a shard's loop, see
    /// `block_cache::BlockSource::Memory`) needed a data block that is not in memory. The
    /// caller reads the block (through the shard's ring) and runs the read again; it never
    /// reaches a client.
    #[error("block {block_index} of SSTable {table_id} is not in memory")]
    BlockNotInMemory {
        /// The table's id (`TableId`'s number).
        table_id: u64,
        /// The block's index in the table.
        block_index: usize,
    },
}

/// Builds the error mapper for an I/O failure while doing `context` (which names the file).
pub fn io_error(context: String) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io { context, source }
}
