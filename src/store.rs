//! The per-shard storage engine: WAL + memtable + SSTables + manifest.
//!
//! CONTRACT (written by the shard-loop author; the storage author fills in the bodies and
//! may add private items, but keeps these signatures so the shard loop compiles against them).
//!
//! The store decides *what* to write; the shard's io_uring executes it ("policy is pure,
//! mechanism does the I/O"). Writes are applied to the memtable at once (so a pipelined
//! `SET k v; GET k` reads its own write) and their WAL records are appended to an in-memory
//! pending batch. The shard loop calls [`ShardStore::take_wal_batch`] once per loop
//! iteration, writes the batch at the given offset of the given segment file through
//! io_uring (plus fdatasync in `--fsync always`), then reports completion with
//! [`ShardStore::wal_batch_written`] / [`ShardStore::wal_synced`]. Only after that may the
//! writes in the batch be acknowledged. Memtable flushes go the same way with
//! [`ShardStore::take_flush`] / [`ShardStore::flush_written`].

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::config::StoreOptions;

/// A sequence number: the position of a write in its shard's history, starting at 1.
/// Every write (put or tombstone) gets the next one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqNo(pub u64);

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
}

/// The result of a point lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The value, or `None` if the newest version is a tombstone.
    pub value: Option<Vec<u8>>,
    /// The sequence number of the version found.
    pub seq: SeqNo,
}

/// A batch of WAL records to write at `offset` of `file`.
#[derive(Debug)]
pub struct WalBatch {
    /// The segment file (already created, preallocated, and its directory entry synced).
    pub file: Arc<File>,
    /// Byte offset in the segment where `buf` goes.
    pub offset: u64,
    /// Encoded records; ownership passes to the ring until the write completes.
    pub buf: Vec<u8>,
    /// Highest sequence number in the batch.
    pub last_seq: SeqNo,
}

/// A memtable flush to execute: write `buf` at offset 0 of `file`, fdatasync, then call
/// [`ShardStore::flush_written`].
#[derive(Debug)]
pub struct FlushJob {
    /// The new SSTable file (created empty under a temporary name or its final name, as the
    /// store chooses; the manifest is what makes it live).
    pub file: Arc<File>,
    /// The whole encoded SSTable.
    pub buf: Vec<u8>,
    /// Opaque id the store uses to match the completion.
    pub table_id: u64,
}

/// Counters for `INFO persistence`.
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    /// Bytes in the active memtable.
    pub memtable_bytes: usize,
    /// Number of immutable memtables waiting for flush.
    pub immutable_memtables: usize,
    /// Number of live SSTables.
    pub sstables: usize,
    /// Number of live keys is not tracked exactly; this counts memtable entries only.
    pub memtable_entries: usize,
    /// Highest sequence number assigned.
    pub last_seq: SeqNo,
    /// Highest sequence number whose WAL record is durable (fdatasync completed).
    pub durable_seq: SeqNo,
    /// Memtable flushes completed since start.
    pub flushes: u64,
    /// Bytes of torn WAL tail truncated at the last start.
    pub recovery_truncated_bytes: u64,
    /// WAL records replayed at start.
    pub recovery_replayed_records: u64,
}

/// One shard's storage engine. Not `Sync`: owned by its shard thread.
pub struct ShardStore {
    _private: (),
}

impl ShardStore {
    /// Opens (creating if absent) the store in `dir` and recovers it: manifest → SSTables →
    /// WAL replay. A torn or corrupt record at the tail of the last WAL segment is truncated
    /// away and logged (`tracing::warn!`); corruption anywhere else is
    /// [`StoreError::Corruption`] naming file and offset. Replayed records count as durable.
    pub fn open(dir: &Path, opts: &StoreOptions) -> Result<Self, StoreError> {
        let _ = (dir, opts);
        todo!()
    }

    /// Looks `key` up: active memtable, immutable memtables, then SSTables newest first
    /// (Bloom filter to skip). `Ok(None)` if no version exists. A block whose checksum
    /// fails is an error, never a value.
    pub fn get(&self, key: &[u8]) -> Result<Option<Lookup>, StoreError> {
        let _ = key;
        todo!()
    }

