//! The shard's io_uring, made safe by ownership: a buffer handed to the ring is moved into
//! the ring's bookkeeping and comes back only in the [`Completion`] of its operation, so it
//! can neither be freed nor touched while the kernel may still read it. The file is held
//! by an `Arc` for the same reason (its descriptor must stay open).
//!
//! Completions are signalled on an eventfd registered with the ring
//! (`IORING_REGISTER_EVENTFD`); the shard's epoll loop watches that eventfd, never the ring
//! descriptor itself.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use io_uring::{opcode, squeue, types, IoUring};

use super::sys::EventFd;

/// What an operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// `IORING_OP_WRITE` of a buffer at an offset.
    Write,
    /// `IORING_OP_FSYNC` with `IORING_FSYNC_DATASYNC`.
    Fdatasync,
    /// `IORING_OP_READ` into a buffer from an offset.
    Read,
}

/// A reaped operation, returning everything that was lent to the ring.
#[derive(Debug)]
pub struct Completion {
    /// The caller's tag given at submission.
    pub tag: u64,
    /// The operation.
    pub kind: OpKind,
    /// Bytes written or read (short writes and reads are possible) or 0, or the OS error
    /// (`ECANCELED` when a linked predecessor failed or was short).
    pub result: io::Result<usize>,
    /// The buffer of a write or read (empty for fdatasync); after a read, its first
    /// `result` bytes are what was read.
    pub buf: Vec<u8>,
    /// Where in `buf` the write started.
    pub buf_start: usize,
    /// The file operated on.
    pub file: Arc<File>,
}

struct InFlight {
    tag: u64,
    kind: OpKind,
    buf: Vec<u8>,
    buf_start: usize,
    file: Arc<File>,
}

/// A shard's io_uring with its completion eventfd.
pub struct Ring {
    ring: IoUring,
    eventfd: EventFd,
    ops: Vec<Option<InFlight>>,
    free: Vec<usize>,
    unsubmitted: usize,
}

impl Ring {
    /// Creates a ring with `entries` submission slots and registers a fresh eventfd for
    /// completions.
    ///
    /// # Errors
    /// The OS error of `io_uring_setup` (e.g. `ENOSYS`/`EPERM` where io_uring is disabled)
    /// or of the eventfd registration.
    pub fn new(entries: u32) -> io::Result<Self> {
        let ring = IoUring::new(entries)?;
        let eventfd = EventFd::new()?;
        ring.submitter().register_eventfd(eventfd.raw())?;
        Ok(Self {
            ring,
            eventfd,
            ops: Vec::new(),
            free: Vec::new(),
            unsubmitted: 0,
        })
    }

    /// The completion eventfd, to register with epoll.
    pub fn eventfd(&self) -> &EventFd {
        &self.eventfd
    }

    /// Operations submitted or queued whose completion has not been reaped.
    pub fn in_flight(&self) -> usize {
        self.ops.len() - self.free.len()
    }

    /// Queues a write of `buf[buf_start..]` at `offset` of `file`. With `link`, the next
    /// queued operation starts only after this one completed in full (`IOSQE_IO_LINK`).
    ///
    /// # Errors
    /// `WouldBlock`-like errors if the submission queue stays full after submitting.
    pub fn write_at(
        &mut self,
        file: Arc<File>,
        buf: Vec<u8>,
        buf_start: usize,
        offset: u64,
        tag: u64,
        link: bool,
    ) -> io::Result<()> {
        let slice = &buf[buf_start..];
        let len = u32::try_from(slice.len()).unwrap_or(u32::MAX);
        let entry = opcode::Write::new(types::Fd(file.as_raw_fd()), slice.as_ptr(), len)
            .offset(offset)
            .build();
        let entry = if link {
            entry.flags(squeue::Flags::IO_LINK)
        } else {
            entry
        };
        self.push(
            entry,
            InFlight {
                tag,
                kind: OpKind::Write,
                buf,
                buf_start,
                file,
            },
        )
    }

