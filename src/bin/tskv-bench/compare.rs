//! `tskv-bench compare A.json B.json [...]`: a side-by-side table of ops/s and the headline
//! latency percentiles (open loop: corrected) per command, each later run with its ratio
//! to the first (B/A), and one overlay chart of the runs' percentile spectra. Pure apart
//! from reading the reports and writing the chart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::plot::{self, Curve};
use crate::runfile;

/// The figures compared, in table order: (label, JSON field of the headline latency; None
/// for ops/s).
const METRICS: [(&str, Option<&str>); 7] = [
    ("ops/s", None),
    ("p50 µs", Some("p50_us")),
    ("p90 µs", Some("p90_us")),
    ("p99 µs", Some("p99_us")),
    ("p99.9 µs", Some("p99_9_us")),
    ("p99.99 µs", Some("p99_99_us")),
    ("max µs", Some("max_us")),
];

/// One run as compared: its name and, per command (and `ALL`), the figures of [`METRICS`].
#[derive(Debug, Clone)]
pub struct RunFigures {
    /// The report's file name without `.json`.
    pub name: String,
    /// Per command, upper case, `ALL` last: one value per metric.
    pub commands: Vec<(String, [f64; METRICS.len()])>,
    /// Its headline spectra, one per command, labelled with the run's name.
    pub spectra: Vec<Curve>,
    /// Its host line.
    pub host: String,
    /// Its command line.
    pub flags: String,
}

/// The ratio b / a, or `None` when a is zero.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (a != 0.0).then(|| b / a)
}

fn figures(entry: &Value) -> [f64; METRICS.len()] {
    let latency = runfile::headline_latency(entry);
    METRICS.map(|(_, field)| match field {
        None => entry["ops_per_s"].as_f64().unwrap_or(0.0),
        Some(field) => latency[field].as_f64().unwrap_or(0.0),
    })
}

/// The figures of one JSON report named `name`.
///
/// # Errors
/// If it is not a tskv-bench report of a single run (a ramp has no one set of figures).
pub fn run_figures(name: &str, json: &Value) -> Result<RunFigures, String> {
    if json["tool"] != "tskv-bench" {
        return Err(format!("{name}: not a tskv-bench JSON report"));
    }
    if json.get("ramp").is_some() {
        return Err(format!(
            "{name}: a rate ramp has no single set of figures; compare single runs"
        ));
    }
    let mut commands = Vec::new();
    let mut spectra = Vec::new();
    let kind = if json["mode"] == "open" {
        "corrected"
    } else {
        "uncorrected"
    };
    for (command, entry) in json["commands"].as_object().into_iter().flatten() {
        let command = command.to_ascii_uppercase();
        commands.push((command.clone(), figures(entry)));
        let points: Vec<(f64, f64)> = entry["spectrum"][kind]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
            .collect();
        if !points.is_empty() {
            let kind = if kind == "corrected" {
                " corrected"
            } else {
                ""
            };
            spectra.push(Curve {
                label: format!("{name}: {command}{kind}"),
                points,
            });
        }
    }
    commands.push(("ALL".to_string(), figures(&json["total"])));
    Ok(RunFigures {
        name: name.to_string(),
        commands,
        spectra,
        host: runfile::host_line(&json["host"]),
        flags: runfile::flags_line(json),
    })
}

/// The side-by-side table: a row per command and metric, a column per run, and after
/// every run but the first its ratio to the first.
pub fn table(runs: &[RunFigures]) -> String {
    let mut out = String::new();
    let letter = |i: usize| char::from(b'A' + (i % 26) as u8);
    for (i, run) in runs.iter().enumerate() {
        let _ = writeln!(out, "{} = {}: {}", letter(i), run.name, run.flags);
    }
    let _ = write!(out, "\n{:<10} {:<10} {:>12}", "command", "metric", "A");
    for i in 1..runs.len() {
        let _ = write!(out, " {:>12} {:>8}", letter(i), format!("{}/A", letter(i)));
    }
    out.push('\n');
    let Some(first) = runs.first() else {
        return out;
    };
    for (command, base) in &first.commands {
        for (m, (metric, _)) in METRICS.iter().enumerate() {
            let _ = write!(out, "{command:<10} {metric:<10} {:>12.1}", base[m]);
            for run in &runs[1..] {
                match run.commands.iter().find(|(c, _)| c == command) {
                    Some((_, values)) => {
                        let r = ratio(base[m], values[m])
                            .map_or("-".to_string(), |r| format!("{r:.3}"));
                        let _ = write!(out, " {:>12.1} {r:>8}", values[m]);
                    }
                    None => {
                        let _ = write!(out, " {:>12} {:>8}", "-", "-");
                    }
                }
            }
            out.push('\n');
        }
    }
    out.push_str(
        "\nlatency: open loop corrected (from the intended send time), closed loop as measured; \
         ratio > 1: more ops/s or a higher latency than A\n",
    );
    out
}

/// Reads the reports, prints the table, and writes the overlay chart `compare.svg` into
/// `out_dir`. Returns the table and the chart's path.
///
/// # Errors
/// A report that cannot be read, or the chart that cannot be written.
pub fn compare(paths: &[PathBuf], out_dir: &Path) -> Result<(String, PathBuf), String> {
    let mut runs = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        runs.push(run_figures(&name, &json)?);
    }
    let curves: Vec<Curve> = runs.iter().flat_map(|r| r.spectra.clone()).collect();
    let mut caption: Vec<String> = Vec::new();
    for run in &runs {
        if !caption.contains(&run.host) {
            caption.push(run.host.clone());
        }
    }
    for run in &runs {
        caption.push(format!("{}: {}", run.name, run.flags));
    }
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    let title = format!("latency by percentile: {}", names.join(" vs "));
    let svg = plot::spectrum_svg(&title, &caption, &curves).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let chart = out_dir.join("compare.svg");
    std::fs::write(&chart, svg).map_err(|e| format!("cannot write {}: {e}", chart.display()))?;
    Ok((table(&runs), chart))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, ops: f64, p99: f64) -> RunFigures {
        RunFigures {
            name: name.into(),
            commands: vec![("ALL".into(), [ops, 1.0, 2.0, p99, 4.0, 5.0, 6.0])],
            spectra: Vec::new(),
            host: String::new(),
            flags: String::new(),
        }
    }

    #[test]
    fn ratios_are_b_over_a_and_absent_for_a_zero_base() {
        assert_eq!(ratio(2.0, 3.0), Some(1.5));
        assert_eq!(ratio(0.0, 3.0), None);
        let text = table(&[run("tskv", 1000.0, 100.0), run("redis", 1500.0, 50.0)]);
        let ops = text.lines().find(|l| l.contains("ops/s")).unwrap();
        assert!(ops.ends_with("1.500"), "{ops}");
        let p99 = text.lines().find(|l| l.contains("p99 µs")).unwrap();
        assert!(p99.ends_with("0.500"), "{p99}");
    }
}
