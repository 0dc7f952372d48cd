//! Goal: a `KEYS` reply of any size is sent whole and exactly, in bounded memory: every key
//! once, the array's count equal to the keys that follow even while other clients write,
//! delete and `SAVE`, under an output limit far below the reply's size, without a blocking
//! read on the shard's loop; a client that does not read holds about one batch, and the
//! shard's other clients are served meanwhile.
//!
//! Method: the `redis` crate and raw sockets against `--shards 2` servers with small
//! memtables and block caches (so the keys live in SSTables whose blocks are cold), loaded
//! with 200,000 keys; `KEYS` with `*` and `MATCH`-style patterns in RESP2 and RESP3, under
//! `--client-output-bytes-max 65536`; a raw client that sends `KEYS *` and stops reading,
//! watched through `CLIENT LIST`'s `omem`; a writer thread churning keys and calling
//! `SAVE` while `KEYS` runs repeatedly; and 300,000 keys all in memory, whose count takes
//! several turns of the loop.

mod common;

use std::collections::HashSet;
use std::io::{BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{encode, read_reply, Reply, TestServer};

const KEYS_LOADED: usize = 200_000;

fn key(i: usize, pad: usize) -> String {
    format!("key:{i:07}:{}", "x".repeat(pad))
}

/// Sets `count` keys named by `key(i, pad)`, pipelined.
fn load(conn: &mut redis::Connection, count: usize, pad: usize) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(5000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            pipe.cmd("SET").arg(key(i, pad)).arg("v").ignore();
        }
        let () = pipe.query(conn).unwrap();
    }
}

fn info_number(conn: &mut redis::Connection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("persistence").query(conn).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO has {field}"))
        .trim()
        .parse()
        .unwrap()
}

fn small_server(extra: &[&str]) -> TestServer {
    let mut args = vec![
        "--shards",
        "2",
        "--memtable-bytes",
        "65536",
        "--block-cache-bytes",
        "65536",
    ];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

#[test]
fn keys_returns_every_key_once_under_a_small_output_limit_without_blocking_reads() {
    let server = small_server(&["--client-output-bytes-max", "65536"]);
    let mut conn = server.conn();
    load(&mut conn, KEYS_LOADED, 0);
    let () = redis::cmd("SAVE").query(&mut conn).unwrap();
    let blocking_before = info_number(&mut conn, "block_reads_blocking");

    let listed: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert_eq!(listed.len(), KEYS_LOADED, "KEYS * lists every key once");
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), KEYS_LOADED, "no key twice");
    assert!((0..KEYS_LOADED).all(|i| unique.contains(&key(i, 0))));

    // A pattern matching many keys streams too; one matching few is built at once.
    let many: HashSet<String> = redis::cmd("KEYS")
        .arg("key:01*")
        .query::<Vec<String>>(&mut conn)
        .unwrap()
        .into_iter()
        .collect();
    let expected: HashSet<String> = (100_000..KEYS_LOADED).map(|i| key(i, 0)).collect();
    assert_eq!(many, expected, "KEYS key:01*");
    let few: Vec<String> = redis::cmd("KEYS")
        .arg("key:000012?:")
        .query(&mut conn)
        .unwrap();
    assert_eq!(few.len(), 10, "KEYS key:000012?: {few:?}");
    let none: Vec<String> = redis::cmd("KEYS").arg("nothing*").query(&mut conn).unwrap();
    assert!(none.is_empty());

    // The connection is still in step: the next reply is its own.
    let pong: String = redis::cmd("PING").query(&mut conn).unwrap();
    assert_eq!(pong, "PONG");
    let blocking = info_number(&mut conn, "block_reads_blocking") - blocking_before;
    assert_eq!(blocking, 0, "KEYS read no block on the shard's loop");
}

#[test]
fn keys_in_resp3_streams_the_same_reply() {
    let server = small_server(&["--client-output-bytes-max", "65536"]);
    let mut conn = server.conn();
    load(&mut conn, KEYS_LOADED, 0);
    let client = redis::Client::open(format!("redis://{}/?protocol=resp3", server.addr())).unwrap();
    let mut resp3 = client.get_connection().unwrap();
    let proto: redis::Value = redis::cmd("HELLO").arg("3").query(&mut resp3).unwrap();
    assert!(matches!(proto, redis::Value::Map(_)), "RESP3: {proto:?}");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut resp3).unwrap();
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!((keys.len(), unique.len()), (KEYS_LOADED, KEYS_LOADED));
    let pong: String = redis::cmd("PING").query(&mut resp3).unwrap();
    assert_eq!(pong, "PONG");
}

