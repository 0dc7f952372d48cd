//! Gathering WAL records into batches and moving from segment to segment.
//!
//! The writer only *prepares* I/O: [`WalWriter::take_batch`] hands out a buffer and the
//! offset where it belongs, and whoever drives the engine (the shard's ring, or the store's
//! blocking `write_batch_sync`) writes it. Segment creation and the fdatasync of a segment being left are done here,
//! synchronously, because they are rare and must be complete before any record lands in
//! the next segment.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch;
use super::record::{encode_full, RecordKind};
use super::SegmentNo;
use super::WalBatch;
use crate::base::fs::sync_dir;
use crate::base::{io_error, iolog, SeqNo, StoreError};
use crate::runtime::sys::Allocation;

/// An open WAL segment file.
#[derive(Debug)]
pub struct Segment {
    /// The segment's number.
    pub number: SegmentNo,
    /// The file, open for reading and writing.
    pub file: Arc<File>,
    /// The file's path.
    pub path: PathBuf,
    /// The file's (preallocated) length in bytes; records must end at or before it.
    pub capacity_bytes: u64,
}

impl Segment {
    /// Creates segment `number` in `dir` with `capacity_bytes` allocated, written with
    /// zero bytes if `zero_fill` (see [`PreparedSegment`]), and fsyncs the file and the
    /// directory so the segment survives a crash.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the file; the segment must not already exist.
    pub fn create(
        dir: &Path,
        number: SegmentNo,
        capacity_bytes: u64,
        zero_fill: bool,
    ) -> Result<Self, StoreError> {
        PreparedSegment::prepare(dir, number, capacity_bytes, zero_fill)?.install(dir)
    }
}

/// A segment made ready under a temporary name (`wal-N.log.<pid>-<n>.prep`), to be renamed into
/// place when the WAL reaches it.
///
/// Its space is allocated (`fallocate`, so a full disk shows here and not mid-append) and
/// then, with `zero_fill` ([`crate::config::StoreOptions::wal_zero_fill`]), overwritten
/// with zeros, and synced; on a file system without `fallocate` it is written out with
/// zeros once, which does both. Written zeros matter on ext4 and XFS when every small
/// write is fdatasynced: space that is only allocated is "unwritten", and the first write
/// into it must convert the extent, a metadata change that every later fdatasync has to
/// journal. Measured here (ext4, 4 KiB write + fdatasync): about 250 µs into allocated
/// space, 175 µs into written zeros. Unwritten space reads as zeros either way, which is
/// what recovery takes for the end of the written records.
#[derive(Debug)]
pub struct PreparedSegment {
    number: SegmentNo,
    file: File,
    prep_path: PathBuf,
    capacity_bytes: u64,
}

/// Suffix of a segment still being prepared; such files are deleted at open.
pub const PREP_SUFFIX: &str = ".prep";

impl PreparedSegment {
    /// Creates, allocates, zero-fills and syncs a temporary segment file in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the file (e.g. `ENOSPC`).
    pub fn prepare(
        dir: &Path,
        number: SegmentNo,
        capacity_bytes: u64,
        zero_fill: bool,
    ) -> Result<Self, StoreError> {
        // A name of its own, so that two preparations never share a path, even across a
        // store being reopened while the old one's preparation still runs.
        static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nonce = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prep_path = dir.join(format!(
            "{}.{}-{nonce}{PREP_SUFFIX}",
            number.file_name(),
            std::process::id()
        ));
        let shown = prep_path.display();
        let file = iolog::create(
            &prep_path,
            OpenOptions::new().read(true).write(true).create_new(true),
        )
        .map_err(io_error(format!("creating WAL segment {shown}")))?;
        let allocation = iolog::allocate(&file, capacity_bytes)
            .map_err(io_error(format!("preallocating WAL segment {shown}")))?;
        // Without fallocate the zeros were written already; once is enough.
        let zeros_written = allocation == Allocation::ZeroFilled || !zero_fill;
        let zeros = vec![0u8; if zeros_written { 0 } else { 1 << 20 }];
        let mut offset = if zeros_written { capacity_bytes } else { 0 };
        while offset < capacity_bytes {
            let n = zeros.len().min((capacity_bytes - offset) as usize);
            iolog::write_at(&file, &zeros[..n], offset)
                .map_err(io_error(format!("zero-filling WAL segment {shown}")))?;
            offset += n as u64;
        }
        iolog::sync_all(&file).map_err(io_error(format!("syncing new WAL segment {shown}")))?;
        Ok(Self {
            number,
            file,
            prep_path,
            capacity_bytes,
        })
    }

