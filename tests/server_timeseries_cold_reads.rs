//! Goal: time-series commands whose chunks, samples and metadata are not in memory read
//! their SSTable blocks through the shard's ring and never with a blocking read on the
//! shard's loop, and still answer exactly: `TS.RANGE`, `TS.REVRANGE`, `TS.MRANGE`,
//! `TS.GET`, `TS.INFO`, `TS.DEL`, `twa` (with the samples just outside its range), `DEL`
//! of a whole series, and an out-of-order `TS.ADD` whose seal merges samples
//! into chunks already on disk; a write pipelined behind a waiting range stays behind it.
//!
//! Method: `--shards 2`, 24 series of 4,000 samples each in chunks of 128 bytes (so a
//! range spans many chunks and blocks), flushed with `SAVE`; then the server is restarted
//! on the same data with `--block-cache-bytes 16384`, so its series cache is empty and
//! nearly every block is cold. Every reply is compared with a model, and `INFO
//! persistence` is read before and after: `block_reads_async` (ring reads) must grow and
//! `block_reads_blocking` (reads on the loop) must not.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use common::{encode, samples_of, Reply, TestServer};

const SERIES: usize = 24;
const SAMPLES: u64 = 4_000;
const FIRST_TS_MS: u64 = 1_000;

fn series(i: usize) -> String {
    format!("cold:ts:{i:02}")
}

/// Sample `j` of series `i`: even timestamps, values that compress poorly.
fn sample(i: usize, j: u64) -> (u64, f64) {
    let n = (i as u64 * 7_919 + j * 104_729) % 1_000_003;
    (FIRST_TS_MS + 2 * j, n as f64 / 8.0)
}

type Model = Vec<BTreeMap<u64, f64>>;

/// Writes the series, flushes them, and restarts the server with a tiny block cache.
fn cold_server(dir: &std::path::Path) -> (TestServer, Model) {
    let common_args = ["--shards", "2", "--memtable-bytes", "65536"];
    let mut model = vec![BTreeMap::new(); SERIES];
    {
        let mut server = TestServer::start_in(dir, &common_args);
        let mut raw = server.raw();
        let mut load = Vec::new();
        let mut replies = 0;
        for (i, samples) in model.iter_mut().enumerate() {
            let name = series(i);
            load.extend(encode(&[
                "TS.CREATE",
                &name,
                "CHUNK_SIZE",
                "128",
                "LABELS",
                "set",
                "cold",
            ]));
            replies += 1;
            for j in 0..SAMPLES {
                let (ts, value) = sample(i, j);
                load.extend(encode(&[
                    "TS.ADD",
                    &name,
                    &ts.to_string(),
                    &value.to_string(),
                ]));
                samples.insert(ts, value);
                replies += 1;
            }
        }
        load.extend(encode(&["SAVE"]));
        replies += 1;
        let mut writer = raw.writer_clone();
        let sender = std::thread::spawn(move || writer.write_all(&load).unwrap());
        for _ in 0..replies {
            let reply = raw.reply();
            assert!(!reply.is_error(), "load: {reply:?}");
        }
        sender.join().unwrap();
        assert!(server.shutdown().success());
    }
    let mut args = common_args.to_vec();
    args.extend(["--block-cache-bytes", "16384"]);
    (TestServer::start_in(dir, &args), model)
}

fn in_range(model: &BTreeMap<u64, f64>, from: u64, to: u64) -> Vec<(u64, f64)> {
    model.range(from..=to).map(|(&t, &v)| (t, v)).collect()
}

