//! Goal: the server runs on file systems without `fallocate` (FUSE, some network file
//! systems answer `EOPNOTSUPP`): it writes each WAL segment out with zeros instead of
//! refusing to start, and what it acknowledged is there after a restart. (Before the fix
//! preparing the first WAL segment failed and the server exited.)
//!
//! Method: no file system here lacks `fallocate`, so the test injects the error:
//! `TSKV_FAULT_FALLOCATE_EOPNOTSUPP=1` makes every `fallocate` call of the server fail with
//! `EOPNOTSUPP` (see `tskv::fault`). With 64 KiB WAL segments, first write a value larger than
//! a segment (the writer grows the untouched first segment to fit it), then enough small
//! values to fill several segments (new segments are prepared), then another large value
//! (a segment made to fit it); stop, restart without the fault and read everything back.

mod common;

use common::{Launch, Reply, TestServer};

const ARGS: &[&str] = &["--shards", "1", "--wal-segment-bytes", "64KiB"];

#[test]
fn wal_segments_are_zero_filled_when_fallocate_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch {
        env: &[("TSKV_FAULT_FALLOCATE_EOPNOTSUPP", "1")],
        ..Launch::default()
    };
    let mut server = TestServer::start_in_with(dir.path(), ARGS, &launch);
    let value = "v".repeat(1000);
    let big = "B".repeat(200 << 10);
    let mut raw = server.raw();
    assert_eq!(
        raw.request(&["SET", "first", &big]),
        Reply::ok(),
        "SET first"
    );
    for i in 0..400 {
        assert_eq!(
            raw.request(&["SET", &format!("key:{i}"), &value]),
            Reply::ok(),
            "SET key:{i}"
        );
    }
    assert_eq!(raw.request(&["SET", "big", &big]), Reply::ok(), "SET big");
    let log = server.stderr_log();
    assert!(
        log.contains("does not support fallocate"),
        "the fallback is logged:\n{log}"
    );
    assert_eq!(server.shutdown().code(), Some(0));

    let server = TestServer::start_in(dir.path(), ARGS);
    let mut raw = server.raw();
    for i in 0..400 {
        assert_eq!(
            raw.request(&["GET", &format!("key:{i}")]),
            Reply::bulk(&value),
            "key:{i} after restart"
        );
    }
    assert_eq!(
        raw.request(&["GET", "big"]),
        Reply::bulk(&big),
        "big after restart"
    );
}
