//! One non-blocking connection: its socket, its write and read buffers, and its pipeline
//! window (the requests awaiting their replies, oldest first).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::error::{io_error, EngineError};
use super::pool::ConnectionPlan;
use super::schedule::Schedule;
use crate::limits;
use crate::sys::{Epoll, Interest};
use crate::workload::Request;

/// A request awaiting its reply.
#[derive(Debug, Clone, Copy)]
pub(super) struct InFlight {
    /// What was sent.
    pub(super) request: Request,
    /// When it was meant to be sent (closed loop: when it was), ns since the phase's start.
    pub(super) intended_ns: u64,
    /// When it was sent, ns since the phase's start.
    pub(super) sent_ns: u64,
    /// Issued after the warm-up: its reply counts.
    pub(super) measured: bool,
    /// The GET of a read-modify-write: its reply triggers the SET, which keeps this entry's
    /// times, so the RMW is timed from its GET's (intended) send to its SET's reply.
    pub(super) rmw_read: bool,
}

/// One non-blocking connection and its buffers.
pub(super) struct Conn {
    /// The server.
    pub(super) addr: SocketAddr,
    /// The non-blocking socket.
    pub(super) stream: TcpStream,
    /// Encoded requests not yet written, from `out_pos`.
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    /// Received bytes not yet parsed: `inbuf[in_start..in_end]`.
    pub(super) inbuf: Vec<u8>,
    pub(super) in_start: usize,
    pub(super) in_end: usize,
    /// The pipeline window: requests sent (or queued in `out`) awaiting their replies,
    /// oldest first.
    pub(super) inflight: VecDeque<InFlight>,
    /// What the socket is registered for in the thread's epoll.
    pub(super) interest: Interest,
    /// Its intended send times (open loop).
    pub(super) schedule: Schedule,
    /// Open loop: a request came due while the pipeline was full, and the connection has
    /// not caught up with its schedule since.
    pub(super) stalled: bool,
    /// Open loop: no further request of its schedule will be issued.
    pub(super) schedule_done: bool,
    /// When its last reply arrived, ns since the phase's start.
    pub(super) last_reply_ns: u64,
}

impl Conn {
    pub(super) fn connect(plan: &ConnectionPlan) -> io::Result<Conn> {
        let timeout = Duration::from_millis(limits::CONNECT_TIMEOUT_MS);
        let stream = TcpStream::connect_timeout(&plan.addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        Ok(Conn {
            addr: plan.addr,
            stream,
            out: Vec::new(),
            out_pos: 0,
            inbuf: vec![0; limits::READ_CHUNK_BYTES],
            in_start: 0,
            in_end: 0,
            inflight: VecDeque::new(),
            interest: Interest::Read,
            schedule: Schedule::Closed,
            stalled: false,
            schedule_done: false,
            last_reply_ns: 0,
        })
    }

    /// Readies a connection that the previous phase left clean for the next phase.
    pub(super) fn reset(&mut self) {
        debug_assert!(self.inflight.is_empty() && self.out.is_empty());
        self.out_pos = 0;
        self.in_start = 0;
        self.in_end = 0;
        self.interest = Interest::Read;
        self.schedule = Schedule::Closed;
        self.stalled = false;
        self.schedule_done = false;
        self.last_reply_ns = 0;
    }

    /// Makes room at the end of the read buffer: first by moving unparsed bytes to the
    /// front, else by growing it (a reply larger than the buffer).
    fn make_room(&mut self) {
        if self.in_start > 0 {
            self.inbuf.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
        } else {
            let len = self.inbuf.len();
            self.inbuf.resize(len * 2, 0);
        }
    }

    /// Writes as much of the pending requests as the socket takes, and waits for
    /// writability (epoll `token`) only while something is left.
    pub(super) fn flush(&mut self, epoll: &Epoll, token: usize) -> Result<(), EngineError> {
        while self.out_pos < self.out.len() {
            match (&self.stream).write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(EngineError::Closed(self.addr)),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(self.addr)(e)),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        let want = if self.out.is_empty() {
            Interest::Read
        } else {
            Interest::ReadWrite
        };
        if want != self.interest {
            epoll
                .modify(self.stream.as_raw_fd(), token as u64, want)
                .map_err(io_error(self.addr))?;
            self.interest = want;
        }
        Ok(())
    }

    /// Reads what the socket holds into the read buffer: `None` if nothing was there, else
    /// whether the read drained the socket (a short read, so the next one would say EAGAIN).
    pub(super) fn receive(&mut self) -> Result<Option<bool>, EngineError> {
        loop {
            if self.in_end == self.inbuf.len() {
                self.make_room();
            }
            let space = self.inbuf.len() - self.in_end;
            match (&self.stream).read(&mut self.inbuf[self.in_end..]) {
                Ok(0) => return Err(EngineError::Closed(self.addr)),
                Ok(n) => {
                    self.in_end += n;
                    return Ok(Some(n < space));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(self.addr)(e)),
            }
        }
    }

    /// Marks `used` bytes of `inbuf[in_start..in_end]` as parsed.
    pub(super) fn consume(&mut self, used: usize) {
        self.in_start += used;
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
        }
    }
}
