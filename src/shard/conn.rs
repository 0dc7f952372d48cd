//! One client connection: bounded read and write buffers, the incremental parser, and the
//! queue of reply slots ([`Slot`], assembled in `reply`) that keeps replies in request
//! order while some wait for an fdatasync or for another shard.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;

use crate::base::SeqNo;
use crate::resp::{Protocol, RequestParser};
use crate::shard::mesh::OpResult;

pub use super::reply::{Reply, Slot};

/// What reading from the socket found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes were added to the read buffer and the socket may hold more.
    Data,
    /// Bytes were added and the read came back short, so the socket is drained for now:
    /// with edge-triggered epoll, later bytes raise a new edge. Saves the `read` that
    /// would only return `EAGAIN`.
    DataDrained,
    /// Nothing more to read now (`EAGAIN`).
    Drained,
    /// The peer closed its side, or the socket failed.
    Closed,
}

/// A client connection owned by one shard.
pub struct Conn {
    /// The socket (non-blocking).
    pub stream: TcpStream,
    /// Generation, to tell a reused slab index from the connection a message was for.
    pub gen: u32,
    /// Server-wide unique client id (`CLIENT ID`).
    pub id: u64,
    /// `CLIENT SETNAME`.
    pub name: Option<Vec<u8>>,
    /// The protocol chosen with `HELLO` (RESP2 until then).
    pub proto: Protocol,
    /// Whether the client may run commands: it gave the password (`AUTH`, `HELLO ...
    /// AUTH`), or the server has none. False until the shard that accepts it says.
    pub authenticated: bool,
    /// The commands queued since `MULTI`, if in a transaction.
    pub(crate) transaction: Option<super::multi::Transaction>,
    /// The shard holding this client's `WATCH`ed keys, while it watches any.
    /// The shards holding this client's `WATCH`ed keys, ascending.
    pub(crate) watch_shards: Vec<super::mesh::ShardId>,
    /// A transaction across shards of this connection has not replied yet: its next
    /// requests wait ([`super::txn`]).
    pub(crate) tx_in_flight: bool,
    /// Whether replies are sent (`CLIENT REPLY`).
    pub reply_sending: ReplySending,
    /// `CLIENT NO-EVICT on` (shown as flag `e` in `CLIENT LIST`; tskv evicts no clients).
    pub no_evict: bool,
    /// The peer's address and the local address, for `CLIENT LIST` (`None` if the socket
    /// could not tell).
    pub addrs: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// When the connection was accepted (`CLIENT LIST` `age`).
    pub accepted: std::time::Instant,
    /// When its last command ran (`CLIENT LIST` `idle`).
    pub last_command_at: std::time::Instant,
    /// The last command's name as `CLIENT LIST` shows it (`cmd`), e.g. `get` or
    /// `client|list`.
    pub last_command: &'static str,
    /// Received, not yet executed request bytes.
    pub rbuf: ReadBuf,
    /// The request parser; `None` only while the shard executes this connection's requests.
    pub parser: Option<RequestParser>,
    /// Encoded replies; `wbuf[wstart..]` is not yet sent.
    pub wbuf: Vec<u8>,
    /// Start of the unsent part of `wbuf`.
    pub wstart: usize,
    /// Replies not yet sendable, in request order.
    pub slots: VecDeque<Slot>,
    /// A range reply being streamed: its header is in `wbuf`, its entries follow as the
    /// socket takes them (the shard fills them, [`super::conns`]); the slots after it wait.
    pub streaming: Option<super::stream::ReplyStream>,
    /// Id of `slots[0]` (ids increase by one per request).
    pub first_slot_id: u64,
    /// The socket may have more bytes (edge-triggered readiness not yet consumed).
    pub readable: bool,
    /// Close once everything queued is sent (QUIT, protocol error, peer closed).
    pub close_after_flush: bool,
    /// The peer closed its sending side (read returned 0) or the socket failed.
    pub peer_closed: bool,
    /// Epoll reported a hang-up: a short read no longer means "drained", since the end of
    /// stream raises no further edge.
    pub hangup_seen: bool,
    /// Stopped until the client reads its replies or a queue/flush frees up.
    pub blocked: bool,
    /// Block reads the request it stopped at still waits for.
    pub block_reads_pending: u32,
    /// The reads of the request it stopped at completed: run it without planning again.
    pub block_reads_done: bool,
    /// Block reads the next step of its streamed reply waits for (planned through the
    /// ring, [`super::stream::ReplyStream::plan`]).
    pub stream_reads_pending: u32,
    /// Listed in the shard's durability waiters.
    pub waiting_durable: bool,
    /// Listed in the shard's list of connections with unsent bytes.
    pub dirty: bool,
    /// Reply bytes held in `slots` (see [`Slot::held_bytes`]).
    pub slot_bytes: usize,
    /// Parts sent to other shards whose replies have not arrived.
    pub remote_parts_in_flight: usize,
    /// Running estimate of one remote reply's size, to size the window of remote parts.
    pub remote_reply_bytes_estimate: usize,
}

