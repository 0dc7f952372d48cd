//! Goal: the profiling workflow in `perf/` works end to end on a real tskv workload: a
//! recording of a loaded `tskv-server` becomes a flamegraph SVG in which tskv's own
//! functions are named (symbols resolve, Rust names are demangled).
//!
//! Method: start `tskv-server` (this test's debug build: its symbols resolve like a
//! profiling build's, only slower code) on a free port, drive it with `redis-benchmark`
//! (SET and GET, pipelined), record ~3 s of it with `perf/record.sh --pid`, draw the SVG
//! with `perf/flamegraph.sh`, and look for `tskv::` frames in it.
//!
//! Skips loudly (a `SKIP:` line written straight to stderr, which libtest does not
//! capture) when the host cannot do this: `perf` or `redis-benchmark` missing, perf not
//! permitted (`perf_event_paranoid`, seccomp; the scripts exit 77 for that), or the
//! inferno tools absent. The test does not install inferno unless
//! `TSKV_PERF_TEST_INSTALL=1`: `cargo install inferno` compiles for one to two minutes on
//! two cores, which a test run should not spend by surprise; a CI that wants this test to
//! run installs the tools once beforehand (`perf/flamegraph.sh --ensure-tools`).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The exit status the `perf/` scripts use for "this host cannot do it".
const EXIT_UNAVAILABLE: i32 = 77;
const RECORD_SECONDS: &str = "3";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const BENCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes past libtest's output capture, so a skip is seen even in a passing run.
fn skip(reason: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIP: perf_flamegraph: {reason}; the profiling workflow was not tested"
    );
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs one of the `perf/` scripts, keeping its chatter for a skip or failure message.
fn run_script(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .expect("run a perf/ script")
}

fn unavailable(output: &Output) -> bool {
    output.status.code() == Some(EXIT_UNAVAILABLE)
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Kills the child when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server and returns it with the port from its ready line.
fn start_server(data_dir: &Path, stderr_path: &Path) -> (KillOnDrop, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tskv-server"))
        .args(["--port", "0", "--shards", "1", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(File::create(stderr_path).unwrap())
        .spawn()
        .expect("spawn tskv-server");
    let stdout = child.stdout.take().unwrap();
    let server = KillOnDrop(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            let log = std::fs::read_to_string(stderr_path).unwrap_or_default();
            panic!("tskv-server printed no ready line; its stderr:\n{log}")
        });
        if let Some(rest) = line.strip_prefix("ready: listening on ") {
            let address = rest.split(',').next().unwrap();
            let port = address.rsplit(':').next().unwrap().parse().unwrap();
            return (server, port);
        }
    }
}

fn wait_bounded(child: &mut KillOnDrop, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.0.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still running: the recording is what mattered; drop() ends it.
}

#[test]
fn flamegraph_of_loaded_server_names_tskv_functions() {
    let root = repo_root();
    if !on_path("perf") {
        return skip("perf is not installed");
    }
    if !on_path("redis-benchmark") {
        return skip("redis-benchmark is not installed (apt-get install redis-tools)");
    }
    let may_install = std::env::var("TSKV_PERF_TEST_INSTALL").is_ok_and(|v| v == "1");
    let tools = run_script(
        Command::new(root.join("perf/flamegraph.sh"))
            .arg("--ensure-tools")
            .env("TSKV_NO_INSTALL", if may_install { "0" } else { "1" }),
    );
    if unavailable(&tools) {
        return skip(if may_install {
            "inferno could not be installed (crates.io unreachable?)"
        } else {
            "inferno is not installed; run perf/flamegraph.sh --ensure-tools, or set \
             TSKV_PERF_TEST_INSTALL=1 to let this test install it"
        });
    }
    assert!(
        tools.status.success(),
        "perf/flamegraph.sh --ensure-tools failed:\n{}",
        stderr_of(&tools)
    );

    let tmp = tempfile::tempdir().unwrap();
    let (server, port) = start_server(&tmp.path().join("data"), &tmp.path().join("server.err"));
    let mut bench = KillOnDrop(
        Command::new("redis-benchmark")
            .args(["-p", &port.to_string()])
            .args(["-t", "set,get", "-n", "200000", "-P", "16", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-benchmark"),
    );

    let recording = tmp.path().join("perf.data");
    let record = run_script(
        Command::new(root.join("perf/record.sh"))
            .args(["--pid", &server.0.id().to_string()])
            .args(["--seconds", RECORD_SECONDS, "-o"])
            .arg(&recording),
    );
    if unavailable(&record) {
        return skip(&format!(
            "perf cannot record here (see perf/README.md):\n{}",
            stderr_of(&record)
        ));
    }
    assert!(
        record.status.success(),
        "perf/record.sh failed:\n{}",
        stderr_of(&record)
    );
    wait_bounded(&mut bench, BENCH_TIMEOUT);
    drop(bench);
    drop(server);

    let svg = tmp.path().join("server.svg");
    let draw = run_script(
        Command::new(root.join("perf/flamegraph.sh"))
            .arg("-i")
            .arg(&recording)
            .arg("-o")
            .arg(&svg),
    );
    if unavailable(&draw) {
        return skip(&format!(
            "perf/flamegraph.sh found a tool missing:\n{}",
            stderr_of(&draw)
        ));
    }
    assert!(
        draw.status.success(),
        "perf/flamegraph.sh failed:\n{}",
        stderr_of(&draw)
    );

    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<?xml"),
        "not an SVG: {}",
        &text[..text.len().min(200)]
    );
    let folded = std::fs::read_to_string(svg.with_extension("folded")).unwrap_or_default();
    assert!(
        text.contains("tskv::shard"),
        "no tskv::shard frame in the flamegraph; its first folded stacks:\n{}",
        folded.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    // Demangled and stripped of build hashes: no `_ZN` symbols, no `::h<16 hex>` suffixes.
    assert!(
        !text.contains("_ZN4tskv"),
        "tskv symbols were not demangled"
    );
}
