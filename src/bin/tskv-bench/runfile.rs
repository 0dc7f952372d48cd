//! Reads a finished run back for [`crate::plot`] and [`crate::compare`]: a `--json` report
//! (spectra, timeline, ramp rows, host and flags) or an `--hdr-log` interval log (spectra
//! and timeline rebuilt from the histograms; a ramp's steps from its `rateR-` tags).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde_json::Value;

use crate::plot::{spectrum_points, Curve, RampPoint, RunCharts, TimelinePoint};
use crate::stats::new_histogram;

/// Comment line of an interval log that carries the host, as the JSON's `host` would.
pub const HLOG_HOST_PREFIX: &str = "host: ";
/// Comment line of an interval log that carries the command line.
pub const HLOG_FLAGS_PREFIX: &str = "flags: ";
/// Tag prefix of a ramp step's intervals in an interval log: `rate2000-get`.
pub const HLOG_RATE_TAG_PREFIX: &str = "rate";

/// Reads `path` as a JSON report if it ends in `.json`, else as an HdrHistogram interval log.
///
/// # Errors
/// A sentence naming the file and what is wrong with it.
pub fn load(path: &Path) -> Result<RunCharts, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_slice(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|json| from_json(&json))
    } else {
        from_hlog(&bytes)
    };
    parsed.map_err(|e| format!("{}: {e}", path.display()))
}

/// The latency the report leads with: corrected in open loop, else the closed-loop one.
pub fn headline_latency(entry: &Value) -> &Value {
    let latency = &entry["latency_us"];
    if latency["corrected"].is_object() {
        &latency["corrected"]
    } else {
        &latency["uncorrected"]
    }
}

/// One line describing the host of a report's `host` object.
pub fn host_line(host: &Value) -> String {
    let text = |key: &str| host[key].as_str().unwrap_or("?").to_string();
    format!(
        "host {}: {}, {} cores online, kernel {}, governor {}, THP {}, tskv git {}",
        text("hostname"),
        text("cpu_model"),
        host["cores_online"]
            .as_u64()
            .map_or("?".into(), |n| n.to_string()),
        text("kernel"),
        text("governor"),
        text("transparent_hugepages"),
        host["git_sha"]
            .as_str()
            .map_or("?", |s| &s[..s.len().min(12)]),
    )
}

/// The command line of a report, the binary's path shortened to its name.
pub fn flags_line(json: &Value) -> String {
    let argv: Vec<&str> = json["argv"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match argv.split_first() {
        Some((_, rest)) => format!("tskv-bench {}", rest.join(" ")),
        None => "tskv-bench (flags unknown)".to_string(),
    }
}

/// The charts of a JSON report.
///
/// # Errors
/// If it is not a tskv-bench report.
pub fn from_json(json: &Value) -> Result<RunCharts, String> {
    if json["tool"] != "tskv-bench" {
        return Err("not a tskv-bench JSON report (no \"tool\": \"tskv-bench\")".into());
    }
    let mut run = RunCharts {
        caption: vec![
            host_line(&json["host"]),
            format!("flags: {}", flags_line(json)),
        ],
        ..RunCharts::default()
    };
    if let Some(ramp) = json.get("ramp") {
        run.title = format!("rate ramp {}", ramp["ramp"].as_str().unwrap_or("?"));
        for row in ramp["rows"].as_array().into_iter().flatten() {
            let f = |key: &str| row[key].as_f64().unwrap_or(0.0);
            run.ramp.push(RampPoint {
                target_per_s: f("target_per_s"),
                achieved_per_s: f("achieved_per_s"),
                p50_us: f("corrected_p50_us"),
                p99_us: f("corrected_p99_us"),
                p99_9_us: f("corrected_p99_9_us"),
            });
        }
        let mut offset_s = 0.0;
        for step in ramp["steps"].as_array().into_iter().flatten() {
            let rate = step["rate_per_s"].as_f64().unwrap_or(0.0);
            if let Some(points) = spectrum(&step["total"], "corrected") {
                run.spectra.push(Curve {
                    label: format!("{rate:.0} ops/s, corrected"),
                    points,
                });
            }
            run.timeline.extend(timeline(step, offset_s));
            offset_s += step["window_s"].as_f64().unwrap_or(0.0);
        }
        return Ok(run);
    }
    let mode = match json["rate_per_s"].as_f64() {
        Some(rate) => format!("open loop at {rate} ops/s"),
        None => "closed loop".to_string(),
    };
    run.title = format!("{mode}; {}", json["workload"].as_str().unwrap_or("?"));
    let open = json["mode"] == "open";
    for (name, entry) in json["commands"].as_object().into_iter().flatten() {
        let name = name.to_ascii_uppercase();
        for kind in ["corrected", "uncorrected"] {
            if kind == "corrected" && !open {
                continue;
            }
            if let Some(points) = spectrum(entry, kind) {
                let label = if open {
                    format!("{name} {kind}")
                } else {
                    name.clone()
                };
                run.spectra.push(Curve { label, points });
            }
        }
    }
    run.timeline = timeline(json, 0.0);
    Ok(run)
}

/// A command entry's spectrum of one kind, if it has one with points.
fn spectrum(entry: &Value, kind: &str) -> Option<Vec<(f64, f64)>> {
    let points: Vec<(f64, f64)> = entry["spectrum"][kind]
        .as_array()?
        .iter()
        .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
        .collect();
    (!points.is_empty()).then_some(points)
}

/// A phase's `timeline`, its times shifted by `offset_s`.
fn timeline(phase: &Value, offset_s: f64) -> Vec<TimelinePoint> {
    phase["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| TimelinePoint {
            end_s: offset_s + p["end_s"].as_f64().unwrap_or(0.0),
            ops_per_s: p["ops_per_s"].as_f64().unwrap_or(0.0),
            p99_us: p["p99_us"].as_f64().unwrap_or(0.0),
        })
        .collect()
}

