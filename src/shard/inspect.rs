//! The server commands that tools send: `TIME`, `WAIT`, `MEMORY` and `OBJECT`
//! ([`ServerCommand`]), with Redis 7.0's reply shapes.
//!
//! `MEMORY USAGE` and `OBJECT` run on the shard that owns the key ([`Op::Inspect`]), and
//! wait, like a `GET`, until the version they read is durable. What they answer:
//! - **`MEMORY USAGE`** of a string is what the memtable charges for it: key + value +
//!   [`ENTRY_OVERHEAD_BYTES`] (the same count that decides when a memtable is flushed); of
//!   a series, `TS.INFO`'s `memoryUsage` (its metadata, chunks and unsealed samples) plus
//!   its key. Not Redis's figure, which counts its own allocations.
//! - **`OBJECT ENCODING`** of a string is what Redis would say had the value been stored
//!   with `SET` (`int`, `embstr`, `raw`); tskv stores bytes, so a value grown by `APPEND`
//!   says what `SET` of the same bytes would, where Redis says `raw`. A series is `raw`,
//!   as Redis reports a module's value.
//! - **`OBJECT REFCOUNT`** is Redis's (shared integers 0–9999 are `2147483647`), **`OBJECT
//!   FREQ`** Redis's error under its default `noeviction` policy, and **`OBJECT
//!   IDLETIME`** 0: tskv keeps no access times.
//!
//! [`ENTRY_OVERHEAD_BYTES`]: crate::memtable::ENTRY_OVERHEAD_BYTES

use super::conn::Reply;
use super::exec::{storage_error, Wait};
use super::mesh::{Op, OpResult};
use super::Shard;
use crate::base::SeqNo;
use crate::command::server::{string_encoding, string_refcount, FREQ_WITHOUT_LFU};
use crate::command::{KeyQuery, ServerCommand};
use crate::resp::{self, resp3};

/// `MEMORY MALLOC-STATS`' reply, Redis's text when it is not built with jemalloc.
const MALLOC_STATS_UNSUPPORTED: &[u8] = b"Stats not supported for the current allocator";

/// `MEMORY DOCTOR`'s report: tskv has nothing of Redis's allocator diagnosis.
const DOCTOR_REPORT: &[u8] = b"tskv does not diagnose its allocator: see INFO memory for the process's resident set and INFO persistence for memtables, SSTables and the block cache.";

impl Shard {
    /// Runs `TIME`, `WAIT`, `MEMORY ...`, `OBJECT ...` or `SLOWLOG ...`.
    pub(super) fn server_command(
        &mut self,
        key: (u32, u32),
        command: ServerCommand<'_>,
    ) -> Result<(), Wait> {
        let proto = self.proto(key);
        let mut reply = Vec::new();
        match command {
            ServerCommand::Key { key: k, query } => {
                return self.scatter(key, Reply::Single(None), &[Op::Inspect { key: k, query }]);
            }
            ServerCommand::Time => reply = time_reply(),
            ServerCommand::Wait => resp::integer(&mut reply, 0),
            ServerCommand::MemoryDoctor => {
                resp3::verbatim(&mut reply, proto, b"txt", DOCTOR_REPORT);
            }
            ServerCommand::MemoryMallocStats => resp::bulk(&mut reply, MALLOC_STATS_UNSUPPORTED),
            ServerCommand::MemoryPurge => reply.extend_from_slice(b"+OK\r\n"),
            ServerCommand::MemoryStats => {
                let (rss, peak) = super::info::resident_bytes();
                resp3::map_header(&mut reply, proto, 2);
                for (name, bytes) in [("peak.allocated", peak), ("total.allocated", rss)] {
                    resp::bulk(&mut reply, name.as_bytes());
                    resp::integer(&mut reply, bytes as i64);
                }
            }
            ServerCommand::Slowlog(sub) => {
                super::slowlog::reply(&mut reply, sub, &self.shared.metrics);
            }
            ServerCommand::Help(lines) => {
                resp::array_header(&mut reply, lines.len());
                for line in lines {
                    resp::simple(&mut reply, line);
                }
            }
        }
        self.push_ready(key, Reply::Encoded(reply));
        Ok(())
    }

    /// Answers `query` about `key` on this shard (see the module doc), with the sequence
    /// number the reply waits for.
    pub(super) fn inspect_op(&mut self, key: &[u8], query: KeyQuery) -> (OpResult, SeqNo) {
        let found = match self.store.get(key) {
            Ok(found) => found,
            Err(e) => return (OpResult::Err(storage_error(&e)), SeqNo(0)),
        };
        if let Some(found) = &found {
            if let Some(value) = &found.value {
                let result = match query {
                    KeyQuery::Encoding => {
                        OpResult::Value(Some(string_encoding(value).as_bytes().to_vec()))
                    }
                    KeyQuery::RefCount => OpResult::Int(string_refcount(value)),
                    KeyQuery::MemoryUsage => OpResult::Int(
                        (key.len() + value.len() + crate::memtable::ENTRY_OVERHEAD_BYTES) as i64,
                    ),
                    KeyQuery::Freq | KeyQuery::IdleTime => keyless_answer(query),
                };
                return (result, found.seq);
            }
        }
        let (is_series, gate) = match self.series_on_miss(key, found) {
            Ok(answer) => answer,
            Err(e) => return (OpResult::Err(storage_error(&e)), SeqNo(0)),
        };
        if !is_series {
            return (OpResult::Value(None), gate);
        }
        let result = match query {
            KeyQuery::Encoding => OpResult::Value(Some(b"raw".to_vec())),
            KeyQuery::RefCount => OpResult::Int(1),
            KeyQuery::MemoryUsage => match self.series_bytes(key) {
                Ok(bytes) => OpResult::Int((key.len() as u64 + bytes) as i64),
                Err(message) => OpResult::Err(message),
            },
            KeyQuery::Freq | KeyQuery::IdleTime => keyless_answer(query),
        };
        (result, gate)
    }

    /// The bytes of series `key`'s entries, as `TS.INFO` reports in `memoryUsage`.
    fn series_bytes(&mut self, key: &[u8]) -> Result<u64, String> {
        use crate::timeseries::series;
        let state = series::load(&self.store, &mut self.series, key)
            .map_err(|e| format!("ERR {e}"))?
            .ok_or("ERR internal error: the series vanished")?;
        let stats =
            crate::timeseries::info::stats(&self.store, state).map_err(|e| format!("ERR {e}"))?;
        Ok(stats.memory_bytes)
    }
}

/// `TIME`'s reply: the server's clock as `[unix seconds, microseconds]`, two bulk strings.
pub(super) fn time_reply() -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut reply = Vec::new();
    resp::array_header(&mut reply, 2);
    resp::bulk(&mut reply, now.as_secs().to_string().as_bytes());
    resp::bulk(&mut reply, now.subsec_micros().to_string().as_bytes());
    reply
}

/// The answers that do not depend on the value: `FREQ` (Redis's error without an LFU
/// policy) and `IDLETIME` (0: no access times are kept).
fn keyless_answer(query: KeyQuery) -> OpResult {
    match query {
        KeyQuery::Freq => OpResult::Err(FREQ_WITHOUT_LFU.into()),
        _ => OpResult::Int(0),
    }
}
