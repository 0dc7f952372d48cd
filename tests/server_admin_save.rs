//! Goal: `SAVE` flushes every shard's memtable into installed SSTables before it replies,
//! `BGSAVE` starts that and replies at once, `LASTSAVE` and `INFO persistence`'s
//! `rdb_last_save_time` / `rdb_changes_since_last_save` say when the data was last all
//! in SSTables and how many writes came since, and the replies are Redis 7.0's bytes.
//!
//! Method: send the same administration commands (and their malformed forms) to a real
//! `redis-server` (in a temporary `--dir`, so its dump file lands there) and to tskv with
//! two shards over raw TCP and compare the replies byte for byte; `LASTSAVE`'s number
//! differs by nature, so only its type is compared. Then, on tskv alone: write keys on
//! both shards, `SAVE`, and check that `INFO persistence` shows no memtable bytes and more
//! SSTables, that the changes counter went back to 0 and the save time did not go back,
//! and that a restart replays no WAL record (everything was in SSTables). `BGSAVE` is
//! checked to reach the same state without the client waiting for it.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::frames::Frames;
use common::redis_server::RedisServer;
use common::TestServer;

/// Commands whose replies tskv and Redis 7.0 must send identically.
const SEQUENCE: &[&[&str]] = &[
    &["SET", "a", "1"],
    &["SET", "b", "2"],
    &["SAVE"],
    &["SAVE", "now"],
    &["BGSAVE", "later"],
    &["BGSAVE", "SCHEDULE", "x"],
    &["LASTSAVE", "x"],
    &["FLUSHALL", "now"],
    &["FLUSHALL", "ASYNC", "SYNC"],
    &["FLUSHDB", "lazily"],
    &["GET", "a"],
    // FLUSHALL touches a watched key that existed, not one that stayed absent.
    &["WATCH", "absent"],
    &["FLUSHALL"],
    &["MULTI"],
    &["SET", "absent", "x"],
    &["EXEC"],
    &["SET", "present", "1"],
    &["WATCH", "present"],
    &["FLUSHALL"],
    &["MULTI"],
    &["SET", "present", "2"],
    &["EXEC"],
    &["GET", "present"],
];

#[test]
fn admin_replies_are_redis_bytes() {
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start_with(&["--dir", redis_dir.path().to_str().unwrap()]);
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut theirs = Frames::connect(redis.port);
    let mut ours = Frames::connect(tskv.port());
    for command in SEQUENCE {
        let expected = theirs.request(command);
        let got = ours.request(command);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "{command:?}"
        );
    }
    // BGSAVE replies at once (Redis forks; tskv starts the flushes).
    for frames in [&mut theirs, &mut ours] {
        assert_eq!(
            frames.request(&["BGSAVE"]),
            b"+Background saving started\r\n"
        );
    }
    // Wait for Redis's child before the commands that Redis refuses during a BGSAVE.
    wait_until(|| info_field(&mut theirs, "rdb_bgsave_in_progress") == 0);
    wait_until(|| info_field(&mut ours, "rdb_bgsave_in_progress") == 0);
    for command in [
        &["FLUSHALL", "SYNC"][..],
        &["FLUSHDB"],
        &["GET", "b"],
        &["DBSIZE"],
    ] {
        let expected = theirs.request(command);
        assert_eq!(ours.request(command), expected, "{command:?}");
    }
    for frames in [&mut theirs, &mut ours] {
        let reply = frames.request(&["LASTSAVE"]);
        assert!(
            reply.starts_with(b":") && reply.ends_with(b"\r\n"),
            "LASTSAVE is an integer: {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
}

#[test]
fn save_puts_every_write_in_sstables_and_resets_the_changes() {
    let data = tempfile::tempdir().unwrap();
    let mut tskv = TestServer::start_in(data.path(), &["--shards", "2"]);
    let mut raw = Frames::connect(tskv.port());
    let opened_at_s = lastsave(&mut raw);
    for i in 0..200 {
        let key = format!("key:{i}");
        assert_eq!(raw.request(&["SET", &key, "v"]), b"+OK\r\n");
    }
    assert!(info_field(&mut raw, "memtable_bytes") > 0);
    assert_eq!(info_field(&mut raw, "rdb_changes_since_last_save"), 200);
    let sstables_before = info_field(&mut raw, "sstables");
    let before_save_s = unix_now_s();

    assert_eq!(raw.request(&["SAVE"]), b"+OK\r\n");

    // The reply came after both shards' flushes were installed.
    assert_eq!(info_field(&mut raw, "memtable_bytes"), 0);
    assert_eq!(info_field(&mut raw, "sstables"), sstables_before + 2);
    assert_eq!(info_field(&mut raw, "rdb_changes_since_last_save"), 0);
    let saved_at_s = lastsave(&mut raw);
    assert!(
        saved_at_s >= before_save_s && saved_at_s >= opened_at_s,
        "LASTSAVE {saved_at_s} went back (opened {opened_at_s}, SAVE sent at {before_save_s})"
    );
    assert_eq!(info_field(&mut raw, "rdb_last_save_time"), saved_at_s);
    // A SAVE with nothing to flush answers at once and still counts as a save.
    assert_eq!(raw.request(&["SAVE"]), b"+OK\r\n");
    assert!(lastsave(&mut raw) >= saved_at_s);

    drop(raw);
    assert!(tskv.shutdown().success());
    let tskv = TestServer::start_in(data.path(), &["--shards", "2"]);
    let mut raw = Frames::connect(tskv.port());
    assert_eq!(
        info_field(&mut raw, "recovery_replayed_records"),
        0,
        "every write was in an SSTable, none needed the WAL"
    );
    assert_eq!(raw.request(&["GET", "key:7"]), b"$1\r\nv\r\n");
    assert_eq!(raw.request(&["DBSIZE"]), b":200\r\n");
}

#[test]
fn bgsave_flushes_in_the_background() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut raw = Frames::connect(tskv.port());
    for i in 0..100 {
        let key = format!("key:{i}");
        assert_eq!(raw.request(&["SET", &key, "v"]), b"+OK\r\n");
    }
    assert_eq!(raw.request(&["BGSAVE"]), b"+Background saving started\r\n");
    wait_until(|| {
        info_field(&mut raw, "rdb_changes_since_last_save") == 0
            && info_field(&mut raw, "rdb_bgsave_in_progress") == 0
    });
    assert_eq!(info_field(&mut raw, "memtable_bytes"), 0);
    assert_eq!(info_field(&mut raw, "sstables"), 2);
    assert_eq!(raw.request(&["GET", "key:42"]), b"$1\r\nv\r\n");
}

/// Retries `done` for up to a minute (a shared machine can be slow; no time is asserted).
fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "condition not reached in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn lastsave(raw: &mut Frames) -> u64 {
    let reply = String::from_utf8(raw.request(&["LASTSAVE"])).unwrap();
    reply
        .strip_prefix(':')
        .and_then(|r| r.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("LASTSAVE reply {reply:?}"))
}

/// A numeric field of `INFO persistence` (tskv or Redis).
fn info_field(raw: &mut Frames, field: &str) -> u64 {
    let info = String::from_utf8(raw.request(&["INFO", "persistence"])).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{field}: {e}"))
}
