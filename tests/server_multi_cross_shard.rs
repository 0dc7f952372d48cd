//! Goal: a transaction whose keys live on several shards (`MULTI`/`EXEC`, `MSETNX`,
//! `RENAME`, also inside `MULTI`) answers as Redis does, is atomic (no client sees part of it, concurrent ones
//! on the same keys in any order all finish), and is durable as one unit: after SIGKILL
//! every acknowledged transaction is wholly there and no other one is partly there.
//!
//! Method: keys picked with `shard_of` so each transaction spans shards. A scripted
//! session goes to a real `redis-server` and to tskv, in RESP2 and RESP3, compared byte for
//! byte (a second connection changes a watched key). Writers increment two keys of two
//! shards in one transaction while readers check that the second key read is never behind
//! the first, and that a transaction reading both sees them equal. Clients increment three
//! keys of three shards in shuffled orders (a lock-order deadlock would hang them; the
//! connections' read timeout turns that into a failure). Clients race `MSETNX` on the same
//! keys: one wins whole. Writers with small memtables (so flushes happen mid-transaction)
//! are killed with SIGKILL, and every pair written by one transaction must come back equal
//! and at least as new as the last acknowledged one.

mod common;

use common::frames::Frames;
use common::redis_server::RedisServer;
use common::{Reply, TestServer};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tskv::datadir::shard_of;

/// The first `count` keys `<prefix><n>` owned by `shard` of `shards`.
fn keys_on(shards: usize, shard: usize, prefix: &str, count: usize) -> Vec<String> {
    common::keys_on(shards, shard, prefix, count)
}

fn text(reply: Vec<u8>) -> String {
    String::from_utf8(reply).unwrap()
}

/// The integer of a `GET` reply (`$-1` is 0).
fn int_of(reply: &[u8]) -> i64 {
    let reply = std::str::from_utf8(reply).unwrap();
    reply.lines().nth(1).map_or(0, |v| v.parse().unwrap())
}

