//! Goal: what tskv-bench says it sent is what tskv-server executed, for a plain SET/GET mix
//! and for YCSB F, whose read-modify-write is one reported op but two commands on the wire.
//! Method: start `tskv-server --shards 2` on a free port in a temp dir, read `INFO
//! commandstats` (summed over shards), run `tskv-bench --requests N --json FILE`, read it
//! again, and compare the deltas of `cmdstat_set:calls` and `cmdstat_get:calls` with the
//! JSON's per-command `sent` counts: for `--ratio 1:1`, SET and GET directly; for `--workload
//! ycsb-f`, GETs = GET + RMW and SETs = RMW. Every request must be answered without errors.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Reply, TestServer};

fn command_calls(server: &TestServer) -> (u64, u64) {
    let Reply::Bulk(text) = server.raw().request(&["INFO", "commandstats"]) else {
        panic!("INFO did not answer a bulk string");
    };
    let text = String::from_utf8(text).expect("INFO is text");
    let calls = |name: &str| {
        let prefix = format!("cmdstat_{name}:calls=");
        text.lines()
            .find_map(|line| line.trim_end().strip_prefix(&prefix))
            .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
    };
    (calls("set"), calls("get"))
}

fn run_bench(server: &TestServer, json: &Path, flags: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &server.port().to_string()])
        .args(["--clients", "8", "--pipeline", "4", "--threads", "2"])
        .args(["--seed", "1", "--quiet", "--keys", "10000"])
        .args(flags)
        .arg("--json")
        .arg(json)
        .output()
        .expect("run tskv-bench");
    assert!(
        output.status.success(),
        "tskv-bench failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(json).expect("read JSON")).expect("JSON")
}

fn sent(report: &serde_json::Value, command: &str) -> u64 {
    report["commands"][command]["sent"]
        .as_u64()
        .unwrap_or_else(|| panic!("no sent count for {command}"))
}

fn assert_clean(report: &serde_json::Value, requests: u64) {
    let total = &report["total"];
    assert_eq!(total["sent"], requests, "{total}");
    assert_eq!(total["ops"], requests, "{total}");
    assert_eq!(total["errors"], 0, "{total}");
    assert_eq!(total["unexpected"], 0, "{total}");
    assert_eq!(report["lost"], 0);
}

#[test]
fn sent_counts_match_tskv_commandstats() {
    let server = TestServer::start(&["--shards", "2", "--fsync", "never"]);
    let dir = tempfile::tempdir().unwrap();

    let before = command_calls(&server);
    let report = run_bench(
        &server,
        &dir.path().join("mix.json"),
        &["--requests", "20000", "--ratio", "1:1"],
    );
    let after = command_calls(&server);
    assert_clean(&report, 20000);
    let (set, get) = (sent(&report, "set"), sent(&report, "get"));
    assert!(set > 9000 && get > 9000, "1:1 mix: {set} SET, {get} GET");
    assert_eq!(after.0 - before.0, set, "SETs tskv executed");
    assert_eq!(after.1 - before.1, get, "GETs tskv executed");

    let before = after;
    let report = run_bench(
        &server,
        &dir.path().join("ycsb-f.json"),
        &["--requests", "5000", "--workload", "ycsb-f"],
    );
    let after = command_calls(&server);
    assert_clean(&report, 5000);
    let (get, rmw) = (sent(&report, "get"), sent(&report, "rmw"));
    assert_eq!(get + rmw, 5000);
    assert!(get > 2000 && rmw > 2000, "50/50 mix: {get} GET, {rmw} RMW");
    assert_eq!(after.1 - before.1, get + rmw, "GETs: reads and RMW reads");
    assert_eq!(after.0 - before.0, rmw, "SETs: RMW writes");
}
