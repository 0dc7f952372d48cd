//! Goal: the time-series commands answer as RedisTimeSeries 1.10 does, reply shape and
//! error text, and a series shares the key space with strings without its internal entries
//! ever showing as keys.
//!
//! Method: start the real server (two shards, so keys and `TS.MADD` parts cross shards) and
//! send each command over a raw RESP2 connection, comparing the exact reply: integers,
//! simple strings (values are simple strings printed as `%.15g`), arrays, errors. Expected
//! replies are taken from the RedisTimeSeries 1.10 command reference on redis.io (pages
//! "TS.CREATE", "TS.ADD", "TS.MADD", "TS.GET", "TS.RANGE", "TS.DEL", "TS.INFO",
//! "TS.INCRBY", "TS.ALTER") and from its sources for the error texts (`src/module.c`,
//! `src/query_language.c`); the differential check against a real RedisTimeSeries is not
//! possible here (the module is not installed). Aggregations are checked against a
//! reference computed in the test. The `redis` crate is used as a second client.

mod common;

use common::twa_reference::line_mean;
use common::{Reply, TestServer};

fn req(con: &mut common::RawConn, line: &str) -> Reply {
    let args: Vec<&str> = line.split_whitespace().collect();
    con.request(&args)
}

fn int(n: i64) -> Reply {
    Reply::Int(n)
}

fn status(s: &str) -> Reply {
    Reply::Status(s.into())
}

fn err(s: &str) -> Reply {
    Reply::Error(s.into())
}

fn sample(ts: i64, value: &str) -> Reply {
    Reply::Array(vec![int(ts), status(value)])
}

fn samples(list: &[(i64, &str)]) -> Reply {
    Reply::Array(list.iter().map(|&(t, v)| sample(t, v)).collect())
}