fn differential(resp3: bool) {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut theirs = Frames::connect(redis.port);
    let mut ours = Frames::connect(tskv.port());
    let mut theirs_other = Frames::connect(redis.port);
    let mut ours_other = Frames::connect(tskv.port());
    if resp3 {
        theirs.request(&["HELLO", "3"]);
        ours.request(&["HELLO", "3"]);
    }
    let (zero, one) = (keys_on(2, 0, "tx:", 3), keys_on(2, 1, "tx:", 4));
    let (a, b, c, d) = (
        zero[0].as_str(),
        one[0].as_str(),
        one[1].as_str(),
        zero[1].as_str(),
    );
    let (e, f, h) = (zero[2].as_str(), one[2].as_str(), one[3].as_str());
    // `false`: from the main connection; `true`: from the other one.
    let sequence: Vec<(bool, Vec<&str>)> = vec![
        (false, vec!["MULTI"]),
        (false, vec!["SET", a, "1"]),
        (false, vec!["SET", b, "x"]),
        (false, vec!["INCR", a]),
        (false, vec!["INCR", b]),
        (false, vec!["APPEND", c, "yz"]),
        (false, vec!["MGET", a, b, c]),
        (false, vec!["EXPIRE", c, "1000"]),
        (false, vec!["DEL", a, d]),
        (false, vec!["EXISTS", a, b, c, d]),
        (false, vec!["EXEC"]),
        (false, vec!["MGET", a, b, c, d]),
        (false, vec!["TTL", c]),
        // A queued error aborts the whole transaction, on every shard.
        (false, vec!["MULTI"]),
        (false, vec!["SET", a, "2"]),
        (false, vec!["INCR", b, "extra"]),
        (false, vec!["SET", c, "3"]),
        (false, vec!["EXEC"]),
        (false, vec!["MGET", a, b, c]),
        // DISCARD across shards.
        (false, vec!["MULTI"]),
        (false, vec!["SET", a, "4"]),
        (false, vec!["SET", b, "4"]),
        (false, vec!["DISCARD"]),
        (false, vec!["MGET", a, b]),
        // WATCH on one shard, a transaction on both: unchanged, then changed by another client.
        (false, vec!["WATCH", a, d]),
        (false, vec!["MULTI"]),
        (false, vec!["SET", a, "5"]),
        (false, vec!["SET", b, "5"]),
        (false, vec!["EXEC"]),
        (false, vec!["WATCH", d]),
        (true, vec!["SET", d, "changed"]),
        (false, vec!["MULTI"]),
        (false, vec!["SET", a, "6"]),
        (false, vec!["SET", b, "6"]),
        (false, vec!["EXEC"]),
        (false, vec!["MGET", a, b, d]),
        // Watched keys on both shards: unchanged, then one on the other shard changed.
        (false, vec!["WATCH", a, c]),
        (false, vec!["MULTI"]),
        (false, vec!["SET", d, "9"]),
        (false, vec!["EXEC"]),
        (false, vec!["WATCH", a, c]),
        (true, vec!["SET", c, "changed"]),
        (false, vec!["MULTI"]),
        (false, vec!["SET", d, "10"]),
        (false, vec!["SET", a, "10"]),
        (false, vec!["EXEC"]),
        (false, vec!["MGET", a, c, d]),
        (false, vec!["WATCH", a, c]),
        (false, vec!["UNWATCH"]),
        (true, vec!["SET", a, "changed"]),
        (false, vec!["MULTI"]),
        (false, vec!["SET", d, "11"]),
        (false, vec!["EXEC"]),
        // MSETNX and RENAME across shards, outside MULTI.
        (false, vec!["MSETNX", a, "7", c, "7"]),
        (false, vec!["DEL", a, c]),
        (false, vec!["MSETNX", a, "8", c, "8"]),
        (false, vec!["MGET", a, c]),
        (false, vec!["SET", b, "moved", "PX", "900000"]),
        (false, vec!["RENAME", b, d]),
        (false, vec!["MGET", b, d]),
        (false, vec!["RENAMENX", d, a]),
        (false, vec!["RENAMENX", d, b]),
        (false, vec!["MGET", b, d]),
        (false, vec!["RENAME", d, a]),
        (false, vec!["EXISTS", b]),
        // MSETNX and RENAME across shards inside MULTI: each sees the commands queued
        // before it, and a failing one gets its error inside the EXEC reply.
        (false, vec!["MULTI"]),
        (false, vec!["SET", e, "m1"]),
        (false, vec!["RENAME", e, f]),
        (false, vec!["GET", f]),
        (false, vec!["EXISTS", e]),
        (false, vec!["MSETNX", e, "n1", c, "n1"]),
        (false, vec!["MSETNX", e, "n2", h, "n2"]),
        (false, vec!["RENAMENX", f, e]),
        (false, vec!["RENAME", "tx:nokey", f]),
        (false, vec!["INCR", e]),
        (false, vec!["EXEC"]),
        (false, vec!["MGET", e, f, h, c]),
    ];
    for (other, command) in &sequence {
        let (expected, got) = if *other {
            (theirs_other.request(command), ours_other.request(command))
        } else {
            (theirs.request(command), ours.request(command))
        };
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "resp3={resp3}: {command:?}"
        );
    }
    // The deadline moved with the value (compared loosely: time passes).
    let moved = text(ours.request(&["PTTL", b]));
    assert!(moved.starts_with(':'), "{moved}");
    let ms: i64 = moved[1..].trim().parse().unwrap();
    assert!(
        ms > 800_000 && ms <= 900_000,
        "RENAME keeps the deadline: {ms}"
    );
}

#[test]
fn transactions_across_shards_answer_as_redis_in_resp2() {
    differential(false);
}

#[test]
fn transactions_across_shards_answer_as_redis_in_resp3() {
    differential(true);
}

