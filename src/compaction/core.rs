//! The compaction core: one thread, pinned to its own core, serving every shard.
//!
//! It is the only writer of the shards' manifests. A shard registers its [`VersionSet`]
//! once its store is open; from then on the shard asks for a flushed table to be installed
//! ([`Request::InstallFlush`]) and learns of every new version by a [`Reply`] on its own
//! channel, followed by a call to its `notify` (which wakes the shard's event loop). The
//! shard swaps to the new version between two iterations of its loop, never waiting.
//!
//! Between requests the core picks compactions ([`super::picker::pick`]) shard by shard,
//! round robin, and runs them one output table at a time, serving requests between two
//! outputs, so a long compaction delays a flush install by at most one output table.
//!
//! Requests arrive on one bounded queue (`std::sync::mpsc::sync_channel`); replies go back
//! on one channel per shard, at most a few per flush, so they stay short.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::job::{trivial_move, CompactionJob, CompactionStats};
use super::picker::pick;
use super::sink::{RingSink, SyncSink, TableSink};
use crate::base::SeqNo;
use crate::config::StoreOptions;
use crate::sstable::TableId;
use crate::version::set::VersionSet;

/// How often the idle compaction core looks again for tables whose values have expired.
const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(1);
use crate::version::Version;
use crate::wal::SegmentNo;

/// Submission entries of the compaction core's io_uring (one write and one fdatasync are in
/// flight at a time).
const RING_ENTRIES: u32 = 8;

/// A message to the compaction core.
pub enum Request {
    /// Take over the manifest of `shard`; send its new versions on `replies`, then call
    /// `notify`.
    Register {
        /// The shard's index.
        shard: usize,
        /// Its version set, as recovery built it.
        versions: VersionSet,
        /// Its storage options (compaction policy, table format).
        options: StoreOptions,
        /// Where the shard receives replies.
        replies: Sender<Reply>,
        /// Wakes the shard's loop after a reply was sent.
        notify: Box<dyn Fn() + Send>,
    },
    /// The shard wrote and fdatasynced table `table` (a flushed memtable): add it to level 0
    /// and move the manifest's WAL start to `wal_start`.
    InstallFlush {
        /// The shard's index.
        shard: usize,
        /// The new table.
        table: TableId,
        /// The first WAL segment still needed after this flush.
        wal_start: SegmentNo,
        /// The highest sequence number in the flushed memtable.
        last_seq: SeqNo,
    },
    /// `FLUSHALL`: the drop-all record with sequence number `seq` is durable in the
    /// shard's WAL; remove every table older than it (see [`VersionSet::drop_all`]).
    DropAll {
        /// The shard's index.
        shard: usize,
        /// The drop-all's sequence number.
        seq: SeqNo,
    },
    /// Give `shard`'s manifest back: abandon its running compaction (its outputs are
    /// deleted), forget the shard, and send its version set on `reply`.
    Unregister {
        /// The shard's index.
        shard: usize,
        /// Where the version set goes.
        reply: Sender<VersionSet>,
    },
    /// Abandon any running compaction (its outputs are deleted) and exit.
    Stop,
}

/// A message from the compaction core to one shard.
#[derive(Debug)]
pub enum Reply {
    /// A new version is durable: swap to it.
    Installed {
        /// The new current version.
        version: Arc<Version>,
        /// The flushed table whose install this is, if any.
        flushed: Option<TableId>,
        /// What the compaction behind this version did, if one did.
        compaction: Option<CompactionStats>,
    },
    /// Installing a flushed table failed: the shard must stop taking writes.
    FlushFailed {
        /// The table.
        table: TableId,
        /// Why, naming the file.
        reason: String,
    },
    /// The drop-all `seq` is installed: swap to `version`, which holds no older table.
    Dropped {
        /// The new current version.
        version: Arc<Version>,
        /// The drop-all's sequence number.
        seq: SeqNo,
    },
    /// Installing a drop-all failed: the shard must stop taking writes (its WAL record
    /// still drops the tables at the next start).
    DropFailed {
        /// Why, naming the file.
        reason: String,
    },
    /// A compaction failed; nothing was lost and compactions of this shard stop until
    /// restart.
    CompactionFailed {
        /// Why, naming the file.
        reason: String,
    },
}

/// The running compaction core thread.
#[derive(Debug)]
pub struct CompactionCore {
    requests: SyncSender<Request>,
    thread: Option<JoinHandle<()>>,
}

