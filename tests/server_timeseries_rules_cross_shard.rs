//! Goal: a compaction rule whose source and destination hash to different shards behaves
//! as one within a shard (RedisTimeSeries 1.10's "TS.CREATERULE", "TS.DELETERULE",
//! "TS.DEL"): `TS.CREATERULE` checks both keys with RedisTimeSeries's texts, every closed
//! bucket reaches the destination with the aggregator's value, an out-of-order sample or
//! a `TS.DEL` recomputes (or removes) its bucket, deleting either series unlinks both
//! sides, and after SIGKILL under load every closed bucket of the source's samples is in
//! the destination with the reference value.
//!
//! Method: a two-shard server; keys are picked with `tskv::datadir::shard_of` so that each
//! rule's source and destination are on different shards. The hand-over to the other shard
//! runs after the source's reply, so the destination is polled until it equals a fold
//! computed in the test (or a generous deadline passes and the last reading is shown).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Reply, TestServer};

const SHARDS: usize = 2;

fn req(con: &mut common::RawConn, line: &str) -> Reply {
    let args: Vec<&str> = line.split_whitespace().collect();
    con.request(&args)
}

/// `count` key names with `prefix` on `shard`.
fn keys_on(prefix: &str, shard: usize, count: usize) -> Vec<String> {
    common::keys_on(SHARDS, shard, prefix, count)
}

fn range(con: &mut common::RawConn, key: &str) -> Vec<(i64, String)> {
    let Reply::Array(items) = req(con, &format!("TS.RANGE {key} - +")) else {
        panic!("TS.RANGE {key} is an array")
    };
    items
        .into_iter()
        .map(|item| match item {
            Reply::Array(pair) => match (&pair[0], &pair[1]) {
                (Reply::Int(t), Reply::Status(v)) => (*t, v.clone()),
                other => panic!("sample {other:?}"),
            },
            other => panic!("sample {other:?}"),
        })
        .collect()
}

/// The closed buckets (`bucket_ms`, aligned to 0) of `written` folded by `fold`: every
/// bucket before the one holding the newest sample, each at its start.
fn closed_buckets(
    written: &BTreeMap<i64, f64>,
    bucket_ms: i64,
    fold: fn(&[f64]) -> f64,
) -> Vec<(i64, String)> {
    let Some(newest) = written.keys().last() else {
        return Vec::new();
    };
    let open = newest - newest % bucket_ms;
    let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (ts, v) in written.range(..open) {
        buckets.entry(ts - ts % bucket_ms).or_default().push(*v);
    }
    buckets
        .into_iter()
        .map(|(start, values)| (start, format!("{}", fold(&values))))
        .collect()
}

fn sum(v: &[f64]) -> f64 {
    v.iter().sum()
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::MIN, f64::max)
}

