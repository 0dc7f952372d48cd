//! Goal: a server never shares its port with another process. A second `tskv-server` on the
//! port of a running one (another data directory) is refused with "address already in use",
//! as Redis refuses, and the first keeps serving; a port held by any other listener is
//! refused too; and the shards still share the accept load, one `SO_REUSEPORT` socket each.
//! (Before the fix every shard socket set `SO_REUSEPORT`, so the second server joined the
//! first one's group, printed `ready` and received part of its connections.)
//!
//! Method: run the real binary on port 0, read its port from the ready line, start a second
//! server on that port and expect it to exit by itself with the error; bind a plain
//! `TcpListener` and start a server on its port; count the sockets listening on a running
//! server's port in `/proc/net/tcp`.

mod common;

use std::net::TcpListener;

use common::{run_server_to_exit, seed_keys, Finished, TestServer};

fn start_on_port(port: u16) -> Finished {
    let dir = tempfile::tempdir().unwrap();
    let port = port.to_string();
    run_server_to_exit(&[
        "--bind",
        "127.0.0.1",
        "--port",
        &port,
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--shards",
        "2",
    ])
}

fn assert_refused_as_in_use(run: &Finished) {
    assert!(
        !run.status.success(),
        "a server on a port in use must fail, got {}\n{}",
        run.status,
        run.stderr
    );
    assert!(
        !run.stdout.contains("ready:"),
        "and must not announce itself: {:?}",
        run.stdout
    );
    assert!(
        run.stderr.to_lowercase().contains("address already in use"),
        "the refusal says the address is in use:\n{}",
        run.stderr
    );
}

#[test]
fn a_second_server_on_the_same_port_is_refused() {
    let server = TestServer::start(&["--shards", "2"]);
    let keys = seed_keys(&server, "first", 50);

    let second = start_on_port(server.port());
    assert_refused_as_in_use(&second);

    // Every connection still reaches the first server and sees its data.
    for _ in 0..8 {
        common::assert_serving(&server, &keys);
    }
}

#[test]
fn a_port_held_by_another_listener_is_refused() {
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let run = start_on_port(other.local_addr().unwrap().port());
    assert_refused_as_in_use(&run);
}

#[test]
fn every_shard_listens_on_the_port() {
    let server = TestServer::start(&["--shards", "3"]);
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let listening = tskv::listener::listening_inodes(&table, server.addr());
    assert_eq!(
        listening.len(),
        3,
        "one listening socket per shard on {} (and no probe socket left): {listening:?}",
        server.addr()
    );
}
