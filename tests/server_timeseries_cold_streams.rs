//! Goal: a range reply long enough to be streamed (`TS.RANGE`, `TS.REVRANGE`,
//! `TS.MRANGE`) over chunks that are not in memory reads them through the shard's ring,
//! step by step as the client reads, never with a blocking read on the shard's loop, also
//! for a series on another shard than the reading connection's; and it is exact.
//!
//! Method: `--shards 2`, one series on each shard with 100,000 samples whose values
//! compress poorly (about 700 KB of chunks each, well past the 256 KiB a range keeps from
//! its chunk listing), flushed with `SAVE`; then the server is restarted on the same data
//! with `--block-cache-bytes 16384`, so nearly every block is cold. Each range is compared
//! with the model, and `INFO persistence` is read before and after: `block_reads_async`
//! (ring reads) must grow and `block_reads_blocking` (reads on the loop) must not.

mod common;

use std::collections::BTreeMap;

use common::{samples_of, Reply, TestServer};

const SAMPLES: u64 = 100_000;

/// Two series names, one owned by each of the two shards.
fn names() -> [String; 2] {
    let mut found: [Option<String>; 2] = [None, None];
    for i in 0.. {
        let name = format!("cold:stream:{i}");
        let shard = tskv::datadir::shard_of(name.as_bytes(), 2).0;
        found[shard].get_or_insert(name);
        if let [Some(a), Some(b)] = &found {
            return [a.clone(), b.clone()];
        }
    }
    unreachable!()
}

/// Sample `j` of series `i`: 10 ms steps, values that compress poorly.
fn sample(i: usize, j: u64) -> (u64, f64) {
    let n = (i as u64 * 7_919 + j * 104_729) % 1_000_003;
    (1_000 + 10 * j, n as f64 / 8.0)
}

#[test]
fn streamed_ranges_read_cold_chunks_through_the_ring_only() {
    let dir = tempfile::tempdir().unwrap();
    let keys = names();
    let mut model = vec![BTreeMap::new(); 2];
    {
        let mut server = TestServer::start_in(dir.path(), &["--shards", "2"]);
        let mut c = server.raw();
        for (i, key) in keys.iter().enumerate() {
            let created = c.request(&["TS.CREATE", key, "LABELS", "set", "cold"]);
            assert_eq!(created, Reply::Status("OK".into()));
            for batch in (0..SAMPLES).collect::<Vec<_>>().chunks(2_000) {
                let mut args = vec!["TS.MADD".to_string()];
                for &j in batch {
                    let (ts, v) = sample(i, j);
                    args.extend([key.clone(), ts.to_string(), v.to_string()]);
                    model[i].insert(ts, v);
                }
                let reply = c.request(&args);
                assert!(
                    matches!(&reply, Reply::Array(a) if a.len() == batch.len()),
                    "{reply:?}"
                );
            }
        }
        assert_eq!(c.request(&["SAVE"]), Reply::Status("OK".into()));
        assert!(server.shutdown().success());
    }
    let server = TestServer::start_in(
        dir.path(),
        &["--shards", "2", "--block-cache-bytes", "16384"],
    );
    let mut c = server.raw();
    // Wake every shard (twice, so each has published its counters) before the baseline.
    for _ in 0..2 {
        assert!(matches!(c.request(&["DBSIZE"]), Reply::Int(_)));
    }
    let async_before = c.persistence_number("block_reads_async");
    let blocking_before = c.persistence_number("block_reads_blocking");

    for (i, key) in keys.iter().enumerate() {
        let all: Vec<(u64, f64)> = model[i].iter().map(|(&t, &v)| (t, v)).collect();
        let forward = samples_of(c.request(&["TS.RANGE", key, "-", "+"]));
        assert_eq!(forward.len(), all.len(), "{key}: every sample, forward");
        assert_eq!(forward, all, "{key}: forward");
        let mut reversed = samples_of(c.request(&["TS.REVRANGE", key, "-", "+"]));
        reversed.reverse();
        assert_eq!(reversed, all, "{key}: reverse");
        // A filter makes the count a walk of its own before the stream.
        let (min, max) = (10_000.0, 1_000_000.0);
        let filtered = samples_of(c.request(&[
            "TS.RANGE",
            key,
            "-",
            "+",
            "FILTER_BY_VALUE",
            &min.to_string(),
            &max.to_string(),
        ]));
        let want: Vec<(u64, f64)> = all
            .iter()
            .copied()
            .filter(|&(_, v)| (min..=max).contains(&v))
            .collect();
        assert!(want.len() > 32_768, "the filtered reply is streamed too");
        assert_eq!(filtered, want, "{key}: filtered");
    }

    let Reply::Array(series) = c.request(&["TS.MRANGE", "-", "+", "FILTER", "set=cold"]) else {
        panic!("TS.MRANGE replies with an array");
    };
    assert_eq!(series.len(), 2);
    for entry in series {
        let Reply::Array(mut parts) = entry else {
            panic!("a series entry: {entry:?}");
        };
        let samples = samples_of(parts.pop().expect("samples"));
        let Reply::Bulk(name) = &parts[0] else {
            panic!("a key: {parts:?}");
        };
        let i = keys.iter().position(|k| k.as_bytes() == name).unwrap();
        let all: Vec<(u64, f64)> = model[i].iter().map(|(&t, &v)| (t, v)).collect();
        assert_eq!(samples, all, "TS.MRANGE of {}", keys[i]);
    }

    let ring_reads = c.persistence_number("block_reads_async") - async_before;
    let blocking_reads = c.persistence_number("block_reads_blocking") - blocking_before;
    eprintln!("ring reads {ring_reads}, blocking reads {blocking_reads}");
    assert!(
        ring_reads > 200,
        "the streams read their blocks through the ring ({ring_reads} reads)"
    );
    assert_eq!(blocking_reads, 0, "no stream read a block on the loop");
}