#[test]
fn series_reads_on_cold_blocks_go_through_the_ring_only() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut model) = cold_server(dir.path());
    let mut raw = server.raw();
    // A shard recovers its compaction rules' pending hand-overs at its first wake-up, with
    // blocking reads of its own: wake every shard (twice, so each has published its
    // counters since) before taking the baseline.
    for _ in 0..2 {
        assert!(matches!(raw.request(&["DBSIZE"]), Reply::Int(_)));
    }
    let async_before = raw.persistence_number("block_reads_async");
    let blocking_before = raw.persistence_number("block_reads_blocking");

    // A middle range of one series, and a whole one reversed.
    let (from, to) = (FIRST_TS_MS + 1_000, FIRST_TS_MS + 5_000);
    let got =
        samples_of(raw.request(&["TS.RANGE", &series(3), &from.to_string(), &to.to_string()]));
    assert_eq!(got, in_range(&model[3], from, to), "TS.RANGE");
    let mut got = samples_of(raw.request(&["TS.REVRANGE", &series(5), "-", "+"]));
    got.reverse();
    assert_eq!(got, in_range(&model[5], 0, u64::MAX), "TS.REVRANGE");

    // Every series through the label index, on both shards.
    let Reply::Array(entries) = raw.request(&["TS.MRANGE", "-", "+", "FILTER", "set=cold"]) else {
        panic!("TS.MRANGE replies with an array");
    };
    assert_eq!(entries.len(), SERIES);
    for entry in entries {
        let Reply::Array(mut parts) = entry else {
            panic!("an entry: {entry:?}");
        };
        let samples = samples_of(parts.pop().unwrap());
        let Some(Reply::Bulk(name)) = parts.first() else {
            panic!("an entry's key");
        };
        let i: usize = std::str::from_utf8(&name[8..]).unwrap().parse().unwrap();
        assert_eq!(
            samples,
            in_range(&model[i], 0, u64::MAX),
            "TS.MRANGE of {i}"
        );
    }

    // `twa` over a middle range: it also reads the samples just outside the range. The
    // same query again, with everything in memory, must give the same buckets.
    let twa = [
        "TS.RANGE",
        &series(19),
        &(FIRST_TS_MS + 1_001).to_string(),
        &(FIRST_TS_MS + 5_001).to_string(),
        "AGGREGATION",
        "twa",
        "500",
    ];
    let cold = samples_of(raw.request(&twa));
    assert_eq!(cold.len(), 9, "twa buckets: {cold:?}");
    assert_eq!(samples_of(raw.request(&twa)), cold, "twa, cold and warm");

    // A deletion in the middle of a series, then what is left.
    let (from, to) = (FIRST_TS_MS + 2_000, FIRST_TS_MS + 2_999);
    let removed = in_range(&model[7], from, to).len() as i64;
    let reply = raw.request(&["TS.DEL", &series(7), &from.to_string(), &to.to_string()]);
    assert_eq!(reply, Reply::Int(removed), "TS.DEL");
    model[7].retain(|t, _| !(from..=to).contains(t));
    let got = samples_of(raw.request(&["TS.RANGE", &series(7), "-", "+"]));
    assert_eq!(got, in_range(&model[7], 0, u64::MAX), "after TS.DEL");

    // Out-of-order samples into old chunks: enough of them that a seal merges them in.
    for k in 0..40u64 {
        let ts = FIRST_TS_MS + 401 + 2 * k;
        let value = k as f64 + 0.5;
        let reply = raw.request(&["TS.ADD", &series(9), &ts.to_string(), &value.to_string()]);
        assert_eq!(reply, Reply::Int(ts as i64), "out-of-order TS.ADD");
        model[9].insert(ts, value);
    }
    let got = samples_of(raw.request(&["TS.RANGE", &series(9), "-", "+"]));
    assert_eq!(
        got,
        in_range(&model[9], 0, u64::MAX),
        "after out-of-order adds"
    );

    // The newest sample, and TS.INFO's walk over every chunk.
    let (last_ts, last_value) = sample(11, SAMPLES - 1);
    let got = samples_of(Reply::Array(vec![raw.request(&["TS.GET", &series(11)])]));
    assert_eq!(got, vec![(last_ts, last_value)], "TS.GET");
    let Reply::Array(info) = raw.request(&["TS.INFO", &series(13)]) else {
        panic!("TS.INFO replies with an array");
    };
    let at = info
        .iter()
        .position(|r| {
            *r == Reply::Status("totalSamples".into()) || *r == Reply::bulk("totalSamples")
        })
        .expect("totalSamples");
    assert_eq!(
        info[at + 1],
        Reply::Int(SAMPLES as i64),
        "TS.INFO totalSamples"
    );

    // Pipelined behind a range that waits for its blocks, a write to that series is not
    // in its reply, and the range after it is (on whichever shard owns each series).
    for i in [15, 16, 17] {
        let name = series(i);
        let new_ts = (FIRST_TS_MS + 2 * SAMPLES + 10).to_string();
        let mut pipeline = encode(&["TS.RANGE", &name, "-", "+"]);
        pipeline.extend(encode(&["TS.ADD", &name, &new_ts, "1.5"]));
        pipeline.extend(encode(&["TS.RANGE", &name, "-", "+"]));
        raw.send(&pipeline).unwrap();
        let before = samples_of(raw.reply());
        assert_eq!(
            before,
            in_range(&model[i], 0, u64::MAX),
            "range before the add"
        );
        assert_eq!(
            raw.reply(),
            Reply::Int(FIRST_TS_MS as i64 + 2 * SAMPLES as i64 + 10)
        );
        model[i].insert(FIRST_TS_MS + 2 * SAMPLES + 10, 1.5);
        let after = samples_of(raw.reply());
        assert_eq!(
            after,
            in_range(&model[i], 0, u64::MAX),
            "range after the add"
        );
    }

    // `DEL` of a whole cold series reads every chunk and sample entry of it to delete
    // them; then the series is gone.
    assert_eq!(raw.request(&["DEL", &series(21)]), Reply::Int(1), "DEL");
    assert_eq!(raw.request(&["EXISTS", &series(21)]), Reply::Int(0));

    let ring_reads = raw.persistence_number("block_reads_async") - async_before;
    let blocking_reads = raw.persistence_number("block_reads_blocking") - blocking_before;
    eprintln!("ring reads {ring_reads}, blocking reads {blocking_reads}");
    assert!(
        ring_reads > 100,
        "the series read their blocks through the ring ({ring_reads} reads)"
    );
    assert_eq!(blocking_reads, 0, "no series read a block on the loop");
}
