//! Shared harness of the `server_*` integration tests.
//!
//! [`TestServer`] runs the real `tskv-server` binary as a child process on `127.0.0.1`, port 0,
//! in a temporary data directory (or a given one, for restarts), waits for its ready line and
//! learns the port from it. Clients are the `redis` crate ([`TestServer::conn`]) and a raw TCP
//! connection with a small RESP2 reply reader ([`RawConn`]) for byte-exact protocol checks.
//!
//! Timeouts here only turn a hang into a failure with a message; no test asserts how long
//! anything took.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

pub mod frames;
pub mod redis_server;
pub mod twa_reference;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to print its ready line before the test fails.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SHUTDOWN or a signal before the test fails.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Read and write timeout of every test connection, so a server that stops answering fails
/// the test instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The prefix of the one line the server prints on stdout once it accepts connections.
pub const READY_PREFIX: &str = "ready: listening on ";

/// Path of the server binary Cargo built for this test run.
pub fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tskv-server")
}

/// The fields of `ready: listening on ADDR:PORT, N shards, data in PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyLine {
    /// The address the server listens on.
    pub addr: SocketAddr,
    /// The number of shards.
    pub shards: usize,
    /// The data directory, as the server printed it.
    pub data_dir: String,
}

/// Parses the ready line; `None` if it does not have the documented shape.
pub fn parse_ready_line(line: &str) -> Option<ReadyLine> {
    let rest = line.strip_prefix(READY_PREFIX)?;
    let (addr, rest) = rest.split_once(", ")?;
    let (shards, data_dir) = rest.split_once(" shards, data in ")?;
    Some(ReadyLine {
        addr: addr.parse().ok()?,
        shards: shards.parse().ok()?,
        data_dir: data_dir.to_string(),
    })
}

/// How to start a server, beyond its flags.
#[derive(Clone, Debug, Default)]
pub struct Launch<'a> {
    /// The `--bind` value; `127.0.0.1` if `None`.
    pub bind: Option<&'a str>,
    /// Environment variables to set (the fault-injection switches of `tskv::fault`).
    pub env: &'a [(&'a str, &'a str)],
}

/// A running `tskv-server`; killed with SIGKILL when dropped.
pub struct TestServer {
    child: Option<Child>,
    ready: ReadyLine,
    ready_line: String,
    data_dir: PathBuf,
    stderr_path: PathBuf,
    // Dropped after the child is killed (fields drop in declaration order after `drop`).
    _owned_data_dir: Option<TempDir>,
    _log_dir: TempDir,
}

