//! Goal: what tskv-bench says it sent is what a real server received, and a clean run
//! reports every request answered and no errors.
//! Method: start a private redis-server on a free port, run `tskv-bench --requests 20000
//! --ratio 1:1 --json FILE`, then compare the JSON's per-command `sent` with the `calls` of
//! `INFO commandstats` (tskv-bench sends nothing but the benchmark's SETs and GETs).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A redis-server on a free loopback port, without persistence, killed on drop.
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

    fn command_calls(&self, command: &str) -> u64 {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "INFO", "commandstats"])
            .output()
            .expect("run redis-cli (installed with redis-server)");
        let text = String::from_utf8_lossy(&output.stdout);
        let prefix = format!("cmdstat_{command}:calls=");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |rest| {
                rest.split(',')
                    .next()
                    .unwrap()
                    .parse()
                    .expect("calls count")
            })
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
fn sent_counts_match_redis_commandstats() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("run.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &redis.port.to_string()])
        .args([
            "--requests",
            "20000",
            "--ratio",
            "1:1",
            "--clients",
            "8",
            "--pipeline",
            "4",
        ])
        .args(["--threads", "2", "--seed", "1", "--quiet"])
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("run tskv-bench");
    assert!(
        output.status.success(),
        "tskv-bench failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_json(&json_path);
    let total = &report["total"];
    assert_eq!(total["ops"], 20000, "{total}");
    assert_eq!(total["sent"], 20000, "{total}");
    assert_eq!(total["errors"], 0, "{total}");
    assert_eq!(total["unexpected"], 0, "{total}");
    assert_eq!(report["lost"], 0);

    let sent_set = report["commands"]["set"]["sent"].as_u64().unwrap();
    let sent_get = report["commands"]["get"]["sent"].as_u64().unwrap();
    assert_eq!(sent_set + sent_get, 20000);
    assert!(
        sent_set > 9000 && sent_get > 9000,
        "1:1 mix: {sent_set} SET, {sent_get} GET"
    );
    assert_eq!(redis.command_calls("set"), sent_set, "SETs Redis executed");
    assert_eq!(redis.command_calls("get"), sent_get, "GETs Redis executed");

    // The report carries the host manifest and the client's own CPU use.
    assert!(report["host"]["kernel"].is_string());
    assert!(report["cpu"]["process_pct_of_one_core"].as_f64().unwrap() > 0.0);
    assert_eq!(report["flags"]["requests"], 20000);
}
