//! Goal: the connection and server commands that tools send (`TIME`, `WAIT`, `MEMORY`,
//! `OBJECT`, `CLIENT KILL|NO-EVICT|REPLY`) answer as Redis 7.0 does, and where tskv's
//! answer must differ (the clock, memory sizes), it has Redis's shape and means what the
//! README says.
//!
//! Method: the same command sequences go to a real `redis-server` and to tskv with two
//! shards (keys on both), over raw TCP in RESP2 and in RESP3, and every reply whose value
//! is deterministic must be the same bytes; the others are checked for shape. `CLIENT
//! REPLY` is checked on one pipelined burst, whose whole reply stream must equal Redis's
//! (silenced replies leave no gap and no reordering, also for keys of the other shard).
//! `CLIENT KILL` is checked by watching the killed sockets reach end of stream: sixteen
//! clients, so both shards have some (all on one shard has odds of 2^-15).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::frames::Frames;
use common::redis_server::RedisServer;
use common::{encode, TestServer};

/// Commands whose replies tskv and Redis 7.0 must send identically.
const SEQUENCE: &[&[&str]] = &[
    &["SET", "int", "42"],
    &["SET", "shared", "9999"],
    &["SET", "unshared", "10000"],
    &["SET", "neg", "-5"],
    &["SET", "zeros", "007"],
    &["SET", "short", "hello"],
    &[
        "SET",
        "edge44",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ],
    &[
        "SET",
        "edge45",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ],
    &["INCR", "counter"],
    &["OBJECT", "ENCODING", "int"],
    &["OBJECT", "ENCODING", "shared"],
    &["OBJECT", "ENCODING", "neg"],
    &["OBJECT", "ENCODING", "zeros"],
    &["OBJECT", "ENCODING", "short"],
    &["OBJECT", "ENCODING", "edge44"],
    &["OBJECT", "ENCODING", "edge45"],
    &["OBJECT", "ENCODING", "counter"],
    &["OBJECT", "ENCODING", "nokey"],
    &["OBJECT", "REFCOUNT", "shared"],
    &["OBJECT", "REFCOUNT", "unshared"],
    &["OBJECT", "REFCOUNT", "short"],
    &["OBJECT", "REFCOUNT", "nokey"],
    &["OBJECT", "FREQ", "short"],
    &["OBJECT", "FREQ", "nokey"],
    &["OBJECT", "IDLETIME", "nokey"],
    &["OBJECT"],
    &["OBJECT", "ENCODING"],
    &["OBJECT", "ENCODING", "a", "b"],
    &["OBJECT", "foo", "a"],
    &["MEMORY", "USAGE", "nokey"],
    &["MEMORY", "USAGE", "short", "SAMPLES", "-1"],
    &["MEMORY", "USAGE", "short", "SAMPLES", "x"],
    &["MEMORY", "USAGE", "short", "SAMPLES"],
    &["MEMORY", "USAGE", "short", "foo", "1"],
    &["MEMORY", "USAGE"],
    &["MEMORY", "foo"],
    &["MEMORY"],
    &["MEMORY", "DOCTOR", "x"],
    &["MEMORY", "PURGE"],
    &["WAIT", "0", "0"],
    &["WAIT", "1", "10"],
    &["WAIT", "x", "0"],
    &["WAIT", "0", "-1"],
    &["WAIT", "0", "x"],
    &["WAIT", "0"],
    &["TIME", "x"],
    &["MULTI"],
    &["WAIT", "0", "0"],
    &["SET", "inside", "1"],
    &["EXEC"],
    &["CLIENT", "NO-EVICT", "maybe"],
    &["CLIENT", "NO-EVICT", "on"],
    &["CLIENT", "NO-EVICT", "off"],
    &["CLIENT", "NO-EVICT"],
    &["CLIENT", "REPLY", "maybe"],
    &["CLIENT", "REPLY", "on"],
    &["CLIENT", "REPLY"],
    &["CLIENT", "KILL"],
    &["CLIENT", "KILL", "1.2.3.4:5"],
    &["CLIENT", "KILL", "ID", "0"],
    &["CLIENT", "KILL", "ID", "x"],
    &["CLIENT", "KILL", "ID", "987654"],
    &["CLIENT", "KILL", "USER", "nobody"],
    &["CLIENT", "KILL", "USER", "default"],
    &["CLIENT", "KILL", "SKIPME", "maybe"],
    &["CLIENT", "KILL", "TYPE", "foo"],
    &["CLIENT", "KILL", "TYPE", "master"],
    &["CLIENT", "KILL", "ADDR", "1.2.3.4:5", "ID"],
    &["CLIENT", "KILL", "ADDR", "1.2.3.4:5", "NOSUCH", "x"],
    &["CLIENT", "KILL", "ADDR", "1.2.3.4:5"],
];

