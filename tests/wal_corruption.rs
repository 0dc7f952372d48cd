//! Goal: a bit flip inside acknowledged WAL data never silently deletes the acknowledged
//! writes after it, while a torn tail (writes no completed fdatasync covered) is still cut
//! away on its own; and the operator has an explicit, consented way past real corruption.
//!
//! Method: write through `ShardStore` with one synchronous batch per write (each one
//! acknowledged: written and fdatasynced), damage a segment as a bad disk or a crash
//! would, and reopen. Then the same end to end: a real server acknowledges SETs and is
//! killed, a byte of an acknowledged batch in the middle of the last segment is flipped,
//! the server must refuse to start and say where and what to do, `tskv-tool wal-repair`
//! must show its plan and change nothing, and with `--yes` repair so that the server
//! starts with every write but the damaged one.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_server_to_exit, TestServer};
use redis::Commands;
use tskv::base::{SeqNo, StoreError};
use tskv::config::StoreOptions;
use tskv::store::ShardStore;
use tskv::wal::reader::SegmentReader;
use tskv::wal::record::{encode, RecordKind};

const TOOL: &str = env!("CARGO_BIN_EXE_tskv-tool");

fn options() -> StoreOptions {
    StoreOptions {
        memtable_bytes: 1 << 20,
        wal_segment_bytes: 64 << 10,
        ..StoreOptions::default()
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wal-{number:010}.log"))
}

/// Puts `key-<i>` = `value-<i>` for each `i`, each as its own batch written and
/// fdatasynced (an acknowledged write).
fn write_acknowledged(store: &mut ShardStore, range: std::ops::Range<u32>) {
    for i in range {
        store.put(
            format!("key-{i}").as_bytes(),
            format!("value-{i}").as_bytes(),
        );
        let batch = store.take_wal_batch().unwrap().expect("a batch");
        store.write_batch_sync(batch).unwrap();
    }
}

/// Puts `key-<i>` for each `i`, each as its own batch written but never fdatasynced (the
/// state of `--fsync periodic` between syncs, or of a crash before the sync completed).
fn write_unsynced(store: &mut ShardStore, range: std::ops::Range<u32>) {
    for i in range {
        store.put(
            format!("key-{i}").as_bytes(),
            format!("value-{i}").as_bytes(),
        );
        let batch = store.take_wal_batch().unwrap().expect("a batch");
        batch.file.write_all_at(&batch.buf, batch.offset).unwrap();
        store.wal_batch_written(batch);
    }
}

fn value_of(store: &ShardStore, key: &str) -> Option<Vec<u8>> {
    store.get(key.as_bytes()).unwrap().and_then(|l| l.value)
}

/// Offset of the first record whose key is `key` in the segment at `path`.
fn record_offset(path: &Path, key: &[u8]) -> usize {
    let data = fs::read(path).unwrap();
    let found = SegmentReader::new(&data)
        .find(|(_, r)| r.key == key)
        .map(|(offset, _)| offset);
    found.unwrap_or_else(|| panic!("no record for {key:?} in {}", path.display()))
}

fn flip_byte(path: &Path, at: usize) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0];
    file.read_exact_at(&mut byte, at as u64).unwrap();
    file.write_all_at(&[byte[0] ^ 0x10], at as u64).unwrap();
}

#[test]
fn bit_flip_inside_an_acknowledged_batch_mid_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ShardStore::open(dir.path(), &options()).unwrap();
    write_acknowledged(&mut store, 0..10);
    drop(store);

    let path = segment_path(dir.path(), 1);
    let record = record_offset(&path, b"key-3");
    flip_byte(&path, record + 25); // inside the key or value, past the record header
    let before = fs::read(&path).unwrap();

    match ShardStore::open(dir.path(), &options()) {
        Err(e @ StoreError::WalCorruption { .. }) => {
            let message = e.to_string();
            assert!(message.contains("wal-0000000001.log"), "{message}");
            assert!(message.contains("not a torn write"), "{message}");
            assert!(message.contains("tskv-tool wal-repair"), "{message}");
            assert!(
                message.contains("6 intact batches (6 records, sequence numbers 5..=10)"),
                "{message}"
            );
        }
        Err(e) => panic!("expected WAL corruption, got {e}"),
        Ok(store) => panic!(
            "opened over an acknowledged bit flip, with {} keys",
            store.len().unwrap()
        ),
    }
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "a refused open must not change the segment"
    );
}

