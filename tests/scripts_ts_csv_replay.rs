//! Goal: the tools behind `scripts/bench-ts-bytes.sh` report what the data holds.
//! `scripts/ts-csv-resp.py` turns a `series,timestamp_ms,value` CSV into commands that
//! store exactly the file's samples (every series, every timestamp, every value as
//! written, also with `--ts-unit-ms`), and `scripts/gorilla-bits.py`, the model of the chunk
//! codec the README's "where the bytes go" figures come from, predicts the sealed chunk
//! bytes the server reports in `TS.INFO key DEBUG`, to the byte.
//!
//! Method: a fixture CSV written by the test (3 series named like PCP metrics, 320 samples
//! each at a jittered 60 s interval, values with fractions, negatives, exponents, repeats
//! and counters) is replayed through `python3 scripts/ts-csv-resp.py --chunk-size-bytes
//! 128` into a server over one connection; every reply must be a success, and `TS.RANGE`
//! of each series must equal the file. With `CHUNK_SIZE` 128 a seal takes 32 samples, so
//! the 320 samples of a series are all sealed and the model (`--chunk-size-bytes 128
//! --seal-samples 32`) must give the sum of the chunks' sizes exactly. `SKIP` on stderr
//! when python3 is missing.

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use common::{Reply, TestServer};

const SERIES: [&str; 3] = [
    "kernel.all.load:1_minute",
    "mem.util.used",
    "disk.dev.read:sda",
];
const SAMPLES_PER_SERIES: u64 = 320;

/// The fixture: (series, timestamp ms, value text), in file order (time-major, as a PCP
/// archive is written). Values are chosen so `%.15g` prints them back exactly.
fn fixture() -> Vec<(String, u64, String)> {
    let mut rows = Vec::new();
    for i in 0..SAMPLES_PER_SERIES {
        let ts_ms = 1_373_033_881_000 + i * 60_000 + (i * 7 % 5);
        for (s, name) in SERIES.iter().enumerate() {
            let value = match s {
                0 => format!("{}", (i % 13) as f64 * 0.25 - 1.5),
                1 => format!("{}", 6_070_652 + (i / 3) * 4_096),
                _ => format!("{}e-3", i * 11 % 97),
            };
            rows.push((name.to_string(), ts_ms, value));
        }
    }
    rows
}

fn python_missing() -> Option<String> {
    match Command::new("python3").arg("--version").output() {
        Err(e) => Some(format!("python3 not runnable ({e})")),
        Ok(out) if !out.status.success() => Some("python3 --version failed".to_string()),
        Ok(_) => None,
    }
}

fn script(name: &str) -> String {
    format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn write_csv(dir: &Path, rows: &[(String, u64, String)]) -> String {
    let path = dir.join("fixture.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    for (series, ts, value) in rows {
        writeln!(f, "{series},{ts},{value}").unwrap();
    }
    path.to_str().unwrap().to_string()
}

/// Replays `csv` with the given extra flags; returns the number of commands sent.
fn replay(server: &TestServer, csv: &str, flags: &[&str]) -> usize {
    let out = Command::new("python3")
        .arg(script("ts-csv-resp.py"))
        .args(["--prefix", "t:", "--chunk-size-bytes", "128"])
        .args(flags)
        .arg(csv)
        .output()
        .expect("run ts-csv-resp.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "series={} samples={}",
        SERIES.len(),
        SERIES.len() as u64 * SAMPLES_PER_SERIES
    );
    assert!(stderr.contains(&want), "counts: {stderr}");
    let mut raw = server.raw();
    raw.send(&out.stdout).unwrap();
    let mut replies = 0;
    // 3 TS.CREATE, then TS.MADD of 100 samples: 960 samples make 10 of them.
    for _ in 0..SERIES.len() + 10 {
        let reply = raw.reply();
        let failed = match &reply {
            Reply::Error(_) => true,
            Reply::Array(items) => items.iter().any(Reply::is_error),
            _ => false,
        };
        assert!(!failed, "reply #{replies}: {reply:?}");
        replies += 1;
    }
    replies
}

fn range(con: &mut redis::Connection, key: &str) -> Vec<(u64, f64)> {
    let got: Vec<(u64, String)> = redis::cmd("TS.RANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(con)
        .unwrap();
    got.into_iter()
        .map(|(t, v)| (t, v.parse().unwrap()))
        .collect()
}

/// Sum of the `size` fields of `TS.INFO key DEBUG`'s chunks, and of their `samples`.
fn chunk_bytes_and_samples(con: &mut redis::Connection, key: &str) -> (i64, i64) {
    let info: Vec<redis::Value> = redis::cmd("TS.INFO")
        .arg(key)
        .arg("DEBUG")
        .query(con)
        .unwrap();
    let redis::Value::Array(chunks) = info.last().unwrap() else {
        panic!("Chunks come last: {info:?}");
    };
    let (mut bytes, mut samples) = (0, 0);
    for chunk in chunks {
        let redis::Value::Array(fields) = chunk else {
            panic!("a chunk is an array: {chunk:?}");
        };
        for pair in fields.windows(2) {
            if let [redis::Value::SimpleString(name), redis::Value::Int(n)] = pair {
                match name.as_str() {
                    "size" => bytes += n,
                    "samples" => samples += n,
                    _ => {}
                }
            }
        }
    }
    (bytes, samples)
}

fn expected(rows: &[(String, u64, String)], unit_ms: u64) -> BTreeMap<String, Vec<(u64, f64)>> {
    let mut want: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    for (series, ts, value) in rows {
        want.entry(format!("t:{series}"))
            .or_default()
            .push((ts - ts % unit_ms, value.parse().unwrap()));
    }
    want
}

#[test]
fn csv_replay_stores_the_file_and_the_model_predicts_the_chunks() {
    if let Some(reason) = python_missing() {
        let _ = writeln!(std::io::stderr(), "SKIP: scripts_ts_csv_replay: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rows = fixture();
    let csv = write_csv(dir.path(), &rows);

    for (unit_ms, flags) in [(1, vec![]), (1000, vec!["--ts-unit-ms", "1000"])] {
        let server = TestServer::start(&["--shards", "2"]);
        replay(&server, &csv, &flags);
        let mut con = server.conn();
        let mut chunk_bytes = 0;
        for (key, samples) in expected(&rows, unit_ms) {
            assert_eq!(range(&mut con, &key), samples, "{key}, unit {unit_ms} ms");
            let (bytes, sealed) = chunk_bytes_and_samples(&mut con, &key);
            assert_eq!(sealed, samples.len() as i64, "{key}: every sample sealed");
            chunk_bytes += bytes;
        }
        let model = Command::new("python3")
            .arg(script("gorilla-bits.py"))
            .args(["--chunk-size-bytes", "128", "--seal-samples", "32"])
            .args(["--ts-unit-ms", &unit_ms.to_string()])
            .arg(&csv)
            .output()
            .expect("run gorilla-bits.py");
        let text = String::from_utf8_lossy(&model.stdout);
        let field = |name: &str| -> f64 {
            text.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .parse()
                .unwrap()
        };
        assert_eq!(
            field("samples=") as u64,
            SERIES.len() as u64 * SAMPLES_PER_SERIES
        );
        assert_eq!(
            field("chunk_bytes=") as i64,
            chunk_bytes,
            "model against TS.INFO DEBUG, unit {unit_ms} ms ({text})"
        );
    }
}