    /// Renames the segment to its final name and fsyncs the directory.
    ///
    /// # Errors
    /// [`StoreError::Io`] from the rename or the directory fsync.
    pub fn install(self, dir: &Path) -> Result<Segment, StoreError> {
        let path = dir.join(self.number.file_name());
        iolog::rename(&self.prep_path, &path).map_err(io_error(format!(
            "installing WAL segment {}",
            path.display()
        )))?;
        sync_dir(dir)?;
        Ok(Segment {
            number: self.number,
            file: Arc::new(self.file),
            path,
            capacity_bytes: self.capacity_bytes,
        })
    }

    /// Deletes the half-made segment.
    fn discard(self) {
        let _ = iolog::remove(&self.prep_path);
    }
}

/// Deletes segments left half-prepared by a crash.
pub fn remove_prepared(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(PREP_SUFFIX) {
            let _ = iolog::remove(&entry.path());
        }
    }
}

/// The next segment, being prepared on a background thread so that zero-filling it does
/// not stall the shard when the WAL moves on.
#[derive(Debug)]
struct NextSegment {
    number: SegmentNo,
    capacity_bytes: u64,
    thread: std::thread::JoinHandle<Result<PreparedSegment, StoreError>>,
}

impl NextSegment {
    fn start(dir: &Path, number: SegmentNo, capacity_bytes: u64, zero_fill: bool) -> Option<Self> {
        if iolog::recording() {
            // A crash simulation needs the order of I/O to follow from its own calls; the
            // segment is then prepared in the foreground when the WAL reaches it.
            return None;
        }
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("tskv-wal-prep".into())
            .spawn(move || PreparedSegment::prepare(&dir, number, capacity_bytes, zero_fill))
            .ok()?;
        Some(Self {
            number,
            capacity_bytes,
            thread,
        })
    }
}

/// A batch taken from the writer, with what changed on the way.
#[derive(Debug)]
pub struct TakenBatch {
    /// The records to write.
    pub batch: WalBatch,
    /// The segment that was left (after an fdatasync) to make room, if any: every record
    /// written to it is now durable.
    pub left: Option<SegmentNo>,
}

/// Appends records to a pending batch and places batches in segments.
#[derive(Debug)]
pub struct WalWriter {
    dir: PathBuf,
    segment_bytes: u64,
    /// Whether new segments are written with zeros ([`PreparedSegment`]).
    zero_fill: bool,
    current: Segment,
    /// Where the next batch goes in `current`: the end of everything already handed out.
    append_offset: u64,
    /// The batch being gathered: header space ([`batch::begin`]) and records.
    pending: Vec<u8>,
    pending_first_seq: SeqNo,
    pending_last_seq: SeqNo,
    pending_records: u32,
    rotate_before_next: bool,
    spare: Vec<u8>,
    next: Option<NextSegment>,
}