/// `omem` of the client whose last command is `cmd`, from `CLIENT LIST`.
fn omem_of(conn: &mut redis::Connection, cmd: &str) -> Option<u64> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(conn).unwrap();
    list.lines()
        .find(|line| line.contains(&format!(" cmd={cmd} ")))
        .and_then(|line| {
            line.split(' ')
                .find_map(|field| field.strip_prefix("omem="))
                .map(|n| n.parse().unwrap())
        })
}

#[test]
fn a_keys_client_that_does_not_read_holds_about_one_batch_while_others_are_served() {
    // Long keys: the reply (about 20 MB) is far more than the sockets' buffers take.
    let pad = 80;
    let server = small_server(&[]);
    let mut conn = server.conn();
    load(&mut conn, KEYS_LOADED, pad);
    let reply_bytes = KEYS_LOADED * (key(0, pad).len() + 8);

    let mut stalled = std::net::TcpStream::connect(server.addr()).unwrap();
    stalled.write_all(&encode(&["KEYS", "*"])).unwrap();
    // Wait until the server has filled what the socket takes and stopped.
    let mut last = None;
    let mut polls = 0;
    let omem = loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = omem_of(&mut conn, "keys");
        if now.is_some_and(|n| n > 0) && now == last {
            break now.unwrap();
        }
        polls += 1;
        assert!(
            polls < 150,
            "the KEYS reply never filled its socket: omem {now:?}"
        );
        last = now;
    };
    eprintln!("KEYS reply of about {reply_bytes} bytes, client not reading: omem {omem}");
    assert!(
        omem <= 1 << 20,
        "a client that stops reading holds about one batch, not the reply: omem {omem}"
    );
    // The shard's other clients are served, writes included.
    let () = redis::cmd("SET")
        .arg("other")
        .arg("1")
        .query(&mut conn)
        .unwrap();
    let got: String = redis::cmd("GET").arg("other").query(&mut conn).unwrap();
    assert_eq!(got, "1");

    // Once read, the reply is whole: the count and the keys agree.
    stalled.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let mut reader = BufReader::new(stalled);
    let Some(Reply::Array(keys)) = read_reply(&mut reader).unwrap() else {
        panic!("KEYS replies with an array");
    };
    assert_eq!(keys.len(), KEYS_LOADED);
}

#[test]
fn keys_count_equals_the_keys_sent_while_others_write_delete_and_save() {
    let server = small_server(&["--client-output-bytes-max", "65536"]);
    let mut conn = server.conn();
    let stable: usize = 100_000;
    load(&mut conn, stable, 0);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let mut conn = server.conn();
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut pipe = redis::pipe();
                for j in 0..500u64 {
                    pipe.cmd("SET")
                        .arg(format!("new:{round}:{j}"))
                        .arg("n")
                        .ignore();
                    pipe.cmd("DEL")
                        .arg(format!("new:{}:{j}", round.saturating_sub(1)))
                        .ignore();
                    pipe.cmd("SET")
                        .arg(format!("key:{:07}:", (round * 500 + j) % stable as u64))
                        .arg(format!("v{round}"))
                        .ignore();
                }
                if round.is_multiple_of(4) {
                    pipe.cmd("SAVE").ignore();
                }
                let () = pipe.query(&mut conn).unwrap();
                round += 1;
            }
            round
        })
    };
    for _ in 0..5 {
        // The crate reads exactly as many keys as the header announced: a count that
        // disagreed with the keys would fail this query or the next.
        let listed: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
        let unique: HashSet<&String> = listed.iter().collect();
        assert_eq!(unique.len(), listed.len(), "no key twice");
        let missing = (0..stable)
            .filter(|&i| !unique.contains(&key(i, 0)))
            .count();
        assert_eq!(missing, 0, "every key present throughout is listed");
        assert!(listed
            .iter()
            .all(|k| k.starts_with("key:") || k.starts_with("new:")));
        let pong: String = redis::cmd("PING").query(&mut conn).unwrap();
        assert_eq!(pong, "PONG");
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 0, "the writer ran during the KEYS calls");
}

#[test]
fn keys_over_keys_all_in_memory_walks_in_turns_and_lists_every_key_once() {
    // Default memtable and cache: the keys stay in memory, so no walk stops for a block
    // read; each shard's count (about 150,000 entries) takes more than one turn of the
    // loop (100,000 entries each), for the local shard's part and the other's.
    let server = TestServer::start(&["--shards", "2"]);
    let mut conn = server.conn();
    let count = 300_000;
    load(&mut conn, count, 0);
    let listed: Vec<String> = redis::cmd("KEYS").arg("key:*").query(&mut conn).unwrap();
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!((listed.len(), unique.len()), (count, count));
    let mut other = server.conn();
    let pong: String = redis::cmd("PING").query(&mut other).unwrap();
    assert_eq!(pong, "PONG");
}
