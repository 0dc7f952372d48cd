//! The embedded engine: tskv's storage engine as a library, without the server.
//!
//! [`Engine`] runs the same code as a server shard — WAL, memtable, SSTables, manifest,
//! the same compaction picker and jobs — with a blocking I/O driver instead of the shard's
//! io_uring: a write's WAL record is written with `pwrite` and made durable with
//! `fdatasync` (at once, or when you call [`Engine::sync`]). As in the server, background
//! threads do the rest while writes go on into a new memtable: a full memtable is encoded
//! as an SSTable on one, written and fdatasynced on another, and installed in the manifest
//! by the engine's own compaction thread ([`crate::compaction::core`]), which also runs
//! the compactions. A write waits only when the next memtable fills before the previous
//! one is flushed, or level 0 is too deep. [`Engine::flush`] waits for that work, and
//! [`Engine::compact`] runs what compaction is due on the calling thread.
//!
//! ```
//! use tskv::engine::{Durability, Engine, Options};
//!
//! # fn main() -> Result<(), tskv::base::StoreError> {
//! let dir = tempfile::tempdir().unwrap();
//! let mut engine = Engine::open(dir.path(), Options::default())?;
//! engine.put(b"sensor:1", b"21.5")?;
//! engine.put(b"sensor:2", b"19.0")?;
//! engine.put(b"sensor:3", b"22.1")?;
//! engine.delete(b"sensor:2")?;
//! assert_eq!(engine.get(b"sensor:1")?, Some(b"21.5".to_vec()));
//! assert_eq!(engine.get(b"sensor:2")?, None);
//!
//! // Keys from "sensor:1" up to (not including) "sensor:9", in order, deletions hidden.
//! let keys: Vec<Vec<u8>> = engine
//!     .scan(&b"sensor:1"[..]..&b"sensor:9"[..])
//!     .map(|entry| entry.map(|(key, _value)| key))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(keys, vec![b"sensor:1".to_vec(), b"sensor:3".to_vec()]);
//!
//! engine.flush()?; // the memtable becomes an SSTable
//! engine.compact()?; // merge SSTables as the policy says
//! drop(engine);
//!
//! // Every write was synced before it returned (the default durability): all are back.
//! let engine = Engine::open(dir.path(), Options::default())?;
//! assert_eq!(engine.get(b"sensor:3")?, Some(b"22.1".to_vec()));
//! # let _ = Durability::Buffered;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::base::{io_error, iolog, StoreError};
use crate::compaction::core::CompactionCore;
use crate::config::StoreOptions;
use crate::store::{FlushJob, ShardStore};

/// Requests the engine's compaction thread queues (flush installs; one at a time).
const CORE_QUEUE_LEN: usize = 16;

/// How long a waiting call sleeps between looks at the background threads.
const WAIT_STEP: Duration = Duration::from_micros(200);

/// Buffered writes between two looks at the background threads (unless the memtable is
/// full, when every write looks). A look costs about 230 instructions (a channel
/// `try_recv`, a thread's `is_finished`), as much as a fifth of a sequential `put`
/// (callgrind, `engine_vs_fjall` fillseq); a finished flush or compaction is taken at
/// most this many writes late.
const PROGRESS_EVERY_WRITES: u32 = 64;

/// When a write becomes durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `put` and `delete` return after the fdatasync covering the write completed.
    #[default]
    SyncEachWrite,
    /// Writes gather in memory and are written and fdatasynced together by
    /// [`Engine::sync`] (or when the memtable fills): group commit under your control. A
    /// crash loses the writes since the last sync, never more, never a part of one.
    /// WAL segments are then not zero-filled
    /// ([`crate::config::StoreOptions::wal_zero_fill`] is taken as false): the records
    /// reach the WAL in large batches, for which the zeros would only double the bytes
    /// written.
    Buffered,
}

/// How to open an [`Engine`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Memtable, WAL segment, SSTable and compaction options (sizes in bytes).
    pub store: StoreOptions,
    /// When writes become durable.
    pub durability: Durability,
}

/// An embedded LSM store in one directory, used from one thread (flushes and compactions
/// run on background threads of its own).
#[derive(Debug)]
pub struct Engine {
    store: ShardStore,
    durability: Durability,
    /// The SSTable of a flush being written and fdatasynced on a background thread.
    writing: Option<JoinHandle<Result<FlushJob, StoreError>>>,
    /// Buffered writes since the last look at the background threads.
    writes_since_progress: u32,
    /// Installs flushes in the manifest and runs compactions (dropped last: stops it).
    core: CompactionCore,
}

