//! Goal: `IGNORE maxTimeDiff maxValDiff` on `TS.CREATE`, `TS.ALTER` and `TS.ADD` behaves as
//! RedisTimeSeries documents it (redis.io "TS.CREATE", `IGNORE`; the option came in
//! RedisTimeSeries 1.12): under `DUPLICATE_POLICY LAST`, a sample at or after the newest
//! one, at most `maxTimeDiff` ms after it and within `maxValDiff` of its value, is not
//! stored and the reply is the newest timestamp; anything else is stored as before; the
//! window is part of the series' durable settings and shows in `TS.INFO`.
//!
//! Method: a two-shard server over a raw RESP2 connection; samples inside and just outside
//! each bound, out of order, under another policy, through `TS.MADD`, after `TS.ALTER`;
//! the stored series compared with `TS.RANGE`; `TS.INFO` and the errors compared exactly;
//! then SIGKILL and a restart, and the window must still apply.

mod common;

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

/// `TS.INFO key`'s value for `field`.
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

#[test]
fn samples_inside_the_window_are_ignored_under_last() {
    let args = ["--shards", "2"];
    let mut server = TestServer::start(&args);
    let dir = server.data_dir().to_path_buf();
    let mut c = server.raw();
    assert_eq!(
        req(&mut c, "TS.CREATE k DUPLICATE_POLICY LAST IGNORE 10 0.5"),
        Reply::ok()
    );
    let steps: [(&str, i64); 9] = [
        ("TS.ADD k 1000 1", 1000),
        // Within 10 ms and 0.5: ignored, the reply is the newest timestamp.
        ("TS.ADD k 1005 1.3", 1000),
        ("TS.ADD k 1010 0.5", 1000),
        // 11 ms later: stored.
        ("TS.ADD k 1011 1.3", 1011),
        // A value 0.7 away: stored.
        ("TS.ADD k 1015 2", 1015),
        // The same timestamp within 0.5: ignored (LAST would have replaced it).
        ("TS.ADD k 1015 2.4", 1015),
        // Out of order: never ignored.
        ("TS.ADD k 900 2", 900),
        ("TS.ADD k 1016 7", 1016),
        ("TS.ADD k 1017 7.25", 1016),
    ];
    for (line, ts) in steps {
        assert_eq!(req(&mut c, line), Reply::Int(ts), "{line}");
    }
    assert_eq!(
        req(&mut c, "TS.MADD k 1018 7 k 1030 7"),
        Reply::Array(vec![Reply::Int(1016), Reply::Int(1030)])
    );
    let stored = [
        (900, "2"),
        (1000, "1"),
        (1011, "1.3"),
        (1015, "2"),
        (1016, "7"),
        (1030, "7"),
    ];
    assert_eq!(req(&mut c, "TS.RANGE k - +"), samples(&stored));
    assert_eq!(info_field(&mut c, "k", "ignoreMaxTimeDiff"), Reply::Int(10));
    assert_eq!(
        info_field(&mut c, "k", "ignoreMaxValDiff"),
        Reply::bulk("0.5")
    );

    // Only under LAST: the same window with the default policy stores a duplicate-free
    // sample and refuses an equal timestamp as BLOCK does.
    assert_eq!(req(&mut c, "TS.CREATE b IGNORE 10 10"), Reply::ok());
    assert_eq!(req(&mut c, "TS.ADD b 1 1"), Reply::Int(1));
    assert_eq!(req(&mut c, "TS.ADD b 2 1"), Reply::Int(2));
    assert_eq!(
        req(&mut c, "TS.ADD b 2 1"),
        Reply::err(
            "ERR TSDB: Error at upsert, update is not supported when DUPLICATE_POLICY is set to BLOCK mode"
        )
    );
    // TS.ADD's create options carry it for a new series.
    assert_eq!(
        req(&mut c, "TS.ADD n 1 1 DUPLICATE_POLICY LAST IGNORE 5 1"),
        Reply::Int(1)
    );
    assert_eq!(req(&mut c, "TS.ADD n 3 1.5"), Reply::Int(1));
    assert_eq!(req(&mut c, "TS.RANGE n - +"), samples(&[(1, "1")]));

    for (line, error) in [
        ("TS.CREATE e IGNORE 1", "ERR TSDB: Couldn't parse IGNORE"),
        ("TS.CREATE e IGNORE x 1", "ERR TSDB: Couldn't parse IGNORE"),
        (
            "TS.CREATE e IGNORE -1 1",
            "ERR TSDB: IGNORE arguments cannot be negative",
        ),
        (
            "TS.ALTER k IGNORE 1 -2",
            "ERR TSDB: IGNORE arguments cannot be negative",
        ),
    ] {
        assert_eq!(req(&mut c, line), Reply::err(error), "{line}");
    }

    // The window survives SIGKILL and restart.
    drop(c);
    server.kill9();
    let server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    assert_eq!(info_field(&mut c, "k", "ignoreMaxTimeDiff"), Reply::Int(10));
    assert_eq!(req(&mut c, "TS.ADD k 1031 7.5"), Reply::Int(1030));
    // TS.ALTER changes it: 0 0 ignores only an exact repeat of the newest sample.
    assert_eq!(req(&mut c, "TS.ALTER k IGNORE 0 0"), Reply::ok());
    assert_eq!(req(&mut c, "TS.ADD k 1031 7.5"), Reply::Int(1031));
    assert_eq!(req(&mut c, "TS.ADD k 1031 7.5"), Reply::Int(1031));
    assert_eq!(
        info_field(&mut c, "k", "ignoreMaxValDiff"),
        Reply::bulk("0")
    );
    assert_eq!(
        req(&mut c, "TS.RANGE k 1016 +"),
        samples(&[(1016, "7"), (1030, "7"), (1031, "7.5")])
    );
}
