//! Goal: `AGGREGATION twa` gives RedisTimeSeries 1.10's values: each bucket is the area
//! under the line through the samples, interpolated at the bucket's edges from the
//! samples around it (also outside the queried range), the first and last bucket cut at
//! `fromTimestamp`/`toTimestamp`, empty buckets (`EMPTY`) interpolated between their
//! neighbours; the same in reverse, with `ALIGN`, `BUCKETTIMESTAMP`, `COUNT`, filters
//! (whose dropped samples still serve as the range's outer neighbours) and compaction
//! rules (with `LATEST`).
//!
//! Method: a one-shard server over a raw RESP2 connection. The vectors come from
//! RedisTimeSeries's flow tests (`tests/flow/test_ts_range.py`, `test_agg_twa`: cases 18,
//! 100 and 101) or are worked out by hand in the comments, mostly on series whose value
//! equals their timestamp, where a bucket's twa is the middle of the span it covers.

mod common;

use common::twa_reference::line_mean;
use common::{Reply, TestServer};

fn req(con: &mut common::RawConn, line: &str) -> Reply {
    let args: Vec<&str> = line.split_whitespace().collect();
    con.request(&args)
}

/// The `(timestamp, value)` pairs of a range reply.
fn pairs(reply: Reply) -> Vec<(i64, f64)> {
    let Reply::Array(items) = reply else {
        panic!("not an array: {reply:?}")
    };
    items
        .into_iter()
        .map(|item| match item {
            Reply::Array(pair) => match (&pair[0], &pair[1]) {
                (Reply::Int(ts), Reply::Status(v)) => (*ts, v.parse().expect("a number")),
                other => panic!("not a sample: {other:?}"),
            },
            other => panic!("not a sample: {other:?}"),
        })
        .collect()
}

fn assert_buckets(con: &mut common::RawConn, line: &str, want: &[(i64, f64)]) {
    let got = pairs(req(con, line));
    assert_eq!(got.len(), want.len(), "{line}: {got:?} vs {want:?}");
    for ((gt, gv), (wt, wv)) in got.iter().zip(want) {
        let close = (gv - wv).abs() <= 1e-9 * wv.abs().max(1.0);
        assert!(gt == wt && close, "{line}: {got:?} vs {want:?}");
    }
}

/// `TS.RANGE` gives `want`, and `TS.REVRANGE` the same reversed.
fn assert_both_ways(con: &mut common::RawConn, args: &str, want: &[(i64, f64)]) {
    assert_buckets(con, &format!("TS.RANGE {args}"), want);
    let reversed: Vec<(i64, f64)> = want.iter().rev().copied().collect();
    assert_buckets(con, &format!("TS.REVRANGE {args}"), &reversed);
}

fn add_all(con: &mut common::RawConn, key: &str, samples: &[(u64, f64)]) {
    for (ts, v) in samples {
        let line = format!("TS.ADD {key} {ts} {v}");
        assert_eq!(req(con, &line), Reply::Int(*ts as i64), "{line}");
    }
}

