//! Goal: `FLUSHALL` (and `FLUSHDB`) is durable on every shard: once acknowledged, no
//! restart or crash brings back a key that existed before it, strings and time series
//! alike, whether the key was in a memtable or already in SSTables; and the writes made
//! after it survive like any others.
//!
//! Method: two shards with small memtables, so that keys sit both in SSTables (some
//! compacted) and in memtables when `FLUSHALL` runs. Write strings and a series, flush
//! part of them with `SAVE`, write more, `FLUSHALL`, check the store reads empty at once,
//! write new keys, then stop the server (cleanly in one test, with SIGKILL right after
//! the last acknowledgement in the other) and restart it on the same directory: only the
//! new keys may be there. `INFO persistence` must show no SSTable of the old data left.
//! The crash at every point between the drop's WAL record and its manifest edit is the
//! crash simulation's (`store_crash_sim`), which drives drop-alls on a model disk.

mod common;

use common::frames::Frames;
use common::TestServer;

const ARGS: &[&str] = &["--shards", "2", "--memtable-bytes", "65536"];

/// Writes `count` old keys (about a few memtables' worth) and a series, half of it saved
/// into SSTables, and returns after the last acknowledgement.
fn fill_before(raw: &mut Frames, count: usize) {
    let value = "x".repeat(200);
    for i in 0..count {
        assert_eq!(
            raw.request(&["SET", &format!("old:{i}"), &value]),
            b"+OK\r\n"
        );
        if i == count / 2 {
            assert_eq!(raw.request(&["SAVE"]), b"+OK\r\n");
        }
    }
    assert_eq!(raw.request(&["TS.CREATE", "old:series"]), b"+OK\r\n");
    assert_eq!(
        raw.request(&["TS.ADD", "old:series", "1000", "1.5"]),
        b":1000\r\n"
    );
    assert!(sstables(raw) > 0, "some old keys are in SSTables");
}

fn write_after(raw: &mut Frames) {
    for i in 0..50 {
        assert_eq!(
            raw.request(&["SET", &format!("new:{i}"), "after"]),
            b"+OK\r\n"
        );
    }
    assert_eq!(
        raw.request(&["TS.ADD", "new:series", "2000", "2.5"]),
        b":2000\r\n"
    );
}

fn assert_only_new_keys(raw: &mut Frames, context: &str) {
    assert_eq!(raw.request(&["DBSIZE"]), b":51\r\n", "{context}: DBSIZE");
    for i in [0, 7, 300, 999] {
        assert_eq!(
            raw.request(&["GET", &format!("old:{i}")]),
            b"$-1\r\n",
            "{context}: old:{i} came back"
        );
    }
    assert_eq!(
        raw.request(&["EXISTS", "old:series"]),
        b":0\r\n",
        "{context}"
    );
    assert_eq!(
        raw.request(&["GET", "new:49"]),
        b"$5\r\nafter\r\n",
        "{context}"
    );
    let series = String::from_utf8(raw.request(&["TS.GET", "new:series"])).unwrap();
    assert!(
        series.contains("2000"),
        "{context}: TS.GET new:series {series:?}"
    );
    let mut keys = String::from_utf8(raw.request(&["KEYS", "old:*"])).unwrap();
    keys.retain(|c| c != '\r' && c != '\n');
    assert_eq!(keys, "*0", "{context}: KEYS old:*");
}

#[test]
fn flushall_then_restart_shows_only_later_writes() {
    let data = tempfile::tempdir().unwrap();
    let mut tskv = TestServer::start_in(data.path(), ARGS);
    let mut raw = Frames::connect(tskv.port());
    fill_before(&mut raw, 1000);
    assert_eq!(raw.request(&["FLUSHALL"]), b"+OK\r\n");
    assert_eq!(raw.request(&["DBSIZE"]), b":0\r\n");
    assert_eq!(raw.request(&["GET", "old:3"]), b"$-1\r\n");
    write_after(&mut raw);
    assert_only_new_keys(&mut raw, "before the restart");
    drop(raw);
    assert!(tskv.shutdown().success());

    let tskv = TestServer::start_in(data.path(), ARGS);
    let mut raw = Frames::connect(tskv.port());
    assert_only_new_keys(&mut raw, "after a clean restart");
    assert_eq!(raw.request(&["SAVE"]), b"+OK\r\n");
    // Only the new keys' tables are left: far fewer bytes than the 200 KB of old values.
    assert!(
        sstable_bytes(&mut raw) < 100_000,
        "old tables are gone: {} bytes of SSTables",
        sstable_bytes(&mut raw)
    );
}

#[test]
fn flushdb_then_sigkill_then_restart_shows_only_later_writes() {
    let data = tempfile::tempdir().unwrap();
    let mut tskv = TestServer::start_in(data.path(), ARGS);
    let mut raw = Frames::connect(tskv.port());
    fill_before(&mut raw, 1000);
    assert_eq!(raw.request(&["FLUSHDB", "ASYNC"]), b"+OK\r\n");
    write_after(&mut raw);
    tskv.kill9();

    let tskv = TestServer::start_in(data.path(), ARGS);
    let mut raw = Frames::connect(tskv.port());
    assert_only_new_keys(&mut raw, "after SIGKILL");
}

#[test]
fn flushall_right_before_sigkill_drops_everything() {
    let data = tempfile::tempdir().unwrap();
    let mut tskv = TestServer::start_in(data.path(), ARGS);
    let mut raw = Frames::connect(tskv.port());
    fill_before(&mut raw, 600);
    assert_eq!(raw.request(&["FLUSHALL", "SYNC"]), b"+OK\r\n");
    tskv.kill9();

    let tskv = TestServer::start_in(data.path(), ARGS);
    let mut raw = Frames::connect(tskv.port());
    assert_eq!(raw.request(&["DBSIZE"]), b":0\r\n");
    assert_eq!(raw.request(&["GET", "old:1"]), b"$-1\r\n");
    assert_eq!(raw.request(&["EXISTS", "old:series"]), b":0\r\n");
}

fn info_field(raw: &mut Frames, field: &str) -> u64 {
    let info = String::from_utf8(raw.request(&["INFO", "persistence"])).unwrap();
    common::info_number(&info, field)
}

fn sstables(raw: &mut Frames) -> u64 {
    info_field(raw, "sstables")
}

fn sstable_bytes(raw: &mut Frames) -> u64 {
    info_field(raw, "sstable_bytes")
}
