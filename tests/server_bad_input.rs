//! Goal: no byte sequence a client sends can crash the server, corrupt data or hurt other
//! clients; malformed requests get Redis's error wording, and protocol errors close only the
//! offending connection.
//!
//! Method: start the server with two shards and write sentinel keys; then, over raw TCP, send
//! one kind of bad input per test (random garbage, a negative multibulk count, a huge bulk
//! length, other malformed headers, a request cut off by a close, an inline line past the
//! limit, limits set by flags, 10,000 pipelined unknown commands) and check the exact replies
//! and whether the connection closes; after each, a separate connection must still get PONG
//! and read every sentinel key back.

mod common;

use std::io::Write;
use std::thread;

use common::{assert_serving, seed_keys, Reply, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn start(extra: &[&str]) -> (TestServer, Vec<(String, String)>) {
    let mut args = vec!["--shards", "2"];
    args.extend_from_slice(extra);
    let server = TestServer::start(&args);
    let sentinel = seed_keys(&server, "sentinel", 20);
    (server, sentinel)
}

/// Sends `bytes` on a new connection and returns every reply until the server closes it.
/// Write errors are ignored: the server may close before reading everything.
fn send_and_read_to_close(server: &TestServer, bytes: &[u8], half_close: bool) -> Vec<Reply> {
    let mut raw = server.raw();
    let _ = raw.send(bytes);
    if half_close {
        raw.shutdown_write();
    }
    raw.replies_until_closed()
}

/// Fails unless the server answered `bytes` with exactly the error `message` and then closed
/// the connection (without waiting for us to close ours).
fn assert_protocol_error(server: &TestServer, bytes: &[u8], message: &str) {
    let replies = send_and_read_to_close(server, bytes, false);
    assert_eq!(
        replies,
        vec![Reply::err(message)],
        "reply to {:?}",
        String::from_utf8_lossy(bytes)
    );
}

#[test]
fn random_garbage() {
    let (server, sentinel) = start(&[]);
    let mut rng = StdRng::seed_from_u64(common::test_seed());
    for round in 0..8 {
        let len = rng.gen_range(1..64 << 10);
        let garbage: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let replies = send_and_read_to_close(&server, &garbage, true);
        for reply in &replies {
            assert!(
                reply.is_error(),
                "round {round}: garbage got a non-error reply {reply:?}"
            );
        }
        assert_serving(&server, &sentinel);
    }
    // Garbage that is all CR, LF, spaces and zero bytes.
    let blanks: Vec<u8> = (0..50_000)
        .map(|i| [b'\r', b'\n', b' ', 0][i % 4])
        .collect();
    for reply in send_and_read_to_close(&server, &blanks, true) {
        assert!(
            reply.is_error(),
            "blank garbage got a non-error reply {reply:?}"
        );
    }
    assert_serving(&server, &sentinel);
}

#[test]
fn non_positive_multibulk_count_is_skipped() {
    let (server, sentinel) = start(&[]);
    let mut raw = server.raw();
    // Redis ignores `*-5` and `*0` without a reply and goes on with the next request.
    raw.send(b"*-5\r\n*0\r\n*1\r\n$4\r\nPING\r\n").unwrap();
    assert_eq!(
        raw.reply(),
        Reply::Status("PONG".into()),
        "only PING is answered"
    );
    assert_eq!(
        raw.request(&["GET", "sentinel:0"]),
        Reply::bulk("value-sentinel-0"),
        "same connection"
    );
    assert_serving(&server, &sentinel);
}

#[test]
fn huge_bulk_length_is_refused() {
    let (server, sentinel) = start(&[]);
    assert_protocol_error(
        &server,
        b"*2\r\n$3\r\nGET\r\n$3000000000\r\n",
        "ERR Protocol error: invalid bulk length",
    );
    assert_serving(&server, &sentinel);
}

#[test]
fn malformed_headers_are_refused() {
    let (server, sentinel) = start(&[]);
    let cases: [(&[u8], &str); 6] = [
        (
            b"*2\r\n$3\r\nGET\r\n$-1\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"*2\r\n$3\r\nGET\r\n$abc\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"*3000000000\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (b"*x\r\n", "ERR Protocol error: invalid multibulk length"),
        (
            b"*1\r\nxyz\r\n",
            "ERR Protocol error: expected '$', got 'x'",
        ),
        (
            b"SET \"abc\r\n",
            "ERR Protocol error: unbalanced quotes in request",
        ),
    ];
    for (bytes, message) in cases {
        assert_protocol_error(&server, bytes, message);
        assert_serving(&server, &sentinel);
    }
}

#[test]
fn request_cut_off_by_close() {
    let (server, sentinel) = start(&[]);
    let cut: [&[u8]; 5] = [
        b"*3\r\n$3\r\nSET\r\n$6\r\ntorn:1\r\n$5\r\nval",
        b"*3\r\n$3\r\nSET\r\n$6\r\ntorn:2\r\n$5\r\nvalue",
        b"*3\r\n$3\r\nSET\r\n$6\r\ntorn:3\r\n$5",
        b"*3\r\n$3\r\nSET\r\n$6\r\ntorn:4\r\n",
        b"SET torn:5 value",
    ];
    for bytes in cut {
        // Half-close: the server must close without answering the partial request.
        let replies = send_and_read_to_close(&server, bytes, true);
        assert_eq!(
            replies,
            vec![],
            "no reply to {:?}",
            String::from_utf8_lossy(bytes)
        );
        // Full close straight after sending.
        let mut raw = server.raw();
        let _ = raw.send(bytes);
        drop(raw);
        assert_serving(&server, &sentinel);
    }
    let mut raw = server.raw();
    for i in 1..=5 {
        assert_eq!(
            raw.request(&["GET", &format!("torn:{i}")]),
            Reply::Nil,
            "torn:{i} was never written"
        );
    }
}

#[test]
fn inline_line_past_the_limit() {
    let (server, sentinel) = start(&[]);
    // Default limit 64 KiB: 70,000 bytes with no line end.
    assert_protocol_error(
        &server,
        &vec![b'a'; 70_000],
        "ERR Protocol error: too big inline request",
    );
    assert_serving(&server, &sentinel);
}

#[test]
fn limits_set_by_flags() {
    let (server, sentinel) = start(&[
        "--max-bulk-bytes",
        "1024",
        "--max-array-len",
        "16",
        "--max-inline-bytes",
        "1024",
    ]);
    let mut raw = server.raw();

    // At the limits: accepted.
    let value = "v".repeat(1024);
    assert_eq!(
        raw.request(&["SET", "at-limit", &value]),
        Reply::ok(),
        "1024-byte bulk"
    );
    let mut mget = vec!["MGET".to_string()];
    mget.extend((0..15).map(|i| format!("sentinel:{i}")));
    let Reply::Array(items) = raw.request(&mget) else {
        panic!("MGET with a 16-element request answers an array");
    };
    assert_eq!(items.len(), 15);
    let inline = format!("ECHO {}\r\n", "b".repeat(1000));
    raw.send(inline.as_bytes()).unwrap();
    assert_eq!(
        raw.reply(),
        Reply::bulk("b".repeat(1000)),
        "1005-byte inline line"
    );

    // Past them: refused, connection closed.
    let over = format!(
        "*3\r\n$3\r\nSET\r\n$4\r\nover\r\n$1025\r\n{}\r\n",
        "v".repeat(1025)
    );
    assert_protocol_error(
        &server,
        over.as_bytes(),
        "ERR Protocol error: invalid bulk length",
    );
    let mut mget = vec!["MGET".to_string()];
    mget.extend((0..16).map(|i| format!("sentinel:{i}")));
    assert_protocol_error(
        &server,
        &common::encode(&mget),
        "ERR Protocol error: invalid multibulk length",
    );
    assert_protocol_error(
        &server,
        &vec![b'a'; 2000],
        "ERR Protocol error: too big inline request",
    );

    assert_eq!(
        raw.request(&["GET", "over"]),
        Reply::Nil,
        "the refused SET wrote nothing"
    );
    assert_eq!(raw.request(&["GET", "at-limit"]), Reply::bulk(&value));
    assert_serving(&server, &sentinel);
}

#[test]
fn ten_thousand_pipelined_unknown_commands() {
    let (server, sentinel) = start(&[]);
    const COUNT: usize = 10_000;
    let mut wire = Vec::new();
    for i in 0..COUNT {
        if i % 2 == 0 {
            wire.extend_from_slice(b"*2\r\n$3\r\nFOO\r\n$1\r\na\r\n");
        } else {
            wire.extend_from_slice(b"FOO a\r\n");
        }
    }
    let mut raw = server.raw();
    let mut writer = raw.writer_clone();
    let sender = thread::spawn(move || writer.write_all(&wire));
    let want = Reply::err("ERR unknown command 'FOO', with args beginning with: 'a' ");
    for i in 0..COUNT {
        assert_eq!(raw.reply(), want, "reply {i}");
    }
    sender.join().unwrap().expect("write the pipeline");
    assert_eq!(
        raw.request(&["PING"]),
        Reply::Status("PONG".into()),
        "connection still usable"
    );
    assert_serving(&server, &sentinel);
}