fn differential_run(protocol: &str) {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut theirs = Frames::connect(redis.port);
    let mut ours = Frames::connect(tskv.port());
    if protocol == "3" {
        theirs.request(&["HELLO", "3"]);
        ours.request(&["HELLO", "3"]);
    }
    for command in SEQUENCE {
        let expected = theirs.request(command);
        let got = ours.request(command);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "RESP{protocol}: {command:?}"
        );
    }
    // Deterministic in shape only: the clock, tskv's own memory figures, idle times.
    let time = ours.request(&["TIME"]);
    let text = String::from_utf8_lossy(&time);
    let fields: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(fields[0], "*2", "TIME is a two-element array: {text:?}");
    let secs: u64 = fields[2].parse().expect("seconds");
    let micros: u64 = fields[4].parse().expect("microseconds");
    let theirs_secs: u64 = String::from_utf8_lossy(&theirs.request(&["TIME"]))
        .split("\r\n")
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        micros < 1_000_000 && secs.abs_diff(theirs_secs) <= 5,
        "{text:?}"
    );
    assert_eq!(ours.request(&["OBJECT", "IDLETIME", "short"]), b":0\r\n");
    for key in ["int", "short", "edge45"] {
        let usage = ours.request(&["MEMORY", "USAGE", key]);
        assert!(usage.starts_with(b":"), "{key}: {usage:?}");
    }
}

#[test]
fn replies_match_redis_in_resp2() {
    differential_run("2");
}

#[test]
fn replies_match_redis_in_resp3() {
    differential_run("3");
}

fn integer(reply: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(reply);
    text.trim_start_matches(':')
        .trim_end()
        .parse()
        .unwrap_or_else(|_| panic!("an integer reply: {text:?}"))
}

#[test]
fn memory_usage_is_the_stored_size_of_strings_and_series() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut conn = Frames::connect(tskv.port());
    conn.request(&["SET", "small", "v"]);
    let big = "x".repeat(10_000);
    conn.request(&["SET", "big", &big]);
    let small = integer(&conn.request(&["MEMORY", "USAGE", "small"]));
    let large = integer(&conn.request(&["MEMORY", "USAGE", "big", "SAMPLES", "0"]));
    // Key and value bytes plus the memtable's fixed charge per entry (64 bytes).
    assert_eq!(small, 5 + 1 + 64);
    assert_eq!(large, 3 + 10_000 + 64);

    conn.request(&["TS.CREATE", "temp"]);
    for ts in 1..=50 {
        let ts = ts.to_string();
        conn.request(&["TS.ADD", "temp", &ts, "21.5"]);
    }
    let series = integer(&conn.request(&["MEMORY", "USAGE", "temp"]));
    let info = String::from_utf8_lossy(&conn.request(&["TS.INFO", "temp"])).into_owned();
    let fields: Vec<&str> = info.split("\r\n").collect();
    let at = fields
        .iter()
        .position(|f| *f == "+memoryUsage")
        .expect("TS.INFO has memoryUsage");
    let memory_usage: i64 = fields[at + 1].trim_start_matches(':').parse().unwrap();
    assert_eq!(series, memory_usage + "temp".len() as i64, "{info}");
    assert_eq!(
        conn.request(&["OBJECT", "ENCODING", "temp"]),
        b"$3\r\nraw\r\n"
    );
    assert_eq!(conn.request(&["OBJECT", "REFCOUNT", "temp"]), b":1\r\n");
}