const BLOCK_ERROR: &str =
    "ERR TSDB: Error at upsert, update is not supported when DUPLICATE_POLICY is set to BLOCK mode";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn create_add_get_range_and_errors() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    assert_eq!(
        req(
            &mut c,
            "TS.CREATE temp:TLV RETENTION 0 LABELS sensor_id 2 area_id 32"
        ),
        status("OK")
    );
    assert_eq!(
        req(&mut c, "TS.CREATE temp:TLV"),
        err("ERR TSDB: key already exists")
    );
    // TS.ADD replies the timestamp (redis.io TS.ADD: "Integer reply - the timestamp").
    assert_eq!(req(&mut c, "TS.ADD temp:TLV 1000 30"), int(1000));
    assert_eq!(req(&mut c, "TS.ADD temp:TLV 1010 30.5"), int(1010));
    assert_eq!(req(&mut c, "TS.ADD temp:TLV 1020 -0.1"), int(1020));
    assert_eq!(req(&mut c, "TS.GET temp:TLV"), sample(1020, "-0.1"));
    assert_eq!(
        req(&mut c, "TS.RANGE temp:TLV - +"),
        samples(&[(1000, "30"), (1010, "30.5"), (1020, "-0.1")])
    );
    assert_eq!(
        req(&mut c, "TS.REVRANGE temp:TLV - + COUNT 2"),
        samples(&[(1020, "-0.1"), (1010, "30.5")])
    );
    assert_eq!(
        req(&mut c, "TS.RANGE temp:TLV 1005 1015"),
        samples(&[(1010, "30.5")])
    );
    assert_eq!(
        req(
            &mut c,
            "TS.RANGE temp:TLV - + FILTER_BY_TS 1000 1020 FILTER_BY_VALUE 0 100"
        ),
        samples(&[(1000, "30")])
    );
    // BLOCK is the default duplicate policy.
    assert_eq!(req(&mut c, "TS.ADD temp:TLV 1000 31"), err(BLOCK_ERROR));
    assert_eq!(
        req(&mut c, "TS.ADD temp:TLV 1000 31 ON_DUPLICATE SUM"),
        int(1000)
    );
    assert_eq!(
        req(&mut c, "TS.RANGE temp:TLV 1000 1000"),
        samples(&[(1000, "61")])
    );
    // Errors, with RedisTimeSeries's texts.
    assert_eq!(
        req(&mut c, "TS.ADD temp:TLV 1030 abc"),
        err("ERR TSDB: invalid value")
    );
    assert_eq!(
        req(&mut c, "TS.ADD temp:TLV 1030 nan"),
        err("ERR TSDB: invalid value")
    );
    assert_eq!(
        req(&mut c, "TS.ADD temp:TLV 1030 inf"),
        err("ERR TSDB: invalid value")
    );
    assert_eq!(
        req(&mut c, "TS.ADD temp:TLV x 1"),
        err("ERR TSDB: invalid timestamp")
    );
    assert_eq!(
        req(&mut c, "TS.ADD temp:TLV -5 1"),
        err("ERR TSDB: invalid timestamp, must be a nonnegative integer")
    );
    assert_eq!(
        req(&mut c, "TS.GET nosuch"),
        err("ERR TSDB: the key does not exist")
    );
    assert_eq!(
        req(&mut c, "TS.RANGE nosuch - +"),
        err("ERR TSDB: the key does not exist")
    );
    assert_eq!(
        req(&mut c, "TS.RANGE temp:TLV x +"),
        err("ERR TSDB: wrong fromTimestamp")
    );
    assert_eq!(
        req(&mut c, "TS.RANGE temp:TLV - y"),
        err("ERR TSDB: wrong toTimestamp")
    );
    assert_eq!(
        req(&mut c, "TS.RANGE temp:TLV - + AGGREGATION foo 10"),
        err("ERR TSDB: Unknown aggregation type")
    );
    assert_eq!(
        req(&mut c, "TS.RANGE temp:TLV - + AGGREGATION avg 0"),
        err("ERR TSDB: bucketDuration must be greater than zero")
    );
    assert_eq!(
        req(&mut c, "TS.RANGE temp:TLV - + COUNT x"),
        err("ERR TSDB: Couldn't parse COUNT")
    );
    assert_eq!(
        req(&mut c, "TS.CREATE other RETENTION x"),
        err("ERR TSDB: Couldn't parse RETENTION")
    );
    assert_eq!(
        req(&mut c, "TS.CREATE other CHUNK_SIZE 10"),
        err("ERR TSDB: CHUNK_SIZE value must be a multiple of 8 in the range [48 .. 1048576]")
    );
    assert_eq!(
        req(&mut c, "TS.CREATE other DUPLICATE_POLICY nope"),
        err("ERR TSDB: Unknown DUPLICATE_POLICY")
    );
    assert_eq!(
        req(&mut c, "TS.CREATE other ENCODING zip"),
        err("ERR TSDB: unknown ENCODING parameter")
    );
    assert_eq!(
        req(&mut c, "TS.ADD"),
        err("ERR wrong number of arguments for 'ts.add' command")
    );
    assert_eq!(
        req(&mut c, "TS.MADD a 1"),
        err("ERR wrong number of arguments for 'ts.madd' command")
    );
    assert_eq!(
        req(&mut c, "TS.DEL a 1"),
        err("ERR wrong number of arguments for 'ts.del' command")
    );
}

