//! Memtable flushes: encoding a frozen memtable as an SSTable, installing it, and
//! retiring the WAL segments it covered; and the synchronous I/O drivers (tests, tools,
//! the embedded engine) that execute WAL batches and flushes with blocking calls.

use std::fs::{File, OpenOptions};
use std::io;
use std::sync::Arc;

use super::versions::Versions;
use super::ShardStore;
use crate::base::{io_error, iolog, SeqNo, StoreError};
use crate::compaction::core::Request;
use crate::sstable::writer::SstWriter;
use crate::sstable::TableId;
use crate::version::Version;
use crate::wal::WalBatch;

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

impl ShardStore {
    /// If an immutable memtable is waiting and no flush is in flight, encodes it as an
    /// SSTable (blocks, index, Bloom filter, checksummed footer) and returns the job.
    ///
    /// The file is created empty under its final name `sst-<id>.sst`; it becomes live only
    /// when [`ShardStore::flush_written`] installs the manifest naming it.
    pub fn take_flush(&mut self) -> Result<Option<FlushJob>, StoreError> {
        if let Some(e) = self.drop_failure() {
            return Err(e);
        }
        if self.flush_in_flight.is_some() {
            return Ok(None);
        }
        let Some(frozen) = self.immutables.front() else {
            return Ok(None);
        };
        if self.txs.blocks_flush(frozen.last_seq) {
            // It holds a transaction part that may still not commit.
            return Ok(None);
        }
        let Some(encoding) = self.encoding.take() else {
            let memtable = Arc::clone(&frozen.memtable);
            let (block_bytes, bits_per_key) =
                (self.opts.sstable_block_bytes, self.opts.bloom_bits_per_key);
            let encode = move || {
                let mut writer = SstWriter::new(block_bytes, bits_per_key);
                for (key, version) in memtable.iter() {
                    writer.add(
                        key,
                        version.seq,
                        version.value.as_deref(),
                        version.expire_at_ms,
                    );
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

    /// Every write up to this sequence number is in an installed SSTable (or was dropped):
    /// the last sequence number when no memtable holds a write, else what the last
    /// installed flush covered. `SAVE` waits for it to reach the writes it saw.
    pub fn flushed_seq(&self) -> SeqNo {
        if self.has_unflushed_writes() {
            self.flushed.0
        } else {
            self.last_seq
        }
    }

    /// Since when [`ShardStore::flushed_seq`] holds: the last flush install, the last
    /// [`ShardStore::note_saved`], or the store's opening (`LASTSAVE`).
    pub fn flushed_at(&self) -> std::time::SystemTime {
        self.flushed.1
    }

    /// A save found nothing to flush: every write is in an SSTable as of now.
    pub fn note_saved(&mut self) {
        if !self.has_unflushed_writes() {
            self.flushed = (self.last_seq, std::time::SystemTime::now());
        }
    }

    /// Whether a frozen memtable waits to be flushed (encoded, written or installed).
    pub fn flush_pending(&self) -> bool {
        !self.immutables.is_empty()
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
        debug_assert!(!frozen.dropped || last_seq < self.last_drop_seq());
        match &mut self.versions {
            Versions::Inline(versions) => match versions.install_flush(id, wal_start, last_seq) {
                Ok(version) => self.finish_flush(version),
                Err(e) => {
                    self.flush_in_flight = None;
                    return Err(e);
                }
            },
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
    pub(super) fn finish_flush(&mut self, version: Arc<Version>) {
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
        self.flushed = (flushed.last_seq, std::time::SystemTime::now());
        // A version sent before a drop was installed still holds the dropped tables.
        if !self.drop_in_progress() {
            self.version = version;
        }
        // Freeing a large memtable takes a while; do it off the shard thread.
        let _ = std::thread::Builder::new()
            .name("tskv-memtable-free".into())
            .spawn(move || drop(flushed));
        self.flushes += 1;
        self.end_write_stall();
        self.delete_covered_segments();
        self.maybe_freeze();
    }

    /// Deletes WAL segments below the manifest's `wal_start`, except the current one
    /// (which is fdatasynced only when left; its writes are in an installed SSTable, and
    /// the next open deletes it). Failures are logged, not returned: a leftover segment is
    /// deleted at the next open.
    pub fn delete_covered_segments(&mut self) {
        let mut end = self.wal_start.min(self.wal.current().number);
        if let Some(held) = self.txs.oldest_held_segment() {
            end = end.min(held);
        }
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
