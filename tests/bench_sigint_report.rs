//! Goal: Ctrl-C ends a tskv-bench run early and still leaves its results: the report on
//! stdout, the JSON report (marked interrupted), the interval log and the charts of the
//! run so far; the process exits normally.
//!
//! Method: start a private redis-server, start `tskv-bench --duration 600 --rate 2000 --json
//! FILE --hdr-log FILE --plot DIR` against it, wait for its first progress line on stderr
//! (the measured window has begun), send it SIGINT, and wait for it to exit. Then read
//! what it wrote.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::redis_server::{read_json, wait_within, RedisServer};

#[test]
fn sigint_writes_the_report_json_log_and_charts_of_the_run_so_far() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (json, hlog, plots) = (
        dir.path().join("run.json"),
        dir.path().join("run.hlog"),
        dir.path().join("plots"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &redis.port.to_string()])
        .args(["--clients", "4", "--pipeline", "4", "--ratio", "1:1"])
        .args(["--rate", "2000", "--duration", "600", "--seed", "1"])
        .arg("--json")
        .arg(&json)
        .arg("--hdr-log")
        .arg(&hlog)
        .arg("--plot")
        .arg(&plots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tskv-bench");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("ops/s") {
        line.clear();
        let read = stderr.read_line(&mut line).unwrap();
        assert!(read > 0, "tskv-bench ended before its first progress line");
    }
    let status = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let exit = wait_within(&mut child, Duration::from_secs(30));
    assert!(exit.success(), "tskv-bench exited with {exit}: {stdout}");

    assert!(stdout.contains("ALL"), "no report table: {stdout}");
    assert!(stdout.contains("interrupted (SIGINT)"), "{stdout}");
    let report = read_json(&json);
    assert_eq!(report["interrupted"], true);
    let ops = report["total"]["ops"].as_u64().unwrap();
    assert!(ops > 0, "no request measured before SIGINT");
    assert_eq!(report["total"]["errors"], 0);
    // Far fewer than the 1.2 million the full 600 s would have sent.
    assert!(report["total"]["sent"].as_u64().unwrap() < 1_000_000);
    let log = std::fs::read_to_string(&hlog).unwrap();
    assert!(log.lines().any(|l| l.starts_with("Tag=get,")), "{log}");
    for chart in ["latency-spectrum.svg", "timeline.svg"] {
        let svg = std::fs::read_to_string(plots.join(chart))
            .unwrap_or_else(|e| panic!("{chart} not written: {e}"));
        roxmltree::Document::parse(&svg).expect("the chart parses");
        assert!(stdout.contains(chart), "{stdout}");
    }
}