/// Which replies a connection sends, as Redis's `CLIENT_REPLY_*` flags: each request's
/// reply slot is marked silent or not when it is queued, in request order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplySending {
    /// Every reply is sent.
    On,
    /// No reply is sent (`CLIENT REPLY OFF`).
    Off,
    /// The request being executed is `CLIENT REPLY SKIP`: the next one is silent.
    SkipNext,
    /// This request's reply is not sent; the next one's is.
    SkipThis,
}

/// Most parts one connection may have in flight at other shards.
pub const REMOTE_PARTS_PER_CONN_MAX: usize = 1024;

/// Bytes read from a socket per `read` call at least.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// A read buffer that grew past this (for a large request) gives the memory back once
/// everything in it was consumed, keeping [`READ_BUF_KEPT_BYTES`].
const READ_BUF_SHRINK_ABOVE_BYTES: usize = 1 << 20;
/// What a shrunk read buffer keeps: room for a few reads.
const READ_BUF_KEPT_BYTES: usize = 4 * READ_CHUNK_BYTES;

/// A read buffer whose storage is initialised once, so reads do not zero it each time:
/// `buf[start..end]` holds received bytes not yet consumed.
#[derive(Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// The received, unconsumed bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks the first `n` bytes of [`ReadBuf::data`] consumed. Once nothing is left, a
    /// buffer grown past 1 MiB (by a large request) returns its memory, keeping 64 KiB.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > READ_BUF_SHRINK_ABOVE_BYTES {
                self.buf.truncate(READ_BUF_KEPT_BYTES);
                self.buf.shrink_to_fit();
            }
        }
    }

    /// Bytes of buffer allocated, used or not (`CLIENT LIST` `rbs`).
    pub fn capacity_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Drops everything received.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Reads once from `source`, first making room for at least `READ_CHUNK_BYTES`.
    pub fn read_from(&mut self, source: &mut impl Read) -> ReadOutcome {
        if self.start > 0 && self.buf.len() - self.end < READ_CHUNK_BYTES {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK_BYTES {
            let grown = (self.buf.len() * 2).max(self.end + READ_CHUNK_BYTES);
            self.buf.resize(grown, 0);
        }
        let room = self.buf.len() - self.end;
        match source.read(&mut self.buf[self.end..]) {
            Ok(0) => ReadOutcome::Closed,
            Ok(n) => {
                self.end += n;
                if n < room {
                    ReadOutcome::DataDrained
                } else {
                    ReadOutcome::Data
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadOutcome::Data,
            Err(_) => ReadOutcome::Closed,
        }
    }
}

impl Conn {
    /// Wraps an accepted, non-blocking socket.
    pub fn new(stream: TcpStream, gen: u32, id: u64, parser: RequestParser) -> Self {
        let addrs = stream.peer_addr().ok().zip(stream.local_addr().ok());
        Self {
            stream,
            gen,
            id,
            name: None,
            proto: Protocol::Resp2,
            authenticated: false,
            transaction: None,
            watch_shards: Vec::new(),
            tx_in_flight: false,
            reply_sending: ReplySending::On,
            no_evict: false,
            addrs,
            accepted: std::time::Instant::now(),
            last_command_at: std::time::Instant::now(),
            last_command: "NULL",
            rbuf: ReadBuf::default(),
            parser: Some(parser),
            wbuf: Vec::new(),
            wstart: 0,
            slots: VecDeque::new(),
            streaming: None,
            first_slot_id: 0,
            readable: true,
            close_after_flush: false,
            peer_closed: false,
            hangup_seen: false,
            blocked: false,
            block_reads_pending: 0,
            block_reads_done: false,
            stream_reads_pending: 0,
            waiting_durable: false,
            dirty: false,
            slot_bytes: 0,
            remote_parts_in_flight: 0,
            remote_reply_bytes_estimate: usize::MAX,
        }
    }

    /// Unconsumed request bytes.
    pub fn unparsed_bytes(&self) -> usize {
        self.rbuf.data().len()
    }

    /// Unsent reply bytes (not counting replies still waiting in slots).
    pub fn unsent_bytes(&self) -> usize {
        self.wbuf.len() - self.wstart
    }

    /// Reads once from the socket into the read buffer.
    pub fn read_once(&mut self) -> ReadOutcome {
        self.rbuf.read_from(&mut self.stream)
    }

    /// Writes as much of the unsent bytes as the socket takes. `Err` means the connection
    /// is dead.
    pub fn write_out(&mut self) -> io::Result<()> {
        while self.wstart < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wstart..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wstart += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.wstart == self.wbuf.len() {
            self.wbuf.clear();
            self.wstart = 0;
            if self.wbuf.capacity() > 1 << 20 {
                self.wbuf.shrink_to(64 * 1024);
            }
        }
        Ok(())
    }

    /// Queues a new reply slot and returns its id; a complete reply goes straight to the
    /// write buffer when nothing is queued before it.
    pub fn push_slot(&mut self, mut slot: Slot, ack: SeqNo) -> u64 {
        slot.proto = self.proto;
        slot.silent = matches!(
            self.reply_sending,
            ReplySending::Off | ReplySending::SkipThis
        );
        self.reply_sending = match self.reply_sending {
            ReplySending::SkipThis => ReplySending::On,
            ReplySending::SkipNext => ReplySending::SkipThis,
            other => other,
        };
        let id = self.first_slot_id + self.slots.len() as u64;
        if self.slots.is_empty()
            && self.streaming.is_none()
            && slot.parts_left == 0
            && slot.gate <= ack
        {
            self.emit(slot);
            self.first_slot_id += 1;
        } else {
            self.slot_bytes += slot.held_bytes();
            self.slots.push_back(slot);
        }
        id
    }

    /// Whether `parts` more remote parts fit the connection's window. The window holds as
    /// many replies of the estimated size as fit in `output_bytes_max` (a sixteenth of it
    /// before any reply was seen), between 1 and [`REMOTE_PARTS_PER_CONN_MAX`]; a command
    /// always goes when nothing is in flight, so a large MGET cannot wait forever.
    pub fn remote_window_allows(&self, parts: usize, output_bytes_max: usize) -> bool {
        if self.remote_parts_in_flight == 0 {
            return true;
        }
        let estimate = match self.remote_reply_bytes_estimate {
            usize::MAX => (output_bytes_max / 16).max(1),
            bytes => bytes.max(1),
        };
        let window = (output_bytes_max / estimate).clamp(1, REMOTE_PARTS_PER_CONN_MAX);
        self.remote_parts_in_flight + parts <= window
    }

    /// Applies a remote part's result to slot `id`, refusing the reply if it grows past
    /// `bytes_max` ([`Slot::refuse_if_over`]); returns false if the slot is gone.
    pub fn apply_remote(&mut self, id: u64, part: u32, result: OpResult, bytes_max: usize) -> bool {
        self.remote_parts_in_flight = self.remote_parts_in_flight.saturating_sub(1);
        let reply_bytes = match &result {
            OpResult::Value(Some(value)) | OpResult::Encoded(value) => value.len(),
            _ => 0,
        };
        // Grow at once for a large reply, shrink slowly for small ones.
        self.remote_reply_bytes_estimate = match self.remote_reply_bytes_estimate {
            usize::MAX => reply_bytes,
            estimate => reply_bytes.max((estimate * 7 + reply_bytes) / 8),
        };
        let Some(slot) = self.slot_mut(id) else {
            return false;
        };
        let before = slot.held_bytes();
        slot.apply(part, result);
        slot.refuse_if_over(bytes_max);
        slot.parts_left -= 1;
        let after = slot.held_bytes();
        self.slot_bytes = self.slot_bytes + after - before;
        true
    }

    /// The slot with `id`, if still queued.
    pub fn slot_mut(&mut self, id: u64) -> Option<&mut Slot> {
        let index = id.checked_sub(self.first_slot_id)?;
        self.slots.get_mut(usize::try_from(index).ok()?)
    }

    /// Moves every leading slot that is complete and acknowledged (or, after a poisoning,
    /// failed) into the write buffer. Returns true if bytes were added.
    pub fn promote(&mut self, ack: SeqNo, poisoned: Option<&str>) -> bool {
        let mut added = false;
        while let Some(front) = self.slots.front() {
            if front.parts_left > 0 || self.streaming.is_some() {
                break;
            }
            let mut slot = self.slots.pop_front().expect("front exists");
            if slot.gate > ack {
                match poisoned {
                    Some(reason) => slot.error = Some(reason.to_owned()),
                    None => {
                        self.slots.push_front(slot);
                        break;
                    }
                }
            }
            self.slot_bytes -= slot.held_bytes();
            self.emit(slot);
            self.first_slot_id += 1;
            added = true;
        }
        added
    }

    /// Appends a finished reply to the write buffer, or keeps a streamed one to fill from.
    fn emit(&mut self, mut slot: Slot) {
        match slot.take_stream() {
            Some(stream) => self.streaming = Some(stream),
            None => slot.encode(&mut self.wbuf),
        }
    }

    /// Whether some queued slot waits for the acknowledgement point.
    pub fn has_gated_slots(&self, ack: SeqNo) -> bool {
        self.slots.iter().any(|slot| slot.gate > ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_buffer_grown_by_a_large_request_gives_its_memory_back_once_consumed() {
        let request = vec![b'x'; 4 << 20];
        let mut source = &request[..];
        let mut rbuf = ReadBuf::default();
        while !source.is_empty() {
            rbuf.read_from(&mut source);
        }
        assert!(rbuf.capacity_bytes() >= 4 << 20);
        rbuf.consume(1 << 20);
        assert!(rbuf.capacity_bytes() >= 4 << 20, "kept while bytes remain");
        rbuf.consume(3 << 20);
        assert_eq!(rbuf.capacity_bytes(), READ_BUF_KEPT_BYTES);
        // Still usable.
        let mut more = &b"PING\r\n"[..];
        rbuf.read_from(&mut more);
        assert_eq!(rbuf.data(), b"PING\r\n");
    }

    fn slot(gate: u64, parts_left: u32, reply: Reply) -> Slot {
        Slot {
            gate: SeqNo(gate),
            parts_left,
            reply,
            error: None,
            proto: Protocol::Resp2,
            silent: false,
        }
    }

    fn test_conn() -> Conn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        Conn::new(stream, 1, 1, RequestParser::new(Default::default()))
    }

    /// Promotion must stop at the first slot that is not ready, even if later ones are.
    #[test]
    fn replies_leave_in_request_order() {
        let mut conn = test_conn();
        let a = conn.push_slot(slot(5, 0, Reply::Static(b"+A\r\n")), SeqNo(4));
        let b = conn.push_slot(slot(0, 1, Reply::Single(None)), SeqNo(4));
        conn.push_slot(slot(0, 0, Reply::Static(b"+C\r\n")), SeqNo(4));
        assert_eq!((a, b), (0, 1));
        assert!(!conn.promote(SeqNo(4), None), "gate 5 not reached yet");
        assert!(conn.wbuf.is_empty());
        assert!(conn.promote(SeqNo(5), None));
        assert_eq!(conn.wbuf, b"+A\r\n");
        conn.remote_parts_in_flight = 1;
        assert!(conn.apply_remote(b, 0, OpResult::Value(Some(b"b".to_vec())), usize::MAX));
        assert_eq!(
            conn.slot_bytes, 1,
            "the value waits behind nothing but is counted"
        );
        conn.promote(SeqNo(5), None);
        assert_eq!(conn.slot_bytes, 0);
        assert_eq!(conn.wbuf, b"+A\r\n$1\r\nb\r\n+C\r\n");
        assert!(conn.slots.is_empty());
        // Nothing queued: a ready reply goes straight out.
        assert_eq!(
            conn.push_slot(slot(0, 0, Reply::Static(b"+D\r\n")), SeqNo(5)),
            3
        );
        assert!(conn.wbuf.ends_with(b"+D\r\n"));
    }

    #[test]
    fn poisoning_fails_gated_replies_instead_of_acknowledging() {
        let mut conn = test_conn();
        conn.push_slot(slot(9, 0, Reply::Single(Some(OpResult::Ok))), SeqNo(1));
        conn.promote(SeqNo(1), Some("ERR shard refuses writes"));
        assert_eq!(conn.wbuf, b"-ERR shard refuses writes\r\n");
    }
}
