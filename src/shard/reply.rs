//! Reply assembly: a [`Slot`] holds one request's reply while its parts arrive from
//! shards and its acknowledgement point is reached, and encodes it in the protocol its
//! request ran in ([`Reply`] says how the parts combine). The connection
//! ([`super::conn::Conn`]) keeps the slots in request order.

use crate::base::SeqNo;
use crate::resp::{self, resp3, Protocol};
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
    /// `KEYS`: every shard's matching keys, or the cursor it streams them from.
    Keys(super::keys_reply::KeysParts),
    /// `TS.MADD`: one encoded reply per part, in part order.
    Parts(Vec<Option<Vec<u8>>>),
    /// `TS.MGET`, `TS.MRANGE`, `TS.QUERYINDEX`: every shard's entries, replied in key order.
    Entries(
        crate::timeseries::multi::Merge,
        Vec<crate::timeseries::multi::EntryPart>,
    ),
    /// `TS.MRANGE ... GROUPBY`: every shard's grouped entries, reduced when all arrived.
    Grouped(
        Box<crate::timeseries::group::GroupQuery>,
        Vec<crate::timeseries::multi::EntryPart>,
    ),
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
    /// `CLIENT KILL`: the clients closed so far (`OpResult::Int` per shard); the old form
    /// replies `+OK` or `-ERR No such client` instead of the count.
    Killed {
        /// `CLIENT KILL addr`.
        old_form: bool,
        /// Clients closed.
        count: i64,
    },
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
    /// [`super::conn::Conn::push_slot`]: a later `HELLO` does not change how this reply is encoded.
    pub proto: Protocol,
    /// Sent as nothing (`CLIENT REPLY OFF|SKIP`), set by [`super::conn::Conn::push_slot`]; the slot
    /// still keeps its place, so the replies after it stay in order.
    pub silent: bool,
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
            silent: false,
        }
    }

    /// Replaces a reply that grew past `bytes_max` (the client output limit) with an
    /// error and frees what it held; the parts still to come are dropped as they arrive.
    /// A reply is checked as its parts arrive, so one request (an `MGET` of many large
    /// values) can never hold more than the limit plus one part.
    pub fn refuse_if_over(&mut self, bytes_max: usize) {
        if self.error.is_none() && self.held_bytes() > bytes_max {
            self.error = Some(format!(
                "ERR reply exceeds the client output limit of {bytes_max} bytes (--client-output-bytes-max): ask for fewer or smaller values at a time"
            ));
            self.reply = Reply::Static(b"");
        }
    }

    /// Bytes of reply data this slot holds (values and encoded replies), for the output cap.
    pub fn held_bytes(&self) -> usize {
        match &self.reply {
            Reply::Encoded(bytes) => bytes.len(),
            Reply::Single(Some(OpResult::Value(Some(value)))) => value.len(),
            Reply::Values(values) => values.iter().flatten().map(Vec::len).sum(),
            Reply::Keys(parts) => parts.keys.iter().map(Vec::len).sum(),
            Reply::Scan(Some((_, keys))) | Reply::ClientLines(keys) | Reply::RandomKey(keys) => {
                keys.iter().map(Vec::len).sum()
            }
            Reply::Info { text, .. } => text.len(),
            Reply::Exec(replies) => replies.iter().map(|(slot, _)| slot.held_bytes()).sum(),
            Reply::Single(Some(OpResult::Encoded(bytes))) => bytes.len(),
            Reply::Parts(parts) => parts.iter().flatten().map(Vec::len).sum(),
            Reply::Entries(_, entries) | Reply::Grouped(_, entries) => {
                entries.iter().map(|(k, e, _)| k.len() + e.len()).sum()
            }
            _ => 0,
        }
    }

    /// Folds one part's result into the reply (nothing once the reply is an error: the
    /// error is what is sent).
    pub fn apply(&mut self, part: u32, result: OpResult) {
        if self.error.is_some() {
            return;
        }
        if let OpResult::Err(message) = result {
            self.error = Some(message);
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
            (Reply::Keys(parts), OpResult::Keys { mut keys, .. }) => parts.keys.append(&mut keys),
            (Reply::Keys(parts), OpResult::KeysCursor(cursor)) => parts.cursors.push(cursor),
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
            (Reply::Killed { count, .. }, OpResult::Int(n)) => *count += n,
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

    /// The streamed reply this finished reply is (a range too long to build at once,
    /// multi-series entries holding one, or a `KEYS` reply with a part behind a cursor),
    /// unless it is silent or failed (its encoding is
    /// then what [`Slot::encode`] appends).
    pub fn take_stream(&mut self) -> Option<super::stream::ReplyStream> {
        if self.silent || self.error.is_some() {
            return None;
        }
        match &mut self.reply {
            Reply::Single(result @ Some(OpResult::Stream(_))) => match result.take() {
                Some(OpResult::Stream(stream)) => Some(super::stream::ReplyStream::range(stream.0)),
                _ => None,
            },
            Reply::Keys(parts) if !parts.cursors.is_empty() => {
                Some(std::mem::take(parts).into_stream())
            }
            Reply::Entries(merge, entries) if entries.iter().any(|(_, _, s)| s.is_some()) => {
                let mut entries = std::mem::take(entries);
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut stream = super::stream::ReplyStream::default();
                let mut head = Vec::new();
                crate::timeseries::multi::merged_header(
                    &mut head,
                    self.proto,
                    *merge,
                    entries.len(),
                );
                stream.push_bytes(&head);
                for (_, entry, range) in entries {
                    stream.push_bytes(&entry);
                    if let Some(range) = range {
                        stream.push_range(range.0);
                    }
                }
                Some(stream)
            }
            _ => None,
        }
    }

    /// Appends the finished reply's encoding in its [`Slot::proto`] to `out`.
    pub fn encode(self, out: &mut Vec<u8>) {
        if self.silent {
            return;
        }
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
            Reply::Keys(parts) => encode_keys(out, &parts.keys),
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
            Reply::Killed {
                old_form: false,
                count,
            } => resp::integer(out, count),
            Reply::Killed { count: 0, .. } => resp::error(out, "ERR No such client"),
            Reply::Killed { .. } => out.extend_from_slice(b"+OK\r\n"),
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
        Some(OpResult::TypeName(name)) => resp::simple(out, name),
        Some(OpResult::Err(message)) => resp::error(out, &message),
        Some(OpResult::Keys { keys, .. }) => encode_keys(out, &keys),
        Some(OpResult::Encoded(bytes)) => out.extend_from_slice(&bytes),
        Some(OpResult::WrongType) => resp::error(out, crate::timeseries::exec::WRONGTYPE),
        Some(OpResult::Entries(_)) => {
            resp::error(out, "ERR internal error: entries in a single reply")
        }
        Some(OpResult::Stream(_)) | Some(OpResult::KeysCursor(_)) => {
            debug_assert!(false, "a streamed reply is sent by its connection");
            resp::error(out, "ERR internal error: streamed reply")
        }
        Some(OpResult::Batch(_)) | Some(OpResult::ExecAborted) | Some(OpResult::Version(_)) => {
            resp::error(out, "ERR internal error: transaction result")
        }
        None => resp::error(out, "ERR internal error: missing reply"),
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
            silent: false,
        }
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
