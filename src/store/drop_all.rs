//! `FLUSHALL`: dropping every key of the store, durably and crash-safely.
//!
//! A drop-all is a write like any other. [`ShardStore::drop_all`] takes the next sequence
//! number `S` and appends a drop-all WAL record ("every write below `S` is gone"), which
//! group commit makes durable with the writes around it; the caller acknowledges the
//! `FLUSHALL` once `S` is durable, as a `SET`. In memory the drop takes effect at once: the
//! active memtable is emptied, frozen memtables are marked dropped (reads skip them; their
//! flush still runs), and reads use an empty version until the drop is installed, so a
//! write pipelined after the `FLUSHALL` reads what it should.
//!
//! The SSTables go by one manifest edit ([`VersionSet::drop_all`]) that removes every table
//! older than `S` and raises the manifest's `last_seq` to `S`. It is sent to the manifest's
//! owner (the compaction core, or this store itself when driven synchronously) at once,
//! so the owner installs it before any flush of a memtable frozen after the drop: writes
//! after the drop never share a table with writes before it. Two crash cases, both
//! leaving a state that some prefix of the writes explains:
//! - **The edit is installed, the WAL record may not be durable.** Recovery replays only
//!   WAL records above the manifest's `last_seq`, so the writes before the drop stay gone
//!   with their tables: the state is "the drop happened", which an unacknowledged
//!   `FLUSHALL` may or may not have done.
//! - **The WAL record is durable, the edit not installed.** Recovery replays the record: it
//!   empties what was replayed before it, and the store drops the tables the manifest
//!   still lists at open ([`ShardStore::finish_interrupted_drop`]). The record stays in
//!   the WAL until then, since the WAL start only moves with a flush install, which the
//!   owner serves after the drop.
//!
//! A flush of a memtable frozen before the drop that reaches the owner after the edit is
//! discarded instead of installed. So from the acknowledgement on, no crash can bring back
//! a key written before the `FLUSHALL`, and the writes after it are kept like any others.
//!
//! [`VersionSet::drop_all`]: crate::version::set::VersionSet::drop_all

use std::io;
use std::sync::Arc;

use super::versions::Versions;
use super::ShardStore;
use crate::base::{SeqNo, StoreError};
use crate::compaction::core::Request;
use crate::manifest::LEVELS_MAX;
use crate::version::Version;
use crate::wal::record::RecordKind;

/// The drop-alls of a store.
#[derive(Debug, Default)]
pub(super) struct Drops {
    /// The newest drop-all not yet installed: versions the owner sends meanwhile predate
    /// it and are not read from.
    awaited: Option<SeqNo>,
    /// The sequence number of the last drop-all (0: none since open). Until it is durable,
    /// a lookup that finds no version reports it, so a reply that depends on the drop
    /// waits for its fdatasync.
    last: SeqNo,
    /// Why sending or installing a drop failed: flushes stop, and
    /// [`ShardStore::poll_compaction`] reports it (the shard then refuses writes).
    failed: Option<String>,
}

impl ShardStore {
    /// Drops every key (`FLUSHALL`): appends a drop-all WAL record, empties the store in
    /// memory and hands the manifest edit to the manifest's owner (see the module doc).
    /// Returns the drop's sequence number: the `FLUSHALL` may be acknowledged once the
    /// acknowledgement point reaches it. A failure to install the edit is reported by
    /// [`ShardStore::poll_compaction`] and [`ShardStore::take_flush`], not here: the WAL
    /// record still makes the drop happen at the next start.
    pub fn drop_all(&mut self) -> SeqNo {
        self.last_seq = SeqNo(self.last_seq.0 + 1);
        self.memtable_writes += 1;
        let seq = self.last_seq;
        self.wal.append(RecordKind::DropAll, seq, b"", b"", None);
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
        // Writes logged and held by the caller are dropped with the rest.
        self.logged = Default::default();
        self.end_write_stall();
        self.version = Arc::new(Version::new(vec![Vec::new(); LEVELS_MAX]));
        self.drops.awaited = Some(seq);
        self.drops.last = seq;
        let sent = match &mut self.versions {
            Versions::Inline(versions) => versions
                .drop_all(seq)
                .map(|version| self.drop_installed(seq, version)),
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
            self.drop_failed(e.to_string());
        }
        seq
    }

    /// The sequence number of the last drop-all since open (0: none).
    pub fn last_drop_seq(&self) -> SeqNo {
        self.drops.last
    }

    /// A drop that could not be sent or installed: the store must take no more writes
    /// and flush nothing more (a flush would move the WAL start past the drop-all record,
    /// which is all that still drops the old tables at the next start).
    pub(super) fn drop_failure(&self) -> Option<StoreError> {
        let reason = self.drops.failed.as_ref()?;
        Some(StoreError::Io {
            context: "installing a FLUSHALL".into(),
            source: io::Error::other(reason.clone()),
        })
    }

    /// Installing a drop failed: nothing is lost (its WAL record drops the tables at the
    /// next start, once durable), but the store flushes nothing more.
    pub(super) fn drop_failed(&mut self, reason: String) {
        tracing::error!(dir = %self.dir.display(), reason, "installing a FLUSHALL failed");
        self.drops.failed.get_or_insert(reason);
    }

    /// Whether a drop-all is not installed yet: versions from the manifest's owner are
    /// not read from until it is.
    pub(super) fn drop_in_progress(&self) -> bool {
        self.drops.awaited.is_some()
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
