//! Goal: when the memtable freezes, a series holding at least a quarter of a seal's worth
//! of open samples (256 at the default `CHUNK_SIZE` of 4096) is sealed into a chunk rather
//! than stored as one LSM entry per sample (about 44 bytes each on disk), a series holding
//! fewer keeps them open, and every sample of both reads back exactly after SIGKILL and a
//! restart.
//!
//! Method: four series get 300, 256, 255 and 40 samples (under the 1,024 that make a
//! regular seal); `SAVE` freezes and flushes the memtable. `TS.INFO key DEBUG` must then
//! show the first two wholly in chunks and the last two with no chunk, and `INFO
//! persistence` 295 open samples. The server is killed with SIGKILL and restarted on the
//! same directory; `TS.RANGE` must return every sample of every series, bit for bit, and
//! more samples after a second `SAVE` must read back too.

mod common;

use common::TestServer;

/// Samples per series, by key: the first two reach the checkpoint seal (256), the others
/// stay below it.
const SERIES: [(&str, u64); 4] = [("big", 300), ("edge", 256), ("under", 255), ("small", 40)];

const ARGS: &[&str] = &["--shards", "1", "--fsync", "always"];

fn value(key: &str, i: u64) -> f64 {
    // Binary fractions `%.15g` prints exactly, different per series.
    (i * 37 % 1_001) as f64 / 8.0 + key.len() as f64
}

fn add_samples(con: &mut redis::Connection, key: &str, from: u64, to: u64) {
    for i in from..to {
        let got: u64 = redis::cmd("TS.ADD")
            .arg(key)
            .arg(1_000_000 + i * 10_000)
            .arg(value(key, i))
            .query(con)
            .unwrap_or_else(|e| panic!("TS.ADD {key} #{i}: {e}"));
        assert_eq!(got, 1_000_000 + i * 10_000);
    }
}

/// Sum of the `samples` fields of `TS.INFO key DEBUG`'s chunks.
fn sealed_samples(con: &mut redis::Connection, key: &str) -> i64 {
    let info: Vec<redis::Value> = redis::cmd("TS.INFO")
        .arg(key)
        .arg("DEBUG")
        .query(con)
        .unwrap();
    let at = info
        .iter()
        .position(|v| matches!(v, redis::Value::SimpleString(s) if s == "Chunks"))
        .expect("TS.INFO DEBUG has Chunks");
    let redis::Value::Array(chunks) = &info[at + 1] else {
        panic!("Chunks is an array: {:?}", info[at + 1]);
    };
    let mut total = 0;
    for chunk in chunks {
        let redis::Value::Array(fields) = chunk else {
            panic!("a chunk is an array: {chunk:?}");
        };
        for pair in fields.windows(2) {
            if let [redis::Value::SimpleString(name), redis::Value::Int(n)] = pair {
                if name == "samples" {
                    total += n;
                }
            }
        }
    }
    total
}

fn check_ranges(con: &mut redis::Connection, samples: &[(&str, u64)]) {
    for &(key, count) in samples {
        let got: Vec<(u64, String)> = redis::cmd("TS.RANGE")
            .arg(key)
            .arg("-")
            .arg("+")
            .query(con)
            .unwrap();
        assert_eq!(got.len() as u64, count, "{key}: sample count");
        for (i, (ts, text)) in got.iter().enumerate() {
            let i = i as u64;
            assert_eq!(*ts, 1_000_000 + i * 10_000, "{key}: timestamp #{i}");
            let v: f64 = text.parse().unwrap();
            assert_eq!(v.to_bits(), value(key, i).to_bits(), "{key}: value #{i}");
        }
    }
}

#[test]
fn a_checkpoint_seals_series_with_a_quarter_chunk_of_open_samples() {
    let mut server = TestServer::start(ARGS);
    let mut con = server.conn();
    for (key, count) in SERIES {
        add_samples(&mut con, key, 0, count);
    }
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();

    assert_eq!(sealed_samples(&mut con, "big"), 300, "big is sealed");
    assert_eq!(
        sealed_samples(&mut con, "edge"),
        256,
        "256 open samples make a seal"
    );
    assert_eq!(
        sealed_samples(&mut con, "under"),
        0,
        "255 open samples stay open"
    );
    assert_eq!(sealed_samples(&mut con, "small"), 0, "small stays open");
    let mut raw = server.raw();
    assert_eq!(raw.persistence_number("ts_open_samples"), 255 + 40);

    let dir = server.data_dir().to_path_buf();
    server.kill9();
    let server = TestServer::start_in(&dir, ARGS);
    let mut con = server.conn();
    check_ranges(&mut con, &SERIES);

    // The sealed series goes on in a new chunk; the open ones keep their samples.
    add_samples(&mut con, "big", 300, 700);
    add_samples(&mut con, "small", 40, 50);
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    assert_eq!(sealed_samples(&mut con, "big"), 700);
    check_ranges(
        &mut con,
        &[("big", 700), ("edge", 256), ("under", 255), ("small", 50)],
    );
}
