//! Routing the time-series commands: each names one series (`TS.MADD` one per sample),
//! runs on the shard that owns it, and answers with a complete encoded reply
//! ([`crate::timeseries::exec`]).

use super::conn::Reply;
use super::exec::Wait;
use super::mesh::{Op, OpResult};
use super::Shard;
use crate::base::SeqNo;
use crate::command::CommandKind;
use crate::timeseries::exec::{self as ts_exec, encode_request};
use crate::timeseries::keys;

impl Shard {
    /// Sends `kind`'s request (arguments after the name in `args`) to the shards owning
    /// its keys, with the reply slot it fills. `TYPE` goes this way too: only the owner
    /// knows whether its key is a string or a series.
    pub(super) fn series_command(
        &mut self,
        key: (u32, u32),
        kind: CommandKind,
        args: &[&[u8]],
    ) -> Result<(), Wait> {
        let name = kind.name().as_bytes();
        let proto = self.proto(key);
        if kind.is_multi_series() {
            return self.series_all_command(key, name, args);
        }
        if kind == CommandKind::TsMAdd {
            // One part per sample; each answers alone (a timestamp or an error).
            let requests: Vec<Vec<u8>> = args
                .chunks_exact(3)
                .map(|s| encode_request(proto, &[name, s[0], s[1], s[2]]))
                .collect();
            let ops: Vec<Op<&[u8]>> = args
                .chunks_exact(3)
                .zip(&requests)
                .map(|(s, request)| Op::Series {
                    key: s[0],
                    request,
                    writes: true,
                })
                .collect();
            return self.scatter(key, Reply::Parts(vec![None; ops.len()]), &ops);
        }
        let mut words = Vec::with_capacity(args.len() + 1);
        words.push(name);
        words.extend_from_slice(args);
        let request = encode_request(proto, &words);
        let op = Op::Series {
            key: args[0],
            request: &request,
            writes: kind.is_write(),
        };
        self.scatter(key, Reply::Single(None), &[op])
    }
}

/// The wall clock in Unix milliseconds: what a time-series timestamp `*` means.
pub(super) fn clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Shard {
    /// For a lookup of `key` that found no string (`string`: its tombstone, if any):
    /// whether a series has that name, and the sequence number the reply waits for (the
    /// newest version either lookup read).
    pub(super) fn series_on_miss(
        &self,
        key: &[u8],
        string: Option<crate::store::Lookup>,
    ) -> Result<(bool, crate::base::SeqNo), crate::base::StoreError> {
        let meta = crate::timeseries::series::series_lookup(&self.store, key)?;
        let gate = [&string, &meta]
            .into_iter()
            .flatten()
            .map(|found| found.seq)
            .max()
            .unwrap_or(crate::base::SeqNo(0));
        Ok((meta.is_some_and(|m| m.value.is_some()), gate))
    }
}

impl Shard {
    /// Whether `key` holds a string or a series, and the sequence number of the newest
    /// version read (what a reply that depends on it waits for).
    pub(super) fn key_exists(&self, key: &[u8]) -> Result<(bool, SeqNo), crate::base::StoreError> {
        match self.store.get(key)? {
            Some(found) if found.value.is_some() => Ok((true, found.seq)),
            string => self.series_on_miss(key, string),
        }
    }

    /// After a string op ran: if it was a `SET` with options (`EX`, `PX`, `KEEPTTL`,
    /// `GET`, `SETEX`, `PSETEX`) that wrote over a series, deletes the series, so the
    /// string replaces it as in Redis. The reply then waits for the deletion too.
    pub(super) fn after_string_write(
        &mut self,
        op: &crate::command::StringOp<&[u8]>,
        result: OpResult,
        gate: SeqNo,
    ) -> (OpResult, SeqNo) {
        let crate::command::StringOp::Set { key, .. } = *op else {
            return (result, gate);
        };
        if matches!(result, OpResult::Err(_) | OpResult::NotApplied) {
            return (result, gate);
        }
        match ts_exec::delete_series(&mut self.store, &mut self.series, key) {
            Ok(deleted) => (result, gate.max(deleted.unwrap_or(SeqNo(0)))),
            Err(message) => (OpResult::Err(message), gate),
        }
    }

    /// Deletes the series named `key`, if any, before a string write replaces the key.
    pub(super) fn replace_series(&mut self, key: &[u8]) -> Result<(), String> {
        ts_exec::delete_series(&mut self.store, &mut self.series, key).map(|_| ())
    }

