//! Goal: open-loop latency is measured from the intended send time, so a server stall shows
//! up in the corrected tail even though few requests were in flight during it.
//! Method: run `tskv-bench --rate 2000 --duration 5` against a private redis-server, stop
//! the server with SIGSTOP for 1 s in the middle and resume it with SIGCONT. About 2000
//! requests were due during the stall: the corrected p99 must be at least 300 ms, while the
//! uncorrected p99 (from the actual send; only the 20 requests already in flight waited)
//! stays far below, and the delayed sends are counted as behind schedule, not dropped.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A redis-server on a free loopback port, without persistence, killed on drop (SIGKILL
/// also ends a stopped process).
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): this test needs Redis installed \
                     (apt-get install redis-server); CI installs it"
                )
            });
        let server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            sleep(Duration::from_millis(20));
        }
        server
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read JSON report"))
        .expect("JSON report parses")
}

#[test]
fn a_server_stall_shows_in_corrected_latency_only() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("run.json");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &redis.port.to_string()])
        .args([
            "--rate",
            "2000",
            "--duration",
            "5",
            "--clients",
            "20",
            "--quiet",
        ])
        .arg("--json")
        .arg(&json_path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tskv-bench");

    sleep(Duration::from_secs(2));
    redis.signal("-STOP");
    sleep(Duration::from_secs(1));
    redis.signal("-CONT");

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

    let report = read_json(&json_path);
    let total = &report["total"];
    let corrected_p99 = total["latency_us"]["corrected"]["p99_us"].as_f64().unwrap();
    let uncorrected_p99 = total["latency_us"]["uncorrected"]["p99_us"]
        .as_f64()
        .unwrap();
    assert!(
        corrected_p99 >= 300_000.0,
        "corrected p99 {corrected_p99} µs hides the 1 s stall"
    );
    assert!(
        uncorrected_p99 < 100_000.0,
        "uncorrected p99 {uncorrected_p99} µs: expected only the in-flight requests to wait"
    );
    assert!(total["behind_schedule"].as_u64().unwrap() > 500, "{total}");
    // Nothing dropped: all 10 000 scheduled requests were sent and answered.
    assert_eq!(total["sent"], 10_000, "{total}");
    assert_eq!(total["ops"], 10_000, "{total}");
    assert_eq!(report["lost"], 0);
    assert_eq!(report["unsent"], 0);
}
