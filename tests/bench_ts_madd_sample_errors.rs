//! Goal: tskv-bench counts the errors inside a `TS.MADD` reply (an array of one integer or
//! one error per sample) as errors, one per refused sample, never as successes; and it
//! reports the samples the server stored and their rate.
//! Method: create the ten cpu series of one TSBS host (named as `--dump-commands` shows)
//! with `DUPLICATE_POLICY BLOCK` through the `redis` crate, then run `tskv-bench --workload
//! tsbs-cpu-ingest --hosts 1` twice with one connection: 3 batches (timestamps t0..t2, 30 samples), then 6 batches. The second
//! run re-adds t0..t2, which BLOCK refuses sample by sample inside each reply, and adds
//! t3..t5. Its JSON must say 30 errors, 3 successful TS.MADDs and 30 samples stored, and the
//! series must hold 60 samples in all.

mod common;

use std::process::Command;

use common::TestServer;

/// The keys of the series one TS.MADD of host 0 writes, as tskv-bench prints them.
fn series_keys() -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args([
            "--workload",
            "tsbs-cpu-ingest",
            "--hosts",
            "1",
            "--dump-commands",
            "1",
        ])
        .output()
        .expect("run tskv-bench");
    assert!(output.status.success());
    let line = String::from_utf8(output.stdout).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0], "TS.MADD", "{line}");
    // TS.MADD key timestamp value [key timestamp value ...]
    words[1..]
        .iter()
        .step_by(3)
        .map(|key| key.to_string())
        .collect()
}

fn ingest(server: &TestServer, batches: u64) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &server.port().to_string()])
        .args(["--clients", "1", "--threads", "1", "--seed", "5", "--quiet"])
        .args(["--workload", "tsbs-cpu-ingest", "--hosts", "1"])
        .args(["--requests", &batches.to_string()])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run tskv-bench");
    assert!(
        output.status.success(),
        "tskv-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("samples/s"), "no samples/s line: {stdout}");
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

#[test]
fn refused_samples_inside_a_ts_madd_reply_count_as_errors() {
    let server = TestServer::start(&["--fsync", "never"]);
    let mut con = server.conn();
    let keys = series_keys();
    assert_eq!(keys.len(), 10, "{keys:?}");
    for key in &keys {
        let () = redis::cmd("TS.CREATE")
            .arg(key)
            .arg("DUPLICATE_POLICY")
            .arg("BLOCK")
            .query(&mut con)
            .unwrap();
    }

    let first = ingest(&server, 3);
    let madd = &first["commands"]["ts.madd"];
    assert_eq!(madd["sent"], 3, "{madd}");
    assert_eq!(madd["ops"], 3, "{madd}");
    assert_eq!(madd["errors"], 0, "{madd}");
    assert_eq!(madd["samples"], 30, "{madd}");
    assert!(madd["samples_per_s"].as_f64().unwrap() > 0.0, "{madd}");

    let second = ingest(&server, 6);
    let madd = &second["commands"]["ts.madd"];
    assert_eq!(madd["sent"], 6, "{madd}");
    assert_eq!(madd["errors"], 30, "one error per refused sample: {madd}");
    assert_eq!(
        madd["ops"], 3,
        "only the batches without a refused sample: {madd}"
    );
    assert_eq!(madd["samples"], 30, "{madd}");
    assert_eq!(madd["unexpected"], 0, "{madd}");
    assert_eq!(second["lost"], 0);

    let mut stored = 0;
    for key in &keys {
        let samples: Vec<(i64, String)> = redis::cmd("TS.RANGE")
            .arg(key)
            .arg("-")
            .arg("+")
            .query(&mut con)
            .unwrap();
        stored += samples.len();
    }
    assert_eq!(stored, 60);
}
