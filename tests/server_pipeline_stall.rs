//! Goal: a client that pipelines a batch and then waits for its replies (without sending
//! another byte) gets every reply. Regression for the stall where the shard's per-iteration
//! read budget ran out on a read that drained the socket: the requests of that last read
//! stayed in the read buffer, and edge-triggered epoll never reported them again, so the
//! client waited until it sent something more.
//!
//! Method: drive the conditions directly rather than hoping for a timing.
//! - `--conn-reads-per-iteration-max 1` makes every read the last of its budget, so any
//!   read that drains the socket hits the old bug: one pipelined batch is enough.
//! - A request larger than one read (a 1 MiB value) under the same budget.
//! - A tiny memtable so memtable flushes overlap and connections are parked by write stalls
//!   and released while they hold buffered requests.
//! - The issue's reproduction at the default budget: 100,000 shuffled SETs in batches of
//!   4,000 on one connection, `--memtable-bytes 1048576`.
//!
//! Each batch is written whole by a writer thread while the test reads its replies with a
//! generous read timeout; the test fails if the timeout expires. Nothing is timed.

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::{encode, test_seed, Reply, TestServer};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// How long the test waits for one reply before it calls the connection stalled. Long
/// enough for a debug build on a loaded machine; the bug made the wait unbounded.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends `requests` as one pipelined write (from a second thread, so a large batch cannot
/// deadlock on full socket buffers) and returns the replies read for them.
fn pipeline(raw: &mut common::RawConn, requests: &[Vec<Vec<u8>>]) -> Vec<Reply> {
    let mut bytes = Vec::new();
    for request in requests {
        bytes.extend_from_slice(&encode(request));
    }
    let mut writer = raw.writer_clone();
    writer
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("read timeout");
    thread::scope(|scope| {
        scope.spawn(move || writer.write_all(&bytes).expect("write batch"));
        (0..requests.len())
            .map(|i| match raw.try_reply() {
                Ok(Some(reply)) => reply,
                Ok(None) => panic!("connection closed after {i} of {} replies", requests.len()),
                Err(e) => panic!(
                    "stalled: {i} of {} replies arrived, then none within {REPLY_TIMEOUT:?} ({e})",
                    requests.len()
                ),
            })
            .collect()
    })
}

fn set(key: &str, value: &[u8]) -> Vec<Vec<u8>> {
    vec![b"SET".to_vec(), key.as_bytes().to_vec(), value.to_vec()]
}

fn get(key: &str) -> Vec<Vec<u8>> {
    vec![b"GET".to_vec(), key.as_bytes().to_vec()]
}

#[test]
fn batch_drained_by_the_last_read_of_a_budget_is_answered() {
    let server = TestServer::start(&["--shards", "1", "--conn-reads-per-iteration-max", "1"]);
    let mut raw = server.raw();
    for round in 0..20 {
        let requests: Vec<_> = (0..50)
            .map(|i| set(&format!("k:{round}:{i}"), b"v"))
            .collect();
        let replies = pipeline(&mut raw, &requests);
        assert!(replies.iter().all(|r| *r == Reply::ok()), "{replies:?}");
    }
    assert_eq!(raw.request(&["GET", "k:19:49"]), Reply::bulk("v"));
}

#[test]
fn request_larger_than_one_read_is_answered() {
    let server = TestServer::start(&["--shards", "1", "--conn-reads-per-iteration-max", "1"]);
    let mut raw = server.raw();
    let value = vec![b'x'; 1 << 20];
    let requests = vec![set("big", &value), get("big"), set("small", b"s")];
    let replies = pipeline(&mut raw, &requests);
    assert_eq!(replies[0], Reply::ok());
    assert!(
        replies[1] == Reply::Bulk(value),
        "GET big returned another value"
    );
    assert_eq!(replies[2], Reply::ok());
}

#[test]
fn batches_through_overlapping_memtable_flushes_are_answered() {
    // 64 KiB memtables fill in a few hundred SETs, so each 2,000-request batch freezes
    // several and parks the connection on write stalls while earlier flushes run.
    let server = TestServer::start(&[
        "--shards",
        "1",
        "--memtable-bytes",
        "65536",
        "--conn-reads-per-iteration-max",
        "2",
    ]);
    let mut raw = server.raw();
    let value = vec![b'v'; 100];
    for round in 0..10 {
        let requests: Vec<_> = (0..2000)
            .map(|i| set(&format!("key:{round}:{i:012}"), &value))
            .collect();
        let replies = pipeline(&mut raw, &requests);
        let bad = replies.iter().filter(|r| **r != Reply::ok()).count();
        assert_eq!(bad, 0, "round {round}: {bad} replies were not +OK");
    }
    assert_eq!(
        raw.request(&["GET", "key:9:000000001999"]),
        Reply::Bulk(value)
    );
}

#[test]
fn issue_reproduction_shuffled_sets_in_batches_of_4000() {
    let server = TestServer::start(&["--shards", "1", "--memtable-bytes", "1048576"]);
    let mut raw = server.raw();
    let mut keys: Vec<String> = (0..100_000).map(|i| format!("key:{i:012}")).collect();
    keys.shuffle(&mut StdRng::seed_from_u64(test_seed()));
    let value = vec![b'v'; 100];
    for (batch_index, batch) in keys.chunks(4000).enumerate() {
        let requests: Vec<_> = batch.iter().map(|k| set(k, &value)).collect();
        let replies = pipeline(&mut raw, &requests);
        let bad = replies.iter().filter(|r| **r != Reply::ok()).count();
        assert_eq!(bad, 0, "batch {batch_index}: {bad} replies were not +OK");
    }
    assert_eq!(raw.request(&["DBSIZE"]), Reply::Int(100_000));
}
