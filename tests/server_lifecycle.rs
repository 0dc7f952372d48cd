//! Goal: the server starts, announces itself and stops as documented: one ready line on stdout;
//! SHUTDOWN, SIGTERM and SIGINT end it with exit status 0 after finishing in-flight writes, so
//! every acknowledged write is there after a restart; a second server on the same data
//! directory is refused because of the lock, and a restart with another `--shards` is refused;
//! `--help` lists every flag.
//!
//! Method: run the real binary in a temporary data directory, write keys (some while the stop
//! arrives, from a pipelining writer thread that records which writes were acknowledged), stop
//! it each way, check the exit status, restart on the same directory and read the keys back.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::thread;

use common::{encode, run_server_to_exit, seed_keys, Reply, TestServer};

const ARGS: &[&str] = &["--shards", "2"];

#[test]
fn ready_line_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), ARGS);
    let expected = format!(
        "ready: listening on 127.0.0.1:{}, 2 shards, data in {}",
        server.port(),
        dir.path().display()
    );
    assert_eq!(server.ready_line(), expected);
    assert_ne!(
        server.port(),
        0,
        "--port 0 reports the port the kernel chose"
    );
}

#[test]
fn shutdown_command_exits_zero_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path(), ARGS);
    let keys = seed_keys(&server, "shutdown", 200);

    let mut raw = server.raw();
    raw.send(&encode(&["SHUTDOWN"])).unwrap();
    // Redis answers a successful SHUTDOWN by closing the connection, without a reply.
    let replies = raw.replies_until_closed();
    assert!(
        replies.iter().all(|r| !r.is_error()),
        "SHUTDOWN was refused: {replies:?}"
    );
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status after SHUTDOWN");

    let server = TestServer::start_in(dir.path(), ARGS);
    common::assert_serving(&server, &keys);
}

#[test]
fn sigterm_under_write_load_exits_zero_and_keeps_acknowledged_writes() {
    stop_under_write_load("TERM");
}

#[test]
fn sigint_under_write_load_exits_zero_and_keeps_acknowledged_writes() {
    stop_under_write_load("INT");
}

/// Writes keys from a pipelining thread, stops the server with `signal` once a few thousand
/// writes were acknowledged, and checks the exit status and every acknowledged write.
fn stop_under_write_load(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path(), ARGS);
    let keys = seed_keys(&server, "before", 100);

    let mut raw = server.raw();
    let (acked_tx, acked_rx) = std::sync::mpsc::channel::<usize>();
    let writer = thread::spawn(move || {
        // Batches of 32 pipelined SETs; the key written by SET i is `load:i` with value `i`.
        let mut acked: HashMap<String, String> = HashMap::new();
        let mut next = 0usize;
        loop {
            let batch: Vec<usize> = (next..next + 32).collect();
            next += 32;
            let mut wire = Vec::new();
            for i in &batch {
                wire.extend_from_slice(&encode(&["SET", &format!("load:{i}"), &i.to_string()]));
            }
            if raw.send(&wire).is_err() {
                return acked;
            }
            for i in batch {
                match raw.try_reply() {
                    Ok(Some(Reply::Status(s))) if s == "OK" => {
                        acked.insert(format!("load:{i}"), i.to_string());
                        let _ = acked_tx.send(acked.len());
                    }
                    // A write refused because the server is stopping is not acknowledged.
                    Ok(Some(Reply::Error(_))) => {}
                    Ok(Some(other)) => panic!("SET load:{i} answered {other:?}"),
                    Ok(None) | Err(_) => return acked,
                }
            }
        }
    });

    // Stop once 2,000 writes were acknowledged; writes keep arriving while the server stops.
    loop {
        match acked_rx.recv_timeout(common::IO_TIMEOUT) {
            Ok(n) if n >= 2_000 => break,
            Ok(_) => {}
            Err(e) => panic!("the writer stopped before 2,000 acknowledged writes: {e}"),
        }
    }
    server.signal(signal);
    let status = server.wait_exit();
    let acked = writer.join().expect("writer thread");
    assert_eq!(status.code(), Some(0), "exit status after SIG{signal}");
    assert!(acked.len() >= 2_000);

    let server = TestServer::start_in(dir.path(), ARGS);
    common::assert_serving(&server, &keys);
    let mut raw = server.raw();
    for (key, value) in &acked {
        assert_eq!(
            raw.request(&["GET", key]),
            Reply::bulk(value),
            "acknowledged {key} after SIG{signal}"
        );
    }
}

