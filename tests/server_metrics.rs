//! Goal: the server reports what it does, in the formats monitoring already reads:
//! `INFO commandstats` and `INFO latencystats` as Redis 7.0 prints them (a command that had
//! to wait for its SSTable blocks counts once), and a Prometheus endpoint with per-command
//! calls and latency summaries, WAL fdatasync latency and group-commit batch sizes.
//!
//! Method: run commands through a real server and read the counters back; compare the
//! field names of a `cmdstat_` and a `latency_percentiles_usec_` line with a real
//! redis-server's; fetch `/metrics` over plain HTTP and check every sample line parses.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::redis_server::RedisServer;
use common::{RawConn, Reply, TestServer};

fn info(conn: &mut RawConn, section: &str) -> String {
    match conn.request(&["INFO", section]) {
        Reply::Bulk(text) => String::from_utf8(text).unwrap(),
        other => panic!("INFO {section}: {other:?}"),
    }
}

/// The `key=value` fields of the line starting with `prefix:`.
fn fields(text: &str, prefix: &str) -> Vec<(String, String)> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{prefix}:")))
        .unwrap_or_else(|| panic!("no {prefix} line in:\n{text}"));
    line.split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn field(text: &str, prefix: &str, name: &str) -> String {
    fields(text, prefix)
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
        .unwrap_or_else(|| panic!("no {name} in {prefix}"))
}

/// The number on line `name:N`.
fn field_line(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

fn session(conn: &mut RawConn) {
    for i in 0..5 {
        assert_eq!(conn.request(&["SET", &format!("k{i}"), "v"]), Reply::ok());
    }
    assert_eq!(conn.request(&["GET", "k1"]), Reply::bulk("v"));
    assert!(conn.request(&["GET"]).is_error());
}

#[test]
fn commandstats_and_latencystats_have_redis_fields() {
    let redis = RedisServer::start_with(&["--latency-tracking", "yes"]);
    let mut theirs = RawConn::connect(SocketAddr::from(([127, 0, 0, 1], redis.port)));
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut ours = tskv.raw();
    session(&mut theirs);
    session(&mut ours);

    let (mine, redis_text) = (
        info(&mut ours, "commandstats"),
        info(&mut theirs, "commandstats"),
    );
    let names = |text: &str, prefix: &str| -> Vec<String> {
        fields(text, prefix).into_iter().map(|(k, _)| k).collect()
    };
    let mut expected = names(&redis_text, "cmdstat_set");
    expected.retain(|k| k != "failed_calls"); // not tracked by tskv, see README
    assert_eq!(names(&mine, "cmdstat_set"), expected);
    assert_eq!(field(&mine, "cmdstat_set", "calls"), "5");
    assert_eq!(field(&mine, "cmdstat_get", "calls"), "1");
    assert_eq!(field(&mine, "cmdstat_get", "rejected_calls"), "1");
    assert_eq!(
        field(&mine, "cmdstat_get", "rejected_calls"),
        field(&redis_text, "cmdstat_get", "rejected_calls")
    );

    let (mine, redis_text) = (
        info(&mut ours, "latencystats"),
        info(&mut theirs, "latencystats"),
    );
    assert_eq!(
        names(&mine, "latency_percentiles_usec_set"),
        names(&redis_text, "latency_percentiles_usec_set")
    );
    for (_, value) in fields(&mine, "latency_percentiles_usec_set") {
        let us: f64 = value.parse().unwrap();
        assert!(us >= 1.0, "a latency below the histogram's floor: {us}");
    }
    // Neither section is in the default INFO, as in Redis.
    let default = info(&mut ours, "default");
    assert!(!default.contains("cmdstat_") && !default.contains("latency_percentiles"));
}

#[test]
fn a_get_that_waited_for_its_block_counts_once() {
    let data = tempfile::tempdir().unwrap();
    let args = ["--shards", "1", "--memtable-bytes", "64KiB"];
    let mut server = TestServer::start_in(data.path(), &args);
    let mut conn = server.raw();
    let value = "x".repeat(1000);
    for i in 0..400 {
        assert_eq!(
            conn.request(&["SET", &format!("key:{i:04}"), &value]),
            Reply::ok()
        );
    }
    // Wait until a flush made SSTables, then restart with an empty block cache.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while field_line(&info(&mut conn, "persistence"), "flushes") == 0 {
        assert!(std::time::Instant::now() < deadline, "no memtable flush");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.shutdown();
    let server = TestServer::start_in(data.path(), &args);
    let mut conn = server.raw();
    assert_eq!(conn.request(&["GET", "key:0001"]), Reply::bulk(&value));
    let persistence = info(&mut conn, "persistence");
    assert!(
        field_line(&persistence, "block_reads_async") > 0,
        "the GET did not read its block through the ring:\n{persistence}"
    );
    assert_eq!(
        field(&info(&mut conn, "commandstats"), "cmdstat_get", "calls"),
        "1"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: tskv\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn prometheus_endpoint_serves_every_family() {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let server = TestServer::start(&["--shards", "2", "--metrics-addr", &addr.to_string()]);
    let mut conn = server.raw();
    session(&mut conn);

    let response = http_get(addr, "/metrics");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "not a number in {line}");
        assert!(
            series.starts_with("tskv_") && series.chars().all(|c| c.is_ascii_graphic()),
            "bad series {series}"
        );
    }
    assert!(
        body.contains("tskv_command_calls_total{command=\"set\"} 5\n"),
        "{body}"
    );
    assert!(
        body.contains("tskv_command_rejected_total{command=\"get\"} 1\n"),
        "{body}"
    );
    assert!(body.contains("tskv_command_duration_seconds{command=\"set\",quantile=\"0.99\"}"));
    assert!(body.contains("tskv_command_duration_seconds_count{command=\"set\"} 5\n"));
    let fsyncs: f64 = body
        .lines()
        .filter_map(|l| l.strip_prefix("tskv_wal_fsyncs_total{shard=\""))
        .map(|rest| rest.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert!(fsyncs >= 1.0, "no WAL fdatasync counted:\n{body}");
    assert!(body.contains("tskv_wal_sync_duration_seconds{shard=\"0\",quantile=\"0.5\"}"));
    assert!(body.contains("# TYPE tskv_wal_batch_bytes summary"));
    assert!(http_get(addr, "/other").contains(" 404 "));
}
