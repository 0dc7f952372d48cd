//! Goal: a full disk never costs an acknowledged write and is never papered over. When the
//! WAL cannot grow (a new segment cannot be allocated), the shard refuses every further
//! write with a clear `-ERR`, keeps serving reads, says why in `INFO persistence`, and a
//! restart with room recovers every acknowledged write from the WAL.
//!
//! Method: mount a 2 MiB tmpfs (needs root; without it the test says SKIP and returns) and
//! run a one-shard server on it with 256 KiB WAL segments. Write 8 KiB values until a SET
//! fails, recording every acknowledged one. Check the error text, that the next SET also
//! fails (no silent retry turning it into success), that reads of acknowledged keys still
//! answer, and INFO. Then stop the server, copy the data directory to ordinary disk,
//! restart there and check every acknowledged key.

mod common;

use std::io::Write as _;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Reply, TestServer};

const VALUE_BYTES: usize = 8 << 10;

/// A tmpfs mount, unmounted when dropped.
struct TmpfsMount {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TmpfsMount {
    fn new(size: &str) -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tskv-full-")
            .tempdir()
            .ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .ok()?;
        status.success().then(|| Self {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

fn value_for(i: usize) -> Vec<u8> {
    let mut value = format!("value-{i}-").into_bytes();
    value.resize(VALUE_BYTES, b'a' + (i % 26) as u8);
    value
}

#[test]
fn full_disk_refuses_writes_keeps_reads_and_loses_nothing() {
    let Some(mount) = TmpfsMount::new("2m") else {
        // Written to the stderr handle, not with eprintln!: libtest captures the print
        // macros, which would hide the skip in a passing run.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP full_disk_refuses_writes_keeps_reads_and_loses_nothing: cannot mount a tmpfs (needs root)"
        );
        return;
    };
    let data_dir = mount.path.join("data");
    let args = ["--shards", "1", "--wal-segment-bytes", "262144"];
    let mut server = TestServer::start_in(&data_dir, &args);
    let mut conn = server.raw();

    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for i in 0..10_000 {
        match conn.request(&[b"SET".as_slice(), format!("k{i}").as_bytes(), &value_for(i)]) {
            reply if reply == Reply::ok() => acknowledged.push(i),
            reply => {
                refusal = Some(reply);
                break;
            }
        }
    }
    let refusal = refusal.expect("a 2 MiB file system must fill up");
    let Reply::Error(text) = &refusal else {
        panic!("expected an error reply, got {refusal:?}")
    };
    assert!(text.contains("refuses writes"), "unclear refusal: {text}");
    assert!(
        acknowledged.len() > 10,
        "only {} writes before the disk filled",
        acknowledged.len()
    );

    // No retry behind the client's back: the next write is refused too.
    let again = conn.request(&["SET", "after", "x"]);
    assert!(
        again.is_error(),
        "a write after the failure was accepted: {again:?}"
    );
    // Reads go on.
    let last = *acknowledged.last().unwrap();
    assert_eq!(
        conn.request(&["GET", &format!("k{last}")]),
        Reply::bulk(value_for(last))
    );
    let info = conn.request(&["INFO", "persistence"]);
    let Reply::Bulk(info) = info else {
        panic!("INFO reply {info:?}")
    };
    let info = String::from_utf8_lossy(&info);
    assert!(
        info.contains("writes_refused:1"),
        "INFO persistence does not say writes are refused:\n{info}"
    );

    let status = server.shutdown();
    assert!(
        status.success(),
        "server exit status after a poisoned shard: {status:?}"
    );

    let roomy = tempfile::Builder::new()
        .prefix("tskv-roomy-")
        .tempdir()
        .unwrap();
    copy_dir(&data_dir, roomy.path());
    drop(mount);
    let server = TestServer::start_in(&roomy.path().join("data"), &args);
    let mut conn = server.raw();
    for &i in &acknowledged {
        assert_eq!(
            conn.request(&["GET", &format!("k{i}")]),
            Reply::bulk(value_for(i)),
            "acknowledged key k{i} lost after the disk filled"
        );
    }
    assert_eq!(
        conn.request(&["SET", "after", "x"]),
        Reply::ok(),
        "writes resume with room"
    );
}
