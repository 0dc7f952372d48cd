//! Goal: `--pipeline-batch` pipelines as redis-benchmark's `-P` does (send P requests, wait
//! for all P replies, send the next P), while the default refills each slot as soon as its
//! reply arrives; that is what lets the two tools' figures be compared.
//!
//! Method: a fake RESP server on a free port accepts one connection, reads until it holds
//! 16 requests, answers exactly one of them, then counts the requests that arrive in the
//! next 300 ms. In batch mode none may arrive (15 replies are still missing); in window
//! mode the answered slot is refilled at once, so one more arrives.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_tskv-bench");

/// Requests arriving after one reply to a full pipeline of 16.
fn requests_after_one_reply(batch: bool) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut args = vec![
        "--port",
        &port,
        "--clients",
        "1",
        "--pipeline",
        "16",
        "--ratio",
        "0:1",
        "--keys",
        "10",
        "--duration",
        "2",
        "--quiet",
    ];
    if batch {
        args.push("--pipeline-batch");
    }
    let mut bench = Command::new(BENCH)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tskv-bench");
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let count = |bytes: &[u8]| bytes.windows(3).filter(|w| w == b"GET").count();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&received) < 16 && Instant::now() < deadline {
        if let Ok(n) = conn.read(&mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(
        count(&received),
        16,
        "the client did not fill its pipeline of 16"
    );
    conn.write_all(b"$-1\r\n").unwrap();
    let mut later = Vec::new();
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        if let Ok(n) = conn.read(&mut buf) {
            later.extend_from_slice(&buf[..n]);
        }
    }
    let _ = bench.kill();
    let _ = bench.wait();
    count(&later)
}

#[test]
fn batch_mode_waits_for_the_whole_pipeline() {
    assert_eq!(requests_after_one_reply(true), 0);
}

#[test]
fn window_mode_refills_each_answered_slot() {
    assert_eq!(requests_after_one_reply(false), 1);
}
