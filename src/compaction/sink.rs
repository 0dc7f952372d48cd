//! Where a finished SSTable's bytes go: written at offset 0 of its file and fdatasynced,
//! through the compaction core's own io_uring ([`RingSink`]) or with blocking calls
//! ([`SyncSink`]) when the engine is driven synchronously.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::base::{io_error, iolog, StoreError};
use crate::runtime::uring::{Completion, OpKind, Ring};

/// Writes a whole table and makes it durable before returning.
pub trait TableSink {
    /// Writes `buf` at offset 0 of `file` (named `path` in errors) and fdatasyncs it.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the step and file; a failed fdatasync is never retried.
    fn write_table(&mut self, file: Arc<File>, path: &Path, buf: Vec<u8>)
        -> Result<(), StoreError>;
}

/// Blocking `pwrite` + `fdatasync`.
#[derive(Debug, Default)]
pub struct SyncSink;

impl TableSink for SyncSink {
    fn write_table(
        &mut self,
        file: Arc<File>,
        path: &Path,
        buf: Vec<u8>,
    ) -> Result<(), StoreError> {
        let shown = path.display();
        iolog::write_at(&file, &buf, 0).map_err(io_error(format!("writing SSTable {shown}")))?;
        iolog::sync_data(&file).map_err(io_error(format!("syncing SSTable {shown}")))
    }
}

const TAG_WRITE: u64 = 1;
const TAG_SYNC: u64 = 2;

/// A write and its linked fdatasync through an io_uring owned by the compaction core; the
/// core thread waits for both completions (it has nothing else to do meanwhile).
pub struct RingSink {
    ring: Ring,
    completions: Vec<Completion>,
}

impl std::fmt::Debug for RingSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSink").finish_non_exhaustive()
    }
}

impl RingSink {
    /// A sink on a new ring of `entries` submission entries.
    ///
    /// # Errors
    /// If io_uring cannot be set up (old kernel, seccomp).
    pub fn new(entries: u32) -> std::io::Result<Self> {
        Ok(Self {
            ring: Ring::new(entries)?,
            completions: Vec::new(),
        })
    }
}

impl TableSink for RingSink {
    fn write_table(
        &mut self,
        file: Arc<File>,
        path: &Path,
        buf: Vec<u8>,
    ) -> Result<(), StoreError> {
        let shown = path.display().to_string();
        let len = buf.len();
        let ring_error = |step: &str| io_error(format!("{step} SSTable {shown} through io_uring"));
        let mut written = 0;
        let mut synced = false;
        let mut failure: Option<StoreError> = None;
        self.ring
            .write_at(Arc::clone(&file), buf, 0, 0, TAG_WRITE, true)
            .map_err(ring_error("queueing the write of"))?;
        if let Err(e) = self.ring.fdatasync(Arc::clone(&file), TAG_SYNC) {
            failure = Some(ring_error("queueing the fdatasync of")(e));
        }
        // Wait until the ring has returned everything it borrowed, even after a failure.
        while self.ring.in_flight() > 0 {
            if let Err(e) = self.ring.wait_one() {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ring_error("waiting for")(e));
            }
            self.ring.reap(&mut self.completions);
            for completion in self.completions.drain(..) {
                match (completion.kind, completion.result) {
                    (OpKind::Write, Ok(n)) if failure.is_none() => {
                        written += n;
                        if n == 0 {
                            failure = Some(ring_error("writing")(std::io::Error::new(
                                std::io::ErrorKind::WriteZero,
                                "write made no progress",
                            )));
                        } else if written < len {
                            // A short write cancels its linked fdatasync: resubmit the rest
                            // with a new one.
                            let start = completion.buf_start + n;
                            let resubmitted = self
                                .ring
                                .write_at(
                                    completion.file,
                                    completion.buf,
                                    start,
                                    written as u64,
                                    TAG_WRITE,
                                    true,
                                )
                                .and_then(|()| self.ring.fdatasync(Arc::clone(&file), TAG_SYNC));
                            if let Err(e) = resubmitted {
                                failure = Some(ring_error("resubmitting the write of")(e));
                            }
                        }
                    }
                    (OpKind::Write, Ok(_)) => {}
                    (OpKind::Write, Err(e)) => {
                        failure.get_or_insert(ring_error("writing")(e));
                    }
                    (OpKind::Fdatasync, Ok(_)) => synced = written == len,
                    (OpKind::Fdatasync, Err(e)) if e.raw_os_error() == Some(libc::ECANCELED) => {}
                    (OpKind::Fdatasync, Err(e)) => {
                        failure.get_or_insert(ring_error("syncing")(e));
                    }
                    (OpKind::Read, _) => unreachable!("the sink submits no reads"),
                }
            }
            if let Err(e) = self.ring.submit() {
                failure.get_or_insert(ring_error("submitting")(e));
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if !synced {
            return Err(ring_error("syncing")(std::io::Error::other(
                "the fdatasync did not complete after the write",
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(sink: &mut dyn TableSink) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sst");
        let file = Arc::new(File::create(&path).unwrap());
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        sink.write_table(file, &path, bytes.clone()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn sync_sink_writes_the_whole_table() {
        round_trip(&mut SyncSink);
    }

    #[test]
    fn ring_sink_writes_the_whole_table() {
        match RingSink::new(8) {
            Ok(mut sink) => round_trip(&mut sink),
            Err(e) => panic!("io_uring is required on this machine and failed to start: {e}"),
        }
    }

    #[test]
    fn ring_sink_reports_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sst");
        std::fs::write(&path, b"").unwrap();
        // Opened read-only: the write fails with EBADF.
        let file = Arc::new(File::open(&path).unwrap());
        let mut sink = RingSink::new(8).expect("io_uring");
        let err = sink.write_table(file, &path, vec![1; 4096]).unwrap_err();
        assert!(err.to_string().contains("writing SSTable"), "{err}");
    }
}
