//! The embedded engine: tskv's storage engine as a library, without the server.
//!
//! [`Engine`] runs the same code as a server shard — WAL, memtable, SSTables, manifest,
//! the same compaction picker and jobs — with a blocking I/O driver instead of the shard's
//! io_uring: a write's WAL record is written with `pwrite` and made durable with
//! `fdatasync` (at once, or when you call [`Engine::sync`]), memtables are flushed and
//! compactions run on the calling thread when due.
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

use std::ops::{Bound, RangeBounds};
use std::path::Path;

use crate::base::StoreError;
use crate::config::StoreOptions;
use crate::store::ShardStore;

/// When a write becomes durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `put` and `delete` return after the fdatasync covering the write completed.
    #[default]
    SyncEachWrite,
    /// Writes gather in memory and are written and fdatasynced together by
    /// [`Engine::sync`] (or when the memtable fills): group commit under your control. A
    /// crash loses the writes since the last sync, never more, never a part of one.
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

/// A single-threaded embedded LSM store in one directory.
#[derive(Debug)]
pub struct Engine {
    store: ShardStore,
    durability: Durability,
}

impl Engine {
    /// Opens (creating if absent) the store in `dir` and recovers it: SSTables from the
    /// manifest, then the WAL replayed.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corruption`], naming the file.
    pub fn open(dir: &Path, options: Options) -> Result<Self, StoreError> {
        Ok(Self {
            store: ShardStore::open(dir, &options.store)?,
            durability: options.durability,
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
        let mut store = ShardStore::open_shard(&dir, &options.store, &outcomes.shard(index))?;
        store.delete_covered_segments();
        Ok(Self {
            store,
            durability: options.durability,
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
    /// A failed write or fdatasync.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.write_wal()?;
        self.flush_frozen()
    }

    /// Writes the memtable to an SSTable now (after syncing the WAL), even if not full.
    ///
    /// # Errors
    /// As [`Engine::sync`], or a failed SSTable write or manifest install.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.store.request_freeze();
        self.sync()?;
        while self.store.has_unflushed_writes() {
            self.store.request_freeze();
            self.sync()?;
        }
        Ok(())
    }

    /// Runs compactions until the policy is satisfied.
    ///
    /// # Errors
    /// A failed read, write or manifest install; nothing is lost.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        self.store.compact_sync()
    }

    /// Rewrites every table down to the last level: every overwritten version and every
    /// tombstone is gone afterwards (a manual full compaction).
    ///
    /// # Errors
    /// A failed read, write or manifest install; nothing is lost.
    pub fn compact_full(&mut self) -> Result<(), StoreError> {
        self.store.compact_full_sync()
    }

    /// The underlying store, for statistics.
    pub fn store(&self) -> &ShardStore {
        &self.store
    }

    /// After a write: with `SyncEachWrite`, sync. Otherwise a full memtable is frozen (its
    /// WAL records written and fdatasynced) and its SSTable encoded on a background thread
    /// while writes go on into a new memtable, as a shard does; the flush is installed by
    /// the first write after the encoding is done. Only when the new memtable fills too
    /// before that does a write wait for the flush.
    fn after_write(&mut self) -> Result<(), StoreError> {
        if self.durability == Durability::SyncEachWrite {
            return self.sync();
        }
        if self.store.memtable_full() && self.store.can_accept_writes() {
            self.write_wal()?;
            // Starts the encoding of the memtable just frozen.
            if let Some(job) = self.store.take_flush()? {
                self.install_flush(job)?;
            }
        }
        if !self.store.can_accept_writes() {
            return self.sync();
        }
        if self.store.flush_encoding() {
            if let Some(job) = self.store.take_flush()? {
                self.install_flush(job)?;
            }
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

    /// Flushes frozen memtables and compacts after each flush.
    fn flush_frozen(&mut self) -> Result<(), StoreError> {
        while let Some(job) = self.store.take_flush_blocking()? {
            self.install_flush(job)?;
        }
        Ok(())
    }

    /// Writes the SSTable of a flush and installs it, then compacts.
    fn install_flush(&mut self, job: crate::store::FlushJob) -> Result<(), StoreError> {
        self.store.flush_sync(job)?;
        self.store.compact_sync()?;
        self.write_wal()
    }
}
