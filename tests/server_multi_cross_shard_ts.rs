//! Goal: a `MULTI`/`EXEC` whose time-series commands touch series of several shards runs
//! as a transaction across shards with the string ops' guarantees: its replies are those
//! the same commands give outside a transaction, no reader sees one shard's samples
//! without the other's, after SIGKILL every transaction is whole or absent, a part that
//! could not be made durable leaves the other shard's series as they were (an added
//! sample gone, an overwritten one back, a created series deleted, also one a failing
//! `TS.INCRBY` created, altered settings back), and what it refuses (`TS.DEL`, samples of
//! a series with a compaction rule) it refuses with a precise error.
//!
//! Method: two shards, series keys picked with `shard_of` so each transaction spans both.
//! A scripted session runs inside `EXEC` on some series and outside a transaction on twin
//! series created alike, in RESP2 and RESP3, compared byte for byte. A writer adds one
//! sample to a series of each shard per transaction (watching a key of the first shard,
//! which runs that part first and widens the window) while readers check that the second
//! series is never behind the first. Writers with small memtables and small chunks (so
//! checkpoints, flushes and seals fall between a part and its commit) are killed with
//! SIGKILL, and after the restart each pair of series must hold the same timestamps, as
//! many as the acknowledged transactions or one more. Fault injection fails the `n`th
//! fdatasync of shard 0 for several `n`, and what a reader sees then must be what a
//! restart recovers.

mod common;

use common::frames::Frames;
use common::{samples_of, Reply, TestServer};

/// The first `count` keys `<prefix><n>` owned by `shard` of two.
fn keys_on(shard: usize, prefix: &str, count: usize) -> Vec<String> {
    common::keys_on(2, shard, prefix, count)
}

/// A key of shard 0 and one of shard 1 with this prefix.
fn pair(prefix: &str) -> (String, String) {
    (
        keys_on(0, prefix, 1).remove(0),
        keys_on(1, prefix, 1).remove(0),
    )
}

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// The session: `A` a series of shard 0 (`DUPLICATE_POLICY BLOCK`), `B` one of shard 1
/// (`LAST`, holding a sample at 500), `N` a missing series of shard 1, `S` a string key,
/// `M` a missing series of shard 0.
const SESSION: &[&[&str]] = &[
    &[
        "TS.CREATE",
        "M",
        "DUPLICATE_POLICY",
        "MAX",
        "LABELS",
        "kind",
        "made",
    ],
    &["TS.CREATE", "A"],
    &["TS.ADD", "M", "5", "1"],
    &["TS.MADD", "M", "5", "3", "B", "600", "6"],
    &["TS.ADD", "A", "1000", "1"],
    &[
        "TS.MADD", "A", "2000", "2", "B", "1000", "5", "A", "1000", "9",
    ],
    &["TS.INCRBY", "B", "3", "TIMESTAMP", "2000"],
    &["TS.DECRBY", "B", "1", "TIMESTAMP", "2000"],
    &["TS.ADD", "B", "500", "70"],
    &["TS.ADD", "N", "10", "1", "LABELS", "kind", "new"],
    &["SET", "S", "v"],
    &["TS.ADD", "A", "3000", "not-a-number"],
    &["TS.GET", "A"],
    &["TS.RANGE", "B", "-", "+"],
    &["TS.REVRANGE", "A", "-", "+"],
    &["TS.INFO", "B"],
    &["TS.GET", "N"],
    &["TS.RANGE", "A", "-", "+", "AGGREGATION", "sum", "5000"],
    &["TS.INFO", "M"],
    &[
        "TS.ALTER",
        "B",
        "RETENTION",
        "100000",
        "LABELS",
        "kind",
        "altered",
    ],
    &["TS.ALTER", "N", "DUPLICATE_POLICY", "SUM"],
    &["TS.ADD", "N", "10", "5"],
    &["TS.INFO", "B"],
    &["TS.ALTER", "S", "RETENTION", "1"],
];