impl CompactionCore {
    /// Starts the thread, pinned to `core` when given; requests queue up to `queue_len`.
    ///
    /// # Errors
    /// If the thread cannot be spawned.
    pub fn start(core: Option<core_affinity::CoreId>, queue_len: usize) -> std::io::Result<Self> {
        let (requests, inbox) = mpsc::sync_channel(queue_len.max(1));
        let thread = std::thread::Builder::new()
            .name("tskv-compaction".into())
            .spawn(move || {
                if let Some(core) = core {
                    if !core_affinity::set_for_current(core) {
                        tracing::warn!(core = core.id, "cannot pin the compaction core");
                    }
                }
                Core::new().run(&inbox);
            })?;
        Ok(Self {
            requests,
            thread: Some(thread),
        })
    }

    /// A handle for sending requests.
    pub fn requests(&self) -> SyncSender<Request> {
        self.requests.clone()
    }

    /// Stops the thread (abandoning a running compaction) and waits for it.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.requests.send(Request::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the compaction core panicked");
            }
        }
    }
}

impl Drop for CompactionCore {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// One registered shard, as the core sees it.
struct ShardState {
    versions: VersionSet,
    options: StoreOptions,
    replies: Sender<Reply>,
    notify: Box<dyn Fn() + Send>,
    /// A compaction of this shard failed: no more until restart.
    failed: bool,
}

impl ShardState {
    fn reply(&self, reply: Reply) {
        // A shard that has exited has dropped its receiver; nothing is waiting then.
        if self.replies.send(reply).is_ok() {
            (self.notify)();
        }
    }
}

struct Core {
    shards: Vec<Option<ShardState>>,
    job: Option<(usize, CompactionJob)>,
    next_shard: usize,
    sink: Box<dyn TableSink>,
}

impl Core {
    fn new() -> Self {
        let sink: Box<dyn TableSink> = match RingSink::new(RING_ENTRIES) {
            Ok(sink) => Box::new(sink),
            Err(e) => {
                tracing::warn!(error = %e, "compaction core: io_uring unavailable, writing SSTables with blocking calls");
                Box::new(SyncSink)
            }
        };
        Self {
            shards: Vec::new(),
            job: None,
            next_shard: 0,
            sink,
        }
    }

