//! The committer: owns the shard's writes in flight through its io_uring — WAL batches
//! with their linked fdatasync (group commit), the memtable flush, the periodic fdatasync —
//! and reports them to the store strictly in order, which moves the acknowledgement point.
//!
//! It decides nothing about connections: the shard calls it once per loop iteration to
//! start writes, hands it the completions of its tags, and poisons itself with the reason
//! when a call returns an error. A failed write or fdatasync is never retried.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::metrics::ShardMetrics;
use super::tag_of;
use crate::base::SeqNo;
use crate::config::FsyncMode;
use crate::fault::RingFaults;
use crate::runtime::uring::{Completion, OpKind, Ring};
use crate::store::{FlushJob, ShardStore};
use crate::wal::WalBatch;

/// Ring tags of the committer's operations (low byte of the tag; see [`tag_of`]).
pub(super) const TAG_WAL_WRITE: u64 = 1;
pub(super) const TAG_WAL_SYNC: u64 = 2;
pub(super) const TAG_FLUSH_WRITE: u64 = 3;
pub(super) const TAG_FLUSH_SYNC: u64 = 4;
pub(super) const TAG_PERIODIC_SYNC: u64 = 5;

/// WAL batches in flight at once. More than one lets a batch be written and synced while
/// the previous one's fdatasync still runs, which pays where the device overlaps flushes.
/// On this project's ext4-on-virtio machine, 2 gave 15% fewer durable SETs per second at
/// 50 unpipelined clients than 1 (concurrent fdatasyncs of one file serialize in the
/// journal, so batches only got smaller), hence 1: the next batch gathers while one syncs.
const WAL_WRITES_IN_FLIGHT_MAX: usize = 1;

/// A write through the ring with its linked fdatasync, tracked until both completed.
struct InFlightWrite {
    file: Arc<File>,
    offset: u64,
    len: usize,
    written: usize,
    buf: Option<Vec<u8>>,
    synced: bool,
    /// Fdatasync completions still expected (a short write cancels its linked fdatasync).
    syncs_pending: u32,
    /// Operations lent to the ring whose completion has not been seen.
    ops_outstanding: u32,
    /// A write or fdatasync of this batch failed (the shard is poisoned).
    failed: bool,
    /// When it was handed to the ring.
    submitted: Instant,
}

impl InFlightWrite {
    fn new(file: Arc<File>, offset: u64, len: usize) -> Self {
        Self {
            file,
            offset,
            len,
            written: 0,
            buf: None,
            synced: false,
            syncs_pending: 0,
            ops_outstanding: 0,
            failed: false,
            submitted: Instant::now(),
        }
    }

    fn done(&self, need_sync: bool) -> bool {
        self.written == self.len && self.buf.is_some() && (!need_sync || self.synced)
    }
}

/// The shard's writes in flight and the acknowledgement rule.
pub(super) struct Committer {
    fsync: FsyncMode,
    fsync_period: Duration,
    /// WAL batches in flight, oldest first: (id, write, last sequence number).
    wal_writes: VecDeque<(u64, InFlightWrite, SeqNo)>,
    next_wal_write_id: u64,
    flush_write: Option<(InFlightWrite, u64)>,
    periodic_sync: Option<SeqNo>,
    next_periodic_sync: Instant,
    /// Test-only failures of chosen completions ([`crate::fault`]); inert by default.
    faults: RingFaults,
    /// The write slowdown holding the next WAL batch while level 0 is deep.
    slowdown: super::slowdown::Slowdown,
}

impl Committer {
    /// A committer of shard `shard` acknowledging by `fsync`, with `fsync_period_ms` for
    /// periodic syncs.
    pub(super) fn new(shard: usize, fsync: FsyncMode, fsync_period_ms: u64) -> Self {
        let fsync_period = Duration::from_millis(fsync_period_ms.max(1));
        Self {
            fsync,
            fsync_period,
            wal_writes: VecDeque::new(),
            next_wal_write_id: 0,
            flush_write: None,
            periodic_sync: None,
            next_periodic_sync: Instant::now() + fsync_period,
            faults: RingFaults::for_shard(shard),
            slowdown: Default::default(),
        }
    }