#[test]
fn madd_answers_each_sample_and_add_creates() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    // TS.ADD creates an absent series with the options it is given.
    assert_eq!(
        req(&mut c, "TS.ADD s1 10 1 RETENTION 100 LABELS a b"),
        int(10)
    );
    assert_eq!(req(&mut c, "TS.CREATE s2"), status("OK"));
    assert_eq!(req(&mut c, "TS.CREATE s3"), status("OK"));
    // redis.io TS.MADD: an array of timestamps or errors, one per sample.
    assert_eq!(
        req(
            &mut c,
            "TS.MADD s1 20 2 s2 20 3 missing 20 4 s3 20 bad s1 10 5"
        ),
        Reply::Array(vec![
            int(20),
            int(20),
            err("ERR TSDB: the key does not exist"),
            err("ERR TSDB: invalid value"),
            err(BLOCK_ERROR),
        ])
    );
    // Retention: older than the newest minus RETENTION is refused (redis.io TS.CREATE).
    assert_eq!(req(&mut c, "TS.ADD s1 500 1"), int(500));
    assert_eq!(
        req(&mut c, "TS.ADD s1 300 1"),
        err("ERR TSDB: Timestamp is older than retention")
    );
    assert_eq!(req(&mut c, "TS.ADD s1 400 7"), int(400));
    // Samples outside the window are not returned.
    assert_eq!(
        req(&mut c, "TS.RANGE s1 - +"),
        samples(&[(400, "7"), (500, "1")])
    );
    // `*` is the server's clock.
    let Reply::Int(now_ms) = req(&mut c, "TS.ADD s2 * 1") else {
        panic!("TS.ADD * replies the timestamp")
    };
    assert!(now_ms > 1_600_000_000_000);
}

#[test]
fn incrby_decrby_alter_del_info() {
    let server = TestServer::start(&["--shards", "1"]);
    let mut c = server.raw();
    assert_eq!(req(&mut c, "TS.INCRBY counter 5 TIMESTAMP 100"), int(100));
    assert_eq!(req(&mut c, "TS.INCRBY counter 2.5 TIMESTAMP 100"), int(100));
    assert_eq!(req(&mut c, "TS.DECRBY counter 1 TIMESTAMP 200"), int(200));
    assert_eq!(
        req(&mut c, "TS.RANGE counter - +"),
        samples(&[(100, "7.5"), (200, "6.5")])
    );
    assert_eq!(
        req(&mut c, "TS.INCRBY counter 1 TIMESTAMP 50"),
        err("ERR TSDB: timestamp must be equal to or higher than the maximum existing timestamp")
    );
    assert_eq!(
        req(&mut c, "TS.INCRBY counter x"),
        err("ERR TSDB: invalid increase/decrease value")
    );
    assert_eq!(
        req(
            &mut c,
            "TS.ALTER counter RETENTION 1000 DUPLICATE_POLICY LAST LABELS k v"
        ),
        status("OK")
    );
    assert_eq!(
        req(&mut c, "TS.ALTER nosuch RETENTION 1"),
        err("ERR TSDB: the key does not exist")
    );
    // TS.INFO: RedisTimeSeries 1.10's fields in its order (redis.io TS.INFO), then the two
    // of `IGNORE` (1.12, `src/module.c` `TSDB_info`: an integer and a double).
    let info = req(&mut c, "TS.INFO counter");
    assert_eq!(
        info,
        Reply::Array(vec![
            status("totalSamples"),
            int(2),
            status("memoryUsage"),
            match &info {
                Reply::Array(items) => items[3].clone(),
                _ => unreachable!(),
            },
            status("firstTimestamp"),
            int(100),
            status("lastTimestamp"),
            int(200),
            status("retentionTime"),
            int(1000),
            status("chunkCount"),
            int(1),
            status("chunkSize"),
            int(4096),
            status("chunkType"),
            status("compressed"),
            status("duplicatePolicy"),
            status("last"),
            status("labels"),
            Reply::Array(vec![Reply::Array(vec![
                Reply::Bulk(b"k".to_vec()),
                Reply::Bulk(b"v".to_vec())
            ])]),
            status("sourceKey"),
            Reply::Nil,
            status("rules"),
            Reply::Array(vec![]),
            status("ignoreMaxTimeDiff"),
            int(0),
            status("ignoreMaxValDiff"),
            Reply::Bulk(b"0".to_vec()),
        ])
    );
    assert_eq!(
        req(&mut c, "TS.ADD counter 200 9"),
        int(200),
        "LAST now applies"
    );
    // TS.DEL: inclusive range, replies the count.
    assert_eq!(req(&mut c, "TS.DEL counter 0 150"), int(1));
    assert_eq!(req(&mut c, "TS.RANGE counter - +"), samples(&[(200, "9")]));
    assert_eq!(req(&mut c, "TS.DEL counter 0 10"), int(0));
    assert_eq!(req(&mut c, "TS.CREATE plain UNCOMPRESSED"), status("OK"));
    let Reply::Array(info) = req(&mut c, "TS.INFO plain") else {
        panic!()
    };
    assert_eq!(info[15], status("uncompressed"));
    assert_eq!(info[17], Reply::Nil, "duplicatePolicy not set is nil");
}

