//! Goal: a label-filtered query (`TS.QUERYINDEX`, `TS.MGET ... WITHLABELS`) returns exactly
//! the series that exist with the labels they have now, through every way a series comes,
//! changes and goes (`TS.CREATE`, `TS.ADD` and `TS.INCRBY` creating it, `TS.ALTER
//! LABELS`, `DEL`, `SET` over it, `FLUSHALL`), and still does after SIGKILL and restart,
//! when each shard rebuilds its label index from the series' metadata.
//!
//! Method: a seeded random mix of those commands over 30 keys (label names and values from
//! small pools, so postings are shared and change often) on a two-shard server with
//! `--fsync always` and a 64 KiB memtable (so metadata also lives in flushed SSTables). The
//! test keeps each live series' labels in a map and, after every batch, compares the
//! server's answer to a filter of every form with a brute-force match over the map. After
//! some batches it kills the server with SIGKILL and restarts it on the same directory:
//! once querying first (the index is rebuilt by the query), once writing first (the index
//! is rebuilt by a `SET`'s look-up and then kept up to date).

mod common;

use std::collections::BTreeMap;

use common::TestServer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ARGS: &[&str] = &[
    "--shards",
    "2",
    "--fsync",
    "always",
    "--memtable-bytes",
    "65536",
];

const NAMES: &[&str] = &["dc", "host", "role"];
const VALUES: &[&str] = &["a", "b", "c"];

/// Live series: key → labels (name → value).
type Model = BTreeMap<String, BTreeMap<String, String>>;

/// One filter expression, answered over a series' labels as RedisTimeSeries documents it
/// (written here from the docs, independently of the server's matcher).
fn holds(expr: &str, labels: &BTreeMap<String, String>) -> bool {
    let (name, negated, value) = match expr.split_once("!=") {
        Some((n, v)) => (n, true, v),
        None => {
            let (n, v) = expr.split_once('=').expect("a filter expression has '='");
            (n, false, v)
        }
    };
    let listed: Vec<&str> = match value.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
        Some(list) => list.split(',').collect(),
        None if value.is_empty() => Vec::new(),
        None => vec![value],
    };
    let actual = labels.get(name).map(String::as_str);
    match (negated, listed.is_empty()) {
        (false, true) => actual.is_none(),
        (true, true) => actual.is_some(),
        (false, false) => actual.is_some_and(|v| listed.contains(&v)),
        (true, false) => !actual.is_some_and(|v| listed.contains(&v)),
    }
}

/// Filters covering every form, each with at least one positive matcher.
const FILTERS: &[&[&str]] = &[
    &["dc=a"],
    &["host=(a,c)"],
    &["dc=b", "host!=a"],
    &["role=(a,b)", "dc!=(a,c)"],
    &["host=c", "role="],
    &["dc=(a,b,c)", "role!="],
    &["kind=t"],
    &["kind=t", "dc=", "host="],
    &["role=zzz"],
];

fn check(con: &mut redis::Connection, model: &Model, when: &str) {
    for filter in FILTERS {
        let expected: Vec<String> = model
            .iter()
            .filter(|(_, labels)| filter.iter().all(|e| holds(e, labels)))
            .map(|(key, _)| key.clone())
            .collect();
        let found: Vec<String> = redis::cmd("TS.QUERYINDEX").arg(*filter).query(con).unwrap();
        assert_eq!(found, expected, "TS.QUERYINDEX {filter:?} {when}");
    }
    // The labels themselves, as the series carry them now.
    type Mget = Vec<(String, Vec<(String, String)>, Vec<redis::Value>)>;
    let got: Mget = redis::cmd("TS.MGET")
        .arg("WITHLABELS")
        .arg("FILTER")
        .arg("kind=t")
        .query(con)
        .unwrap();
    let got: Model = got
        .into_iter()
        .map(|(key, labels, _)| (key, labels.into_iter().collect()))
        .collect();
    assert_eq!(&got, model, "TS.MGET WITHLABELS FILTER kind=t {when}");
}

