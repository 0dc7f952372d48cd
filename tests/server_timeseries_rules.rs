//! Goal: compaction rules behave as RedisTimeSeries 1.10 documents them (redis.io
//! "TS.CREATERULE", "TS.DELETERULE", "TS.INFO", `LATEST` of "TS.GET" / "TS.RANGE" /
//! "TS.MGET" / "TS.MRANGE"): each closed bucket of the source is folded into the
//! destination at the bucket's start, an out-of-order sample recomputes its bucket, the
//! open bucket shows with `LATEST` only, `TS.INFO` lists `rules` and `sourceKey`, the
//! errors are RedisTimeSeries's, deleting either series unlinks the rule, and a rule
//! survives SIGKILL and continues where it stopped.
//!
//! Method: a one-shard server over a raw RESP2 connection; destination buckets are
//! checked against a fold computed in the test from the samples written; then a restart
//! on the same directory; and on a two-shard server, that rules work whether or not the
//! two series share a shard (`tests/server_timeseries_rules_cross_shard.rs` has the rest).

mod common;

use std::collections::BTreeMap;

use common::{Reply, TestServer};

fn req(con: &mut common::RawConn, line: &str) -> Reply {
    let args: Vec<&str> = line.split_whitespace().collect();
    con.request(&args)
}

fn samples(list: &[(i64, &str)]) -> Reply {
    Reply::Array(
        list.iter()
            .map(|&(t, v)| Reply::Array(vec![Reply::Int(t), Reply::Status(v.into())]))
            .collect(),
    )
}

fn one(ts: i64, value: &str) -> Reply {
    Reply::Array(vec![Reply::Int(ts), Reply::Status(value.into())])
}

fn info_field(con: &mut common::RawConn, key: &str, field: &str) -> Reply {
    let Reply::Array(items) = req(con, &format!("TS.INFO {key}")) else {
        panic!("TS.INFO {key} is an array")
    };
    let at = items
        .iter()
        .position(|i| *i == Reply::Status(field.into()))
        .unwrap_or_else(|| panic!("TS.INFO has {field}: {items:?}"));
    items[at + 1].clone()
}

/// The buckets of `written` (bucket 10 ms, aligned to 0) folded by `fold`, each at its
/// start, leaving out the bucket of the newest sample (still open).
fn closed_buckets(written: &BTreeMap<i64, f64>, fold: fn(&[f64]) -> f64) -> Vec<(i64, String)> {
    let newest = *written.keys().last().unwrap();
    let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (ts, v) in written {
        buckets.entry(ts - ts % 10).or_default().push(*v);
    }
    buckets
        .into_iter()
        .filter(|(start, _)| *start != newest - newest % 10)
        .map(|(start, values)| (start, format!("{}", fold(&values))))
        .collect()
}

fn as_reply(list: &[(i64, String)]) -> Reply {
    let pairs: Vec<(i64, &str)> = list.iter().map(|(t, v)| (*t, v.as_str())).collect();
    samples(&pairs)
}

