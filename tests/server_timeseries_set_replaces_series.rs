//! Goal: a string write over a series (`SET` with any options, `SETEX`, `PSETEX`, `MSET`)
//! replaces it as Redis replaces a key of any type, and `DEL` / `UNLINK` of a series
//! remove it, so a deleted or replaced series never comes back:
//! not through `GETDEL` of the string that replaced it, not in `TS.QUERYINDEX`, not after
//! a restart. (Regression: `SET` over a series used to leave the series' metadata, chunks
//! and samples behind a string that shadowed it, and `GETDEL` made the series reappear.)
//!
//! Method: differential against a real `redis-server`, with a list standing in there for
//! the series (RedisTimeSeries is not installed; for these commands Redis treats a key of
//! any non-string type alike): each string command is sent to both over a key of the other
//! type, and the reply and what `TYPE`, `GET` and `EXISTS` say afterwards must match. Then
//! series with sealed chunks are replaced by `SET` / `MSET` or deleted by `DEL` / `UNLINK`
//! on a two-shard server, and `TS.QUERYINDEX`, `TYPE`, `DBSIZE`, `TS.INFO` and a new series
//! of the same name are checked, before and after a SIGKILL and restart.

mod common;

use common::redis_server::RedisServer;
use common::{Reply, TestServer};

fn req(con: &mut common::RawConn, line: &str) -> Reply {
    let args: Vec<&str> = line.split_whitespace().collect();
    con.request(&args)
}

const NO_KEY: &str = "ERR TSDB: the key does not exist";

/// Makes `key` a key of another type than string: a list in Redis, a series with sealed
/// chunks and unsealed samples in tskv.
fn other_type(redis: &mut common::RawConn, tskv: &mut common::RawConn, key: &str) {
    req(redis, &format!("DEL {key}"));
    req(redis, &format!("RPUSH {key} x"));
    req(tskv, &format!("DEL {key}"));
    assert_eq!(
        req(
            tskv,
            &format!("TS.CREATE {key} CHUNK_SIZE 64 LABELS kind t")
        ),
        Reply::ok()
    );
    for i in 0..100 {
        req(tskv, &format!("TS.ADD {key} {} {i}", 1000 + i * 10));
    }
}

#[test]
fn string_commands_over_a_series_answer_as_redis_over_another_type() {
    let redis_server = RedisServer::start();
    let tskv_server = TestServer::start(&["--shards", "2"]);
    let mut redis = common::RawConn::connect(([127, 0, 0, 1], redis_server.port).into());
    let mut tskv = tskv_server.raw();
    // `k` and `other` are on different shards of two, so MSET crosses shards.
    for command in [
        "SET k v",
        "SET k v NX",
        "SET k v XX",
        "SET k v EX 100",
        "SET k v PX 100000 XX",
        "SET k v KEEPTTL",
        "SET k v GET",
        "SET k v NX GET",
        "SETEX k 100 v",
        "PSETEX k 100000 v",
        "SETNX k v",
        "MSETNX k v",
        "MSET other w k v",
        "GETSET k v",
        "GETDEL k",
        "APPEND k v",
        "INCR k",
        "GET k",
        "DEL k",
        "UNLINK other k",
    ] {
        other_type(&mut redis, &mut tskv, "k");
        for con in [&mut redis, &mut tskv] {
            req(con, "DEL other");
        }
        let expected = req(&mut redis, command);
        assert_eq!(req(&mut tskv, command), expected, "{command}");
        for probe in ["GET k", "EXISTS k", "GET other", "TYPE k", "TTL k"] {
            let mut expected = req(&mut redis, probe);
            if expected == Reply::Status("list".into()) {
                expected = Reply::Status("TSDB-TYPE".into());
            }
            assert_eq!(req(&mut tskv, probe), expected, "{probe} after {command}");
        }
        let replaced = req(&mut tskv, "TYPE k") != Reply::Status("TSDB-TYPE".into());
        let listed = req(&mut tskv, "TS.QUERYINDEX kind=t");
        let want_listed = if replaced {
            vec![]
        } else {
            vec![Reply::bulk("k")]
        };
        assert_eq!(listed, Reply::Array(want_listed), "after {command}");
        if replaced {
            // Nothing of the series is left to come back once the string goes.
            req(&mut tskv, "GETDEL k");
            assert_eq!(req(&mut tskv, "TYPE k"), Reply::Status("none".into()));
            assert_eq!(req(&mut tskv, "TS.GET k"), Reply::err(NO_KEY));
        }
    }
}

