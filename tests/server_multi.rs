//! Goal: `MULTI`/`EXEC`/`DISCARD` behave as in Redis 7.0 for a transaction whose keys
//! live on one shard (queued replies, `EXECABORT` after a queued error, run-time errors
//! inside the `EXEC` reply), run atomically and durably; one whose keys span shards runs
//! too (`tests/server_multi_cross_shard.rs` tests it in depth), and commands over the
//! whole key space are refused when queued.
//!
//! Method: tskv with two shards and keys picked with `shard_of` so they share a shard. The
//! same transactions go to a real `redis-server` and to tskv, in RESP2 and RESP3, compared
//! byte for byte. A writer runs `MULTI INCR k INCR k EXEC` while a reader reads `k`: it
//! must never see an odd value. SIGKILL after acknowledged `EXEC`s, then a restart: all
//! their writes are there.

mod common;

use common::frames::Frames;
use common::redis_server::RedisServer;
use common::TestServer;
use tskv::datadir::shard_of;

/// Keys named `<prefix><n>` owned by `shard` of two.
fn keys_on(shard: usize, prefix: &str, count: usize) -> Vec<String> {
    common::keys_on(2, shard, prefix, count)
}

fn differential(resp3: bool) {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut theirs = Frames::connect(redis.port);
    let mut ours = Frames::connect(tskv.port());
    if resp3 {
        theirs.request(&["HELLO", "3"]);
        ours.request(&["HELLO", "3"]);
    }
    let k = keys_on(0, "tx:", 3);
    let (a, b, c) = (k[0].as_str(), k[1].as_str(), k[2].as_str());
    let sequence: Vec<Vec<&str>> = vec![
        vec!["EXEC"],
        vec!["DISCARD"],
        vec!["MULTI"],
        vec!["MULTI"],
        vec!["SET", a, "1"],
        vec!["INCR", a],
        vec!["GET", a],
        vec!["INCR", a, "extra"],
        vec!["EXEC"],
        vec!["GET", a],
        vec!["MULTI"],
        vec!["SET", a, "x"],
        vec!["INCR", a],
        vec!["MGET", a, b],
        vec!["PING"],
        vec!["ECHO", "hi"],
        vec!["APPEND", b, "yz"],
        vec!["GETDEL", b],
        vec!["MSETNX", b, "1", c, "2"],
        vec!["DEL", a, c],
        vec!["EXISTS", a, b, c],
        vec!["GET", c],
        vec!["EXEC"],
        vec!["MULTI"],
        vec!["EXEC"],
        vec!["MULTI"],
        vec!["SET", a, "1"],
        vec!["DISCARD"],
        vec!["GET", a],
        vec!["MULTI"],
        vec!["NOSUCHCOMMAND"],
        vec!["SET", a, "2"],
        vec!["EXEC"],
        vec!["GET", a],
    ];
    for command in &sequence {
        let expected = theirs.request(command);
        let got = ours.request(command);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "resp3={resp3}: {command:?}"
        );
    }
}

#[test]
fn transactions_answer_as_redis_in_resp2() {
    differential(false);
}

#[test]
fn transactions_answer_as_redis_in_resp3() {
    differential(true);
}

#[test]
fn a_transaction_across_shards_commits_and_key_space_commands_are_refused() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut conn = Frames::connect(server.port());
    let (zero, one) = (keys_on(0, "x:", 1), keys_on(1, "x:", 1));
    assert_eq!(conn.request(&["MULTI"]), b"+OK\r\n");
    assert_eq!(conn.request(&["SET", &zero[0], "1"]), b"+QUEUED\r\n");
    assert_eq!(conn.request(&["SET", &one[0], "2"]), b"+QUEUED\r\n");
    assert_eq!(conn.request(&["EXEC"]), b"*2\r\n+OK\r\n+OK\r\n");
    assert_eq!(
        conn.request(&["MGET", &zero[0], &one[0]]),
        b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
    assert_eq!(conn.request(&["MULTI"]), b"+OK\r\n");
    assert_eq!(conn.request(&["SET", &zero[0], "3"]), b"+QUEUED\r\n");
    assert_eq!(
        conn.request(&["INFO"]).first(),
        Some(&b'-'),
        "INFO is refused inside MULTI"
    );
    assert_eq!(
        conn.request(&["EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(conn.request(&["GET", &zero[0]]), b"$1\r\n1\r\n");
}

#[test]
fn no_reader_sees_half_a_transaction() {
    let server = TestServer::start(&["--shards", "2"]);
    let writer_port = server.port();
    let writer = std::thread::spawn(move || {
        let mut conn = Frames::connect(writer_port);
        for _ in 0..300 {
            conn.request(&["MULTI"]);
            conn.request(&["INCR", "pair"]);
            conn.request(&["INCR", "pair"]);
            let reply = conn.request(&["EXEC"]);
            assert!(reply.starts_with(b"*2\r\n:"), "{reply:?}");
        }
    });
    let mut reader = Frames::connect(server.port());
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let reply = String::from_utf8(reader.request(&["GET", "pair"])).unwrap();
        if let Some(value) = reply.lines().nth(1) {
            let n: u64 = value.parse().unwrap();
            assert_eq!(n % 2, 0, "read {n}: half of a transaction");
        }
        reads += 1;
    }
    writer.join().unwrap();
    assert_eq!(reader.request(&["GET", "pair"]), b"$3\r\n600\r\n");
}

#[test]
fn acknowledged_transactions_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path(), &["--shards", "2"]);
    let keys = keys_on(1, "durable:", 4);
    let mut conn = Frames::connect(server.port());
    for round in 0..50 {
        conn.request(&["MULTI"]);
        for key in &keys {
            conn.request(&["SET", key, &round.to_string()]);
        }
        let reply = conn.request(&["EXEC"]);
        assert_eq!(
            reply, b"*4\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n",
            "round {round}"
        );
    }
    server.kill9();
    drop(server);
    let server = TestServer::start_in(dir.path(), &["--shards", "2"]);
    let mut conn = Frames::connect(server.port());
    for key in &keys {
        assert_eq!(conn.request(&["GET", key]), b"$2\r\n49\r\n", "{key}");
    }
}