#[test]
fn no_reader_sees_half_a_transaction_across_shards() {
    let server = TestServer::start(&["--shards", "2"]);
    let (first, second) = (keys_on(2, 0, "pair:", 1), keys_on(2, 1, "pair:", 1));
    let watched = keys_on(2, 0, "watched:", 1).remove(0);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (first, second) = (first[0].clone(), second[0].clone());
    let port = server.port();
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (first, second, watched) = (first.clone(), second.clone(), watched.clone());
            std::thread::spawn(move || {
                let mut conn = Frames::connect(port);
                for _ in 0..300 {
                    // Watching a key of the first shard runs that shard's part first and
                    // the other's only after it is durable: a wide window in which a
                    // reader not held back by the locks would see one key moved and not
                    // the other.
                    conn.request(&["WATCH", &watched]);
                    conn.request(&["MULTI"]);
                    conn.request(&["INCR", &first]);
                    conn.request(&["INCR", &second]);
                    let reply = conn.request(&["EXEC"]);
                    assert!(reply.starts_with(b"*2\r\n:"), "{reply:?}");
                }
            })
        })
        .collect();
    let atomic_reader = {
        let (first, second) = (first.clone(), second.clone());
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let mut atomic = Frames::connect(port);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                atomic.request(&["MULTI"]);
                atomic.request(&["GET", &first]);
                atomic.request(&["GET", &second]);
                let both = text(atomic.request(&["EXEC"]));
                // A missing key (`$-1`) counts as 0, as INCR starts it.
                let values: Vec<&str> = both
                    .lines()
                    .skip(1)
                    .filter(|l| !l.starts_with('$') || *l == "$-1")
                    .map(|l| if l == "$-1" { "0" } else { l })
                    .collect();
                assert_eq!(values.len(), 2, "{both}");
                assert_eq!(values[0], values[1], "one transaction saw {both:?}");
            }
        })
    };
    let mut plain = Frames::connect(port);
    let mut reads = 0;
    while writers.iter().any(|w| !w.is_finished()) || reads == 0 {
        // The first key is read first: the second can only have moved on since.
        let a = int_of(&plain.request(&["GET", &first]));
        let b = int_of(&plain.request(&["GET", &second]));
        assert!(
            b >= a,
            "read {first}={a} then {second}={b}: half a transaction"
        );
        reads += 1;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    atomic_reader.join().unwrap();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(int_of(&plain.request(&["GET", &first])), 600);
    assert_eq!(int_of(&plain.request(&["GET", &second])), 600);
}

