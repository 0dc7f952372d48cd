//! Goal: `TS.MRANGE` / `TS.MREVRANGE ... GROUPBY label REDUCE reducer` answer as
//! RedisTimeSeries 1.10 does: one series per label value (in label-value order) named
//! `label=value`, labels `label`, `__reducer__`, `__source__` (shown with `WITHLABELS` or
//! `SELECTED_LABELS`), samples reduced per timestamp with every reducer, `COUNT` cutting
//! the reduced series, and its errors.
//!
//! Method: a two-shard server, so a group's sources live on different shards. First the
//! exact replies of RedisTimeSeries's own test (`tests/flow/test_ts_mrange_groupby.py`),
//! then seeded random series with a few label values, where every reducer (with and
//! without `AGGREGATION`, forward and reverse) is checked against a reduction computed in
//! the test from the samples it wrote. Values are compared after parsing, within a
//! relative 1e-12 (the server prints 15 significant digits).

mod common;

use std::collections::BTreeMap;

use common::{Reply, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn req(con: &mut common::RawConn, line: &str) -> Reply {
    let args: Vec<&str> = line.split_whitespace().collect();
    con.request(&args)
}

fn bulk(s: &str) -> Reply {
    Reply::bulk(s)
}

fn pair(a: &str, b: &str) -> Reply {
    Reply::Array(vec![bulk(a), bulk(b)])
}

fn samples(list: &[(i64, &str)]) -> Reply {
    Reply::Array(
        list.iter()
            .map(|&(t, v)| Reply::Array(vec![Reply::Int(t), Reply::Status(v.into())]))
            .collect(),
    )
}

#[test]
fn groups_reduce_as_redistimeseries_does() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    for line in [
        "TS.ADD s1 1 100 LABELS metric_family cpu metric_name user",
        "TS.ADD s2 2 55 LABELS metric_family cpu metric_name user",
        "TS.ADD s3 2 40 LABELS metric_family cpu metric_name system",
        "TS.ADD s1 2 95",
    ] {
        assert!(matches!(req(&mut c, line), Reply::Int(_)), "{line}");
    }
    let grouped = |reducer: &str, system: Reply, user: Reply| {
        Reply::Array(vec![
            Reply::Array(vec![
                bulk("metric_name=system"),
                Reply::Array(vec![
                    pair("metric_name", "system"),
                    pair("__reducer__", reducer),
                    pair("__source__", "s3"),
                ]),
                system,
            ]),
            Reply::Array(vec![
                bulk("metric_name=user"),
                Reply::Array(vec![
                    pair("metric_name", "user"),
                    pair("__reducer__", reducer),
                    pair("__source__", "s1,s2"),
                ]),
                user,
            ]),
        ])
    };
    let query = "TS.MRANGE - + WITHLABELS FILTER metric_family=cpu GROUPBY metric_name REDUCE";
    assert_eq!(
        req(&mut c, &format!("{query} max")),
        grouped(
            "max",
            samples(&[(2, "40")]),
            samples(&[(1, "100"), (2, "95")])
        )
    );
    assert_eq!(
        req(&mut c, &format!("{query} sum")),
        grouped(
            "sum",
            samples(&[(2, "40")]),
            samples(&[(1, "100"), (2, "150")])
        )
    );
    assert_eq!(
        req(&mut c, &format!("{query} MIN")),
        grouped(
            "min",
            samples(&[(2, "40")]),
            samples(&[(1, "100"), (2, "55")])
        )
    );
    assert_eq!(
        req(
            &mut c,
            "TS.MRANGE - + WITHLABELS COUNT 1 FILTER metric_family=cpu GROUPBY metric_name REDUCE min"
        ),
        grouped("min", samples(&[(2, "40")]), samples(&[(1, "100")]))
    );
    assert_eq!(
        req(
            &mut c,
            "TS.MREVRANGE - + WITHLABELS FILTER metric_family=cpu GROUPBY metric_name REDUCE count"
        ),
        grouped(
            "count",
            samples(&[(2, "1")]),
            samples(&[(2, "2"), (1, "1")])
        )
    );
    // Without WITHLABELS the label list is empty; SELECTED_LABELS picks among the three.
    assert_eq!(
        req(
            &mut c,
            "TS.MRANGE - + FILTER metric_family=cpu metric_name=system GROUPBY metric_name REDUCE avg"
        ),
        Reply::Array(vec![Reply::Array(vec![
            bulk("metric_name=system"),
            Reply::Array(vec![]),
            samples(&[(2, "40")]),
        ])])
    );
    assert_eq!(
        req(
            &mut c,
            "TS.MRANGE - + SELECTED_LABELS __source__ nosuch FILTER metric_name=system GROUPBY metric_name REDUCE range"
        ),
        Reply::Array(vec![Reply::Array(vec![
            bulk("metric_name=system"),
            Reply::Array(vec![
                pair("__source__", "s3"),
                Reply::Array(vec![bulk("nosuch"), Reply::Nil]),
            ]),
            samples(&[(2, "0")]),
        ])])
    );
    // Series without the label are left out.
    assert_eq!(
        req(
            &mut c,
            "TS.MRANGE - + WITHLABELS FILTER metric_family=cpu GROUPBY labelX REDUCE max"
        ),
        Reply::Array(vec![])
    );
    let arity = Reply::err("ERR wrong number of arguments for 'ts.mrange' command");
    for tail in [
        "GROUPBY",
        "GROUPBY metric_name",
        "GROUPBY metric_name abc abc",
    ] {
        assert_eq!(
            req(
                &mut c,
                &format!("TS.MRANGE - + FILTER metric_family=cpu {tail}")
            ),
            arity,
            "{tail}"
        );
    }
    for reducer in ["bla", "first", "twa"] {
        assert_eq!(
            req(
                &mut c,
                &format!(
                    "TS.MRANGE - + FILTER metric_family=cpu GROUPBY metric_name REDUCE {reducer}"
                )
            ),
            Reply::err("ERR TSDB: failed parsing reducer"),
            "{reducer}"
        );
    }
}

