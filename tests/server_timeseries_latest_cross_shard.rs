//! Goal: `LATEST` on the destination of a compaction rule whose source lives on another
//! shard shows the source's open bucket, as it does when both share a shard (and as
//! RedisTimeSeries 1.10 documents for `TS.GET`, `TS.RANGE`, `TS.REVRANGE`, `TS.MGET` and
//! `TS.MRANGE`): after appends, an out-of-order sample into the open bucket, a new bucket,
//! and a `TS.DEL` of the open bucket's samples.
//!
//! Method: a two-shard server; one rule's source and destination are picked on different
//! shards (`tskv::datadir::shard_of`), a reference rule's on the same shard, and both
//! sources get the same samples. Each `LATEST` query on the cross-shard destination must
//! equal the same query on the reference destination. The open bucket reaches the other
//! shard after the source's writes are acknowledged, so each is polled until equal (or a
//! generous deadline passes and both readings are shown). Last, the server restarts and
//! the open bucket must show again without a write to the source.

mod common;

use std::time::{Duration, Instant};

use common::{Reply, TestServer};

fn key_on(prefix: &str, shard: usize) -> String {
    common::keys_on(2, shard, prefix, 1).remove(0)
}

fn req(con: &mut common::RawConn, line: &str) -> Reply {
    let args: Vec<&str> = line.split_whitespace().collect();
    con.request(&args)
}

/// Polls until `query` (with `{dst}` standing for the destination) answers the same on
/// the cross-shard destination as on the reference one, and returns that answer.
fn await_same(con: &mut common::RawConn, query: &str, cross: &str, local: &str) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let want = req(con, &query.replace("{dst}", local));
        let got = req(con, &query.replace("{dst}", cross));
        if got == want {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{query}: cross-shard {got:?}, same shard {want:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sample(ts: i64, value: &str) -> Reply {
    Reply::Array(vec![Reply::Int(ts), Reply::Status(value.into())])
}

#[test]
fn latest_across_shards_shows_the_open_bucket_as_within_a_shard() {
    let data = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(data.path(), &["--shards", "2"]);
    let mut c = server.raw();
    let (src_x, dst_x) = (key_on("src:x:", 0), key_on("dst:x:", 1));
    let (src_l, dst_l) = (key_on("src:l:", 0), key_on("dst:l:", 0));
    for (src, dst, label) in [(&src_x, &dst_x, "x"), (&src_l, &dst_l, "l")] {
        for key in [src, dst] {
            let created = req(&mut c, &format!("TS.CREATE {key} LABELS rule {label}"));
            assert_eq!(created, Reply::Status("OK".into()));
        }
        let rule = req(
            &mut c,
            &format!("TS.CREATERULE {src} {dst} AGGREGATION sum 10"),
        );
        assert_eq!(rule, Reply::Status("OK".into()));
    }
    let add_both = |c: &mut common::RawConn, ts: i64, value: &str| {
        for src in [&src_x, &src_l] {
            let added = req(c, &format!("TS.ADD {src} {ts} {value}"));
            assert_eq!(added, Reply::Int(ts));
        }
    };
    let queries = [
        "TS.GET {dst} LATEST",
        "TS.RANGE {dst} - + LATEST",
        "TS.REVRANGE {dst} - + LATEST COUNT 2",
        "TS.RANGE {dst} 0 + LATEST AGGREGATION max 20",
    ];
    let check_all = |c: &mut common::RawConn| {
        for query in queries {
            await_same(c, query, &dst_x, &dst_l);
        }
    };

    for ts in [1, 4, 12, 15, 18] {
        add_both(&mut c, ts, &format!("{ts}"));
    }
    // The open bucket [10, 20) holds 12 + 15 + 18.
    assert_eq!(
        await_same(&mut c, "TS.GET {dst} LATEST", &dst_x, &dst_l),
        sample(10, "45")
    );
    check_all(&mut c);
    // Without LATEST, only the closed bucket shows.
    assert_eq!(req(&mut c, &format!("TS.GET {dst_x}")), sample(0, "5"));

    // Out of order into the open bucket, then into a new one.
    add_both(&mut c, 11, "100");
    assert_eq!(
        await_same(&mut c, "TS.GET {dst} LATEST", &dst_x, &dst_l),
        sample(10, "145")
    );
    add_both(&mut c, 23, "7");
    assert_eq!(
        await_same(&mut c, "TS.GET {dst} LATEST", &dst_x, &dst_l),
        sample(20, "7")
    );
    check_all(&mut c);

    // Several labelled series at once: the two rules side by side.
    let mget = req(&mut c, "TS.MGET LATEST FILTER rule=x");
    let Reply::Array(entries) = mget else {
        panic!("TS.MGET is an array: {mget:?}")
    };
    let dst_entry = entries
        .iter()
        .find(|e| matches!(e, Reply::Array(p) if p[0] == Reply::Bulk(dst_x.clone().into_bytes())))
        .expect("the destination is listed");
    assert_eq!(
        *dst_entry,
        Reply::Array(vec![
            Reply::Bulk(dst_x.clone().into_bytes()),
            Reply::Array(Vec::new()),
            sample(20, "7"),
        ])
    );

    // The open bucket loses its samples.
    for src in [&src_x, &src_l] {
        assert_eq!(req(&mut c, &format!("TS.DEL {src} 20 29")), Reply::Int(1));
    }
    check_all(&mut c);

    // After a restart, with no write since: the source's shard sends the open bucket again.
    add_both(&mut c, 24, "3");
    drop(c);
    server.shutdown();
    let server = TestServer::start_in(data.path(), &["--shards", "2"]);
    let mut c = server.raw();
    assert_eq!(
        await_same(&mut c, "TS.GET {dst} LATEST", &dst_x, &dst_l),
        sample(20, "3")
    );
    check_all(&mut c);
}
