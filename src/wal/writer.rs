//! Gathering WAL records into batches and moving from segment to segment.
//!
//! The writer only *prepares* I/O: [`WalWriter::take_batch`] hands out a buffer and the
//! offset where it belongs, and the shard's ring (or [`crate::store::ShardStore::write_batch_sync`])
//! writes it. Segment creation and the fdatasync of a segment being left are done here,
//! synchronously, because they are rare and must be complete before any record lands in
//! the next segment.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{encode, RecordKind};
use super::SegmentNo;
use crate::runtime::sys::fallocate;
use crate::store::{io_error, sync_dir, SeqNo, StoreError, WalBatch};

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
    /// Creates segment `number` in `dir`, preallocates `capacity_bytes` of zero bytes, and
    /// fsyncs the file and the directory so the segment survives a crash.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the file; the segment must not already exist.
    pub fn create(dir: &Path, number: SegmentNo, capacity_bytes: u64) -> Result<Self, StoreError> {
        let path = dir.join(number.file_name());
        let shown = path.display();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error(format!("creating WAL segment {shown}")))?;
        fallocate(&file, capacity_bytes)
            .map_err(io_error(format!("preallocating WAL segment {shown}")))?;
        file.sync_all()
            .map_err(io_error(format!("syncing new WAL segment {shown}")))?;
        sync_dir(dir)?;
        Ok(Self {
            number,
            file: Arc::new(file),
            path,
            capacity_bytes,
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
    current: Segment,
    /// Where the next batch goes in `current`: the end of everything already handed out.
    append_offset: u64,
    pending: Vec<u8>,
    pending_last_seq: SeqNo,
    rotate_before_next: bool,
    spare: Vec<u8>,
}

impl WalWriter {
    /// A writer appending to `current` at `append_offset` (the end of its valid data).
    /// New segments are preallocated to `segment_bytes`.
    pub fn new(dir: &Path, segment_bytes: u64, current: Segment, append_offset: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            current,
            append_offset,
            pending: Vec::new(),
            pending_last_seq: SeqNo(0),
            rotate_before_next: false,
            spare: Vec::new(),
        }
    }

    /// Appends one record to the pending batch.
    pub fn append(&mut self, kind: RecordKind, seq: SeqNo, key: &[u8], value: &[u8]) {
        debug_assert!(seq > self.pending_last_seq);
        encode(&mut self.pending, kind, seq, key, value);
        self.pending_last_seq = seq;
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

    /// Takes the pending records as one batch, or `None` if there are none. Leaves the
    /// current segment first (fdatasync, then create the next one) if rotation was
    /// requested or the batch does not fit. The caller must have finished writing the
    /// previous batch, so that the fdatasync covers it.
    ///
    /// # Errors
    /// [`StoreError::Io`] from the fdatasync or from creating the next segment; the
    /// records stay pending.
    pub fn take_batch(&mut self) -> Result<Option<TakenBatch>, StoreError> {
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
        fallocate(&self.current.file, capacity_bytes)
            .map_err(io_error(format!("growing WAL segment {shown}")))?;
        self.current
            .file
            .sync_all()
            .map_err(io_error(format!("syncing grown WAL segment {shown}")))?;
        self.current.capacity_bytes = capacity_bytes;
        Ok(())
    }

    fn rotate(&mut self, min_capacity_bytes: u64) -> Result<SegmentNo, StoreError> {
        self.current.file.sync_data().map_err(io_error(format!(
            "syncing WAL segment {} before leaving it",
            self.current.path.display()
        )))?;
        let capacity_bytes = self.segment_bytes.max(min_capacity_bytes);
        let next = Segment::create(&self.dir, self.current.number.next(), capacity_bytes)?;
        tracing::debug!(segment = %next.path.display(), capacity_bytes, "new WAL segment");
        let old = std::mem::replace(&mut self.current, next);
        self.append_offset = 0;
        self.rotate_before_next = false;
        Ok(old.number)
    }
}
