//! Goal: `tskv-tool` reports a data directory truthfully and never changes it.
//!
//! Method: build a one-shard data directory with the storage library directly (two
//! memtable flushes into two SSTables, then writes that stay in the WAL), then run the real
//! binary on it and check its answers: `verify` is clean, `get` finds the newest version
//! in the WAL or the newest SSTable and `(nil)` for a tombstone, `info` lists every file
//! and the LOCK state. Then damage the directory as a crash or a bad disk would: a torn
//! record after the end of the last WAL segment must be a warning (`verify` exits 0), a
//! flipped byte in an SSTable data block an error naming the file (`verify` exits 1).
//! Every run of the tool is bracketed by a hash of every file, which must not change.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tskv::base::SeqNo;
use tskv::config::StoreOptions;
use tskv::store::ShardStore;
use tskv::wal::reader::SegmentReader;
use tskv::wal::record::{encode, RecordKind};

const TOOL: &str = env!("CARGO_BIN_EXE_tskv-tool");

fn options() -> StoreOptions {
    StoreOptions {
        memtable_bytes: 2048,
        wal_segment_bytes: 256 << 10,
        ..StoreOptions::default()
    }
}

/// Writes the pending WAL batch, and flushes the memtable if it was frozen.
fn persist(store: &mut ShardStore) {
    if let Some(batch) = store.take_wal_batch().unwrap() {
        store.write_batch_sync(batch).unwrap();
    }
    if let Some(job) = store.take_flush_blocking().unwrap() {
        store.flush_sync(job).unwrap();
    }
}

/// Puts enough filler keys (prefix `prefix`) to fill the memtable, then flushes it.
fn fill_and_flush(store: &mut ShardStore, prefix: &str) {
    let tables_before = store.stats().sstables;
    for i in 0..100 {
        let key = format!("{prefix}-{i:03}");
        store.put(key.as_bytes(), b"filler value bytes");
    }
    persist(store);
    assert_eq!(
        store.stats().sstables,
        tables_before + 1,
        "the filler must force a flush"
    );
}

/// The data directory: two SSTables and one live WAL segment.
///
/// * `sst-key`: "old" in table 1, "new" in table 2.
/// * `wal-key`: "in-table" in table 1, "w1" then "w2" in the WAL.
/// * `gone`: "here" in table 2, deleted in the WAL.
fn build(data_dir: &Path) {
    fs::write(data_dir.join("TSKV"), "shards=1\n").unwrap();
    let mut store = ShardStore::open(&data_dir.join("shard-000"), &options()).unwrap();
    store.put(b"sst-key", b"old");
    store.put(b"wal-key", b"in-table");
    fill_and_flush(&mut store, "first");
    store.put(b"sst-key", b"new");
    store.put(b"gone", b"here");
    fill_and_flush(&mut store, "second");
    store.put(b"wal-key", b"w1");
    store.put(b"wal-key", b"w2");
    store.delete(b"gone");
    persist(&mut store);
    assert_eq!(store.stats().sstables, 2);
}

/// Hash and length of every file under `dir`, by path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, usize)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = fs::read(&path).unwrap();
                let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
                files.insert(path, (hash, bytes.len()));
            }
        }
    }
    files
}