/// Series `name` with labels, sealed chunks and unsealed samples.
fn series(con: &mut common::RawConn, name: &str) {
    assert_eq!(
        req(
            con,
            &format!("TS.CREATE {name} CHUNK_SIZE 64 LABELS kind t")
        ),
        Reply::ok()
    );
    for i in 0..300 {
        req(con, &format!("TS.ADD {name} {} {}", 1000 + i * 10, i % 9));
    }
}

fn check_gone(con: &mut common::RawConn, strings: &[(&str, &str)]) {
    assert_eq!(req(con, "TS.QUERYINDEX kind=t"), Reply::Array(vec![]));
    assert_eq!(req(con, "DBSIZE"), Reply::Int(strings.len() as i64));
    for (key, value) in strings {
        assert_eq!(req(con, &format!("GET {key}")), Reply::bulk(value));
    }
    for key in ["s1", "s2", "s3", "s4", "s5"] {
        if strings.iter().all(|(k, _)| k != &key) {
            assert_eq!(
                req(con, &format!("TYPE {key}")),
                Reply::Status("none".into())
            );
            assert_eq!(req(con, &format!("TS.INFO {key}")), Reply::err(NO_KEY));
        }
    }
}

#[test]
fn replaced_and_deleted_series_stay_gone_after_a_restart() {
    let args = ["--shards", "2", "--fsync", "always"];
    let mut server = TestServer::start(&args);
    let dir = server.data_dir().to_path_buf();
    let mut c = server.raw();
    for name in ["s1", "s2", "s3", "s4", "s5"] {
        series(&mut c, name);
    }
    assert_eq!(req(&mut c, "SET s1 one"), Reply::ok());
    assert_eq!(req(&mut c, "MSET s2 two s3 three"), Reply::ok());
    assert_eq!(req(&mut c, "DEL s4"), Reply::Int(1));
    assert_eq!(req(&mut c, "UNLINK s5"), Reply::Int(1));
    check_gone(&mut c, &[("s1", "one"), ("s2", "two"), ("s3", "three")]);
    assert_eq!(req(&mut c, "GETDEL s3"), Reply::bulk("three"));
    check_gone(&mut c, &[("s1", "one"), ("s2", "two")]);
    drop(c);
    server.kill9();

    let mut server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    check_gone(&mut c, &[("s1", "one"), ("s2", "two")]);
    assert_eq!(req(&mut c, "GETDEL s1"), Reply::bulk("one"));
    check_gone(&mut c, &[("s2", "two")]);
    // A new series of an old name starts empty: no chunk of the old one mixes in.
    assert_eq!(req(&mut c, "TS.CREATE s4 LABELS kind t"), Reply::ok());
    assert_eq!(req(&mut c, "TS.RANGE s4 - +"), Reply::Array(vec![]));
    assert_eq!(req(&mut c, "TS.ADD s4 5 1"), Reply::Int(5));
    assert_eq!(req(&mut c, "SET s4 again"), Reply::ok());
    drop(c);
    server.kill9();

    let server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    check_gone(&mut c, &[("s2", "two"), ("s4", "again")]);
    assert_eq!(req(&mut c, "DEL s4"), Reply::Int(1));
    assert_eq!(req(&mut c, "TYPE s4"), Reply::Status("none".into()));
}
