//! From the flags to workloads: the measured run's mix (`--ratio`, `--workload` presets,
//! `--command` templates) with its key distribution and value sizes, the setup phases, and
//! the one line that says what a workload sends.

use clap::ValueEnum;

use crate::cli::{Args, KeyDistKind, Preset, Ratio, ValueSize};
use crate::limits;
use crate::tsbs::TsbsConfig;
use crate::workload::{self, Mix, OpWeights, WorkloadConfig};

/// The mix without `--ratio` or `--workload`.
const DEFAULT_RATIO: Ratio = Ratio { set: 1, get: 10 };
/// SET value size without `--value-size`, outside YCSB presets.
const DEFAULT_VALUE_BYTES: usize = 32;

/// The workload of the measured run, from `--workload` or `--ratio` and the size flags.
pub fn workload_config(args: &Args) -> WorkloadConfig {
    let fleet = TsbsConfig {
        hosts: args.hosts,
        span_hours: args.ts_span_hours,
    };
    let ycsb = |read, update, insert, scan, rmw| {
        Mix::KeyValue(OpWeights {
            read,
            update,
            insert,
            scan,
            rmw,
        })
    };
    let (mix, key_dist) = match args.workload {
        None if !args.templates.is_empty() => (
            Mix::Templates(workload::templates(&args.templates, &args.template_weights)),
            KeyDistKind::Uniform,
        ),
        None => {
            let ratio = args.ratio.unwrap_or(DEFAULT_RATIO);
            (ycsb(ratio.get, ratio.set, 0, 0, 0), KeyDistKind::Uniform)
        }
        Some(Preset::YcsbA) => (ycsb(50, 50, 0, 0, 0), KeyDistKind::Zipfian),
        Some(Preset::YcsbB) => (ycsb(95, 5, 0, 0, 0), KeyDistKind::Zipfian),
        Some(Preset::YcsbC) => (ycsb(100, 0, 0, 0, 0), KeyDistKind::Zipfian),
        Some(Preset::YcsbD) => (ycsb(95, 0, 5, 0, 0), KeyDistKind::Latest),
        Some(Preset::YcsbE) => (ycsb(0, 0, 5, 95, 0), KeyDistKind::Zipfian),
        Some(Preset::YcsbF) => (ycsb(50, 0, 0, 0, 50), KeyDistKind::Zipfian),
        Some(Preset::TsbsCpuIngest) => (Mix::TsIngest(fleet), KeyDistKind::Uniform),
        Some(Preset::TsbsCpuQuery) => (Mix::TsQuery(fleet), KeyDistKind::Uniform),
    };
    let default_bytes = if args.workload.is_some_and(Preset::is_ycsb) {
        limits::YCSB_VALUE_BYTES
    } else {
        DEFAULT_VALUE_BYTES
    };
    WorkloadConfig {
        mix,
        keys: args.keys,
        key_dist: args.key_dist.unwrap_or(key_dist),
        key_prefix: args.key_prefix.as_bytes().to_vec(),
        value_size: args.value_size.unwrap_or(ValueSize {
            min_bytes: default_bytes,
            max_bytes: default_bytes,
        }),
        scan_len_max: limits::YCSB_SCAN_LEN_MAX,
    }
}

/// The setup phases `--load` and `--create-series` ask for, with their labels.
pub fn setup_phases(args: &Args) -> Vec<(String, WorkloadConfig)> {
    let main = workload_config(args);
    let mut phases = Vec::new();
    if args.load {
        let mut load = main.clone();
        load.mix = Mix::Load;
        load.key_dist = KeyDistKind::Sequential;
        phases.push(("load".to_string(), load));
    }
    if args.create_series {
        let mut create = main.clone();
        create.mix = Mix::TsCreate(TsbsConfig {
            hosts: args.hosts,
            span_hours: args.ts_span_hours,
        });
        phases.push(("create-series".to_string(), create));
    }
    phases
}

