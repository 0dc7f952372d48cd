//! Goal: `tskv-tool reshard` moves a stopped server's data directory to another shard
//! count without losing a key, bringing a deleted one back or keeping an old version, and
//! refuses while a server holds the directory.
//!
//! Method: start the real `tskv-server` with `--shards 2`, write 5,000 keys with the
//! `redis` crate, overwrite some and delete others (a `BTreeMap` is the model). While the
//! server runs, `reshard` must fail naming the lock and create nothing. After a clean
//! shutdown, reshard in place to 3 shards: the old directory is kept as
//! `DIR.pre-reshard-<time>`, a server started without `--shards` serves 3 shards with every
//! key and the exact DBSIZE, and a start with `--shards 2` is refused. Then reshard that
//! result to 1 shard with `--out` (the source stays at 3), check that `tskv-tool verify`
//! finds the copy clean, and check the keys on both.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{run_server_to_exit, TestServer};

const TOOL: &str = env!("CARGO_BIN_EXE_tskv-tool");
const KEY_COUNT: usize = 5_000;

fn tool(args: &[&str], dir: &Path) -> Output {
    let (before, after) = args.split_at(1);
    Command::new(TOOL)
        .args(before)
        .arg(dir)
        .args(after)
        .output()
        .expect("run tskv-tool")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes the keys, overwrites every 5th and deletes every 7th; returns what must remain.
fn write_keys(server: &TestServer) -> BTreeMap<String, String> {
    let mut conn = server.conn();
    let mut model = BTreeMap::new();
    let keys: Vec<usize> = (0..KEY_COUNT).collect();
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let (key, value) = (format!("key:{i}"), format!("value-{i}"));
            pipe.cmd("SET").arg(&key).arg(&value).ignore();
            model.insert(key, value);
        }
        pipe.query::<()>(&mut conn).expect("SET batch");
    }
    let mut pipe = redis::pipe();
    for i in (0..KEY_COUNT).step_by(5) {
        let (key, value) = (format!("key:{i}"), format!("second-{i}"));
        pipe.cmd("SET").arg(&key).arg(&value).ignore();
        model.insert(key, value);
    }
    for i in (0..KEY_COUNT).step_by(7) {
        let key = format!("key:{i}");
        pipe.cmd("DEL").arg(&key).ignore();
        model.remove(&key);
    }
    pipe.query::<()>(&mut conn)
        .expect("overwrite and delete batch");
    model
}

/// Every key of the model has its value, every deleted key is missing, DBSIZE is exact.
fn check_keys(server: &TestServer, model: &BTreeMap<String, String>) {
    let mut conn = server.conn();
    let keys: Vec<String> = (0..KEY_COUNT).map(|i| format!("key:{i}")).collect();
    for chunk in keys.chunks(500) {
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(chunk)
            .query(&mut conn)
            .expect("MGET");
        for (key, value) in chunk.iter().zip(values) {
            assert_eq!(value.as_ref(), model.get(key), "value of {key}");
        }
    }
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut conn).expect("DBSIZE");
    assert_eq!(dbsize, model.len() as u64, "DBSIZE");
}

fn shard_count_file(dir: &Path) -> String {
    fs::read_to_string(dir.join("TSKV")).expect("read TSKV")
}

/// The `DIR.pre-reshard-*` directories beside `dir`.
fn old_copies(dir: &Path) -> Vec<PathBuf> {
    let prefix = format!(
        "{}.pre-reshard-",
        dir.file_name().unwrap().to_str().unwrap()
    );
    let mut found: Vec<PathBuf> = fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&prefix)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn reshard_to_three_and_to_one_keeps_every_key() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let mut server = TestServer::start_in(&dir, &["--shards", "2"]);
    let model = write_keys(&server);

    let refused = tool(&["reshard", "--shards", "3"], &dir);
    let stderr = text(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "refused while running: {stderr}"
    );
    assert!(
        stderr.contains("locked") && stderr.contains("stop the server"),
        "{stderr}"
    );
    assert!(
        !root.path().join("data.reshard-tmp").exists(),
        "nothing built"
    );
    assert!(old_copies(&dir).is_empty(), "nothing moved");
    check_keys(&server, &model);
    assert_eq!(server.shutdown().code(), Some(0));

    // In place, 2 → 3.
    let done = tool(&["reshard", "--shards", "3"], &dir);
    let stdout = text(&done.stdout);
    assert!(done.status.success(), "{stdout}{}", text(&done.stderr));
    let copied = format!("from 2 to 3 shards: {} keys copied", model.len());
    assert!(stdout.contains(&copied), "{stdout}");
    assert_eq!(shard_count_file(&dir), "shards=3\n");
    let old = old_copies(&dir);
    assert_eq!(old.len(), 1, "one old copy: {old:?}");
    assert!(
        stdout.contains(old[0].to_str().unwrap()),
        "names the old copy: {stdout}"
    );
    assert_eq!(shard_count_file(&old[0]), "shards=2\n");
    assert!(!root.path().join("data.reshard-tmp").exists());

    let mut server = TestServer::start_in(&dir, &[]);
    assert_eq!(server.ready().shards, 3, "the recorded count is used");
    check_keys(&server, &model);
    assert_eq!(server.shutdown().code(), Some(0));
    let data_dir = dir.to_str().unwrap();
    let mismatch = run_server_to_exit(&["--port", "0", "--data-dir", data_dir, "--shards", "2"]);
    assert!(
        !mismatch.status.success(),
        "--shards 2 on the resharded directory"
    );
    assert!(
        mismatch.stderr.contains("--shards 3"),
        "{}",
        mismatch.stderr
    );

    // Into another directory, 3 → 1; the source stays as it is.
    let one = root.path().join("one");
    let done = tool(
        &["reshard", "--shards", "1", "--out", one.to_str().unwrap()],
        &dir,
    );
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert_eq!(shard_count_file(&dir), "shards=3\n");
    assert_eq!(shard_count_file(&one), "shards=1\n");
    assert_eq!(old_copies(&dir).len(), 1, "no swap with --out");
    let verify = tool(&["verify"], &one);
    assert!(verify.status.success(), "{}", text(&verify.stdout));

    let mut server = TestServer::start_in(&one, &["--shards", "1"]);
    check_keys(&server, &model);
    assert_eq!(server.shutdown().code(), Some(0));
    let server = TestServer::start_in(&dir, &["--shards", "3"]);
    check_keys(&server, &model);
}

#[test]
fn reshard_refuses_an_existing_destination_and_a_bad_count() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("TSKV"), "shards=2\n").unwrap();
    let out = root.path().join("taken");
    fs::create_dir(&out).unwrap();

    let refused = tool(
        &["reshard", "--shards", "3", "--out", out.to_str().unwrap()],
        &dir,
    );
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");

    let zero = tool(&["reshard", "--shards", "0"], &dir);
    assert_eq!(zero.status.code(), Some(2), "{}", text(&zero.stderr));

    let not_data = tool(&["reshard", "--shards", "3"], &out);
    let stderr = text(&not_data.stderr);
    assert_eq!(not_data.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a tskv data directory"), "{stderr}");
    assert_eq!(shard_count_file(&dir), "shards=2\n", "untouched");
}