#[test]
fn rules_compact_closed_buckets_and_survive_a_restart() {
    let args = ["--shards", "1"];
    let mut server = TestServer::start(&args);
    let dir = server.data_dir().to_path_buf();
    let mut c = server.raw();
    for line in [
        "TS.CREATE src LABELS kind raw",
        "TS.CREATE sum10 LABELS kind agg",
        "TS.CREATE max10",
    ] {
        assert_eq!(req(&mut c, line), Reply::ok(), "{line}");
    }
    assert_eq!(
        req(&mut c, "TS.CREATERULE src sum10 AGGREGATION sum 10"),
        Reply::ok()
    );
    assert_eq!(
        req(&mut c, "TS.CREATERULE src max10 AGGREGATION MAX 10"),
        Reply::ok()
    );
    let mut written = BTreeMap::new();
    for (ts, v) in [
        (1, 1.0),
        (4, 2.0),
        (12, 5.0),
        (13, 1.0),
        (25, 4.0),
        (31, 2.5),
    ] {
        assert_eq!(req(&mut c, &format!("TS.ADD src {ts} {v}")), Reply::Int(ts));
        written.insert(ts, v);
    }
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(
        req(&mut c, "TS.RANGE sum10 - +"),
        as_reply(&closed_buckets(&written, sum))
    );
    assert_eq!(
        req(&mut c, "TS.RANGE max10 - +"),
        as_reply(&closed_buckets(&written, max))
    );
    // An out-of-order sample into a closed bucket recomputes that bucket.
    assert_eq!(req(&mut c, "TS.ADD src 15 10"), Reply::Int(15));
    written.insert(15, 10.0);
    assert_eq!(
        req(&mut c, "TS.RANGE sum10 - +"),
        as_reply(&closed_buckets(&written, sum))
    );
    // TS.MADD goes through the rules too.
    assert_eq!(
        req(&mut c, "TS.MADD src 33 1 src 41 7"),
        Reply::Array(vec![Reply::Int(33), Reply::Int(41)])
    );
    written.insert(33, 1.0);
    written.insert(41, 7.0);
    assert_eq!(
        req(&mut c, "TS.RANGE sum10 - +"),
        as_reply(&closed_buckets(&written, sum))
    );
    // LATEST shows the open bucket (40: 7), without LATEST only closed ones.
    assert_eq!(req(&mut c, "TS.GET sum10"), one(30, "3.5"));
    assert_eq!(req(&mut c, "TS.GET sum10 LATEST"), one(40, "7"));
    assert_eq!(
        req(&mut c, "TS.RANGE sum10 25 + LATEST"),
        samples(&[(30, "3.5"), (40, "7")])
    );
    assert_eq!(
        req(&mut c, "TS.REVRANGE sum10 - + LATEST COUNT 1"),
        samples(&[(40, "7")])
    );
    assert_eq!(req(&mut c, "TS.GET src LATEST"), one(41, "7"));
    assert_eq!(
        req(&mut c, "TS.MGET LATEST FILTER kind=agg"),
        Reply::Array(vec![Reply::Array(vec![
            Reply::bulk("sum10"),
            Reply::Array(vec![]),
            one(40, "7"),
        ])])
    );
    assert_eq!(
        req(&mut c, "TS.MRANGE 30 + LATEST FILTER kind=agg"),
        Reply::Array(vec![Reply::Array(vec![
            Reply::bulk("sum10"),
            Reply::Array(vec![]),
            samples(&[(30, "3.5"), (40, "7")]),
        ])])
    );
    // TS.INFO: the source's rules, the destination's source.
    assert_eq!(
        info_field(&mut c, "src", "rules"),
        Reply::Array(vec![
            Reply::Array(vec![
                Reply::bulk("sum10"),
                Reply::Int(10),
                Reply::Status("SUM".into()),
                Reply::Int(0)
            ]),
            Reply::Array(vec![
                Reply::bulk("max10"),
                Reply::Int(10),
                Reply::Status("MAX".into()),
                Reply::Int(0)
            ]),
        ])
    );
    assert_eq!(info_field(&mut c, "sum10", "sourceKey"), Reply::bulk("src"));
    assert_eq!(info_field(&mut c, "src", "sourceKey"), Reply::Nil);

    // SIGKILL: the rules and the open bucket's samples survive; the next sample closes the
    // bucket that was open at the crash.
    drop(c);
    server.kill9();
    let mut server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    assert_eq!(info_field(&mut c, "sum10", "sourceKey"), Reply::bulk("src"));
    assert_eq!(req(&mut c, "TS.ADD src 44 1"), Reply::Int(44));
    assert_eq!(req(&mut c, "TS.ADD src 50 1"), Reply::Int(50));
    written.insert(44, 1.0);
    written.insert(50, 1.0);
    assert_eq!(
        req(&mut c, "TS.RANGE sum10 - +"),
        as_reply(&closed_buckets(&written, sum))
    );
    assert_eq!(req(&mut c, "TS.GET sum10"), one(40, "8"));

    // TS.DELETERULE stops the rule and unlinks both sides.
    assert_eq!(req(&mut c, "TS.DELETERULE src max10"), Reply::ok());
    assert_eq!(info_field(&mut c, "max10", "sourceKey"), Reply::Nil);
    assert_eq!(req(&mut c, "TS.ADD src 60 1"), Reply::Int(60));
    assert_eq!(req(&mut c, "TS.GET max10"), one(40, "7"));
    assert_eq!(req(&mut c, "TS.GET sum10"), one(50, "1"));
    // Deleting the destination removes the rule from the source; deleting a source
    // frees its destinations.
    assert_eq!(req(&mut c, "DEL sum10"), Reply::Int(1));
    assert_eq!(info_field(&mut c, "src", "rules"), Reply::Array(vec![]));
    assert_eq!(
        req(&mut c, "TS.CREATERULE src max10 AGGREGATION avg 100 7"),
        Reply::ok()
    );
    assert_eq!(
        info_field(&mut c, "src", "rules"),
        Reply::Array(vec![Reply::Array(vec![
            Reply::bulk("max10"),
            Reply::Int(100),
            Reply::Status("AVG".into()),
            Reply::Int(7)
        ])])
    );
    assert_eq!(req(&mut c, "SET src replaced"), Reply::ok());
    assert_eq!(info_field(&mut c, "max10", "sourceKey"), Reply::Nil);
    drop(c);
    server.kill9();
    let server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    assert_eq!(info_field(&mut c, "max10", "sourceKey"), Reply::Nil);
}

