//! Goal: an out-of-order sample far back in a long series costs its seal the rewrite of
//! the one chunk that holds it, not of every chunk after it, and is read back exactly.
//!
//! Method: the real `tskv-server` (one shard) and a series of 50,000 samples ten
//! milliseconds apart in 4 KiB chunks (about 1,000 samples each, so a seal comes every
//! 1,024 samples, `CHUNK_SIZE / 4`). Two batches of exactly 2,048 samples each make two
//! seals: the first all after the newest sample, the second with one of them in the
//! middle of the series (sealed by one of its two seals, whatever the phase). The second
//! may log at most about two chunks more WAL bytes than the first (rewriting the tail from
//! the middle would log about 100 KiB more). Then
//! `TS.RANGE` must return every sample, the out-of-order one included, before and after a
//! restart, and a sample added at a timestamp between two chunks must be read too.

mod common;

use common::{samples_of, RawConn, Reply, TestServer};

const SERIES: &str = "s";
const SEAL_SAMPLES: u64 = 1024;
/// About two 4 KiB chunks and their WAL framing.
const EXTRA_WAL_BYTES_MAX: u64 = 10 * 1024;

fn madd(c: &mut RawConn, samples: &[(u64, f64)]) {
    for batch in samples.chunks(512) {
        let mut args = vec!["TS.MADD".to_string()];
        for (t, v) in batch {
            args.extend([SERIES.to_string(), t.to_string(), v.to_string()]);
        }
        let Reply::Array(replies) = c.request(&args) else {
            panic!("TS.MADD replies an array");
        };
        assert!(replies.iter().all(|r| !r.is_error()), "{replies:?}");
    }
}

fn wal_bytes_of(c: &mut RawConn, samples: &[(u64, f64)]) -> u64 {
    let before = c.persistence_number("wal_bytes");
    madd(c, samples);
    c.persistence_number("wal_bytes") - before
}

/// The last timestamp of the `index`-th chunk, from `TS.INFO ... DEBUG` (RESP2: each
/// chunk an array of alternating names and values).
fn chunk_end_ms(c: &mut RawConn, index: usize) -> u64 {
    let Reply::Array(info) = c.request(&["TS.INFO", SERIES, "DEBUG"]) else {
        panic!("TS.INFO replies an array");
    };
    let at = info
        .iter()
        .position(|f| *f == Reply::Status("Chunks".into()))
        .expect("Chunks");
    let Reply::Array(chunks) = &info[at + 1] else {
        panic!("Chunks is an array");
    };
    let Reply::Array(fields) = &chunks[index] else {
        panic!("a chunk is an array");
    };
    let end = fields
        .iter()
        .position(|f| *f == Reply::Status("endTimestamp".into()))
        .expect("endTimestamp");
    match fields[end + 1] {
        Reply::Int(ts) => ts as u64,
        ref other => panic!("endTimestamp: {other:?}"),
    }
}

fn value_of(ts_ms: u64) -> f64 {
    (ts_ms % 1009) as f64 / 8.0
}

#[test]
fn an_old_out_of_order_sample_rewrites_one_chunk() {
    let args = ["--shards", "1"];
    let mut server = TestServer::start(&args);
    let mut c = server.raw();
    assert_eq!(
        c.request(&["TS.CREATE", SERIES, "CHUNK_SIZE", "4096"]),
        Reply::ok()
    );
    let mut model: Vec<(u64, f64)> = (0..50_000u64).map(|i| (i * 10, value_of(i * 10))).collect();
    madd(&mut c, &model);

    // Two windows of two seals each: the old sample is sealed inside the second.
    let next = |from: u64| -> Vec<(u64, f64)> {
        (from..from + 2 * SEAL_SAMPLES)
            .map(|i| (i * 10, value_of(i * 10)))
            .collect()
    };
    let in_order = next(50_000);
    let baseline = wal_bytes_of(&mut c, &in_order);
    model.extend(&in_order);

    let mut with_old = next(50_000 + 2 * SEAL_SAMPLES);
    let old = (250_005, -1.5);
    with_old[SEAL_SAMPLES as usize / 2] = old;
    let bytes = wal_bytes_of(&mut c, &with_old);
    model.extend(&with_old);
    model.sort_by_key(|&(t, _)| t);
    assert!(
        bytes <= baseline + EXTRA_WAL_BYTES_MAX,
        "two seals, one with an old sample, logged {bytes} WAL bytes, {baseline} without it"
    );
    assert_eq!(
        samples_of(c.request(&["TS.RANGE", SERIES, "249990", "250020"])),
        vec![
            (249_990, value_of(249_990)),
            (250_000, value_of(250_000)),
            old,
            (250_010, value_of(250_010)),
            (250_020, value_of(250_020)),
        ]
    );
    assert_eq!(
        samples_of(c.request(&["TS.RANGE", SERIES, "-", "+"])),
        model
    );

    // Between two chunks: a sample after one chunk's last and before the next's first.
    let gap_ms = chunk_end_ms(&mut c, 3) + 5;
    let mut with_gap = next(50_000 + 4 * SEAL_SAMPLES);
    with_gap[7] = (gap_ms, 0.25);
    madd(&mut c, &with_gap);
    model.extend(&with_gap);
    model.sort_by_key(|&(t, _)| t);
    assert_eq!(
        samples_of(c.request(&["TS.RANGE", SERIES, "-", "+"])),
        model
    );

    drop(c);
    server.shutdown();
    let dir = server.data_dir().to_path_buf();
    let mut server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    assert_eq!(
        samples_of(c.request(&["TS.RANGE", SERIES, "-", "+"])),
        model
    );
    drop(c);
    server.shutdown();
}
