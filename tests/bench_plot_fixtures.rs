//! Goal: `tskv-bench plot` draws every chart of a recorded run, from its JSON report and
//! from its HdrHistogram interval log: the latency spectrum per command (corrected and
//! uncorrected in open loop), throughput and p99 over time, and a ramp's latency against
//! rate; each with its axis labels, its series and the host and flags of the run, and
//! each a drawable SVG.
//!
//! Method: run `tskv-bench plot` on the fixtures under tests/fixtures/bench (recorded
//! against a local redis-server: a closed-loop run, an open-loop run and a rate ramp, with
//! their `--json` and `--hdr-log`). Parse each SVG with roxmltree, collect its text and
//! its polylines; check the axis titles and legend entries, that the first series of the
//! open-loop spectrum has exactly the points of the JSON's spectrum, and render each file
//! with resvg to pixels and find the first series' colour among them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Colour of the first series (tab10 blue), as plotters writes it and as it renders.
const FIRST_SERIES_HEX: &str = "#1F77B4";
const FIRST_SERIES_RGB: (u8, u8, u8) = (31, 119, 180);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bench")
        .join(name)
}

/// Runs `tskv-bench plot` on a fixture and returns the charts it wrote, by file name.
fn plot(name: &str, out: &Path) -> Vec<(String, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .arg("plot")
        .arg(fixture(name))
        .arg("--out")
        .arg(out)
        .output()
        .expect("run tskv-bench plot");
    assert!(
        output.status.success(),
        "plot {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut charts: Vec<(String, String)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            (file, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    charts.sort();
    charts
}

/// What a chart shows: its texts, and per polyline its stroke colour and point count.
struct Parsed {
    texts: Vec<String>,
    polylines: Vec<(String, usize)>,
}

fn parse(svg: &str) -> Parsed {
    let doc = roxmltree::Document::parse(svg).expect("the chart is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect();
    let polylines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .map(|n| {
            let stroke = n
                .attribute("stroke")
                .unwrap_or_default()
                .to_ascii_uppercase();
            let points = n
                .attribute("points")
                .unwrap_or_default()
                .split_whitespace()
                .count();
            (stroke, points)
        })
        .collect();
    Parsed { texts, polylines }
}

/// Renders the SVG with resvg and says whether any pixel has the first series' colour.
fn renders_first_series(svg: &str) -> bool {
    let tree = resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default())
        .expect("resvg parses the chart");
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    let (r, g, b) = FIRST_SERIES_RGB;
    pixmap
        .pixels()
        .iter()
        .any(|p| p.red() == r && p.green() == g && p.blue() == b && p.alpha() == 255)
}

/// Checks one chart: drawable, with the first series drawn, the host and flags caption,
/// and every expected text.
fn check(file: &str, svg: &str, expected: &[&str]) -> Parsed {
    let parsed = parse(svg);
    for text in expected
        .iter()
        .chain(&["host vm", "flags: tskv-bench --port"])
    {
        assert!(
            parsed.texts.iter().any(|t| t.contains(text)),
            "{file}: no text containing {text:?} in {:?}",
            parsed.texts
        );
    }
    assert!(
        parsed
            .polylines
            .iter()
            .any(|(s, n)| s == FIRST_SERIES_HEX && *n > 1),
        "{file}: the first series is not drawn: {:?}",
        parsed.polylines
    );
    assert!(
        renders_first_series(svg),
        "{file}: no pixel of the first series"
    );
    parsed
}

const SPECTRUM_AXES: [&str; 3] = ["percentile", "latency (µs)", "99.9%"];
const TIMELINE_AXES: [&str; 3] = [
    "throughput (ops/s)",
    "p99 latency (µs)",
    "time since the end of warm-up (s)",
];
const RAMP_AXES: [&str; 4] = [
    "target rate (ops/s)",
    "corrected latency (µs, log scale)",
    "achieved rate (ops/s)",
    "p99 corrected",
];

#[test]
fn open_loop_json_draws_corrected_and_uncorrected_spectra_and_a_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let charts = plot("open.json", dir.path());
    let names: Vec<&str> = charts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["latency-spectrum.svg", "timeline.svg"]);
    let mut expected = SPECTRUM_AXES.to_vec();
    expected.extend([
        "GET corrected",
        "GET uncorrected",
        "SET corrected",
        "SET uncorrected",
        "open loop at 2000 ops/s",
    ]);
    let spectrum = check(&charts[0].0, &charts[0].1, &expected);
    // The first series (GET corrected) has one vertex per point of the report's spectrum.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("open.json")).unwrap()).unwrap();
    let points = report["commands"]["get"]["spectrum"]["corrected"]
        .as_array()
        .unwrap()
        .len();
    assert!(points > 10, "{points} points in the fixture");
    let drawn: Vec<usize> = spectrum
        .polylines
        .iter()
        .filter(|(s, _)| s == FIRST_SERIES_HEX)
        .map(|(_, n)| *n)
        .collect();
    assert!(drawn.contains(&points), "{points} points, drawn {drawn:?}");
    check(&charts[1].0, &charts[1].1, &TIMELINE_AXES);
}

#[test]
fn closed_loop_json_draws_one_spectrum_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let charts = plot("closed.json", dir.path());
    let mut expected = SPECTRUM_AXES.to_vec();
    expected.extend(["GET", "SET", "closed loop"]);
    let spectrum = check(&charts[0].0, &charts[0].1, &expected);
    assert!(
        !spectrum.texts.iter().any(|t| t.contains("corrected")),
        "a closed loop has no corrected latency"
    );
    check(&charts[1].0, &charts[1].1, &TIMELINE_AXES);
}

#[test]
fn ramp_json_and_hdr_log_draw_latency_against_rate() {
    for fixture_name in ["ramp.json", "ramp.hlog"] {
        let dir = tempfile::tempdir().unwrap();
        let charts = plot(fixture_name, dir.path());
        let names: Vec<&str> = charts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["latency-spectrum.svg", "ramp.svg", "timeline.svg"],
            "{fixture_name}"
        );
        let mut expected = SPECTRUM_AXES.to_vec();
        expected.extend(["1000 ops/s, corrected", "3000 ops/s, corrected"]);
        check(&charts[0].0, &charts[0].1, &expected);
        let ramp = check(&charts[1].0, &charts[1].1, &RAMP_AXES);
        // Three steps: three vertices in each latency series.
        assert!(
            ramp.polylines
                .iter()
                .any(|(s, n)| s == FIRST_SERIES_HEX && *n == 3),
            "{fixture_name}: {:?}",
            ramp.polylines
        );
        check(&charts[2].0, &charts[2].1, &TIMELINE_AXES);
    }
}

#[test]
fn open_loop_hdr_log_draws_the_same_series_as_its_json() {
    let dir = tempfile::tempdir().unwrap();
    let charts = plot("open.hlog", dir.path());
    let mut expected = SPECTRUM_AXES.to_vec();
    expected.extend([
        "GET corrected",
        "GET uncorrected",
        "SET corrected",
        "SET uncorrected",
    ]);
    check(&charts[0].0, &charts[0].1, &expected);
    check(&charts[1].0, &charts[1].1, &TIMELINE_AXES);
}