#[test]
fn every_aggregator_matches_a_reference() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    let points: Vec<(u64, f64)> = (0..60)
        .map(|i| (i * 7 + 3, ((i * 37) % 23) as f64 - 5.5))
        .collect();
    for (ts, v) in &points {
        assert_eq!(
            req(&mut c, &format!("TS.ADD agg {ts} {v}")),
            int(*ts as i64)
        );
    }
    let bucket = 50u64;
    let reference = |name: &str, vals: &[(u64, f64)]| -> f64 {
        let xs: Vec<f64> = vals.iter().map(|p| p.1).collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let sq: f64 = xs.iter().map(|x| (x - mean).powi(2)).sum();
        let max = xs.iter().cloned().fold(f64::MIN, f64::max);
        let min = xs.iter().cloned().fold(f64::MAX, f64::min);
        match name {
            "avg" => mean,
            "sum" => xs.iter().sum(),
            "min" => min,
            "max" => max,
            "range" => max - min,
            "count" => n,
            "first" => xs[0],
            "last" => xs[xs.len() - 1],
            "var.p" => sq / n,
            "std.p" => (sq / n).sqrt(),
            "var.s" => {
                if xs.len() > 1 {
                    sq / (n - 1.0)
                } else {
                    0.0
                }
            }
            "std.s" => {
                if xs.len() > 1 {
                    (sq / (n - 1.0)).sqrt()
                } else {
                    0.0
                }
            }
            _ => unreachable!(),
        }
    };
    for name in [
        "avg", "sum", "min", "max", "range", "count", "first", "last", "std.p", "std.s", "var.p",
        "var.s", "twa",
    ] {
        let Reply::Array(got) = req(
            &mut c,
            &format!("TS.RANGE agg - + AGGREGATION {name} {bucket}"),
        ) else {
            panic!("{name}: not an array")
        };
        let mut expected = Vec::new();
        let mut start = 0;
        while start <= points[points.len() - 1].0 {
            let in_bucket: Vec<(u64, f64)> = points
                .iter()
                .copied()
                .filter(|p| p.0 >= start && p.0 < start + bucket)
                .collect();
            if !in_bucket.is_empty() {
                // twa: the line through all samples, over the bucket cut to their span.
                let value = match name {
                    "twa" => line_mean(
                        &points,
                        start.max(points[0].0),
                        (start + bucket).min(points[points.len() - 1].0),
                    ),
                    _ => reference(name, &in_bucket),
                };
                expected.push((start, value));
            }
            start += bucket;
        }
        assert_eq!(got.len(), expected.len(), "{name}");
        for (g, (ts, value)) in got.iter().zip(&expected) {
            let Reply::Array(pair) = g else {
                panic!("{name}: {g:?}")
            };
            assert_eq!(pair[0], int(*ts as i64), "{name}");
            let Reply::Status(text) = &pair[1] else {
                panic!("{name}: {pair:?}")
            };
            let parsed: f64 = text.parse().unwrap();
            assert!(
                (parsed - value).abs() <= 1e-9 * value.abs().max(1.0),
                "{name} at {ts}: {text} vs {value}"
            );
        }
    }
    // ALIGN, BUCKETTIMESTAMP and EMPTY (redis.io TS.RANGE examples).
    assert_eq!(req(&mut c, "TS.CREATE e"), status("OK"));
    for line in ["TS.ADD e 10 1", "TS.ADD e 15 2", "TS.ADD e 45 4"] {
        req(&mut c, line);
    }
    assert_eq!(
        req(&mut c, "TS.RANGE e - + AGGREGATION sum 10 EMPTY"),
        samples(&[(10, "3"), (20, "0"), (30, "0"), (40, "4")])
    );
    assert_eq!(
        req(&mut c, "TS.RANGE e - + AGGREGATION max 10 EMPTY"),
        samples(&[(10, "2"), (20, "NaN"), (30, "NaN"), (40, "4")])
    );
    assert_eq!(
        req(
            &mut c,
            "TS.RANGE e - + ALIGN 5 AGGREGATION count 10 BUCKETTIMESTAMP +"
        ),
        samples(&[(15, "1"), (25, "1"), (55, "1")])
    );
    assert_eq!(
        req(&mut c, "TS.REVRANGE e - + AGGREGATION last 20 COUNT 1"),
        samples(&[(40, "4")])
    );
}