/// What a tag of tskv-bench's interval log says: the ramp step's rate, the command, and
/// whether it is the uncorrected twin of an open-loop tag.
#[derive(Debug, Clone, PartialEq)]
struct TagParts {
    rate_per_s: Option<f64>,
    command: String,
    uncorrected: bool,
}

fn parse_tag(tag: &str) -> TagParts {
    let (rate_per_s, rest) = match tag.strip_prefix(HLOG_RATE_TAG_PREFIX).and_then(|t| {
        let (rate, rest) = t.split_once('-')?;
        Some((rate.parse::<f64>().ok()?, rest))
    }) {
        Some((rate, rest)) => (Some(rate), rest),
        None => (None, tag),
    };
    let (command, uncorrected) = match rest.strip_suffix("-uncorrected") {
        Some(command) => (command, true),
        None => (rest, false),
    };
    TagParts {
        rate_per_s,
        command: command.to_ascii_uppercase(),
        uncorrected,
    }
}

/// The charts of an HdrHistogram interval log written by `--hdr-log`.
///
/// # Errors
/// If the log cannot be parsed or holds no interval.
pub fn from_hlog(bytes: &[u8]) -> Result<RunCharts, String> {
    let mut run = RunCharts {
        title: "from an HdrHistogram interval log".into(),
        ..RunCharts::default()
    };
    let text = String::from_utf8_lossy(bytes);
    for line in text.lines().filter_map(|l| l.strip_prefix('#')) {
        if let Some(host) = line.strip_prefix(HLOG_HOST_PREFIX) {
            run.caption.push(host.to_string());
        } else if let Some(flags) = line.strip_prefix(HLOG_FLAGS_PREFIX) {
            run.caption.push(format!("flags: {flags}"));
        }
    }
    let mut deserializer = Deserializer::new();
    // Per tag: its merged histogram; per interval start (ms) of headline tags: count,
    // length and merged histogram.
    let mut per_tag: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut per_interval: BTreeMap<u64, (u64, f64, Histogram<u64>)> = BTreeMap::new();
    // Per ramp step (rate): the length of each of its intervals, by start.
    let mut step_intervals: BTreeMap<u64, BTreeMap<u64, f64>> = BTreeMap::new();
    let mut any_uncorrected = false;
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| format!("interval log does not parse: {e:?}"))?;
        let LogEntry::Interval(interval) = entry else {
            continue;
        };
        let tag = interval.tag().map_or("", |t| t.as_str()).to_string();
        let encoded = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| format!("interval histogram is not base64: {e}"))?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut encoded.as_slice())
            .map_err(|e| format!("interval histogram does not decode: {e:?}"))?;
        let parts = parse_tag(&tag);
        any_uncorrected |= parts.uncorrected;
        if !parts.uncorrected {
            let start_ms = interval.start_timestamp().as_millis() as u64;
            if let Some(rate) = parts.rate_per_s {
                step_intervals
                    .entry(rate.round() as u64)
                    .or_default()
                    .insert(start_ms, interval.duration().as_secs_f64());
            }
            let slot = per_interval
                .entry(start_ms)
                .or_insert_with(|| (0, 0.0, new_histogram()));
            slot.0 += histogram.len();
            slot.1 = interval.duration().as_secs_f64();
            merge(&mut slot.2, &histogram);
        }
        merge(per_tag.entry(tag).or_insert_with(new_histogram), &histogram);
    }
    if per_tag.is_empty() {
        return Err("the interval log holds no interval".into());
    }
    let first_ms = per_interval.keys().next().copied().unwrap_or(0);
    for (start_ms, (count, length_s, histogram)) in &per_interval {
        if *length_s <= 0.0 {
            continue;
        }
        run.timeline.push(TimelinePoint {
            end_s: (start_ms - first_ms) as f64 / 1e3 + length_s,
            ops_per_s: *count as f64 / length_s,
            p99_us: histogram.value_at_quantile(0.99) as f64 / 1e3,
        });
    }
    ramp_from_tags(&mut run, &per_tag, &step_intervals, any_uncorrected);
    Ok(run)
}

fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Histograms from the log have the bounds tskv-bench wrote them with; a foreign log
    // with wider values is clamped rather than refused.
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// Spectra per tag, and ramp points per `rateR-` step.
fn ramp_from_tags(
    run: &mut RunCharts,
    per_tag: &BTreeMap<String, Histogram<u64>>,
    step_intervals: &BTreeMap<u64, BTreeMap<u64, f64>>,
    open: bool,
) {
    let mut steps: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
    for (tag, histogram) in per_tag {
        let parts = parse_tag(tag);
        match parts.rate_per_s {
            Some(rate) if !parts.uncorrected => {
                merge(
                    steps
                        .entry(rate.round() as u64)
                        .or_insert_with(new_histogram),
                    histogram,
                );
            }
            Some(_) => {}
            None => {
                let kind = match (open, parts.uncorrected) {
                    (false, _) => String::new(),
                    (true, false) => " corrected".into(),
                    (true, true) => " uncorrected".into(),
                };
                run.spectra.push(Curve {
                    label: format!("{}{kind}", parts.command),
                    points: spectrum_points(histogram),
                });
            }
        }
    }
    if steps.is_empty() {
        return;
    }
    run.title = "rate ramp, from an HdrHistogram interval log".into();
    for (rate, histogram) in &steps {
        let length_s: f64 = step_intervals.get(rate).map_or(0.0, |i| i.values().sum());
        let at = |q: f64| histogram.value_at_quantile(q) as f64 / 1e3;
        run.ramp.push(RampPoint {
            target_per_s: *rate as f64,
            achieved_per_s: if length_s > 0.0 {
                histogram.len() as f64 / length_s
            } else {
                0.0
            },
            p50_us: at(0.5),
            p99_us: at(0.99),
            p99_9_us: at(0.999),
        });
        run.spectra.push(Curve {
            label: format!("{rate} ops/s, corrected"),
            points: spectrum_points(histogram),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_into_rate_command_and_kind() {
        assert_eq!(
            parse_tag("rate2000-get-uncorrected"),
            TagParts {
                rate_per_s: Some(2000.0),
                command: "GET".into(),
                uncorrected: true
            }
        );
        assert_eq!(
            parse_tag("ts.madd"),
            TagParts {
                rate_per_s: None,
                command: "TS.MADD".into(),
                uncorrected: false
            }
        );
        assert_eq!(parse_tag("ratelimit").command, "RATELIMIT");
    }
}