#[test]
fn torn_unsynced_batches_are_cut_even_with_an_intact_one_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ShardStore::open(dir.path(), &options()).unwrap();
    write_acknowledged(&mut store, 0..3);
    write_unsynced(&mut store, 3..5);
    drop(store);

    // A power cut: the unsynced batch of key-3 reached the disk only in part, the one of
    // key-4 whole.
    let path = segment_path(dir.path(), 1);
    let torn_at = record_offset(&path, b"key-3");
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0; 8], torn_at as u64).unwrap();
    drop(file);

    let store = ShardStore::open(dir.path(), &options()).unwrap();
    for i in 0..3 {
        assert_eq!(
            value_of(&store, &format!("key-{i}")),
            Some(format!("value-{i}").into_bytes())
        );
    }
    assert_eq!(value_of(&store, "key-3"), None);
    assert_eq!(
        value_of(&store, "key-4"),
        None,
        "a write after a cut is dropped with it"
    );
    assert!(store.stats().recovery_truncated_bytes > 0);
    assert_eq!(store.last_seq(), SeqNo(3));
}

#[test]
fn segment_of_bare_records_from_before_batches_is_replayed_and_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = Vec::new();
    for (seq, key) in [(1, "old-a"), (2, "old-b")] {
        encode(&mut old, RecordKind::Put, SeqNo(seq), key.as_bytes(), b"v1");
    }
    encode(&mut old, RecordKind::Delete, SeqNo(3), b"old-a", b"");
    old.resize(64 << 10, 0);
    fs::write(segment_path(dir.path(), 1), &old).unwrap();

    let mut store = ShardStore::open(dir.path(), &options()).unwrap();
    assert_eq!(value_of(&store, "old-a"), None);
    assert_eq!(value_of(&store, "old-b"), Some(b"v1".to_vec()));
    write_acknowledged(&mut store, 0..2);
    drop(store);

    let store = ShardStore::open(dir.path(), &options()).unwrap();
    assert_eq!(value_of(&store, "old-b"), Some(b"v1".to_vec()));
    assert_eq!(value_of(&store, "key-1"), Some(b"value-1".to_vec()));
    assert_eq!(store.len().unwrap(), 3);
    assert_eq!(store.stats().recovery_truncated_bytes, 0);
}

fn tool(args: &[&str]) -> std::process::Output {
    Command::new(TOOL)
        .args(args)
        .output()
        .expect("run tskv-tool")
}

#[test]
fn server_refuses_corrupt_wal_and_wal_repair_keeps_all_but_the_bad_write() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path();
    let shown = data_dir.to_str().unwrap();
    let mut server = TestServer::start_in(data_dir, &["--shards", "1"]);
    let mut conn = server.conn();
    for i in 0..20 {
        let _: () = conn.set(format!("k{i:02}"), format!("v{i:02}")).unwrap();
    }
    server.kill9();

    let shard = data_dir.join("shard-000");
    let mut segments: Vec<PathBuf> = fs::read_dir(&shard)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let last = segments.last().expect("a WAL segment").clone();
    let record = record_offset(&last, b"k07");
    flip_byte(&last, record + 24);

    let refused = run_server_to_exit(&["--port", "0", "--shards", "1", "--data-dir", shown]);
    assert!(!refused.status.success(), "started over a corrupt WAL");
    let name = last.file_name().unwrap().to_str().unwrap();
    assert!(refused.stderr.contains(name), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("tskv-tool wal-repair"),
        "{}",
        refused.stderr
    );

    let verify = tool(&["verify", shown]);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "verify must report the corruption"
    );

    let before = fs::read(&last).unwrap();
    let shown_plan = tool(&["wal-repair", shown]);
    let plan = String::from_utf8_lossy(&shown_plan.stdout);
    assert_eq!(shown_plan.status.code(), Some(1), "{plan}");
    assert!(plan.contains("nothing was changed"), "{plan}");
    assert!(plan.contains("12 intact batches (12 records)"), "{plan}");
    assert_eq!(fs::read(&last).unwrap(), before, "a plan changes nothing");

    let repaired = tool(&["wal-repair", shown, "--yes"]);
    let text = String::from_utf8_lossy(&repaired.stdout);
    assert!(repaired.status.success(), "{text}");
    assert!(text.contains(".corrupt-"), "{text}");
    let backups = fs::read_dir(&shard)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".corrupt-")
        })
        .count();
    assert_eq!(backups, 1, "the old segment is kept");
    assert!(tool(&["verify", shown]).status.success());

    let server = TestServer::start_in(data_dir, &["--shards", "1"]);
    let mut conn = server.conn();
    for i in 0..20 {
        let got: Option<String> = conn.get(format!("k{i:02}")).unwrap();
        let expected = (i != 7).then(|| format!("v{i:02}"));
        assert_eq!(got, expected, "k{i:02}");
    }
}
