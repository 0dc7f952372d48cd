//! Goal: `SCAN` keeps Redis's guarantee across shards while others write and while
//! memtables flush and SSTables compact: every key present for the whole iteration comes
//! back at least once, and cursor 0 ends it; `MATCH`, `COUNT` and `TYPE` filter as in
//! Redis; `KEYS` and `TYPE` answer as Redis does; bad cursors and options get Redis's errors.
//!
//! Method: the `redis` crate against `--shards 2 --memtable-bytes 65536`. Load 100,000
//! keys, then iterate with `SCAN cursor COUNT 500` on one connection while a second thread
//! overwrites half of those keys, deletes and re-creates keys of another prefix and adds
//! new ones, so flushes and compactions happen during the iteration. Compare the set
//! returned with the keys that were present throughout.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::TestServer;

const STABLE_KEYS: usize = 100_000;

fn scan_all(conn: &mut redis::Connection, options: &[&str]) -> (Vec<String>, usize) {
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    let mut calls = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg(options)
            .query(conn)
            .unwrap();
        calls += 1;
        keys.extend(batch);
        if next == 0 {
            return (keys, calls);
        }
        cursor = next;
    }
}

#[test]
fn scan_returns_every_key_present_throughout_while_others_write() {
    let server = TestServer::start(&["--shards", "2", "--memtable-bytes", "65536"]);
    let mut conn = server.conn();
    for chunk in (0..STABLE_KEYS).collect::<Vec<_>>().chunks(5000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            pipe.cmd("SET")
                .arg(format!("stable:{i:07}"))
                .arg("v")
                .ignore();
        }
        let () = pipe.query(&mut conn).unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let mut conn = server.conn();
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut pipe = redis::pipe();
                for j in 0..500u64 {
                    let i = (round * 500 + j) % STABLE_KEYS as u64;
                    // Overwrites of stable keys (present throughout), churn of others.
                    pipe.cmd("SET")
                        .arg(format!("stable:{i:07}"))
                        .arg(format!("v{round}"))
                        .ignore();
                    pipe.cmd("SET")
                        .arg(format!("new:{round}:{j}"))
                        .arg("n")
                        .ignore();
                    pipe.cmd("DEL")
                        .arg(format!("new:{}:{j}", round.saturating_sub(1)))
                        .ignore();
                }
                let () = pipe.query(&mut conn).unwrap();
                round += 1;
            }
            round
        })
    };
    let (keys, calls) = scan_all(&mut conn, &["COUNT", "500"]);
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap();

    let seen: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let missing: Vec<usize> = (0..STABLE_KEYS)
        .filter(|i| !seen.contains(format!("stable:{i:07}").as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} stable keys never returned, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        calls > STABLE_KEYS / 500,
        "COUNT bounds each step ({calls} calls)"
    );
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut conn)
        .unwrap();
    eprintln!(
        "{calls} SCAN calls, {rounds} writer rounds meanwhile; {}",
        info.replace("\r\n", " ")
    );
    assert!(rounds > 0, "the writer ran during the iteration");
}

#[test]
fn match_count_type_keys_and_type() {
    let server = TestServer::start(&["--shards", "3"]);
    let mut conn = server.conn();
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("SET").arg(format!("user:{i}")).arg("u").ignore();
        pipe.cmd("SET").arg(format!("item:{i}")).arg("i").ignore();
    }
    let () = pipe.query(&mut conn).unwrap();

    let (users, _) = scan_all(&mut conn, &["MATCH", "user:1*"]);
    let want: HashSet<String> = (0..1000)
        .map(|i| format!("user:{i}"))
        .filter(|k| k.starts_with("user:1"))
        .collect();
    assert_eq!(users.iter().cloned().collect::<HashSet<_>>(), want);
    assert_eq!(
        users.len(),
        want.len(),
        "no duplicates without concurrent writes"
    );

    let (_, calls_small) = scan_all(&mut conn, &["COUNT", "10"]);
    let (all, calls_big) = scan_all(&mut conn, &["COUNT", "1000"]);
    assert_eq!(all.len(), 2000);
    assert!(
        calls_big < calls_small / 10,
        "COUNT 1000: {calls_big} calls, COUNT 10: {calls_small}"
    );

    let (strings, _) = scan_all(&mut conn, &["TYPE", "string", "COUNT", "300"]);
    assert_eq!(strings.len(), 2000);
    let (hashes, _) = scan_all(&mut conn, &["TYPE", "hash"]);
    assert!(hashes.is_empty());

    let mut keys: Vec<String> = redis::cmd("KEYS").arg("item:99?").query(&mut conn).unwrap();
    keys.sort();
    assert_eq!(
        keys,
        (990..1000).map(|i| format!("item:{i}")).collect::<Vec<_>>()
    );
    let none: Vec<String> = redis::cmd("KEYS").arg("nothing*").query(&mut conn).unwrap();
    assert!(none.is_empty());

    let t: String = redis::cmd("TYPE").arg("user:5").query(&mut conn).unwrap();
    assert_eq!(t, "string");
    let t: String = redis::cmd("TYPE").arg("missing").query(&mut conn).unwrap();
    assert_eq!(t, "none");

    let mut raw = server.raw();
    for (args, want) in [
        (&["SCAN", "abc"][..], "ERR invalid cursor"),
        (&["SCAN", "0", "COUNT", "0"], "ERR syntax error"),
        (
            &["SCAN", "0", "COUNT", "x"],
            "ERR value is not an integer or out of range",
        ),
        (&["SCAN", "0", "MATCH"], "ERR syntax error"),
        (&["SCAN", "0", "BOGUS", "1"], "ERR syntax error"),
        (&["SCAN", "18446744073709551615"], "ERR invalid cursor"),
        (&["SCAN", "65536"], "ERR invalid cursor"),
        (
            &["KEYS"],
            "ERR wrong number of arguments for 'keys' command",
        ),
    ] {
        assert_eq!(raw.request(args), common::Reply::err(want), "{args:?}");
    }
}
