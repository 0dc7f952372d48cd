//! The connection table: accepting clients (per-shard and global limits, running out of
//! descriptors), reading and executing their requests within each connection's budget, and
//! writing their replies. The loop in the parent module calls in here; the rules that keep
//! a connection from stalling are in its module doc.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use super::conn::{self, Conn, ReadOutcome};
use super::metrics::ShardMetrics;
use super::stream::ReplyStream;
use super::{exec, fetch};
use super::{Shard, TOKEN_CONN_BASE};
use crate::resp::{self, RequestParser};
use crate::runtime::epoll::Interest;
use crate::timeseries::range::STREAM_STEP_BYTES;

/// Steps of a streamed reply one connection may fill per loop iteration (each adds
/// [`STREAM_STEP_BYTES`]), so that one long reply does not hold the other connections.
pub(super) const STREAM_STEPS_PER_FLUSH: usize = 4;

impl Shard {
    pub(super) fn conn(&self, (index, gen): (u32, u32)) -> Option<&Conn> {
        self.conns
            .get(index as usize)?
            .as_ref()
            .filter(|c| c.gen == gen)
    }

    pub(super) fn conn_mut(&mut self, (index, gen): (u32, u32)) -> Option<&mut Conn> {
        self.conns
            .get_mut(index as usize)?
            .as_mut()
            .filter(|c| c.gen == gen)
    }

    pub(super) fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_out_of_descriptors(&e) && self.reserve_fd.is_some() => {
                    // Edge-triggered: the queued connections would never be reported
                    // again. Free the reserve, take one, refuse it, take the reserve back.
                    self.reserve_fd = None;
                    let taken = listener.accept();
                    let more = match taken {
                        Ok((stream, _)) => {
                            tracing::warn!(
                                shard = self.id.0,
                                "out of file descriptors ({e}): refusing a client"
                            );
                            self.refuse(stream);
                            true
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
                        Err(e) => {
                            tracing::warn!(shard = self.id.0, "accept failed: {e}");
                            false
                        }
                    };
                    // Only now, with the refused socket closed, is a descriptor free again.
                    self.reserve_fd = std::fs::File::open("/dev/null").ok();
                    if more {
                        continue;
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(shard = self.id.0, "accept failed: {e}");
                    return;
                }
            };
            let open = self.conns.len() - self.free_conns.len();
            if open >= self.config().clients_per_shard_max {
                self.refuse(stream);
                continue;
            }
            let clients = self.shared.clients.fetch_add(1, Ordering::Relaxed);
            if clients >= self.config().access.clients_max {
                self.shared.clients.fetch_sub(1, Ordering::Relaxed);
                self.refuse(stream);
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = stream.set_nodelay(true);
            let gen = self.next_gen;
            self.next_gen = self.next_gen.wrapping_add(1).max(1);
            let index = self.free_conns.pop().unwrap_or_else(|| {
                self.conns.push(None);
                (self.conns.len() - 1) as u32
            });
            let token = ((gen as u64) << 32) | (index as u64 + TOKEN_CONN_BASE);
            if let Err(e) = self
                .epoll
                .add(stream.as_raw_fd(), token, Interest::ReadWrite)
            {
                tracing::warn!(shard = self.id.0, "epoll add failed: {e}");
                self.free_conns.push(index);
                continue;
            }
            let client_id = self.shared.next_client_id.fetch_add(1, Ordering::Relaxed);
            let parser = RequestParser::new(self.config().limits);
            let mut conn = Conn::new(stream, gen, client_id, parser);
            conn.authenticated = self.config().access.requirepass.is_none();
            self.conns[index as usize] = Some(conn);
            ShardMetrics::add(&self.metrics().connected_clients, 1);
            ShardMetrics::add(&self.metrics().total_connections, 1);
            self.ready.push((index, gen));
        }
    }

    /// Tells a client over a connection limit (or when descriptors ran out) why, as
    /// Redis does, and closes it.
    pub(super) fn refuse(&mut self, mut stream: std::net::TcpStream) {
        ShardMetrics::add(&self.metrics().rejected_connections, 1);
        let _ = io::Write::write_all(&mut stream, b"-ERR max number of clients reached\r\n");
    }

