//! Goal: a failed fdatasync or write on the real io_uring path is never papered over. The
//! shard whose disk failed refuses every further write with a clear `-ERR` (no retry that
//! could turn the failure into a success), the write that was waiting for it is not
//! acknowledged, reads of acknowledged keys go on, the other shards are not affected, and
//! a restart recovers every acknowledged write from the WAL.
//!
//! Method: start a two-shard server with a `tskv::fault` switch that makes the Nth
//! fdatasync (or write) completion of shard 0's ring report `EIO`. Send SETs one at a time
//! to keys of shard 0 until one is refused, recording the acknowledged ones; check the
//! error, a second refusal, reads, a write to shard 1, and `INFO persistence`. Kill the
//! server, restart it without the fault, and read every acknowledged key back.
//!
//! Time-series reads on the refusing shard must answer at once too, on the connection
//! whose writes were refused and on a series of the other shard: a reply that waited for
//! the refused writes' fdatasync used to wait until some other I/O woke the shard, so
//! `TS.GET` and `TS.RANGE` after a refused `TS.ADD` hung until the client timed out.

mod common;

use common::{Launch, Reply, TestServer};
use tskv::fault::{FDATASYNC_EIO_VAR, WRITE_EIO_VAR};

const SHARDS: usize = 2;

/// The first `count` keys `k<i>` that shard `shard` owns.
fn keys_of(shard: usize, count: usize) -> Vec<String> {
    common::keys_on(SHARDS, shard, "k", count)
}

