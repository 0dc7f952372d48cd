//! Goal: `--perf-record PID` profiles the server over the measured window only: perf is
//! started after warm-up and stopped with SIGINT when the run ends, and leaves its file.
//! Method: start tskv-server, run `tskv-bench --rate 1000 --warmup 1 --duration 2
//! --perf-record PID --perf-output FILE`, then check FILE is non-empty and the JSON says
//! the profiler ran for about the 2 s window (not the 3 s of warm-up and window).
//! Skips loudly (a `SKIP:` line straight to stderr, past libtest's capture) when `perf` is
//! missing or `perf record` is not permitted here (perf_event_paranoid, seccomp).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::TestServer;

fn skip(reason: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIP: bench_tskv_perf_record: {reason}; --perf-record was not tested"
    );
}

/// Whether `perf record` works here, and if not why.
fn perf_usable(dir: &std::path::Path) -> Result<(), String> {
    let output = Command::new("perf")
        .args(["record", "-q", "-o"])
        .arg(dir.join("probe.data"))
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("perf is not installed ({e})"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "perf record is not permitted: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[test]
fn perf_records_the_measured_window() {
    let dir = tempfile::tempdir().unwrap();
    if let Err(reason) = perf_usable(dir.path()) {
        skip(&reason);
        return;
    }
    let server = TestServer::start(&["--shards", "1", "--fsync", "never"]);
    let perf_data = dir.path().join("perf.data");
    let json_path = dir.path().join("run.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &server.port().to_string()])
        .args(["--rate", "1000", "--warmup", "1", "--duration", "2"])
        .args(["--clients", "4", "--quiet"])
        .args(["--perf-record", &server.pid().to_string(), "--perf-output"])
        .arg(&perf_data)
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("run tskv-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tskv-bench failed:\n{stderr}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let profiler = &report["profiler"];
    assert_eq!(profiler["ran"], true, "{profiler}\n{stderr}");
    let window_s = profiler["window_s"].as_f64().unwrap();
    assert!(
        (1.8..2.8).contains(&window_s),
        "perf ran {window_s} s; the measured window is 2 s\n{stderr}"
    );
    let size = std::fs::metadata(&perf_data).map_or(0, |m| m.len());
    assert!(size > 0, "no perf data written\n{stderr}");
    assert_eq!(report["total"]["errors"], 0);
}
