//! Goal: `--command` templates with `--command-weight` send exactly the commands they
//! say, in the weighted proportions, to tskv and to Redis alike: `__key__` and `__value__`
//! filled in, a template without a weight weighing 1, each template reported on its own.
//!
//! Method: against tskv-server (2 shards) and against a private redis-server, run
//! `tskv-bench --requests 12000` with the templates `SET key:__key__ __value__` (weight 3),
//! `GET key:__key__` (no weight: 1) and `EXISTS key:__key__` (weight 2). Read `INFO
//! commandstats` before and after: the calls of set, get and exists must equal the JSON's
//! `sent` of each template row, sum to 12000, and lie near 3:1:2 (6000, 2000, 4000; the
//! bounds are over 5 standard deviations of the binomial draw wide, and the seed is fixed).
//! Then one key the run wrote must hold a value of --value-size bytes.

mod common;

use std::path::Path;
use std::process::Command;

use common::redis_server::{read_json, RedisServer};
use common::{Reply, TestServer};

const REQUESTS: u64 = 12_000;
const VALUE_BYTES: usize = 7;
/// (command, weight) of each template, in flag order.
const MIX: [(&str, u64); 3] = [("set", 3), ("get", 1), ("exists", 2)];

fn run_templates(port: u16, json: &Path) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &port.to_string()])
        .args([
            "--command",
            "SET key:__key__ __value__",
            "--command-weight",
            "3",
        ])
        .args(["--command", "GET key:__key__"])
        .args(["--command", "EXISTS key:__key__", "--command-weight", "2"])
        .args(["--requests", &REQUESTS.to_string(), "--keys", "100"])
        .args(["--value-size", &VALUE_BYTES.to_string()])
        .args([
            "--clients",
            "4",
            "--pipeline",
            "8",
            "--seed",
            "7",
            "--quiet",
        ])
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
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("EXISTS"), "no EXISTS row: {stdout}");
    read_json(json)
}

/// Checks the per-template counts against the server's and the weights.
fn check_counts(server: &str, report: &serde_json::Value, calls: &dyn Fn(&str) -> u64) {
    assert_eq!(
        report["total"]["errors"], 0,
        "{server}: {}",
        report["total"]
    );
    assert_eq!(report["total"]["ops"], REQUESTS, "{server}");
    let weight_total: u64 = MIX.iter().map(|(_, w)| w).sum();
    let mut sum = 0;
    for (command, weight) in MIX {
        let sent = report["commands"][command]["sent"]
            .as_u64()
            .unwrap_or_else(|| panic!("{server}: no {command} row in {}", report["commands"]));
        assert_eq!(calls(command), sent, "{server}: {command} calls");
        let expected = REQUESTS * weight / weight_total;
        let slack = expected / 10;
        assert!(
            sent.abs_diff(expected) < slack,
            "{server}: {sent} {command} of {REQUESTS}, expected about {expected}"
        );
        sum += sent;
    }
    assert_eq!(sum, REQUESTS, "{server}");
}

#[test]
fn templates_send_their_commands_in_weighted_proportions_to_tskv() {
    let server = TestServer::start(&["--shards", "2", "--fsync", "never"]);
    let dir = tempfile::tempdir().unwrap();
    let stats = |server: &TestServer| {
        let Reply::Bulk(text) = server.raw().request(&["INFO", "commandstats"]) else {
            panic!("INFO did not answer a bulk string");
        };
        String::from_utf8(text).unwrap()
    };
    let calls_in = |text: &str, command: &str| -> u64 {
        let prefix = format!("cmdstat_{command}:calls=");
        text.lines()
            .find_map(|l| l.trim_end().strip_prefix(&prefix))
            .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
    };
    let before = stats(&server);
    let report = run_templates(server.port(), &dir.path().join("tskv.json"));
    let after = stats(&server);
    check_counts("tskv", &report, &|c| {
        calls_in(&after, c) - calls_in(&before, c)
    });
    let value = server.raw().request(&["GET", "key:000000000001"]);
    assert_eq!(value, Reply::bulk("x".repeat(VALUE_BYTES)));
}

#[test]
fn templates_send_their_commands_in_weighted_proportions_to_redis() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let report = run_templates(redis.port, &dir.path().join("redis.json"));
    check_counts("redis", &report, &|c| redis.command_calls(c));
    let output = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "GET", "key:000000000001"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "x".repeat(VALUE_BYTES)
    );
}
