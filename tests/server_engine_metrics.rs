//! Goal: the storage engine's numbers in `INFO persistence` and on the Prometheus endpoint
//! move when the engine does what they count: Bloom filter negatives when lookups of
//! absent keys skip a table, write stalls (and their time) when writes outrun memtable
//! flushes, compaction bytes and deeper levels when level 0 piles up, the block cache
//! hit ratio when a block is read twice; and the poisoned-shard gauge stays 0.
//!
//! Method: one shard with the smallest memtable (64 KiB) and `--metrics-addr`. Read every
//! counter, make the engine do the thing (GETs of absent keys after a `SAVE`; a pipeline
//! of 40 writes of 60 KB values, each filling a memtable while the previous one is still
//! being flushed; enough flushes for compaction), and check that the counter moved, in
//! `INFO` and in `/metrics`. No time is asserted: compactions are waited for.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::frames::Frames;
use common::{encode, TestServer};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

fn info(raw: &mut Frames) -> String {
    String::from_utf8(raw.request(&["INFO", "persistence"])).unwrap()
}

fn field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .to_string()
}

fn number(info: &str, name: &str) -> u64 {
    field(info, name)
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn engine_counters_move_in_info_and_on_the_metrics_endpoint() {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let tskv = TestServer::start(&[
        "--shards",
        "1",
        "--memtable-bytes",
        "65536",
        "--metrics-addr",
        &addr.to_string(),
    ]);
    let mut raw = Frames::connect(tskv.port());
    let before = info(&mut raw);
    for name in ["bloom_negatives", "write_stalls", "write_stall_us"] {
        assert_eq!(number(&before, name), 0, "{name} at start");
    }
    assert_eq!(field(&before, "block_cache_hit_ratio"), "0.0000");
    assert_eq!(number(&before, "pending_compaction_bytes"), 0);

    // Bloom filters: absent keys between present ones, after the present ones are in a
    // table; a present key read twice is a cache hit the second time.
    for i in 0..100 {
        assert_eq!(raw.request(&["SET", &format!("k{i:03}"), "v"]), b"+OK\r\n");
    }
    assert_eq!(raw.request(&["SAVE"]), b"+OK\r\n");
    for i in 0..200 {
        assert_eq!(raw.request(&["GET", &format!("k{i:03}x")]), b"$-1\r\n");
    }
    for _ in 0..2 {
        assert_eq!(raw.request(&["GET", "k042"]), b"$1\r\nv\r\n");
    }
    let after_reads = info(&mut raw);
    let negatives = number(&after_reads, "bloom_negatives");
    assert!(
        negatives >= 150,
        "most of 200 absent keys ruled out by the Bloom filter: {negatives}"
    );
    let ratio: f64 = field(&after_reads, "block_cache_hit_ratio")
        .parse()
        .unwrap();
    assert!(ratio > 0.0, "a block read twice is a hit: ratio {ratio}");

    // Write stalls: 40 pipelined writes of 60 KB, each about a memtable.
    let value = "s".repeat(60_000);
    let mut pipeline = Vec::new();
    for i in 0..40 {
        pipeline.extend_from_slice(&encode(&["SET", &format!("big:{i}"), &value]));
    }
    raw.writer.write_all(&pipeline).unwrap();
    for _ in 0..40 {
        assert_eq!(raw.frame(), b"+OK\r\n");
    }
    let after_writes = info(&mut raw);
    assert!(number(&after_writes, "write_stalls") > 0, "{after_writes}");
    assert!(
        number(&after_writes, "write_stall_us") > 0,
        "{after_writes}"
    );

    // Time-series samples held open in memory (logged to the WAL, not yet sealed).
    assert_eq!(number(&after_writes, "ts_open_samples"), 0);
    for ts in 1..=10 {
        let reply = raw.request(&["TS.ADD", "temp", &ts.to_string(), "20.5"]);
        assert_eq!(reply, format!(":{ts}\r\n").into_bytes());
    }
    assert_eq!(number(&info(&mut raw), "ts_open_samples"), 10);

    // Compaction: forty flushed memtables pile up in level 0 and are merged down.
    let deadline = Instant::now() + Duration::from_secs(120);
    let compacted = loop {
        let text = info(&mut raw);
        if number(&text, "compaction_read_bytes") > 0
            && number(&text, "compaction_written_bytes") > 0
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no compaction in 120 s: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let deeper: u64 = field(&compacted, "level_sstables")
        .split(',')
        .skip(1)
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert!(deeper > 0, "compaction wrote below level 0: {compacted}");

    // The same numbers on the Prometheus endpoint, read after INFO (so at least as high).
    let text = common::scrape_metrics(addr);
    let s = "{shard=\"0\"}";
    assert!(
        common::metrics_sample(&text, &format!("tskv_bloom_negatives_total{s}"))
            >= negatives as f64
    );
    assert!(common::metrics_sample(&text, &format!("tskv_write_stalls_total{s}")) > 0.0);
    assert_eq!(
        common::metrics_sample(&text, &format!("tskv_ts_open_samples{s}")),
        10.0
    );
    assert!(
        common::metrics_sample(&text, &format!("tskv_write_stall_microseconds_total{s}")) > 0.0
    );
    assert!(common::metrics_sample(&text, &format!("tskv_compaction_read_bytes_total{s}")) > 0.0);
    assert!(
        common::metrics_sample(&text, &format!("tskv_compaction_written_bytes_total{s}")) > 0.0
    );
    let level_tables: f64 = (1..7)
        .map(|level| {
            common::metrics_sample(
                &text,
                &format!("tskv_level_sstables{{shard=\"0\",level=\"{level}\"}}"),
            )
        })
        .sum();
    assert!(level_tables > 0.0, "deeper levels on /metrics");
    common::metrics_sample(&text, &format!("tskv_pending_compaction_bytes{s}"));
    assert_eq!(
        common::metrics_sample(&text, &format!("tskv_shard_writes_refused{s}")),
        0.0
    );
    assert!(common::metrics_sample(&text, &format!("tskv_last_save_timestamp_seconds{s}")) > 0.0);
}

/// A failed fdatasync poisons the shard: `tskv_shard_writes_refused` goes to 1 and
/// `INFO`'s `writes_refused` too, and the administration commands answer with the reason
/// instead of waiting for a flush that will not come (`SAVE`) or dropping keys
/// (`FLUSHALL`); `BGSAVE` too, and the keys stay readable.
#[test]
fn a_poisoned_shard_shows_on_both_endpoints_and_refuses_save_and_flushall() {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let launch = common::Launch {
        env: &[(tskv::fault::FDATASYNC_EIO_VAR, "0:3")],
        ..common::Launch::default()
    };
    let tskv = TestServer::start_with(
        &["--shards", "1", "--metrics-addr", &addr.to_string()],
        &launch,
    );
    let mut raw = Frames::connect(tskv.port());
    let refused = "{shard=\"0\"}";
    assert_eq!(
        common::metrics_sample(
            &common::scrape_metrics(addr),
            &format!("tskv_shard_writes_refused{refused}")
        ),
        0.0
    );
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let key = format!("k{i}");
        let reply = raw.request(&["SET", &key, "v"]);
        if reply != b"+OK\r\n" {
            assert!(reply.starts_with(b"-ERR"), "{reply:?}");
            break;
        }
        acknowledged.push(key);
    }
    assert!(!acknowledged.is_empty() && acknowledged.len() < 20);
    assert_eq!(
        common::metrics_sample(
            &common::scrape_metrics(addr),
            &format!("tskv_shard_writes_refused{refused}")
        ),
        1.0
    );
    assert_eq!(number(&info(&mut raw), "writes_refused"), 1);
    for command in [&["SAVE"][..], &["BGSAVE"], &["FLUSHALL"]] {
        let reply = String::from_utf8(raw.request(command)).unwrap();
        assert!(
            reply.starts_with("-ERR shard 0 refuses writes"),
            "{command:?}: {reply}"
        );
    }
    assert_eq!(
        raw.request(&["GET", &acknowledged[0]]),
        b"$1\r\nv\r\n",
        "FLUSHALL on a refusing shard dropped nothing"
    );
}
