//! Goal: open-loop latency against tskv is measured from the intended send time, so a
//! server stall shows in the corrected tail even though few requests were in flight.
//! Method: run `tskv-bench --rate 2000 --duration 5` against tskv-server on a free port,
//! stop the server with SIGSTOP for 1 s in the middle and resume it with SIGCONT. About
//! 2000 requests were due during the stall: the corrected p99 must be at least 300 ms, the
//! uncorrected p99 (from the actual send; only the 20 requests in flight waited) far below,
//! and nothing dropped: every one of the 10 000 scheduled requests sent and answered.

mod common;

use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::TestServer;

#[test]
fn a_tskv_stall_shows_in_corrected_latency_only() {
    let server = TestServer::start(&["--shards", "1", "--fsync", "never"]);
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("run.json");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &server.port().to_string()])
        .args(["--rate", "2000", "--duration", "5", "--clients", "20"])
        .args(["--quiet", "--seed", "1"])
        .arg("--json")
        .arg(&json_path)
        .stdout(Stdio::null())
        .spawn()
        .expect("run tskv-bench");

    sleep(Duration::from_secs(2));
    server.signal("STOP");
    sleep(Duration::from_secs(1));
    server.signal("CONT");

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = bench.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = bench.kill();
            panic!("tskv-bench did not finish within 60 s");
        }
        sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "tskv-bench failed");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
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
    assert_eq!(total["sent"], 10_000, "{total}");
    assert_eq!(total["ops"], 10_000, "{total}");
    assert_eq!(total["errors"], 0, "{total}");
    assert_eq!(report["lost"], 0);
    assert_eq!(report["unsent"], 0);
}