#[test]
fn rule_errors_are_redistimeseries_texts() {
    let server = TestServer::start(&["--shards", "1"]);
    let mut c = server.raw();
    for line in ["TS.CREATE a", "TS.CREATE b", "TS.CREATE c", "TS.CREATE d"] {
        assert_eq!(req(&mut c, line), Reply::ok());
    }
    assert_eq!(req(&mut c, "SET s x"), Reply::ok());
    let arity = "ERR wrong number of arguments for 'ts.createrule' command";
    for (line, error) in [
        ("TS.CREATERULE a b AGGREGATION avg", arity),
        ("TS.CREATERULE a b AGGREGATION avg 10 0 x", arity),
        ("TS.CREATERULE a b FOO avg 10", arity),
        (
            "TS.CREATERULE a b AGGREGATION mean 10",
            "ERR TSDB: Unknown aggregation type",
        ),
        (
            "TS.CREATERULE a b AGGREGATION avg 0",
            "ERR TSDB: bucketDuration must be greater than zero",
        ),
        (
            "TS.CREATERULE a a AGGREGATION avg 10",
            "ERR TSDB: the source key and destination key should be different",
        ),
        (
            "TS.CREATERULE nosuch b AGGREGATION avg 10",
            "ERR TSDB: the key does not exist",
        ),
        (
            "TS.CREATERULE a nosuch AGGREGATION avg 10",
            "ERR TSDB: the key does not exist",
        ),
        (
            "TS.CREATERULE s b AGGREGATION avg 10",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "TS.DELETERULE a b",
            "ERR TSDB: compaction rule does not exist",
        ),
        (
            "TS.DELETERULE a",
            "ERR wrong number of arguments for 'ts.deleterule' command",
        ),
        ("TS.GET a LATER", "ERR TSDB: wrong 3rd argument"),
        (
            "TS.GET a LATEST x",
            "ERR wrong number of arguments for 'ts.get' command",
        ),
    ] {
        assert_eq!(req(&mut c, line), Reply::err(error), "{line}");
    }
    assert_eq!(
        req(&mut c, "TS.CREATERULE a b AGGREGATION avg 10"),
        Reply::ok()
    );
    // RESP3: the rules are a map from destination to [bucket, AGG, align].
    let mut resp3 = common::frames::Frames::connect(server.port());
    resp3.request(&["HELLO", "3"]);
    let info = String::from_utf8(resp3.request(&["TS.INFO", "a"])).unwrap();
    assert!(
        info.contains("+rules\r\n%1\r\n$1\r\nb\r\n*3\r\n:10\r\n+AVG\r\n:0\r\n"),
        "{info}"
    );
    let info = String::from_utf8(resp3.request(&["TS.INFO", "b"])).unwrap();
    assert!(info.contains("+sourceKey\r\n$1\r\na\r\n"), "{info}");
    for (line, error) in [
        (
            "TS.CREATERULE c b AGGREGATION avg 10",
            "ERR TSDB: the destination key already has a src rule",
        ),
        (
            "TS.CREATERULE b c AGGREGATION avg 10",
            "ERR TSDB: the source key already has a source rule",
        ),
        (
            "TS.CREATERULE d a AGGREGATION avg 10",
            "ERR TSDB: the destination key already has a dst rule",
        ),
    ] {
        assert_eq!(req(&mut c, line), Reply::err(error), "{line}");
    }
}