impl WalWriter {
    /// A writer appending to `current` at `append_offset` (the end of its valid data).
    /// New segments are preallocated to `segment_bytes`, and written with zeros if
    /// `zero_fill`. Deletes half-prepared segments and starts preparing the one after
    /// `current`.
    pub fn new(
        dir: &Path,
        segment_bytes: u64,
        zero_fill: bool,
        current: Segment,
        append_offset: u64,
    ) -> Self {
        remove_prepared(dir);
        let next = NextSegment::start(dir, current.number.next(), segment_bytes, zero_fill);
        Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            zero_fill,
            current,
            append_offset,
            pending: Vec::new(),
            pending_first_seq: SeqNo(0),
            pending_last_seq: SeqNo(0),
            pending_records: 0,
            rotate_before_next: false,
            spare: Vec::new(),
            next,
        }
    }

    /// Appends one record to the pending batch (`expire_at_ms` only with
    /// [`RecordKind::PutExpiring`], see [`encode_full`]).
    pub fn append(
        &mut self,
        kind: RecordKind,
        seq: SeqNo,
        key: &[u8],
        value: &[u8],
        expire_at_ms: Option<u64>,
    ) {
        debug_assert!(seq > self.pending_last_seq);
        if self.pending.is_empty() {
            batch::begin(&mut self.pending);
            self.pending_first_seq = seq;
            self.pending_records = 0;
        }
        encode_full(&mut self.pending, kind, seq, key, value, expire_at_ms);
        self.pending_last_seq = seq;
        self.pending_records += 1;
    }

    /// Whether the next [`WalWriter::take_batch`] would leave the current segment (which
    /// fdatasyncs it, so every write into it must have completed first).
    pub fn next_take_rotates(&self) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        let fits = self.append_offset + self.pending.len() as u64 <= self.current.capacity_bytes;
        self.rotate_before_next || (!fits && self.append_offset != 0)
    }

    /// Whether records wait to be taken.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The segment batches currently go to.
    pub fn current(&self) -> &Segment {
        &self.current
    }

    /// Makes the next batch start a new segment, and returns that segment's number. The
    /// records already handed out stay in the current segment.
    pub fn request_rotation(&mut self) -> SegmentNo {
        self.rotate_before_next = true;
        self.current.number.next()
    }

    /// Takes the pending records as one framed batch ([`batch`]), or `None` if there are
    /// none. `durable_seq` is the highest sequence number a completed fdatasync covers
    /// now; it goes in the batch header, where recovery uses it to tell corruption from a
    /// torn write. Leaves the current segment first (fdatasync, then create the next one)
    /// if rotation was requested or the batch does not fit. The caller must have finished
    /// writing the previous batch, so that the fdatasync covers it.
    ///
    /// # Errors
    /// [`StoreError::Io`] from the fdatasync or from creating the next segment; the
    /// records stay pending.
    pub fn take_batch(&mut self, durable_seq: SeqNo) -> Result<Option<TakenBatch>, StoreError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let len_bytes = self.pending.len() as u64;
        let fits = self.append_offset + len_bytes <= self.current.capacity_bytes;
        let mut left = None;
        if self.rotate_before_next || !fits {
            if !self.rotate_before_next && self.append_offset == 0 {
                // An untouched segment is grown rather than left empty behind.
                self.grow_current(len_bytes)?;
            } else {
                left = Some(self.rotate(len_bytes)?);
            }
        }
        // Leaving a segment fdatasynced every record handed out before this batch.
        let durable_seq = match left {
            Some(_) => durable_seq.max(SeqNo(self.pending_first_seq.0.saturating_sub(1))),
            None => durable_seq,
        };
        batch::seal(
            &mut self.pending,
            self.pending_records,
            self.pending_first_seq,
            durable_seq,
        );
        let buf = std::mem::replace(&mut self.pending, std::mem::take(&mut self.spare));
        let batch = WalBatch {
            file: Arc::clone(&self.current.file),
            offset: self.append_offset,
            buf,
            last_seq: self.pending_last_seq,
        };
        self.append_offset += len_bytes;
        Ok(Some(TakenBatch { batch, left }))
    }

    /// Keeps a written batch's buffer for the next batch.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        if buf.capacity() > self.spare.capacity() {
            self.spare = buf;
        }
    }

    fn grow_current(&mut self, capacity_bytes: u64) -> Result<(), StoreError> {
        let shown = self.current.path.display();
        iolog::allocate(&self.current.file, capacity_bytes)
            .map_err(io_error(format!("growing WAL segment {shown}")))?;
        iolog::sync_all(&self.current.file)
            .map_err(io_error(format!("syncing grown WAL segment {shown}")))?;
        self.current.capacity_bytes = capacity_bytes;
        Ok(())
    }

    fn rotate(&mut self, min_capacity_bytes: u64) -> Result<SegmentNo, StoreError> {
        iolog::sync_data(&self.current.file).map_err(io_error(format!(
            "syncing WAL segment {} before leaving it",
            self.current.path.display()
        )))?;
        let capacity_bytes = self.segment_bytes.max(min_capacity_bytes);
        let number = self.current.number.next();
        let prepared = match self.next.take() {
            Some(next) => match next.thread.join() {
                Ok(Ok(prepared))
                    if next.number == number && next.capacity_bytes >= capacity_bytes =>
                {
                    Some(prepared)
                }
                Ok(Ok(unsuitable)) => {
                    unsuitable.discard();
                    None
                }
                // A background failure (say ENOSPC) is retried in the foreground below,
                // where its error reaches the caller.
                Ok(Err(_)) | Err(_) => None,
            },
            None => None,
        };
        let prepared = match prepared {
            Some(prepared) => prepared,
            None => PreparedSegment::prepare(&self.dir, number, capacity_bytes, self.zero_fill)?,
        };
        let next = prepared.install(&self.dir)?;
        self.next =
            NextSegment::start(&self.dir, number.next(), self.segment_bytes, self.zero_fill);
        tracing::debug!(segment = %next.path.display(), capacity_bytes, "new WAL segment");
        let old = std::mem::replace(&mut self.current, next);
        self.append_offset = 0;
        self.rotate_before_next = false;
        Ok(old.number)
    }
}

impl Drop for WalWriter {
    /// Waits for the segment being prepared and removes it, so nothing writes into the
    /// directory once the store is gone (a reopen in the same process, a tool reading it).
    fn drop(&mut self) {
        if let Some(next) = self.next.take() {
            if let Ok(Ok(prepared)) = next.thread.join() {
                prepared.discard();
            }
        }
    }
}
