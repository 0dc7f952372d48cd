//! The per-shard storage engine: WAL + memtable + SSTables + manifest.
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
//!
//! The code is split by what each part owns: this file the write path (memtables, WAL
//! batches, sequence numbers) and the store's shape; `flush` the memtable flushes and
//! the synchronous I/O drivers; `versions` the manifest's owner (this store or the
//! compaction core) and compactions; `read` lookups, scans and block fetches; `recovery`
//! the open; `drop_all` `FLUSHALL`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod drop_all;
mod flush;
mod read;
mod recovery;
mod snapshot;
mod tx;
mod versions;

pub use flush::FlushJob;
pub use read::{BlockFetch, Lookup, Miss};
pub use snapshot::{RangeView, Snapshot};
use versions::Versions;

use crate::base::{SeqNo, StoreError};
use crate::block_cache::{BlockCache, BlockCacheStats};
use crate::compaction::job::CompactionStats;
use crate::config::StoreOptions;
use crate::memtable::Memtable;
use crate::sstable::TableId;
use crate::version::set::TableIds;
use crate::version::Version;
use crate::wal::record::RecordKind;
use crate::wal::writer::WalWriter;
use crate::wal::SegmentNo;
use crate::wal::WalBatch;

/// Counters for `INFO persistence`.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct StoreStats {
    /// Bytes in the active memtable.
    pub memtable_bytes: usize,
    /// Number of immutable memtables waiting for flush.
    pub immutable_memtables: usize,
    /// Number of live SSTables.
    pub sstables: usize,
    /// Live SSTables in each level.
    pub level_tables: Vec<usize>,
    /// Bytes of live SSTables in each level.
    pub level_bytes: Vec<u64>,
    /// Bytes of live SSTables.
    pub sstable_bytes: u64,
    /// What the compactions installed since start did.
    pub compaction: CompactionStats,
    /// Compactions installed since start.
    pub compactions: u64,
    /// Why compactions stopped, if they did.
    pub compaction_error: Option<String>,
    /// The block cache's hits, misses and bytes, and the Bloom filter negatives.
    pub block_cache: BlockCacheStats,
    /// Bytes compaction must still rewrite to bring every level within its target
    /// ([`crate::compaction::picker::pending_compaction_bytes`]).
    pub pending_compaction_bytes: u64,
    /// Write stalls since start: times writes had to wait for a memtable flush.
    pub write_stalls: u64,
    /// Microseconds writes spent stalled, over the stalls that ended.
    pub write_stall_us: u64,
    /// Number of live keys is not tracked exactly; this counts memtable entries only.
    pub memtable_entries: usize,
    /// Highest sequence number assigned.
    pub last_seq: SeqNo,
    /// Highest sequence number whose WAL record is durable (fdatasync completed).
    pub durable_seq: SeqNo,
    /// Memtable flushes completed since start.
    pub flushes: u64,
    /// Bytes of SSTables written by memtable flushes since start.
    pub flushed_bytes: u64,
    /// Bytes of torn WAL tail truncated at the last start.
    pub recovery_truncated_bytes: u64,
    /// WAL records replayed at start.
    pub recovery_replayed_records: u64,
}

/// A frozen memtable waiting to be flushed.
#[derive(Debug)]
struct Frozen {
    /// Shared with the background thread that encodes it as an SSTable.
    memtable: Arc<Memtable>,
    /// The first WAL segment holding writes newer than this memtable's: the manifest's
    /// `wal_start` once it is flushed.
    next_segment: SegmentNo,
    /// The store's last sequence number when it was frozen: once it is flushed, every
    /// write up to this one is in an SSTable (or was dropped).
    last_seq: SeqNo,
    /// A drop-all (`FLUSHALL`) came after it: reads skip it, and its flush is discarded
    /// once the drop is installed.
    dropped: bool,
}

/// Writes the caller logged with [`ShardStore::log_put`] and holds in memory.
#[derive(Debug, Default)]
struct Logged {
    /// Some were logged since the last [`ShardStore::checkpointed`].
    outstanding: bool,
    /// The memtable waits to freeze until the caller inserts them.
    checkpoint_wanted: bool,
}