    /// The acknowledgement point: durable in `--fsync always`, written otherwise.
    pub(super) fn ack_seq(&self, store: &ShardStore) -> SeqNo {
        match self.fsync {
            FsyncMode::Always => store.durable_seq(),
            FsyncMode::Periodic | FsyncMode::Never => store.written_seq(),
        }
    }

    fn need_sync(&self) -> bool {
        self.fsync == FsyncMode::Always
    }

    /// Whether a new WAL batch could be submitted now.
    pub(super) fn has_wal_room(&self) -> bool {
        self.wal_writes.len() < WAL_WRITES_IN_FLIGHT_MAX
    }

    /// No WAL write in flight.
    pub(super) fn wal_idle(&self) -> bool {
        self.wal_writes.is_empty()
    }

    /// A memtable flush is being written.
    pub(super) fn flush_in_flight(&self) -> bool {
        self.flush_write.is_some()
    }

    /// How long until the next periodic fdatasync is due, if one is waiting to be.
    pub(super) fn periodic_wait(&self, store: &ShardStore) -> Option<Duration> {
        (self.fsync == FsyncMode::Periodic && store.written_seq() > store.durable_seq()).then(
            || {
                self.next_periodic_sync
                    .saturating_duration_since(Instant::now())
            },
        )
    }

    /// Whether pending WAL records are held back by the write slowdown (the loop must not
    /// spin on them: it sleeps until [`Committer::slowdown_wait`]).
    pub(super) fn slowdown_holding(&self) -> bool {
        self.slowdown.holding()
    }

    /// How long until the batch held by the write slowdown is due, if one is held.
    pub(super) fn slowdown_wait(&self) -> Option<Duration> {
        self.slowdown.wait(Instant::now())
    }

    /// Write slowdowns since start, and the microseconds of those that ended.
    pub(super) fn write_slowdowns(&self) -> (u64, u64) {
        self.slowdown.counters()
    }

