//! A minimal edge-triggered `epoll(7)` wrapper: register descriptors with a `u64` token and
//! wait for readiness events.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::sys::cvt;

/// What a registration waits for. All registrations are edge-triggered (`EPOLLET`).
#[derive(Clone, Copy, Debug)]
pub enum Interest {
    /// `EPOLLIN`.
    Read,
    /// `EPOLLIN | EPOLLOUT | EPOLLRDHUP`: a client socket.
    ReadWrite,
}

/// One readiness event.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// The token given at registration.
    pub token: u64,
    /// Readable (or peer closed / error: a read will tell).
    pub readable: bool,
    /// Writable.
    pub writable: bool,
    /// The peer closed its side or the socket failed (`EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`):
    /// read until end of stream, even after a short read.
    pub hangup: bool,
}

/// An epoll instance and its event buffer.
pub struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// Creates an epoll instance that returns at most `events_max` events per wait.
    ///
    /// # Errors
    /// The OS error of `epoll_create1`.
    pub fn new(events_max: usize) -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers.
        let raw = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; events_max.max(1)];
        Ok(Self { fd, events })
    }

    /// Registers `fd` with `token`, edge-triggered.
    ///
    /// # Errors
    /// The OS error of `epoll_ctl` (e.g. `EEXIST`).
    pub fn add(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        let flags = match interest {
            Interest::Read => libc::EPOLLIN,
            Interest::ReadWrite => libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP,
        };
        let mut event = libc::epoll_event {
            events: (flags | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: `event` is a live epoll_event; the kernel copies it.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) })?;
        Ok(())
    }

    /// Removes `fd`. Closing a descriptor also removes it; this is for descriptors that
    /// stay open.
    ///
    /// # Errors
    /// The OS error of `epoll_ctl`.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: EPOLL_CTL_DEL ignores the event pointer; null is allowed since Linux 2.6.9.
        cvt(unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    /// Waits up to `timeout_ms` (-1: forever, 0: poll) and appends the events to `out`.
    /// An interrupted wait (`EINTR`) returns no events.
    ///
    /// # Errors
    /// Any other OS error of `epoll_wait`.
    pub fn wait(&mut self, out: &mut Vec<Event>, timeout_ms: i32) -> io::Result<()> {
        let max = libc::c_int::try_from(self.events.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: the buffer holds `max` epoll_events and lives across the call.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                self.events.as_mut_ptr(),
                max,
                timeout_ms,
            )
        };
        let n = match cvt(n) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        for event in &self.events[..n] {
            let flags = event.events as libc::c_int;
            out.push(Event {
                token: event.u64,
                readable: flags
                    & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR)
                    != 0,
                writable: flags & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0,
                hangup: flags & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0,
            });
        }
        Ok(())
    }
}