/// `SESSION`'s commands with its letters replaced by `keys` (`A`, `B`, `N`, `S`, `M`).
fn session(keys: &[&str; 5]) -> Vec<Vec<String>> {
    SESSION
        .iter()
        .map(|command| {
            command
                .iter()
                .map(|w| match *w {
                    "A" => keys[0].to_string(),
                    "B" => keys[1].to_string(),
                    "N" => keys[2].to_string(),
                    "S" => keys[3].to_string(),
                    "M" => keys[4].to_string(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

fn create_session_series(conn: &mut Frames, a: &str, b: &str) {
    let create_a = ["TS.CREATE", a, "DUPLICATE_POLICY", "BLOCK"];
    assert_eq!(conn.request(&create_a)[0], b'+');
    let create_b = ["TS.CREATE", b, "DUPLICATE_POLICY", "LAST"];
    assert_eq!(conn.request(&create_b)[0], b'+');
    assert_eq!(conn.request(&["TS.ADD", b, "500", "7"]), b":500\r\n");
}

fn replies_equal_outside_a_transaction(resp3: bool) {
    let server = TestServer::start(&["--shards", "2"]);
    let mut conn = Frames::connect(server.port());
    if resp3 {
        assert_eq!(conn.request(&["HELLO", "3"])[0], b'%');
    }
    // Inside: A on shard 0, B and N on shard 1. Outside: twins of the same lengths.
    let (a, b) = pair("in:");
    let (s, n) = pair("in:new:");
    let (c, d) = pair("ot:");
    let (t, m) = pair("ot:new:");
    let (made, _) = pair("in:made:");
    let (twin_made, _) = pair("ot:made:");
    create_session_series(&mut conn, &a, &b);
    create_session_series(&mut conn, &c, &d);
    let mut want = Vec::new();
    let outside = session(&[&c, &d, &m, &t, &twin_made]);
    for command in &outside {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        want.push(conn.request(&args));
    }
    assert_eq!(conn.request(&["MULTI"]), b"+OK\r\n");
    for command in session(&[&a, &b, &n, &s, &made]) {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        assert_eq!(conn.request(&args), b"+QUEUED\r\n", "{args:?}");
    }
    let exec = conn.request(&["EXEC"]);
    let header = format!("*{}\r\n", SESSION.len()).into_bytes();
    let want = [header, want.concat()].concat();
    assert_eq!(
        text(&exec),
        text(&want),
        "resp3={resp3}: EXEC against outside"
    );
    // The per-sample errors are there (BLOCK duplicate, bad value).
    assert!(text(&exec).contains("DUPLICATE_POLICY is set to BLOCK"));
    assert!(text(&exec).contains("ERR TSDB: invalid value"));
    // And the data stays: each series as its twin.
    assert!(text(&exec).contains("ERR TSDB: key already exists"));
    for (inside, twin) in [(&a, &c), (&b, &d), (&n, &m), (&made, &twin_made)] {
        assert_eq!(
            text(&conn.request(&["TS.RANGE", inside, "-", "+"])),
            text(&conn.request(&["TS.RANGE", twin, "-", "+"])),
            "{inside} against {twin}"
        );
    }
    assert_eq!(conn.request(&["GET", &s]), conn.request(&["GET", &t]));
}

#[test]
fn sample_writes_across_shards_reply_as_outside_a_transaction_in_resp2() {
    replies_equal_outside_a_transaction(false);
}

#[test]
fn sample_writes_across_shards_reply_as_outside_a_transaction_in_resp3() {
    replies_equal_outside_a_transaction(true);
}

/// The timestamp of a RESP2 `TS.GET` reply (0 for an empty series).
fn get_ts(reply: &Reply) -> i64 {
    match reply {
        Reply::Array(items) => match items.first() {
            Some(Reply::Int(ts)) => *ts,
            None => 0,
            Some(other) => panic!("TS.GET: {other:?}"),
        },
        other => panic!("TS.GET: {other:?}"),
    }
}

#[test]
fn no_reader_sees_one_shards_samples_without_the_others() {
    let server = TestServer::start(&["--shards", "2"]);
    let (a, b) = pair("atomic:");
    let watched = keys_on(0, "watched:", 1).remove(0);
    let mut conn = server.raw();
    for key in [&a, &b] {
        assert_eq!(conn.request(&["TS.CREATE", key]), Reply::ok());
    }
    let port = server.port();
    let writer = {
        let (a, b, watched) = (a.clone(), b.clone(), watched.clone());
        std::thread::spawn(move || {
            let mut conn = common::RawConn::to_port(port);
            for n in 1..=300 {
                let n = n.to_string();
                // Watching a key of shard 0 runs that part first and the other only
                // once it is durable: a wide window for a reader not held back by locks.
                conn.request(&["WATCH", &watched]);
                conn.request(&["MULTI"]);
                conn.request(&["TS.ADD", &a, &n, &n]);
                conn.request(&["TS.MADD", &b, &n, &n]);
                let reply = conn.request(&["EXEC"]);
                let ts: i64 = n.parse().unwrap();
                let want = Reply::Array(vec![Reply::Int(ts), Reply::Array(vec![Reply::Int(ts)])]);
                assert_eq!(reply, want, "transaction {n}");
            }
        })
    };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let atomic_reader = {
        let (a, b, done) = (a.clone(), b.clone(), std::sync::Arc::clone(&done));
        std::thread::spawn(move || {
            let mut conn = common::RawConn::to_port(port);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                conn.request(&["MULTI"]);
                conn.request(&["TS.GET", &a]);
                conn.request(&["TS.RANGE", &b, "-", "+"]);
                let Reply::Array(both) = conn.request(&["EXEC"]) else {
                    panic!("EXEC");
                };
                let newest_b = samples_of(both[1].clone()).last().map_or(0, |s| s.0 as i64);
                assert_eq!(get_ts(&both[0]), newest_b, "one transaction saw {both:?}");
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        // A is read first: B can only have moved on since.
        let ta = get_ts(&conn.request(&["TS.GET", &a]));
        let tb = get_ts(&conn.request(&["TS.GET", &b]));
        assert!(
            tb >= ta,
            "read {a} at {ta} then {b} at {tb}: half a transaction"
        );
        reads += 1;
    }
    writer.join().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    atomic_reader.join().unwrap();
    for key in [&a, &b] {
        let samples = samples_of(conn.request(&["TS.RANGE", key, "-", "+"]));
        assert_eq!(samples.len(), 300, "{key}");
    }
}

#[test]
fn transactions_of_samples_across_shards_survive_sigkill_whole() {
    let dir = tempfile::tempdir().unwrap();
    // Small memtables and segments: checkpoints, flushes and segment changes fall between
    // a part and its commit.
    let args = [
        "--shards",
        "2",
        "--memtable-bytes",
        "64KiB",
        "--wal-segment-bytes",
        "256KiB",
    ];
    for round in 0..3 {
        let mut server = TestServer::start_in(dir.path(), &args);
        let outcomes = add_pairs_until_killed(&mut server, round);
        drop(server);
        let server = TestServer::start_in(dir.path(), &args);
        let mut conn = server.raw();
        for (a, b, acknowledged) in outcomes {
            assert!(acknowledged > 10, "the writer barely ran ({acknowledged})");
            let sa = samples_of(conn.request(&["TS.RANGE", &a, "-", "+"]));
            let sb = samples_of(conn.request(&["TS.RANGE", &b, "-", "+"]));
            assert_eq!(
                sa, sb,
                "round {round}: {a} and {b} got the same transactions"
            );
            let n = sa.len() as u64;
            assert!(
                n == acknowledged || n == acknowledged + 1,
                "round {round}: {a}: {n} transactions after {acknowledged} acknowledged"
            );
            let want: Vec<(u64, f64)> = (1..=n).map(|i| (i, i as f64)).collect();
            assert_eq!(sa, want, "round {round}: {a}: one sample per transaction");
        }
    }
}

/// Four writers each add a sample to a series of each shard (with a string write that
/// fills memtables, and a watched key) in one transaction, over and over, until the
/// server is killed; returns each pair of series and its last acknowledged transaction.
fn add_pairs_until_killed(server: &mut TestServer, round: usize) -> Vec<(String, String, u64)> {
    let port = server.port();
    let writers: Vec<_> = (0..4usize)
        .map(|w| {
            let a = keys_on(w % 2, &format!("r{round}w{w}a:"), 1).remove(0);
            let b = keys_on((w + 1) % 2, &format!("r{round}w{w}b:"), 1).remove(0);
            std::thread::spawn(move || {
                let mut conn = common::RawConn::to_port(port);
                // 48-byte chunks: a seal is due every dozen samples.
                for key in [&a, &b] {
                    let reply = conn.request(&["TS.CREATE", key, "CHUNK_SIZE", "48"]);
                    assert_eq!(reply, Reply::ok());
                }
                // Watching a key of `a`'s shard runs that part first and the other only
                // once it is durable: a kill in between leaves one part without the other.
                let watched = format!("{a}:watched");
                let padding = "p".repeat(300);
                let mut acknowledged = 0u64;
                'writing: for n in 1u64.. {
                    let ts = n.to_string();
                    let pipeline = [
                        common::encode(&["WATCH", &watched]),
                        common::encode(&["MULTI"]),
                        common::encode(&["SET", &format!("{a}:pad"), &padding]),
                        common::encode(&["TS.ADD", &a, &ts, &ts]),
                        common::encode(&["TS.MADD", &b, &ts, &ts]),
                        common::encode(&["EXEC"]),
                    ]
                    .concat();
                    if conn.send(&pipeline).is_err() {
                        break;
                    }
                    let mut last = None;
                    for _ in 0..6 {
                        match conn.try_reply() {
                            Ok(Some(reply)) => last = Some(reply),
                            _ => break 'writing,
                        }
                    }
                    let at = Reply::Int(n as i64);
                    let ok = Reply::Array(vec![Reply::ok(), at.clone(), Reply::Array(vec![at])]);
                    assert_eq!(last, Some(ok), "transaction {n}");
                    acknowledged = n;
                }
                (a, b, acknowledged)
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    server.kill9();
    writers.into_iter().map(|w| w.join().unwrap()).collect()
}

/// How a transaction met an injected fdatasync failure on shard 0.
#[derive(Debug, PartialEq)]
enum Met {
    /// A part failed: the transaction was undone, the client got the error.
    Undone,
    /// The coordinator's commit record failed: the transaction stands, unconfirmed.
    Unconfirmed,
    /// Shard 0 already refused writes: its commands failed inside the reply.
    RefusedInside,
}

/// What series `s` (`DUPLICATE_POLICY LAST`) holds after transactions `1..=n`: the value
/// at 1 overwritten by each, and one sample added by each.
fn after_transactions(n: u64) -> Vec<(u64, f64)> {
    let overwritten = (n > 0).then_some((1, n as f64));
    overwritten
        .into_iter()
        .chain((1..=n).map(|i| (1000 + i, i as f64)))
        .collect()
}

/// Runs transactions over a series of each shard until the `fail_at`th fdatasync of
/// shard 0 fails; checks that what a reader sees then is what a restart recovers.
fn fdatasync_failure_in_a_series_transaction(fail_at: u64) -> Met {
    use tskv::fault::FDATASYNC_EIO_VAR;
    let dir = tempfile::tempdir().unwrap();
    let fault = format!("0:{fail_at}");
    let launch = common::Launch {
        env: &[(FDATASYNC_EIO_VAR, fault.as_str())],
        ..common::Launch::default()
    };
    let mut server = TestServer::start_in_with(dir.path(), &["--shards", "2"], &launch);
    let (s0, s1) = pair("undo:");
    let created = keys_on(1, "created:", 100);
    // A TS.INCRBY creates its missing series before it refuses a bad value.
    let incremented = keys_on(1, "incremented:", 100);
    let made = keys_on(1, "made:", 100);
    let mut conn = server.raw();
    // Uncompressed 128-byte chunks (about seven samples): a seal is due every eighth open
    // sample, so some parts would seal (merging the chunks from timestamp 1 on) if the
    // series' seals were not held until the transaction is decided.
    let create = [
        "DUPLICATE_POLICY",
        "LAST",
        "ENCODING",
        "UNCOMPRESSED",
        "CHUNK_SIZE",
        "128",
    ];
    for key in [&s0, &s1] {
        let reply = conn.request(&[&["TS.CREATE", key.as_str()], &create[..]].concat());
        if reply != Reply::ok() {
            // The failure hit the creation itself: nothing to learn from this count.
            return Met::RefusedInside;
        }
    }
    let mut acknowledged = 0;
    let mut failure = None;
    for n in 1..100u64 {
        let (v, late) = (n.to_string(), (1000 + n).to_string());
        conn.request(&["MULTI"]);
        for key in [&s0, &s1] {
            conn.request(&["TS.ADD", key, "1", &v]);
            conn.request(&["TS.ADD", key, &late, &v]);
        }
        conn.request(&["TS.ADD", &created[n as usize], "1", "1"]);
        conn.request(&["TS.INCRBY", &incremented[n as usize], "not-a-number"]);
        conn.request(&["TS.CREATE", &made[n as usize], "LABELS", "made", "yes"]);
        conn.request(&["TS.ALTER", &s1, "LABELS", "round", &v]);
        let mut ok: Vec<Reply> = [1, 1000 + n, 1, 1000 + n, 1]
            .iter()
            .map(|&t| Reply::Int(t as i64))
            .collect();
        ok.push(Reply::err("ERR TSDB: invalid increase/decrease value"));
        ok.extend([Reply::ok(), Reply::ok()]);
        match conn.request(&["EXEC"]) {
            Reply::Array(replies) if replies == ok => acknowledged = n,
            other => {
                failure = Some((n, other));
                break;
            }
        }
    }
    let (failed, reply) = failure.expect("the injected failure must refuse a transaction");
    let (met, want0, want1) = match &reply {
        Reply::Error(text) if text.contains("not confirmed") => (Met::Unconfirmed, failed, failed),
        Reply::Error(text) => {
            assert!(text.contains("refuses writes"), "{text}");
            (Met::Undone, acknowledged, acknowledged)
        }
        Reply::Array(replies) => {
            assert!(replies[0].is_error() && replies[1].is_error(), "{reply:?}");
            assert!(!replies[2].is_error(), "{reply:?}");
            (Met::RefusedInside, acknowledged, failed)
        }
        other => panic!("transaction {failed} answered {other:?}"),
    };
    let f = failed as usize;
    let created_failed = [&created[f], &incremented[f], &made[f]];
    let exists_failed = Reply::Int(3 * i64::from(want1 == failed));
    let mut reader = server.raw();
    assert_eq!(
        samples_of(reader.request(&["TS.RANGE", &s1, "-", "+"])),
        after_transactions(want1),
        "{met:?} after {reply:?}"
    );
    let exists = [
        "EXISTS",
        created_failed[0],
        created_failed[1],
        created_failed[2],
    ];
    assert_eq!(
        reader.request(&exists),
        exists_failed,
        "series the transaction created"
    );
    // The label TS.ALTER gave s1: the last transaction's that counts.
    let round = |n: u64| (n > 0).then(|| n.to_string());
    assert_eq!(round_label(&mut reader, &s1), round(want1), "{met:?}");
    server.kill9();
    drop(server);
    let server = TestServer::start_in(dir.path(), &["--shards", "2"]);
    let mut conn = server.raw();
    for (key, want) in [(&s0, want0), (&s1, want1)] {
        assert_eq!(
            samples_of(conn.request(&["TS.RANGE", key, "-", "+"])),
            after_transactions(want),
            "{key} after the restart ({met:?})"
        );
    }
    assert_eq!(conn.request(&exists), exists_failed, "after the restart");
    let restarted = round_label(&mut conn, &s1);
    assert_eq!(restarted, round(want1), "{met:?} after the restart");
    met
}

/// The value of label `round` in `TS.INFO key` (RESP2: name, value, ... with `labels` an
/// array of name-value pairs).
fn round_label(conn: &mut common::RawConn, key: &str) -> Option<String> {
    let word = |r: &Reply| match r {
        Reply::Status(s) => Some(s.clone()),
        Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    let Reply::Array(info) = conn.request(&["TS.INFO", key]) else {
        panic!("TS.INFO {key}");
    };
    let at = info
        .iter()
        .position(|r| word(r).as_deref() == Some("labels"))?;
    let Reply::Array(labels) = &info[at + 1] else {
        panic!("labels: {:?}", info[at + 1]);
    };
    labels.iter().find_map(|pair| match pair {
        Reply::Array(pair) if word(&pair[0]).as_deref() == Some("round") => word(&pair[1]),
        _ => None,
    })
}

#[test]
fn a_failed_part_undoes_the_other_shards_samples() {
    let met: Vec<Met> = (3..=8)
        .map(fdatasync_failure_in_a_series_transaction)
        .collect();
    eprintln!("fdatasync failures 3..=8 met transactions as {met:?}");
    assert!(
        met.contains(&Met::Undone),
        "no failure hit a part (so nothing was undone): {met:?}"
    );
}

#[test]
fn refused_forms_answer_a_precise_error() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut conn = server.raw();
    let (a, b) = pair("refused:");
    assert_eq!(conn.request(&["TS.CREATE", &b]), Reply::ok());
    // Deleting samples by range: the whole EXEC runs nothing.
    let forms: [&[&str]; 1] = [&["TS.DEL", &b, "0", "10"]];
    for form in forms {
        assert_eq!(conn.request(&["MULTI"]), Reply::ok());
        assert_eq!(
            conn.request(&["TS.ADD", &a, "1", "1"]),
            Reply::Status("QUEUED".into())
        );
        assert_eq!(conn.request(form), Reply::Status("QUEUED".into()));
        let want = format!(
            "ERR tskv cannot run {} in a transaction across shards (TS.DEL needs every key of the transaction on one shard)",
            form[0]
        );
        assert_eq!(conn.request(&["EXEC"]), Reply::Error(want), "{form:?}");
        assert_eq!(
            conn.request(&["EXISTS", &a]),
            Reply::Int(0),
            "{form:?}: nothing ran"
        );
    }
    // A sample of a series with a compaction rule: that command fails, the rest runs.
    let (source, other) = pair("rule:");
    let destination = keys_on(0, "rule:dst:", 1).remove(0);
    for key in [&source, &destination] {
        assert_eq!(conn.request(&["TS.CREATE", key]), Reply::ok());
    }
    let rule = [
        "TS.CREATERULE",
        &source,
        &destination,
        "AGGREGATION",
        "avg",
        "1000",
    ];
    assert_eq!(conn.request(&rule), Reply::ok());
    let rule_error = Reply::err("ERR tskv cannot write samples to a time series that is the source or destination of a compaction rule in a transaction across shards");
    for (ts, ruled) in [(1, &source), (2, &destination)] {
        assert_eq!(conn.request(&["MULTI"]), Reply::ok());
        conn.request(&["TS.ADD", ruled, "1", "1"]);
        conn.request(&["TS.ADD", &other, &ts.to_string(), "1"]);
        let want = Reply::Array(vec![rule_error.clone(), Reply::Int(ts)]);
        assert_eq!(conn.request(&["EXEC"]), want, "{ruled}");
        let samples = samples_of(conn.request(&["TS.RANGE", ruled, "-", "+"]));
        assert!(samples.is_empty(), "{ruled}: {samples:?}");
    }
    // Rules themselves are refused when queued, across shards or not.
    assert_eq!(conn.request(&["MULTI"]), Reply::ok());
    assert!(conn.request(&rule).is_error());
    assert_eq!(
        conn.request(&["EXEC"]),
        Reply::err("EXECABORT Transaction discarded because of previous errors.")
    );
}