#[test]
fn twa_interpolates_at_bucket_edges_and_range_bounds() {
    let server = TestServer::start(&["--shards", "1"]);
    let mut c = server.raw();

    // Flow test case 18: 100@10 110@13 115@15 109@19 130@25.
    let (v1, v2, v3, v4, v5) = (100.0, 110.0, 115.0, 109.0, 130.0);
    let (t1, t2, t3, t4, t5) = (10.0, 13.0, 15.0, 19.0, 25.0);
    add_all(
        &mut c,
        "ts18",
        &[(10, v1), (13, v2), (15, v3), (19, v4), (25, v5)],
    );
    let line_at = |ta: f64, (ta1, va1): (f64, f64), (ta2, va2): (f64, f64)| {
        va1 + (va2 - va1) * (ta - ta1) / (ta2 - ta1)
    };
    let inner = (v2 + v3) * (t3 - t2) + (v3 + v4) * (t4 - t3);
    // Cut on both sides by the range [12, 20] inside one bucket of 100: interpolated
    // from 100@10 at 12 and towards 130@25 at 20.
    let (ta, tb) = (12.0, 20.0);
    let va = line_at(ta, (t1, v1), (t2, v2));
    let vb = line_at(tb, (t4, v4), (t5, v5));
    let s = (va + v2) * (t2 - ta) + inner + (vb + v4) * (tb - t4);
    assert_both_ways(
        &mut c,
        "ts18 12 20 AGGREGATION twa 100",
        &[(0, s / (2.0 * (tb - ta)))],
    );
    // Past the last sample there is nothing to interpolate towards: the area ends there.
    let ta = 11.0;
    let va = line_at(ta, (t1, v1), (t2, v2));
    let s = (va + v2) * (t2 - ta) + inner + (v5 + v4) * (t5 - t4);
    assert_both_ways(
        &mut c,
        "ts18 11 30 AGGREGATION twa 100",
        &[(0, s / (2.0 * (t5 - ta)))],
    );
    // Before the first sample likewise: the area starts there.
    let s = (v1 + v2) * (t2 - t1) + inner + (v5 + v4) * (t5 - t4);
    assert_both_ways(
        &mut c,
        "ts18 8 26 AGGREGATION twa 100",
        &[(0, s / (2.0 * (t5 - t1)))],
    );

    // Value = timestamp: a bucket's twa is the middle of what it covers. [0,10) runs from
    // the first sample (8) to its edge (10), interpolated towards 10@10; [10,20) and
    // [20,30) are whole; [40,50) runs from its edge to the last sample (41).
    let line: Vec<(u64, f64)> = [8, 9, 10, 13, 14, 23, 27, 41]
        .iter()
        .map(|&t| (t, t as f64))
        .collect();
    add_all(&mut c, "line", &line);
    let whole = [(0, 9.0), (10, 15.0), (20, 25.0), (40, 40.5)];
    assert_both_ways(&mut c, "line - + AGGREGATION twa 10", &whole);
    // EMPTY: the empty bucket [30,40) lies on the line from 27@27 to 41@41.
    let with_empty = [(0, 9.0), (10, 15.0), (20, 25.0), (30, 35.0), (40, 40.5)];
    assert_both_ways(&mut c, "line - + AGGREGATION twa 10 EMPTY", &with_empty);
    // The first bucket of a range reaches back to the sample before it (9@9) and the
    // last forward to the one after it (27@27), both outside [10, 24].
    assert_both_ways(
        &mut c,
        "line 10 24 AGGREGATION twa 10",
        &[(10, 15.0), (20, 22.0)],
    );
    // ALIGN 5, reported at the bucket's end, two buckets: [5,15) runs 8..15, [15,25)
    // is whole; backwards, [35,45) runs 35..41 and [25,35) is whole.
    assert_buckets(
        &mut c,
        "TS.RANGE line - + ALIGN 5 AGGREGATION twa 10 BUCKETTIMESTAMP + COUNT 2",
        &[(15, 11.5), (25, 20.0)],
    );
    assert_buckets(
        &mut c,
        "TS.REVRANGE line - + COUNT 2 ALIGN 5 AGGREGATION twa 10 BUCKETTIMESTAMP +",
        &[(45, 38.0), (35, 30.0)],
    );
}

#[test]
fn twa_empty_buckets_follow_the_line_between_neighbours() {
    let server = TestServer::start(&["--shards", "1"]);
    let mut c = server.raw();
    // Flow test case 100: 100@20 130@50.
    add_all(&mut c, "ts22", &[(20, 100.0), (50, 130.0)]);
    assert_both_ways(
        &mut c,
        "ts22 20 50 AGGREGATION twa 100 EMPTY",
        &[(0, 115.0)],
    );
    assert_both_ways(
        &mut c,
        "ts22 20 50 AGGREGATION twa 10 EMPTY",
        &[(20, 105.0), (30, 115.0), (40, 125.0), (50, 130.0)],
    );
    // Flow test case 101: no empty bucket before the first sample or after the last.
    add_all(&mut c, "ts23", &[(40, 100.0), (50, 130.0)]);
    assert_both_ways(
        &mut c,
        "ts23 29 70 AGGREGATION twa 10 EMPTY",
        &[(40, 115.0), (50, 130.0)],
    );
}

