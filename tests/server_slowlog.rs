//! Goal: `SLOWLOG GET|LEN|RESET|HELP` keep and show slow commands as Redis 7.0 does, for
//! every shard's connections, so the tools that read it (`redis-cli`, exporters) work.
//!
//! Method: tskv (two shards) and a real `redis-server`, both told to log every command
//! (`slowlog-log-slower-than 0`), get the same session; the logs are compared entry by
//! entry on what does not depend on timing (the arguments as cut and redacted, the client
//! name, the length, ids newest first), and the errors and `HELP` byte for byte. Then a
//! threshold no command reaches logs nothing, and `--slowlog-max-len` bounds the log.

mod common;

use common::redis_server::RedisServer;
use common::{Reply, TestServer};

fn session(raw: &mut common::RawConn) -> Vec<Reply> {
    let big = "x".repeat(200);
    let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let mut mget = vec!["MGET".to_string()];
    mget.extend(many);
    let steps: Vec<Vec<String>> = vec![
        vec!["SLOWLOG".into(), "RESET".into()],
        vec!["CLIENT".into(), "SETNAME".into(), "tester".into()],
        vec!["SET".into(), "k1".into(), "v".into()],
        vec!["GET".into(), "k1".into()],
        vec!["SET".into(), "big".into(), big],
        mget,
        vec![
            "HELLO".into(),
            "2".into(),
            "AUTH".into(),
            "default".into(),
            "pw".into(),
        ],
    ];
    for step in &steps {
        raw.request(step);
    }
    let mut replies = Vec::new();
    for probe in [
        &["SLOWLOG", "LEN"][..],
        &["SLOWLOG", "GET", "6"],
        &["SLOWLOG", "GET", "-2"],
        &["SLOWLOG", "GET", "x"],
        &["SLOWLOG", "LEN", "extra"],
        &["SLOWLOG", "NOPE"],
        &["SLOWLOG", "HELP"],
    ] {
        replies.push(raw.request(probe));
    }
    replies
}

/// An entry without what depends on timing and ports: `[args, name]`; checks the rest's shape.
fn comparable(entry: &Reply) -> Reply {
    let Reply::Array(fields) = entry else {
        panic!("entry {entry:?}");
    };
    assert_eq!(fields.len(), 6, "{entry:?}");
    assert!(matches!(fields[0], Reply::Int(id) if id >= 0));
    assert!(matches!(fields[1], Reply::Int(ts) if ts > 1_600_000_000));
    assert!(matches!(fields[2], Reply::Int(us) if us >= 0));
    let Reply::Bulk(addr) = &fields[4] else {
        panic!("addr {entry:?}");
    };
    assert!(addr.starts_with(b"127.0.0.1:"), "{entry:?}");
    Reply::Array(vec![fields[3].clone(), fields[5].clone()])
}

#[test]
fn slowlog_keeps_what_redis_keeps() {
    let redis = RedisServer::start_with(&["--slowlog-log-slower-than", "0"]);
    let tskv = TestServer::start(&["--shards", "2", "--slowlog-log-slower-than", "0"]);
    let theirs = session(&mut common::RawConn::to_port(redis.port));
    let ours = session(&mut tskv.raw());
    assert_eq!(ours[0], theirs[0], "SLOWLOG LEN");
    let (Reply::Array(our_entries), Reply::Array(their_entries)) = (&ours[1], &theirs[1]) else {
        panic!("SLOWLOG GET: {:?} / {:?}", ours[1], theirs[1]);
    };
    let ids: Vec<i64> = our_entries
        .iter()
        .map(|e| match e {
            Reply::Array(f) => match f[0] {
                Reply::Int(id) => id,
                _ => panic!(),
            },
            _ => panic!(),
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let ours_cmp: Vec<Reply> = our_entries.iter().map(comparable).collect();
    let theirs_cmp: Vec<Reply> = their_entries.iter().map(comparable).collect();
    assert_eq!(ours_cmp, theirs_cmp, "entries");
    for (i, (got, want)) in ours[2..].iter().zip(&theirs[2..]).enumerate() {
        assert_eq!(got, want, "probe {}", i + 2);
    }
}

#[test]
fn a_threshold_and_a_length_bound_the_log() {
    let quiet = TestServer::start(&["--slowlog-log-slower-than", "10000000"]);
    let mut raw = quiet.raw();
    for i in 0..50 {
        raw.request(&["SET", &format!("k{i}"), "v"]);
    }
    assert_eq!(raw.request(&["SLOWLOG", "LEN"]), Reply::Int(0));
    let short = TestServer::start(&[
        "--shards",
        "1",
        "--slowlog-log-slower-than",
        "0",
        "--slowlog-max-len",
        "5",
    ]);
    let mut raw = short.raw();
    for i in 0..50 {
        raw.request(&["SET", &format!("k{i}"), "v"]);
    }
    assert_eq!(raw.request(&["SLOWLOG", "LEN"]), Reply::Int(5));
    match raw.request(&["SLOWLOG", "GET"]) {
        Reply::Array(entries) => {
            assert_eq!(entries.len(), 5);
            let newest = comparable(&entries[0]);
            assert_eq!(
                newest,
                Reply::Array(vec![
                    Reply::Array(vec![Reply::bulk("SLOWLOG"), Reply::bulk("LEN")]),
                    Reply::bulk("")
                ])
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(raw.request(&["SLOWLOG", "RESET"]), Reply::ok());
    assert_eq!(
        raw.request(&["SLOWLOG", "LEN"]),
        Reply::Int(1),
        "the RESET itself"
    );
}
