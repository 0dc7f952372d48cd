//! Goal: what tskv-bench says it sent is what a real server received, and a clean run
//! reports every request answered and no errors.
//! Method: start a private redis-server on a free port, run `tskv-bench --requests 20000
//! --ratio 1:1 --json FILE`, then compare the JSON's per-command `sent` with the `calls` of
//! `INFO commandstats` (tskv-bench sends nothing but the benchmark's SETs and GETs).

mod common;

use std::process::Command;

use common::redis_server::{read_json, RedisServer};

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