#[test]
fn twa_takes_the_range_neighbours_from_the_unfiltered_series() {
    let server = TestServer::start(&["--shards", "1"]);
    let mut c = server.raw();
    // 1000@5 is filtered out, yet it is the sample before the range [6, +] that the
    // first bucket interpolates from (as RedisTimeSeries looks it up unfiltered);
    // between buckets the neighbours are the kept samples.
    add_all(
        &mut c,
        "f",
        &[(2, 10.0), (5, 1000.0), (8, 20.0), (16, 40.0)],
    );
    // [0,10) cut at 6: at 6 the line 1000@5 -> 20@8 is 1000 - 980/3; at 10 the line
    // 20@8 -> 40@16 is 25.
    let at6 = 1000.0 - 980.0 / 3.0;
    let first = ((at6 + 20.0) * 2.0 / 2.0 + (25.0 + 20.0) * 2.0 / 2.0) / 4.0;
    // [10,20): from 25 at 10 to the last sample 40@16.
    let second = (25.0 + 40.0) * 6.0 / 2.0 / 6.0;
    assert_both_ways(
        &mut c,
        "f 6 + FILTER_BY_VALUE 0 100 AGGREGATION twa 10",
        &[(0, first), (10, second)],
    );
    assert_both_ways(
        &mut c,
        "f 6 + FILTER_BY_TS 8 16 AGGREGATION twa 10",
        &[(0, first), (10, second)],
    );
    // Dropped samples inside the range serve too: 1000@5 before the first kept sample
    // and 5000@18 after the last. [10,20) cut at 18: at 10 the line 1000@5 -> 20@12 is
    // 300; then 20@12 -> 40@16; then 40@16 -> 5000@18, which is the edge.
    add_all(
        &mut c,
        "g",
        &[(2, 10.0), (5, 1000.0), (12, 20.0), (16, 40.0), (18, 5000.0)],
    );
    let area = (300.0 + 20.0) * 2.0 / 2.0 + (20.0 + 40.0) * 4.0 / 2.0 + (5000.0 + 40.0) * 2.0 / 2.0;
    assert_both_ways(
        &mut c,
        "g 3 + FILTER_BY_VALUE 0 100 AGGREGATION twa 10",
        &[(10, area / 8.0)],
    );
    // EMPTY with a filter: a gap's line runs between the unfiltered samples around it
    // (10@2 and the dropped 500@25), not between the kept ones (10@2 and 50@33).
    add_all(&mut c, "h", &[(2, 10.0), (25, 500.0), (33, 50.0)]);
    let first = 10.0 + 4.0 * 40.0 / 31.0;
    let last = (10.0 + 28.0 * 40.0 / 31.0 + 50.0) / 2.0;
    let gap = 10.0 + 13.0 * 490.0 / 23.0;
    assert_both_ways(
        &mut c,
        "h - + FILTER_BY_VALUE 0 100 AGGREGATION twa 10 EMPTY",
        &[(0, first), (10, gap), (20, 500.0), (30, last)],
    );
}

#[test]
fn twa_compaction_interpolates_across_closed_buckets() {
    let server = TestServer::start(&["--shards", "1"]);
    let mut c = server.raw();
    for line in [
        "TS.CREATE src",
        "TS.CREATE dst",
        "TS.CREATERULE src dst AGGREGATION twa 10",
    ] {
        assert_eq!(req(&mut c, line), Reply::ok(), "{line}");
    }
    // Value = timestamp. [0,10) runs from its first sample (2) to its end, reaching
    // towards 12@12; [10,20) and [20,30) are whole; the open bucket [30,40) runs from its
    // start (interpolated from 25@25) to its only sample 31.
    let line: Vec<(u64, f64)> = [2, 5, 12, 18, 25, 31]
        .iter()
        .map(|&t| (t, t as f64))
        .collect();
    add_all(&mut c, "src", &line);
    let closed = [(0, 6.0), (10, 15.0), (20, 25.0)];
    assert_buckets(&mut c, "TS.RANGE dst - +", &closed);
    let mut with_latest = closed.to_vec();
    with_latest.push((30, 30.5));
    assert_buckets(&mut c, "TS.RANGE dst - + LATEST", &with_latest);
}

