//! Goal: `WATCH` / `UNWATCH` give transactions Redis's optimistic locking: an `EXEC`
//! whose watched key was written (by anyone), deleted, created or expired since `WATCH`
//! runs nothing and replies null, and otherwise runs; `EXEC`, `DISCARD` and `UNWATCH` end
//! the watches; and the usual retry loop loses no update under concurrency.
//!
//! Method: one scripted session with a second connection writing in between, sent to a
//! real `redis-server` and to tskv with one shard and compared reply by reply; the same
//! retry loop (the `redis` crate's `transaction` helper, which is `WATCH`/`MULTI`/`EXEC`
//! with retries) from several threads against tskv with two shards, whose final count
//! must equal the number of committed increments; and watched keys on two shards, each
//! of whose changes aborts.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::redis_server::RedisServer;
use common::{RawConn, Reply, TestServer};

/// Sends one space-separated request and reads its reply.
fn request(conn: &mut RawConn, line: &str) -> Reply {
    let args: Vec<&str> = line.split(' ').collect();
    conn.request(&args)
}

/// `(connection, command)`: 0 is the transaction's connection, 1 another client.
const SCRIPT: &[(usize, &str)] = &[
    (0, "SET w 1"),
    (0, "WATCH w"),
    (0, "MULTI"),
    (0, "INCR w"),
    (0, "UNWATCH"),
    (0, "EXEC"),
    // Written by another client: aborted.
    (0, "WATCH w"),
    (1, "SET w 5"),
    (0, "MULTI"),
    (0, "INCR w"),
    (0, "EXEC"),
    (0, "GET w"),
    // The abort ended the watch: this one runs.
    (0, "MULTI"),
    (0, "INCR w"),
    (0, "EXEC"),
    // Written by this client itself, before MULTI: aborted too.
    (0, "WATCH w x"),
    (0, "SET x 1"),
    (0, "MULTI"),
    (0, "GET w"),
    (0, "EXEC"),
    // Deleted and created again: aborted.
    (0, "WATCH w"),
    (1, "DEL w"),
    (1, "SET w 9"),
    (0, "MULTI"),
    (0, "GET w"),
    (0, "EXEC"),
    // A missing key that gets created: aborted; one that stays missing: runs.
    (0, "WATCH nothing"),
    (1, "SET nothing 1"),
    (0, "MULTI"),
    (0, "GET nothing"),
    (0, "EXEC"),
    (0, "WATCH nothing2"),
    (1, "DEL nothing2"),
    (0, "MULTI"),
    (0, "GET nothing2"),
    (0, "EXEC"),
    // UNWATCH forgets; DISCARD forgets; WATCH inside MULTI is refused but does not abort.
    (0, "WATCH w"),
    (1, "SET w 10"),
    (0, "UNWATCH"),
    (0, "MULTI"),
    (0, "WATCH w"),
    (0, "GET w"),
    (0, "EXEC"),
    (0, "WATCH w"),
    (0, "MULTI"),
    (0, "DISCARD"),
    (1, "SET w 11"),
    (0, "MULTI"),
    (0, "GET w"),
    (0, "EXEC"),
    // A queued error aborts and forgets the watch.
    (0, "WATCH w"),
    (0, "MULTI"),
    (0, "NOSUCHCOMMAND"),
    (0, "EXEC"),
    (1, "SET w 12"),
    (0, "MULTI"),
    (0, "GET w"),
    (0, "EXEC"),
    (0, "EXEC"),
    (0, "DISCARD"),
];

#[test]
fn watch_aborts_and_runs_exactly_as_redis_does() {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "1"]);
    let mut theirs = [RawConn::to_port(redis.port), RawConn::to_port(redis.port)];
    let mut ours = [RawConn::to_port(tskv.port()), RawConn::to_port(tskv.port())];
    for (step, &(conn, line)) in SCRIPT.iter().enumerate() {
        let expected = request(&mut theirs[conn], line);
        let got = request(&mut ours[conn], line);
        assert_eq!(got, expected, "step {step}: {line}");
    }
}

#[test]
fn an_expiry_of_a_watched_key_aborts_the_transaction() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut raw = RawConn::to_port(tskv.port());
    assert_eq!(request(&mut raw, "SET e 1 PX 200"), Reply::ok());
    assert_eq!(request(&mut raw, "WATCH e"), Reply::ok());
    sleep(Duration::from_millis(400));
    assert_eq!(request(&mut raw, "MULTI"), Reply::ok());
    assert_eq!(request(&mut raw, "SET e 2"), Reply::Status("QUEUED".into()));
    assert_eq!(request(&mut raw, "EXEC"), Reply::NilArray);
    assert_eq!(request(&mut raw, "GET e"), Reply::Nil);
}

#[test]
fn concurrent_watch_retry_loops_lose_no_update() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let client = tskv.client();
            std::thread::spawn(move || {
                let mut con = client.get_connection().unwrap();
                for _ in 0..50 {
                    let _: () = redis::transaction(&mut con, &["counter"], |con, pipe| {
                        let current: Option<i64> = redis::cmd("GET").arg("counter").query(con)?;
                        pipe.set("counter", current.unwrap_or(0) + 1)
                            .ignore()
                            .query(con)
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut con = tskv.conn();
    let count: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    assert_eq!(count, 200, "every committed read-modify-write counted once");
}

#[test]
fn watched_keys_on_two_shards_abort_when_either_changes() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut raw = RawConn::to_port(tskv.port());
    let mut other = RawConn::to_port(tskv.port());
    let on = |shard: usize| {
        (0..)
            .map(|i| format!("k{i}"))
            .find(|k| tskv::datadir::shard_of(k.as_bytes(), 2).0 == shard)
            .unwrap()
    };
    let (zero, one) = (on(0), on(1));
    for changed in [&zero, &one] {
        assert_eq!(
            request(&mut raw, &format!("WATCH {zero} {one}")),
            Reply::ok()
        );
        request(&mut other, &format!("SET {changed} by-other"));
        request(&mut raw, "MULTI");
        request(&mut raw, "SET target v");
        assert_eq!(
            request(&mut raw, "EXEC"),
            Reply::NilArray,
            "{changed} changed"
        );
    }
    assert_eq!(
        request(&mut raw, &format!("WATCH {zero} {one}")),
        Reply::ok()
    );
    request(&mut raw, "MULTI");
    request(&mut raw, "SET target v");
    assert_eq!(
        request(&mut raw, "EXEC"),
        Reply::Array(vec![Reply::ok()]),
        "nothing watched changed"
    );
}