impl TestServer {
    /// Starts a server with a fresh temporary data directory. `args` come after
    /// `--bind 127.0.0.1 --port 0 --data-dir DIR`.
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tskv-data-")
            .tempdir()
            .expect("create temporary data directory");
        let path = dir.path().to_path_buf();
        Self::spawn(&path, args, Some(dir), &Launch::default())
    }

    /// Starts a server on `data_dir`, which the caller owns (to restart on the same data).
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Self {
        Self::spawn(data_dir, args, None, &Launch::default())
    }

    /// Starts a server with a fresh temporary data directory, as [`TestServer::start`], with
    /// the given `--bind` and environment.
    pub fn start_with(args: &[&str], launch: &Launch) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tskv-data-")
            .tempdir()
            .expect("create temporary data directory");
        let path = dir.path().to_path_buf();
        Self::spawn(&path, args, Some(dir), launch)
    }

    /// Starts a server on `data_dir` (owned by the caller) with the given `--bind` and
    /// environment.
    pub fn start_in_with(data_dir: &Path, args: &[&str], launch: &Launch) -> Self {
        Self::spawn(data_dir, args, None, launch)
    }

    fn spawn(data_dir: &Path, args: &[&str], owned: Option<TempDir>, launch: &Launch) -> Self {
        let log_dir = tempfile::Builder::new()
            .prefix("tskv-log-")
            .tempdir()
            .expect("create log directory");
        let stderr_path = log_dir.path().join("stderr.log");
        let stderr = File::create(&stderr_path).expect("create stderr log");
        let mut child = Command::new(server_bin())
            .args(["--bind", launch.bind.unwrap_or("127.0.0.1")])
            .args(["--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .envs(launch.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", server_bin()));

        let lines = stdout_lines(child.stdout.take().expect("piped stdout"));
        let ready_line = match wait_for_ready(&mut child, &lines) {
            Ok(line) => line,
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tskv-server {args:?} did not become ready: {why}\n--- stderr ---\n{}",
                    read_lossy(&stderr_path)
                );
            }
        };
        let ready = parse_ready_line(&ready_line).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("ready line has an unexpected shape: {ready_line:?}")
        });
        Self {
            child: Some(child),
            ready,
            ready_line,
            data_dir: data_dir.to_path_buf(),
            stderr_path,
            _owned_data_dir: owned,
            _log_dir: log_dir,
        }
    }

    /// The port the server listens on (learnt from its ready line).
    pub fn port(&self) -> u16 {
        self.ready.addr.port()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.ready.addr
    }

    /// The parsed ready line.
    pub fn ready(&self) -> &ReadyLine {
        &self.ready
    }

    /// The ready line exactly as printed.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// The data directory the server was started on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// Everything the server wrote to stderr so far (its tracing log).
    pub fn stderr_log(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// A `redis` crate client for this server.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://{}/", self.addr())).expect("redis client")
    }

    /// A new `redis` crate connection with [`IO_TIMEOUT`] on reads and writes.
    pub fn conn(&self) -> redis::Connection {
        let con = self
            .client()
            .get_connection_with_timeout(IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.addr()));
        con.set_read_timeout(Some(IO_TIMEOUT))
            .expect("set read timeout");
        con.set_write_timeout(Some(IO_TIMEOUT))
            .expect("set write timeout");
        con
    }

    /// A new raw TCP connection.
    pub fn raw(&self) -> RawConn {
        RawConn::connect(self.addr())
    }

    /// Sends `signal` (a name `kill -s` knows: TERM, INT, KILL) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} {} failed", self.pid());
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the server");
        }
    }

    /// Sends SIGTERM and waits for the server to exit; returns its exit status.
    pub fn shutdown(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit()
    }

    /// Waits (up to [`EXIT_TIMEOUT`]) for the server to exit by itself; returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("server is running");
        match wait_timeout(child, EXIT_TIMEOUT) {
            Some(status) => {
                self.child = None;
                status
            }
            None => panic!(
                "tskv-server did not exit within {EXIT_TIMEOUT:?}\n--- stderr ---\n{}",
                self.stderr_log()
            ),
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            let log = self.stderr_log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- last lines of tskv-server stderr (port {}) ---",
                self.port()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Forwards the child's stdout line by line; keeps draining it so the server never blocks on a
/// full pipe.
fn stdout_lines(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The receiver is gone once the ready line was seen; keep reading anyway.
            let _ = tx.send(line);
        }
    });
    rx
}

fn wait_for_ready(child: &mut Child, lines: &mpsc::Receiver<String>) -> Result<String, String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut other = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(line) if line.starts_with(READY_PREFIX) => return Ok(line),
            Ok(line) => other.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = wait_timeout(child, Duration::from_secs(5));
                return Err(format!(
                    "stdout closed before the ready line (exit status {status:?}, other stdout: {other:?})"
                ));
            }
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            // Give the reader a moment to deliver a line printed just before exit.
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
                if line.starts_with(READY_PREFIX) {
                    return Err(format!("printed {line:?} but exited with {status}"));
                }
            }
            return Err(format!("exited with {status} (other stdout: {other:?})"));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no ready line within {READY_TIMEOUT:?} (other stdout: {other:?})"
            ));
        }
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The result of running the server binary to completion.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

