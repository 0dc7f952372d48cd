//! Goal: with two shards, every connection sees every key, whichever shard accepted the
//! connection and whichever shard owns the key; multi-key commands (MSET, MGET, DEL, EXISTS,
//! DBSIZE) span both shards.
//!
//! Method: start the server with `--shards 2` and open 40 connections; the kernel's
//! SO_REUSEPORT spreads them over the shards' listeners (all 40 landing on one shard has
//! probability 2^-39). Each connection writes its own keys; then every connection reads every
//! key, one GET at a time and with MGET. Then one connection MSETs 100 keys, every connection
//! MGETs them, another connection DELs half of them, and every connection checks EXISTS, MGET
//! and DBSIZE.

mod common;

use common::TestServer;
use redis::{Connection, Value};

const CONNECTION_COUNT: usize = 40;
const KEYS_PER_CONNECTION: usize = 10;

fn key(conn: usize, j: usize) -> String {
    format!("x:{conn}:{j}")
}

fn value(conn: usize, j: usize) -> String {
    format!("written by connection {conn}, key {j}")
}

fn query(con: &mut Connection, args: &[String]) -> Value {
    let mut cmd = redis::cmd(&args[0]);
    for arg in &args[1..] {
        cmd.arg(arg);
    }
    cmd.query(con)
        .unwrap_or_else(|e| panic!("{:?}: {e:?}", &args[..args.len().min(4)]))
}

fn strings(parts: &[&str], rest: impl IntoIterator<Item = String>) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).chain(rest).collect()
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn every_connection_sees_every_key() {
    let server = TestServer::start(&["--shards", "2"]);
    assert_eq!(server.ready().shards, 2);
    let mut conns: Vec<Connection> = (0..CONNECTION_COUNT).map(|_| server.conn()).collect();

    for (c, con) in conns.iter_mut().enumerate() {
        for j in 0..KEYS_PER_CONNECTION {
            let reply = query(con, &strings(&["SET"], [key(c, j), value(c, j)]));
            assert_eq!(reply, Value::Okay, "SET {} via connection {c}", key(c, j));
        }
    }

    for (reader, con) in conns.iter_mut().enumerate() {
        for writer in 0..CONNECTION_COUNT {
            for j in 0..KEYS_PER_CONNECTION {
                assert_eq!(
                    query(con, &strings(&["GET"], [key(writer, j)])),
                    bulk(&value(writer, j)),
                    "GET {} (written via connection {writer}) via connection {reader}",
                    key(writer, j)
                );
            }
            let keys = (0..KEYS_PER_CONNECTION).map(|j| key(writer, j));
            let want = (0..KEYS_PER_CONNECTION)
                .map(|j| bulk(&value(writer, j)))
                .collect();
            assert_eq!(
                query(con, &strings(&["MGET"], keys)),
                Value::Array(want),
                "MGET of connection {writer}'s keys via connection {reader}"
            );
        }
    }

    let written = (CONNECTION_COUNT * KEYS_PER_CONNECTION) as i64;
    for (c, con) in conns.iter_mut().enumerate() {
        assert_eq!(
            query(con, &strings(&["DBSIZE"], [])),
            Value::Int(written),
            "DBSIZE via {c}"
        );
    }
}

#[test]
fn multi_key_commands_span_shards() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut conns: Vec<Connection> = (0..CONNECTION_COUNT).map(|_| server.conn()).collect();
    let keys: Vec<String> = (0..100).map(|i| format!("m:{i}")).collect();
    let values: Vec<String> = (0..100).map(|i| format!("mset value {i}")).collect();

    let pairs = keys
        .iter()
        .zip(&values)
        .flat_map(|(k, v)| [k.clone(), v.clone()]);
    assert_eq!(
        query(&mut conns[0], &strings(&["MSET"], pairs)),
        Value::Okay
    );

    // MGET of all keys, with a missing key between every ten, from every connection.
    let mut mget = Vec::new();
    let mut want = Vec::new();
    for (i, (k, v)) in keys.iter().zip(&values).enumerate() {
        if i % 10 == 0 {
            mget.push(format!("missing:{i}"));
            want.push(Value::Nil);
        }
        mget.push(k.clone());
        want.push(bulk(v));
    }
    for (c, con) in conns.iter_mut().enumerate() {
        assert_eq!(
            query(con, &strings(&["MGET"], mget.clone())),
            Value::Array(want.clone()),
            "MGET after MSET via connection {c}"
        );
    }

    // DEL the even keys (each named twice) plus missing keys, from another connection.
    let even: Vec<String> = keys.iter().step_by(2).cloned().collect();
    let del = even
        .iter()
        .cloned()
        .chain(even.iter().cloned())
        .chain(["missing:a".into(), "missing:b".into()]);
    assert_eq!(
        query(&mut conns[1], &strings(&["DEL"], del)),
        Value::Int(50),
        "DEL counts each key once"
    );

    let want: Vec<Value> = keys
        .iter()
        .zip(&values)
        .enumerate()
        .map(|(i, (_, v))| if i % 2 == 0 { Value::Nil } else { bulk(v) })
        .collect();
    for (c, con) in conns.iter_mut().enumerate() {
        assert_eq!(
            query(con, &strings(&["EXISTS"], keys.clone())),
            Value::Int(50),
            "EXISTS via {c}"
        );
        assert_eq!(
            query(con, &strings(&["MGET"], keys.clone())),
            Value::Array(want.clone()),
            "MGET after DEL via connection {c}"
        );
        assert_eq!(
            query(con, &strings(&["DBSIZE"], [])),
            Value::Int(50),
            "DBSIZE via {c}"
        );
    }

    // MSET over deleted and live keys from a third connection; all connections agree.
    let pairs = keys.iter().flat_map(|k| [k.clone(), format!("again {k}")]);
    assert_eq!(
        query(&mut conns[2], &strings(&["MSET"], pairs)),
        Value::Okay
    );
    let want: Vec<Value> = keys.iter().map(|k| bulk(&format!("again {k}"))).collect();
    for (c, con) in conns.iter_mut().enumerate() {
        assert_eq!(
            query(con, &strings(&["MGET"], keys.clone())),
            Value::Array(want.clone()),
            "via {c}"
        );
        assert_eq!(
            query(con, &strings(&["DBSIZE"], [])),
            Value::Int(100),
            "DBSIZE via {c}"
        );
    }
}
