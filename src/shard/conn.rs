//! One client connection: bounded read and write buffers, the incremental parser, and the
//! queue of reply slots that keeps replies in request order while some wait for an
//! fdatasync or for another shard.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;

use crate::base::SeqNo;
use crate::resp::{self, resp3, Protocol, RequestParser};
use crate::shard::mesh::OpResult;

/// How a reply is assembled from its parts.
#[derive(Debug)]
pub enum Reply {
    /// A finished reply, encoded.
    Encoded(Vec<u8>),
    /// A finished reply from a constant.
    Static(&'static [u8]),
    /// One single-key result, formatted like its command (`GET`, `SET`, ...).
    Single(Option<OpResult>),
    /// `MGET`: one value per key.
    Values(Vec<Option<Vec<u8>>>),
    /// `DEL`, `EXISTS`, `DBSIZE`: the sum of the parts' counts.
    Sum(i64),
    /// `MSET`: `+OK` once every part is written.
    AllOk,
    /// `SCAN`: the next cursor and the keys of one step.
    Scan(Option<(u64, Vec<Vec<u8>>)>),
    /// `KEYS`: every shard's matching keys, concatenated.
    Keys(Vec<Vec<u8>>),
    /// `TS.MADD`: one encoded reply per part, in part order.
    Parts(Vec<Option<Vec<u8>>>),
    /// `TS.MGET`, `TS.MRANGE`, `TS.QUERYINDEX`: every shard's entries, replied in key order.
    Entries(crate::timeseries::multi::Merge, Vec<(Vec<u8>, Vec<u8>)>),
    /// `TS.MRANGE ... GROUPBY`: every shard's grouped entries, reduced when all arrived.
    Grouped(
        Box<crate::timeseries::group::GroupQuery>,
        Vec<(Vec<u8>, Vec<u8>)>,
    ),
    /// `TYPE`: from the key's existence, `string` or `none`.
    Type(Option<bool>),
    /// `INFO` with its keyspace section: the other sections' text, and the live keys
    /// summed over the shards (one `OpResult::KeyCount` per shard).
    Info {
        /// Every requested section but `# Keyspace`, which Redis prints last.
        text: String,
        /// Live keys counted so far.
        keys: i64,
        /// Those of them with an expiry deadline.
        expires: i64,
    },
    /// `CLIENT LIST`: each shard's lines (`OpResult::Keys`), sent sorted by client id as
    /// one verbatim string.
    ClientLines(Vec<Vec<u8>>),
    /// `RANDOMKEY`: one candidate key per shard that has any (`OpResult::Value`); the
    /// reply picks one of them at random, or null.
    RandomKey(Vec<Vec<u8>>),
    /// `EXEC`: each queued command's reply and how many ops of the one
    /// `OpResult::Batch` it takes, in order.
    Exec(Vec<(Slot, usize)>),
    /// `EXEC` of a transaction a watched key's change aborted: a null array.
    ExecAborted,
}

/// A reply in the connection's order. It may be sent once all its parts arrived and the
/// shard's acknowledgement point has reached `gate`.
#[derive(Debug)]
pub struct Slot {
    /// Highest local sequence number this reply depends on (written or read).
    pub gate: SeqNo,
    /// Parts still expected from other shards.
    pub parts_left: u32,
    /// The reply under assembly.
    pub reply: Reply,
    /// The first error a part returned; replaces the reply.
    pub error: Option<String>,
    /// The protocol the connection spoke when the request ran, set by
    /// [`Conn::push_slot`]: a later `HELLO` does not change how this reply is encoded.
    pub proto: Protocol,
}

impl Slot {
    /// A slot whose reply is complete and depends on nothing.
    pub fn ready(reply: Reply) -> Self {
        Self {
            gate: SeqNo(0),
            parts_left: 0,
            reply,
            error: None,
            proto: Protocol::Resp2,
        }
    }

    /// Bytes of reply data this slot holds (values and encoded replies), for the output cap.
    pub fn held_bytes(&self) -> usize {
        match &self.reply {
            Reply::Encoded(bytes) => bytes.len(),
            Reply::Single(Some(OpResult::Value(Some(value)))) => value.len(),
            Reply::Values(values) => values.iter().flatten().map(Vec::len).sum(),
            Reply::Scan(Some((_, keys)))
            | Reply::Keys(keys)
            | Reply::ClientLines(keys)
            | Reply::RandomKey(keys) => keys.iter().map(Vec::len).sum(),
            Reply::Info { text, .. } => text.len(),
            Reply::Exec(replies) => replies.iter().map(|(slot, _)| slot.held_bytes()).sum(),
            Reply::Single(Some(OpResult::Encoded(bytes))) => bytes.len(),
            Reply::Parts(parts) => parts.iter().flatten().map(Vec::len).sum(),
            Reply::Entries(_, entries) | Reply::Grouped(_, entries) => {
                entries.iter().map(|(k, e)| k.len() + e.len()).sum()
            }
            _ => 0,
        }
    }

