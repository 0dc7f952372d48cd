//! Goal: tskv-bench's open-loop latency is measured from the intended send time, so a
//! server stall shows in the corrected tail even though few requests were in flight during
//! it, against tskv and against a server that is not ours (Redis) alike.
//!
//! Method: run `tskv-bench --rate 2000 --duration 5` against the server, stop the server
//! with SIGSTOP for 1 s in the middle and resume it with SIGCONT. About 2000 requests were
//! due during the stall: the corrected p99 must be at least 300 ms, the uncorrected p99
//! (from the actual send; only the 20 requests already in flight waited) far below, the
//! late sends counted as behind schedule, and nothing dropped: all 10 000 scheduled
//! requests sent and answered.

mod common;

use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use common::redis_server::{read_json, wait_within, RedisServer};
use common::TestServer;

/// Runs the scenario against `port`; `signal` stops and resumes the server.
fn stall_shows_in_corrected_latency_only(port: u16, signal: impl Fn(&str)) {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("run.json");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &port.to_string()])
        .args(["--rate", "2000", "--duration", "5", "--clients", "20"])
        .args(["--quiet", "--seed", "1"])
        .arg("--json")
        .arg(&json_path)
        .stdout(Stdio::null())
        .spawn()
        .expect("run tskv-bench");

    sleep(Duration::from_secs(2));
    signal("STOP");
    sleep(Duration::from_secs(1));
    signal("CONT");
    let status = wait_within(&mut bench, Duration::from_secs(60));
    assert!(status.success(), "tskv-bench failed");

    let report = read_json(&json_path);
    let total = &report["total"];
    let latency = &total["latency_us"];
    let corrected_p99 = latency["corrected"]["p99_us"].as_f64().unwrap();
    let uncorrected_p99 = latency["uncorrected"]["p99_us"].as_f64().unwrap();
    assert!(
        corrected_p99 >= 300_000.0,
        "corrected p99 {corrected_p99} µs hides the 1 s stall"
    );
    assert!(
        uncorrected_p99 < 100_000.0,
        "uncorrected p99 {uncorrected_p99} µs: expected only the in-flight requests to wait"
    );
    assert!(total["behind_schedule"].as_u64().unwrap() > 500, "{total}");
    assert_eq!(total["sent"], 10_000, "{total}");
    assert_eq!(total["ops"], 10_000, "{total}");
    assert_eq!(total["errors"], 0, "{total}");
    assert_eq!(report["lost"], 0);
    assert_eq!(report["unsent"], 0);
}

#[test]
fn a_tskv_stall_shows_in_corrected_latency_only() {
    let server = TestServer::start(&["--shards", "1", "--fsync", "never"]);
    stall_shows_in_corrected_latency_only(server.port(), |s| server.signal(s));
}

#[test]
fn a_redis_stall_shows_in_corrected_latency_only() {
    let redis = RedisServer::start();
    stall_shows_in_corrected_latency_only(redis.port, |s| redis.signal(s));
}
