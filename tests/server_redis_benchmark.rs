//! Goal: the stock `redis-benchmark` runs against tskv from start to end without a single error,
//! so every figure it reports is a real one. It asserts correctness only, never speed.
//!
//! Method: start the server with two shards and its default durability (`--fsync always`), run
//! `redis-benchmark -p PORT -t set,get,ping -n 100000 -c 50 -P 16 -q` (since Redis 7 it prints
//! `Error from server: ...` and exits non-zero at the first error reply), and require exit
//! status 0, no line mentioning an error or a warning (it warns when `CONFIG GET save` /
//! `appendonly` fail), one
//! "requests per second" line for each of PING_INLINE, PING_MBULK, SET and GET, and afterwards
//! the key it wrote. `redis-benchmark` comes from the `redis-tools` package, which `.ci/run`
//! installs; without it the test fails and says so.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_timeout, Reply, TestServer};

/// Only turns a hung benchmark into a failure; a normal run takes a small fraction of it.
const BENCHMARK_TIMEOUT: Duration = Duration::from_secs(600);

#[test]
fn redis_benchmark_runs_without_errors() {
    let found = Command::new("redis-benchmark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(found, Ok(status) if status.success()),
        "redis-benchmark is not on PATH: install the redis-tools package (.ci/run does: apt-get install redis-tools)"
    );

    let server = TestServer::start(&["--shards", "2"]);
    let log_dir = tempfile::tempdir().unwrap();
    let out_path = log_dir.path().join("stdout");
    let err_path = log_dir.path().join("stderr");
    let port = server.port().to_string();
    let args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "set,get,ping",
        "-n",
        "100000",
        "-c",
        "50",
        "-P",
        "16",
        "-q",
    ];
    let mut child = Command::new("redis-benchmark")
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn redis-benchmark");
    let status = wait_timeout(&mut child, BENCHMARK_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let report =
        format!("redis-benchmark {args:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    let status = status.unwrap_or_else(|| panic!("redis-benchmark did not finish\n{report}"));
    assert!(
        status.success(),
        "redis-benchmark exited with {status}\n{report}"
    );

    // `-q` prints progress with carriage returns; the last segment of each line is the result.
    let lines: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter_map(|l| l.rsplit('\r').map(str::trim).find(|s| !s.is_empty()))
        .collect();
    let bad: Vec<&&str> = lines
        .iter()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("warning") || l.contains("err ")
        })
        .collect();
    assert!(
        bad.is_empty(),
        "redis-benchmark reported problems: {bad:?}\n{report}"
    );
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second")),
            "a result line for {test}\n{report}"
        );
    }

    // Without -r, redis-benchmark's SET writes the literal key, with its default 3-byte value.
    let mut raw = server.raw();
    let value = raw.request(&["GET", "key:__rand_int__"]);
    assert!(
        matches!(&value, Reply::Bulk(v) if v.len() == 3),
        "the key SET wrote: {value:?}"
    );
    assert_eq!(raw.request(&["PING"]), Reply::Status("PONG".into()));
}
