//! Goal: start-up flags are checked before anything starts. A value out of its range
//! (`--shards 0`, `--memtable-bytes 0`, a tiny `--wal-segment-bytes`, a zero period, limit or
//! queue length) is refused with an error naming the flag and the valid range; a shard count
//! whose cross-shard queues would not fit in memory is refused naming both flags involved;
//! sizes accept unit suffixes (`1MiB`, `256k`, `16mb`); `--bind` accepts a host name; and a
//! start on an existing data directory without `--shards` uses the count recorded there.
//! (Before the fix zeros were silently raised to a minimum or accepted, suffixes and host
//! names were parse errors, and a restart without `--shards` used the core count and was
//! refused when it differed.)
//!
//! Method: run the real binary with each bad value and expect it to exit by itself, non-zero,
//! without the ready line; start servers with suffixed sizes, `--bind localhost`, and
//! without `--shards` on a directory made with more shards than this machine has cores, and
//! check what INFO and the ready line report.

mod common;

use common::{run_server_to_exit, seed_keys, Launch, Reply, TestServer};

/// Runs the server with `flag value` and checks it is refused naming the flag and `range`.
fn assert_refused(flag: &str, value: &str, range: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let run = run_server_to_exit(&["--port", "0", "--data-dir", data_dir, flag, value]);
    assert!(
        !run.status.success(),
        "{flag} {value} must be refused, got {}",
        run.status
    );
    assert!(
        !run.stdout.contains("ready:"),
        "{flag} {value}: the server must not start: {:?}",
        run.stdout
    );
    assert!(
        run.stderr.contains(flag) && run.stderr.contains(range),
        "{flag} {value}: the error names the flag and {range:?}:\n{}",
        run.stderr
    );
}

#[test]
fn out_of_range_values_are_refused_naming_the_flag_and_the_range() {
    // `--shards 0` first: before the fix it started a server, and `--shards 5000` would try to
    // allocate the cross-shard queues of 5000 shards.
    for (flag, value, range) in [
        ("--shards", "0", "between 1 and 1024"),
        ("--shards", "5000", "between 1 and 1024"),
        ("--memtable-bytes", "0", "between 65536 (64 KiB) and"),
        ("--wal-segment-bytes", "10", "between 65536 (64 KiB) and"),
        ("--fsync-period-ms", "0", "between 1 and 3600000"),
        ("--max-clients-per-shard", "0", "between 1 and 1000000"),
        ("--shard-queue-len", "0", "between 1 and 1048576"),
        ("--conn-reads-per-iteration-max", "0", "between 1 and 1024"),
        ("--max-bulk-bytes", "0", "between 1 and"),
        ("--memtable-bytes", "12parsecs", "unknown size unit"),
    ] {
        assert_refused(flag, value, range);
    }
}

#[test]
fn a_shard_count_whose_queues_exceed_memory_is_refused() {
    // 1024 shards with 1,048,576-message queues: 2^20 × 2^21 messages, far beyond any machine.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let run = run_server_to_exit(&[
        "--port",
        "0",
        "--data-dir",
        data_dir,
        "--shards",
        "1024",
        "--shard-queue-len",
        "1048576",
    ]);
    assert!(!run.status.success(), "must be refused, got {}", run.status);
    assert!(!run.stdout.contains("ready:"), "{:?}", run.stdout);
    assert!(
        run.stderr.contains("--shards 1024") && run.stderr.contains("--shard-queue-len"),
        "the error names both flags:\n{}",
        run.stderr
    );
}

fn info(server: &TestServer) -> String {
    match server.raw().request(&["INFO"]) {
        Reply::Bulk(bytes) => String::from_utf8(bytes).unwrap(),
        other => panic!("INFO answered {other:?}"),
    }
}

#[test]
fn sizes_take_unit_suffixes() {
    let server = TestServer::start(&[
        "--shards",
        "1",
        "--memtable-bytes",
        "1MiB",
        "--wal-segment-bytes",
        "256k",
        "--client-output-bytes-max",
        "16mb",
    ]);
    let keys = seed_keys(&server, "suffix", 20);
    common::assert_serving(&server, &keys);
    let info = info(&server);
    assert!(
        info.contains("client_output_bytes_max:16777216\r\n"),
        "16mb is 16 × 1024 × 1024 bytes, as in redis.conf:\n{info}"
    );
}

#[test]
fn bind_accepts_a_host_name() {
    let launch = Launch {
        bind: Some("localhost"),
        ..Launch::default()
    };
    let server = TestServer::start_with(&["--shards", "1"], &launch);
    assert!(
        server.addr().ip().is_loopback(),
        "localhost resolves to a loopback address: {}",
        server.ready_line()
    );
    common::assert_serving(&server, &[]);
}

#[test]
fn restart_without_shards_uses_the_recorded_count() {
    // One more shard than cores, so the default (the core count) would differ.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = (cores + 1).to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path(), &["--shards", &shards]);
    let keys = seed_keys(&server, "recorded", 50);
    assert_eq!(server.shutdown().code(), Some(0));

    let server = TestServer::start_in(dir.path(), &[]);
    assert_eq!(
        server.ready().shards,
        cores + 1,
        "the count recorded in TSKV: {}",
        server.ready_line()
    );
    common::assert_serving(&server, &keys);
}
