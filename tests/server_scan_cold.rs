//! Goal: `SCAN`, `KEYS` and `RANDOMKEY` over a data set far larger than the block cache
//! read their SSTable blocks through the shard's ring and never with a blocking read on
//! the shard's loop; they still return every key; while one waits for its blocks, the
//! shard serves other connections, and the waiting connection's later requests wait
//! behind it (a write pipelined after a `KEYS` is not in that `KEYS`'s reply).
//!
//! Method: `--memtable-bytes 65536 --block-cache-bytes 65536`, 20,000 string keys of 200
//! bytes and 50 series (about 4 MB of tables once `SAVE` has flushed every memtable), so
//! nearly every block is cold. Compare what a full `SCAN`, `KEYS *` and `RANDOMKEY` return
//! with the keys written, and read `INFO persistence` before and after: `block_reads_async`
//! (ring reads) must grow and `block_reads_blocking` (blocking reads on a loop) must not.
//! On one shard, send `KEYS *` on one connection and `PING` on another: the `PONG` must
//! arrive while the `KEYS` reply has not (a `KEYS` that blocked the loop would answer
//! first).

mod common;

use std::collections::HashSet;
use std::io::Write;

use common::{encode, Reply, TestServer};

const STRING_KEYS: usize = 20_000;
const SERIES_KEYS: usize = 50;

fn key(i: usize) -> String {
    format!("cold:{i:06}")
}

/// Starts a server with a tiny block cache and writes the keys; returns it with the set.
fn loaded_server(shards: &str) -> (TestServer, HashSet<String>) {
    let server = TestServer::start(&[
        "--shards",
        shards,
        "--memtable-bytes",
        "65536",
        "--block-cache-bytes",
        "65536",
    ]);
    let mut raw = server.raw();
    let mut load = Vec::new();
    let mut written = HashSet::new();
    for i in 0..STRING_KEYS {
        load.extend(encode(&["SET", &key(i), &format!("{i:06}-").repeat(28)]));
        written.insert(key(i));
    }
    for i in 0..SERIES_KEYS {
        load.extend(encode(&["TS.CREATE", &format!("series:{i:03}")]));
        written.insert(format!("series:{i:03}"));
    }
    load.extend(encode(&["SAVE"]));
    let mut writer = raw.writer_clone();
    let sender = std::thread::spawn(move || writer.write_all(&load).unwrap());
    for _ in 0..=STRING_KEYS + SERIES_KEYS {
        assert_eq!(raw.reply(), Reply::ok());
    }
    sender.join().unwrap();
    (server, written)
}

fn strings(reply: Reply) -> Vec<String> {
    let Reply::Array(items) = reply else {
        panic!("an array: {reply:?}");
    };
    items
        .into_iter()
        .map(|item| match item {
            Reply::Bulk(b) => String::from_utf8(b).unwrap(),
            other => panic!("a bulk string: {other:?}"),
        })
        .collect()
}

#[test]
fn scan_keys_and_randomkey_on_cold_blocks_read_through_the_ring_only() {
    let (server, written) = loaded_server("2");
    let mut raw = server.raw();
    let async_before = raw.persistence_number("block_reads_async");
    let blocking_before = raw.persistence_number("block_reads_blocking");

    let mut scanned = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let Reply::Array(mut parts) = raw.request(&["SCAN", &cursor, "COUNT", "100"]) else {
            panic!("SCAN replies with an array");
        };
        let keys = strings(parts.pop().unwrap());
        scanned.extend(keys);
        let Some(Reply::Bulk(next)) = parts.pop() else {
            panic!("SCAN's cursor is a bulk string");
        };
        cursor = String::from_utf8(next).unwrap();
        if cursor == "0" {
            break;
        }
    }
    let scanned_set: HashSet<String> = scanned.iter().cloned().collect();
    assert_eq!(scanned_set, written, "SCAN returns every key written");

    let listed: HashSet<String> = strings(raw.request(&["KEYS", "*"])).into_iter().collect();
    assert_eq!(listed, written, "KEYS returns every key written");
    let matched = strings(raw.request(&["KEYS", "cold:01999*"]));
    assert_eq!(matched.len(), 10, "KEYS with a pattern: {matched:?}");

    for _ in 0..20 {
        let Reply::Bulk(picked) = raw.request(&["RANDOMKEY"]) else {
            panic!("RANDOMKEY names a key");
        };
        let picked = String::from_utf8(picked).unwrap();
        assert!(written.contains(&picked), "RANDOMKEY gave {picked:?}");
    }

    let ring_reads = raw.persistence_number("block_reads_async") - async_before;
    let blocking_reads = raw.persistence_number("block_reads_blocking") - blocking_before;
    eprintln!("ring reads {ring_reads}, blocking reads {blocking_reads}");
    assert!(
        ring_reads > 500,
        "the walks read their blocks through the ring ({ring_reads} reads)"
    );
    assert_eq!(blocking_reads, 0, "no walk read a block on the loop");
}

#[test]
fn a_waiting_keys_lets_other_connections_through_and_holds_its_own_later_requests() {
    let (server, written) = loaded_server("1");
    let mut waiting = server.raw();
    let mut other = server.raw();
    let fresh = "cold:000000-new";
    let mut pipeline = encode(&["KEYS", "*"]);
    pipeline.extend(encode(&["SET", fresh, "v"]));
    pipeline.extend(encode(&["KEYS", "cold:000000*"]));
    waiting.send(&pipeline).unwrap();
    assert_eq!(other.request(&["PING"]), Reply::Status("PONG".into()));
    // Nothing of the KEYS reply may have arrived yet: its walk is still reading blocks.
    let probe = waiting.writer_clone();
    probe.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let pending = probe.peek(&mut byte);
    probe.set_nonblocking(false).unwrap();
    assert!(
        matches!(&pending, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "PONG came after the KEYS reply started ({pending:?}): the KEYS held the loop"
    );

    let all: HashSet<String> = strings(waiting.reply()).into_iter().collect();
    assert_eq!(
        all, written,
        "the first KEYS does not see the SET sent after it"
    );
    assert_eq!(waiting.reply(), Reply::ok());
    let mut after = strings(waiting.reply());
    after.sort();
    assert_eq!(after, vec![key(0), fresh.to_string()]);
}