    pub(super) fn close_conn(&mut self, (index, gen): (u32, u32)) {
        let Some(slot) = self.conns.get_mut(index as usize) else {
            return;
        };
        if slot.as_ref().is_some_and(|c| c.gen == gen) {
            // Dropping the socket closes it, which also removes it from epoll.
            let closed = slot.take().expect("checked");
            self.drop_walk(super::fetch::Waiter::Conn((index, gen)));
            for &shard in &closed.watch_shards {
                self.forget_watches((index, gen), closed.id, shard);
            }
            self.free_conns.push(index);
            self.shared.clients.fetch_sub(1, Ordering::Relaxed);
            self.metrics()
                .connected_clients
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Reads and executes requests of every ready connection, within a per-iteration budget.
    pub(super) fn service_connections(&mut self) {
        let mut blocked = std::mem::take(&mut self.blocked);
        for key in blocked.drain(..) {
            if let Some(conn) = self.conn_mut(key) {
                conn.blocked = false;
                self.ready.push(key);
            }
        }
        self.blocked = blocked;
        let mut ready = std::mem::take(&mut self.ready);
        let mut again = Vec::new();
        ready.sort_unstable();
        ready.dedup();
        for key in ready.drain(..) {
            if self.service(key) {
                again.push(key);
            }
        }
        self.ready = ready;
        self.ready.extend(again);
    }

    /// Processes one connection: executes its buffered requests, then, while the socket
    /// may hold more and the read budget lasts, reads once and executes again. Returns true
    /// if it must be serviced again next iteration (budget spent, socket not drained).
    ///
    /// Every read is followed by an execution pass before this returns, so a connection
    /// never leaves the ready list with complete requests read but not executed: the last
    /// read of a budget may drain the socket, and edge-triggered epoll would not report
    /// those bytes again.
    pub(super) fn service(&mut self, key: (u32, u32)) -> bool {
        if self.conn(key).is_some_and(|c| c.block_reads_pending > 0) {
            // Its block reads' completion puts it back in line (`fetch`).
            return false;
        }
        let reads_max = self.config().conn_reads_per_iteration_max;
        let mut reads = 0;
        loop {
            match self.process_requests(key) {
                exec::Progress::Blocked | exec::Progress::Fetching | exec::Progress::Closed => {
                    return false
                }
                exec::Progress::Done => {}
            }
            let Some(conn) = self.conn_mut(key) else {
                return false;
            };
            if conn.peer_closed && !conn.close_after_flush {
                // The client half-closed after sending: answer what it sent, then close.
                conn.close_after_flush = true;
                self.mark_dirty(key);
                return false;
            }
            if conn.close_after_flush || !conn.readable {
                return false;
            }
            if reads == reads_max {
                return true;
            }
            let query_max = self.query_buffer_bytes_max();
            let conn = self.conn_mut(key).expect("exists");
            if conn.unparsed_bytes() > query_max {
                self.protocol_error(key, "ERR max query buffer length exceeded");
                return false;
            }
            let conn = self.conn_mut(key).expect("exists");
            match conn.read_once() {
                ReadOutcome::Data => {}
                ReadOutcome::DataDrained if conn.hangup_seen => {}
                ReadOutcome::DataDrained | ReadOutcome::Drained => conn.readable = false,
                ReadOutcome::Closed => {
                    conn.readable = false;
                    conn.peer_closed = true;
                }
            }
            reads += 1;
        }
    }

    /// Largest buffered request: a maximal bulk string plus headers and a maximal inline line.
    pub(super) fn query_buffer_bytes_max(&self) -> usize {
        let limits = &self.config().limits;
        limits
            .bulk_bytes_max
            .saturating_mul(2)
            .saturating_add(limits.inline_bytes_max)
            + 1024
    }

    /// Replies with a protocol error and closes the connection once it is sent.
    pub(super) fn protocol_error(&mut self, key: (u32, u32), message: &str) {
        ShardMetrics::add(&self.metrics().protocol_errors, 1);
        let ack = self.ack_seq();
        let Some(conn) = self.conn_mut(key) else {
            return;
        };
        let mut reply = Vec::new();
        resp::error(&mut reply, message);
        conn.push_slot(conn::Slot::ready(conn::Reply::Encoded(reply)), ack);
        conn.close_after_flush = true;
        conn.rbuf.clear();
        self.mark_dirty(key);
    }

    pub(super) fn mark_dirty(&mut self, key: (u32, u32)) {
        if let Some(conn) = self.conn_mut(key) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    pub(super) fn write_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &key in &dirty {
            if let Some(conn) = self.conn_mut(key) {
                conn.dirty = false;
            }
            self.flush_conn(key);
        }
        // A stream that took its share of this iteration marked itself again.
        dirty.clear();
        dirty.append(&mut self.dirty);
        self.dirty = dirty;
    }

    /// Sends what the socket takes, filling a streamed reply as it drains (at most
    /// [`STREAM_STEPS_PER_FLUSH`] steps, then again next iteration, so one long reply
    /// does not hold the loop); closes the connection when it failed or was asked to
    /// close and everything is out.
    pub(super) fn flush_conn(&mut self, key: (u32, u32)) {
        let mut steps = 0;
        loop {
            let Some(conn) = self.conn_mut(key) else {
                return;
            };
            if conn.write_out().is_err() {
                self.close_conn(key);
                return;
            }
            // A stream waiting for a `KEYS` batch is marked again when the batch arrives.
            if conn.streaming.as_ref().is_none_or(ReplyStream::waiting)
                || conn.unsent_bytes() >= STREAM_STEP_BYTES
                || conn.stream_reads_pending > 0
            {
                break;
            }
            if steps == STREAM_STEPS_PER_FLUSH {
                self.mark_dirty(key);
                return;
            }
            steps += 1;
            if !self.fill_stream(key) {
                self.close_conn(key);
                return;
            }
        }
        let Some(conn) = self.conn(key) else {
            return;
        };
        if conn.close_after_flush
            && conn.unsent_bytes() == 0
            && conn.slots.is_empty()
            && conn.streaming.is_none()
        {
            self.close_conn(key);
        }
    }

    /// Adds one step of the connection's streamed reply to its write buffer; when the
    /// stream ends, the replies queued behind it follow. A step whose chunks are not in
    /// memory is planned first: their blocks are read through the ring, and the step
    /// runs when the last read completes (`fetch`), so streaming never reads on the loop
    /// unless the ring is full. Returns false if the stream failed: its reply cannot be
    /// finished, so the connection must close.
    fn fill_stream(&mut self, key: (u32, u32)) -> bool {
        let ack = self.ack_seq();
        let poisoned = self.poisoned.clone();
        let id = self.id.0;
        let Some(conn) = self.conn_mut(key) else {
            return true;
        };
        let Some(mut stream) = conn.streaming.take() else {
            return true;
        };
        let mut needed = Vec::new();
        stream.plan(id, self.store.block_cache(), &mut needed);
        let submitted = match needed.is_empty() {
            true => 0,
            false => self.submit_reads(
                needed.into_iter(),
                fetch::Waiter::Stream(key),
                fetch::Keep::Stream,
            ),
        };
        let conn = self.conn_mut(key).expect("still open");
        if submitted > 0 {
            conn.streaming = Some(stream);
            conn.stream_reads_pending = submitted;
            return true;
        }
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        let filled = stream.fill(id, self.store.block_cache(), &mut wbuf);
        let own_cache = self.store.block_cache().borrow();
        for _ in 0..stream.take_uncached_reads() {
            own_cache.note_blocking_read();
        }
        drop(own_cache);
        let conn = self.conn_mut(key).expect("still open");
        conn.wbuf = wbuf;
        match filled {
            Ok(false) => conn.streaming = Some(stream),
            Ok(true) => {
                conn.promote(ack, poisoned.as_deref());
            }
            Err(e) => {
                tracing::error!("streamed reply failed, closing its connection: {e}");
                return false;
            }
        }
        self.send_keys_pull(key);
        true
    }
}

/// Whether `accept` failed for lack of file descriptors (per process or system-wide).
fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}