/// Runs `tskv-server ARGS` (no implied flags) and waits for it to exit by itself; kills it and
/// fails the test if it is still running after [`READY_TIMEOUT`].
pub fn run_server_to_exit(args: &[&str]) -> Finished {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(server_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn tskv-server");
    let Some(status) = wait_timeout(&mut child, READY_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "tskv-server {args:?} was expected to exit but kept running\n--- stdout ---\n{}\n--- stderr ---\n{}",
            read_lossy(&out_path),
            read_lossy(&err_path)
        );
    };
    Finished {
        status,
        stdout: read_lossy(&out_path),
        stderr: read_lossy(&err_path),
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// `code detail` of a server error the `redis` crate returned, i.e. the error line as sent
/// (`ERR wrong number of arguments for 'get' command`).
pub fn error_line(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => panic!("expected an error reply from the server, got {e:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw RESP2

/// One RESP2 reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+...`
    Status(String),
    /// `-...` (the line without the dash).
    Error(String),
    /// `:...`
    Int(i64),
    /// `$n` followed by n bytes.
    Bulk(Vec<u8>),
    /// `$-1`
    Nil,
    /// `*n` followed by n replies.
    Array(Vec<Reply>),
    /// `*-1`
    NilArray,
}

impl Reply {
    /// A bulk string reply holding `s`.
    pub fn bulk(s: impl AsRef<[u8]>) -> Self {
        Reply::Bulk(s.as_ref().to_vec())
    }

    /// `+OK`
    pub fn ok() -> Self {
        Reply::Status("OK".into())
    }

    /// An error reply with this exact text.
    pub fn err(s: &str) -> Self {
        Reply::Error(s.into())
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Status(s) => write!(f, "+{s:?}"),
            Reply::Error(s) => write!(f, "-{s:?}"),
            Reply::Int(n) => write!(f, ":{n}"),
            Reply::Bulk(b) => write!(f, "${:?}", String::from_utf8_lossy(b)),
            Reply::Nil => write!(f, "$-1"),
            Reply::Array(items) => f.debug_list().entries(items).finish(),
            Reply::NilArray => write!(f, "*-1"),
        }
    }
}

/// Encodes a request as a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply; `Ok(None)` on end of stream before its first byte.
pub fn read_reply(r: &mut impl BufRead) -> io::Result<Option<Reply>> {
    let Some(line) = read_line(r)? else {
        return Ok(None);
    };
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {line:?}"));
    let (&kind, rest) = line.split_first().ok_or_else(|| bad("empty reply line"))?;
    let text = String::from_utf8_lossy(rest).into_owned();
    let number = || text.parse::<i64>().map_err(|_| bad("bad number"));
    let reply = match kind {
        b'+' => Reply::Status(text),
        b'-' => Reply::Error(text),
        b':' => Reply::Int(number()?),
        b'$' => match number()? {
            -1 => Reply::Nil,
            n if n >= 0 => {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf)?;
                if !buf.ends_with(b"\r\n") {
                    return Err(bad("bulk string not followed by CRLF"));
                }
                buf.truncate(n as usize);
                Reply::Bulk(buf)
            }
            _ => return Err(bad("bad bulk length")),
        },
        b'*' => match number()? {
            -1 => Reply::NilArray,
            n if n >= 0 => {
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let item = read_reply(r)?.ok_or_else(|| bad("stream ended inside array"))?;
                    items.push(item);
                }
                Reply::Array(items)
            }
            _ => return Err(bad("bad array length")),
        },
        _ => return Err(bad("unknown reply type")),
    };
    Ok(Some(reply))
}

/// Reads a CRLF-terminated line without its CRLF; `Ok(None)` on end of stream before any byte.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "reply line not terminated by CRLF: {:?}",
                String::from_utf8_lossy(&line)
            ),
        ));
    }
    line.truncate(line.len() - 2);
    Ok(Some(line))
}

/// A raw TCP connection to the server, for byte-exact requests and replies.
pub struct RawConn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RawConn {
    /// `field` of `INFO persistence`, as a number.
    pub fn persistence_number(&mut self, field: &str) -> u64 {
        let Reply::Bulk(info) = self.request(&["INFO", "persistence"]) else {
            panic!("INFO is a bulk string");
        };
        info_number(&String::from_utf8(info).expect("INFO is text"), field)
    }