    /// Group commit: submits the WAL records gathered since the last batch as one write
    /// (and one linked fdatasync with `--fsync always`), if there is room and the write
    /// slowdown does not hold them back ([`super::slowdown`]; a stopping shard, `draining`,
    /// is not held: its last writes go out at once, so a shutdown waits for no delay).
    ///
    /// # Errors
    /// The reason to poison the shard.
    pub(super) fn group_commit(
        &mut self,
        ring: &mut Ring,
        store: &mut ShardStore,
        draining: bool,
    ) -> Result<(), String> {
        if !self.has_wal_room() {
            return Ok(());
        }
        let depth_tables = if draining {
            0
        } else {
            store.level0_slowdown_depth_tables()
        };
        if store.has_pending_wal() && self.slowdown.holds(depth_tables, Instant::now()) {
            return Ok(());
        }
        let batch = match store.take_wal_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("preparing WAL batch failed: {e}")),
        };
        self.slowdown
            .submitted(depth_tables, batch.buf.len(), Instant::now());
        let id = self.next_wal_write_id;
        self.next_wal_write_id += 1;
        let (write, submitted) = submit_write(
            ring,
            batch.file,
            batch.buf,
            batch.offset,
            (tag_of(TAG_WAL_WRITE, id), tag_of(TAG_WAL_SYNC, id)),
            self.need_sync(),
        );
        self.wal_writes.push_back((id, write, batch.last_seq));
        submitted.map_err(|e| format!("WAL write submission failed: {e}"))
    }

    /// Starts writing the next memtable flush, if one is ready and none is in flight.
    ///
    /// # Errors
    /// The reason to poison the shard.
    pub(super) fn start_flush(
        &mut self,
        ring: &mut Ring,
        store: &mut ShardStore,
    ) -> Result<(), String> {
        if self.flush_write.is_some() {
            return Ok(());
        }
        let job = match store.take_flush() {
            Ok(Some(job)) => job,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("preparing memtable flush failed: {e}")),
        };
        let (write, submitted) = submit_write(
            ring,
            job.file,
            job.buf,
            0,
            (TAG_FLUSH_WRITE, TAG_FLUSH_SYNC),
            true,
        );
        self.flush_write = Some((write, job.table_id));
        submitted.map_err(|e| format!("SSTable write submission failed: {e}"))
    }

    /// With `--fsync periodic`, submits the fdatasync of the current WAL segment when it is
    /// due (at once when `draining`).
    ///
    /// # Errors
    /// The reason to poison the shard.
    pub(super) fn periodic_fsync(
        &mut self,
        ring: &mut Ring,
        store: &ShardStore,
        draining: bool,
    ) -> Result<(), String> {
        if self.fsync != FsyncMode::Periodic || self.periodic_sync.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if now < self.next_periodic_sync && !draining {
            return Ok(());
        }
        self.next_periodic_sync = now + self.fsync_period;
        let written = store.written_seq();
        if written <= store.durable_seq() {
            return Ok(());
        }
        ring.fdatasync(store.current_wal_file(), TAG_PERIODIC_SYNC)
            .map_err(|e| format!("WAL fdatasync submission failed: {e}"))?;
        self.periodic_sync = Some(written);
        Ok(())
    }

    /// Takes one completion of a committer tag.
    ///
    /// # Errors
    /// The reason to poison the shard: a write or fdatasync failed.
    pub(super) fn completion(
        &mut self,
        mut completion: Completion,
        ring: &mut Ring,
        store: &mut ShardStore,
        metrics: &ShardMetrics,
    ) -> Result<(), String> {
        self.faults.inject(&mut completion);
        match completion.tag & 0xff {
            TAG_WAL_WRITE | TAG_WAL_SYNC => self.wal_completion(completion, ring),
            TAG_FLUSH_WRITE | TAG_FLUSH_SYNC => self.flush_completion(completion, ring, store),
            TAG_PERIODIC_SYNC => {
                let Some(seq) = self.periodic_sync.take() else {
                    return Ok(());
                };
                completion
                    .result
                    .map_err(|e| format!("WAL fdatasync failed: {e}"))?;
                ShardMetrics::add(&metrics.wal_fsyncs, 1);
                store.wal_synced(seq);
                Ok(())
            }
            tag => {
                debug_assert!(false, "not a committer tag: {tag}");
                Ok(())
            }
        }
    }

    fn wal_completion(&mut self, completion: Completion, ring: &mut Ring) -> Result<(), String> {
        let need_sync = self.need_sync();
        let id = completion.tag >> 8;
        // A late completion of a retired write (the cancelled fdatasync of a short write)
        // has nothing left to update.
        let Some((_, write, _)) = self.wal_writes.iter_mut().find(|(i, _, _)| *i == id) else {
            return Ok(());
        };
        let tags = (tag_of(TAG_WAL_WRITE, id), tag_of(TAG_WAL_SYNC, id));
        advance_write(write, completion, ring, tags.0, tags.1, need_sync)
            .map(|_| ())
            .map_err(|reason| {
                write.failed = true;
                format!("WAL {reason}")
            })
    }

    fn flush_completion(
        &mut self,
        completion: Completion,
        ring: &mut Ring,
        store: &mut ShardStore,
    ) -> Result<(), String> {
        let Some((write, _)) = self.flush_write.as_mut() else {
            debug_assert!(false, "flush completion without a flush in flight");
            return Ok(());
        };
        let done = advance_write(
            write,
            completion,
            ring,
            TAG_FLUSH_WRITE,
            TAG_FLUSH_SYNC,
            true,
        )
        .map_err(|reason| format!("SSTable {reason}"))?;
        if !done {
            return Ok(());
        }
        let (mut write, table_id) = self.flush_write.take().expect("in flight");
        let job = FlushJob {
            file: write.file.clone(),
            buf: write.buf.take().expect("done"),
            table_id,
        };
        // The compaction core installs it; the flush ends when the store sees the version.
        store
            .flush_written(job)
            .map_err(|e| format!("installing flushed SSTable failed: {e}"))
    }

    /// Reports finished WAL writes to the store strictly in the order they were taken, so
    /// the acknowledgement point never passes a batch that is not yet durable. Once the
    /// shard is `poisoned` nothing more is reported; writes are dropped once the ring
    /// returned all they borrowed.
    pub(super) fn retire_wal_writes(
        &mut self,
        store: &mut ShardStore,
        metrics: &ShardMetrics,
        poisoned: bool,
    ) {
        let need_sync = self.need_sync();
        while let Some((_, front, _)) = self.wal_writes.front() {
            if poisoned {
                if front.ops_outstanding > 0 {
                    break;
                }
                self.wal_writes.pop_front();
                continue;
            }
            if !front.done(need_sync) {
                break;
            }
            let (_, mut write, last_seq) = self.wal_writes.pop_front().expect("front exists");
            let batch = WalBatch {
                file: write.file.clone(),
                offset: write.offset,
                buf: write.buf.take().expect("done"),
                last_seq,
            };
            ShardMetrics::add(&metrics.wal_batches, 1);
            ShardMetrics::add(&metrics.wal_bytes, write.len as u64);
            store.wal_batch_written(batch);
            let mut latencies = metrics.latencies();
            latencies
                .wal_batch_bytes
                .saturating_record(write.len.max(1) as u64);
            if need_sync {
                ShardMetrics::add(&metrics.wal_fsyncs, 1);
                let us = write.submitted.elapsed().as_micros() as u64;
                latencies.wal_sync_us.saturating_record(us.max(1));
                drop(latencies);
                store.wal_synced(last_seq);
            }
        }
    }
}

