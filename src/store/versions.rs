//! Who owns the manifest — this store, synchronously, or the compaction core it is
//! attached to — and the compactions that follow from it.

use std::io;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

use super::ShardStore;
use crate::base::StoreError;
use crate::compaction::{
    self,
    core::{Reply, Request},
    job::CompactionStats,
    sink::SyncSink,
};
use crate::version::set::VersionSet;
use crate::version::Version;

/// Who writes the manifest of a store.
pub(super) enum Versions {
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

impl ShardStore {
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

    /// Takes the manifest back from the compaction core (which abandons a running
    /// compaction of this store), so the store writes it itself again: for a full
    /// compaction on the calling thread ([`ShardStore::compact_full_sync`]). Replies not
    /// yet taken are taken first. Does nothing when not attached.
    ///
    /// # Errors
    /// If the core has stopped (the manifest is then lost to this store: reopen it), or a
    /// reply taken reports a failed install.
    pub fn detach_compaction_core(&mut self) -> Result<(), StoreError> {
        let Versions::Core {
            requests, shard, ..
        } = &self.versions
        else {
            return Ok(());
        };
        let stopped = || StoreError::Io {
            context: "taking the manifest back from the compaction core".into(),
            source: io::Error::other("the compaction core has stopped"),
        };
        let (reply, versions) = mpsc::channel();
        let request = Request::Unregister {
            shard: *shard,
            reply,
        };
        requests.send(request).map_err(|_| stopped())?;
        let versions = versions.recv().map_err(|_| stopped())?;
        // Replies sent before the core let go, then the manifest.
        self.poll_compaction()?;
        if !self.drop_in_progress() {
            self.version = Arc::clone(versions.current());
        }
        self.versions = Versions::Inline(versions);
        Ok(())
    }

    /// Takes the compaction core's replies: swaps to each new version, ends an installed
    /// flush. Returns whether a flush ended (writes stalled on it may go on).
    ///
    /// # Errors
    /// A flush install that failed: the shard must stop taking writes.
    pub fn poll_compaction(&mut self) -> Result<bool, StoreError> {
        if let Some(e) = self.drop_failure() {
            return Err(e);
        }
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
                    // A version sent before a drop was installed still holds its tables.
                    if !self.drop_in_progress() {
                        self.version = version;
                    }
                    if let Some(stats) = compaction {
                        self.add_compaction_stats(stats);
                    }
                    self.end_write_stall();
                }
                Reply::Dropped { version, seq } => self.drop_installed(seq, version),
                Reply::DropFailed { reason } => {
                    self.drop_failed(reason);
                    return Err(self.drop_failure().expect("just failed"));
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
        let drop_in_progress = self.drop_in_progress();
        if let Versions::Inline(versions) = &mut self.versions {
            let settled = compaction::settle(versions, &self.opts, &mut SyncSink);
            if !drop_in_progress {
                self.version = Arc::clone(versions.current());
            }
            let stats = settled?;
            self.add_compaction_stats(stats);
            self.end_write_stall();
        }
        Ok(())
    }

    /// Rewrites every table down to the last level ([`compaction::settle_full`]), when
    /// there is no compaction core (offline tools).
    ///
    /// # Errors
    /// A failed read, write or manifest install; nothing is lost.
    pub fn compact_full_sync(&mut self) -> Result<(), StoreError> {
        let drop_in_progress = self.drop_in_progress();
        if let Versions::Inline(versions) = &mut self.versions {
            let settled = compaction::settle_full(versions, &self.opts, &mut SyncSink);
            if !drop_in_progress {
                self.version = Arc::clone(versions.current());
            }
            self.add_compaction_stats(settled?);
        }
        Ok(())
    }

    /// The current version (its tables by level).
    pub fn version(&self) -> &Arc<Version> {
        &self.version
    }
}
