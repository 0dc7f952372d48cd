//! Goal: with `--fsync always`, a write acknowledged to a client survives SIGKILL of the server
//! at any moment, through memtable flushes and SSTables; and a WAL segment whose tail is cut
//! off mid-record is truncated at recovery, with every write of the other shard intact.
//!
//! Method: start the server with two shards, `--fsync always` and a 64 KiB memtable (so
//! flushes happen every few hundred writes). Four writer threads, each owning 500 keys, send
//! pipelined batches of SET (values of 32–400 bytes, unique per write), DEL and GET. Each
//! writer records, per key, every state it sent since the last verified restart and which of
//! them was acknowledged last (GET replies are checked against the writer's own model on the
//! way). After a random number of acknowledged writes the test SIGKILLs the server, restarts
//! it on the same directory and reads every key: each must hold its last acknowledged state
//! or a state sent after it (in flight when the server died). The state read becomes the
//! verified state of the next cycle. The first test runs several such cycles and ends with a
//! clean SIGTERM, after which every key must hold exactly its last written state; the second
//! does the same, more briefly, with `--fsync periodic` and `--fsync never`, which acknowledge
//! before the fdatasync but must still survive a crash of the process.
//!
//! The third test, after a kill, chops the highest-numbered `wal-*.log` of one shard in the
//! middle of a record: it finds the bytes of a value the test wrote (values start with
//! `VAL|`) in the later half of the segment's data and cuts the file a few bytes into that
//! value. On restart the server must start, log the truncation (and count it in
//! `INFO persistence`), and keep the contract for every key except those whose name appears in
//! the segment from 32 KiB before the cut on (the records that may be lost); those keys may
//! only hold some state the test ever gave them, or none.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{encode, RawConn, Reply, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ARGS: &[&str] = &[
    "--shards",
    "2",
    "--fsync",
    "always",
    "--memtable-bytes",
    "65536",
];
const WRITER_COUNT: usize = 4;
const KEYS_PER_WRITER: usize = 500;
const KILL_CYCLE_COUNT: usize = 5;
/// Bytes before the cut whose records a recovery may also drop (a whole group-commit batch
/// holding the torn record): 4 writers x 8 pipelined writes x ~450 bytes, doubled.
const CHOP_MARGIN_BYTES: usize = 32 << 10;
const VALUE_MARKER: &[u8] = b"VAL|";

/// A key's state: its value, or `None` when absent (never written, or deleted).
type State = Option<Vec<u8>>;

#[derive(Clone, Debug)]
struct KeyHistory {
    /// States sent since the last verified restart, oldest first; `sent[0]` is the state read
    /// at that restart.
    sent: Vec<State>,
    /// Index in `sent` of the last acknowledged state.
    acked: usize,
    /// Every state the key ever had, in any cycle.
    ever: HashSet<State>,
}

impl KeyHistory {
    fn new() -> Self {
        Self {
            sent: vec![None],
            acked: 0,
            ever: HashSet::from([None]),
        }
    }

    /// States a recovered server may show: the last acknowledged one or any sent after it.
    fn allowed(&self) -> &[State] {
        &self.sent[self.acked..]
    }

    fn current(&self) -> &State {
        self.sent.last().expect("at least the verified state")
    }
}

type Histories = Vec<Vec<KeyHistory>>;

fn key_name(writer: usize, key: usize) -> String {
    format!("w{writer}:k{key:04}")
}

fn new_histories() -> Histories {
    (0..WRITER_COUNT)
        .map(|_| (0..KEYS_PER_WRITER).map(|_| KeyHistory::new()).collect())
        .collect()
}

enum Op {
    Set,
    Del,
    Get,
}