#[test]
fn overlapping_transactions_in_any_key_order_all_commit() {
    let server = TestServer::start(&["--shards", "3"]);
    let keys: Vec<String> = (0..3).map(|s| keys_on(3, s, "ctr:", 1).remove(0)).collect();
    let port = server.port();
    let seed = common::test_seed();
    let clients: Vec<_> = (0..6u64)
        .map(|client| {
            let keys = keys.clone();
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ client);
                let mut conn = Frames::connect(port);
                for _ in 0..100 {
                    let mut order = keys.clone();
                    order.shuffle(&mut rng);
                    conn.request(&["MULTI"]);
                    for key in &order {
                        conn.request(&["INCR", key]);
                    }
                    let reply = conn.request(&["EXEC"]);
                    assert!(reply.starts_with(b"*3\r\n:"), "{reply:?}");
                    if rng.gen_bool(0.2) {
                        // A plain read of a locked key waits its turn, too.
                        conn.request(&["GET", &order[0]]);
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client
            .join()
            .expect("a client failed (a stuck transaction times out)");
    }
    let mut conn = Frames::connect(port);
    for key in &keys {
        assert_eq!(int_of(&conn.request(&["GET", key])), 600, "{key}");
    }
}

#[test]
fn racing_msetnx_across_shards_has_one_whole_winner() {
    let server = TestServer::start(&["--shards", "3"]);
    let keys: Vec<String> = (0..3).map(|s| keys_on(3, s, "nx:", 1).remove(0)).collect();
    let port = server.port();
    let racers: Vec<_> = (0..6)
        .map(|racer| {
            let keys = keys.clone();
            std::thread::spawn(move || {
                let mut conn = Frames::connect(port);
                let value = format!("racer{racer}");
                let mut args = vec!["MSETNX"];
                for key in &keys {
                    args.push(key);
                    args.push(&value);
                }
                conn.request(&args) == b":1\r\n"
            })
        })
        .collect();
    let winners: Vec<usize> = racers
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.join().unwrap().then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let mut conn = Frames::connect(port);
    let mut args = vec!["MGET"];
    args.extend(keys.iter().map(String::as_str));
    let all = text(conn.request(&args));
    assert_eq!(
        all.matches(&format!("racer{}", winners[0])).count(),
        3,
        "the winner's values, all of them: {all}"
    );
}

#[test]
fn acknowledged_transactions_across_shards_survive_sigkill_whole() {
    let dir = tempfile::tempdir().unwrap();
    // Small memtables and segments: flushes and segment changes happen between a part
    // and its commit.
    let args = [
        "--shards",
        "3",
        "--memtable-bytes",
        "64KiB",
        "--wal-segment-bytes",
        "256KiB",
    ];
    // Several kills into one data directory: each lands in the middle of some
    // transactions, and each restart replays the WALs the kills before it left.
    for round in 0..3 {
        let mut server = TestServer::start_in(dir.path(), &args);
        let outcomes = write_pairs_until_killed(&mut server, round);
        drop(server);
        let server = TestServer::start_in(dir.path(), &args);
        let mut conn = Frames::connect(server.port());
        for (a, b, acknowledged) in outcomes {
            assert!(acknowledged > 10, "the writer barely ran ({acknowledged})");
            let (va, vb) = (
                text(conn.request(&["GET", &a])),
                text(conn.request(&["GET", &b])),
            );
            assert_eq!(
                va, vb,
                "round {round}: {a} and {b} were written by the same transactions"
            );
            let n: u64 = va
                .lines()
                .nth(1)
                .and_then(|v| v.split(':').next())
                .and_then(|n| n.parse().ok())
                .expect("a value");
            assert!(
                n == acknowledged || n == acknowledged + 1,
                "round {round}: {a}: transaction {n} after {acknowledged} acknowledged"
            );
        }
    }
}

/// Eight writers each set a pair of keys on two shards in one transaction, over and over,
/// until the server is killed; returns each pair and its last acknowledged transaction.
fn write_pairs_until_killed(server: &mut TestServer, round: usize) -> Vec<(String, String, u64)> {
    let port = server.port();
    let writers: Vec<_> = (0..8usize)
        .map(|w| {
            let a = keys_on(3, w % 3, &format!("r{round}w{w}a:"), 1).remove(0);
            let b = keys_on(3, (w + 1) % 3, &format!("r{round}w{w}b:"), 1).remove(0);
            std::thread::spawn(move || {
                let mut conn = common::RawConn::to_port(port);
                let padding = "p".repeat(200);
                let mut acknowledged = 0u64;
                'writing: for n in 1u64.. {
                    let value = format!("{n}:{padding}");
                    let pipeline = [
                        common::encode(&["MULTI"]),
                        common::encode(&["SET", &a, &value]),
                        common::encode(&["SET", &b, &value]),
                        common::encode(&["EXEC"]),
                    ]
                    .concat();
                    if conn.send(&pipeline).is_err() {
                        break;
                    }
                    let mut last = None;
                    for _ in 0..4 {
                        match conn.try_reply() {
                            Ok(Some(reply)) => last = Some(reply),
                            _ => break 'writing,
                        }
                    }
                    let ok = Reply::Array(vec![Reply::ok(), Reply::ok()]);
                    assert_eq!(last, Some(ok), "transaction {n}");
                    acknowledged = n;
                }
                (a, b, acknowledged)
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
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
    /// Shard 0 already refused writes when the transaction ran: its command failed inside
    /// the `EXEC` reply, the others ran (as Redis runs the rest after a run-time error).
    RefusedInside,
}

/// Runs transactions over a key of each of two shards until the `fail_at`th fdatasync of
/// shard 0 fails; checks that what a reader sees then is what a restart recovers.
fn fdatasync_failure_in_a_transaction(fail_at: u64) -> Met {
    use tskv::fault::FDATASYNC_EIO_VAR;
    let dir = tempfile::tempdir().unwrap();
    let fault = format!("0:{fail_at}");
    let launch = common::Launch {
        env: &[(FDATASYNC_EIO_VAR, fault.as_str())],
        ..common::Launch::default()
    };
    let mut server = TestServer::start_in_with(dir.path(), &["--shards", "2"], &launch);
    let (k0, k1) = (
        keys_on(2, 0, "f:", 1).remove(0),
        keys_on(2, 1, "f:", 1).remove(0),
    );
    let mut conn = server.raw();
    let mut acknowledged = 0;
    let mut failure = None;
    for n in 1..100 {
        let value = n.to_string();
        conn.request(&["MULTI"]);
        conn.request(&["SET", &k0, &value]);
        conn.request(&["SET", &k1, &value]);
        match conn.request(&["EXEC"]) {
            Reply::Array(replies) if replies == [Reply::ok(), Reply::ok()] => acknowledged = n,
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
            assert!(replies[0].is_error(), "{reply:?}");
            assert_eq!(replies[1], Reply::ok(), "{reply:?}");
            (Met::RefusedInside, acknowledged, failed)
        }
        other => panic!("transaction {failed} answered {other:?}"),
    };
    let mut reader = server.raw();
    assert_eq!(
        reader.request(&["GET", &k1]),
        Reply::bulk(want1.to_string()),
        "{met:?} after {reply:?}"
    );
    server.kill9();
    drop(server);
    let server = TestServer::start_in(dir.path(), &["--shards", "2"]);
    let mut conn = server.raw();
    for (key, want) in [(&k0, want0), (&k1, want1)] {
        assert_eq!(
            conn.request(&["GET", key]),
            Reply::bulk(want.to_string()),
            "{key} after the restart ({met:?})"
        );
    }
    met
}

#[test]
fn a_failed_fdatasync_leaves_a_transaction_whole_or_absent_as_served() {
    let met: Vec<Met> = (3..=8).map(fdatasync_failure_in_a_transaction).collect();
    eprintln!("fdatasync failures 3..=8 met transactions as {met:?}");
    assert!(
        met.contains(&Met::Undone),
        "no failure hit a part (so nothing was undone): {met:?}"
    );
}

/// A field of `INFO persistence`, summed over the shards.
fn persistence_field(conn: &mut Frames, field: &str) -> u64 {
    common::info_number(&text(conn.request(&["INFO", "persistence"])), field)
}

#[test]
fn a_transaction_reads_cold_keys_through_the_ring_not_on_the_loop() {
    let server = TestServer::start(&[
        "--shards",
        "2",
        "--memtable-bytes",
        "65536",
        "--block-cache-bytes",
        "65536",
    ]);
    let keys: Vec<String> = (0..20_000).map(|i| format!("cold:{i:06}")).collect();
    let value = |key: &str| format!("{key}:{}", "v".repeat(180));
    let mut writer = common::RawConn::to_port(server.port());
    for chunk in keys.chunks(500) {
        let pipeline: Vec<u8> = chunk
            .iter()
            .flat_map(|k| common::encode(&["SET", k, &value(k)]))
            .collect();
        writer.send(&pipeline).unwrap();
        for _ in chunk {
            assert_eq!(writer.reply(), Reply::ok());
        }
    }
    let mut conn = Frames::connect(server.port());
    assert_eq!(conn.request(&["SAVE"]), b"+OK\r\n");
    let (zero, one): (Vec<&String>, Vec<&String>) =
        keys.iter().partition(|k| shard_of(k.as_bytes(), 2).0 == 0);
    let async_before = persistence_field(&mut conn, "block_reads_async");
    let misses_before = persistence_field(&mut conn, "block_cache_misses");
    for i in 0..200 {
        let (a, b) = (zero[i * 37 % zero.len()], one[i * 53 % one.len()]);
        // A watched cold key is checked from memory too, across shards or on one.
        let watched = zero[i * 71 % zero.len()];
        assert_eq!(conn.request(&["WATCH", watched]), b"+OK\r\n");
        conn.request(&["MULTI"]);
        conn.request(&["GET", a]);
        if i % 2 == 0 {
            conn.request(&["GET", b]);
        }
        let reply = text(conn.request(&["EXEC"]));
        let (va, vb) = (value(a), value(b));
        let expected = if i % 2 == 0 {
            format!("*2\r\n${}\r\n{va}\r\n${}\r\n{vb}\r\n", va.len(), vb.len())
        } else {
            format!("*1\r\n${}\r\n{va}\r\n", va.len())
        };
        assert_eq!(reply, expected, "transaction {i}");
    }
    let reads = persistence_field(&mut conn, "block_reads_async") - async_before;
    let misses = persistence_field(&mut conn, "block_cache_misses") - misses_before;
    assert!(
        reads > 100,
        "the parts' blocks were read through the ring ({reads})"
    );
    // A compaction that swaps tables between a lock's reads and its part can cost a read
    // on the loop now and then; without the reads at lock time every lookup would.
    assert!(
        misses * 10 < reads,
        "parts read blocks on the loop: {misses} cache misses for {reads} reads through the ring"
    );
}

#[test]
fn a_transaction_across_shards_that_only_reads_writes_nothing() {
    let server = TestServer::start(&["--shards", "2"]);
    let (a, b) = (
        keys_on(2, 0, "ro:", 1).remove(0),
        keys_on(2, 1, "ro:", 1).remove(0),
    );
    let mut conn = Frames::connect(server.port());
    conn.request(&["MSET", &a, "1", &b, "2"]);
    let batches_before = persistence_field(&mut conn, "wal_batches");
    for _ in 0..20 {
        conn.request(&["MULTI"]);
        conn.request(&["GET", &a]);
        conn.request(&["GET", &b]);
        assert_eq!(
            conn.request(&["EXEC"]),
            b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n",
            "both values"
        );
        // An MSETNX that finds a key writes nothing either.
        assert_eq!(conn.request(&["MSETNX", &a, "x", &b, "y"]), b":0\r\n");
    }
    let batches = persistence_field(&mut conn, "wal_batches") - batches_before;
    assert_eq!(batches, 0, "reads took {batches} WAL batches");
}
