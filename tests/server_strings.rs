//! Goal: the string and counter commands (`INCR DECR INCRBY DECRBY INCRBYFLOAT APPEND
//! STRLEN GETRANGE SETRANGE GETSET GETDEL SETNX MSETNX`, `UNLINK`, `TOUCH`, `RANDOMKEY`)
//! answer as Redis 7.0 does, are atomic read-modify-writes, are durable once
//! acknowledged, and read cold keys through the shard's ring like `GET`.
//!
//! Method: a seeded random sequence of these commands on a few keys, sent to a real
//! `redis-server` and to tskv (two shards) over RESP2 and compared reply by reply (type
//! and bytes; server_resp3.rs compares the RESP3 shapes);
//! fixed `INCRBYFLOAT` sums; concurrent `INCR`s from several connections; SIGKILL after
//! acknowledged counter updates, then a restart; a pipelined mix on cold keys (a small
//! memtable and block cache, a restart to empty the cache) compared with a model while
//! `INFO` shows block reads through the ring; `MSETNX` on one shard and across two.

mod common;

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::TcpStream;

use common::redis_server::RedisServer;
use common::{encode, read_reply, test_seed, Reply, TestServer, IO_TIMEOUT};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// A raw connection whose replies are compared as bytes (re-encoded by the harness).
struct Raw {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn connect(port: u16) -> Self {
        let writer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        writer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let reader = BufReader::new(writer.try_clone().unwrap());
        Raw { writer, reader }
    }

    fn request(&mut self, args: &[String]) -> Reply {
        self.writer.write_all(&encode(args)).unwrap();
        read_reply(&mut self.reader).unwrap().expect("a reply")
    }
}

fn random_command(rng: &mut StdRng) -> Vec<String> {
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let key = keys.choose(rng).unwrap().to_string();
    let n = rng.gen_range(-20i64..=20).to_string();
    let m = rng.gen_range(-20i64..=20).to_string();
    let word = ["", "x", "12", "-3", "abc", "007", "99999999999999999999"]
        .choose(rng)
        .unwrap()
        .to_string();
    let offset = rng.gen_range(0..8).to_string();
    let words: Vec<&str> = match rng.gen_range(0..19) {
        0 => vec!["INCR", &key],
        1 => vec!["DECR", &key],
        2 => vec!["INCRBY", &key, &n],
        3 => vec!["DECRBY", &key, &n],
        4 => vec!["APPEND", &key, &word],
        5 => vec!["STRLEN", &key],
        6 => vec!["GETRANGE", &key, &n, &m],
        7 => vec!["SETRANGE", &key, &offset, &word],
        8 => vec!["GETSET", &key, &word],
        9 => vec!["GETDEL", &key],
        10 => vec!["SETNX", &key, &word],
        11 => vec!["SET", &key, &word],
        12 => vec!["GET", &key],
        13 => vec!["DEL", &key],
        14 => vec!["UNLINK", &key, "a"],
        15 => vec!["TOUCH", &key, "b", &key],
        16 => vec!["EXISTS", &key],
        17 => vec!["INCRBY", &key, &word],
        _ => vec!["MGET", &key, "a", "h"],
    };
    words.into_iter().map(str::to_owned).collect()
}

fn compare_random_sequence() {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut theirs = Raw::connect(redis.port);
    let mut ours = Raw::connect(tskv.port());
    let seed = test_seed();
    let mut rng = StdRng::seed_from_u64(seed);
    for step in 0..3000 {
        let command = random_command(&mut rng);
        let expected = theirs.request(&command);
        let got = ours.request(&command);
        assert_eq!(
            got, expected,
            "step {step} {command:?} (seed {seed}; TSKV_TEST_SEED reruns it)"
        );
    }
}

#[test]
fn random_string_commands_answer_as_redis_does() {
    compare_random_sequence();
}

#[test]
fn incrbyfloat_sums_print_as_redis_prints_them() {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut theirs = Raw::connect(redis.port);
    let mut ours = Raw::connect(tskv.port());
    // Sums where Redis's 80-bit long double shows no rounding noise (README lists the
    // difference where it does, e.g. 1000 + 0.1).
    for (start, delta) in [
        ("10.5", "0.1"),
        ("0.1", "0.2"),
        ("5.0e3", "2.0e2"),
        ("3", "1.5e-20"),
        ("0", "-0.0001"),
        ("1.1", "2.2"),
        ("17179869184", "0.5"),
        ("-7", "7"),
        ("2", "inf"),
        ("abc", "1"),
        ("1", "x"),
    ] {
        for conn in [&mut theirs, &mut ours] {
            conn.request(&["SET".into(), "fl".into(), start.into()]);
        }
        let command = ["INCRBYFLOAT".to_owned(), "fl".into(), delta.into()];
        assert_eq!(
            ours.request(&command),
            theirs.request(&command),
            "{start} + {delta}"
        );
    }
}