/// Runs the tool and checks that it left every file under `data_dir` as it was.
fn run(data_dir: &Path, args: &[&str]) -> Output {
    let before = snapshot(data_dir);
    let output = Command::new(TOOL).args(args).output().unwrap();
    assert_eq!(
        snapshot(data_dir),
        before,
        "tskv-tool {args:?} changed the data directory"
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn shard_files(data_dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(data_dir.join("shard-000"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn inspects_a_clean_directory_without_changing_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    build(dir);
    let tables = shard_files(dir, "sst");
    let segments = shard_files(dir, "log");
    assert_eq!(tables.len(), 2, "{tables:?}");
    assert_eq!(segments.len(), 1, "{segments:?}");

    let verify = run(dir, &["verify", s(dir)]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    assert!(
        stdout(&verify).contains("0 errors, 0 warnings"),
        "{}",
        stdout(&verify)
    );

    let get = run(dir, &["get", s(dir), "sst-key"]);
    assert_eq!(get.status.code(), Some(0));
    let text = stdout(&get);
    assert_eq!(text.lines().next(), Some("\"new\""), "{text}");
    assert!(
        text.contains(name(&tables[1])),
        "newest table first: {text}"
    );

    let get = run(dir, &["get", s(dir), "wal-key"]);
    let text = stdout(&get);
    assert_eq!(text.lines().next(), Some("\"w2\""), "{text}");
    assert!(text.contains(name(&segments[0])), "{text}");

    let get = run(dir, &["get", s(dir), "gone"]);
    let text = stdout(&get);
    assert_eq!(text.lines().next(), Some("(nil)"), "{text}");
    assert!(text.contains("tombstone"), "{text}");
    let get = run(dir, &["get", s(dir), "never-written"]);
    assert_eq!(stdout(&get).lines().next(), Some("(nil)"));

    let info = run(dir, &["info", s(dir)]);
    assert_eq!(info.status.code(), Some(0));
    let text = stdout(&info);
    for file in tables.iter().chain(&segments) {
        assert!(text.contains(name(file)), "info misses {file:?}: {text}");
    }
    assert!(text.contains("no LOCK file"), "{text}");

    let json = run(dir, &["info", "--json", s(dir)]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let shard = &json["shards"][0];
    assert_eq!(shard["tables"].as_array().unwrap().len(), 2);
    assert_eq!(shard["segments"][0]["record_count"], 3);
    assert_eq!(shard["segments"][0]["tail"]["state"], "clean");

    let wal = run(dir, &["wal", s(&segments[0]), "--records"]);
    assert_eq!(wal.status.code(), Some(0));
    assert!(stdout(&wal).contains("\"wal-key\""), "{}", stdout(&wal));
    let sst = run(dir, &["sst", s(&tables[0]), "--entries"]);
    assert_eq!(sst.status.code(), Some(0), "{}", stdout(&sst));
    assert!(stdout(&sst).contains("\"first-099\""), "{}", stdout(&sst));

    let missing = run(dir, &["info", s(&dir.join("nowhere"))]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nowhere"));
}

#[test]
fn info_tells_whether_a_server_holds_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    build(dir);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .unwrap();
    let info = run(dir, &["info", s(dir)]);
    assert!(stdout(&info).contains("lock: free"), "{}", stdout(&info));
    lock.try_lock().unwrap();
    let info = run(dir, &["info", s(dir)]);
    assert!(stdout(&info).contains("lock: HELD"), "{}", stdout(&info));
}

#[test]
fn torn_tail_is_a_warning_and_flipped_block_byte_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    build(dir);
    let tables = shard_files(dir, "sst");
    let segment = shard_files(dir, "log").pop().unwrap();

    // A record cut short right after the last valid one, as a crash mid-write leaves it.
    let data = fs::read(&segment).unwrap();
    let mut reader = SegmentReader::new(&data);
    assert_eq!(reader.by_ref().count(), 3);
    let valid_end = reader.valid_end() as u64;
    let mut torn = Vec::new();
    encode(
        &mut torn,
        RecordKind::Put,
        SeqNo(1000),
        b"torn-key",
        b"torn value",
    );
    torn.truncate(torn.len() / 2);
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.write_all_at(&torn, valid_end).unwrap();
    drop(file);

    let verify = run(dir, &["verify", s(dir)]);
    let text = stdout(&verify);
    assert_eq!(verify.status.code(), Some(0), "{text}");
    let warning = text
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains("torn tail"))
        .unwrap_or_else(|| panic!("no torn-tail warning: {text}"));
    assert!(warning.contains(name(&segment)), "{warning}");
    assert!(
        warning.contains(&format!("offset {valid_end}")),
        "{warning}"
    );
    let get = run(dir, &["get", s(dir), "wal-key"]);
    assert_eq!(stdout(&get).lines().next(), Some("\"w2\""));

    // A flipped byte inside the first data block of the first table (a key byte).
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tables[0])
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, 20).unwrap();
    file.write_all_at(&[byte[0] ^ 0x10], 20).unwrap();
    drop(file);

    let verify = run(dir, &["verify", s(dir)]);
    let text = stdout(&verify);
    assert_eq!(verify.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("error:") && l.contains(name(&tables[0]))),
        "no error naming {:?}: {text}",
        tables[0]
    );
    assert!(text.contains("torn tail"), "the warning stays: {text}");
    let sst = run(dir, &["sst", s(&tables[0])]);
    assert_eq!(sst.status.code(), Some(1), "{}", stdout(&sst));
    // A key that only the damaged block holds cannot be read; the error names the file.
    let get = run(dir, &["get", s(dir), "first-000"]);
    assert_eq!(get.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&get.stderr).contains(name(&tables[0])));
    // Keys found before the damaged table are still answered.
    let get = run(dir, &["get", s(dir), "sst-key"]);
    assert_eq!(stdout(&get).lines().next(), Some("\"new\""));
}