/// Polls destination `key` until it holds `expected`; fails with the last reading.
fn await_range(con: &mut common::RawConn, key: &str, expected: &[(i64, String)]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = range(con, key);
        if got == expected {
            return;
        }
        if Instant::now() > deadline {
            assert_eq!(got, expected, "{key} never held the reference buckets");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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

#[test]
fn cross_shard_rules_compact_recompute_and_unlink_like_one_shard() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    let (a, b) = (keys_on("a", 0, 3), keys_on("b", 1, 3));
    // src on shard 0 with destinations on shard 1; a second source on shard 1 into shard 0.
    let (src, sum_dst, max_dst) = (&a[0], &b[0], &b[1]);
    let (src2, dst2) = (&b[2], &a[1]);
    for key in [src, sum_dst, max_dst, src2, dst2, &a[2]] {
        assert_eq!(req(&mut c, &format!("TS.CREATE {key}")), Reply::ok());
    }
    // TS.CREATERULE's checks on the other shard's key, with RedisTimeSeries's texts.
    let (absent_src, absent_dst) = (
        keys_on("absent", 0, 1).remove(0),
        keys_on("absent", 1, 1).remove(0),
    );
    for line in [
        format!("TS.CREATERULE {src} {absent_dst} AGGREGATION sum 10"),
        format!("TS.CREATERULE {absent_src} {sum_dst} AGGREGATION sum 10"),
    ] {
        assert_eq!(
            req(&mut c, &line),
            Reply::err("ERR TSDB: the key does not exist"),
            "{line}"
        );
    }
    assert_eq!(
        req(
            &mut c,
            &format!("TS.CREATERULE {src} {sum_dst} AGGREGATION sum 10")
        ),
        Reply::ok()
    );
    assert_eq!(
        req(
            &mut c,
            &format!("TS.CREATERULE {src} {max_dst} AGGREGATION max 10")
        ),
        Reply::ok()
    );
    assert_eq!(
        req(
            &mut c,
            &format!("TS.CREATERULE {src2} {dst2} AGGREGATION sum 10")
        ),
        Reply::ok()
    );
    for (line, error) in [
        (
            format!("TS.CREATERULE {} {sum_dst} AGGREGATION avg 10", a[2]),
            "ERR TSDB: the destination key already has a src rule",
        ),
        (
            format!("TS.CREATERULE {sum_dst} {} AGGREGATION avg 10", a[2]),
            "ERR TSDB: the source key already has a source rule",
        ),
        (
            format!("TS.CREATERULE {} {src2} AGGREGATION avg 10", a[2]),
            "ERR TSDB: the destination key already has a dst rule",
        ),
        (
            format!("TS.DELETERULE {src} {}", b[2]),
            "ERR TSDB: compaction rule does not exist",
        ),
    ] {
        assert_eq!(req(&mut c, &line), Reply::err(error), "{line}");
    }
    assert_eq!(info_field(&mut c, sum_dst, "sourceKey"), Reply::bulk(src));

    let mut written = BTreeMap::new();
    let mut written2 = BTreeMap::new();
    for ts in 0..60i64 {
        let v = (ts % 7) as f64 + 0.5;
        assert_eq!(
            req(&mut c, &format!("TS.ADD {src} {ts} {v}")),
            Reply::Int(ts)
        );
        written.insert(ts, v);
        assert_eq!(
            req(&mut c, &format!("TS.ADD {src2} {} {v}", ts * 3)),
            Reply::Int(ts * 3)
        );
        written2.insert(ts * 3, v);
    }
    await_range(&mut c, sum_dst, &closed_buckets(&written, 10, sum));
    await_range(&mut c, max_dst, &closed_buckets(&written, 10, max));
    await_range(&mut c, dst2, &closed_buckets(&written2, 10, sum));

    // An out-of-order sample recomputes its closed bucket on the other shard.
    assert_eq!(
        req(&mut c, &format!("TS.ADD {src} 15 100 ON_DUPLICATE LAST")),
        Reply::Int(15)
    );
    written.insert(15, 100.0);
    await_range(&mut c, sum_dst, &closed_buckets(&written, 10, sum));
    await_range(&mut c, max_dst, &closed_buckets(&written, 10, max));
    // TS.DEL: a bucket that keeps samples is recalculated, one that loses all is removed.
    assert_eq!(req(&mut c, &format!("TS.DEL {src} 18 31")), Reply::Int(14));
    written.retain(|ts, _| !(18..=31).contains(ts));
    await_range(&mut c, sum_dst, &closed_buckets(&written, 10, sum));
    await_range(&mut c, max_dst, &closed_buckets(&written, 10, max));

    // TS.DELETERULE unlinks both sides: no more buckets, and no sourceKey.
    assert_eq!(
        req(&mut c, &format!("TS.DELETERULE {src} {max_dst}")),
        Reply::ok()
    );
    assert_eq!(info_field(&mut c, max_dst, "sourceKey"), Reply::Nil);
    let before = range(&mut c, max_dst);
    for ts in [70, 80] {
        assert_eq!(req(&mut c, &format!("TS.ADD {src} {ts} 1")), Reply::Int(ts));
        written.insert(ts, 1.0);
    }
    await_range(&mut c, sum_dst, &closed_buckets(&written, 10, sum));
    assert_eq!(
        range(&mut c, max_dst),
        before,
        "a deleted rule still writes"
    );

    // Deleting a destination drops the rule on the source's shard; deleting a source
    // frees its destination on the other shard.
    assert_eq!(req(&mut c, &format!("DEL {sum_dst}")), Reply::Int(1));
    await_reply(
        &mut c,
        &format!("TS.INFO {src}"),
        "rules",
        Reply::Array(vec![]),
    );
    assert_eq!(req(&mut c, &format!("DEL {src2}")), Reply::Int(1));
    await_reply(&mut c, &format!("TS.INFO {dst2}"), "sourceKey", Reply::Nil);
    // Both are free for new rules again.
    assert_eq!(
        req(
            &mut c,
            &format!("TS.CREATERULE {src} {max_dst} AGGREGATION avg 100")
        ),
        Reply::ok()
    );
    assert_eq!(
        req(
            &mut c,
            &format!("TS.CREATERULE {} {dst2} AGGREGATION avg 100", b[1])
        ),
        Reply::err("ERR TSDB: the source key already has a source rule")
    );
}

/// Polls `TS.INFO`'s `field` until it equals `expected`.
fn await_reply(con: &mut common::RawConn, info: &str, field: &str, expected: Reply) {
    let key = info.split_whitespace().nth(1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = info_field(con, key, field);
        if got == expected || Instant::now() > deadline {
            assert_eq!(got, expected, "{info} {field}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_rule_created_on_a_series_with_samples_starts_its_bucket_empty() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    let (src, dst) = (keys_on("s", 0, 1).remove(0), keys_on("d", 1, 1).remove(0));
    let local = keys_on("l", 0, 1).remove(0);
    for key in [&src, &dst, &local] {
        assert_eq!(req(&mut c, &format!("TS.CREATE {key}")), Reply::ok());
    }
    for ts in [1, 5, 12, 14] {
        assert_eq!(req(&mut c, &format!("TS.ADD {src} {ts} 1")), Reply::Int(ts));
    }
    for line in [
        format!("TS.CREATERULE {src} {dst} AGGREGATION count 10"),
        format!("TS.CREATERULE {src} {local} AGGREGATION count 10"),
    ] {
        assert_eq!(req(&mut c, &line), Reply::ok(), "{line}");
    }
    // Bucket 10 was open at creation: it counts only the sample after the rule (16).
    for ts in [16, 21, 33] {
        assert_eq!(req(&mut c, &format!("TS.ADD {src} {ts} 1")), Reply::Int(ts));
    }
    let expected = vec![(10, "1".to_string()), (20, "1".to_string())];
    await_range(&mut c, &dst, &expected);
    await_range(&mut c, &local, &expected);
}

#[test]
fn cross_shard_rules_lose_no_closed_bucket_through_sigkill() {
    const SOURCES: usize = 4;
    const BUCKET_MS: i64 = 10;
    // A queue of 2 messages: at most 2 buckets in flight to each peer, so the hand-over
    // runs into its window again and again under this load.
    let args = [
        "--shards",
        "2",
        "--fsync",
        "always",
        "--shard-queue-len",
        "2",
    ];
    let mut server = TestServer::start(&args);
    let dir = server.data_dir().to_path_buf();
    let mut c = server.raw();
    // Sources alternate between the shards; each destination is on the other one.
    let pairs: Vec<(String, String)> = (0..SOURCES)
        .map(|i| {
            let (s, d) = (i % 2, 1 - i % 2);
            let src = keys_on(&format!("src{i}_"), s, 1).remove(0);
            (src, keys_on(&format!("dst{i}_"), d, 1).remove(0))
        })
        .collect();
    for (src, dst) in &pairs {
        assert_eq!(req(&mut c, &format!("TS.CREATE {src}")), Reply::ok());
        assert_eq!(req(&mut c, &format!("TS.CREATE {dst}")), Reply::ok());
        assert_eq!(
            req(
                &mut c,
                &format!("TS.CREATERULE {src} {dst} AGGREGATION sum {BUCKET_MS}")
            ),
            Reply::ok()
        );
    }
    // A writer pipelines batches of TS.MADD over every source and records what was
    // acknowledged; the server is killed under that load.
    let acked: Arc<Mutex<Vec<BTreeMap<i64, f64>>>> =
        Arc::new(Mutex::new(vec![BTreeMap::new(); SOURCES]));
    let writer = {
        let acked = Arc::clone(&acked);
        let sources: Vec<String> = pairs.iter().map(|(s, _)| s.clone()).collect();
        let mut w = server.raw();
        std::thread::spawn(move || {
            for ts in 0..i64::MAX {
                let mut line = vec!["TS.MADD".to_string()];
                for src in &sources {
                    line.extend([src.clone(), ts.to_string(), (ts % 5).to_string()]);
                }
                if w.send(&common::encode(&line)).is_err() {
                    return ts;
                }
                match w.try_reply() {
                    Ok(Some(Reply::Array(items))) => {
                        let mut acked = acked.lock().unwrap();
                        for (i, item) in items.iter().enumerate() {
                            if *item == Reply::Int(ts) {
                                acked[i].insert(ts, (ts % 5) as f64);
                            }
                        }
                    }
                    _ => return ts,
                }
            }
            unreachable!()
        })
    };
    // Let some hundreds of buckets close, then kill.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap()[0].len() < 1500 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(c);
    server.kill9();
    writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked[0].len() > 100, "the writer got too few samples in");

    let server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    for ((src, dst), acked) in pairs.iter().zip(&acked) {
        // The source holds every acknowledged sample (and maybe some unacknowledged ones
        // that were durable); every bucket closed by its samples is in the destination.
        let stored: BTreeMap<i64, f64> = range(&mut c, src)
            .into_iter()
            .map(|(t, v)| (t, v.parse().unwrap()))
            .collect();
        for (ts, v) in acked {
            assert_eq!(
                stored.get(ts),
                Some(v),
                "{src} lost acknowledged sample {ts}"
            );
        }
        let expected = closed_buckets(&stored, BUCKET_MS, sum);
        let from_acked = closed_buckets(acked, BUCKET_MS, sum);
        assert!(
            expected.starts_with(&from_acked),
            "{src}: closed buckets changed"
        );
        await_range(&mut c, dst, &expected);
    }
}

#[test]
fn buckets_pending_at_a_crash_are_handed_over_after_the_restart() {
    // Shard 0 holds every bucket bound for shard 1, as if each crash came before the
    // hand-over; the restart (without the fault) must send them from its pending entries.
    let args = ["--shards", "2"];
    let launch = common::Launch {
        bind: None,
        env: &[("TSKV_FAULT_RULE_HANDOVER_HELD", "0")],
    };
    let mut server = TestServer::start_with(&args, &launch);
    let dir = server.data_dir().to_path_buf();
    let mut c = server.raw();
    let (src, dst) = (keys_on("s", 0, 1).remove(0), keys_on("d", 1, 1).remove(0));
    for key in [&src, &dst] {
        assert_eq!(req(&mut c, &format!("TS.CREATE {key}")), Reply::ok());
    }
    assert_eq!(
        req(
            &mut c,
            &format!("TS.CREATERULE {src} {dst} AGGREGATION avg 10")
        ),
        Reply::ok()
    );
    let mut written = BTreeMap::new();
    for ts in 0..95i64 {
        let v = (ts % 4) as f64;
        assert_eq!(
            req(&mut c, &format!("TS.ADD {src} {ts} {v}")),
            Reply::Int(ts)
        );
        written.insert(ts, v);
    }
    // An out-of-order sample into a bucket already pending changes what is sent.
    assert_eq!(
        req(&mut c, &format!("TS.ADD {src} 3 40 ON_DUPLICATE LAST")),
        Reply::Int(3)
    );
    written.insert(3, 40.0);
    assert_eq!(range(&mut c, &dst), vec![], "the fault holds the buckets");
    drop(c);
    server.kill9();
    let server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    await_range(&mut c, &dst, &closed_buckets(&written, 10, avg));
}

#[test]
fn a_deleted_series_unlinks_the_other_shard_even_through_a_crash() {
    // Shard 0 holds its unlinks, as if each crash came right after the deletion; the
    // restart must send them from their pending entries.
    let args = ["--shards", "2"];
    let launch = common::Launch {
        bind: None,
        env: &[("TSKV_FAULT_RULE_HANDOVER_HELD", "0")],
    };
    let mut server = TestServer::start_with(&args, &launch);
    let dir = server.data_dir().to_path_buf();
    let mut c = server.raw();
    let (on0, on1) = (keys_on("z", 0, 2), keys_on("y", 1, 2));
    // on0[0] -> on1[0] (the source is deleted), on1[1] -> on0[1] (the destination is).
    for key in on0.iter().chain(&on1) {
        assert_eq!(req(&mut c, &format!("TS.CREATE {key}")), Reply::ok());
    }
    for (src, dst) in [(&on0[0], &on1[0]), (&on1[1], &on0[1])] {
        assert_eq!(
            req(
                &mut c,
                &format!("TS.CREATERULE {src} {dst} AGGREGATION sum 10")
            ),
            Reply::ok()
        );
    }
    assert_eq!(
        req(&mut c, &format!("DEL {} {}", on0[0], on0[1])),
        Reply::Int(2)
    );
    assert_eq!(
        info_field(&mut c, &on1[0], "sourceKey"),
        Reply::bulk(&on0[0]),
        "the fault holds the unlink"
    );
    drop(c);
    server.kill9();
    let server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    await_reply(
        &mut c,
        &format!("TS.INFO {}", on1[0]),
        "sourceKey",
        Reply::Nil,
    );
    await_reply(
        &mut c,
        &format!("TS.INFO {}", on1[1]),
        "rules",
        Reply::Array(vec![]),
    );
}

#[test]
fn a_createrule_cut_by_a_crash_leaves_no_half_linked_destination() {
    // Shard 0 (the source's) ignores the answer of the destination's shard, as if it
    // crashed after the destination was linked and before the rule was added. After a
    // restart, the destination must be free again (no sourceKey) and take a new rule.
    let args = ["--shards", "2"];
    let launch = common::Launch {
        bind: None,
        env: &[("TSKV_FAULT_RULE_LINKED_IGNORED", "0")],
    };
    let mut server = TestServer::start_with(&args, &launch);
    let dir = server.data_dir().to_path_buf();
    let mut c = server.raw();
    let (src, dst) = (keys_on("s", 0, 1).remove(0), keys_on("d", 1, 1).remove(0));
    for key in [&src, &dst] {
        assert_eq!(req(&mut c, &format!("TS.CREATE {key}")), Reply::ok());
    }
    // Sent without waiting: its answer never comes.
    let line = format!("TS.CREATERULE {src} {dst} AGGREGATION sum 10");
    let words: Vec<&str> = line.split_whitespace().collect();
    c.send(&common::encode(&words)).unwrap();
    let mut probe = server.raw();
    await_reply(
        &mut probe,
        &format!("TS.INFO {dst}"),
        "sourceKey",
        Reply::bulk(&src),
    );
    drop((c, probe));
    server.kill9();
    let server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    await_reply(&mut c, &format!("TS.INFO {dst}"), "sourceKey", Reply::Nil);
    assert_eq!(info_field(&mut c, &src, "rules"), Reply::Array(vec![]));
    assert_eq!(req(&mut c, &line), Reply::ok());
}
