//! Goal: `tskv-bench compare A.json B.json` prints, for every command and `ALL`, ops/s
//! and each percentile of both runs with the ratio B/A computed from the reports' own
//! figures, and draws one chart overlaying both runs' spectra.
//!
//! Method: compare two recorded fixtures (an open-loop and a closed-loop run against a
//! local redis-server). For every row of the printed table, look the two figures up in
//! the JSON reports (open loop: the corrected latency, closed loop: the measured one) and
//! check the printed values and the printed ratio against them. Then parse compare.svg and
//! find a legend entry for each run's commands.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bench")
        .join(name)
}

fn report(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// The figure of `metric` (as the table names it) for `command` (upper case, or ALL).
fn figure(report: &Value, command: &str, metric: &str) -> f64 {
    let entry = if command == "ALL" {
        &report["total"]
    } else {
        &report["commands"][command.to_ascii_lowercase()]
    };
    let latency = if report["mode"] == "open" {
        &entry["latency_us"]["corrected"]
    } else {
        &entry["latency_us"]["uncorrected"]
    };
    let field = match metric {
        "ops/s" => return entry["ops_per_s"].as_f64().unwrap(),
        "p50" => "p50_us",
        "p90" => "p90_us",
        "p99" => "p99_us",
        "p99.9" => "p99_9_us",
        "p99.99" => "p99_99_us",
        "max" => "max_us",
        other => panic!("unknown metric {other}"),
    };
    latency[field].as_f64().unwrap()
}

#[test]
fn compare_prints_both_runs_and_their_ratio_and_overlays_the_spectra() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .arg("compare")
        .arg(fixture("open.json"))
        .arg(fixture("closed.json"))
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run tskv-bench compare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (a, b) = (report("open.json"), report("closed.json"));
    let mut rows = 0;
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // command, metric (with "µs" after a percentile), A, B, B/A
        let (command, metric, values) = match fields[..] {
            [c, "ops/s", a, b, r] => (c, "ops/s", [a, b, r]),
            [c, m, "µs", a, b, r] => (c, m, [a, b, r]),
            _ => continue,
        };
        let (fa, fb) = (figure(&a, command, metric), figure(&b, command, metric));
        let printed: Vec<f64> = values.iter().map(|v| v.parse().unwrap()).collect();
        assert!((printed[0] - fa).abs() <= 0.05, "{line}: A is {fa}");
        assert!((printed[1] - fb).abs() <= 0.05, "{line}: B is {fb}");
        assert_eq!(values[2], format!("{:.3}", fb / fa), "{line}");
        rows += 1;
    }
    // GET, SET and ALL, 7 figures each.
    assert_eq!(rows, 21, "{stdout}");

    let svg = std::fs::read_to_string(dir.path().join("compare.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("compare.svg is well-formed XML");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for label in [
        "open: GET corrected",
        "open: SET corrected",
        "closed: GET",
        "closed: SET",
        "latency (µs)",
    ] {
        assert!(
            texts.contains(&label),
            "no {label:?} in compare.svg: {texts:?}"
        );
    }
    assert!(resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).is_ok());
}