/// One shard's storage engine. Not `Sync`: owned by its shard thread.
///
/// Files in the shard directory: `MANIFEST` (see [`crate::manifest`]),
/// `wal-<NNNNNNNNNN>.log` segments (see [`crate::wal`]) and `sst-<NNNNNNNNNN>.sst` tables
/// (see [`crate::sstable`]).
///
/// [`StoreStats::recovery_truncated_bytes`] counts the bytes from the end of the valid
/// records to the last non-zero byte of the last segment (zero bytes need no cutting).
pub struct ShardStore {
    dir: PathBuf,
    opts: StoreOptions,
    wal: WalWriter,
    /// The lowest-numbered WAL segment that may still exist on disk.
    oldest_segment: SegmentNo,
    active: Memtable,
    /// Oldest first; at most one, see [`ShardStore::can_accept_writes`].
    immutables: VecDeque<Frozen>,
    /// Who writes the manifest: this store, or the compaction core it registered with.
    versions: Versions,
    /// The current version: the live SSTables reads go through.
    version: Arc<Version>,
    /// The manifest's `wal_start` as of the current version.
    wal_start: SegmentNo,
    table_ids: Arc<TableIds>,
    /// The flush being written or installed; the next waits for it.
    flush_in_flight: Option<TableId>,
    /// Summed statistics of the compactions installed since start.
    compaction_stats: CompactionStats,
    /// Why compactions of this shard stopped, if they did.
    compaction_error: Option<String>,
    /// Freeze the active memtable at the next chance even if it is not full.
    freeze_requested: bool,
    /// Writes logged to the WAL only ([`ShardStore::log_put`]) that the caller holds.
    logged: Logged,
    /// Writes that went to the memtable as they were made (puts, deletes, drop-alls).
    memtable_writes: u64,
    /// Data blocks of this store's SSTables that point lookups read.
    block_cache: RefCell<BlockCache>,
    /// Compactions installed since start.
    compactions: u64,
    /// When the current write stall began, and the stalls and their microseconds so far.
    stalls: (Option<std::time::Instant>, u64, u64),
    /// Every write up to this sequence number is in an installed SSTable (or was
    /// dropped), and since when: what `SAVE` waits for and `LASTSAVE` reports.
    flushed: (SeqNo, std::time::SystemTime),
    /// `FLUSHALL`s in progress; see [`drop_all::Drops`].
    drops: drop_all::Drops,
    /// The oldest frozen memtable being encoded as an SSTable on a background thread, so
    /// the shard keeps serving while its keys are sorted and blocks built.
    encoding: Option<std::thread::JoinHandle<Vec<u8>>>,
    /// Undecided transaction parts and kept commit records ([`tx`]).
    txs: tx::Transactions,
    /// Batches handed out and not yet reported written.
    batches_in_flight: usize,
    last_seq: SeqNo,
    written_seq: SeqNo,
    durable_seq: SeqNo,
    flushes: u64,
    flushed_bytes: u64,
    recovery_truncated_bytes: u64,
    recovery_replayed_records: u64,
}