    /// Writes `key = value`: assigns the next sequence number, inserts into the active
    /// memtable and appends a WAL record to the pending batch. Returns the sequence number.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> SeqNo {
        let _ = (key, value);
        todo!()
    }

    /// Writes a tombstone for `key`, like [`ShardStore::put`].
    pub fn delete(&mut self, key: &[u8]) -> SeqNo {
        let _ = key;
        todo!()
    }

    /// False while the memtable is full and the previous one is still being flushed: the
    /// shard must stop taking writes (write stall) until [`ShardStore::flush_written`].
    pub fn can_accept_writes(&self) -> bool {
        todo!()
    }

    /// Takes the pending WAL records as one batch, or `None` if there are none. Handles
    /// segment rotation (a new segment is created, preallocated with
    /// [`crate::runtime::sys::fallocate`], fsynced with its directory, synchronously) and
    /// memtable freezing: when the active memtable is over `memtable_bytes`, it is frozen
    /// right after this batch, and later records go to a new segment. Must not be called
    /// again until [`ShardStore::wal_batch_written`] returned the previous batch.
    pub fn take_wal_batch(&mut self) -> Result<Option<WalBatch>, StoreError> {
        todo!()
    }

    /// The ring wrote the whole batch (the caller handles short writes). Gives the buffer
    /// back for reuse. Records up to `batch.last_seq` are now *written* (not yet durable).
    pub fn wal_batch_written(&mut self, batch: WalBatch) {
        let _ = batch;
        todo!()
    }

    /// An fdatasync of the current segment completed after everything up to `seq` had been
    /// written: records up to `seq` are durable. Older segments are durable once the next
    /// one was started (the store fdatasyncs a segment before leaving it).
    pub fn wal_synced(&mut self, seq: SeqNo) {
        let _ = seq;
        todo!()
    }

    /// Highest sequence number written to the WAL (acknowledgement point for
    /// `--fsync periodic|never`).
    pub fn written_seq(&self) -> SeqNo {
        todo!()
    }

    /// Highest sequence number known durable (acknowledgement point for `--fsync always`).
    pub fn durable_seq(&self) -> SeqNo {
        todo!()
    }

    /// Highest sequence number assigned so far.
    pub fn last_seq(&self) -> SeqNo {
        todo!()
    }

    /// The file the shard should fdatasync for a periodic sync (the current WAL segment).
    pub fn current_wal_file(&self) -> Arc<File> {
        todo!()
    }

    /// If an immutable memtable is waiting and no flush is in flight, encodes it as an
    /// SSTable (blocks, index, Bloom filter, checksummed footer) and returns the job.
    pub fn take_flush(&mut self) -> Result<Option<FlushJob>, StoreError> {
        todo!()
    }

    /// The ring wrote and fdatasynced the SSTable of `job`: install it in the manifest
    /// (temp file, fdatasync, rename, fsync directory), drop the immutable memtable and
    /// delete the WAL segments it covered. Only WAL segments whose records are all durable
    /// may be deleted.
    pub fn flush_written(&mut self, job: FlushJob) -> Result<(), StoreError> {
        let _ = job;
        todo!()
    }

    /// Exact count of live keys (not tombstoned), by a merged scan over memtables and
    /// SSTables: O(entries), used by `DBSIZE`.
    pub fn len(&self) -> Result<u64, StoreError> {
        todo!()
    }

    /// Counters for `INFO`.
    pub fn stats(&self) -> StoreStats {
        todo!()
    }

    /// Executes `batch` synchronously with `pwrite` + `fdatasync` (tests, `tskv-tool`, and
    /// the fallback path) and reports it written and synced.
    pub fn write_batch_sync(&mut self, batch: WalBatch) -> Result<(), StoreError> {
        let _ = batch;
        todo!()
    }

    /// Executes `job` synchronously and installs it, like the ring path.
    pub fn flush_sync(&mut self, job: FlushJob) -> Result<(), StoreError> {
        let _ = job;
        todo!()
    }
}