/// Starts a compaction thread and hands it `store`'s manifest.
fn start_core(store: &mut ShardStore) -> Result<CompactionCore, StoreError> {
    let core = CompactionCore::start(None, CORE_QUEUE_LEN)
        .map_err(io_error("starting the compaction thread".to_string()))?;
    store.attach_compaction_core(0, core.requests(), Box::new(|| {}))?;
    Ok(core)
}

/// The store options `options` give, with WAL zero-filling only when each write is synced.
fn store_options(options: &Options) -> StoreOptions {
    StoreOptions {
        wal_zero_fill: options.store.wal_zero_fill
            && options.durability == Durability::SyncEachWrite,
        ..options.store.clone()
    }
}

/// Writes a flush's SSTable and fdatasyncs it (on a background thread).
fn write_table(job: FlushJob, shown: String) -> Result<FlushJob, StoreError> {
    iolog::write_at(&job.file, &job.buf, 0).map_err(io_error(format!("writing {shown}")))?;
    iolog::sync_data(&job.file).map_err(io_error(format!("syncing {shown}")))?;
    Ok(job)
}

impl Engine {
    /// Opens (creating if absent) the store in `dir` and recovers it: SSTables from the
    /// manifest, then the WAL replayed.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corruption`], naming the file.
    pub fn open(dir: &Path, options: Options) -> Result<Self, StoreError> {
        let mut store = ShardStore::open(dir, &store_options(&options))?;
        let core = start_core(&mut store)?;
        Ok(Self {
            store,
            durability: options.durability,
            writing: None,
            writes_since_progress: 0,
            core,
        })
    }

    /// Opens shard `index` of a server's data directory `data_dir` of `shards` shards
    /// (offline, as `tskv-tool reshard` does): like [`Engine::open`], but a transaction
    /// across shards counts if *any* shard's WAL committed it ([`crate::wal::tx`]).
    ///
    /// # Errors
    /// As [`Engine::open`].
    pub fn open_shard(
        data_dir: &Path,
        index: usize,
        shards: usize,
        options: Options,
    ) -> Result<Self, StoreError> {
        let outcomes = crate::datadir::tx_outcomes(data_dir, shards)?;
        let dir = crate::datadir::shard_dir(data_dir, index);
        let mut store =
            ShardStore::open_shard(&dir, &store_options(&options), &outcomes.shard(index))?;
        store.delete_covered_segments();
        let core = start_core(&mut store)?;
        Ok(Self {
            store,
            durability: options.durability,
            writing: None,
            writes_since_progress: 0,
            core,
        })
    }