    /// Connects to a server on loopback `port` (a real `redis-server`, say).
    pub fn to_port(port: u16) -> Self {
        Self::connect(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Connects with [`IO_TIMEOUT`] on reads and writes.
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::with_capacity(64 << 10, stream.try_clone().expect("clone"));
        Self {
            writer: stream,
            reader,
        }
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Sends one request (as a RESP array) and reads its reply.
    pub fn request<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.send(&encode(args)).expect("send request");
        self.reply()
    }

    /// Reads one reply; fails the test on end of stream or an I/O error.
    pub fn reply(&mut self) -> Reply {
        match read_reply(&mut self.reader) {
            Ok(Some(reply)) => reply,
            Ok(None) => panic!("server closed the connection where a reply was expected"),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!("no reply within {IO_TIMEOUT:?}")
            }
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Reads one reply; `Ok(None)` on end of stream.
    pub fn try_reply(&mut self) -> io::Result<Option<Reply>> {
        read_reply(&mut self.reader)
    }

    /// Reads replies until the server closes the connection; returns them. A connection reset
    /// counts as closed (the server may close with our unread request bytes in its buffer).
    pub fn replies_until_closed(&mut self) -> Vec<Reply> {
        let mut replies = Vec::new();
        loop {
            match read_reply(&mut self.reader) {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => return replies,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return replies,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("the server neither replied nor closed the connection within {IO_TIMEOUT:?} (replies so far: {replies:?})")
                }
                Err(e) => panic!("reading until close (after {replies:?}): {e}"),
            }
        }
    }

    /// Closes our sending side; the server sees end of stream.
    pub fn shutdown_write(&self) {
        let _ = self.writer.shutdown(Shutdown::Write);
    }

    /// A second handle on the socket, for writing from another thread.
    pub fn writer_clone(&self) -> TcpStream {
        self.writer.try_clone().expect("clone stream")
    }
}

/// Fails the test unless a new connection gets PONG and each `(key, value)` reads back.
pub fn assert_serving(server: &TestServer, expected: &[(String, String)]) {
    let mut raw = server.raw();
    assert_eq!(
        raw.request(&["PING"]),
        Reply::Status("PONG".into()),
        "PING on a new connection"
    );
    for (key, value) in expected {
        assert_eq!(
            raw.request(&["GET", key]),
            Reply::bulk(value),
            "GET {key} on a new connection"
        );
    }
}

/// Writes `count` keys with a `prefix` through a fresh connection and returns them, for
/// [`assert_serving`] to check later.
pub fn seed_keys(server: &TestServer, prefix: &str, count: usize) -> Vec<(String, String)> {
    let pairs: Vec<(String, String)> = (0..count)
        .map(|i| (format!("{prefix}:{i}"), format!("value-{prefix}-{i}")))
        .collect();
    let mut raw = server.raw();
    for (key, value) in &pairs {
        assert_eq!(raw.request(&["SET", key, value]), Reply::ok(), "SET {key}");
    }
    pairs
}

/// The seed of this test's random choices: `TSKV_TEST_SEED` if set, else fresh. Printed so a
/// failure can be replayed.
pub fn test_seed() -> u64 {
    let seed = std::env::var("TSKV_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("random seed: {seed} (set TSKV_TEST_SEED={seed} to replay)");
    seed
}

/// The number on the `field:N` line of an `INFO` reply's text.
///
/// # Panics
/// If there is no such line or it is not a number: the test fails, naming the field.
pub fn info_number(info: &str, field: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO has no {field}: {info}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("INFO's {field} is not a number: {e}"))
}

/// The text of `GET /metrics` from the Prometheus endpoint at `addr` (status line and
/// headers included).
pub fn scrape_metrics(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: tskv\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// The value of the sample `name` (with its labels) in a Prometheus exposition.
pub fn metrics_sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no sample {name} in /metrics"))
        .parse()
        .unwrap()
}

/// The first `count` keys `<prefix><n>` (n = 0, 1, ...) that shard `shard` of `shards`
/// owns, by the server's own routing rule.
pub fn keys_on(shards: usize, shard: usize, prefix: &str, count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| tskv::datadir::shard_of(k.as_bytes(), shards).0 == shard)
        .take(count)
        .collect()
}

/// The `(timestamp, value)` pairs of a RESP2 time-series range reply (`TS.RANGE` and the
/// like: an array of `[ts, value]` pairs, values as simple strings).
pub fn samples_of(reply: Reply) -> Vec<(u64, f64)> {
    let Reply::Array(items) = reply else {
        panic!("an array of samples: {reply:?}");
    };
    items
        .into_iter()
        .map(|item| match item {
            Reply::Array(pair) => match &pair[..] {
                [Reply::Int(ts), Reply::Status(v)] => (*ts as u64, v.parse::<f64>().unwrap()),
                other => panic!("a sample: {other:?}"),
            },
            other => panic!("a sample: {other:?}"),
        })
        .collect()
}
