//! Goal: a `TS.RANGE` / `TS.REVRANGE` reply larger than the client output limit is sent
//! whole and exact, streamed as the client reads it, while the connection's output memory
//! stays bounded and other connections are served; replies pipelined after it keep their
//! order.
//!
//! Method: a two-shard server with `--client-output-bytes-max` at 2 MiB holds two series
//! of 200,000 samples each (about 7 MB of reply each), one on each shard, so one of them
//! is on the reading connection's shard and the other is streamed from a view the other
//! shard froze. Part of each series is flushed to SSTables (`SAVE`), part sealed in the
//! memtable and part still open in memory. A connection pipelines the range and a `PING`
//! and reads nothing at first: another connection meanwhile gets its replies, and its
//! `CLIENT LIST` shows the reader's output memory (`omem`) under the limit. Then every
//! sample is compared with what was written: raw forward and reverse, with `COUNT`,
//! `FILTER_BY_VALUE`, an `AGGREGATION` with `EMPTY`, and in RESP3. Last, a reader with a
//! 16 KiB receive window is mid-stream while its series is written, trimmed with `TS.DEL`
//! and flushed and compacted by `SAVE`: it still gets the series as it was.

mod common;

use std::time::Duration;

use common::{RawConn, Reply, TestServer};

const SAMPLES: u64 = 200_000;
const STEP_MS: u64 = 10;
const OUTPUT_MAX_BYTES: u64 = 2 << 20;

/// Values with short exact decimals, so the expected `%.15g` text is known.
fn value(i: u64) -> f64 {
    (i % 1999) as f64 * 0.25 - 100.0
}

fn text(v: f64) -> String {
    format!("{v}")
}

fn sample(ts_ms: u64, v: f64) -> Reply {
    Reply::Array(vec![Reply::Int(ts_ms as i64), Reply::Status(text(v))])
}

/// Two series names, one owned by each of the two shards.
fn names() -> [String; 2] {
    let mut found: [Option<String>; 2] = [None, None];
    for i in 0.. {
        let name = format!("big{i}");
        let shard = tskv::datadir::shard_of(name.as_bytes(), 2).0;
        found[shard].get_or_insert(name);
        if let [Some(a), Some(b)] = &found {
            return [a.clone(), b.clone()];
        }
    }
    unreachable!()
}

fn load(c: &mut RawConn, key: &str, from: u64, to: u64) {
    let mut i = from;
    while i < to {
        let end = (i + 2_000).min(to);
        let mut args = vec!["TS.MADD".to_string()];
        for j in i..end {
            args.extend([key.to_string(), (j * STEP_MS).to_string(), text(value(j))]);
        }
        let reply = c.request(&args);
        assert!(
            matches!(&reply, Reply::Array(items) if items.len() == (end - i) as usize),
            "{reply:?}"
        );
        i = end;
    }
}

/// Samples rewritten or added out of order after the load (under `DUPLICATE_POLICY
/// LAST`): they stay open in memory, inside the spans of sealed chunks, so a range merges
/// them into those chunks' samples.
const REWRITES: [(u64, f64); 4] = [
    (10_000, 0.125),
    (10_005, -0.5),
    (1_000_005, 7.75),
    (1_500_000, 3.5),
];

/// What the series holds: every `i * STEP_MS` with `value(i)`, then [`REWRITES`].
fn model() -> std::collections::BTreeMap<u64, f64> {
    let mut model: std::collections::BTreeMap<u64, f64> =
        (0..SAMPLES).map(|i| (i * STEP_MS, value(i))).collect();
    model.extend(REWRITES);
    model
}

fn expected<'a>(samples: impl Iterator<Item = (&'a u64, &'a f64)>) -> Vec<Reply> {
    samples.map(|(&ts, &v)| sample(ts, v)).collect()
}

fn items(reply: Reply) -> Vec<Reply> {
    match reply {
        Reply::Array(items) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// The reader's `omem` as the other connection's `CLIENT LIST` shows it.
fn omem_of(c: &mut RawConn, name: &str) -> u64 {
    let Reply::Bulk(list) = c.request(&["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST")
    };
    let list = String::from_utf8(list).unwrap();
    let line = list
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))
        .expect("the reader is listed");
    let field = line
        .split(' ')
        .find_map(|f| f.strip_prefix("omem="))
        .expect("omem field");
    field.parse().unwrap()
}