    /// Writes `key = value`.
    ///
    /// # Errors
    /// A failed WAL write or fdatasync, flush or compaction. After a failed fdatasync the
    /// engine must be reopened: whether the write survived is unknown.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.store.put(key, value);
        self.after_write()
    }

    /// Writes `key = value`, visible until `expire_at_ms` (absolute Unix milliseconds;
    /// `None` = never). After the deadline, [`Engine::get`] and [`Engine::scan`] no longer
    /// see the key, and compaction drops it.
    ///
    /// # Errors
    /// As [`Engine::put`].
    pub fn put_expiring(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        self.store.put_expiring(key, value, expire_at_ms);
        self.after_write()
    }

    /// Deletes `key` (writes a tombstone; deleting a missing key is not an error).
    ///
    /// # Errors
    /// As [`Engine::put`].
    pub fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.store.delete(key);
        self.after_write()
    }

    /// The value of `key`; `Ok(None)` if it has none.
    ///
    /// # Errors
    /// A failed read or checksum: a damaged table is an error, never a wrong value.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.store.get(key)?.and_then(|lookup| lookup.value))
    }

    /// The live keys in `range`, in key order, with their values, streamed (memory does not
    /// grow with the range). For every key, `scan::<_, &[u8]>(..)`.
    pub fn scan<R, K>(
        &self,
        range: R,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + '_
    where
        R: RangeBounds<K>,
        K: AsRef<[u8]>,
    {
        let start: Vec<u8> = match range.start_bound() {
            Bound::Included(k) => k.as_ref().to_vec(),
            Bound::Excluded(k) => {
                // The smallest key greater than k.
                let mut next = k.as_ref().to_vec();
                next.push(0);
                next
            }
            Bound::Unbounded => Vec::new(),
        };
        let end: Bound<Vec<u8>> = match range.end_bound() {
            Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.store
            .scan_from(&start)
            .take_while(move |entry| match (entry, &end) {
                (Err(_), _) | (_, Bound::Unbounded) => true,
                (Ok(e), Bound::Included(end)) => e.key <= *end,
                (Ok(e), Bound::Excluded(end)) => e.key < *end,
            })
            .filter_map(|entry| match entry {
                Ok(e) => e.value.map(|value| Ok((e.key, value))),
                Err(e) => Some(Err(e)),
            })
    }

    /// Makes every write so far durable: writes the pending WAL records and fdatasyncs.
    ///
    /// # Errors
    /// A failed write or fdatasync, or a failed flush found meanwhile.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.write_wal()?;
        self.progress()?;
        if !self.store.can_accept_writes() {
            self.wait_until(ShardStore::can_accept_writes)?;
        }
        Ok(())
    }

    /// Writes the memtable to an SSTable now (after syncing the WAL), even if not full,
    /// and waits until every memtable is flushed and installed.
    ///
    /// # Errors
    /// As [`Engine::sync`], or a failed SSTable write or manifest install.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.store.request_freeze();
        self.wait_until(|store| !store.has_unflushed_writes())
    }

    /// Runs compactions until the policy is satisfied (levels within their targets, no
    /// table holding an expired value), on the calling thread, with the manifest taken
    /// back from the compaction thread for the time (a compaction it was running is
    /// abandoned and done here). Flushes in progress end first.
    ///
    /// # Errors
    /// A failed read, write or manifest install; nothing is lost.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        self.inline(ShardStore::compact_sync)
    }

    /// Rewrites every table down to the last level: every overwritten version and every
    /// tombstone is gone afterwards (a manual full compaction). Runs on the calling thread,
    /// with the manifest taken back from the compaction thread for the time.
    ///
    /// # Errors
    /// A failed read, write or manifest install; nothing is lost.
    pub fn compact_full(&mut self) -> Result<(), StoreError> {
        self.inline(ShardStore::compact_full_sync)
    }

    /// Runs `work` on the store with the manifest taken back from the compaction thread,
    /// once no flush is in progress, then hands it back.
    fn inline(
        &mut self,
        work: impl FnOnce(&mut ShardStore) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.wait_until(|store| !store.flush_pending())?;
        self.store.detach_compaction_core()?;
        let done = work(&mut self.store);
        self.store
            .attach_compaction_core(0, self.core.requests(), Box::new(|| {}))?;
        done
    }

    /// The underlying store, for statistics.
    pub fn store(&self) -> &ShardStore {
        &self.store
    }

    /// After a write: with `SyncEachWrite`, sync. Otherwise a full memtable is frozen (its
    /// WAL records written and fdatasynced) and flushed by the background threads while
    /// writes go on into a new memtable, as a shard does; a write waits only when the new
    /// memtable fills too (or level 0 is too deep) before that.
    fn after_write(&mut self) -> Result<(), StoreError> {
        if self.durability == Durability::SyncEachWrite {
            return self.sync();
        }
        let full = self.store.memtable_full();
        if full && self.store.can_accept_writes() {
            // Freezes it: the frozen memtable's records must be durable before its flush.
            self.write_wal()?;
        }
        // Takes the compaction thread's new versions and moves flushes on, every so often.
        self.writes_since_progress += 1;
        if full || self.writes_since_progress >= PROGRESS_EVERY_WRITES {
            self.writes_since_progress = 0;
            self.progress()?;
        }
        if !self.store.can_accept_writes() {
            return self.sync();
        }
        Ok(())
    }

    /// Writes and fdatasyncs the pending WAL records.
    fn write_wal(&mut self) -> Result<(), StoreError> {
        while let Some(batch) = self.store.take_wal_batch()? {
            self.store.write_batch_sync(batch)?;
        }
        Ok(())
    }

    /// Moves the background work on without waiting: takes the compaction thread's
    /// replies, hands it a written SSTable to install, starts writing the next one (whose
    /// encoding [`ShardStore::take_flush`] starts on a thread of its own).
    fn progress(&mut self) -> Result<(), StoreError> {
        self.store.poll_compaction()?;
        if self.writing.as_ref().is_some_and(JoinHandle::is_finished) {
            let written =
                self.writing
                    .take()
                    .expect("checked")
                    .join()
                    .map_err(|_| StoreError::Io {
                        context: "writing an SSTable".into(),
                        source: io::Error::other("the SSTable writer panicked"),
                    })?;
            self.store.flush_written(written?)?;
        }
        if self.writing.is_none() {
            if let Some(job) = self.store.take_flush()? {
                let shown = format!("SSTable {}", job.table_id);
                let spawned = std::thread::Builder::new()
                    .name("tskv-flush-write".into())
                    .spawn(move || write_table(job, shown))
                    .map_err(io_error("starting the SSTable writer".to_string()))?;
                self.writing = Some(spawned);
            }
        }
        Ok(())
    }

    /// Writes the WAL and moves the background work on until `done`.
    fn wait_until(&mut self, done: impl Fn(&ShardStore) -> bool) -> Result<(), StoreError> {
        loop {
            self.write_wal()?;
            self.progress()?;
            if done(&self.store) {
                return Ok(());
            }
            std::thread::sleep(WAIT_STEP);
        }
    }
}
