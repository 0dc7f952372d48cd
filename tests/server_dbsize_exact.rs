//! Goal: `DBSIZE`, now counted on a snapshot off the shard's loop, stays exact: after
//! overwrites and deletes, with keys spread over memtables, SSTables and compacted
//! levels, with series (one key each) and strings shadowing series, and in request order
//! inside a pipeline (a `DBSIZE` right after a `SET` counts it).
//!
//! Method: two shards with 64 KiB memtables. A seeded random mix of `SET` (new keys and
//! overwrites), `DEL` and the odd `SAVE` runs against a model set of keys; every 150
//! operations `DBSIZE` and `INFO keyspace` must equal the model's size. Then a pipeline of
//! writes and `DBSIZE`s is sent in one go and each count checked, and series are added.

mod common;

use std::collections::BTreeSet;
use std::io::Write;

use common::frames::Frames;
use common::{encode, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn dbsize(raw: &mut Frames) -> usize {
    let reply = String::from_utf8(raw.request(&["DBSIZE"])).unwrap();
    reply
        .strip_prefix(':')
        .and_then(|r| r.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("DBSIZE reply {reply:?}"))
}

fn keyspace_keys(raw: &mut Frames) -> usize {
    let info = String::from_utf8(raw.request(&["INFO", "keyspace"])).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("db0:keys="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[test]
fn dbsize_is_exact_through_overwrites_deletes_flushes_and_compactions() {
    let tskv = TestServer::start(&["--shards", "2", "--memtable-bytes", "65536"]);
    let mut raw = Frames::connect(tskv.port());
    let mut rng = StdRng::seed_from_u64(7);
    let mut model = BTreeSet::new();
    let value = "v".repeat(300);
    for step in 1..=3000 {
        let key = format!("key:{}", rng.gen_range(0..1500));
        match rng.gen_range(0..100) {
            0..=64 => {
                assert_eq!(raw.request(&["SET", &key, &value]), b"+OK\r\n");
                model.insert(key);
            }
            65..=98 => {
                let expected = format!(":{}\r\n", u8::from(model.remove(&key)));
                assert_eq!(raw.request(&["DEL", &key]), expected.as_bytes());
            }
            _ => assert_eq!(raw.request(&["SAVE"]), b"+OK\r\n"),
        }
        if step % 150 == 0 {
            assert_eq!(
                dbsize(&mut raw),
                model.len(),
                "DBSIZE after {step} operations"
            );
            assert_eq!(keyspace_keys(&mut raw), model.len(), "INFO keyspace");
        }
    }
    let info = String::from_utf8(raw.request(&["INFO", "persistence"])).unwrap();
    assert!(
        info.lines()
            .any(|l| l.starts_with("compactions:") && l != "compactions:0"),
        "the run compacted: {info}"
    );

    // In a pipeline, each DBSIZE counts exactly the writes before it.
    let n = model.len();
    let mut pipeline = Vec::new();
    for command in [
        &["SET", "fresh:1", "v"][..],
        &["DBSIZE"],
        &["SET", "fresh:2", "v"],
        &["DEL", "fresh:1"],
        &["DBSIZE"],
        &["DEL", "fresh:2"],
        &["DBSIZE"],
    ] {
        pipeline.extend_from_slice(&encode(command));
    }
    raw.writer.write_all(&pipeline).unwrap();
    let replies: Vec<String> = (0..7)
        .map(|_| String::from_utf8(raw.frame()).unwrap())
        .collect();
    let expected = [
        "+OK\r\n".to_string(),
        format!(":{}\r\n", n + 1),
        "+OK\r\n".into(),
        ":1\r\n".into(),
        format!(":{}\r\n", n + 1),
        ":1\r\n".into(),
        format!(":{n}\r\n"),
    ];
    assert_eq!(replies, expected);

    // A series is one key; a string of the same name replaces it.
    assert_eq!(raw.request(&["TS.CREATE", "series:1"]), b"+OK\r\n");
    assert_eq!(raw.request(&["TS.ADD", "series:2", "1", "1"]), b":1\r\n");
    assert_eq!(dbsize(&mut raw), n + 2);
    assert_eq!(
        raw.request(&["SET", "series:1", "now a string"]),
        b"+OK\r\n"
    );
    assert_eq!(dbsize(&mut raw), n + 2);
    assert_eq!(raw.request(&["SAVE"]), b"+OK\r\n");
    assert_eq!(dbsize(&mut raw), n + 2);
}