    /// Queues a read of `buf.len()` bytes of `file` at `offset` into `buf`. The buffer
    /// comes back in the [`Completion`].
    ///
    /// # Errors
    /// As [`Ring::write_at`].
    pub fn read_at(
        &mut self,
        file: Arc<File>,
        mut buf: Vec<u8>,
        offset: u64,
        tag: u64,
    ) -> io::Result<()> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let entry = opcode::Read::new(types::Fd(file.as_raw_fd()), buf.as_mut_ptr(), len)
            .offset(offset)
            .build();
        self.push(
            entry,
            InFlight {
                tag,
                kind: OpKind::Read,
                buf,
                buf_start: 0,
                file,
            },
        )
    }

    /// Queues an fdatasync of `file`.
    ///
    /// # Errors
    /// As [`Ring::write_at`].
    pub fn fdatasync(&mut self, file: Arc<File>, tag: u64) -> io::Result<()> {
        let entry = opcode::Fsync::new(types::Fd(file.as_raw_fd()))
            .flags(types::FsyncFlags::DATASYNC)
            .build();
        let op = InFlight {
            tag,
            kind: OpKind::Fdatasync,
            buf: Vec::new(),
            buf_start: 0,
            file,
        };
        self.push(entry, op)
    }

    fn push(&mut self, entry: squeue::Entry, op: InFlight) -> io::Result<()> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.ops.push(None);
                self.ops.len() - 1
            }
        };
        let entry = entry.user_data(index as u64);
        // Take ownership first: from the push on, the kernel may read `op.buf`.
        self.ops[index] = Some(op);
        // SAFETY: the entry points into `self.ops[index]`'s buffer and file, which stay
        // owned here (not moved: a Vec's heap block does not move with the Vec) and are not
        // touched (a read's buffer is written by the kernel only) until the completion
        // carrying `index` is reaped in `reap`, and `Drop` waits for all.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        if pushed.is_err() {
            self.ring.submit()?;
            self.unsubmitted = 0;
            // SAFETY: as above.
            if unsafe { self.ring.submission().push(&entry) }.is_err() {
                self.ops[index] = None;
                self.free.push(index);
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "io_uring submission queue full",
                ));
            }
        }
        self.unsubmitted += 1;
        Ok(())
    }

    /// Submits everything queued, without waiting.
    ///
    /// # Errors
    /// The OS error of `io_uring_enter` (`EBUSY`/`EAGAIN` are left for the next call).
    pub fn submit(&mut self) -> io::Result<()> {
        if self.unsubmitted == 0 {
            return Ok(());
        }
        match self.ring.submit() {
            Ok(_) => {
                self.unsubmitted = 0;
                Ok(())
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EAGAIN)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves every available completion into `out`, returning the lent buffers and files.
    /// Reading the completion queue needs no system call; the caller drains the eventfd
    /// when epoll reports it, so each new completion raises a new edge.
    pub fn reap(&mut self, out: &mut Vec<Completion>) {
        for cqe in self.ring.completion() {
            let index = cqe.user_data() as usize;
            let Some(op) = self.ops.get_mut(index).and_then(Option::take) else {
                debug_assert!(false, "completion for unknown io_uring slot {index}");
                continue;
            };
            self.free.push(index);
            let result = if cqe.result() < 0 {
                Err(io::Error::from_raw_os_error(-cqe.result()))
            } else {
                Ok(cqe.result() as usize)
            };
            out.push(Completion {
                tag: op.tag,
                kind: op.kind,
                result,
                buf: op.buf,
                buf_start: op.buf_start,
                file: op.file,
            });
        }
    }

    /// Blocks until at least one completion is available (used at shutdown).
    ///
    /// # Errors
    /// The OS error of `io_uring_enter`.
    pub fn wait_one(&mut self) -> io::Result<()> {
        self.ring.submit_and_wait(1)?;
        self.unsubmitted = 0;
        Ok(())
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The kernel may still read lent buffers: wait for every operation before they are
        // freed with `self.ops`.
        let mut sink = Vec::new();
        while self.in_flight() > 0 {
            if self.ring.submit_and_wait(1).is_err() {
                // Cannot wait: leak the buffers rather than free memory the kernel may use.
                std::mem::forget(std::mem::take(&mut self.ops));
                return;
            }
            self.reap(&mut sink);
            sink.clear();
        }
    }
}