fn random_labels(rng: &mut StdRng) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([("kind".to_string(), "t".to_string())]);
    for name in NAMES {
        if rng.gen_bool(0.6) {
            labels.insert(
                name.to_string(),
                VALUES[rng.gen_range(0..VALUES.len())].into(),
            );
        }
    }
    labels
}

fn labels_args(labels: &BTreeMap<String, String>) -> Vec<String> {
    let mut args = vec!["LABELS".to_string()];
    for (name, value) in labels {
        args.push(name.clone());
        args.push(value.clone());
    }
    args
}

/// One random command, applied to the server and the model.
fn step(con: &mut redis::Connection, model: &mut Model, rng: &mut StdRng, ts_ms: u64) {
    let key = format!("s{:02}", rng.gen_range(0..30));
    let exists = model.contains_key(&key);
    match rng.gen_range(0..10) {
        0..=2 if !exists => {
            let labels = random_labels(rng);
            let () = redis::cmd("TS.CREATE")
                .arg(&key)
                .arg(labels_args(&labels))
                .query(con)
                .unwrap();
            model.insert(key, labels);
        }
        3 if !exists => {
            let labels = random_labels(rng);
            let _: u64 = redis::cmd("TS.INCRBY")
                .arg(&key)
                .arg(1)
                .arg("TIMESTAMP")
                .arg(ts_ms)
                .arg(labels_args(&labels))
                .query(con)
                .unwrap();
            model.insert(key, labels);
        }
        0..=3 => {
            // TS.ADD creates the series with these labels, or ignores them on an existing one.
            let labels = random_labels(rng);
            let _: u64 = redis::cmd("TS.ADD")
                .arg(&key)
                .arg(ts_ms)
                .arg(1.5)
                .arg("ON_DUPLICATE")
                .arg("LAST")
                .arg(labels_args(&labels))
                .query(con)
                .unwrap();
            model.entry(key).or_insert(labels);
        }
        4..=6 if exists => {
            let labels = random_labels(rng);
            let () = redis::cmd("TS.ALTER")
                .arg(&key)
                .arg(labels_args(&labels))
                .query(con)
                .unwrap();
            model.insert(key, labels);
        }
        4..=7 => {
            let _: i64 = redis::cmd("DEL").arg(&key).query(con).unwrap();
            model.remove(&key);
        }
        _ => {
            // A string replaces the series; then it goes, leaving nothing behind.
            let () = redis::cmd("SET").arg(&key).arg("v").query(con).unwrap();
            let _: i64 = redis::cmd("DEL").arg(&key).query(con).unwrap();
            model.remove(&key);
        }
    }
}

#[test]
fn label_filters_match_the_live_series_through_changes_and_sigkill() {
    // The test owns the data directory, so it outlives each killed server.
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_path_buf();
    let mut server = TestServer::start_in(&dir, ARGS);
    let mut rng = StdRng::seed_from_u64(7);
    let mut model = Model::new();
    let mut ts_ms = 1_000;
    let mut con = server.conn();
    check(&mut con, &model, "on an empty server");
    for round in 0..6 {
        for _ in 0..60 {
            ts_ms += 10;
            step(&mut con, &mut model, &mut rng, ts_ms);
        }
        check(&mut con, &model, &format!("after round {round}"));
        if round == 2 {
            let () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
            model.clear();
            check(&mut con, &model, "after FLUSHALL");
        }
        if round % 2 == 1 {
            server.kill9();
            server = TestServer::start_in(&dir, ARGS);
            con = server.conn();
            if round == 3 {
                // Writing first: the index comes from a SET's look-up, then follows the
                // writes.
                for _ in 0..20 {
                    ts_ms += 10;
                    step(&mut con, &mut model, &mut rng, ts_ms);
                }
            }
            check(&mut con, &model, &format!("after SIGKILL in round {round}"));
        }
    }
    assert!(
        model.len() > 5,
        "the mix leaves series to find: {}",
        model.len()
    );
}
