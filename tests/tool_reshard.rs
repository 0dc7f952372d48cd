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

type Series = BTreeMap<String, BTreeMap<u64, f64>>;

fn ts_range(conn: &mut redis::Connection, key: &str) -> BTreeMap<u64, f64> {
    let got: Vec<(u64, String)> = redis::cmd("TS.RANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(conn)
        .unwrap_or_else(|e| panic!("TS.RANGE {key}: {e}"));
    got.into_iter()
        .map(|(t, v)| (t, v.parse().unwrap()))
        .collect()
}

/// Goal: `reshard` moves time series too: every sample (sealed, open, out of order), the
/// labels the filters find, the rules, and no sample that was deleted (also one whose WAL
/// record a crash left behind a seal); series created afterwards never mix with the moved
/// ones (series ids are per shard, so moved series get new ones).
#[test]
fn reshard_moves_time_series_with_samples_labels_and_rules() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let mut server = TestServer::start_in(&dir, &["--shards", "2"]);
    let mut conn = server.conn();
    let mut model: Series = BTreeMap::new();
    let names: Vec<String> = (0..12).map(|i| format!("ts:{i}")).collect();
    for (i, key) in names.iter().enumerate() {
        let () = redis::cmd("TS.CREATE")
            .arg(key)
            .arg("CHUNK_SIZE")
            .arg(128)
            .arg("LABELS")
            .arg("group")
            .arg(i % 3)
            .query(&mut conn)
            .unwrap();
        model.insert(key.clone(), BTreeMap::new());
    }
    // A rule within one shard (a hand-over across shards could still be pending at the
    // stop, which reshard refuses).
    let src = "ts:0";
    let src_shard = tskv::datadir::shard_of(src.as_bytes(), 2);
    let dst = (0..)
        .map(|i| format!("avg:{i}"))
        .find(|k| tskv::datadir::shard_of(k.as_bytes(), 2) == src_shard)
        .unwrap();
    let () = redis::cmd("TS.CREATE").arg(&dst).query(&mut conn).unwrap();
    let () = redis::cmd("TS.CREATERULE")
        .arg(src)
        .arg(&dst)
        .arg("AGGREGATION")
        .arg("avg")
        .arg(100)
        .query(&mut conn)
        .unwrap();
    let mut pipe = redis::pipe();
    for j in 0..100u64 {
        for (i, key) in names.iter().enumerate() {
            // Out of order: every 10th sample goes 5 ms back, between two earlier ones.
            let ts = if j % 10 == 9 {
                1000 + j * 10 - 45
            } else {
                1000 + j * 10
            };
            let value = (i * 1000) as f64 + j as f64 / 4.0;
            pipe.cmd("TS.ADD").arg(key).arg(ts).arg(value).ignore();
            model.get_mut(key).unwrap().insert(ts, value);
        }
    }
    pipe.query::<()>(&mut conn).expect("TS.ADD batch");
    // Samples sealed (32 open samples make a seal here), then deleted.
    let deleted: u64 = redis::cmd("TS.DEL")
        .arg("ts:5")
        .arg(1100)
        .arg(1300)
        .query(&mut conn)
        .unwrap();
    let gone = model["ts:5"].range(1100..=1300).count() as u64;
    assert_eq!(deleted, gone);
    model
        .get_mut("ts:5")
        .unwrap()
        .retain(|t, _| !(1100..=1300).contains(t));
    let dst_before = ts_range(&mut conn, &dst);
    assert!(!dst_before.is_empty(), "the rule wrote buckets");
    // No flush: the open samples, and the records of the deleted ones, are in the WAL.
    server.kill9();

    let done = tool(&["reshard", "--shards", "3"], &dir);
    assert!(done.status.success(), "{}", text(&done.stderr));
    let server = TestServer::start_in(&dir, &[]);
    let mut conn = server.conn();
    for (key, samples) in &model {
        assert_eq!(&ts_range(&mut conn, key), samples, "{key} after reshard");
    }
    assert_eq!(ts_range(&mut conn, &dst), dst_before, "the rule's buckets");
    let mut found: Vec<String> = redis::cmd("TS.QUERYINDEX")
        .arg("group=1")
        .query(&mut conn)
        .unwrap();
    found.sort();
    let mut want: Vec<String> = (0..12)
        .filter(|i| i % 3 == 1)
        .map(|i| format!("ts:{i}"))
        .collect();
    want.sort();
    assert_eq!(found, want, "labels after reshard");
    let info: Vec<redis::Value> = redis::cmd("TS.INFO").arg(src).query(&mut conn).unwrap();
    let rules_at = info
        .iter()
        .position(|v| *v == redis::Value::SimpleString("rules".into()))
        .expect("rules field");
    assert!(
        format!("{:?}", info[rules_at + 1]).contains(&dst),
        "the rule survives: {:?}",
        info[rules_at + 1]
    );
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut conn).unwrap();
    assert_eq!(dbsize, model.len() as u64 + 1, "every series is one key");
    // New series get new ids on their shards and never see a moved series' samples.
    for i in 0..12u64 {
        let key = format!("fresh:{i}");
        let _: u64 = redis::cmd("TS.ADD")
            .arg(&key)
            .arg(5)
            .arg(i)
            .query(&mut conn)
            .unwrap();
        let want = BTreeMap::from([(5u64, i as f64)]);
        assert_eq!(ts_range(&mut conn, &key), want, "{key}");
    }
    // Moved series take new samples.
    let _: u64 = redis::cmd("TS.ADD")
        .arg("ts:3")
        .arg(999_999)
        .arg(1)
        .query(&mut conn)
        .unwrap();
    let mut want = model["ts:3"].clone();
    want.insert(999_999, 1.0);
    assert_eq!(ts_range(&mut conn, "ts:3"), want);
}