/// One writer: sends pipelined batches until told to stop (returns after a whole batch was
/// answered) or until the connection dies (the server was killed).
fn run_writer(
    addr: SocketAddr,
    writer: usize,
    cycle: usize,
    mut keys: Vec<KeyHistory>,
    mut rng: StdRng,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicU64>,
) -> Vec<KeyHistory> {
    let mut raw = RawConn::connect(addr);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut wire = Vec::new();
        let mut pending = Vec::new();
        for _ in 0..rng.gen_range(1..=8) {
            let k = rng.gen_range(0..KEYS_PER_WRITER);
            let name = key_name(writer, k);
            let op = match rng.gen_range(0..10) {
                0 => Op::Del,
                1 => Op::Get,
                _ => Op::Set,
            };
            match op {
                Op::Set => {
                    let mut value = format!("VAL|c{cycle}|w{writer}|s{seq:08}|").into_bytes();
                    value.resize(rng.gen_range(32..=400), b'x');
                    seq += 1;
                    wire.extend_from_slice(&encode(&[b"SET", name.as_bytes(), &value]));
                    keys[k].sent.push(Some(value.clone()));
                    keys[k].ever.insert(Some(value));
                }
                Op::Del => {
                    wire.extend_from_slice(&encode(&["DEL", &name]));
                    keys[k].sent.push(None);
                }
                Op::Get => wire.extend_from_slice(&encode(&["GET", &name])),
            }
            pending.push((k, op, keys[k].sent.len() - 1));
        }
        if raw.send(&wire).is_err() {
            return keys;
        }
        for (k, op, index) in pending {
            let reply = match raw.try_reply() {
                Ok(Some(reply)) => reply,
                Ok(None) | Err(_) => return keys,
            };
            let history = &mut keys[k];
            let expected = match op {
                Op::Set => Reply::ok(),
                // Writers own their keys, so the state before this DEL is known exactly.
                Op::Del => Reply::Int(history.sent[index - 1].is_some() as i64),
                Op::Get => history.sent[index].clone().map_or(Reply::Nil, Reply::Bulk),
            };
            assert_eq!(
                reply,
                expected,
                "writer {writer}: reply for {} ({})",
                key_name(writer, k),
                op_name(&op)
            );
            if !matches!(op, Op::Get) {
                history.acked = index;
                acks.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    keys
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Set => "SET",
        Op::Del => "DEL",
        Op::Get => "GET",
    }
}

/// Runs the writers against `server` until `ack_target` writes were acknowledged; then either
/// SIGKILLs the server (`kill`) or stops the writers and leaves the server running.
fn write_until(
    server: &mut TestServer,
    cycle: usize,
    histories: Histories,
    rng: &mut StdRng,
    ack_target: u64,
    kill: bool,
) -> Histories {
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = histories
        .into_iter()
        .enumerate()
        .map(|(w, keys)| {
            let (addr, stop, acks) = (server.addr(), stop.clone(), acks.clone());
            let writer_rng = StdRng::seed_from_u64(rng.gen());
            thread::spawn(move || run_writer(addr, w, cycle, keys, writer_rng, stop, acks))
        })
        .collect();

    // Wait for the target; fail (not hang) if the writers stop making progress.
    let mut last = (0, Instant::now());
    loop {
        let n = acks.load(Ordering::Relaxed);
        if n >= ack_target {
            break;
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > common::IO_TIMEOUT {
            server.kill9();
            panic!(
                "cycle {cycle}: no write acknowledged for {:?} (after {n})",
                common::IO_TIMEOUT
            );
        }
        if handles.iter().any(|h| h.is_finished()) {
            server.kill9();
            let errors: Vec<_> = handles.into_iter().map(|h| h.join().err()).collect();
            panic!("cycle {cycle}: a writer ended early after {n} acknowledged writes: {errors:?}");
        }
        thread::sleep(Duration::from_millis(2));
    }
    if kill {
        thread::sleep(Duration::from_millis(rng.gen_range(0..20)));
        server.kill9();
    } else {
        stop.store(true, Ordering::Relaxed);
    }
    handles
        .into_iter()
        .map(|h| h.join().expect("writer thread"))
        .collect()
}

/// Reads every key from the restarted server, checks it against the contract (looser for
/// keys in `chopped`), and makes the state read the verified state of the next cycle.
fn verify_and_reset(
    server: &TestServer,
    histories: &mut Histories,
    chopped: &HashSet<String>,
    what: &str,
) {
    let mut raw = server.raw();
    let mut violations = Vec::new();
    let mut checked = 0;
    for (w, keys) in histories.iter_mut().enumerate() {
        for chunk_start in (0..KEYS_PER_WRITER).step_by(250) {
            let range = chunk_start..(chunk_start + 250).min(KEYS_PER_WRITER);
            let mut wire = Vec::new();
            for k in range.clone() {
                wire.extend_from_slice(&encode(&["GET", &key_name(w, k)]));
            }
            raw.send(&wire).expect("send GETs");
            for k in range {
                let observed: State = match raw.reply() {
                    Reply::Bulk(b) => Some(b),
                    Reply::Nil => None,
                    other => panic!("{what}: GET {} answered {other:?}", key_name(w, k)),
                };
                let history = &mut keys[k];
                let name = key_name(w, k);
                let ok = if chopped.contains(&name) {
                    history.ever.contains(&observed)
                } else {
                    history.allowed().contains(&observed)
                };
                if !ok {
                    violations.push(format!(
                        "{name}{}: read {}, last acknowledged {}, sent after it: {:?}",
                        if chopped.contains(&name) {
                            " (in the chopped region)"
                        } else {
                            ""
                        },
                        show(&observed),
                        show(&history.sent[history.acked]),
                        history.sent[history.acked + 1..]
                            .iter()
                            .map(show)
                            .collect::<Vec<_>>()
                    ));
                }
                checked += 1;
                history.ever.insert(observed.clone());
                history.sent = vec![observed];
                history.acked = 0;
            }
        }
    }
    assert!(
        violations.is_empty(),
        "{what}: {} of {checked} keys lost an acknowledged write:\n{}",
        violations.len(),
        violations
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn show(state: &State) -> String {
    match state {
        None => "(absent)".into(),
        Some(v) => {
            let text = String::from_utf8_lossy(v);
            format!("{:?}", text.trim_end_matches('x'))
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    kill_cycles(ARGS, KILL_CYCLE_COUNT);
}

#[test]
fn acknowledged_writes_survive_sigkill_with_fsync_periodic_or_never() {
    // These modes acknowledge after the WAL write, before any fdatasync: a crash of the
    // process (not of the machine) loses nothing acknowledged, since the page cache survives.
    for fsync in ["periodic", "never"] {
        let args = [
            "--shards",
            "2",
            "--fsync",
            fsync,
            "--memtable-bytes",
            "65536",
        ];
        kill_cycles(&args, 2);
    }
}

/// `cycle_count` rounds of writing, SIGKILL, restart and verification on one data
/// directory, then a clean stop after which every key must hold exactly its last state.
fn kill_cycles(args: &[&str], cycle_count: usize) {
    eprintln!("server flags: {args:?}");
    let mut rng = StdRng::seed_from_u64(common::test_seed());
    let dir = tempfile::tempdir().unwrap();
    let mut histories = new_histories();
    let mut server = TestServer::start_in(dir.path(), args);
    for cycle in 0..cycle_count {
        let target = rng.gen_range(500..4000);
        histories = write_until(&mut server, cycle, histories, &mut rng, target, true);
        server = TestServer::start_in(dir.path(), args);
        let what = format!("{args:?}: restart after kill {cycle}");
        verify_and_reset(&server, &mut histories, &HashSet::new(), &what);
    }

    // A clean stop: every write was answered, so every key holds exactly its last state.
    histories = write_until(&mut server, cycle_count, histories, &mut rng, 2000, false);
    assert_eq!(
        server.shutdown().code(),
        Some(0),
        "{args:?}: exit status after SIGTERM"
    );
    for keys in &histories {
        for history in keys {
            assert_eq!(
                history.acked,
                history.sent.len() - 1,
                "stopped writers leave nothing in flight"
            );
        }
    }
    let expected: Vec<Vec<State>> = histories
        .iter()
        .map(|keys| keys.iter().map(|h| h.current().clone()).collect())
        .collect();
    let server = TestServer::start_in(dir.path(), args);
    verify_and_reset(
        &server,
        &mut histories,
        &HashSet::new(),
        &format!("{args:?}: restart after SIGTERM"),
    );
    for (w, keys) in histories.iter().enumerate() {
        for (k, history) in keys.iter().enumerate() {
            assert_eq!(
                history.current(),
                &expected[w][k],
                "{} after a clean stop",
                key_name(w, k)
            );
        }
    }
}

/// What the test did to a WAL segment.
struct Chop {
    segment: PathBuf,
    cut: usize,
    data_len: usize,
    /// Keys whose name appears in the segment from `CHOP_MARGIN_BYTES` before the cut on.
    keys: HashSet<String>,
}

/// Cuts the newest WAL segment of a shard (chosen at random among those holding a record of
/// ours) a few bytes into one of our values.
fn chop_newest_wal_segment(data_dir: &Path, rng: &mut StdRng) -> Chop {
    let mut candidates = Vec::new();
    for shard in sorted_entries(data_dir, "shard-", "") {
        let Some(segment) = sorted_entries(&shard, "wal-", ".log").pop() else {
            continue;
        };
        let bytes = std::fs::read(&segment).unwrap();
        let data_len = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let markers: Vec<usize> = bytes[..data_len]
            .windows(VALUE_MARKER.len())
            .enumerate()
            .filter(|(_, w)| *w == VALUE_MARKER)
            .map(|(i, _)| i)
            .collect();
        if !markers.is_empty() {
            candidates.push((segment, bytes, data_len, markers));
        }
    }
    assert!(
        !candidates.is_empty(),
        "no shard's newest wal-*.log under {} holds a value the test wrote (the test assumes \
         WAL records hold values as plain bytes)",
        data_dir.display()
    );
    let (segment, bytes, data_len, markers) =
        candidates.swap_remove(rng.gen_range(0..candidates.len()));
    // A value in the later half of the segment, so that most keys of this shard stay under
    // the strict check too.
    let cut = markers[rng.gen_range(markers.len() / 2..markers.len())] + rng.gen_range(1..=12);
    let region = &bytes[cut.saturating_sub(CHOP_MARGIN_BYTES)..data_len];
    let keys = key_names_in(region);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(cut as u64).unwrap();
    file.sync_all().unwrap();
    Chop {
        segment,
        cut,
        data_len,
        keys,
    }
}

/// Entries of `dir` whose names start with `prefix` and end with `suffix`, sorted by name
/// (the numbers in the names are zero-padded).
fn sorted_entries(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    entries.sort();
    entries
}

/// Every `w<d>:k<dddd>` in `bytes`.
fn key_names_in(bytes: &[u8]) -> HashSet<String> {
    bytes
        .windows(8)
        .filter(|w| {
            w[0] == b'w'
                && w[1].is_ascii_digit()
                && w[2] == b':'
                && w[3] == b'k'
                && w[4..].iter().all(u8::is_ascii_digit)
        })
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

#[test]
fn torn_wal_tail_is_truncated_on_recovery() {
    let mut rng = StdRng::seed_from_u64(common::test_seed());
    let dir = tempfile::tempdir().unwrap();
    let mut histories = new_histories();
    let mut server = TestServer::start_in(dir.path(), ARGS);

    // One ordinary cycle first, so SSTables and older segments exist too.
    histories = write_until(&mut server, 0, histories, &mut rng, 2000, true);
    server = TestServer::start_in(dir.path(), ARGS);
    verify_and_reset(
        &server,
        &mut histories,
        &HashSet::new(),
        "restart after kill 0",
    );

    let target = rng.gen_range(1000..4000);
    histories = write_until(&mut server, 1, histories, &mut rng, target, true);
    let chop = chop_newest_wal_segment(dir.path(), &mut rng);
    let segment_name = chop
        .segment
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    eprintln!(
        "chopped {} to {} bytes (data ended at {}); {} keys in the lost region",
        chop.segment.display(),
        chop.cut,
        chop.data_len,
        chop.keys.len()
    );

    let server = TestServer::start_in(dir.path(), ARGS);
    let log = server.stderr_log();
    assert!(
        log.lines().any(|l| {
            let l = l.to_lowercase();
            l.contains("trunc") || l.contains("torn") || l.contains(&segment_name)
        }),
        "the server logs that it truncated the torn tail of {segment_name}:\n{log}"
    );
    let Reply::Bulk(info) = server.raw().request(&["INFO", "persistence"]) else {
        panic!("INFO persistence answers a bulk string");
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    let truncated: u64 = info
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("recovery_truncated_bytes:"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO persistence has recovery_truncated_bytes:\n{info}"));
    assert!(
        truncated > 0,
        "INFO persistence counts the truncated bytes:\n{info}"
    );
    verify_and_reset(
        &server,
        &mut histories,
        &chop.keys,
        "restart after chopping a WAL segment",
    );
    common::assert_serving(&server, &[]);
}
