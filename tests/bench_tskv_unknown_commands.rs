//! Goal: the time-series presets are safe to run against a server without TS.* commands:
//! every `-ERR unknown command` is counted as an error of its command and the run
//! completes, rather than crashing or hanging.
//! Method: run `tskv-bench --workload tsbs-cpu-ingest --create-series` and `--workload
//! tsbs-cpu-query` with a request count against tskv-server, which has no TS.* commands yet,
//! and check the JSON: all TS.CREATE, TS.MADD, TS.RANGE and TS.MRANGE requests answered,
//! every one of them an error, none lost.

mod common;

use std::process::Command;

use common::TestServer;

fn run(server: &TestServer, flags: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &server.port().to_string()])
        .args(["--clients", "4", "--threads", "2", "--seed", "3", "--quiet"])
        .args(["--hosts", "5", "--requests", "200"])
        .args(flags)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run tskv-bench");
    assert!(
        output.status.success(),
        "tskv-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

#[test]
fn unknown_ts_commands_are_counted_as_errors() {
    let server = TestServer::start(&["--fsync", "never"]);

    let ingest = run(
        &server,
        &["--workload", "tsbs-cpu-ingest", "--create-series"],
    );
    let create = &ingest["create_series"]["commands"]["ts.create"];
    assert_eq!(create["sent"], 50, "{create}");
    assert_eq!(create["errors"], 50, "{create}");
    let madd = &ingest["commands"]["ts.madd"];
    assert_eq!(madd["sent"], 200, "{madd}");
    assert_eq!(madd["errors"], 200, "{madd}");
    assert_eq!(ingest["lost"], 0);

    let query = run(&server, &["--workload", "tsbs-cpu-query"]);
    let range = &query["commands"]["ts.range"];
    let mrange = &query["commands"]["ts.mrange"];
    let sent = range["sent"].as_u64().unwrap() + mrange["sent"].as_u64().unwrap();
    let errors = range["errors"].as_u64().unwrap() + mrange["errors"].as_u64().unwrap();
    assert_eq!((sent, errors), (200, 200), "{range} {mrange}");
    assert_eq!(query["total"]["ops"], 0);
}