/// The reference reduction of `values` (one timestamp's values across a group).
fn reference(reducer: &str, values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    let mean = sum / n;
    let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    let var_s = if values.len() > 1 {
        squares / (n - 1.0)
    } else {
        0.0
    };
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match reducer {
        "avg" => mean,
        "sum" => sum,
        "min" => min,
        "max" => max,
        "range" => max - min,
        "count" => n,
        "std.p" => (squares / n).sqrt(),
        "std.s" => var_s.sqrt(),
        "var.p" => squares / n,
        "var.s" => var_s,
        other => panic!("no reducer {other}"),
    }
}

fn parse_groups(reply: Reply) -> Vec<(String, Vec<(u64, f64)>)> {
    let Reply::Array(groups) = reply else {
        panic!("not an array: {reply:?}")
    };
    groups
        .into_iter()
        .map(|group| {
            let Reply::Array(parts) = group else {
                panic!("{group:?}")
            };
            let (Reply::Bulk(name), Reply::Array(list)) = (&parts[0], &parts[2]) else {
                panic!("{parts:?}")
            };
            let list = list
                .iter()
                .map(|s| match s {
                    Reply::Array(p) => match (&p[0], &p[1]) {
                        (Reply::Int(t), Reply::Status(v)) => (*t as u64, v.parse().unwrap()),
                        other => panic!("{other:?}"),
                    },
                    other => panic!("{other:?}"),
                })
                .collect();
            (String::from_utf8(name.clone()).unwrap(), list)
        })
        .collect()
}