impl std::fmt::Debug for ShardStore {
    // Summarized: the memtables and indexes are far too large to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardStore")
            .field("dir", &self.dir)
            .field("current_segment", &self.wal.current().number)
            .field("wal_start", &self.wal_start)
            .field("flush_in_flight", &self.flush_in_flight)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ShardStore {
    /// Opens (creating if absent) the store in `dir` and recovers it: manifest → SSTables →
    /// WAL replay. A torn or corrupt record at the tail of the last WAL segment is truncated
    /// away and logged (`tracing::warn!`); corruption anywhere else is
    /// [`StoreError::Corruption`] naming file and offset. Replayed records count as durable.
    ///
    /// SSTables not named by the manifest (a crash between writing a table and installing
    /// the manifest) and WAL segments below the manifest's `wal_start` are deleted.
    ///
    /// The directory is taken as a store of its own: a transaction part in its WAL counts
    /// only if the same WAL holds the transaction's commit ([`crate::wal::tx`]). A server
    /// opens its shards with [`ShardStore::open_shard`] instead.
    pub fn open(dir: &Path, opts: &StoreOptions) -> Result<Self, StoreError> {
        let outcome = crate::wal::tx::read_single(dir)?;
        let mut store = Self::open_shard(dir, opts, &outcome)?;
        store.delete_covered_segments();
        Ok(store)
    }

    /// Opens one shard of a data directory, as [`ShardStore::open`] does, with `outcome`
    /// read from every shard's WAL ([`crate::wal::tx::TxOutcomes`]): writes of
    /// transactions no shard committed are skipped, and a `TxCommit` is written (and
    /// fdatasynced) for each committed one this shard has a part of but no commit. WAL
    /// segments the manifest covers are kept: call
    /// [`ShardStore::delete_covered_segments`] once *every* shard has opened, since one of
    /// them may hold the only commit record another shard's replay needed.
    ///
    /// # Errors
    /// As [`ShardStore::open`].
    pub fn open_shard(
        dir: &Path,
        opts: &StoreOptions,
        outcome: &crate::wal::tx::ShardOutcome,
    ) -> Result<Self, StoreError> {
        let recovered = recovery::recover(dir, opts, outcome, true)?;
        let mut store = Self {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            wal: WalWriter::new(
                dir,
                opts.wal_segment_bytes,
                opts.wal_zero_fill,
                recovered.current,
                recovered.append_offset,
            ),
            oldest_segment: recovered.oldest_segment,
            active: recovered.memtable,
            immutables: VecDeque::new(),
            version: Arc::clone(recovered.versions.current()),
            wal_start: recovered.versions.manifest().wal_start,
            table_ids: Arc::clone(recovered.versions.table_ids()),
            versions: Versions::Inline(recovered.versions),
            compaction_stats: CompactionStats::default(),
            compaction_error: None,
            freeze_requested: false,
            logged: Logged::default(),
            memtable_writes: 0,
            block_cache: RefCell::new(BlockCache::new(opts.block_cache_bytes)),
            compactions: 0,
            stalls: (None, 0, 0),
            flushed: (SeqNo(0), std::time::SystemTime::now()),
            drops: drop_all::Drops::default(),
            flush_in_flight: None,
            encoding: None,
            txs: tx::Transactions::default(),
            batches_in_flight: 0,
            last_seq: recovered.last_seq,
            written_seq: recovered.last_seq,
            durable_seq: recovered.last_seq,
            flushes: 0,
            flushed_bytes: 0,
            recovery_truncated_bytes: recovered.truncated_bytes,
            recovery_replayed_records: recovered.replayed_records,
        };
        if !store.has_unflushed_writes() {
            store.flushed.0 = store.last_seq;
        }
        if let Some(seq) = recovered.dropped {
            store.finish_interrupted_drop(seq)?;
        }
        store.resolve_at_open(&outcome.unresolved)?;
        store.maybe_freeze();
        Ok(store)
    }

    /// Writes `key = value`: assigns the next sequence number, inserts into the active
    /// memtable and appends a WAL record to the pending batch. Returns the sequence number.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> SeqNo {
        self.put_expiring(key, value, None)
    }

    /// Writes `key = value` visible until `expire_at_ms` (absolute Unix ms, see
    /// [`crate::base::is_expired`]; `None` = never), like [`ShardStore::put`]. The deadline
    /// is part of the version: in the WAL record, the memtable and the SSTable entry.
    pub fn put_expiring(&mut self, key: &[u8], value: &[u8], expire_at_ms: Option<u64>) -> SeqNo {
        let seq = self.next_seq();
        self.memtable_writes += 1;
        self.active.insert(key, seq, Some(value), expire_at_ms);
        let kind = if expire_at_ms.is_some() {
            RecordKind::PutExpiring
        } else {
            RecordKind::Put
        };
        self.wal.append(kind, seq, key, value, expire_at_ms);
        seq
    }