/// One pipelined burst: `CLIENT REPLY OFF|SKIP|ON` in between reads and writes of keys
/// on both shards. The bytes that come back must be Redis's, in the same order.
#[test]
fn client_reply_silences_replies_and_keeps_pipelined_order() {
    let burst: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["CLIENT", "REPLY", "SKIP"],
        &["SET", "b", "2"],
        &["GET", "a"],
        &["CLIENT", "REPLY", "OFF"],
        &["INCR", "a"],
        &["GET", "b"],
        &["NOSUCHCOMMAND"],
        &["CLIENT", "REPLY", "SKIP"],
        &["GET", "c"],
        &["CLIENT", "REPLY", "ON"],
        &["MGET", "a", "b", "c", "d"],
        &["CLIENT", "REPLY", "SKIP"],
        &["CLIENT", "REPLY", "SKIP"],
        &["GET", "a"],
        &["GET", "b"],
        &["CLIENT", "REPLY", "SKIP"],
        &["CLIENT", "REPLY", "ON"],
        &["GET", "a"],
        &["ECHO", "end-of-burst"],
    ];
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "2"]);
    let run = |port: u16| -> Vec<String> {
        let mut conn = Frames::connect(port);
        let bytes: Vec<u8> = burst.iter().flat_map(|c| encode(c)).collect();
        conn.writer.write_all(&bytes).unwrap();
        let mut frames = Vec::new();
        loop {
            let frame = String::from_utf8_lossy(&conn.frame()).into_owned();
            let end = frame.contains("end-of-burst");
            frames.push(frame);
            if end {
                return frames;
            }
        }
    };
    let expected = run(redis.port);
    assert_eq!(expected.len(), 8, "Redis's replies: {expected:?}");
    assert_eq!(run(tskv.port()), expected);
}

/// Whether the server closed `stream` (end of stream or reset), waiting up to 10 s.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 64];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn client_id(conn: &mut Frames) -> String {
    String::from_utf8_lossy(&conn.request(&["CLIENT", "ID"]))
        .trim_start_matches(':')
        .trim_end()
        .to_string()
}

#[test]
fn client_kill_closes_matching_clients_on_every_shard() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut admin = Frames::connect(tskv.port());
    let mut victims: Vec<(Frames, String)> = (0..16)
        .map(|_| {
            let mut conn = Frames::connect(tskv.port());
            let id = client_id(&mut conn);
            (conn, id)
        })
        .collect();

    // By id, one at a time: every victim, whichever shard accepted it, is closed.
    for (mut conn, id) in victims.drain(..8) {
        assert_eq!(admin.request(&["CLIENT", "KILL", "ID", &id]), b":1\r\n");
        assert!(closed_by_server(&mut conn.writer), "client {id} closed");
    }
    assert_eq!(
        admin.request(&["CLIENT", "KILL", "ID", "987654"]),
        b":0\r\n"
    );

    // The old form by address: +OK, then an error once it is gone.
    let (mut conn, _) = victims.pop().unwrap();
    let addr = conn.writer.local_addr().unwrap().to_string();
    assert_eq!(admin.request(&["CLIENT", "KILL", &addr]), b"+OK\r\n");
    assert!(closed_by_server(&mut conn.writer));
    assert_eq!(
        admin.request(&["CLIENT", "KILL", &addr]),
        b"-ERR No such client\r\n"
    );

    // LADDR names the server's address: every client but the caller (SKIPME yes).
    let laddr = format!("127.0.0.1:{}", tskv.port());
    let left = victims.len().to_string();
    assert_eq!(
        admin.request(&["CLIENT", "KILL", "LADDR", &laddr, "USER", "default"]),
        format!(":{left}\r\n").into_bytes()
    );
    for (conn, id) in &mut victims {
        assert!(closed_by_server(&mut conn.writer), "client {id} closed");
    }

    // SKIPME no: the caller is counted and closed after its reply.
    let me = client_id(&mut admin);
    assert_eq!(
        admin.request(&["CLIENT", "KILL", "ID", &me, "SKIPME", "no"]),
        b":1\r\n"
    );
    assert!(closed_by_server(&mut admin.writer));
}

