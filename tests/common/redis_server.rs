//! A private `redis-server` for the tests that check tskv-bench against a server that is
//! not ours, plus helpers those tests share.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A redis-server on a free loopback port, without persistence, killed on drop (SIGKILL
/// also ends a stopped process).
pub struct RedisServer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl RedisServer {
    /// Starts it and waits until it accepts connections; fails the test with a clear
    /// message if Redis is not installed (`.ci/run` installs it).
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts it with `extra` configuration arguments (e.g. `--requirepass pw`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): this test needs Redis installed \
                     (apt-get install redis-server); CI installs it"
                )
            });
        let server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            sleep(Duration::from_millis(20));
        }
        server
    }

    /// Sends `signal` (a name such as `STOP`) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// `cmdstat_<command>:calls` from `INFO commandstats` (0 if never called).
    pub fn command_calls(&self, command: &str) -> u64 {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "INFO", "commandstats"])
            .output()
            .expect("run redis-cli (installed with redis-server)");
        let text = String::from_utf8_lossy(&output.stdout);
        let prefix = format!("cmdstat_{command}:calls=");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |rest| {
                rest.split(',')
                    .next()
                    .unwrap()
                    .parse()
                    .expect("calls count")
            })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a tskv-bench `--json` report.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read JSON report"))
        .expect("JSON report parses")
}

/// Waits for `child` to exit, killing it and failing the test after `timeout`.
pub fn wait_within(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not finish within {timeout:?}");
        }
        sleep(Duration::from_millis(50));
    }
}