    /// Folds one part's result into the reply.
    pub fn apply(&mut self, part: u32, result: OpResult) {
        if let OpResult::Err(message) = result {
            self.error.get_or_insert(message);
            return;
        }
        match (&mut self.reply, result) {
            (reply @ Reply::Exec(_), OpResult::ExecAborted) => *reply = Reply::ExecAborted,
            (Reply::Single(slot), result) => *slot = Some(result),
            (Reply::Values(values), OpResult::Value(value)) => {
                if let Some(entry) = values.get_mut(part as usize) {
                    *entry = value;
                }
            }
            // MGET answers nil for a key of another type, as Redis.
            (Reply::Values(_), OpResult::WrongType) => {}
            (Reply::Entries(_, all) | Reply::Grouped(_, all), OpResult::Entries(mut entries)) => {
                all.append(&mut entries)
            }
            (Reply::Parts(parts), OpResult::Encoded(bytes)) => {
                if let Some(entry) = parts.get_mut(part as usize) {
                    *entry = Some(bytes);
                }
            }
            (Reply::Sum(total), OpResult::Int(n)) => *total += n,
            (Reply::AllOk | Reply::Static(_), OpResult::Ok) => {}
            (Reply::Scan(slot), OpResult::Keys { next_cursor, keys }) => {
                *slot = Some((next_cursor, keys));
            }
            (Reply::Keys(all), OpResult::Keys { mut keys, .. }) => all.append(&mut keys),
            (Reply::Type(slot), OpResult::Int(n)) => *slot = Some(n > 0),
            (Reply::Sum(total), OpResult::KeyCount { keys, .. }) => *total += keys,
            (
                Reply::Info { keys, expires, .. },
                OpResult::KeyCount {
                    keys: n,
                    expires: e,
                },
            ) => {
                *keys += n;
                *expires += e;
            }
            (Reply::ClientLines(all), OpResult::Keys { mut keys, .. }) => all.append(&mut keys),
            (Reply::RandomKey(all), OpResult::Value(key)) => all.extend(key),
            (Reply::Exec(replies), OpResult::Batch(results)) => {
                let mut results = results.into_iter();
                for (slot, ops) in replies {
                    for (index, result) in results.by_ref().take(*ops).enumerate() {
                        slot.apply(index as u32, result);
                    }
                }
            }
            (_, other) => {
                debug_assert!(false, "part result {other:?} does not fit its reply");
            }
        }
    }

    /// Appends the finished reply's encoding in its [`Slot::proto`] to `out`.
    pub fn encode(self, out: &mut Vec<u8>) {
        if let Some(message) = self.error {
            resp::error(out, &message);
            return;
        }
        let proto = self.proto;
        match self.reply {
            Reply::Encoded(bytes) => out.extend_from_slice(&bytes),
            Reply::Static(bytes) => out.extend_from_slice(bytes),
            Reply::Single(result) => encode_result(out, proto, result),
            Reply::Values(values) => {
                resp::array_header(out, values.len());
                for value in values {
                    match value {
                        Some(v) => resp::bulk(out, &v),
                        None => resp3::null(out, proto),
                    }
                }
            }
            Reply::Sum(n) => resp::integer(out, n),
            Reply::AllOk => out.extend_from_slice(b"+OK\r\n"),
            Reply::Scan(Some((cursor, keys))) => {
                resp::array_header(out, 2);
                resp::bulk(out, itoa::Buffer::new().format(cursor).as_bytes());
                encode_keys(out, &keys);
            }
            Reply::Scan(None) => resp::error(out, "ERR internal error: missing reply"),
            Reply::Keys(keys) => encode_keys(out, &keys),
            Reply::Entries(merge, entries) => {
                crate::timeseries::multi::encode_merged(out, proto, merge, entries);
            }
            Reply::Grouped(query, entries) => {
                crate::timeseries::group::encode(out, proto, &query, entries);
            }
            Reply::Parts(parts) => {
                resp::array_header(out, parts.len());
                for part in parts {
                    match part {
                        Some(bytes) => out.extend_from_slice(&bytes),
                        None => resp::error(out, "ERR internal error: missing reply"),
                    }
                }
            }
            Reply::Type(Some(true)) => out.extend_from_slice(b"+string\r\n"),
            Reply::Type(Some(false)) => out.extend_from_slice(b"+none\r\n"),
            Reply::Type(None) => resp::error(out, "ERR internal error: missing reply"),
            Reply::Info {
                mut text,
                keys,
                expires,
            } => {
                super::info::keyspace_section(&mut text, keys, expires);
                resp3::verbatim(out, proto, b"txt", text.as_bytes());
            }
            Reply::ClientLines(lines) => {
                let text = super::client::client_list_text(lines);
                resp3::verbatim(out, proto, b"txt", &text);
            }
            Reply::ExecAborted => resp3::null_array(out, proto),
            Reply::Exec(replies) => {
                resp::array_header(out, replies.len());
                for (mut slot, _) in replies {
                    slot.proto = proto;
                    slot.encode(out);
                }
            }
            Reply::RandomKey(keys) => {
                use rand::seq::SliceRandom;
                match keys.choose(&mut rand::thread_rng()) {
                    Some(key) => resp::bulk(out, key),
                    None => resp3::null(out, proto),
                }
            }
        }
    }
}

fn encode_keys(out: &mut Vec<u8>, keys: &[Vec<u8>]) {
    resp::array_header(out, keys.len());
    for key in keys {
        resp::bulk(out, key);
    }
}

fn encode_result(out: &mut Vec<u8>, proto: Protocol, result: Option<OpResult>) {
    match result {
        Some(OpResult::Value(Some(v))) => resp::bulk(out, &v),
        Some(OpResult::Value(None)) | Some(OpResult::NotApplied) => resp3::null(out, proto),
        Some(OpResult::Int(n)) | Some(OpResult::KeyCount { keys: n, .. }) => resp::integer(out, n),
        Some(OpResult::Ok) => out.extend_from_slice(b"+OK\r\n"),
        Some(OpResult::Err(message)) => resp::error(out, &message),
        Some(OpResult::Keys { keys, .. }) => encode_keys(out, &keys),
        Some(OpResult::Encoded(bytes)) => out.extend_from_slice(&bytes),
        Some(OpResult::WrongType) => resp::error(out, crate::timeseries::exec::WRONGTYPE),
        Some(OpResult::Entries(_)) => {
            resp::error(out, "ERR internal error: entries in a single reply")
        }
        Some(OpResult::Batch(_)) | Some(OpResult::ExecAborted) => {
            resp::error(out, "ERR internal error: batch result")
        }
        None => resp::error(out, "ERR internal error: missing reply"),
    }
}

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
    pub(crate) watch_shard: Option<super::mesh::ShardId>,
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

/// Most parts one connection may have in flight at other shards.
pub const REMOTE_PARTS_PER_CONN_MAX: usize = 1024;

/// Bytes read from a socket per `read` call at least.
const READ_CHUNK_BYTES: usize = 16 * 1024;

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