#[test]
fn client_kill_maxage_spares_young_clients() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut old: Vec<Frames> = (0..6).map(|_| Frames::connect(tskv.port())).collect();
    for conn in &mut old {
        conn.request(&["PING"]);
    }
    std::thread::sleep(Duration::from_millis(2500));
    let mut admin = Frames::connect(tskv.port());
    assert_eq!(admin.request(&["CLIENT", "KILL", "MAXAGE", "1"]), b":6\r\n");
    for conn in &mut old {
        assert!(closed_by_server(&mut conn.writer));
    }
    assert_eq!(admin.request(&["PING"]), b"+PONG\r\n");
}

#[test]
fn client_list_shows_transactions_as_redis_does() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut inside = Frames::connect(tskv.port());
    let id = client_id(&mut inside);
    inside.request(&["MULTI"]);
    inside.request(&["SET", "a", "1"]);
    inside.request(&["TIME"]);
    let mut admin = Frames::connect(tskv.port());
    let list = String::from_utf8_lossy(&admin.request(&["CLIENT", "LIST"])).into_owned();
    let line = list
        .lines()
        .find(|l| l.contains(&format!("id={id} ")))
        .expect("the client's line");
    assert!(
        line.contains(" flags=x ") && line.contains(" multi=2 "),
        "{line}"
    );
    let exec = String::from_utf8_lossy(&inside.request(&["EXEC"])).into_owned();
    assert!(exec.starts_with("*2\r\n+OK\r\n*2\r\n$10\r\n"), "{exec:?}");
    let list = String::from_utf8_lossy(&admin.request(&["CLIENT", "LIST"])).into_owned();
    let line = list
        .lines()
        .find(|l| l.contains(&format!("id={id} ")))
        .unwrap();
    assert!(
        line.contains(" flags=N ") && line.contains(" multi=-1 "),
        "{line}"
    );
}

#[test]
fn no_evict_shows_in_client_list_flags() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut conn = Frames::connect(tskv.port());
    let info = |conn: &mut Frames| {
        String::from_utf8_lossy(&conn.request(&["CLIENT", "INFO"])).into_owned()
    };
    assert!(info(&mut conn).contains(" flags=N "));
    conn.request(&["CLIENT", "NO-EVICT", "on"]);
    assert!(info(&mut conn).contains(" flags=e "));
    conn.request(&["CLIENT", "NO-EVICT", "off"]);
    assert!(info(&mut conn).contains(" flags=N "));
}

/// `redis-cli --memkeys` (SCAN, TYPE and MEMORY USAGE per key) reports tskv's stored sizes.
#[test]
fn redis_cli_memkeys_sums_memory_usage() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut conn = Frames::connect(tskv.port());
    let mut expected_bytes = 0;
    for i in 1..=40 {
        let key = format!("key:{i}");
        let value = "x".repeat(i * 10);
        conn.request(&["SET", &key, &value]);
        expected_bytes += key.len() + value.len() + 64;
    }
    let output = std::process::Command::new("redis-cli")
        .args(["-p", &tskv.port().to_string(), "--memkeys"])
        .output()
        .expect("run redis-cli (installed with redis-tools)");
    let text = String::from_utf8_lossy(&output.stdout);
    let wanted = format!("40 strings with {expected_bytes} bytes");
    assert!(text.contains(&wanted), "{wanted:?} in:\n{text}");
    assert!(text.contains("Biggest string found '\"key:40\"'"), "{text}");
}