#[test]
fn every_reducer_matches_a_reference() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    let seed = common::test_seed();
    let mut rng = StdRng::seed_from_u64(seed);
    // host -> samples, grouped by "dc".
    let mut written: BTreeMap<String, (String, BTreeMap<u64, f64>)> = BTreeMap::new();
    for i in 0..12 {
        let key = format!("host:{i}");
        let dc = ["east", "west", "north"][i % 3].to_string();
        req(
            &mut c,
            &format!("TS.CREATE {key} LABELS kind cpu dc {dc} host {i}"),
        );
        let mut samples = BTreeMap::new();
        for _ in 0..40 {
            let ts = rng.gen_range(0..60u64) * 10;
            let value = f64::from(rng.gen_range(-5000..5000)) / 8.0;
            if let std::collections::btree_map::Entry::Vacant(slot) = samples.entry(ts) {
                slot.insert(value);
                req(&mut c, &format!("TS.ADD {key} {ts} {value}"));
            }
        }
        written.insert(key, (dc, samples));
    }
    let aggregated = |samples: &BTreeMap<u64, f64>| -> BTreeMap<u64, f64> {
        // AGGREGATION sum 100 per source, before the reduction.
        let mut out = BTreeMap::new();
        for (ts, v) in samples {
            *out.entry(ts - ts % 100).or_insert(0.0) += v;
        }
        out
    };
    for reducer in [
        "avg", "sum", "min", "max", "range", "count", "std.p", "std.s", "var.p", "var.s",
    ] {
        for (command, aggregation) in [
            ("TS.MRANGE", ""),
            ("TS.MREVRANGE", ""),
            ("TS.MRANGE", "AGGREGATION sum 100"),
        ] {
            let line =
                format!("{command} 50 + {aggregation} FILTER kind=cpu GROUPBY dc REDUCE {reducer}");
            let got = parse_groups(req(&mut c, &line));
            let mut want: BTreeMap<String, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
            for (dc, samples) in written.values() {
                let in_range: BTreeMap<u64, f64> =
                    samples.range(50..).map(|(t, v)| (*t, *v)).collect();
                let source = if aggregation.is_empty() {
                    in_range
                } else {
                    aggregated(&in_range)
                };
                for (ts, v) in source {
                    want.entry(format!("dc={dc}"))
                        .or_default()
                        .entry(ts)
                        .or_default()
                        .push(v);
                }
            }
            assert_eq!(got.len(), want.len(), "{line} (seed {seed})");
            for ((name, list), (want_name, want_list)) in got.iter().zip(&want) {
                assert_eq!(name, want_name, "{line}");
                let mut expected: Vec<(u64, f64)> = want_list
                    .iter()
                    .map(|(ts, values)| (*ts, reference(reducer, values)))
                    .collect();
                if command == "TS.MREVRANGE" {
                    expected.reverse();
                }
                assert_eq!(list.len(), expected.len(), "{line} {name}");
                for (g, w) in list.iter().zip(&expected) {
                    assert_eq!(g.0, w.0, "{line} {name}");
                    let tolerance = 1e-12 * w.1.abs().max(1.0);
                    assert!(
                        (g.1 - w.1).abs() <= tolerance,
                        "{line} {name} at {}: got {} want {} (seed {seed})",
                        g.0,
                        g.1,
                        w.1
                    );
                }
            }
        }
    }
}

/// Grouping many long series needs no room for them under the client output limit: each
/// shard sends one partial per group and timestamp, not its series (before, the sources
/// travelled whole and 40 series of 2,500 samples were refused under a 1 MiB limit).
#[test]
fn grouping_many_series_fits_a_small_output_limit() {
    const SERIES: usize = 40;
    const SAMPLES: u64 = 2_500;
    let server = TestServer::start(&["--shards", "2", "--client-output-bytes-max", "1048576"]);
    let mut c = server.raw();
    let mut want: BTreeMap<String, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for i in 0..SERIES {
        let key = format!("many:{i}");
        let group = ["a", "b"][i % 2];
        req(
            &mut c,
            &format!("TS.CREATE {key} LABELS fleet x group {group}"),
        );
        let mut args = vec!["TS.MADD".to_string()];
        for t in 0..SAMPLES {
            let value = ((i as u64 * 7919 + t * 104_729) % 20_000) as f64 / 4.0 - 2_000.0;
            args.extend([key.clone(), (t * 10).to_string(), value.to_string()]);
            want.entry(format!("group={group}"))
                .or_default()
                .entry(t * 10)
                .or_default()
                .push(value);
        }
        assert!(!c.request(&args).is_error());
    }
    for reducer in ["sum", "avg", "max", "std.s"] {
        let line = format!("TS.MRANGE - + FILTER fleet=x GROUPBY group REDUCE {reducer}");
        let got = parse_groups(req(&mut c, &line));
        assert_eq!(got.len(), 2, "{line}");
        for ((name, list), (want_name, by_ts)) in got.iter().zip(&want) {
            assert_eq!(name, want_name);
            assert_eq!(list.len() as u64, SAMPLES, "{line} {name}");
            for ((ts, value), (want_ts, values)) in list.iter().zip(by_ts) {
                assert_eq!(ts, want_ts);
                let expected = reference(reducer, values);
                let tolerance = 1e-12 * expected.abs().max(1.0);
                assert!(
                    (value - expected).abs() <= tolerance,
                    "{line} {name} at {ts}: got {value} want {expected}"
                );
            }
        }
    }
}
