//! Goal: `HELLO 3` switches a connection to RESP3 and `HELLO 2` back; every reply is the
//! bytes Redis 7 sends in the connection's protocol, and RESP2 output is unchanged.
//!
//! Method: run the same command sequence on a real `redis-server` (`--save ''
//! --appendonly no`) and on tskv with two shards (so keys live on both and some replies
//! cross shards), over raw TCP, once in RESP2 and once after `HELLO 3`, and compare every
//! reply byte for byte; the replies that must differ (the server's name, version and
//! client id in `HELLO`) are checked on their own. Then check what only tskv can show: a
//! reply keeps the protocol its request ran in even when it waits for another shard while
//! a later `HELLO` switches, and the `redis` crate reads the replies in both protocols.

mod common;

use std::io::Write;

use common::frames::Frames;
use common::redis_server::RedisServer;
use common::{encode, TestServer, IO_TIMEOUT};
use redis::Value;

/// Commands whose replies tskv and Redis 7.0 must send identically, keys on both shards.
const SEQUENCE: &[&[&str]] = &[
    &["GET", "nokey"],
    &["MGET", "a", "b", "nokey"],
    &["SET", "a", "1", "NX"],
    &["SET", "a", "1", "NX"],
    &["CONFIG", "GET", "save"],
    &["CONFIG", "GET", "nosuch"],
    &["CLIENT", "GETNAME"],
    &["CLIENT", "SETNAME", "app-1"],
    &["CLIENT", "GETNAME"],
    &["CLIENT", "LIST", "TYPE", "master"],
    &["INFO", "keyspace"],
    &["INCRBYFLOAT", "a", "1.5"],
    &["INCR", "a"],
    &["INCR", "n"],
    &["INCRBY", "n", "10"],
    &["DECRBY", "n", "-9223372036854775808"],
    &["DECR", "n"],
    &["INCRBY", "n", "9223372036854775807"],
    &["APPEND", "s", "hello"],
    &["APPEND", "s", " world"],
    &["STRLEN", "s"],
    &["STRLEN", "nokey"],
    &["GETRANGE", "s", "0", "4"],
    &["GETRANGE", "s", "-5", "-1"],
    &["GETRANGE", "nokey", "0", "1"],
    &["SETRANGE", "s", "6", "W"],
    &["GET", "s"],
    &["SETRANGE", "p", "3", "x"],
    &["GET", "p"],
    &["SETRANGE", "p", "-1", "x"],
    &["SETRANGE", "q", "0", ""],
    &["GETSET", "s", "new"],
    &["GETSET", "fresh", "v"],
    &["GETDEL", "fresh"],
    &["GETDEL", "fresh"],
    &["SETNX", "x", "1"],
    &["SETNX", "x", "2"],
    &["SET", "f", "abc"],
    &["INCRBYFLOAT", "f", "1"],
    &["INCRBY", "n", "x"],
    &["UNLINK", "f", "x", "nokey"],
    &["TOUCH", "s", "s", "nokey"],
    &["DBSIZE"],
    &["INFO", "keyspace"],
    &["HELLO", "4"],
    &["HELLO", "x"],
    &["HELLO", "3", "SETNAME", "a b"],
    &["HELLO", "3", "AUTH", "nobody", "pw"],
    &["HELLO", "3", "FOO"],
    &["HELLO", "3", "SETNAME"],
    &["GET"],
    &["NOSUCHCOMMAND", "x"],
];

fn differential_run(protocol: &str) {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut theirs = Frames::connect(redis.port);
    let mut ours = Frames::connect(tskv.port());
    if protocol == "3" {
        let (redis_hello, tskv_hello) = (
            theirs.request(&["HELLO", "3"]),
            ours.request(&["HELLO", "3"]),
        );
        assert!(redis_hello.starts_with(b"%7\r\n"), "{redis_hello:?}");
        assert!(tskv_hello.starts_with(b"%7\r\n"), "{tskv_hello:?}");
    }
    for command in SEQUENCE {
        let expected = theirs.request(command);
        let got = ours.request(command);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "RESP{protocol}: {command:?}"
        );
    }
}

#[test]
fn replies_match_redis_byte_for_byte_in_resp2() {
    differential_run("2");
}

#[test]
fn replies_match_redis_byte_for_byte_in_resp3() {
    differential_run("3");
}

/// `HELLO`'s reply in Redis 7.0's shape, with tskv's name, version and the client id.
fn hello_bytes(proto: u8, id: i64) -> Vec<u8> {
    let header = if proto == 3 { "%7" } else { "*14" };
    let version = env!("CARGO_PKG_VERSION");
    format!(
        "{header}\r\n$6\r\nserver\r\n$4\r\ntskv\r\n$7\r\nversion\r\n${}\r\n{version}\r\n\
         $5\r\nproto\r\n:{proto}\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n\
         $4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
        version.len()
    )
    .into_bytes()
}