    /// `DEL`'s part for `key` on this shard: deletes the string and the series of that
    /// name; counts 1 if either existed.
    pub(super) fn del_op(&mut self, key: &[u8]) -> (OpResult, SeqNo) {
        let string_seq = match self.store.get(key) {
            Ok(Some(found)) if found.value.is_some() => Some(self.store.delete(key)),
            Ok(_) => None,
            Err(e) => return (OpResult::Err(format!("ERR storage error: {e}")), SeqNo(0)),
        };
        match ts_exec::delete_series(&mut self.store, &mut self.series, key) {
            Ok(series_seq) => {
                let deleted = string_seq.is_some() || series_seq.is_some();
                let seq = string_seq.max(series_seq).unwrap_or(self.store.last_seq());
                (OpResult::Int(i64::from(deleted)), seq)
            }
            Err(message) => (OpResult::Err(message), SeqNo(0)),
        }
    }

    /// Runs a time-series request (from [`encode_request`]) on this shard's store.
    pub(super) fn series_op(&mut self, request: &[u8]) -> (OpResult, SeqNo) {
        self.series_op_at(request, clock_ms())
    }

    /// [`Shard::series_op`] with `*` and a missing timestamp meaning `now_ms`.
    pub(super) fn series_op_at(&mut self, request: &[u8], now_ms: u64) -> (OpResult, SeqNo) {
        let (mut result, seq) = ts_exec::run(&mut self.store, &mut self.series, request, now_ms);
        if let OpResult::Stream(stream) = &mut result {
            stream.0.owner = Some(self.id.0);
        }
        (result, seq)
    }

    /// `result`, with a streamed range built whole (inside a transaction's batch).
    pub(super) fn stream_built(&self, result: OpResult) -> OpResult {
        let OpResult::Stream(stream) = result else {
            return result;
        };
        let mut stream = stream.0;
        let cache = stream
            .owner
            .filter(|&o| o == self.id.0)
            .map(|_| self.store.block_cache());
        let mut out = Vec::new();
        stream.header(&mut out);
        loop {
            match stream.fill(cache, &mut out) {
                Ok(true) => return OpResult::Encoded(out),
                Ok(false) => {}
                Err(e) => return OpResult::Err(format!("ERR storage error: {e}")),
            }
        }
    }
}

impl Shard {
    /// Answers the request with an error, and returns true, if one of its keys begins
    /// with the byte reserved for internal entries.
    pub(super) fn refused_reserved_key(
        &mut self,
        conn: (u32, u32),
        kind: CommandKind,
        args: &[&[u8]],
    ) -> bool {
        if !keys::has_reserved_key(args, kind.key_positions()) {
            return false;
        }
        let mut reply = Vec::new();
        crate::resp::error(&mut reply, keys::RESERVED_KEY_ERROR);
        self.push_ready(conn, Reply::Encoded(reply));
        true
    }
}

impl Shard {
    /// Checks a label-filtered request and sends it to every shard; their entries are
    /// merged in key order.
    fn series_all_command(
        &mut self,
        key: (u32, u32),
        name: &[u8],
        args: &[&[u8]],
    ) -> Result<(), Wait> {
        let mut words = Vec::with_capacity(args.len() + 1);
        words.push(name);
        words.extend_from_slice(args);
        let checked = crate::timeseries::multi::check(&words)
            .and_then(|()| crate::timeseries::multi::group_query(&words));
        let reply = match checked {
            Ok(Some(query)) => Reply::Grouped(Box::new(query), Vec::new()),
            Ok(None) => Reply::Entries(crate::timeseries::multi::Merge::of(&words), Vec::new()),
            Err(message) => {
                let mut reply = Vec::new();
                crate::resp::error(&mut reply, &message);
                self.push_ready(key, Reply::Encoded(reply));
                return Ok(());
            }
        };
        let request = encode_request(self.proto(key), &words);
        let ops = vec![
            Op::SeriesAll {
                request: &request[..]
            };
            self.shards
        ];
        self.scatter(key, reply, &ops)
    }

    /// Runs a label-filtered request on this shard's series.
    pub(super) fn series_all_op(&mut self, request: &[u8]) -> (OpResult, SeqNo) {
        match ts_exec::decode_request(request) {
            Some((proto, args)) if !args.is_empty() => {
                let (mut result, seq) =
                    crate::timeseries::multi::run_all(&self.store, &mut self.series, proto, &args);
                if let OpResult::Entries(entries) = &mut result {
                    for (_, _, stream) in entries.iter_mut() {
                        if let Some(stream) = stream {
                            stream.0.owner = Some(self.id.0);
                        }
                    }
                }
                (result, seq)
            }
            _ => (
                OpResult::Err("ERR internal error: bad request".into()),
                SeqNo(0),
            ),
        }
    }
}
