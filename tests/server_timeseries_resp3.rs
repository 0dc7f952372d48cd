//! Goal: after `HELLO 3` the time-series commands reply in RedisTimeSeries's RESP3 shapes
//! (its `src/reply.c` and `TSDB_info`): sample values as doubles, `TS.INFO` and the labels
//! as maps, `TS.MGET` / `TS.MRANGE` as maps from key to entry (`TS.MRANGE` with its
//! `aggregators`, a `GROUPBY` series with its `reducers` and `sources`), `TS.QUERYINDEX`
//! as a set; a RESP2 connection keeps the RESP2 shapes; and the clients read them: the
//! `redis` crate in RESP3 mode, and redis-py's `.ts()` in both protocols when installed.
//!
//! Method: a two-shard server (series on both shards, so entries are merged across
//! shards); exact bytes over a raw connection for each shape, structured values through
//! the `redis` crate, and a Python script with redis-py (`SKIP` on stderr if python3 or
//! redis-py is missing, as `tests/client_redis_py.rs` does).

mod common;

use std::io::Write as _;
use std::process::Command;

use common::frames::Frames;
use common::TestServer;
use redis::Value;

fn setup(con: &mut Frames) {
    for line in [
        "TS.CREATE t1 DUPLICATE_POLICY LAST LABELS kind cpu host a",
        "TS.CREATE t2 LABELS kind cpu host b",
        "TS.ADD t1 1 1.5",
        "TS.ADD t1 2 2",
        "TS.ADD t2 2 0.1",
    ] {
        let args: Vec<&str> = line.split_whitespace().collect();
        let reply = con.request(&args);
        assert!(!reply.starts_with(b"-"), "{line}: {reply:?}");
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

#[test]
fn resp3_shapes_byte_for_byte() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = Frames::connect(server.port());
    setup(&mut c);
    let mut resp2 = Frames::connect(server.port());
    assert!(text(c.request(&["HELLO", "3"])).starts_with('%'));
    let req = |c: &mut Frames, line: &str| {
        let args: Vec<&str> = line.split_whitespace().collect();
        text(c.request(&args))
    };
    assert_eq!(req(&mut c, "TS.GET t1"), "*2\r\n:2\r\n,2\r\n");
    assert_eq!(req(&mut resp2, "TS.GET t1"), "*2\r\n:2\r\n+2\r\n");
    assert_eq!(
        req(&mut c, "TS.GET t2"),
        "*2\r\n:2\r\n,0.10000000000000001\r\n"
    );
    assert_eq!(
        req(&mut c, "TS.RANGE t1 - +"),
        "*2\r\n*2\r\n:1\r\n,1.5\r\n*2\r\n:2\r\n,2\r\n"
    );
    assert_eq!(
        req(&mut c, "TS.QUERYINDEX kind=cpu"),
        "~2\r\n$2\r\nt1\r\n$2\r\nt2\r\n"
    );
    assert_eq!(
        req(&mut c, "TS.MGET WITHLABELS FILTER host=a"),
        "%1\r\n$2\r\nt1\r\n*2\r\n%2\r\n$4\r\nkind\r\n$3\r\ncpu\r\n$4\r\nhost\r\n$1\r\na\r\n*2\r\n:2\r\n,2\r\n"
    );
    assert_eq!(
        req(&mut c, "TS.MGET SELECTED_LABELS host none FILTER kind=cpu"),
        concat!(
            "%2\r\n$2\r\nt1\r\n*2\r\n%2\r\n$4\r\nhost\r\n$1\r\na\r\n$4\r\nnone\r\n_\r\n*2\r\n:2\r\n,2\r\n",
            "$2\r\nt2\r\n*2\r\n%2\r\n$4\r\nhost\r\n$1\r\nb\r\n$4\r\nnone\r\n_\r\n*2\r\n:2\r\n,0.10000000000000001\r\n"
        )
    );
    assert_eq!(
        req(&mut c, "TS.MRANGE - + AGGREGATION max 10 FILTER host=a"),
        "%1\r\n$2\r\nt1\r\n*3\r\n%0\r\n%1\r\n$11\r\naggregators\r\n*1\r\n$3\r\nmax\r\n*1\r\n*2\r\n:0\r\n,2\r\n"
    );
    assert_eq!(
        req(&mut c, "TS.MREVRANGE - + FILTER host=a"),
        "%1\r\n$2\r\nt1\r\n*3\r\n%0\r\n%1\r\n$11\r\naggregators\r\n*0\r\n*2\r\n*2\r\n:2\r\n,2\r\n*2\r\n:1\r\n,1.5\r\n"
    );
    assert_eq!(
        req(
            &mut c,
            "TS.MRANGE - + WITHLABELS FILTER kind=cpu GROUPBY kind REDUCE sum"
        ),
        concat!(
            "%1\r\n$8\r\nkind=cpu\r\n*4\r\n%1\r\n$4\r\nkind\r\n$3\r\ncpu\r\n",
            "%1\r\n$8\r\nreducers\r\n*1\r\n$3\r\nsum\r\n",
            "%1\r\n$7\r\nsources\r\n*2\r\n$2\r\nt1\r\n$2\r\nt2\r\n",
            "*2\r\n*2\r\n:1\r\n,1.5\r\n*2\r\n:2\r\n,2.1000000000000001\r\n"
        )
    );
    let info = req(&mut c, "TS.INFO t1");
    assert!(info.starts_with("%14\r\n+totalSamples\r\n:2\r\n"), "{info}");
    for part in [
        "+duplicatePolicy\r\n+last\r\n",
        "+labels\r\n%2\r\n$4\r\nkind\r\n$3\r\ncpu\r\n$4\r\nhost\r\n$1\r\na\r\n",
        "+sourceKey\r\n_\r\n+rules\r\n%0\r\n",
        "+ignoreMaxTimeDiff\r\n:0\r\n+ignoreMaxValDiff\r\n,0\r\n",
    ] {
        assert!(info.contains(part), "TS.INFO has {part:?}: {info}");
    }
    let info2 = req(&mut c, "TS.INFO t2");
    assert!(info2.contains("+duplicatePolicy\r\n_\r\n"), "{info2}");
    let debug = req(&mut c, "TS.INFO t1 DEBUG");
    assert!(debug.starts_with("%16\r\n"), "{debug}");
    assert!(
        debug.contains("+keySelfName\r\n$2\r\nt1\r\n+Chunks\r\n*0\r\n"),
        "{debug}"
    );
    // Errors and integers are the same in both protocols.
    assert_eq!(req(&mut c, "TS.ADD t1 3 x"), "-ERR TSDB: invalid value\r\n");
    assert_eq!(req(&mut c, "TS.MADD t1 4 4 t2 4 4"), "*2\r\n:4\r\n:4\r\n");
    // The RESP2 connection is unchanged.
    assert_eq!(
        req(&mut resp2, "TS.MGET FILTER host=a"),
        "*1\r\n*3\r\n$2\r\nt1\r\n*0\r\n*2\r\n:4\r\n+4\r\n"
    );
}

#[test]
fn the_redis_crate_reads_resp3_replies() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut raw = Frames::connect(server.port());
    setup(&mut raw);
    let client = redis::Client::open(format!("redis://{}/?protocol=resp3", server.addr())).unwrap();
    let mut con = client.get_connection().unwrap();
    let range: Vec<(i64, f64)> = redis::cmd("TS.RANGE")
        .arg("t1")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    assert_eq!(range, vec![(1, 1.5), (2, 2.0)]);
    let get: Value = redis::cmd("TS.GET").arg("t2").query(&mut con).unwrap();
    assert_eq!(get, Value::Array(vec![Value::Int(2), Value::Double(0.1)]));
    let info: Value = redis::cmd("TS.INFO").arg("t1").query(&mut con).unwrap();
    let Value::Map(fields) = info else {
        panic!("TS.INFO is a map in RESP3: {info:?}")
    };
    assert_eq!(fields.len(), 14);
    assert_eq!(
        fields[0],
        (Value::SimpleString("totalSamples".into()), Value::Int(2))
    );
    let mget: Value = redis::cmd("TS.MGET")
        .arg("FILTER")
        .arg("kind=cpu")
        .query(&mut con)
        .unwrap();
    let Value::Map(entries) = mget else {
        panic!("TS.MGET is a map in RESP3: {mget:?}")
    };
    let keys: Vec<Value> = entries.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        vec![
            Value::BulkString(b"t1".to_vec()),
            Value::BulkString(b"t2".to_vec())
        ]
    );
    let index: Value = redis::cmd("TS.QUERYINDEX")
        .arg("kind=cpu")
        .query(&mut con)
        .unwrap();
    assert!(
        matches!(index, Value::Set(ref s) if s.len() == 2),
        "{index:?}"
    );
}

