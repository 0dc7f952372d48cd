//! Goal: `TS.DEL` removes samples from sealed chunks without rewriting them on the shard's
//! loop, readers never see a deleted sample, samples added again inside a deleted range
//! come back, and compaction later applies the deletion to the chunks, all with the
//! samples a user reads unchanged.
//!
//! Method: the real `tskv-server` (one shard, 64 KiB memtable) and a series of 20,000
//! samples ten milliseconds apart, sealed into 4 KiB chunks as they arrive; a model of
//! the series in the test. Each `TS.DEL` reply must be the model's count and `TS.RANGE`,
//! `TS.REVRANGE`, `TS.GET` and `TS.INFO` must agree with the model after every step
//! (deleting the newest samples too, so `TS.GET` follows a cut last chunk):
//! - a delete inside a chunk, and one cutting the chunks at both ends of a long range,
//!   must each log at most a few hundred WAL bytes (a rewrite of the cut chunks would
//!   log kilobytes);
//! - samples added again inside a deleted range (sealed into the cut chunks) are read;
//! - after a restart, and after filler writes make the server flush and compact, the
//!   reads are the same, and the chunk that only a deletion mark cut is smaller on disk
//!   (`TS.INFO ... DEBUG`): compaction rewrote it without the deleted samples.

mod common;

use std::collections::BTreeMap;

use common::{samples_of, RawConn, Reply, TestServer};

const SERIES: &str = "temp";
const SAMPLES: u64 = 20_000;
const STEP_MS: u64 = 10;
/// A cut chunk rewritten would log at least a few kilobytes; marks log tens of bytes.
const DELETE_WAL_BYTES_MAX: u64 = 512;

fn value_of(ts_ms: u64) -> f64 {
    (ts_ms % 997) as f64 / 4.0
}

fn add_all(c: &mut RawConn, model: &mut BTreeMap<u64, f64>, ts: impl Iterator<Item = u64>) {
    let ts: Vec<u64> = ts.collect();
    for batch in ts.chunks(500) {
        let mut args = vec!["TS.MADD".to_string()];
        for &t in batch {
            args.extend([SERIES.to_string(), t.to_string(), value_of(t).to_string()]);
            model.insert(t, value_of(t));
        }
        let Reply::Array(replies) = c.request(&args) else {
            panic!("TS.MADD replies an array");
        };
        assert!(replies.iter().all(|r| !r.is_error()), "{replies:?}");
    }
}

fn delete(c: &mut RawConn, model: &mut BTreeMap<u64, f64>, from: u64, to: u64) -> u64 {
    let before = c.persistence_number("wal_bytes");
    let reply = c.request(&["TS.DEL", SERIES, &from.to_string(), &to.to_string()]);
    let wal_bytes = c.persistence_number("wal_bytes") - before;
    let gone: Vec<u64> = model.range(from..=to).map(|(&t, _)| t).collect();
    for t in &gone {
        model.remove(t);
    }
    assert_eq!(reply, Reply::Int(gone.len() as i64), "TS.DEL {from} {to}");
    wal_bytes
}

fn check(c: &mut RawConn, model: &BTreeMap<u64, f64>, when: &str) {
    let expected: Vec<(u64, f64)> = model.iter().map(|(&t, &v)| (t, v)).collect();
    let range = samples_of(c.request(&["TS.RANGE", SERIES, "-", "+"]));
    assert_eq!(range.len(), expected.len(), "{when}: sample count");
    assert_eq!(range, expected, "{when}: TS.RANGE");
    let mut reverse = samples_of(c.request(&["TS.REVRANGE", SERIES, "-", "+"]));
    reverse.reverse();
    assert_eq!(reverse, expected, "{when}: TS.REVRANGE");
    let (&first, _) = model.first_key_value().expect("samples left");
    let (&last_ts, &last_value) = model.last_key_value().expect("samples left");
    assert_eq!(
        samples_of(Reply::Array(vec![c.request(&["TS.GET", SERIES])])),
        vec![(last_ts, last_value)],
        "{when}: TS.GET"
    );
    let info = info_fields(c, false);
    assert_eq!(
        info["totalSamples"],
        Reply::Int(model.len() as i64),
        "{when}"
    );
    assert_eq!(info["firstTimestamp"], Reply::Int(first as i64), "{when}");
    // A count over one cut chunk only, as `TS.RANGE ... AGGREGATION count` reads it.
    let counted = c.request(&[
        "TS.RANGE",
        SERIES,
        "0",
        "1999",
        "AGGREGATION",
        "count",
        "1000000",
    ]);
    let in_first = model.range(0..=1999).count();
    let expected_count = if in_first == 0 {
        vec![]
    } else {
        vec![(0, in_first as f64)]
    };
    assert_eq!(samples_of(counted), expected_count, "{when}: count");
}