    /// Writes `key = value` to the WAL only, not to the memtable: the caller keeps the
    /// value in memory (a time series' open samples) and hands it to the memtable with
    /// [`ShardStore::insert_logged`] when asked ([`ShardStore::checkpoint_wanted`]), before
    /// the memtable that covers `seq` is frozen, so the WAL segment holding the record is
    /// never retired while the write is only in the caller's memory. Replay after a crash
    /// inserts the record into the memtable like any put. Acknowledge it, as any write,
    /// once the returned sequence number is durable.
    pub fn log_put(&mut self, key: &[u8], value: &[u8]) -> SeqNo {
        let seq = self.next_seq();
        self.wal.append(RecordKind::Put, seq, key, value, None);
        self.logged.outstanding = true;
        seq
    }

    /// Inserts into the active memtable a put whose WAL record [`ShardStore::log_put`]
    /// appended at `seq`, which is lower than the store's last sequence number but not
    /// lower than any version of `key` the memtables hold.
    pub fn insert_logged(&mut self, key: &[u8], seq: SeqNo, value: &[u8]) {
        debug_assert!(seq <= self.last_seq, "a logged write comes from log_put");
        self.active.insert_unordered(key, seq, Some(value), None);
    }

    /// How many writes went to the memtable as they were made (puts, deletes, drop-alls;
    /// not [`ShardStore::log_put`]) since the store opened: a caller that saw no key `k`
    /// when this count was `n` knows none exists while it is still `n`.
    pub fn memtable_writes(&self) -> u64 {
        self.memtable_writes
    }

    /// Whether the store waits to freeze its memtable until the caller has inserted
    /// every write it logged with [`ShardStore::log_put`] and still holds (then calls
    /// [`ShardStore::checkpointed`]). The shard checks it every loop iteration.
    pub fn checkpoint_wanted(&self) -> bool {
        self.logged.checkpoint_wanted
    }

    /// The caller has inserted ([`ShardStore::insert_logged`]) every write it logged and
    /// still holds in memory: the memtable may freeze.
    pub fn checkpointed(&mut self) {
        self.logged = Logged::default();
        self.maybe_freeze();
    }

    /// Writes a tombstone for `key`, like [`ShardStore::put`].
    pub fn delete(&mut self, key: &[u8]) -> SeqNo {
        let seq = self.next_seq();
        self.memtable_writes += 1;
        self.active.insert(key, seq, None, None);
        self.wal.append(RecordKind::Delete, seq, key, &[], None);
        seq
    }

    fn next_seq(&mut self) -> SeqNo {
        self.last_seq = SeqNo(self.last_seq.0 + 1);
        self.last_seq
    }

    /// False while the memtable is full and the previous one is still being flushed, or
    /// while level 0 is too deep ([`ShardStore::level0_stalled`]): the shard must stop
    /// taking writes (a write stall) until a flush or a compaction makes room.
    pub fn can_accept_writes(&self) -> bool {
        let memtable_room =
            self.active.size_bytes() < self.opts.memtable_bytes || self.immutables.is_empty();
        memtable_room && !self.level0_stalled()
    }

    /// Whether level 0 holds [`crate::config::L0_STOP_TABLES_PER_TRIGGER`] times its
    /// compaction trigger in tables while compaction works: writes wait for it to catch up.
    /// After a failed compaction nothing would ever catch up, so writes go on (the failure
    /// is reported in `INFO persistence`).
    pub fn level0_stalled(&self) -> bool {
        let stop = self
            .opts
            .compaction
            .l0_trigger_tables
            .max(1)
            .saturating_mul(crate::config::L0_STOP_TABLES_PER_TRIGGER);
        self.compaction_error.is_none() && self.version.levels()[0].len() >= stop
    }