#[test]
fn ranges_larger_than_the_output_limit_stream_exactly() {
    let server = TestServer::start(&[
        "--shards",
        "2",
        "--client-output-bytes-max",
        &OUTPUT_MAX_BYTES.to_string(),
    ]);
    let mut c = server.raw();
    let keys = names();
    for key in &keys {
        assert_eq!(
            c.request(&["TS.CREATE", key, "DUPLICATE_POLICY", "LAST"]),
            Reply::ok()
        );
        load(&mut c, key, 0, SAMPLES / 2);
    }
    assert_eq!(c.request(&["SAVE"]), Reply::ok());
    for key in &keys {
        load(&mut c, key, SAMPLES / 2, SAMPLES);
        for (ts, v) in REWRITES {
            let reply = c.request(&["TS.ADD", key, &ts.to_string(), &text(v)]);
            assert_eq!(reply, Reply::Int(ts as i64));
        }
    }
    let model = model();

    for key in &keys {
        // A reader that pipelines the range and a PING and reads nothing yet.
        let mut reader = server.raw();
        assert_eq!(
            reader.request(&["CLIENT", "SETNAME", "reader"]),
            Reply::ok()
        );
        let mut pipelined = common::encode(&["TS.RANGE", key.as_str(), "-", "+"]);
        pipelined.extend(common::encode(&["PING"]));
        reader.send(&pipelined).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // Others are served meanwhile, and the reader's output memory stays bounded.
        for other in &keys {
            let last = (SAMPLES - 1) * STEP_MS;
            assert_eq!(
                c.request(&["TS.GET", other]),
                sample(last, value(SAMPLES - 1))
            );
        }
        let omem = omem_of(&mut c, "reader");
        assert!(
            omem <= OUTPUT_MAX_BYTES,
            "{key}: the reader's output memory is {omem} bytes, over the {OUTPUT_MAX_BYTES}-byte limit"
        );
        let got = items(reader.reply());
        assert_eq!(got.len(), model.len(), "{key}");
        assert!(got == expected(model.iter()), "{key}: TS.RANGE differs");
        assert_eq!(reader.reply(), Reply::Status("PONG".into()), "{key}");

        let got = items(reader.request(&["TS.REVRANGE", key.as_str(), "-", "+"]));
        assert!(
            got == expected(model.iter().rev()),
            "{key}: TS.REVRANGE differs"
        );

        let count = SAMPLES * 3 / 4;
        let got =
            items(reader.request(&["TS.REVRANGE", key, "-", "+", "COUNT", &count.to_string()]));
        assert!(
            got == expected(model.iter().rev().take(count as usize)),
            "{key}: TS.REVRANGE COUNT differs"
        );

        let got =
            items(reader.request(&["TS.RANGE", key, "100", "+", "FILTER_BY_VALUE", "0", "200"]));
        let want = expected(
            model
                .iter()
                .filter(|&(&ts, v)| ts >= 100 && (0.0..=200.0).contains(v)),
        );
        assert!(
            got.len() > 50_000 && got == want,
            "{key}: FILTER_BY_VALUE differs"
        );

        // Buckets of 20 ms: two samples each, three where a rewrite added one.
        let got = items(reader.request(&[
            "TS.REVRANGE",
            key,
            "-",
            "+",
            "AGGREGATION",
            "sum",
            "20",
            "EMPTY",
        ]));
        let mut buckets = std::collections::BTreeMap::<u64, f64>::new();
        for (&ts, &v) in &model {
            *buckets.entry(ts - ts % 20).or_default() += v;
        }
        let want = expected(buckets.iter().rev());
        assert!(got == want, "{key}: AGGREGATION sum differs");
    }

    // A reply streams what the series held when the command ran: a reader with a small
    // receive window is still being sent its range while the series gets new samples, a
    // `TS.DEL` and a `SAVE` (a flush and compactions rewriting its tables).
    for key in &keys {
        let mut late = server.raw();
        let socket = late.writer_clone();
        socket2::SockRef::from(&socket)
            .set_recv_buffer_size(16 << 10)
            .unwrap();
        assert_eq!(late.request(&["CLIENT", "SETNAME", "late"]), Reply::ok());
        late.send(&common::encode(&["TS.RANGE", key.as_str(), "-", "+"]))
            .unwrap();
        // The reply starts once the owner shard has counted it: wait until its bytes
        // wait in the server, which they keep doing while the reader does not read.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while omem_of(&mut c, "late") == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{key}: the range never waited in the server (sent whole?)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let past_end = (SAMPLES * STEP_MS + 5).to_string();
        assert_eq!(
            c.request(&["TS.ADD", key, &past_end, "1"]),
            Reply::Int(SAMPLES as i64 * STEP_MS as i64 + 5)
        );
        let deleted = model.range(0..=999_999).count() as i64;
        assert_eq!(
            c.request(&["TS.DEL", key, "0", "999999"]),
            Reply::Int(deleted)
        );
        assert_eq!(c.request(&["SAVE"]), Reply::ok());
        let got = items(late.reply());
        assert!(
            got == expected(model.iter()),
            "{key}: the streamed range changed under it"
        );
        let now = items(late.request(&["TS.RANGE", key.as_str(), "-", "+", "COUNT", "1"]));
        let (&first_ts, &first_value) = model.range(1_000_000..).next().unwrap();
        assert_eq!(
            now,
            vec![sample(first_ts, first_value)],
            "{key}: the TS.DEL took effect"
        );
    }
}