/// Sealed chunks, a gap of deleted samples right before the range (longer than the
/// first window the backward search reads), and a restart: the neighbours come from the
/// chunks on disk.
#[test]
fn twa_finds_neighbours_in_sealed_chunks_across_a_gap_and_a_restart() {
    let args = ["--shards", "1"];
    let mut server = TestServer::start(&args);
    let dir = server.data_dir().to_path_buf();
    let mut c = server.raw();
    assert_eq!(req(&mut c, "TS.CREATE big CHUNK_SIZE 256"), Reply::ok());
    let all: Vec<(u64, f64)> = (0..3000u64)
        .map(|i| (1000 * i, ((i * 37) % 23) as f64 - 5.5))
        .collect();
    for batch in all.chunks(100) {
        let mut line = String::from("TS.MADD");
        for (ts, v) in batch {
            line.push_str(&format!(" big {ts} {v}"));
        }
        req(&mut c, &line);
    }
    assert_eq!(req(&mut c, "TS.DEL big 1100000 1234000"), Reply::Int(135));
    let kept: Vec<(u64, f64)> = all
        .iter()
        .copied()
        .filter(|(ts, _)| !(1_100_000..=1_234_000).contains(ts))
        .collect();
    let (from, to, bucket) = (1_234_567u64, 1_800_000u64, 60_000u64);
    let want: Vec<(i64, f64)> = (from / bucket * bucket..=to)
        .step_by(bucket as usize)
        .map(|start| {
            let (lo, hi) = (start.max(from), (start + bucket).min(to));
            (start as i64, line_mean(&kept, lo, hi))
        })
        .collect();
    let query = format!("big {from} {to} AGGREGATION twa {bucket}");
    assert_both_ways(&mut c, &query, &want);
    drop(c);
    server.shutdown();
    let server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    assert_both_ways(&mut c, &query, &want);
}

/// `TS.MRANGE` / `TS.MREVRANGE` give each series the same `twa` buckets as its own
/// `TS.RANGE` / `TS.REVRANGE`, neighbours outside the range included.
#[test]
fn twa_in_mrange_matches_range() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    for key in ["m{a}", "m{b}"] {
        assert_eq!(
            req(&mut c, &format!("TS.CREATE {key} LABELS k m")),
            Reply::ok()
        );
    }
    add_all(
        &mut c,
        "m{a}",
        &[(3, 1.0), (9, 7.0), (14, 2.0), (26, 11.0), (31, 4.0)],
    );
    add_all(
        &mut c,
        "m{b}",
        &[(1, 5.0), (12, -3.0), (19, 8.0), (33, 6.0)],
    );
    let range = "8 27 AGGREGATION twa 10 EMPTY";
    // By hand: [0,10) cut to [8,10] runs 6 -> 7 -> 6 (lines to 1@3 and 2@14); [10,20)
    // runs 6 -> 2 -> 6.5; [20,30) cut to [20,27] runs 6.5 -> 11 -> 9.6 (line to 4@31).
    assert_both_ways(
        &mut c,
        &format!("m{{a}} {range}"),
        &[(0, 6.5), (10, 4.15), (20, 62.8 / 7.0)],
    );
    for (single, multi) in [("TS.RANGE", "TS.MRANGE"), ("TS.REVRANGE", "TS.MREVRANGE")] {
        let Reply::Array(series) = req(&mut c, &format!("{multi} {range} FILTER k=m")) else {
            panic!("{multi} is an array")
        };
        assert_eq!(series.len(), 2, "{multi}");
        for entry in series {
            let Reply::Array(parts) = entry else {
                panic!("{multi}: a series is an array")
            };
            let Reply::Bulk(key) = &parts[0] else {
                panic!("{multi}: a key first")
            };
            let key = String::from_utf8(key.clone()).unwrap();
            let alone = req(&mut c, &format!("{single} {key} {range}"));
            assert_eq!(parts[2], alone, "{multi} {key}");
        }
    }
}