#[test]
fn series_and_strings_share_the_key_space_and_internal_keys_never_show() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    assert_eq!(req(&mut c, "SET plain 1"), status("OK"));
    assert_eq!(req(&mut c, "TS.CREATE ts1"), status("OK"));
    for i in 0..3000 {
        // Enough samples to seal chunks: chunk and sample entries exist in the store.
        req(&mut c, &format!("TS.ADD ts1 {} {}", 1000 + i * 10, i % 17));
    }
    assert_eq!(req(&mut c, "TYPE ts1"), status("TSDB-TYPE"));
    assert_eq!(req(&mut c, "TYPE plain"), status("string"));
    assert_eq!(req(&mut c, "TYPE none"), status("none"));
    assert_eq!(req(&mut c, "GET ts1"), err(WRONGTYPE));
    assert_eq!(req(&mut c, "TS.ADD plain 1 1"), err(WRONGTYPE));
    // RedisTimeSeries parses the sample before it looks at the key.
    assert_eq!(
        req(&mut c, "TS.ADD plain 1 abc"),
        err("ERR TSDB: invalid value")
    );
    assert_eq!(req(&mut c, "TS.GET plain"), err(WRONGTYPE));
    assert_eq!(
        req(&mut c, "TS.CREATE plain"),
        err("ERR TSDB: key already exists")
    );
    assert_eq!(
        req(&mut c, "MGET plain ts1"),
        Reply::Array(vec![Reply::Bulk(b"1".to_vec()), Reply::Nil])
    );
    assert_eq!(req(&mut c, "EXISTS ts1 plain none"), int(2));
    assert_eq!(req(&mut c, "DBSIZE"), int(2));
    let Reply::Array(mut keys) = req(&mut c, "KEYS *") else {
        panic!()
    };
    keys.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        keys,
        vec![Reply::Bulk(b"plain".to_vec()), Reply::Bulk(b"ts1".to_vec())]
    );
    // A full SCAN (small COUNT, so it steps through the internal entries) lists exactly
    // the two user keys; TYPE filters by type name.
    assert_eq!(
        scan_all(&mut c, "COUNT 3"),
        vec![Reply::Bulk(b"plain".to_vec()), Reply::Bulk(b"ts1".to_vec())]
    );
    assert_eq!(
        scan_all(&mut c, "TYPE TSDB-TYPE"),
        vec![Reply::Bulk(b"ts1".to_vec())]
    );
    assert_eq!(
        scan_all(&mut c, "TYPE string"),
        vec![Reply::Bulk(b"plain".to_vec())]
    );
    // Keys in the reserved space are refused, so they cannot collide with internal entries.
    assert_eq!(
        c.request(&[&b"SET"[..], b"\xff\x02abc", b"v"]),
        err("ERR keys beginning with byte 0xFF are reserved for tskv's internal entries")
    );
    // DEL removes the series; a new one of that name starts empty.
    assert_eq!(req(&mut c, "DEL ts1"), int(1));
    assert_eq!(req(&mut c, "TYPE ts1"), status("none"));
    assert_eq!(req(&mut c, "DBSIZE"), int(1));
    assert_eq!(req(&mut c, "TS.CREATE ts1"), status("OK"));
    assert_eq!(req(&mut c, "TS.RANGE ts1 - +"), Reply::Array(vec![]));
    assert_eq!(req(&mut c, "TS.GET ts1"), Reply::Array(vec![]));
    // SET over a series replaces it, as Redis's SET replaces a key of any type.
    assert_eq!(req(&mut c, "SET ts1 x"), status("OK"));
    assert_eq!(req(&mut c, "TYPE ts1"), status("string"));
    assert_eq!(req(&mut c, "DBSIZE"), int(2));
}

