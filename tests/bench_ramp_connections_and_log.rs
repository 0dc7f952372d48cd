//! Goal: a `--rate-ramp` keeps its connections from step to step (a new connection per
//! step would measure connection set-up, and the server's state would differ between
//! steps), writes every step into one `--hdr-log` under its own tag, and draws its charts
//! with `--plot`.
//!
//! Method: ramp 200:600:200 ops/s at 1 s a step (3 steps) with 4 connections against
//! tskv-server. `total_connections_received` of `INFO stats` must grow by exactly 4 plus
//! the one connection that reads it afterwards (each INFO opens its own connection; a
//! connection per step would make it 12 + 1). The interval log must hold, for each step,
//! intervals tagged `rateR-get` and `rateR-get-uncorrected` whose counts add up to the
//! JSON's step figures, and the plot directory the ramp chart.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{Reply, TestServer};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

fn connections_received(server: &TestServer) -> u64 {
    let Reply::Bulk(text) = server.raw().request(&["INFO", "stats"]) else {
        panic!("INFO did not answer a bulk string");
    };
    String::from_utf8(text)
        .unwrap()
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("total_connections_received:"))
        .expect("INFO stats has total_connections_received")
        .parse()
        .unwrap()
}

#[test]
fn ramp_steps_share_connections_and_one_interval_log() {
    let server = TestServer::start(&["--shards", "1", "--fsync", "never"]);
    let dir = tempfile::tempdir().unwrap();
    let (json, hlog, plots) = (
        dir.path().join("ramp.json"),
        dir.path().join("ramp.hlog"),
        dir.path().join("plots"),
    );
    let before = connections_received(&server);
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args(["--port", &server.port().to_string()])
        .args(["--rate-ramp", "200:600:200:1", "--ratio", "0:1"])
        .args(["--clients", "4", "--quiet", "--seed", "1"])
        .arg("--json")
        .arg(&json)
        .arg("--hdr-log")
        .arg(&hlog)
        .arg("--plot")
        .arg(&plots)
        .output()
        .expect("run tskv-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "tskv-bench failed:\n{stdout}");
    let after = connections_received(&server);
    assert_eq!(after - before, 4 + 1, "connections opened by a 3-step ramp");

    // Requests per tag: every histogram line is Tag=T,start,length,max,BASE64.
    let log = std::fs::read_to_string(&hlog).unwrap();
    let mut tags: BTreeMap<String, u64> = BTreeMap::new();
    let mut deserializer = Deserializer::new();
    for line in log.lines().filter(|l| l.starts_with("Tag=")) {
        let fields: Vec<&str> = line["Tag=".len()..].split(',').collect();
        let bytes = STANDARD.decode(fields[4]).unwrap();
        let histogram: Histogram<u64> = deserializer.deserialize(&mut bytes.as_slice()).unwrap();
        *tags.entry(fields[0].to_string()).or_default() += histogram.len();
    }
    let names: Vec<&str> = tags.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "rate200-get",
            "rate200-get-uncorrected",
            "rate400-get",
            "rate400-get-uncorrected",
            "rate600-get",
            "rate600-get-uncorrected",
        ],
        "{log}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["ramp"]["steps"].as_array().unwrap().len(), 3);
    for (step, rate) in report["ramp"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .zip([200, 400, 600])
    {
        assert_eq!(step["total"]["errors"], 0, "{step}");
        let ops = step["commands"]["get"]["ops"].as_u64().unwrap();
        assert!(ops > 0);
        assert_eq!(tags[&format!("rate{rate}-get")], ops, "step at {rate}/s");
        assert_eq!(
            tags[&format!("rate{rate}-get-uncorrected")],
            ops,
            "step at {rate}/s"
        );
    }
    let svg = std::fs::read_to_string(plots.join("ramp.svg")).expect("ramp.svg written");
    roxmltree::Document::parse(&svg).expect("ramp.svg parses");
}