fn check_fault(var: &str, fail_at: u64, what: &str) {
    let data = tempfile::tempdir().unwrap();
    let fault = format!("0:{fail_at}");
    let launch = Launch {
        env: &[(var, fault.as_str())],
        ..Launch::default()
    };
    let mut server = TestServer::start_in_with(data.path(), &["--shards", "2"], &launch);
    let mut conn = server.raw();

    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for key in keys_of(0, 50) {
        match conn.request(&["SET", &key, &format!("value of {key}")]) {
            reply if reply == Reply::ok() => acknowledged.push(key),
            reply => {
                refusal = Some((key, reply));
                break;
            }
        }
    }
    let (refused_key, refusal) = refusal.expect("the injected failure must refuse a SET");
    let Reply::Error(text) = &refusal else {
        panic!("expected an error reply, got {refusal:?}")
    };
    assert!(text.contains("refuses writes"), "unclear refusal: {text}");
    assert!(text.contains(what), "the reason is not named: {text}");
    assert!(!acknowledged.is_empty(), "the fault hit before any write");

    let again = conn.request(&["SET", &keys_of(0, 60)[55], "x"]);
    assert!(
        again.is_error(),
        "a write after the failure was accepted: {again:?}"
    );
    let last = acknowledged.last().unwrap();
    assert_eq!(
        conn.request(&["GET", last]),
        Reply::bulk(format!("value of {last}"))
    );
    let other = &keys_of(1, 1)[0];
    assert_eq!(conn.request(&["SET", other, "fine"]), Reply::ok());
    let Reply::Bulk(info) = conn.request(&["INFO", "persistence"]) else {
        panic!("INFO persistence is not a bulk string")
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    assert!(info.contains("writes_refused:1"), "{info}");

    server.kill9();
    let server = TestServer::start_in(data.path(), &["--shards", "2"]);
    let mut conn = server.raw();
    for key in &acknowledged {
        assert_eq!(
            conn.request(&["GET", key]),
            Reply::bulk(format!("value of {key}")),
            "acknowledged {key} lost after the restart"
        );
    }
    assert_eq!(conn.request(&["GET", other]), Reply::bulk("fine"));
    // The refused write was never acknowledged; whether its bytes reached the disk is the
    // disk's business, so either answer is allowed, but nothing else may appear.
    let refused = conn.request(&["GET", &refused_key]);
    assert!(
        refused == Reply::Nil || refused == Reply::bulk(format!("value of {refused_key}")),
        "{refused:?}"
    );
    assert_eq!(conn.request(&["SET", &refused_key, "again"]), Reply::ok());
}

#[test]
fn failed_wal_fdatasync_refuses_writes_keeps_reads_and_recovers() {
    check_fault(FDATASYNC_EIO_VAR, 6, "fdatasync failed");
}

#[test]
fn failed_wal_write_refuses_writes_keeps_reads_and_recovers() {
    check_fault(WRITE_EIO_VAR, 6, "write failed");
}

#[test]
fn time_series_reads_on_a_refusing_shard_answer_at_once() {
    let data = tempfile::tempdir().unwrap();
    let launch = Launch {
        env: &[(FDATASYNC_EIO_VAR, "0:6")],
        ..Launch::default()
    };
    let server = TestServer::start_in_with(data.path(), &["--shards", "2"], &launch);
    let mut conn = server.raw();
    let series = &keys_of(0, 1)[0];
    let other = &keys_of(1, 1)[0];
    assert_eq!(conn.request(&["TS.CREATE", other]), Reply::ok());
    let mut refused = false;
    for ts in 1..50 {
        if conn
            .request(&["TS.ADD", series, &ts.to_string(), "1.5"])
            .is_error()
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "the injected failure must refuse a TS.ADD");
    // Each request reads its reply under the connection's I/O timeout: a hang fails it.
    for request in [
        vec!["TS.GET", series.as_str()],
        vec!["TS.RANGE", series.as_str(), "-", "+"],
        vec!["TS.INFO", series.as_str()],
    ] {
        let reply = conn.request(&request);
        assert!(
            matches!(&reply, Reply::Error(text) if text.contains("refuses writes"))
                || !reply.is_error(),
            "{request:?}: {reply:?}"
        );
    }
    assert_eq!(
        conn.request(&["TS.ADD", other, "5", "2.5"]),
        Reply::Int(5),
        "the other shard still writes"
    );
    assert_eq!(conn.request(&["PING"]), Reply::Status("PONG".into()));
}

#[test]
fn time_series_reads_on_a_refusing_shard_serve_series_whose_writes_are_durable() {
    let data = tempfile::tempdir().unwrap();
    let launch = Launch {
        env: &[(FDATASYNC_EIO_VAR, "0:10")],
        ..Launch::default()
    };
    let server = TestServer::start_in_with(data.path(), &["--shards", "2"], &launch);
    let mut conn = server.raw();
    let [durable, refused_series] = <[String; 2]>::try_from(keys_of(0, 2)).unwrap();
    assert_eq!(conn.request(&["TS.CREATE", &durable]), Reply::ok());
    let madd = ["TS.MADD", &durable, "1", "1.5", &durable, "2", "2.5"];
    assert_eq!(
        conn.request(&madd),
        Reply::Array(vec![Reply::Int(1), Reply::Int(2)]),
        "written before the injected failure"
    );
    let mut refused = false;
    for ts in 1..100 {
        if conn
            .request(&["TS.ADD", &refused_series, &ts.to_string(), "7"])
            .is_error()
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "the injected failure must refuse a TS.ADD");
    // The refused sample is in the other series' memory, not on disk: its reads wait for
    // the refused write and answer the shard's error instead of showing it.
    let reply = conn.request(&["TS.GET", &refused_series]);
    assert!(
        matches!(&reply, Reply::Error(text) if text.contains("refuses writes")),
        "{reply:?}"
    );
    // Every write of this series is durable: its reads answer as before the failure.
    let sample =
        |ts: i64, value: &str| Reply::Array(vec![Reply::Int(ts), Reply::Status(value.into())]);
    assert_eq!(conn.request(&["TS.GET", &durable]), sample(2, "2.5"));
    assert_eq!(
        conn.request(&["TS.RANGE", &durable, "-", "+"]),
        Reply::Array(vec![sample(1, "1.5"), sample(2, "2.5")])
    );
    assert!(!conn.request(&["TS.INFO", &durable]).is_error());
}