/// Queues a write of `buf` at `offset` of `file` and, with `need_sync`, a linked
/// fdatasync after it; returns the tracking state (kept even if queueing failed, so the
/// caller can poison and still account for what was lent to the ring).
fn submit_write(
    ring: &mut Ring,
    file: Arc<File>,
    buf: Vec<u8>,
    offset: u64,
    (write_tag, sync_tag): (u64, u64),
    need_sync: bool,
) -> (InFlightWrite, io::Result<()>) {
    let mut write = InFlightWrite::new(file.clone(), offset, buf.len());
    let mut submitted = ring.write_at(file.clone(), buf, 0, offset, write_tag, need_sync);
    if submitted.is_ok() {
        write.ops_outstanding = 1;
    }
    if submitted.is_ok() && need_sync {
        submitted = ring.fdatasync(file, sync_tag);
        if submitted.is_ok() {
            write.syncs_pending = 1;
            write.ops_outstanding += 1;
        }
    }
    if submitted.is_err() {
        write.failed = true;
    }
    (write, submitted)
}

/// Advances a ring write with its linked fdatasync by one completion: resubmits the rest
/// of a short write (which cancels the linked fdatasync, so a new one is linked), and
/// reports `Ok(true)` once all bytes are written and, if `need_sync`, synced. A failed
/// write or fdatasync is returned as `Err` and never retried.
fn advance_write(
    write: &mut InFlightWrite,
    completion: Completion,
    ring: &mut Ring,
    write_tag: u64,
    sync_tag: u64,
    need_sync: bool,
) -> Result<bool, String> {
    write.ops_outstanding = write.ops_outstanding.saturating_sub(1);
    match completion.kind {
        OpKind::Write => {
            let n = completion
                .result
                .map_err(|e| format!("write failed: {e}"))?;
            if n == 0 {
                return Err("write made no progress".into());
            }
            write.written += n;
            if write.written < write.len {
                let start = completion.buf_start + n;
                let offset = write.offset + write.written as u64;
                ring.write_at(
                    completion.file.clone(),
                    completion.buf,
                    start,
                    offset,
                    write_tag,
                    need_sync,
                )
                .map_err(|e| format!("write resubmission failed: {e}"))?;
                write.ops_outstanding += 1;
                if need_sync {
                    ring.fdatasync(completion.file, sync_tag)
                        .map_err(|e| format!("fdatasync submission failed: {e}"))?;
                    write.syncs_pending += 1;
                    write.ops_outstanding += 1;
                }
                return Ok(false);
            }
            write.buf = Some(completion.buf);
        }
        OpKind::Fdatasync => {
            write.syncs_pending = write.syncs_pending.saturating_sub(1);
            match completion.result {
                Ok(_) => write.synced = true,
                // The linked fdatasync of a short write: a new one was submitted.
                Err(e) if e.raw_os_error() == Some(libc::ECANCELED) && write.syncs_pending > 0 => {}
                Err(e) => return Err(format!("fdatasync failed: {e}")),
            }
        }
        OpKind::Read => unreachable!("a read completion routed as a write's"),
    }
    Ok(write.done(need_sync))
}

impl super::Shard {
    /// Deletes the WAL segments the manifest covers, once every shard has opened (see
    /// [`crate::store::ShardStore::open_shard`]).
    pub fn delete_covered_wal_segments(&mut self) {
        self.store.delete_covered_segments();
    }
}
