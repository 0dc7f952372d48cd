//! `FLUSHALL`: dropping every key of the store, durably and crash-safely.
//!
//! A drop-all is a write like any other. [`ShardStore::drop_all`] takes the next sequence
//! number `S` and appends a drop-all WAL record ("every write below `S` is gone"), which
//! group commit makes durable with the writes around it; the caller acknowledges the
//! `FLUSHALL` once `S` is durable. In memory the drop takes effect at once: the active
//! memtable is emptied, frozen memtables are marked dropped (reads skip them; their flush
//! still runs), and reads use an empty version until the drop is installed, so a write
//! pipelined after the `FLUSHALL` reads what it should.
//!
//! The SSTables go by a manifest edit ([`VersionSet::drop_all`]) that removes every table
//! older than `S` and raises the manifest's `last_seq` to `S`. It is sent to the manifest's
//! owner (the compaction core, or this store when driven synchronously) only once the
//! WAL record is durable: an edit installed earlier could, after a crash that lost the
//! record, leave the tables gone but older WAL writes replayed, a state no prefix of the
//! writes explains. Until the edit is installed, the record stays in the WAL (the WAL
//! start only moves with a flush, whose install the owner serves after the drop), and
//! recovery applies it: it empties what it replayed before the record and the store drops
//! the tables at open ([`ShardStore::finish_interrupted_drop`]). After the edit, recovery
//! skips the record (its sequence number is at or below the manifest's `last_seq`), and a
//! flush of a memtable frozen before the drop is discarded by the owner instead of
//! installed.
//!
//! So from the acknowledgement on, no crash can bring back a key written before the
//! `FLUSHALL`, and the writes after it are kept like any others.

use std::io;
use std::sync::Arc;

use super::versions::Versions;
use super::ShardStore;
use crate::base::{SeqNo, StoreError};
use crate::compaction::core::Request;
use crate::manifest::LEVELS_MAX;
use crate::version::Version;
use crate::wal::record::RecordKind;

/// The drop-alls of a store that are not installed yet.
#[derive(Debug, Default)]
pub(super) struct Drops {
    /// The newest drop-all whose WAL record is not yet durable: sent to the manifest's
    /// owner once it is.
    unsent: Option<SeqNo>,
    /// The newest drop-all not yet installed: versions the owner sends meanwhile predate
    /// it and are not read from.
    awaited: Option<SeqNo>,
    /// The sequence number of the last drop-all (0: none since open). A lookup that finds
    /// no version reports it, so a reply that depends on the drop waits for its fdatasync.
    last: SeqNo,
    /// Why sending or installing a drop failed, until [`ShardStore::poll_compaction`]
    /// reports it (the shard then refuses writes).
    failed: Option<String>,
}

impl ShardStore {
    /// Drops every key (`FLUSHALL`): appends a drop-all WAL record and empties the store in
    /// memory at once (see the module doc). Returns the drop's sequence number: it is
    /// durable, and the `FLUSHALL` may be acknowledged, once the acknowledgement point
    /// reaches it.
    pub fn drop_all(&mut self) -> SeqNo {
        self.last_seq = SeqNo(self.last_seq.0 + 1);
        let seq = self.last_seq;
        self.wal.append(RecordKind::DropAll, seq, b"", b"");
        let emptied = std::mem::take(&mut self.active);
        if !emptied.is_empty() {
            // Freeing a large memtable takes a while; do it off the shard thread.
            let _ = std::thread::Builder::new()
                .name("tskv-memtable-free".into())
                .spawn(move || drop(emptied));
        }
        for frozen in &mut self.immutables {
            frozen.dropped = true;
        }
        self.freeze_requested = false;
        self.version = Arc::new(Version::new(vec![Vec::new(); LEVELS_MAX]));
        self.drops.unsent = Some(seq);
        self.drops.awaited = Some(seq);
        self.drops.last = seq;
        seq
    }

    /// The sequence number of the last drop-all since open (0: none).
    pub fn last_drop_seq(&self) -> SeqNo {
        self.drops.last
    }

    /// A drop that could not be sent or installed, once: the store must take no more
    /// writes (reads stay right, and the WAL record drops the tables at the next start).
    pub(super) fn take_drop_failure(&mut self) -> Option<StoreError> {
        let reason = self.drops.failed.take()?;
        Some(StoreError::Io {
            context: "installing a FLUSHALL".into(),
            source: io::Error::other(reason),
        })
    }

    /// Whether a drop-all is not installed yet: versions from the manifest's owner are
    /// not read from until it is.
    pub(super) fn drop_in_progress(&self) -> bool {
        self.drops.awaited.is_some()
    }

    /// Sends the newest drop-all to the manifest's owner once its WAL record is durable
    /// (called wherever the durable point moves).
    pub(super) fn install_durable_drops(&mut self) {
        let Some(seq) = self.drops.unsent.filter(|&seq| seq <= self.durable_seq) else {
            return;
        };
        self.drops.unsent = None;
        let sent = match &mut self.versions {
            Versions::Inline(versions) => versions.drop_all(seq).map(|version| {
                self.drop_installed(seq, version);
            }),
            Versions::Core {
                requests, shard, ..
            } => requests
                .send(Request::DropAll { shard: *shard, seq })
                .map_err(|_| StoreError::Io {
                    context: "installing a FLUSHALL".into(),
                    source: io::Error::other("the compaction core has stopped"),
                }),
            Versions::Moved => unreachable!("the version set is always somewhere"),
        };
        if let Err(e) = sent {
            // Nothing is lost: the durable WAL record drops the tables at the next start.
            tracing::error!(dir = %self.dir.display(), error = %e, "installing a FLUSHALL failed");
            self.drops.failed = Some(e.to_string());
        }
    }

    /// The manifest's owner installed drop-all `seq` as `version`.
    pub(super) fn drop_installed(&mut self, seq: SeqNo, version: Arc<Version>) {
        if self.drops.awaited == Some(seq) {
            self.drops.awaited = None;
            self.version = version;
        }
    }

    /// At open: recovery replayed drop-all `seq`, whose edit may not have been installed
    /// before the crash; install it now (the store still owns its manifest then).
    ///
    /// # Errors
    /// The manifest could not be installed.
    pub(super) fn finish_interrupted_drop(&mut self, seq: SeqNo) -> Result<(), StoreError> {
        self.drops.last = seq;
        let Versions::Inline(versions) = &mut self.versions else {
            unreachable!("a store is attached to the compaction core after open");
        };
        let stale = versions
            .current()
            .tables_newest_first()
            .any(|t| t.table().footer().largest_seq < seq);
        if stale {
            tracing::info!(dir = %self.dir.display(), seq = seq.0, "finishing a FLUSHALL interrupted by a crash");
            self.version = versions.drop_all(seq)?;
        }
        Ok(())
    }
}