#[test]
fn rules_work_within_and_across_shards() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    assert_eq!(req(&mut c, "TS.CREATE dst"), Reply::ok());
    for i in 0..6 {
        let src = format!("src{i}");
        assert_eq!(req(&mut c, &format!("TS.CREATE {src}")), Reply::ok());
        assert_eq!(
            req(
                &mut c,
                &format!("TS.CREATERULE {src} dst AGGREGATION sum 10")
            ),
            Reply::ok(),
            "{src}"
        );
        for ts in [1, 2, 11] {
            req(&mut c, &format!("TS.ADD {src} {ts} 1"));
        }
        // A destination on another shard gets the bucket shortly after the reply.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while req(&mut c, "TS.GET dst") != one(0, "2") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(req(&mut c, "TS.GET dst"), one(0, "2"), "{src}");
        assert_eq!(
            req(&mut c, &format!("TS.DELETERULE {src} dst")),
            Reply::ok()
        );
        assert_eq!(req(&mut c, "DEL dst"), Reply::Int(1));
        assert_eq!(req(&mut c, "TS.CREATE dst"), Reply::ok());
    }
}

#[test]
fn ts_del_on_a_source_recalculates_or_removes_its_closed_buckets() {
    // RedisTimeSeries 1.10 "TS.DEL": a closed bucket that lost samples is recalculated
    // from the samples left, or removed when none is left; the open bucket stays open.
    let server = TestServer::start(&["--shards", "1"]);
    let mut c = server.raw();
    for line in [
        "TS.CREATE src",
        "TS.CREATE sum10",
        "TS.CREATERULE src sum10 AGGREGATION sum 10",
    ] {
        assert_eq!(req(&mut c, line), Reply::ok(), "{line}");
    }
    let mut written = BTreeMap::new();
    for ts in 0..45 {
        let v = f64::from(ts % 3 + 1);
        assert_eq!(
            req(&mut c, &format!("TS.ADD src {ts} {v}")),
            Reply::Int(ts.into())
        );
        written.insert(i64::from(ts), v);
    }
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    for (from, to, count) in [(5, 24, 20), (33, 33, 1), (0, 4, 5)] {
        assert_eq!(
            req(&mut c, &format!("TS.DEL src {from} {to}")),
            Reply::Int(count),
            "TS.DEL src {from} {to}"
        );
        written.retain(|ts, _| !(from..=to).contains(ts));
        assert_eq!(
            req(&mut c, "TS.RANGE sum10 - +"),
            as_reply(&closed_buckets(&written, sum)),
            "after TS.DEL src {from} {to}"
        );
    }
    // Buckets 0 and 10 lost every sample: gone from the destination.
    assert_eq!(
        req(&mut c, "TS.RANGE sum10 0 19"),
        Reply::Array(vec![]),
        "emptied buckets are removed"
    );
}
