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

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

mod recovery;

/// Who writes the manifest of a store.
enum Versions {
    /// The store itself, synchronously (tests, tools, embedded use).
    Inline(VersionSet),
    /// The compaction core, which replies with new versions.
    Core {
        requests: SyncSender<Request>,
        replies: Receiver<Reply>,
        shard: usize,
    },
    /// Only while being handed to the compaction core.
    Moved,
}

use crate::base::{io_error, iolog, SeqNo, StoreError};
use crate::block_cache::{BlockCache, BlockCacheStats};
use crate::compaction::{
    self,
    core::{Reply, Request},
    job::CompactionStats,
    merge::{EntrySource, MergeIter},
    sink::SyncSink,
};
use crate::config::StoreOptions;
use crate::memtable::Memtable;
use crate::sstable::iter::TableIter;
use crate::sstable::writer::SstWriter;
use crate::sstable::{TableEntry, TableId};
use crate::version::set::{TableIds, VersionEdit, VersionSet};
use crate::version::{TableHandle, Version};
use crate::wal::record::RecordKind;
use crate::wal::writer::WalWriter;
use crate::wal::SegmentNo;
use crate::wal::WalBatch;

/// The result of a point lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The value, or `None` if the newest version is a tombstone.
    pub value: Option<Vec<u8>>,
    /// The sequence number of the version found.
    pub seq: SeqNo,
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