#[test]
fn streamed_ranges_in_resp3_are_doubles() {
    let server = TestServer::start(&["--client-output-bytes-max", &OUTPUT_MAX_BYTES.to_string()]);
    let mut c = server.raw();
    assert_eq!(c.request(&["TS.CREATE", "r3"]), Reply::ok());
    load(&mut c, "r3", 0, SAMPLES);
    let client = redis::Client::open(format!("redis://{}/?protocol=resp3", server.addr())).unwrap();
    let mut con = client.get_connection().unwrap();
    let got: redis::Value = redis::cmd("TS.RANGE")
        .arg("r3")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    let redis::Value::Array(got) = got else {
        panic!("an array: {got:?}")
    };
    assert_eq!(got.len() as u64, SAMPLES);
    for (i, entry) in got.iter().enumerate() {
        let i = i as u64;
        let want = redis::Value::Array(vec![
            redis::Value::Int((i * STEP_MS) as i64),
            redis::Value::Double(value(i)),
        ]);
        assert_eq!(entry, &want, "sample {i}");
    }
}

/// `TS.MRANGE` / `TS.MREVRANGE` over series on both shards whose samples together pass the
/// output limit: the long series stream, the short ones are built at once, and the reply
/// is every series in key order with every sample exact.
#[test]
fn multi_series_ranges_stream_their_long_series() {
    let server = TestServer::start(&[
        "--shards",
        "2",
        "--client-output-bytes-max",
        &OUTPUT_MAX_BYTES.to_string(),
    ]);
    let mut c = server.raw();
    let sizes: [u64; 6] = [500, 60_000, 45_000, 10, 70_000, 1_025];
    for (i, &n) in sizes.iter().enumerate() {
        let key = format!("m:{i}");
        let reply = c.request(&[
            "TS.CREATE",
            &key,
            "LABELS",
            "group",
            "m",
            "n",
            &n.to_string(),
        ]);
        assert_eq!(reply, Reply::ok());
        load(&mut c, &key, 0, n);
        if i == 2 {
            assert_eq!(c.request(&["SAVE"]), Reply::ok());
        }
    }
    let series = |reverse: bool, count: Option<usize>| -> Reply {
        Reply::Array(
            sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let labels = Reply::Array(vec![
                        Reply::Array(vec![Reply::bulk("group"), Reply::bulk("m")]),
                        Reply::Array(vec![Reply::bulk("n"), Reply::bulk(n.to_string())]),
                    ]);
                    let mut samples = expected_plain(0..n);
                    if reverse {
                        samples.reverse();
                    }
                    samples.truncate(count.unwrap_or(usize::MAX));
                    Reply::Array(vec![
                        Reply::bulk(format!("m:{i}")),
                        labels,
                        Reply::Array(samples),
                    ])
                })
                .collect(),
        )
    };
    let got = c.request(&["TS.MRANGE", "-", "+", "WITHLABELS", "FILTER", "group=m"]);
    assert!(got == series(false, None), "TS.MRANGE differs");
    let got = c.request(&[
        "TS.MREVRANGE",
        "-",
        "+",
        "WITHLABELS",
        "COUNT",
        "50000",
        "FILTER",
        "group=m",
    ]);
    assert!(
        got == series(true, Some(50_000)),
        "TS.MREVRANGE COUNT differs"
    );
    // The connection is in order afterwards.
    assert_eq!(c.request(&["PING"]), Reply::Status("PONG".into()));
}

fn expected_plain(range: std::ops::Range<u64>) -> Vec<Reply> {
    range.map(|i| sample(i * STEP_MS, value(i))).collect()
}

/// `TS.MRANGE` over many short series whose entries together pass the output limit many
/// times over (300 series of 1,000 samples, about 10 MB of reply, against 2 MiB): each
/// shard builds at most 32,768 entries at once and streams the series after them, so the
/// reply is whole and exact rather than refused.
#[test]
fn multi_series_ranges_over_many_short_series_stream() {
    let server = TestServer::start(&[
        "--shards",
        "2",
        "--client-output-bytes-max",
        &OUTPUT_MAX_BYTES.to_string(),
    ]);
    let mut c = server.raw();
    const SERIES: usize = 300;
    const EACH: u64 = 1_000;
    let key = |i: usize| format!("short:{i:03}");
    for i in 0..SERIES {
        let reply = c.request(&["TS.CREATE", &key(i), "LABELS", "group", "short"]);
        assert_eq!(reply, Reply::ok());
        load(&mut c, &key(i), 0, EACH);
        if i == SERIES / 2 {
            assert_eq!(c.request(&["SAVE"]), Reply::ok());
        }
    }
    for reverse in [false, true] {
        let command = if reverse { "TS.MREVRANGE" } else { "TS.MRANGE" };
        let got = c.request(&[command, "-", "+", "FILTER", "group=short"]);
        let want = Reply::Array(
            (0..SERIES)
                .map(|i| {
                    let mut samples = expected_plain(0..EACH);
                    if reverse {
                        samples.reverse();
                    }
                    Reply::Array(vec![
                        Reply::bulk(key(i)),
                        Reply::Array(Vec::new()),
                        Reply::Array(samples),
                    ])
                })
                .collect(),
        );
        assert!(got == want, "{command} over {SERIES} short series differs");
    }
    assert_eq!(c.request(&["PING"]), Reply::Status("PONG".into()));
}
