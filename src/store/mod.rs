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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod recovery;

use crate::base::{io_error, SeqNo, StoreError};
use crate::config::StoreOptions;
use crate::manifest::Manifest;
use crate::memtable::Memtable;
use crate::sstable::iter::TableIter;
use crate::sstable::reader::Table;
use crate::sstable::writer::SstWriter;
use crate::sstable::TableId;
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
    /// Live SSTables, oldest first.
    tables: Vec<Table>,
    /// The installed manifest.
    manifest: Manifest,
    next_table_id: TableId,
    flush_in_flight: Option<TableId>,
    /// The oldest frozen memtable being encoded as an SSTable on a background thread, so
    /// the shard keeps serving while its keys are sorted and blocks built.
    encoding: Option<std::thread::JoinHandle<Vec<u8>>>,
    /// Batches handed out and not yet reported written.
    batches_in_flight: usize,
    last_seq: SeqNo,
    written_seq: SeqNo,
    durable_seq: SeqNo,
    flushes: u64,
    recovery_truncated_bytes: u64,
    recovery_replayed_records: u64,
}

impl std::fmt::Debug for ShardStore {
    // Summarized: the memtables and indexes are far too large to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardStore")
            .field("dir", &self.dir)
            .field("current_segment", &self.wal.current().number)
            .field("manifest", &self.manifest)
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
            tables: recovered.tables,
            next_table_id: recovered.manifest.next_table_id,
            manifest: recovered.manifest,
            flush_in_flight: None,
            encoding: None,
            batches_in_flight: 0,
            last_seq: recovered.last_seq,
            written_seq: recovered.last_seq,
            durable_seq: recovered.last_seq,
            flushes: 0,
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
        for table in self.tables.iter().rev() {
            if let Some(entry) = table.get(key)? {
                return Ok(Some(Lookup {
                    value: entry.value,
                    seq: entry.seq,
                }));
            }
        }
        Ok(None)
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
        let batch = match self.wal.take_batch()? {
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

    /// Freezes the active memtable if it is full, no other one waits, and all its records
    /// have been handed out in batches (so they all lie in segments before the next one).
    fn maybe_freeze(&mut self) {
        let full = self.active.size_bytes() >= self.opts.memtable_bytes;
        if !full || self.active.is_empty() || !self.immutables.is_empty() || self.wal.has_pending()
        {
            return;
        }
        let next_segment = self.wal.request_rotation();
        let memtable = std::mem::take(&mut self.active);
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
        let id = self.next_table_id;
        let path = self.dir.join(id.file_name());
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error(format!("creating SSTable {}", path.display())))?;
        self.next_table_id = TableId(id.0 + 1);
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
    /// (temp file, fdatasync, rename, fsync directory), drop the immutable memtable and
    /// delete the WAL segments it covered. Only WAL segments whose records are all durable
    /// may be deleted.
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
        self.flush_in_flight = None;
        let table = Table::open(&self.dir.join(id.file_name()), id)?;
        let frozen = self
            .immutables
            .front()
            .expect("a flush in flight has its memtable");
        debug_assert_eq!(table.footer().entry_count, frozen.memtable.len() as u64);
        let mut manifest = self.manifest.clone();
        manifest.tables.push(id);
        manifest.next_table_id = self.next_table_id;
        manifest.wal_start = frozen.next_segment;
        manifest.install(&self.dir)?;
        self.manifest = manifest;
        self.tables.push(table);
        let flushed = self.immutables.pop_front().expect("checked above");
        // Freeing a large memtable takes a while; do it off the shard thread.
        let _ = std::thread::Builder::new()
            .name("tskv-memtable-free".into())
            .spawn(move || drop(flushed));
        self.flushes += 1;
        self.delete_covered_segments();
        self.maybe_freeze();
        Ok(())
    }