#[test]
fn type_inside_multi_names_a_series_a_string_and_a_missing_key() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut conn = Frames::connect(server.port());
    let (zero, one) = (keys_on(0, "t:", 3), keys_on(1, "t:", 1));
    assert!(conn.request(&["TS.CREATE", &zero[0]]).starts_with(b"+OK"));
    assert_eq!(conn.request(&["SET", &zero[1], "v"]), b"+OK\r\n");
    // On one shard (one batch), then across shards (a transaction across shards).
    for missing in [&zero[2], &one[0]] {
        assert_eq!(conn.request(&["MULTI"]), b"+OK\r\n");
        for key in [&zero[0], &zero[1], missing] {
            assert_eq!(conn.request(&["TYPE", key]), b"+QUEUED\r\n");
        }
        assert_eq!(
            conn.request(&["EXEC"]),
            b"*3\r\n+TSDB-TYPE\r\n+string\r\n+none\r\n",
            "missing key {missing}"
        );
    }
}

/// Goal: time-series commands on series of one shard run inside `MULTI`/`EXEC` with their
/// usual replies (redis-py's `.ts()` pipelines are transactions by default); one whose
/// keys span shards and that deletes samples with `TS.DEL` runs nothing and says why
/// (what runs across shards: `server_multi_cross_shard_ts`); label-filtered ones are
/// refused when queued, aborting the transaction, as `KEYS` is.
#[test]
fn time_series_commands_run_in_a_transaction_on_one_shard() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut conn = Frames::connect(server.port());
    let (zero, one) = (keys_on(0, "ts:", 2), keys_on(1, "ts:", 1));
    let (a, b) = (zero[0].as_str(), zero[1].as_str());
    let queued: Vec<Vec<&str>> = vec![
        vec!["TS.CREATE", a, "LABELS", "room", "lab"],
        vec!["TS.ADD", a, "1000", "20.5"],
        vec![
            "TS.MADD", a, "2000", "21", b, "2000", "1", a, "3000", "21.5",
        ],
        vec!["TS.INCRBY", a, "1", "TIMESTAMP", "4000"],
        vec!["SET", "plain", "v"],
        vec!["TS.RANGE", a, "-", "+"],
        vec!["TS.GET", a],
    ];
    // The key `plain` may live on either shard: keep the transaction on shard 0.
    let plain_shard = shard_of(b"plain", 2).0;
    assert_eq!(conn.request(&["MULTI"]), b"+OK\r\n");
    for command in &queued {
        if command[1] == "plain" && plain_shard != 0 {
            continue;
        }
        assert_eq!(conn.request(command), b"+QUEUED\r\n", "{command:?}");
    }
    let plain = if plain_shard == 0 { "+OK\r\n" } else { "" };
    let count = if plain_shard == 0 { 7 } else { 6 };
    let want = format!(
        "*{count}\r\n+OK\r\n:1000\r\n*3\r\n:2000\r\n-ERR TSDB: the key does not exist\r\n:3000\r\n\
         :4000\r\n{plain}*4\r\n*2\r\n:1000\r\n+20.5\r\n*2\r\n:2000\r\n+21\r\n*2\r\n:3000\r\n+21.5\r\n\
         *2\r\n:4000\r\n+22.5\r\n*2\r\n:4000\r\n+22.5\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&conn.request(&["EXEC"])),
        want,
        "EXEC reply"
    );
    // Across shards with a TS.DEL: nothing runs.
    assert_eq!(conn.request(&["MULTI"]), b"+OK\r\n");
    assert_eq!(conn.request(&["TS.ADD", a, "5000", "1"]), b"+QUEUED\r\n");
    let del = ["TS.DEL", &one[0], "0", "10"];
    assert_eq!(conn.request(&del), b"+QUEUED\r\n");
    let refused = conn.request(&["EXEC"]);
    assert!(
        String::from_utf8_lossy(&refused).contains("across shards"),
        "{}",
        String::from_utf8_lossy(&refused)
    );
    assert_eq!(conn.request(&["TS.GET", a]), b"*2\r\n:4000\r\n+22.5\r\n");
    assert_eq!(conn.request(&["EXISTS", &one[0]]), b":0\r\n");
    // Label-filtered commands are refused when queued.
    assert_eq!(conn.request(&["MULTI"]), b"+OK\r\n");
    assert_eq!(conn.request(&["TS.ADD", a, "6000", "1"]), b"+QUEUED\r\n");
    assert_eq!(
        conn.request(&["TS.MGET", "FILTER", "room=lab"]).first(),
        Some(&b'-')
    );
    assert_eq!(
        conn.request(&["EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(conn.request(&["TS.GET", a]), b"*2\r\n:4000\r\n+22.5\r\n");
}