/// Every key a full `SCAN` iteration returns, sorted.
fn scan_all(c: &mut common::RawConn, options: &str) -> Vec<Reply> {
    let mut scanned = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let Reply::Array(parts) = req(c, &format!("SCAN {cursor} {options}")) else {
            panic!("SCAN replies an array")
        };
        let (Reply::Bulk(next), Reply::Array(found)) = (&parts[0], &parts[1]) else {
            panic!("SCAN reply {parts:?}")
        };
        scanned.extend(found.iter().cloned());
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    scanned.sort_by_key(|k| format!("{k:?}"));
    scanned
}

#[test]
fn the_redis_crate_reads_samples() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut con = server.conn();
    let ts: i64 = redis::cmd("TS.ADD")
        .arg("rc")
        .arg(5)
        .arg(1.25)
        .query(&mut con)
        .unwrap();
    assert_eq!(ts, 5);
    let got: Vec<(i64, String)> = redis::cmd("TS.RANGE")
        .arg("rc")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    assert_eq!(got, vec![(5, "1.25".to_string())]);
    let e = redis::cmd("TS.GET")
        .arg("none")
        .query::<redis::Value>(&mut con)
        .unwrap_err();
    assert_eq!(common::error_line(&e), "ERR TSDB: the key does not exist");
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn label(name: &str, value: &str) -> Reply {
    Reply::Array(vec![bulk(name), bulk(value)])
}