#[test]
fn second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), ARGS);
    let keys = seed_keys(&server, "locked", 50);

    let data_dir = dir.path().to_str().unwrap();
    let second = run_server_to_exit(&[
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        data_dir,
        "--shards",
        "2",
    ]);
    assert!(
        !second.status.success(),
        "the second server must fail, got {}",
        second.status
    );
    assert!(
        !second.stdout.contains("ready:"),
        "the second server must not announce itself: {:?}",
        second.stdout
    );
    let said = format!("{}{}", second.stdout, second.stderr).to_lowercase();
    assert!(
        said.contains("lock"),
        "the refusal mentions the lock:\n{said}"
    );

    common::assert_serving(&server, &keys);
}

#[test]
fn restart_with_another_shard_count_is_refused() {
    // Keys are hashed to shards, so reopening with another count would hide data.
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path(), ARGS);
    let keys = seed_keys(&server, "shards", 50);
    assert_eq!(server.shutdown().code(), Some(0));

    let data_dir = dir.path().to_str().unwrap();
    let other = run_server_to_exit(&["--port", "0", "--data-dir", data_dir, "--shards", "3"]);
    assert!(
        !other.status.success(),
        "--shards 3 on a 2-shard directory must fail"
    );
    assert!(
        !other.stdout.contains("ready:"),
        "and must not announce itself: {:?}",
        other.stdout
    );
    assert!(
        other.stderr.contains("--shards 2"),
        "the refusal names the shard count to use:\n{}",
        other.stderr
    );

    let server = TestServer::start_in(dir.path(), ARGS);
    common::assert_serving(&server, &keys);
}

#[test]
fn restart_after_clean_shutdown_twice() {
    // Data written across two lifetimes, stopped cleanly each time, survives both.
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for life in 0..3 {
        let mut server = TestServer::start_in(dir.path(), ARGS);
        common::assert_serving(&server, &all);
        all.extend(seed_keys(&server, &format!("life{life}"), 100));
        assert_eq!(
            server.shutdown().code(),
            Some(0),
            "exit status after SIGTERM in life {life}"
        );
    }
    assert!(
        !is_empty_dir(dir.path()),
        "the data directory holds the data"
    );
}

#[test]
fn help_lists_every_flag() {
    let help = run_server_to_exit(&["--help"]);
    assert!(
        help.status.success(),
        "--help exits 0: {}\n{}",
        help.status,
        help.stderr
    );
    for flag in [
        "--bind",
        "--port",
        "--data-dir",
        "--shards",
        "--fsync",
        "--fsync-period-ms",
        "--memtable-bytes",
        "--max-bulk-bytes",
        "--max-array-len",
        "--max-inline-bytes",
        "--client-output-bytes-max",
        "--wal-segment-bytes",
        "--max-clients-per-shard",
        "--shard-queue-len",
    ] {
        assert!(
            help.stdout.contains(flag),
            "--help mentions {flag}:\n{}",
            help.stdout
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let bad = run_server_to_exit(&[
        "--port",
        "0",
        "--data-dir",
        data_dir,
        "--fsync",
        "sometimes",
    ]);
    assert!(!bad.status.success(), "an invalid --fsync value is refused");
    assert!(
        !bad.stdout.contains("ready:"),
        "and the server does not start"
    );
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}