    /// Level-0 tables at or above the write slowdown threshold
    /// ([`crate::config::L0_SLOWDOWN_TABLES_PER_TRIGGER`] times the compaction trigger),
    /// 0 below it; what [`crate::config::write_slowdown_delay`] grows with. As for the stall,
    /// 0 after a failed compaction, since nothing would ever catch up.
    pub fn level0_slowdown_depth_tables(&self) -> usize {
        let slowdown = self
            .opts
            .compaction
            .l0_trigger_tables
            .max(1)
            .saturating_mul(crate::config::L0_SLOWDOWN_TABLES_PER_TRIGGER);
        let tables = self.version.levels()[0].len();
        if self.compaction_error.is_some() || tables < slowdown {
            return 0;
        }
        tables - slowdown + 1
    }

    /// A write found the store unable to accept it ([`ShardStore::can_accept_writes`]) and
    /// waits: counts a stall, unless one is already going on. It ends at the next flush.
    pub fn note_write_stall(&mut self) {
        if self.stalls.0.is_none() {
            self.stalls.0 = Some(std::time::Instant::now());
            self.stalls.1 += 1;
        }
    }

    /// Write stalls since start, and the microseconds spent in those that ended.
    pub fn write_stalls(&self) -> (u64, u64) {
        (self.stalls.1, self.stalls.2)
    }

    /// Ends the current write stall, if any, once writes can go on (a flush, a drop-all or
    /// a compaction made room).
    pub(super) fn end_write_stall(&mut self) {
        if !self.can_accept_writes() {
            return;
        }
        if let Some(started) = self.stalls.0.take() {
            self.stalls.2 += started.elapsed().as_micros() as u64;
        }
    }

    /// Takes the pending WAL records as one batch, or `None` if there are none. Handles
    /// segment rotation (a new segment is created, preallocated with
    /// [`crate::runtime::sys::fallocate`], fsynced with its directory, synchronously) and
    /// memtable freezing: when the active memtable is over `memtable_bytes`, it is frozen
    /// right after this batch, and later records go to a new segment. Several batches may
    /// be in flight at once; report them with [`ShardStore::wal_batch_written`] in the order
    /// they were taken. A batch that would leave the current segment is not handed out
    /// (`None`) until every batch in flight was reported, because leaving fdatasyncs it.
    ///
    /// The memtable is frozen only while no other frozen memtable waits; it is also
    /// checked (and frozen) when there is no pending record, so call this every loop
    /// iteration even while writes stall.
    pub fn take_wal_batch(&mut self) -> Result<Option<WalBatch>, StoreError> {
        if self.batches_in_flight > 0 && self.wal.next_take_rotates() {
            // Leaving a segment fdatasyncs it: wait until every write into it completed.
            return Ok(None);
        }
        let batch = match self.wal.take_batch(self.durable_seq)? {
            None => None,
            Some(taken) => {
                if taken.left.is_some() {
                    // The segment left behind was fdatasynced after its last batch was
                    // written, so everything written so far is durable.
                    self.durable_seq = self.durable_seq.max(self.written_seq);
                    self.delete_covered_segments();
                }
                self.batches_in_flight += 1;
                Some(taken.batch)
            }
        };
        self.maybe_freeze();
        Ok(batch)
    }

    /// Asks for the active memtable to be frozen (and so flushed) at the next chance even
    /// though it is not full, as a `SAVE` or an explicit flush does. Nothing happens for an
    /// empty memtable.
    pub fn request_freeze(&mut self) {
        self.freeze_requested = !self.active.is_empty() || self.logged.outstanding;
        self.maybe_freeze();
    }

    /// Whether some write is in a memtable (active or frozen) and not yet in an SSTable.
    pub fn has_unflushed_writes(&self) -> bool {
        !self.active.is_empty() || !self.immutables.is_empty() || self.logged.outstanding
    }

