//! Goal: a client that pipelines requests whose replies far exceed `--client-output-bytes-max`
//! and does not read them stalls only itself: the server stops reading that connection
//! instead of buffering every reply, keeps serving other connections, and once the client
//! reads, every reply arrives whole and in order.
//!
//! Method: start the server with two shards and a 1 MiB output cap; store a 256 KiB value;
//! on one connection send 800 GETs of it (200 MiB of replies) and read nothing for a while.
//! Meanwhile another connection must get PONG and read and write keys, and the server's
//! resident memory (VmRSS, sampled while the replies are unread) must stay far below the
//! 200 MiB it would need to buffer them. Then read all 800 replies and check each.

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::{encode, Reply, TestServer};

const VALUE_BYTES: usize = 256 << 10;
const GET_COUNT: usize = 800;
/// Far below the 200 MiB of unread replies, far above what a server holding a 1 MiB output
/// cap per connection needs.
const RSS_BYTES_MAX: u64 = 100 << 20;

fn rss_bytes(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

#[test]
fn unread_replies_stall_only_their_connection() {
    let server = TestServer::start(&["--shards", "2", "--client-output-bytes-max", "1048576"]);
    let value: Vec<u8> = (0..VALUE_BYTES).map(|i| (i % 253) as u8).collect();
    assert_eq!(
        server.raw().request(&[b"SET".as_slice(), b"big", &value]),
        Reply::ok()
    );

    let mut slow = server.raw();
    let mut writer = slow.writer_clone();
    let sender = thread::spawn(move || {
        let request = encode(&["GET", "big"]);
        for _ in 0..GET_COUNT {
            writer.write_all(&request)?;
        }
        Ok::<(), std::io::Error>(())
    });

    // While `slow` reads nothing: other connections are served, and memory stays bounded.
    let mut rss_max = 0;
    for i in 0..20 {
        let mut other = server.raw();
        assert_eq!(
            other.request(&["PING"]),
            Reply::Status("PONG".into()),
            "PING {i} while a client stalls"
        );
        let key = format!("during:{i}");
        assert_eq!(other.request(&["SET", &key, "v"]), Reply::ok());
        assert_eq!(other.request(&["GET", &key]), Reply::bulk("v"));
        rss_max = rss_max.max(rss_bytes(server.pid()));
        // Give the server time to fill its buffers, were it not applying backpressure.
        thread::sleep(Duration::from_millis(25));
    }
    assert!(
        rss_max < RSS_BYTES_MAX,
        "server resident memory reached {} MiB with 200 MiB of replies unread: replies are being \
         buffered past --client-output-bytes-max",
        rss_max >> 20
    );

    for i in 0..GET_COUNT {
        match slow.reply() {
            Reply::Bulk(b) if b == value => {}
            other => panic!("reply {i} to GET big: {:?}", truncate(&other)),
        }
    }
    sender.join().unwrap().expect("send the GETs");
    assert_eq!(
        slow.request(&["PING"]),
        Reply::Status("PONG".into()),
        "the slow connection works on"
    );
}

fn truncate(reply: &Reply) -> String {
    let text = format!("{reply:?}");
    text.chars().take(200).collect()
}

/// An `MGET` whose reply alone is larger than `--client-output-bytes-max` gets a clear
/// error instead of being built whole (values on both shards, so parts arrive remotely
/// too), the connection stays usable, and a smaller `MGET` still works.
#[test]
fn one_reply_larger_than_the_output_limit_is_refused_not_built() {
    let server = TestServer::start(&["--shards", "2", "--client-output-bytes-max", "1MiB"]);
    let mut raw = server.raw();
    let value = "v".repeat(100 << 10);
    let keys: Vec<String> = (0..30).map(|i| format!("big:{i}")).collect();
    for key in &keys {
        assert_eq!(raw.request(&["SET", key, &value]), Reply::ok());
    }
    let mut mget = vec!["MGET".to_string()];
    mget.extend(keys.iter().cloned());
    match raw.request(&mget) {
        Reply::Error(message) => assert!(
            message.starts_with("ERR reply exceeds the client output limit of 1048576 bytes"),
            "{message}"
        ),
        other => panic!("30 × 100 KiB against a 1 MiB limit: {}", truncate(&other)),
    }
    assert_eq!(raw.request(&["PING"]), Reply::Status("PONG".into()));
    match raw.request(&["MGET", "big:0", "big:1", "big:2"]) {
        Reply::Array(values) => assert_eq!(values.len(), 3),
        other => panic!("{}", truncate(&other)),
    }
}