/// `TS.INFO` as field → value (RESP2: alternating names and values).
fn info_fields(c: &mut RawConn, debug: bool) -> BTreeMap<String, Reply> {
    let mut args = vec!["TS.INFO", SERIES];
    if debug {
        args.push("DEBUG");
    }
    let Reply::Array(items) = c.request(&args) else {
        panic!("TS.INFO replies an array");
    };
    items
        .chunks(2)
        .map(|pair| match &pair[0] {
            Reply::Status(name) => (name.clone(), pair[1].clone()),
            other => panic!("a field name: {other:?}"),
        })
        .collect()
}

/// The bytes of the chunk that holds `ts_ms`, from `TS.INFO ... DEBUG`.
fn chunk_bytes_at(c: &mut RawConn, ts_ms: u64) -> i64 {
    let Reply::Array(chunks) = info_fields(c, true).remove("Chunks").expect("Chunks") else {
        panic!("Chunks is an array");
    };
    for chunk in chunks {
        let Reply::Array(fields) = chunk else {
            panic!("a chunk is an array of fields");
        };
        let field = |name: &str| {
            let at = fields
                .iter()
                .position(|f| *f == Reply::Status(name.to_string()))
                .expect("field");
            match fields[at + 1] {
                Reply::Int(n) => n,
                ref other => panic!("{name}: {other:?}"),
            }
        };
        if (field("startTimestamp")..=field("endTimestamp")).contains(&(ts_ms as i64)) {
            return field("size");
        }
    }
    panic!("no chunk holds {ts_ms}");
}

#[test]
fn deletes_cut_chunks_with_marks_and_compaction_applies_them() {
    let args = ["--shards", "1", "--memtable-bytes", "65536"];
    let mut server = TestServer::start(&args);
    let mut c = server.raw();
    let mut model = BTreeMap::new();
    assert_eq!(
        c.request(&["TS.CREATE", SERIES, "CHUNK_SIZE", "4096"]),
        Reply::ok()
    );
    add_all(&mut c, &mut model, (0..SAMPLES).map(|i| i * STEP_MS));
    check(&mut c, &model, "written");

    // Inside the first chunk: one mark.
    let cut_bytes = chunk_bytes_at(&mut c, 1000);
    let wal = delete(&mut c, &mut model, 1005, 1495);
    assert!(
        wal <= DELETE_WAL_BYTES_MAX,
        "a delete inside a chunk logged {wal} bytes"
    );
    check(&mut c, &model, "after a delete inside a chunk");
    assert_eq!(
        chunk_bytes_at(&mut c, 1000),
        cut_bytes,
        "the chunk was rewritten"
    );

    // A long range: chunks inside get tombstones, the two at its ends marks.
    let wal = delete(&mut c, &mut model, 30_003, 90_007);
    assert!(
        wal <= DELETE_WAL_BYTES_MAX,
        "a long delete logged {wal} bytes"
    );
    check(&mut c, &model, "after a long delete");
    // Nothing left in range, and a second delete over a cut part counts what is left.
    let wal = delete(&mut c, &mut model, 30_003, 90_007);
    assert!(
        wal <= DELETE_WAL_BYTES_MAX,
        "an empty delete logged {wal} bytes"
    );
    delete(&mut c, &mut model, 1200, 1600);
    check(&mut c, &model, "after deleting again");

    // The newest samples (open ones and the end of the last chunk): `TS.GET` follows.
    let newest = (SAMPLES - 1) * STEP_MS;
    delete(&mut c, &mut model, newest - 15_000, newest);
    check(&mut c, &model, "after deleting the newest samples");

    // Samples added again inside the long deleted range, sealed into its cut chunks.
    add_all(&mut c, &mut model, (0..3_000).map(|i| 30_005 + i * 20));
    check(&mut c, &model, "after adding into a deleted range");

    drop(c);
    server.shutdown();
    let dir = server.data_dir().to_path_buf();
    let mut server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    check(&mut c, &model, "after a restart");

    // Filler writes make the server flush and compact the level-0 tables, chunk and
    // marks together.
    let compactions = c.persistence_number("compactions");
    let filler = "x".repeat(1000);
    let mut i = 0;
    while c.persistence_number("compactions") == compactions {
        for _ in 0..500 {
            c.request(&["SET", &format!("filler:{i}"), &filler]);
            i += 1;
        }
        assert!(i < 2_000_000, "no compaction after {i} filler writes");
    }
    check(&mut c, &model, "after a compaction");
    let compacted = chunk_bytes_at(&mut c, 1000);
    assert!(
        compacted < cut_bytes,
        "compaction left the cut chunk at {compacted} bytes (was {cut_bytes})"
    );
    drop(c);
    server.shutdown();
}
