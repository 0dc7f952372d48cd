//! Goal: tskv scales out behind twemproxy (nutcracker): with the example configuration of
//! `scripts/twemproxy/nutcracker.yml`, keys written through the proxy land each on
//! exactly one tskv server, read back through the proxy, and spread over all servers; and
//! the proxy's limits (README, "Scaling out with a proxy") are what we observed.
//!
//! Method: three tskv servers on free ports, the example configuration with their ports
//! and a free proxy port swapped in, the real `nutcracker` binary. 300 keys are written
//! through the proxy (`SET` and one `MSET`, which nutcracker splits per server), then each
//! key is looked up on every server directly. Prints a loud SKIP and passes when
//! nutcracker is not installed (`apt-get install nutcracker`; `.ci/run` installs it).

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::frames::Frames;
use common::TestServer;

/// A nutcracker process, killed on drop.
struct Proxy {
    child: Child,
    port: u16,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts nutcracker with the repository's example configuration, pointed at `backends`.
fn start_proxy(dir: &Path, backends: &[u16]) -> Proxy {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/twemproxy/nutcracker.yml");
    let mut config = std::fs::read_to_string(&example).expect("read the example configuration");
    let port = free_port();
    config = config.replace("127.0.0.1:22121", &format!("127.0.0.1:{port}"));
    for (i, backend) in backends.iter().enumerate() {
        let example_port = format!("127.0.0.1:{}:1", 6381 + i);
        assert!(
            config.contains(&example_port),
            "the example names {example_port}"
        );
        config = config.replace(&example_port, &format!("127.0.0.1:{backend}:1"));
    }
    let path = dir.join("nutcracker.yml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new("nutcracker")
        .arg("--conf-file")
        .arg(&path)
        .args(["--stats-port", &free_port().to_string()])
        .arg("--output")
        .arg(dir.join("nutcracker.log"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start nutcracker");
    let proxy = Proxy { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nutcracker did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy
}

fn nutcracker_installed() -> bool {
    Command::new("nutcracker")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// Says SKIP on stderr directly, past libtest's capture (`eprintln!` is captured), so a
/// skipped run shows in the test output.
fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP: proxy_twemproxy: {reason}");
}

#[test]
fn keys_through_twemproxy_land_on_exactly_one_server_and_spread_over_all() {
    if !nutcracker_installed() {
        skip("nutcracker (twemproxy) is not installed; apt-get install nutcracker (.ci/run installs it)");
        return;
    }
    let servers: Vec<TestServer> = (0..3)
        .map(|_| TestServer::start(&["--shards", "2"]))
        .collect();
    let ports: Vec<u16> = servers.iter().map(TestServer::port).collect();
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy(dir.path(), &ports);
    let mut through = Frames::connect(proxy.port);

    let keys: Vec<String> = (0..300).map(|i| format!("user:{i}")).collect();
    for key in &keys[..200] {
        assert_eq!(
            through.request(&["SET", key, &format!("v-{key}")]),
            b"+OK\r\n"
        );
    }
    // MSET is split by the proxy into one MSET per server.
    let mut mset = vec!["MSET".to_string()];
    for key in &keys[200..] {
        mset.push(key.clone());
        mset.push(format!("v-{key}"));
    }
    let mset: Vec<&str> = mset.iter().map(String::as_str).collect();
    assert_eq!(through.request(&mset), b"+OK\r\n");

    let mut direct: Vec<Frames> = ports.iter().map(|&p| Frames::connect(p)).collect();
    let mut per_server = vec![0usize; ports.len()];
    for key in &keys {
        let expected = format!("$%d\r\nv-{key}\r\n").replace("%d", &(key.len() + 2).to_string());
        assert_eq!(
            text(&through.request(&["GET", key])),
            expected,
            "{key} via the proxy"
        );
        let holders: Vec<usize> = direct
            .iter_mut()
            .enumerate()
            .filter_map(|(i, conn)| (conn.request(&["GET", key]) != b"$-1\r\n").then_some(i))
            .collect();
        assert_eq!(
            holders.len(),
            1,
            "{key} is on exactly one server: {holders:?}"
        );
        per_server[holders[0]] += 1;
    }
    assert!(
        per_server.iter().all(|&n| n > 0),
        "keys spread over every server: {per_server:?}"
    );
    let dbsizes: Vec<usize> = direct
        .iter_mut()
        .map(|conn| {
            text(&conn.request(&["DBSIZE"]))[1..]
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(dbsizes, per_server, "each server holds only its keys");
    eprintln!("keys per server: {per_server:?}");

    // Multi-key reads are split and merged by the proxy; DEL sums.
    let reply = text(&through.request(&["MGET", "user:0", "user:250", "nokey"]));
    assert!(
        reply.starts_with("*3\r\n") && reply.ends_with("$-1\r\n"),
        "{reply:?}"
    );
    assert_eq!(
        through.request(&["DEL", "user:0", "user:1", "nokey"]),
        b":2\r\n"
    );

    // What nutcracker does not support: it closes the client's connection without a
    // reply (its log says "parsed unsupported command").
    for unsupported in [&["MULTI"][..], &["DBSIZE"], &["INFO"]] {
        let mut conn = Frames::connect(proxy.port);
        use std::io::{Read, Write};
        conn.writer.write_all(&common::encode(unsupported)).unwrap();
        let mut byte = [0u8; 16];
        let closed = matches!(conn.writer.read(&mut byte), Ok(0) | Err(_));
        assert!(closed, "{unsupported:?}: the proxy closes the connection");
    }
    drop(servers);
}

/// `scripts/twemproxy.sh start 2` brings up two servers behind nutcracker, and `stop`
/// ends every process it started.
#[test]
fn script_starts_servers_behind_the_proxy_and_stops_them_all() {
    if !nutcracker_installed() {
        skip("nutcracker (twemproxy) is not installed; apt-get install nutcracker");
        return;
    }
    // Three consecutive free ports above a free one (the servers take BASE_PORT+1..+2).
    let base = (0..50)
        .map(|_| free_port())
        .find(|&p| p < 65000 && (1..=2).all(|i| TcpListener::bind(("127.0.0.1", p + i)).is_ok()))
        .expect("two consecutive free ports");
    let (proxy_port, stats_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/twemproxy.sh");
    let run = |action: &str| {
        let output = Command::new(&script)
            .arg(action)
            .arg("2")
            .env("DIR", dir.path())
            .env("TSKV_SERVER", common::server_bin())
            .env("BASE_PORT", base.to_string())
            .env("PROXY_PORT", proxy_port.to_string())
            .env("STATS_PORT", stats_port.to_string())
            .output()
            .expect("run scripts/twemproxy.sh");
        assert!(
            output.status.success(),
            "{action}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let started = run("start");
    assert!(started.contains("in front of 2 tskv servers"), "{started}");
    let pids: Vec<String> = ["nutcracker.pid", "tskv-1.pid", "tskv-2.pid"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.path().join(f))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    let mut through = Frames::connect(proxy_port);
    for i in 0..40 {
        let key = format!("k{i}");
        assert_eq!(through.request(&["SET", &key, "v"]), b"+OK\r\n");
    }
    let sizes: Vec<String> = (1..=2)
        .map(|i| text(&Frames::connect(base + i).request(&["DBSIZE"])))
        .collect();
    assert!(
        sizes.iter().all(|s| s != ":0\r\n"),
        "both servers hold keys: {sizes:?}"
    );
    drop(through);
    let stopped = run("stop");
    assert!(stopped.contains("stopped 3 processes"), "{stopped}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|stat| stat.contains(") Z ")),
            "process {pid} is gone"
        );
    }
}
