//! Goal: `--rate-ramp` runs one open-loop step per rate and reports each in the
//! throughput-versus-latency table and in the JSON.
//! Method: a smoke test, not a measurement: ramp 200:600:200 ops/s at 1 s a step (3 steps)
//! against tskv-server and check the table has exactly one row per target rate, the JSON
//! one row and one step report per step, and that every step ran at about its rate.

mod common;

use std::process::Command;

use common::TestServer;

#[test]
fn a_ramp_prints_one_row_per_step() {
    let server = TestServer::start(&["--shards", "1", "--fsync", "never"]);
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("ramp.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &server.port().to_string()])
        .args(["--rate-ramp", "200:600:200:1", "--warmup", "0.2"])
        .args(["--clients", "4", "--quiet", "--seed", "1"])
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("run tskv-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "tskv-bench failed:\n{stdout}");

    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("rate ramp:"))
        .collect();
    assert!(table.len() > 2, "no ramp table in:\n{stdout}");
    let rows: Vec<f64> = table[2..]
        .iter()
        .map_while(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(rows, vec![200.0, 400.0, 600.0], "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let ramp = &report["ramp"];
    assert_eq!(report["mode"], "ramp");
    assert_eq!(ramp["rows"].as_array().unwrap().len(), 3, "{ramp}");
    assert_eq!(ramp["steps"].as_array().unwrap().len(), 3);
    for (row, target) in ramp["rows"].as_array().unwrap().iter().zip([200, 400, 600]) {
        assert_eq!(row["target_per_s"], f64::from(target));
        assert_eq!(row["errors"], 0, "{row}");
    }
    // Measured requests only: the first step's warm-up is not counted.
    for (step, target) in ramp["steps"]
        .as_array()
        .unwrap()
        .iter()
        .zip([200, 400, 600])
    {
        assert_eq!(step["total"]["ops"], target, "step at {target}/s for 1 s");
    }
}