    /// Deletes WAL segments below the manifest's `wal_start`, except the current one
    /// (which is fdatasynced only when left; its writes are in an installed SSTable, and
    /// the next open deletes it). Failures are logged, not returned: a leftover segment is
    /// deleted at the next open.
    fn delete_covered_segments(&mut self) {
        let end = self.manifest.wal_start.min(self.wal.current().number);
        while self.oldest_segment < end {
            let path = self.dir.join(self.oldest_segment.file_name());
            match fs::remove_file(&path) {
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
    pub fn len(&self) -> Result<u64, StoreError> {
        let mut sources: Vec<Source<'_>> = Vec::new();
        for memtable in
            std::iter::once(&self.active).chain(self.immutables.iter().map(|f| &*f.memtable))
        {
            sources.push(Box::new(
                memtable
                    .iter()
                    .map(|(key, e)| Ok((key.to_vec(), e.seq, e.value.is_some()))),
            ));
        }
        for table in &self.tables {
            sources.push(Box::new(
                TableIter::new(table).map(|e| e.map(|e| (e.key, e.seq, e.value.is_some()))),
            ));
        }
        count_live(sources)
    }

    /// Whether the store holds no live key; as costly as [`ShardStore::len`].
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Counters for `INFO`.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            memtable_bytes: self.active.size_bytes(),
            immutable_memtables: self.immutables.len(),
            sstables: self.tables.len(),
            memtable_entries: self.active.len()
                + self
                    .immutables
                    .iter()
                    .map(|f| f.memtable.len())
                    .sum::<usize>(),
            last_seq: self.last_seq,
            durable_seq: self.durable_seq,
            flushes: self.flushes,
            recovery_truncated_bytes: self.recovery_truncated_bytes,
            recovery_replayed_records: self.recovery_replayed_records,
        }
    }

    /// Executes `batch` synchronously with `pwrite` + `fdatasync` (tests, `tskv-tool`, and
    /// the fallback path) and reports it written and synced.
    pub fn write_batch_sync(&mut self, batch: WalBatch) -> Result<(), StoreError> {
        let shown = self.wal.current().path.display().to_string();
        batch
            .file
            .write_all_at(&batch.buf, batch.offset)
            .map_err(io_error(format!(
                "writing WAL batch at offset {} of {shown}",
                batch.offset
            )))?;
        batch
            .file
            .sync_data()
            .map_err(io_error(format!("syncing {shown}")))?;
        let last_seq = batch.last_seq;
        self.wal_batch_written(batch);
        self.wal_synced(last_seq);
        Ok(())
    }

    /// Executes `job` synchronously and installs it, like the ring path.
    pub fn flush_sync(&mut self, job: FlushJob) -> Result<(), StoreError> {
        let path = self.dir.join(TableId(job.table_id).file_name());
        let shown = path.display();
        job.file
            .write_all_at(&job.buf, 0)
            .map_err(io_error(format!("writing SSTable {shown}")))?;
        job.file
            .sync_data()
            .map_err(io_error(format!("syncing SSTable {shown}")))?;
        self.flush_written(job)
    }
}

/// A sorted stream of `(key, seq, is_live)` from one memtable or table.
type Source<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, SeqNo, bool), StoreError>> + 'a>;

/// Counts keys whose newest version over all `sources` is live, by a k-way merge.
fn count_live(mut sources: Vec<Source<'_>>) -> Result<u64, StoreError> {
    // Min-heap on key, and for equal keys the highest sequence number first.
    let mut heap = BinaryHeap::new();
    for (i, source) in sources.iter_mut().enumerate() {
        if let Some(item) = source.next() {
            let (key, seq, live) = item?;
            heap.push(Reverse((key, Reverse(seq), i, live)));
        }
    }
    let mut count = 0;
    let mut prev_key: Option<Vec<u8>> = None;
    while let Some(Reverse((key, _, i, live))) = heap.pop() {
        if let Some(item) = sources[i].next() {
            let (next_key, seq, next_live) = item?;
            heap.push(Reverse((next_key, Reverse(seq), i, next_live)));
        }
        if prev_key.as_ref() == Some(&key) {
            continue;
        }
        count += u64::from(live);
        prev_key = Some(key);
    }
    Ok(count)
}
