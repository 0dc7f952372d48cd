//! Goal: an acknowledged time-series sample survives SIGKILL of the server, and series
//! read back exactly after their entries went through memtable flushes and compactions.
//!
//! Method: start the server with `--fsync always` and the smallest memtable (64 KiB), so
//! a few thousand samples flush many SSTables and trigger compactions. Two series (on a
//! two-shard server) get samples in order and out of order (into sealed chunks), a few
//! duplicates under `ON_DUPLICATE LAST`, and a `TS.DEL` range; the test keeps the expected
//! series in a map. It then kills the server with SIGKILL right after the last
//! acknowledgement, restarts it on the same directory and compares `TS.RANGE`, `TS.GET`,
//! `TS.INFO` totals and `TYPE` with the model, then does it once more after more writes.

mod common;

use std::collections::BTreeMap;

use common::TestServer;

const ARGS: &[&str] = &[
    "--shards",
    "2",
    "--fsync",
    "always",
    "--memtable-bytes",
    "65536",
];

type Model = BTreeMap<String, BTreeMap<u64, f64>>;

/// Values with many distinct bit patterns that `%.15g` still prints exactly (binary
/// fractions of at most 10 significant digits), so a reply compares bit for bit.
fn wiggle(i: u64) -> f64 {
    ((i * 7919) % 100_003) as f64 / 64.0 - 700.0
}

fn add(
    con: &mut redis::Connection,
    model: &mut Model,
    key: &str,
    ts: u64,
    value: f64,
    policy: Option<&str>,
) {
    let mut cmd = redis::cmd("TS.ADD");
    cmd.arg(key).arg(ts).arg(value);
    if let Some(p) = policy {
        cmd.arg("ON_DUPLICATE").arg(p);
    }
    let got: u64 = cmd
        .query(con)
        .unwrap_or_else(|e| panic!("TS.ADD {key} {ts}: {e}"));
    assert_eq!(got, ts);
    model.entry(key.to_string()).or_default().insert(ts, value);
}

fn check(con: &mut redis::Connection, model: &Model) {
    for (key, samples) in model {
        let got: Vec<(u64, String)> = redis::cmd("TS.RANGE")
            .arg(key)
            .arg("-")
            .arg("+")
            .query(con)
            .unwrap();
        let got: Vec<(u64, f64)> = got
            .into_iter()
            .map(|(t, v)| (t, v.parse().unwrap()))
            .collect();
        let want: Vec<(u64, f64)> = samples.iter().map(|(t, v)| (*t, *v)).collect();
        assert_eq!(got.len(), want.len(), "{key}: sample count");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0, "{key}: timestamps");
            assert_eq!(g.1.to_bits(), w.1.to_bits(), "{key} at {}: value", g.0);
        }
        let last: (u64, String) = redis::cmd("TS.GET").arg(key).query(con).unwrap();
        assert_eq!(last.0, *samples.keys().last().unwrap());
        let kind: String = redis::cmd("TYPE").arg(key).query(con).unwrap();
        assert_eq!(kind, "TSDB-TYPE");
        let info: Vec<redis::Value> = redis::cmd("TS.INFO").arg(key).query(con).unwrap();
        assert_eq!(
            info[1],
            redis::Value::Int(samples.len() as i64),
            "{key}: totalSamples"
        );
    }
}