/// A data block of a live table that a point lookup needs and the block cache lacks.
#[derive(Clone, Debug)]
pub struct BlockFetch {
    /// The table (held, so its file stays open while the read is in flight).
    pub table: Arc<TableHandle>,
    /// The block's index in the table.
    pub index: usize,
}

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
    /// The block cache's hits, misses and bytes.
    pub block_cache: BlockCacheStats,
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
    /// Data blocks of this store's SSTables that point lookups read.
    block_cache: RefCell<BlockCache>,
    /// Compactions installed since start.
    compactions: u64,
    /// The oldest frozen memtable being encoded as an SSTable on a background thread, so
    /// the shard keeps serving while its keys are sorted and blocks built.
    encoding: Option<std::thread::JoinHandle<Vec<u8>>>,
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
    pub fn open(dir: &Path, opts: &StoreOptions) -> Result<Self, StoreError> {
        let recovered = recovery::recover(dir, opts)?;
        let mut store = Self {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            wal: WalWriter::new(
                dir,
                opts.wal_segment_bytes,
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
            block_cache: RefCell::new(BlockCache::new(opts.block_cache_bytes)),
            compactions: 0,
            flush_in_flight: None,
            encoding: None,
            batches_in_flight: 0,
            last_seq: recovered.last_seq,
            written_seq: recovered.last_seq,
            durable_seq: recovered.last_seq,
            flushes: 0,
            flushed_bytes: 0,
            recovery_truncated_bytes: recovered.truncated_bytes,
            recovery_replayed_records: recovered.replayed_records,
        };
        store.maybe_freeze();
        Ok(store)
    }

    /// Looks `key` up: active memtable, immutable memtables, then SSTables newest first
    /// (Bloom filter to skip). `Ok(None)` if no version exists. A block whose checksum
    /// fails is an error, never a value.
    pub fn get(&self, key: &[u8]) -> Result<Option<Lookup>, StoreError> {
        let memtables =
            std::iter::once(&self.active).chain(self.immutables.iter().rev().map(|f| &*f.memtable));
        for memtable in memtables {
            if let Some(entry) = memtable.get(key) {
                return Ok(Some(Lookup {
                    value: entry.value.map(|v| v.to_vec()),
                    seq: entry.seq,
                }));
            }
        }
        Ok(self
            .version
            .get(key, Some(&self.block_cache))?
            .map(|entry| Lookup {
                value: entry.value,
                seq: entry.seq,
            }))
    }

    /// Writes `key = value`: assigns the next sequence number, inserts into the active
    /// memtable and appends a WAL record to the pending batch. Returns the sequence number.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> SeqNo {
        let seq = self.next_seq();
        self.active.insert(key, seq, Some(value));
        self.wal.append(RecordKind::Put, seq, key, value);
        seq
    }

    /// Writes a tombstone for `key`, like [`ShardStore::put`].
    pub fn delete(&mut self, key: &[u8]) -> SeqNo {
        let seq = self.next_seq();
        self.active.insert(key, seq, None);
        self.wal.append(RecordKind::Delete, seq, key, &[]);
        seq
    }

    fn next_seq(&mut self) -> SeqNo {
        self.last_seq = SeqNo(self.last_seq.0 + 1);
        self.last_seq
    }

    /// False while the memtable is full and the previous one is still being flushed: the
    /// shard must stop taking writes (write stall) until [`ShardStore::flush_written`].
    pub fn can_accept_writes(&self) -> bool {
        self.active.size_bytes() < self.opts.memtable_bytes || self.immutables.is_empty()
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
        self.freeze_requested = !self.active.is_empty();
        self.maybe_freeze();
    }

    /// Whether some write is in a memtable (active or frozen) and not yet in an SSTable.
    pub fn has_unflushed_writes(&self) -> bool {
        !self.active.is_empty() || !self.immutables.is_empty()
    }

    /// Freezes the active memtable if it is full, no other one waits, and all its records
    /// have been handed out in batches (so they all lie in segments before the next one).
    fn maybe_freeze(&mut self) {
        let full = self.active.size_bytes() >= self.opts.memtable_bytes || self.freeze_requested;
        if !full || self.active.is_empty() || !self.immutables.is_empty() || self.wal.has_pending()
        {
            return;
        }
        let next_segment = self.wal.request_rotation();
        let memtable = std::mem::take(&mut self.active);
        self.freeze_requested = false;
        tracing::debug!(
            bytes = memtable.size_bytes(),
            entries = memtable.len(),
            "memtable frozen"
        );
        self.immutables.push_back(Frozen {
            memtable: Arc::new(memtable),
            next_segment,
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

    /// If an immutable memtable is waiting and no flush is in flight, encodes it as an
    /// SSTable (blocks, index, Bloom filter, checksummed footer) and returns the job.
    ///
    /// The file is created empty under its final name `sst-<id>.sst`; it becomes live only
    /// when [`ShardStore::flush_written`] installs the manifest naming it.
    pub fn take_flush(&mut self) -> Result<Option<FlushJob>, StoreError> {
        if self.flush_in_flight.is_some() {
            return Ok(None);
        }
        let Some(frozen) = self.immutables.front() else {
            return Ok(None);
        };
        let Some(encoding) = self.encoding.take() else {
            let memtable = Arc::clone(&frozen.memtable);
            let (block_bytes, bits_per_key) =
                (self.opts.sstable_block_bytes, self.opts.bloom_bits_per_key);
            let encode = move || {
                let mut writer = SstWriter::new(block_bytes, bits_per_key);
                for (key, version) in memtable.iter() {
                    writer.add(key, version.seq, version.value.as_deref());
                }
                writer.finish()
            };
            match std::thread::Builder::new()
                .name("tskv-flush-encode".into())
                .spawn(encode)
            {
                Ok(handle) => self.encoding = Some(handle),
                Err(e) => tracing::warn!(error = %e, "cannot start the SSTable encoder; retrying"),
            }
            return Ok(None);
        };
        if !encoding.is_finished() {
            self.encoding = Some(encoding);
            return Ok(None);
        }
        let buf = encoding.join().map_err(|_| StoreError::Io {
            context: "encoding an SSTable".into(),
            source: io::Error::other("the SSTable encoder panicked"),
        })?;
        let id = self.table_ids.allocate();
        let path = self.dir.join(id.file_name());
        let file = iolog::create(
            &path,
            OpenOptions::new().write(true).create(true).truncate(true),
        )
        .map_err(io_error(format!("creating SSTable {}", path.display())))?;
        self.flush_in_flight = Some(id);
        Ok(Some(FlushJob {
            file: Arc::new(file),
            buf,
            table_id: id.0,
        }))
    }

    /// [`ShardStore::take_flush`] that waits for the background encoding: for tests and
    /// tools that drive the store synchronously.
    pub fn take_flush_blocking(&mut self) -> Result<Option<FlushJob>, StoreError> {
        loop {
            if let Some(job) = self.take_flush()? {
                return Ok(Some(job));
            }
            if !self.flush_encoding() {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Whether a frozen memtable is being encoded in the background: the caller should
    /// call [`ShardStore::take_flush`] again soon (the encoder does not wake the shard).
    pub fn flush_encoding(&self) -> bool {
        self.encoding.is_some()
    }

    /// The ring wrote and fdatasynced the SSTable of `job`: install it in the manifest
    /// (temp file, fdatasync, rename, fsync directory). Driven synchronously, the store does
    /// it at once; registered with a compaction core, it asks the core, and the flush ends
    /// when [`ShardStore::poll_compaction`] sees the new version. The flush then ends by
    /// dropping the immutable memtable and deleting the WAL segments it covered.
    ///
    /// On error the flush is abandoned (the immutable memtable stays and a later
    /// [`ShardStore::take_flush`] starts over with a new table id); the shard should treat
    /// it as an I/O failure on the durable path.
    ///
    /// # Panics
    /// If `job` is not the flush in flight.
    pub fn flush_written(&mut self, job: FlushJob) -> Result<(), StoreError> {
        let id = TableId(job.table_id);
        assert_eq!(
            self.flush_in_flight,
            Some(id),
            "completion of an unknown flush"
        );
        drop(job);
        let frozen = self
            .immutables
            .front()
            .expect("a flush in flight has its memtable");
        let (wal_start, last_seq) = (frozen.next_segment, frozen.memtable.max_seq());
        match &mut self.versions {
            Versions::Inline(versions) => {
                let installed = TableHandle::open(&self.dir, id).and_then(|table| {
                    debug_assert_eq!(
                        table.table().footer().entry_count,
                        self.immutables[0].memtable.len() as u64
                    );
                    versions.apply(VersionEdit {
                        added: vec![(0, table)],
                        removed: Vec::new(),
                        wal_start: Some(wal_start),
                        last_seq: Some(last_seq),
                    })
                });
                match installed {
                    Ok(version) => self.finish_flush(version),
                    Err(e) => {
                        self.flush_in_flight = None;
                        return Err(e);
                    }
                }
            }
            Versions::Core {
                requests, shard, ..
            } => {
                let request = Request::InstallFlush {
                    shard: *shard,
                    table: id,
                    wal_start,
                    last_seq,
                };
                if requests.send(request).is_err() {
                    self.flush_in_flight = None;
                    return Err(StoreError::Io {
                        context: format!("installing SSTable {}", id.file_name()),
                        source: io::Error::other("the compaction core has stopped"),
                    });
                }
            }
            Versions::Moved => unreachable!("the version set is always somewhere"),
        }
        Ok(())
    }

    /// The flushed memtable's table is in `version`: swap to it, drop the memtable and the
    /// WAL segments it covered.
    fn finish_flush(&mut self, version: Arc<Version>) {
        let table = self.flush_in_flight.take();
        self.flushed_bytes += version
            .tables_newest_first()
            .find(|t| Some(t.id()) == table)
            .map_or(0, |t| t.size_bytes());
        let flushed = self
            .immutables
            .pop_front()
            .expect("a flush has its memtable");
        self.wal_start = flushed.next_segment;
        self.version = version;
        // Freeing a large memtable takes a while; do it off the shard thread.
        let _ = std::thread::Builder::new()
            .name("tskv-memtable-free".into())
            .spawn(move || drop(flushed));
        self.flushes += 1;
        self.delete_covered_segments();
        self.maybe_freeze();
    }

    /// Hands the manifest to the compaction core: from now on it installs flushes and runs
    /// compactions for this store as shard `shard`, and wakes the shard with `notify` after
    /// each reply. Call [`ShardStore::poll_compaction`] whenever woken.
    ///
    /// # Errors
    /// If the core has stopped; the store cannot install flushes then.
    pub fn attach_compaction_core(
        &mut self,
        shard: usize,
        requests: SyncSender<Request>,
        notify: Box<dyn Fn() + Send>,
    ) -> Result<(), StoreError> {
        let Versions::Inline(versions) = std::mem::replace(&mut self.versions, Versions::Moved)
        else {
            panic!("attached to a compaction core twice");
        };
        let (reply_to, replies) = mpsc::channel();
        let register = Request::Register {
            shard,
            versions,
            options: self.opts.clone(),
            replies: reply_to,
            notify,
        };
        requests.send(register).map_err(|_| StoreError::Io {
            context: format!(
                "registering {} with the compaction core",
                self.dir.display()
            ),
            source: io::Error::other("the compaction core has stopped"),
        })?;
        self.versions = Versions::Core {
            requests,
            replies,
            shard,
        };
        Ok(())
    }

    /// Takes the compaction core's replies: swaps to each new version, ends an installed
    /// flush. Returns whether a flush ended (writes stalled on it may go on).
    ///
    /// # Errors
    /// A flush install that failed: the shard must stop taking writes.
    pub fn poll_compaction(&mut self) -> Result<bool, StoreError> {
        let mut flushed = false;
        loop {
            let Versions::Core { replies, .. } = &self.versions else {
                return Ok(flushed);
            };
            let Ok(reply) = replies.try_recv() else {
                return Ok(flushed);
            };
            match reply {
                Reply::Installed {
                    version,
                    flushed: Some(table),
                    ..
                } => {
                    debug_assert_eq!(self.flush_in_flight, Some(table));
                    self.finish_flush(version);
                    flushed = true;
                }
                Reply::Installed {
                    version,
                    flushed: None,
                    compaction,
                } => {
                    self.version = version;
                    if let Some(stats) = compaction {
                        self.add_compaction_stats(stats);
                    }
                }
                Reply::FlushFailed { table, reason } => {
                    self.flush_in_flight = None;
                    return Err(StoreError::Io {
                        context: format!("installing flushed SSTable {}", table.file_name()),
                        source: io::Error::other(reason),
                    });
                }
                Reply::CompactionFailed { reason } => self.compaction_error = Some(reason),
            }
        }
    }

    fn add_compaction_stats(&mut self, stats: CompactionStats) {
        self.compactions += 1;
        let total = &mut self.compaction_stats;
        total.read_bytes += stats.read_bytes;
        total.written_bytes += stats.written_bytes;
        total.dropped_entries += stats.dropped_entries;
    }

    /// Runs compactions until the policy is satisfied, synchronously with blocking I/O (for
    /// the engine driven without a compaction core). Does nothing when a core owns the
    /// manifest: it compacts on its own.
    ///
    /// # Errors
    /// A read, write or manifest failure; no data is lost, the store keeps its version.
    pub fn compact_sync(&mut self) -> Result<(), StoreError> {
        if let Versions::Inline(versions) = &mut self.versions {
            let settled = compaction::settle(versions, &self.opts, &mut SyncSink);
            self.version = Arc::clone(versions.current());
            let stats = settled?;
            self.add_compaction_stats(stats);
        }
        Ok(())
    }

    /// The current version (its tables by level).
    pub fn version(&self) -> &Arc<Version> {
        &self.version
    }

    /// Deletes WAL segments below the manifest's `wal_start`, except the current one
    /// (which is fdatasynced only when left; its writes are in an installed SSTable, and
    /// the next open deletes it). Failures are logged, not returned: a leftover segment is
    /// deleted at the next open.
    fn delete_covered_segments(&mut self) {
        let end = self.wal_start.min(self.wal.current().number);
        while self.oldest_segment < end {
            let path = self.dir.join(self.oldest_segment.file_name());
            match iolog::remove(&path) {
                Ok(()) => tracing::debug!(segment = %path.display(), "WAL segment deleted"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(segment = %path.display(), error = %e, "cannot delete WAL segment")
                }
            }
            self.oldest_segment = self.oldest_segment.next();
        }
    }

    /// Exact count of live keys (not tombstoned), by a merged scan over memtables and
    /// SSTables: O(entries), used by `DBSIZE`.
    ///
    /// # Errors
    /// A failed read or checksum.
    pub fn len(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for entry in self.scan_from(b"") {
            count += u64::from(entry?.value.is_some());
        }
        Ok(count)
    }

    /// A streaming range scan: every key from `start` on (inclusive), in key order, at its
    /// newest version (tombstones included as `value: None`; callers hide them). Memory is
    /// one entry per memtable and table whatever the range; each table starts at the
    /// block its index names for `start`. The iterator holds the current version, so
    /// flushes and compactions meanwhile delete no file under it.
    pub fn scan_from(&self, start: &[u8]) -> MergeIter<'_> {
        let mut sources: Vec<EntrySource<'_>> = Vec::new();
        let memtables =
            std::iter::once(&self.active).chain(self.immutables.iter().map(|f| &*f.memtable));
        for memtable in memtables {
            sources.push(Box::new(memtable.iter_from(start).map(|(key, e)| {
                Ok(TableEntry {
                    key: key.to_vec(),
                    seq: e.seq,
                    value: e.value.as_deref().map(<[u8]>::to_vec),
                })
            })));
        }
        for table in self.version.tables_newest_first() {
            sources.push(Box::new(TableIter::seek(Arc::clone(table), start)));
        }
        MergeIter::new(sources)
    }

    /// Whether the store holds no live key; as costly as [`ShardStore::len`].
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Bytes in the active memtable.
    pub fn memtable_bytes(&self) -> usize {
        self.active.size_bytes()
    }

    /// Adds to `out` the data blocks a lookup of `key` would read from disk now: none when a
    /// memtable has the key or a cached block answers; otherwise the block of every
    /// candidate table that the cache lacks (usually one, the Bloom filters rule out the
    /// rest). The shard reads them through its ring, then runs the lookup from memory.
    pub fn blocks_to_fetch(&self, key: &[u8], out: &mut Vec<BlockFetch>) {
        let memtables =
            std::iter::once(&self.active).chain(self.immutables.iter().map(|f| &*f.memtable));
        for memtable in memtables {
            if memtable.get(key).is_some() {
                return;
            }
        }
        let cache = self.block_cache.borrow();
        for table in self.version.candidates(key) {
            let Some(index) = table.table().block_for(key) else {
                continue;
            };
            let cached = u32::try_from(index)
                .ok()
                .and_then(|i| cache.peek(table.id(), i));
            match cached {
                // Found, or damaged (the lookup will report it): nothing more to read.
                Some(block) => match crate::sstable::block::find(&block, key) {
                    Ok(None) => {}
                    Ok(Some(_)) | Err(_) => return,
                },
                None => out.push(BlockFetch {
                    table: Arc::clone(table),
                    index,
                }),
            }
        }
    }

    /// Takes the bytes of a block read for [`ShardStore::blocks_to_fetch`]: checks them and
    /// keeps the block in the cache.
    ///
    /// # Errors
    /// A short read or bad checksum: nothing is cached, and the lookup, reading the block
    /// itself, reports the error.
    pub fn fetched_block(&self, fetch: &BlockFetch, raw: Vec<u8>) -> Result<(), StoreError> {
        let payload = fetch.table.table().check_block(fetch.index, raw)?;
        let index = u32::try_from(fetch.index).expect("fewer than 2^32 blocks");
        self.block_cache
            .borrow_mut()
            .insert(fetch.table.id(), index, Arc::new(payload));
        Ok(())
    }

    /// The block cache's hits, misses and bytes.
    pub fn block_cache_stats(&self) -> BlockCacheStats {
        self.block_cache.borrow().stats()
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

    /// Executes `batch` synchronously with `pwrite` + `fdatasync` (tests, `tskv-tool`, and
    /// the fallback path) and reports it written and synced.
    pub fn write_batch_sync(&mut self, batch: WalBatch) -> Result<(), StoreError> {
        let shown = self.wal.current().path.display().to_string();
        iolog::write_at(&batch.file, &batch.buf, batch.offset).map_err(io_error(format!(
            "writing WAL batch at offset {} of {shown}",
            batch.offset
        )))?;
        iolog::sync_data(&batch.file).map_err(io_error(format!("syncing {shown}")))?;
        let last_seq = batch.last_seq;
        self.wal_batch_written(batch);
        self.wal_synced(last_seq);
        Ok(())
    }

    /// Executes `job` synchronously and installs it, like the ring path.
    pub fn flush_sync(&mut self, job: FlushJob) -> Result<(), StoreError> {
        let path = self.dir.join(TableId(job.table_id).file_name());
        let shown = path.display();
        iolog::write_at(&job.file, &job.buf, 0)
            .map_err(io_error(format!("writing SSTable {shown}")))?;
        iolog::sync_data(&job.file).map_err(io_error(format!("syncing SSTable {shown}")))?;
        self.flush_written(job)
    }
}
