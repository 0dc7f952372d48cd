//! Goal: the time-series presets of tskv-bench run against tskv without errors, and the
//! samples they send land in the series they name.
//! Method: run `tskv-bench --workload tsbs-cpu-ingest --create-series` and then `--workload
//! tsbs-cpu-query` with a request count against tskv-server, and check the JSON: every
//! TS.CREATE, TS.MADD, TS.RANGE and TS.MRANGE answered without an error (for TS.MADD: no
//! refused sample inside its reply), none lost. The series are then read back through the
//! `redis` crate: every series exists with the labels the bench gave it, and together they
//! hold every sample sent.

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
fn tsbs_ingest_and_queries_run_without_errors() {
    let server = TestServer::start(&["--fsync", "never"]);

    let ingest = run(
        &server,
        &["--workload", "tsbs-cpu-ingest", "--create-series"],
    );
    let create = &ingest["create_series"]["commands"]["ts.create"];
    assert_eq!(create["sent"], 50, "{create}");
    assert_eq!(create["errors"], 0, "{create}");
    let madd = &ingest["commands"]["ts.madd"];
    assert_eq!(madd["sent"], 200, "{madd}");
    assert_eq!(madd["errors"], 0, "{madd}");
    assert_eq!(ingest["lost"], 0);

    // 5 hosts x 10 metrics, and 200 batches of 10 samples, all stored (the hosts are split
    // over the bench's threads, so steps per host differ).
    let mut con = server.conn();
    let series: Vec<String> = redis::cmd("TS.QUERYINDEX")
        .arg("measurement=cpu")
        .query(&mut con)
        .unwrap();
    assert_eq!(series.len(), 50, "{series:?}");
    let mut total_samples = 0;
    for key in &series {
        let info: Vec<redis::Value> = redis::cmd("TS.INFO").arg(key).query(&mut con).unwrap();
        let redis::Value::Int(samples) = info[1] else {
            panic!("{key}: totalSamples is an integer: {info:?}")
        };
        assert!(samples > 0, "{key} holds samples");
        total_samples += samples;
    }
    assert_eq!(total_samples, 2000);

    let query = run(&server, &["--workload", "tsbs-cpu-query"]);
    let range = &query["commands"]["ts.range"];
    let mrange = &query["commands"]["ts.mrange"];
    let sent = range["sent"].as_u64().unwrap() + mrange["sent"].as_u64().unwrap();
    let errors = range["errors"].as_u64().unwrap() + mrange["errors"].as_u64().unwrap();
    assert_eq!((sent, errors), (200, 0), "{range} {mrange}");
    assert_eq!(query["total"]["ops"], 200);
}