#[test]
fn acknowledged_samples_survive_sigkill_flushes_and_compactions() {
    let mut server = TestServer::start(ARGS);
    let dir = server.data_dir().to_path_buf();
    let mut con = server.conn();
    let mut model = Model::new();
    for key in ["cpu:a", "cpu:b"] {
        let () = redis::cmd("TS.CREATE")
            .arg(key)
            .arg("CHUNK_SIZE")
            .arg(256)
            .query(&mut con)
            .unwrap();
    }
    // In order, values with many distinct bit patterns.
    for i in 0..4000u64 {
        let key = if i % 2 == 0 { "cpu:a" } else { "cpu:b" };
        add(
            &mut con,
            &mut model,
            key,
            1_000_000 + i * 10,
            wiggle(i),
            None,
        );
    }
    // A flush now takes the open samples (held in memory, logged to the WAL) into an
    // SSTable, and retires the WAL segments that logged them.
    let () = redis::cmd("SAVE").query(&mut con).unwrap();
    // Out of order, into sealed chunks, and duplicates replaced.
    for i in 0..300u64 {
        add(
            &mut con,
            &mut model,
            "cpu:a",
            1_000_005 + i * 40,
            -(i as f64),
            None,
        );
        add(
            &mut con,
            &mut model,
            "cpu:b",
            1_000_010 + i * 20,
            0.5 + i as f64,
            Some("LAST"),
        );
    }
    let deleted: u64 = redis::cmd("TS.DEL")
        .arg("cpu:a")
        .arg(1_010_000)
        .arg(1_012_000)
        .query(&mut con)
        .unwrap();
    let doomed: Vec<u64> = model["cpu:a"]
        .range(1_010_000..=1_012_000)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(deleted, doomed.len() as u64);
    for t in doomed {
        model.get_mut("cpu:a").unwrap().remove(&t);
    }
    check(&mut con, &model);
    let flushes = |con: &mut redis::Connection| -> u64 {
        let text: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("flushes:"))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    assert!(
        flushes(&mut con) > 0,
        "the test must push the series through SSTables"
    );

    server.kill9();
    let mut server = TestServer::start_in(&dir, ARGS);
    let mut con = server.conn();
    check(&mut con, &model);

    for i in 4000..6000u64 {
        if i == 5001 {
            let () = redis::cmd("SAVE").query(&mut con).unwrap();
        }
        let key = if i % 2 == 0 { "cpu:a" } else { "cpu:b" };
        add(
            &mut con,
            &mut model,
            key,
            1_000_000 + i * 10,
            i as f64,
            None,
        );
    }
    server.kill9();
    let server = TestServer::start_in(&dir, ARGS);
    let mut con = server.conn();
    check(&mut con, &model);
}

/// Goal: settings, labels, sealed chunks of both encodings, out-of-order merges into
/// sealed chunks and retention trimming read back the same after a restart (the in-memory
/// series state is rebuilt from the store alone).
#[test]
fn series_state_is_rebuilt_from_the_store_after_a_restart() {
    let mut server = TestServer::start(ARGS);
    let dir = server.data_dir().to_path_buf();
    let mut con = server.conn();
    let mut model = Model::new();
    let () = redis::cmd("TS.CREATE")
        .arg("raw")
        .arg("ENCODING")
        .arg("UNCOMPRESSED")
        .arg("CHUNK_SIZE")
        .arg(128)
        .arg("DUPLICATE_POLICY")
        .arg("MAX")
        .arg("LABELS")
        .arg("room")
        .arg("kitchen")
        .query(&mut con)
        .unwrap();
    let () = redis::cmd("TS.CREATE")
        .arg("kept")
        .arg("RETENTION")
        .arg(5000)
        .arg("CHUNK_SIZE")
        .arg(64)
        .query(&mut con)
        .unwrap();
    for i in 0..200u64 {
        add(&mut con, &mut model, "raw", 100 + i * 2, wiggle(i), None);
        add(
            &mut con,
            &mut model,
            "kept",
            100 + i * 100,
            wiggle(i + 7),
            None,
        );
    }
    // Out of order into sealed chunks (odd timestamps between the even ones).
    for i in 0..50u64 {
        add(&mut con, &mut model, "raw", 101 + i * 6, -wiggle(i), None);
    }
    // MAX keeps the larger of a duplicate.
    let _: u64 = redis::cmd("TS.ADD")
        .arg("raw")
        .arg(100)
        .arg(1e9)
        .query(&mut con)
        .unwrap();
    model.get_mut("raw").unwrap().insert(100, 1e9);
    let _: u64 = redis::cmd("TS.ADD")
        .arg("raw")
        .arg(100)
        .arg(-1e9)
        .query(&mut con)
        .unwrap();
    // Only the last 5000 ms of "kept" are visible.
    let newest = 100 + 199 * 100;
    model
        .get_mut("kept")
        .unwrap()
        .retain(|t, _| *t >= newest - 5000);
    check(&mut con, &model);
    let info_before: Vec<redis::Value> = redis::cmd("TS.INFO").arg("raw").query(&mut con).unwrap();

    server.kill9();
    let server = TestServer::start_in(&dir, ARGS);
    let mut con = server.conn();
    check(&mut con, &model);
    let info_after: Vec<redis::Value> = redis::cmd("TS.INFO").arg("raw").query(&mut con).unwrap();
    assert_eq!(info_before, info_after, "TS.INFO after the restart");
    assert_eq!(
        info_after[15],
        redis::Value::SimpleString("uncompressed".into())
    );
    assert_eq!(info_after[17], redis::Value::SimpleString("max".into()));
    // The retention still refuses old samples after the restart.
    let e = redis::cmd("TS.ADD")
        .arg("kept")
        .arg(100)
        .arg(1)
        .query::<u64>(&mut con)
        .unwrap_err();
    assert_eq!(
        common::error_line(&e),
        "ERR TSDB: Timestamp is older than retention"
    );
    let debug: Vec<redis::Value> = redis::cmd("TS.INFO")
        .arg("raw")
        .arg("DEBUG")
        .query(&mut con)
        .unwrap();
    let redis::Value::Array(chunks) = debug.last().expect("TS.INFO DEBUG has fields") else {
        panic!("TS.INFO DEBUG ends with the chunk list: {debug:?}")
    };
    assert!(
        chunks.len() > 1,
        "the series was sealed into several chunks"
    );
    // Labels survive: the filter finds exactly the series that existed.
    let found: Vec<String> = redis::cmd("TS.QUERYINDEX")
        .arg("room=kitchen")
        .query(&mut con)
        .unwrap();
    assert_eq!(found, vec!["raw".to_string()]);
}

