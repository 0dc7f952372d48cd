//! Goal: who may use the server is under the operator's control, as with Redis:
//! `--requirepass` (every command but AUTH/HELLO/QUIT answers `-NOAUTH` until the client
//! gives the password), protected mode (no public bind without a password unless asked),
//! a global `--maxclients`, an idle `--timeout`, and running out of file descriptors
//! refuses clients with an error instead of leaving them hanging.
//!
//! Method: the same request sequences against tskv and a real redis-server started with
//! the same password, comparing every reply; start-up refusals through the real binary;
//! connection limits with raw sockets, waiting for each reply or close with a generous
//! timeout (never asserting how long anything took).

mod common;

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::redis_server::RedisServer;
use common::{run_server_to_exit, server_bin, Launch, RawConn, Reply, TestServer};

const PASSWORD: &str = "s3cret";

/// Requests whose replies must match Redis's, in order, on one connection.
fn auth_session() -> Vec<Vec<&'static str>> {
    vec![
        vec!["GET", "k"],
        vec!["SET", "k", "v"],
        vec!["CONFIG", "GET", "maxmemory"],
        vec!["DBSIZE"],
        vec!["NOSUCHCOMMAND"],
        vec!["GET"],
        vec!["AUTH", "wrong"],
        vec!["AUTH", "someone", PASSWORD],
        vec!["GET", "k"],
        vec!["HELLO", "2"],
        vec!["HELLO", "2", "AUTH", "default", "wrong"],
        vec!["AUTH", PASSWORD],
        vec!["SET", "k", "v"],
        vec!["GET", "k"],
        vec!["AUTH", "default", PASSWORD],
        vec!["AUTH", "default", "wrong"],
        // A failed AUTH does not take back an earlier success (as Redis).
        vec!["GET", "k"],
    ]
}

fn run_session(addr: SocketAddr, session: &[Vec<&str>]) -> Vec<Reply> {
    let mut conn = RawConn::connect(addr);
    session
        .iter()
        .map(|request| conn.request(request))
        .collect()
}

#[test]
fn requirepass_answers_exactly_as_redis() {
    let redis = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let tskv = TestServer::start(&["--shards", "2", "--requirepass", PASSWORD]);
    let session = auth_session();
    let expected = run_session(SocketAddr::from(([127, 0, 0, 1], redis.port)), &session);
    let got = run_session(tskv.addr(), &session);
    for ((request, want), got) in session.iter().zip(&expected).zip(&got) {
        assert_eq!(got, want, "reply to {request:?}");
    }
    // The gate held: the first SET was refused, so Redis and tskv agree on it too.
    assert_eq!(
        expected[1],
        Reply::Error("NOAUTH Authentication required.".into())
    );
}

#[test]
fn hello_authenticates_and_switches_protocol_in_one_step() {
    let tskv = TestServer::start(&["--shards", "1", "--requirepass", PASSWORD]);
    let mut conn = tskv.raw();
    let refused = conn.request(&["HELLO", "3"]);
    let Reply::Error(text) = refused else {
        panic!("HELLO 3 without AUTH was not refused: {refused:?}")
    };
    assert!(text.starts_with("NOAUTH HELLO must be called"), "{text}");
    // Still RESP2 and still unauthenticated.
    assert_eq!(
        conn.request(&["GET", "k"]),
        Reply::Error("NOAUTH Authentication required.".into())
    );
    let mut raw = TcpStream::connect(tskv.addr()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // Inline commands: HELLO 3 with the password, then a write and a read in RESP3.
    raw.write_all(b"HELLO 3 AUTH default s3cret\r\nSET k v\r\nGET k\r\n")
        .unwrap();
    let text = read_until(&mut raw, b"$1\r\nv\r\n");
    assert!(
        text.starts_with("%7\r\n"),
        "HELLO 3 reply is not a map: {text}"
    );
    assert!(text.contains("+OK\r\n"), "{text}");
}

fn read_until(stream: &mut TcpStream, end: &[u8]) -> String {
    use std::io::Read;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(end) {
        let n = stream.read(&mut buf).expect("a reply within the timeout");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn auth_without_a_password_configured_is_refused_as_in_redis() {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "1"]);
    let session = vec![
        vec!["AUTH", "anything"],
        vec!["AUTH", "default", "anything"],
        vec!["AUTH", "bob", "anything"],
        vec!["SET", "k", "v"],
    ];
    let expected = run_session(SocketAddr::from(([127, 0, 0, 1], redis.port)), &session);
    assert_eq!(run_session(tskv.addr(), &session), expected);
}

#[test]
fn protected_mode_refuses_a_public_bind_without_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let refused = run_server_to_exit(&["--bind", "0.0.0.0", "--port", "0", "--data-dir", data]);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("protected mode"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--requirepass"),
        "{}",
        refused.stderr
    );

    for extra in [
        &["--protected-mode", "no"][..],
        &["--requirepass", PASSWORD][..],
    ] {
        let launch = Launch {
            bind: Some("0.0.0.0"),
            ..Launch::default()
        };
        let server = TestServer::start_with(extra, &launch);
        let mut conn = RawConn::connect(SocketAddr::from(([127, 0, 0, 1], server.addr().port())));
        assert_eq!(
            conn.request(&["AUTH", PASSWORD]).is_error(),
            extra[0] != "--requirepass"
        );
    }
}

