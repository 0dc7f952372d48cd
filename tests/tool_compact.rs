//! Goal: `tskv-tool compact` merges a stopped server's data directory down (what the bytes
//! per sample of the time-series benchmark are measured after): it drops overwritten
//! values and deleted keys' tombstones, keeps every live key and series sample, and
//! refuses while a server holds the directory.
//!
//! Method: the real `tskv-server` with `--shards 2`; 3,000 keys written, overwritten and
//! half deleted, and a series of 2,000 samples (sealed into chunks as they arrive, each
//! unsealed entry leaving a tombstone). While the server runs, `compact` must fail naming
//! the lock. After a clean shutdown, `compact --json` must report fewer live SSTable bytes
//! than before, and a restarted server must serve every key and sample as before.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Reply, TestServer};

const TOOL: &str = env!("CARGO_BIN_EXE_tskv-tool");

fn tool(args: &[&str], dir: &Path) -> Output {
    let (before, after) = args.split_at(1);
    Command::new(TOOL)
        .args(before)
        .arg(dir)
        .args(after)
        .output()
        .expect("run tskv-tool")
}

#[test]
fn compact_drops_dead_entries_and_keeps_every_live_one() {
    let args = ["--shards", "2"];
    let mut server = TestServer::start(&args);
    let dir = server.data_dir().to_path_buf();
    let mut c = server.raw();
    for round in 0..2 {
        for i in 0..3000 {
            c.request(&["SET", &format!("key:{i}"), &format!("v{round}-{i:0>40}")]);
        }
    }
    for i in (0..3000).step_by(2) {
        c.request(&["DEL", &format!("key:{i}")]);
    }
    assert_eq!(c.request(&["TS.CREATE", "temp"]), Reply::ok());
    for ts in 0..2000 {
        c.request(&["TS.ADD", "temp", &ts.to_string(), &(ts % 17).to_string()]);
    }
    assert_eq!(c.request(&["SAVE"]), Reply::ok());
    let running = tool(&["compact"], &dir);
    assert!(!running.status.success(), "compact ran beside a server");
    let stderr = String::from_utf8_lossy(&running.stderr);
    assert!(stderr.contains("stop the server"), "{stderr}");
    drop(c);
    server.shutdown();

    let out = tool(&["compact", "--json"], &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let before: u64 = report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sstable_bytes_before"].as_u64().unwrap())
        .sum();
    let after = report["sstable_bytes"].as_u64().unwrap();
    assert!(
        after < before,
        "{after} bytes after, {before} before: {report}"
    );

    let server = TestServer::start_in(&dir, &args);
    let mut c = server.raw();
    for i in 0..3000 {
        let expected = match i % 2 {
            0 => Reply::Nil,
            _ => Reply::bulk(format!("v1-{i:0>40}")),
        };
        assert_eq!(
            c.request(&["GET", &format!("key:{i}")]),
            expected,
            "key:{i}"
        );
    }
    let Reply::Array(samples) = c.request(&["TS.RANGE", "temp", "-", "+"]) else {
        panic!("TS.RANGE is an array")
    };
    assert_eq!(samples.len(), 2000);
    assert_eq!(
        samples[1999],
        Reply::Array(vec![
            Reply::Int(1999),
            Reply::Status((1999 % 17).to_string())
        ])
    );
}