fn client_id(conn: &mut Frames) -> i64 {
    let reply = conn.request(&["CLIENT", "ID"]);
    std::str::from_utf8(&reply[1..reply.len() - 2])
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn hello_switches_only_its_own_connection() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut one = Frames::connect(server.port());
    let mut other = Frames::connect(server.port());
    let id = client_id(&mut one);

    assert_eq!(
        one.request(&["HELLO"]),
        hello_bytes(2, id),
        "no version: RESP2 still"
    );
    assert_eq!(one.request(&["HELLO", "3"]), hello_bytes(3, id));
    assert_eq!(
        one.request(&["HELLO"]),
        hello_bytes(3, id),
        "reports the current one"
    );
    assert_eq!(one.request(&["GET", "missing"]), b"_\r\n");
    assert_eq!(
        other.request(&["GET", "missing"]),
        b"$-1\r\n",
        "others keep RESP2"
    );

    assert_eq!(
        one.request(&["HELLO", "2", "AUTH", "default", "any", "SETNAME", "worker"]),
        hello_bytes(2, id)
    );
    assert_eq!(one.request(&["GET", "missing"]), b"$-1\r\n");
    assert_eq!(one.request(&["CLIENT", "GETNAME"]), b"$6\r\nworker\r\n");
    // A refused HELLO changes nothing.
    assert_eq!(
        one.request(&["HELLO", "3", "AUTH", "nobody", "pw"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(one.request(&["GET", "missing"]), b"$-1\r\n");
}

/// Keys named so that at least one lives on each of two shards.
fn keys_on_both_shards() -> Vec<String> {
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let shards: std::collections::HashSet<_> = keys
        .iter()
        .map(|k| tskv::datadir::shard_of(k.as_bytes(), 2))
        .collect();
    assert_eq!(shards.len(), 2, "the keys cover both shards");
    keys
}

#[test]
fn a_reply_keeps_the_protocol_its_request_ran_in() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut conn = Frames::connect(server.port());
    let keys = keys_on_both_shards();
    // Written at once: the GETs of keys on the other shard wait for its reply while the
    // HELLO 3 after them already ran. Their null must still be RESP2's.
    let mut pipeline = Vec::new();
    for key in &keys {
        pipeline.extend(encode(&["GET", key]));
    }
    pipeline.extend(encode(&["HELLO", "3"]));
    for key in &keys {
        pipeline.extend(encode(&["GET", key]));
    }
    conn.writer.write_all(&pipeline).unwrap();
    for key in &keys {
        assert_eq!(conn.frame(), b"$-1\r\n", "GET {key} before HELLO 3");
    }
    assert!(conn.frame().starts_with(b"%7\r\n"));
    for key in &keys {
        assert_eq!(conn.frame(), b"_\r\n", "GET {key} after HELLO 3");
    }
}

#[test]
fn the_redis_crate_reads_both_protocols() {
    let server = TestServer::start(&["--shards", "2"]);
    for (suffix, resp3) in [("", false), ("?protocol=resp3", true)] {
        let client = redis::Client::open(format!("redis://{}/{suffix}", server.addr())).unwrap();
        let mut con = client.get_connection_with_timeout(IO_TIMEOUT).unwrap();
        let run = |con: &mut redis::Connection, args: &[&str]| -> Value {
            let mut cmd = redis::cmd(args[0]);
            for arg in &args[1..] {
                cmd.arg(*arg);
            }
            cmd.query(con).unwrap()
        };
        assert_eq!(run(&mut con, &["GET", "missing"]), Value::Nil);
        assert_eq!(
            run(&mut con, &["INCR", "counter"]),
            Value::Int(if resp3 { 2 } else { 1 })
        );
        let config = run(&mut con, &["CONFIG", "GET", "databases"]);
        let info = run(&mut con, &["INFO", "keyspace"]);
        let hello = run(&mut con, &["HELLO"]);
        if resp3 {
            assert!(
                matches!(config, Value::Map(ref m) if m.len() == 1),
                "{config:?}"
            );
            assert!(
                matches!(info, Value::VerbatimString { ref text, .. } if text.contains("db0:keys=1")),
                "{info:?}"
            );
            let Value::Map(fields) = hello else {
                panic!("HELLO in RESP3 is a map: {hello:?}");
            };
            assert!(fields.contains(&(Value::BulkString(b"proto".to_vec()), Value::Int(3))));
        } else {
            assert!(
                matches!(config, Value::Array(ref a) if a.len() == 2),
                "{config:?}"
            );
            assert!(
                matches!(info, Value::BulkString(ref text) if String::from_utf8_lossy(text).contains("db0:keys=1")),
                "{info:?}"
            );
            assert!(
                matches!(hello, Value::Array(ref a) if a.len() == 14),
                "{hello:?}"
            );
        }
        let flags = run(&mut con, &["COMMAND"]);
        let Value::Array(entries) = flags else {
            panic!("COMMAND is an array: {flags:?}");
        };
        let Value::Array(get) = &entries[0] else {
            panic!("each entry is an array");
        };
        // Redis sends the flags as a set in RESP3.
        assert_eq!(matches!(get[2], Value::Set(_)), resp3, "{:?}", get[2]);
    }
}