/// Connects and returns the first reply to PING, or the refusal the server sent
/// unprompted, or `None` if the server closed the connection without a word.
fn ping_or_refusal(addr: SocketAddr) -> Option<Reply> {
    let mut conn = RawConn::connect(addr);
    if conn.send(&common::encode(&["PING"])).is_err() {
        return conn.try_reply().ok().flatten();
    }
    match conn.try_reply() {
        Ok(reply) => reply,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
        Err(e) => panic!("neither a reply nor a close: {e}"),
    }
}

const REFUSED: &str = "ERR max number of clients reached";

#[test]
fn maxclients_counts_across_shards_and_admits_again_after_a_close() {
    let server = TestServer::start(&["--shards", "2", "--maxclients", "3"]);
    let mut admitted: Vec<RawConn> = (0..3)
        .map(|_| {
            let mut conn = server.raw();
            assert_eq!(conn.request(&["PING"]), Reply::Status("PONG".into()));
            conn
        })
        .collect();
    for _ in 0..4 {
        assert_eq!(
            ping_or_refusal(server.addr()),
            Some(Reply::Error(REFUSED.into())),
            "a client past --maxclients 3 was not refused"
        );
    }
    drop(admitted.pop());
    // The close reaches the server asynchronously: try until admitted.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ping_or_refusal(server.addr()) {
            Some(Reply::Status(pong)) if pong == "PONG" => break,
            Some(Reply::Error(e)) if e == REFUSED && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("not admitted after a client left: {other:?}"),
        }
    }
}

#[test]
fn idle_clients_are_closed_after_the_timeout_and_busy_ones_are_not() {
    let server = TestServer::start(&["--shards", "1", "--timeout", "1"]);
    let mut idle = server.raw();
    assert_eq!(idle.request(&["PING"]), Reply::Status("PONG".into()));
    let mut busy = server.raw();
    // The idle client is closed (within the connection's read timeout); meanwhile the busy
    // one keeps talking and must stay open.
    let watcher = std::thread::spawn(move || idle.replies_until_closed());
    let stop_at = Instant::now() + Duration::from_secs(3);
    while Instant::now() < stop_at {
        assert_eq!(busy.request(&["PING"]), Reply::Status("PONG".into()));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(watcher.join().unwrap(), Vec::<Reply>::new());
    assert_eq!(busy.request(&["PING"]), Reply::Status("PONG".into()));
}

/// Descriptors the server may open beyond those it holds once ready.
const SPARE_DESCRIPTORS: u64 = 4;

#[test]
fn running_out_of_descriptors_refuses_clients_instead_of_stranding_them() {
    let dir = tempfile::tempdir().unwrap();
    // Learn how many descriptors a ready one-shard server holds.
    let probe = TestServer::start_in(dir.path(), &["--shards", "1"]);
    let held = std::fs::read_dir(format!("/proc/{}/fd", probe.pid()))
        .unwrap()
        .count() as u64;
    drop(probe);

    let limit = held + SPARE_DESCRIPTORS;
    // prlimit (util-linux) sets the limit for the server alone.
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={limit}:{limit}"))
        .arg(server_bin())
        .args(["--bind", "127.0.0.1", "--port", "0", "--shards", "1"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let child = command;
    let mut child = KillOnDrop({ child }.spawn().expect("spawn prlimit tskv-server"));
    let addr = ready_addr(&mut child.0);

    // Far more clients than descriptors: each is admitted or refused, none left waiting.
    let mut admitted = Vec::new();
    let mut refused = 0;
    for _ in 0..(4 * SPARE_DESCRIPTORS) {
        let mut conn = RawConn::connect(addr);
        conn.send(&common::encode(&["PING"])).unwrap();
        match conn.try_reply() {
            Ok(Some(Reply::Status(pong))) if pong == "PONG" => admitted.push(conn),
            Ok(Some(Reply::Error(e))) if e == REFUSED => refused += 1,
            Ok(None) => refused += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => refused += 1,
            other => panic!("a client was neither served nor refused: {other:?}"),
        }
    }
    assert!(refused > 0, "the descriptor limit was never reached");
    assert!(!admitted.is_empty(), "no client was admitted at all");
    admitted.clear();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ping_or_refusal(addr) {
            Some(Reply::Status(pong)) if pong == "PONG" => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("not served after the others left: {other:?}"),
        }
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ready_addr(child: &mut std::process::Child) -> SocketAddr {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let line = lines
        .next()
        .expect("a ready line")
        .expect("read the ready line");
    let ready =
        common::parse_ready_line(&line).unwrap_or_else(|| panic!("not a ready line: {line}"));
    ready.addr
}