/// Goal: a sample sealed into a chunk and then deleted stays deleted after a SIGKILL, also
/// while the WAL still holds the record that logged it (no flush in between): the replay
/// brings that record back as a sample entry, which the seal mark tells apart from an open
/// sample. Also samples still open (not sealed) at the kill come back.
#[test]
fn sealed_then_deleted_samples_stay_deleted_after_sigkill() {
    let mut server = TestServer::start(ARGS);
    let dir = server.data_dir().to_path_buf();
    let mut con = server.conn();
    let mut model = Model::new();
    let () = redis::cmd("TS.CREATE")
        .arg("s")
        .arg("CHUNK_SIZE")
        .arg(64)
        .query(&mut con)
        .unwrap();
    // 16 open samples make a seal at this chunk size; 100 leave 4 open.
    for i in 0..100u64 {
        add(&mut con, &mut model, "s", 1000 + i * 10, wiggle(i), None);
    }
    let deleted: u64 = redis::cmd("TS.DEL")
        .arg("s")
        .arg(1100)
        .arg(1500)
        .query(&mut con)
        .unwrap();
    assert_eq!(deleted, 41);
    model
        .get_mut("s")
        .unwrap()
        .retain(|t, _| !(1100..=1500).contains(t));
    check(&mut con, &model);
    server.kill9();
    let server = TestServer::start_in(&dir, ARGS);
    let mut con = server.conn();
    check(&mut con, &model);
}

/// Goal: a sample at a timestamp already sealed into a chunk meets the duplicate policy
/// like one still open: `BLOCK` refuses it, `SUM` adds to the sealed value, before and
/// after a restart (when what is sealed is read back from the store).
#[test]
fn duplicates_of_sealed_samples_follow_the_policy_before_and_after_a_restart() {
    let mut server = TestServer::start(ARGS);
    let dir = server.data_dir().to_path_buf();
    let mut con = server.conn();
    let mut model = Model::new();
    let () = redis::cmd("TS.CREATE")
        .arg("d")
        .arg("CHUNK_SIZE")
        .arg(64)
        .query(&mut con)
        .unwrap();
    // 16 open samples make a seal at this chunk size: 1000..1310 are sealed.
    for i in 0..40u64 {
        add(&mut con, &mut model, "d", 1000 + i * 10, i as f64, None);
    }
    let sealed_ts = 1050;
    let mut killed = Vec::new();
    for round in 0..2 {
        let blocked: redis::RedisResult<u64> = redis::cmd("TS.ADD")
            .arg("d")
            .arg(sealed_ts)
            .arg(99)
            .query(&mut con);
        let err = blocked.expect_err("BLOCK refuses a duplicate of a sealed sample");
        assert!(
            err.to_string().contains("DUPLICATE_POLICY is set to BLOCK"),
            "round {round}: {err}"
        );
        let got: u64 = redis::cmd("TS.ADD")
            .arg("d")
            .arg(sealed_ts)
            .arg(0.5)
            .arg("ON_DUPLICATE")
            .arg("SUM")
            .query(&mut con)
            .unwrap();
        assert_eq!(got, sealed_ts);
        *model.get_mut("d").unwrap().get_mut(&sealed_ts).unwrap() += 0.5;
        // Enough newer samples to seal the summed one again.
        for i in 0..20u64 {
            let ts = 2000 + round * 1000 + i * 10;
            add(&mut con, &mut model, "d", ts, i as f64, None);
        }
        check(&mut con, &model);
        server.kill9();
        // The killed server owns the directory: keep it until the end.
        killed.push(std::mem::replace(
            &mut server,
            TestServer::start_in(&dir, ARGS),
        ));
        con = server.conn();
        check(&mut con, &model);
    }
}