    fn run(mut self, inbox: &Receiver<Request>) {
        let mut busy = false;
        loop {
            if !busy {
                // Idle: wake now and then anyway, since values expiring make tables due for
                // compaction without any request arriving.
                match inbox.recv_timeout(EXPIRY_CHECK_INTERVAL) {
                    Ok(request) => {
                        if !self.handle(request) {
                            return self.abandon();
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return self.abandon(),
                }
            }
            loop {
                match inbox.try_recv() {
                    Ok(request) => {
                        if !self.handle(request) {
                            return self.abandon();
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.abandon(),
                }
            }
            busy = self.work();
        }
    }

    fn abandon(&mut self) {
        if let Some((_, job)) = self.job.take() {
            job.abandon();
        }
    }

    /// Handles one request; `false` means stop.
    fn handle(&mut self, request: Request) -> bool {
        match request {
            Request::Stop => return false,
            Request::Register {
                shard,
                versions,
                options,
                replies,
                notify,
            } => {
                if self.shards.len() <= shard {
                    self.shards.resize_with(shard + 1, || None);
                }
                self.shards[shard] = Some(ShardState {
                    versions,
                    options,
                    replies,
                    notify,
                    failed: false,
                });
            }
            Request::InstallFlush {
                shard,
                table,
                wal_start,
                last_seq,
            } => self.install_flush(shard, table, wal_start, last_seq),
            Request::DropAll { shard, seq } => self.drop_all(shard, seq),
            Request::Unregister { shard, reply } => {
                if self.job.as_ref().is_some_and(|(s, _)| *s == shard) {
                    let (_, job) = self.job.take().expect("checked");
                    job.abandon();
                }
                if let Some(state) = self.shards.get_mut(shard).and_then(Option::take) {
                    // The store waits for it; if it has gone, there is no one to tell.
                    let _ = reply.send(state.versions);
                }
            }
        }
        true
    }

    fn install_flush(
        &mut self,
        shard: usize,
        table: TableId,
        wal_start: SegmentNo,
        last_seq: SeqNo,
    ) {
        let Some(state) = self.shards.get_mut(shard).and_then(Option::as_mut) else {
            debug_assert!(false, "install for unregistered shard {shard}");
            return;
        };
        let installed = state.versions.install_flush(table, wal_start, last_seq);
        state.reply(match installed {
            Ok(version) => Reply::Installed {
                version,
                flushed: Some(table),
                compaction: None,
            },
            Err(e) => Reply::FlushFailed {
                table,
                reason: e.to_string(),
            },
        });
    }

    /// `FLUSHALL` on `shard`: abandons its running compaction (whose inputs the drop
    /// removes) and installs the drop.
    fn drop_all(&mut self, shard: usize, seq: SeqNo) {
        if self.job.as_ref().is_some_and(|(s, _)| *s == shard) {
            let (_, job) = self.job.take().expect("checked");
            job.abandon();
        }
        let Some(state) = self.shards.get_mut(shard).and_then(Option::as_mut) else {
            debug_assert!(false, "drop for unregistered shard {shard}");
            return;
        };
        let reply = match state.versions.drop_all(seq) {
            Ok(version) => Reply::Dropped { version, seq },
            Err(e) => Reply::DropFailed {
                reason: e.to_string(),
            },
        };
        state.reply(reply);
    }

    /// Advances compaction by one output table, or starts the next task. Returns whether
    /// there may be more to do right away.
    fn work(&mut self) -> bool {
        if let Some((shard, mut job)) = self.job.take() {
            match job.step(self.sink.as_mut()) {
                Ok(false) => self.job = Some((shard, job)),
                Ok(true) => self.finish(shard, job),
                Err(e) => self.fail(shard, job, &e.to_string()),
            }
            return true;
        }
        self.start_next()
    }

    fn finish(&mut self, shard: usize, job: CompactionJob) {
        let state = self.shards[shard].as_mut().expect("registered");
        let (edit, stats) = job.finish();
        let outputs: Vec<_> = edit.added.iter().map(|(_, t)| Arc::clone(t)).collect();
        match state.versions.apply(edit) {
            Ok(version) => state.reply(Reply::Installed {
                version,
                flushed: None,
                compaction: Some(stats),
            }),
            Err(e) => {
                for output in outputs {
                    output.mark_obsolete();
                }
                state.failed = true;
                tracing::error!(shard, error = %e, "installing a compaction failed; compactions of this shard stop until restart");
                state.reply(Reply::CompactionFailed {
                    reason: e.to_string(),
                });
            }
        }
    }

    fn fail(&mut self, shard: usize, job: CompactionJob, reason: &str) {
        job.abandon();
        let state = self.shards[shard].as_mut().expect("registered");
        state.failed = true;
        tracing::error!(
            shard,
            reason,
            "compaction failed; compactions of this shard stop until restart"
        );
        state.reply(Reply::CompactionFailed {
            reason: reason.to_string(),
        });
    }

    /// Picks the next task, shard by shard from where the last one was found. A trivial
    /// move is applied at once. Returns whether anything was started or applied.
    fn start_next(&mut self) -> bool {
        if crate::fault::compaction_paused() {
            return false;
        }
        let count = self.shards.len();
        for step in 0..count {
            let shard = (self.next_shard + step) % count;
            let Some(state) = self.shards[shard].as_mut().filter(|s| !s.failed) else {
                continue;
            };
            let version = Arc::clone(state.versions.current());
            let now_ms = crate::base::unix_now_ms();
            let Some(task) = pick(&version.metas(), &state.options.compaction, now_ms) else {
                continue;
            };
            self.next_shard = (shard + 1) % count;
            if task.is_trivial_move() {
                let applied = state.versions.apply(trivial_move(&task, &version));
                match applied {
                    Ok(version) => state.reply(Reply::Installed {
                        version,
                        flushed: None,
                        compaction: Some(CompactionStats::default()),
                    }),
                    Err(e) => {
                        state.failed = true;
                        state.reply(Reply::CompactionFailed {
                            reason: e.to_string(),
                        });
                    }
                }
                return true;
            }
            let job = CompactionJob::new(
                task,
                &version,
                state.versions.dir().to_path_buf(),
                state.options.clone(),
                Arc::clone(state.versions.table_ids()),
            );
            self.job = Some((shard, job));
            return true;
        }
        false
    }
}