/// One line saying what a workload sends.
pub fn describe(workload: &WorkloadConfig, preset: Option<Preset>) -> String {
    let dist = workload
        .key_dist
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string());
    let ValueSize {
        min_bytes,
        max_bytes,
    } = workload.value_size;
    let keys = format!(
        "{} keys {dist}; values {min_bytes}-{max_bytes} bytes",
        workload.keys
    );
    match &workload.mix {
        Mix::KeyValue(w) if preset.is_none() => format!("SET:GET {}:{}; {keys}", w.update, w.read),
        Mix::KeyValue(w) => {
            let total = f64::from(w.read + w.update + w.insert + w.scan + w.rmw);
            let mut parts = Vec::new();
            for (weight, what) in [
                (w.read, "GET"),
                (w.update, "SET"),
                (w.insert, "INSERT (SET of a new key beyond --keys)"),
                (
                    w.scan,
                    "SCAN (MGET of 1..=100 consecutive keys: no range command yet)",
                ),
                (w.rmw, "RMW (GET then SET of one key)"),
            ] {
                if weight > 0 {
                    parts.push(format!("{:.0}% {what}", f64::from(weight) / total * 100.0));
                }
            }
            let name = preset.map(Preset::name).unwrap_or_default();
            format!("workload {name}: {}; {keys}", parts.join(", "))
        }
        Mix::Load => format!("load: SET every key once, in order; {keys}"),
        Mix::TsCreate(fleet) => format!(
            "create-series: TS.CREATE of {} series (cpu:host_N:METRIC) with TSBS host labels",
            fleet.series_count()
        ),
        Mix::TsIngest(fleet) => format!(
            "workload tsbs-cpu-ingest: TS.MADD of the 10 cpu metrics per host and 10 s of \
             simulated time; {} hosts from 2016-01-01T00:00:00Z",
            fleet.hosts
        ),
        Mix::Templates(specs) => {
            let total: u32 = specs.iter().map(|s| s.weight).sum();
            let parts: Vec<String> = specs
                .iter()
                .map(|s| {
                    let share = f64::from(s.weight) / f64::from(total.max(1)) * 100.0;
                    format!("{share:.0}% {} ({})", s.words.join(" "), s.name)
                })
                .collect();
            format!("templates: {}; {keys}", parts.join(", "))
        }
        Mix::TsQuery(fleet) => format!(
            "workload tsbs-cpu-query: TS.RANGE of one series or TS.MRANGE ... FILTER \
             hostname=host_N over random 1 h windows of the first {} h; {} hosts",
            fleet.span_hours, fleet.hosts
        ),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::workload::Command;

    #[test]
    fn presets_resolve_to_their_mix_distribution_and_value_size() {
        let parse = |flags: &[&str]| {
            let mut argv = vec!["tskv-bench"];
            argv.extend_from_slice(flags);
            Args::try_parse_from(argv).unwrap()
        };
        let plain = workload_config(&parse(&[]));
        assert_eq!(plain.key_dist, KeyDistKind::Uniform);
        assert_eq!(plain.value_size.max_bytes, 32);
        let d = workload_config(&parse(&["--workload", "ycsb-d"]));
        assert_eq!(d.key_dist, KeyDistKind::Latest);
        assert_eq!(d.value_size.max_bytes, 1000);
        assert_eq!(d.commands(), vec![Command::Get, Command::Insert]);
        let f = workload_config(&parse(&["--workload", "ycsb-f", "--value-size", "10"]));
        assert_eq!(f.value_size.max_bytes, 10);
        assert_eq!(f.commands(), vec![Command::Get, Command::Rmw]);
        let e = parse(&["--workload", "ycsb-e", "--load"]);
        assert!(describe(&workload_config(&e), Some(Preset::YcsbE)).contains("MGET"));
        assert_eq!(setup_phases(&e).len(), 1);
        let ts = parse(&["--workload", "tsbs-cpu-ingest", "--create-series"]);
        assert_eq!(workload_config(&ts).commands(), vec![Command::TsMadd]);
        assert_eq!(setup_phases(&ts)[0].1.setup_total(), Some(1000));
    }
}