const PY_SCRIPT: &str = r#"
import sys
import redis

port = int(sys.argv[1])
for protocol in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, protocol=protocol)
    ts = r.ts()
    key = "py%d" % protocol
    assert ts.create(key, labels={"kind": "py", "n": str(protocol)}, duplicate_policy="last")
    assert ts.add(key, 1, 1.5) == 1
    assert ts.madd([(key, 2, 2.0), (key, 3, 4.0)]) == [2, 3]
    assert ts.get(key) == [3, 4.0] or ts.get(key) == (3, 4.0), ts.get(key)
    got = ts.range(key, "-", "+")
    assert [tuple(s) for s in got] == [(1, 1.5), (2, 2.0), (3, 4.0)], got
    got = ts.revrange(key, "-", "+", aggregation_type="sum", bucket_size_msec=10)
    assert [tuple(s) for s in got] == [(0, 7.5)], got
    info = ts.info(key)
    if protocol == 2:
        assert info.total_samples == 3, info.total_samples
        assert info.labels == {"kind": "py", "n": str(protocol)}, info.labels
    else:
        # redis-py hands the RESP3 map over as a dict.
        d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in info.items()}
        assert d["totalSamples"] == 3, d
        labels = {k.decode(): v.decode() for k, v in d["labels"].items()}
        assert labels == {"kind": "py", "n": "3"}, d
        assert d["ignoreMaxValDiff"] == 0.0 and d["sourceKey"] is None, d
    assert sorted(ts.queryindex(["kind=py", "n=%d" % protocol])) in ([key], [key.encode()])
    mget = ts.mget(["n=%d" % protocol], with_labels=True)
    mrange = ts.mrange("-", "+", ["n=%d" % protocol], with_labels=True)
    grouped = ts.mrange("-", "+", ["n=%d" % protocol], groupby="kind", reduce="max")
    print("protocol", protocol, "mget", mget, "mrange", mrange, "grouped", grouped)
    if protocol == 2:
        assert mget == [{key: [{"kind": "py", "n": "2"}, 3, 4.0]}], mget
        labels, samples = mrange[0][key]
        assert labels == {"kind": "py", "n": "2"}, mrange
        assert [tuple(x) for x in samples] == [(1, 1.5), (2, 2.0), (3, 4.0)], mrange
        assert list(grouped[0].keys()) == ["kind=py"], grouped
    else:
        def s(v):
            return v.decode() if isinstance(v, bytes) else v
        entry = {s(k): v for k, v in mget.items()}[key]
        assert {s(k): s(v) for k, v in entry[0].items()} == {"kind": "py", "n": "3"}, mget
        assert list(entry[1]) == [3, 4.0], mget
        entry = {s(k): v for k, v in mrange.items()}[key]
        assert [list(x) for x in entry[2]] == [[1, 1.5], [2, 2.0], [3, 4.0]], mrange
        assert [s(k) for k in grouped.keys()] == ["kind=py"], grouped
print("ok redis-py=" + redis.__version__)
"#;

#[test]
fn redis_py_ts_client_in_both_protocols() {
    let missing = match Command::new("python3")
        .args(["-c", "import redis"])
        .output()
    {
        Err(e) => Some(format!("python3 not runnable ({e})")),
        Ok(out) if !out.status.success() => Some("redis-py not installed".to_string()),
        Ok(_) => None,
    };
    if let Some(reason) = missing {
        let _ = writeln!(std::io::stderr(), "SKIP: server_timeseries_resp3: {reason}");
        return;
    }
    let server = TestServer::start(&["--shards", "2"]);
    let output = Command::new("python3")
        .args(["-c", PY_SCRIPT, &server.port().to_string()])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("ok redis-py="),
        "redis-py .ts() script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