    /// Freezes the active memtable if it is full, no other one waits, and all its records
    /// have been handed out in batches (so they all lie in segments before the next one).
    fn maybe_freeze(&mut self) {
        let full = self.active.size_bytes() >= self.opts.memtable_bytes || self.freeze_requested;
        if !full || !self.immutables.is_empty() || self.wal.has_pending() {
            return;
        }
        if self.logged.outstanding {
            // Writes the caller holds must reach this memtable first (`log_put`).
            self.logged.checkpoint_wanted = true;
            return;
        }
        if self.active.is_empty() {
            self.freeze_requested = false;
            return;
        }
        let next_segment = self.wal.request_rotation();
        // The next memtable will likely hold as many keys as this one.
        let next = Memtable::with_capacity(self.active.len());
        let memtable = std::mem::replace(&mut self.active, next);
        self.freeze_requested = false;
        tracing::debug!(
            bytes = memtable.size_bytes(),
            entries = memtable.len(),
            "memtable frozen"
        );
        self.immutables.push_back(Frozen {
            memtable: Arc::new(memtable),
            next_segment,
            last_seq: self.last_seq,
            dropped: false,
        });
    }

    /// The ring wrote the whole batch (the caller handles short writes). Gives the buffer
    /// back for reuse. Records up to `batch.last_seq` are now *written* (not yet durable).
    pub fn wal_batch_written(&mut self, batch: WalBatch) {
        debug_assert!(
            self.batches_in_flight > 0,
            "a batch written that was not taken"
        );
        self.batches_in_flight = self.batches_in_flight.saturating_sub(1);
        self.written_seq = self.written_seq.max(batch.last_seq);
        self.wal.recycle(batch.buf);
    }

    /// An fdatasync of the current segment completed after everything up to `seq` had been
    /// written: records up to `seq` are durable. Older segments are durable once the next
    /// one was started (the store fdatasyncs a segment before leaving it).
    pub fn wal_synced(&mut self, seq: SeqNo) {
        debug_assert!(seq <= self.written_seq, "synced beyond what was written");
        self.durable_seq = self.durable_seq.max(seq);
    }

    /// Whether WAL records wait to be taken as a batch.
    pub fn has_pending_wal(&self) -> bool {
        self.wal.has_pending()
    }

    /// Highest sequence number written to the WAL (acknowledgement point for
    /// `--fsync periodic|never`).
    pub fn written_seq(&self) -> SeqNo {
        self.written_seq
    }

    /// Highest sequence number known durable (acknowledgement point for `--fsync always`).
    pub fn durable_seq(&self) -> SeqNo {
        self.durable_seq
    }

    /// Highest sequence number assigned so far.
    pub fn last_seq(&self) -> SeqNo {
        self.last_seq
    }

    /// The file the shard should fdatasync for a periodic sync (the current WAL segment).
    pub fn current_wal_file(&self) -> Arc<File> {
        Arc::clone(&self.wal.current().file)
    }

    /// Bytes in the active memtable.
    pub fn memtable_bytes(&self) -> usize {
        self.active.size_bytes()
    }

    /// Whether the active memtable reached `memtable_bytes` (it is frozen at the next
    /// WAL batch taken).
    pub fn memtable_full(&self) -> bool {
        self.active.size_bytes() >= self.opts.memtable_bytes
    }

    /// Counters for `INFO`.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            memtable_bytes: self.active.size_bytes(),
            immutable_memtables: self.immutables.len(),
            sstables: self.version.table_count(),
            level_tables: self.version.levels().iter().map(Vec::len).collect(),
            level_bytes: self.version.level_bytes(),
            sstable_bytes: self.version.level_bytes().iter().sum(),
            compaction: self.compaction_stats,
            compactions: self.compactions,
            compaction_error: self.compaction_error.clone(),
            block_cache: self.block_cache.borrow().stats(),
            pending_compaction_bytes: crate::compaction::picker::pending_compaction_bytes(
                &self.version.metas(),
                &self.opts.compaction,
            ),
            write_stalls: self.stalls.1,
            write_stall_us: self.stalls.2,
            memtable_entries: self.active.len()
                + self
                    .immutables
                    .iter()
                    .map(|f| f.memtable.len())
                    .sum::<usize>(),
            last_seq: self.last_seq,
            durable_seq: self.durable_seq,
            flushes: self.flushes,
            flushed_bytes: self.flushed_bytes,
            recovery_truncated_bytes: self.recovery_truncated_bytes,
            recovery_replayed_records: self.recovery_replayed_records,
        }
    }
}