/// The `TS.MGET` / `TS.MRANGE` / `TS.QUERYINDEX` examples of redis.io (RedisTimeSeries
/// 1.10 pages), on a two-shard server so the filter is answered by every shard and merged.
#[test]
fn label_filtered_commands_merge_every_shard_in_key_order() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    assert_eq!(
        req(&mut c, "TS.CREATE temp:TLV LABELS type temp location TLV"),
        status("OK")
    );
    assert_eq!(
        req(&mut c, "TS.CREATE temp:JLM LABELS type temp location JLM"),
        status("OK")
    );
    assert_eq!(
        req(&mut c, "TS.CREATE hum:TLV LABELS type hum location TLV"),
        status("OK")
    );
    for i in 0..20 {
        req(&mut c, &format!("TS.CREATE other:{i} LABELS type other"));
    }
    req(
        &mut c,
        "TS.MADD temp:TLV 1000 30 temp:TLV 1010 35 temp:TLV 1020 9999 temp:TLV 1030 40",
    );
    req(
        &mut c,
        "TS.MADD temp:JLM 1005 30 temp:JLM 1015 35 temp:JLM 1025 9999 temp:JLM 1035 40",
    );
    assert_eq!(
        req(&mut c, "TS.MGET WITHLABELS FILTER type=temp"),
        Reply::Array(vec![
            Reply::Array(vec![
                bulk("temp:JLM"),
                Reply::Array(vec![label("type", "temp"), label("location", "JLM")]),
                sample(1035, "40"),
            ]),
            Reply::Array(vec![
                bulk("temp:TLV"),
                Reply::Array(vec![label("type", "temp"), label("location", "TLV")]),
                sample(1030, "40"),
            ]),
        ])
    );
    assert_eq!(
        req(
            &mut c,
            "TS.MGET SELECTED_LABELS location unit FILTER location=(TLV) type!=temp"
        ),
        Reply::Array(vec![Reply::Array(vec![
            bulk("hum:TLV"),
            Reply::Array(vec![
                label("location", "TLV"),
                Reply::Array(vec![bulk("unit"), Reply::Nil])
            ]),
            Reply::Array(vec![]),
        ])])
    );
    assert_eq!(
        req(&mut c, "TS.QUERYINDEX location=(TLV,JLM) type!="),
        Reply::Array(vec![bulk("hum:TLV"), bulk("temp:JLM"), bulk("temp:TLV")])
    );
    assert_eq!(req(&mut c, "TS.QUERYINDEX type=none"), Reply::Array(vec![]));
    assert_eq!(
        req(&mut c, "TS.MRANGE 1000 1020 FILTER type=temp"),
        Reply::Array(vec![
            Reply::Array(vec![
                bulk("temp:JLM"),
                Reply::Array(vec![]),
                samples(&[(1005, "30"), (1015, "35")])
            ]),
            Reply::Array(vec![
                bulk("temp:TLV"),
                Reply::Array(vec![]),
                samples(&[(1000, "30"), (1010, "35"), (1020, "9999")]),
            ]),
        ])
    );
    assert_eq!(
        req(&mut c, "TS.MREVRANGE - + COUNT 1 FILTER location=JLM"),
        Reply::Array(vec![Reply::Array(vec![
            bulk("temp:JLM"),
            Reply::Array(vec![]),
            samples(&[(1035, "40")])
        ])])
    );
    assert_eq!(
        req(
            &mut c,
            "TS.MRANGE - + AGGREGATION max 100 FILTER type=temp location=TLV"
        ),
        Reply::Array(vec![Reply::Array(vec![
            bulk("temp:TLV"),
            Reply::Array(vec![]),
            samples(&[(1000, "9999")])
        ])])
    );
    assert_eq!(
        req(&mut c, "TS.QUERYINDEX type!=temp"),
        err("ERR TSDB: please provide at least one matcher")
    );
    assert_eq!(
        req(&mut c, "TS.MGET FILTER nolabel"),
        err("ERR TSDB: failed parsing labels")
    );
    assert_eq!(
        req(&mut c, "TS.MGET WITHLABELS type=temp"),
        err("ERR wrong number of arguments for 'ts.mget' command")
    );
    // A series that a SET replaced is no longer listed.
    assert_eq!(req(&mut c, "SET hum:TLV x"), status("OK"));
    assert_eq!(
        req(&mut c, "TS.QUERYINDEX location=TLV"),
        Reply::Array(vec![bulk("temp:TLV")])
    );
}

/// `RANDOMKEY` picks only user keys (a series by its name, never a chunk or a sample),
/// and the string commands answer `WRONGTYPE` on a series, as Redis does for a key of
/// another type.
#[test]
fn randomkey_and_string_commands_see_a_series_as_one_key() {
    let server = TestServer::start(&["--shards", "1"]);
    let mut c = server.raw();
    assert_eq!(req(&mut c, "TS.CREATE ts1 CHUNK_SIZE 64"), status("OK"));
    for i in 0..200 {
        // Sealed chunks and unsealed samples: many internal entries, one user key.
        req(&mut c, &format!("TS.ADD ts1 {} {}", 1000 + i * 10, i % 7));
    }
    for _ in 0..50 {
        assert_eq!(req(&mut c, "RANDOMKEY"), bulk("ts1"));
    }
    assert_eq!(req(&mut c, "INCR ts1"), err(WRONGTYPE));
    assert_eq!(req(&mut c, "APPEND ts1 x"), err(WRONGTYPE));
    assert_eq!(req(&mut c, "STRLEN ts1"), err(WRONGTYPE));
    assert_eq!(req(&mut c, "TS.GET ts1"), sample(2990, "3"));
}