    /// Marks the first `n` bytes of [`ReadBuf::data`] consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
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
            watch_shard: None,
            addrs,
            accepted: std::time::Instant::now(),
            last_command_at: std::time::Instant::now(),
            last_command: "NULL",
            rbuf: ReadBuf::default(),
            parser: Some(parser),
            wbuf: Vec::new(),
            wstart: 0,
            slots: VecDeque::new(),
            first_slot_id: 0,
            readable: true,
            close_after_flush: false,
            peer_closed: false,
            hangup_seen: false,
            blocked: false,
            block_reads_pending: 0,
            block_reads_done: false,
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
        let id = self.first_slot_id + self.slots.len() as u64;
        if self.slots.is_empty() && slot.parts_left == 0 && slot.gate <= ack {
            slot.encode(&mut self.wbuf);
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

    /// Applies a remote part's result to slot `id`; returns false if the slot is gone.
    pub fn apply_remote(&mut self, id: u64, part: u32, result: OpResult) -> bool {
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
            if front.parts_left > 0 {
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
            slot.encode(&mut self.wbuf);
            self.first_slot_id += 1;
            added = true;
        }
        added
    }

    /// Whether some queued slot waits for the acknowledgement point.
    pub fn has_gated_slots(&self, ack: SeqNo) -> bool {
        self.slots.iter().any(|slot| slot.gate > ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(gate: u64, parts_left: u32, reply: Reply) -> Slot {
        Slot {
            gate: SeqNo(gate),
            parts_left,
            reply,
            error: None,
            proto: Protocol::Resp2,
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
        assert!(conn.apply_remote(b, 0, OpResult::Value(Some(b"b".to_vec()))));
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

    #[test]
    fn gathered_parts_and_errors() {
        let mut mget = slot(0, 2, Reply::Values(vec![None, None, None]));
        mget.apply(2, OpResult::Value(Some(b"z".to_vec())));
        mget.apply(0, OpResult::Value(Some(b"x".to_vec())));
        let mut out = Vec::new();
        mget.encode(&mut out);
        assert_eq!(out, b"*3\r\n$1\r\nx\r\n$-1\r\n$1\r\nz\r\n");

        let mut del = slot(0, 0, Reply::Sum(0));
        del.apply(0, OpResult::Int(1));
        del.apply(1, OpResult::Int(1));
        let mut out = Vec::new();
        del.encode(&mut out);
        assert_eq!(out, b":2\r\n");

        let mut mset = slot(0, 0, Reply::AllOk);
        mset.apply(0, OpResult::Ok);
        mset.apply(1, OpResult::Err("ERR refused".into()));
        let mut out = Vec::new();
        mset.encode(&mut out);
        assert_eq!(out, b"-ERR refused\r\n");
    }
}