#[test]
fn concurrent_increments_lose_no_update() {
    let server = TestServer::start(&["--shards", "2"]);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut con = server.conn();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    let _: i64 = redis::cmd("INCR").arg("shared").query(&mut con).unwrap();
                    let _: i64 = redis::cmd("APPEND")
                        .arg("log")
                        .arg("x")
                        .query(&mut con)
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut con = server.conn();
    let total: i64 = redis::cmd("GET").arg("shared").query(&mut con).unwrap();
    let appended: i64 = redis::cmd("STRLEN").arg("log").query(&mut con).unwrap();
    assert_eq!((total, appended), (1000, 1000));
}

#[test]
fn acknowledged_read_modify_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path(), &["--shards", "2"]);
    let mut con = server.conn();
    for i in 0..200 {
        let _: i64 = redis::cmd("INCRBY")
            .arg(format!("c{}", i % 7))
            .arg(3)
            .query(&mut con)
            .unwrap();
        let _: i64 = redis::cmd("APPEND")
            .arg(format!("s{}", i % 5))
            .arg("ab")
            .query(&mut con)
            .unwrap();
        let _: String = redis::cmd("INCRBYFLOAT")
            .arg("f")
            .arg("0.5")
            .query(&mut con)
            .unwrap();
    }
    let _: i64 = redis::cmd("SETNX")
        .arg("once")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let _: Option<String> = redis::cmd("GETDEL").arg("s0").query(&mut con).unwrap();
    server.kill9();
    drop(server);
    let server = TestServer::start_in(dir.path(), &["--shards", "2"]);
    let mut con = server.conn();
    for c in 0..7 {
        let count = (0..200).filter(|i| i % 7 == c).count() as i64;
        let value: i64 = redis::cmd("GET")
            .arg(format!("c{c}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(value, count * 3, "c{c}");
    }
    for s in 1..5 {
        let len: i64 = redis::cmd("STRLEN")
            .arg(format!("s{s}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(len, 80, "s{s}: 40 appends of 2 bytes");
    }
    let gone: Option<String> = redis::cmd("GET").arg("s0").query(&mut con).unwrap();
    assert_eq!(gone, None, "GETDEL's delete is durable");
    let f: String = redis::cmd("GET").arg("f").query(&mut con).unwrap();
    assert_eq!(f, "100");
    let once: String = redis::cmd("GET").arg("once").query(&mut con).unwrap();
    assert_eq!(once, "1");
}

fn info_field(raw: &mut common::RawConn, field: &str) -> u64 {
    let Reply::Bulk(info) = raw.request(&["INFO", "persistence"]) else {
        panic!("INFO is a bulk string");
    };
    common::info_number(&String::from_utf8(info).unwrap(), field)
}

#[test]
fn read_modify_writes_of_cold_keys_read_through_the_ring_in_order() {
    const KEYS: usize = 12_000;
    let args = [
        "--shards",
        "2",
        "--memtable-bytes",
        "65536",
        "--block-cache-bytes",
        "65536",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut model: HashMap<String, Vec<u8>> = HashMap::new();
    {
        let mut server = TestServer::start_in(dir.path(), &args);
        let mut raw = server.raw();
        let mut load = Vec::new();
        for i in 0..KEYS {
            let (key, value) = (format!("cold:{i:06}"), format!("{i}"));
            let padding = format!("pad:{i:06}");
            load.extend(encode(&["SET", &key, &value]));
            load.extend(encode(&["SET", &padding, &"p".repeat(200)]));
            model.insert(key, value.into_bytes());
        }
        raw.send(&load).unwrap();
        for _ in 0..2 * KEYS {
            assert_eq!(raw.reply(), Reply::ok());
        }
        server.shutdown();
    }
    // A restart empties the block cache: every lookup below starts cold.
    let server = TestServer::start_in(dir.path(), &args);
    let mut raw = server.raw();
    let reads_before = info_field(&mut raw, "block_reads_async");
    let mut rng = StdRng::seed_from_u64(test_seed());
    let mut order: Vec<usize> = (0..KEYS).collect();
    order.shuffle(&mut rng);
    let mut pipeline = Vec::new();
    let mut expected = Vec::new();
    for &i in &order[..1500] {
        let key = format!("cold:{i:06}");
        let value = model.get_mut(&key).unwrap();
        match i % 5 {
            0 => {
                let n: i64 = std::str::from_utf8(value).unwrap().parse().unwrap();
                pipeline.extend(encode(&["INCRBY", &key, "5"]));
                expected.push(Reply::Int(n + 5));
                *value = (n + 5).to_string().into_bytes();
            }
            1 => {
                pipeline.extend(encode(&["APPEND", &key, "z"]));
                value.push(b'z');
                expected.push(Reply::Int(value.len() as i64));
            }
            2 => {
                pipeline.extend(encode(&["GETRANGE", &key, "0", "1"]));
                expected.push(Reply::Bulk(value[..value.len().min(2)].to_vec()));
            }
            3 => {
                pipeline.extend(encode(&["GETSET", &key, "g"]));
                expected.push(Reply::Bulk(std::mem::replace(value, b"g".to_vec())));
            }
            _ => {
                pipeline.extend(encode(&["SETNX", &key, "n"]));
                expected.push(Reply::Int(0));
            }
        }
        pipeline.extend(encode(&["STRLEN", &key]));
        expected.push(Reply::Int(value.len() as i64));
    }
    raw.send(&pipeline).unwrap();
    for (n, want) in expected.iter().enumerate() {
        assert_eq!(&raw.reply(), want, "reply {n}");
    }
    let reads = info_field(&mut raw, "block_reads_async") - reads_before;
    assert!(reads > 0, "the lookups read blocks through the ring");
}

#[test]
fn msetnx_is_all_or_nothing_on_one_shard_and_across_shards() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut con = server.conn();
    let on = |shard: usize| -> Vec<String> {
        (0..100)
            .map(|i| format!("m{i}"))
            .filter(|k| tskv::datadir::shard_of(k.as_bytes(), 2).0 == shard)
            .take(3)
            .collect()
    };
    let (zero, one) = (on(0), on(1));
    let set: i64 = redis::cmd("MSETNX")
        .arg(&zero[0])
        .arg("1")
        .arg(&zero[1])
        .arg("2")
        .query(&mut con)
        .unwrap();
    assert_eq!(set, 1);
    let not_set: i64 = redis::cmd("MSETNX")
        .arg(&zero[2])
        .arg("3")
        .arg(&zero[1])
        .arg("4")
        .query(&mut con)
        .unwrap();
    assert_eq!(not_set, 0, "one key exists: nothing is set");
    let values: Vec<Option<String>> = redis::cmd("MGET").arg(&zero[..]).query(&mut con).unwrap();
    assert_eq!(values, vec![Some("1".into()), Some("2".into()), None]);

    let not_set: i64 = redis::cmd("MSETNX")
        .arg(&one[0])
        .arg("x")
        .arg(&zero[0])
        .arg("y")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        not_set, 0,
        "a key on the other shard exists: nothing is set"
    );
    let set: i64 = redis::cmd("MSETNX")
        .arg(&zero[2])
        .arg("x")
        .arg(&one[0])
        .arg("y")
        .query(&mut con)
        .unwrap();
    assert_eq!(set, 1, "keys of both shards, none existing");
    let values: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&zero[2])
        .arg(&one[0])
        .query(&mut con)
        .unwrap();
    assert_eq!(values, vec![Some("x".into()), Some("y".into())]);
}

#[test]
fn randomkey_returns_a_live_key_or_null() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut con = server.conn();
    let none: Option<String> = redis::cmd("RANDOMKEY").query(&mut con).unwrap();
    assert_eq!(none, None);
    let keys: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    for key in &keys {
        let _: () = redis::cmd("SET").arg(key).arg("v").query(&mut con).unwrap();
    }
    for key in &keys[..19] {
        let _: i64 = redis::cmd("DEL").arg(key).query(&mut con).unwrap();
    }
    for _ in 0..20 {
        let key: Option<String> = redis::cmd("RANDOMKEY").query(&mut con).unwrap();
        assert_eq!(key.as_deref(), Some("r19"), "the one live key");
    }
}
