//! Goal: in the running server, the compaction core merges the SSTables that flushes pile
//! up, so their count and bytes stay bounded while clients overwrite the same keys, and
//! every key reads back right before and after a restart.
//!
//! Method: `--shards 2 --memtable-bytes 65536`, so flushes happen every few hundred
//! writes. Overwrite 2,000 keys (100-byte values) ten times through pipelines of the
//! `redis` crate, deleting every 10th key at the end. Wait (bounded by a generous deadline,
//! not asserted as a time) until `INFO persistence` reports compactions and fewer than the
//! level-0 trigger of tables in level 0, then check every key, `DBSIZE`, and the live
//! SSTable bytes against ten copies of the data. Restart on the same directory and check
//! again.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;

const KEYS: usize = 2000;
const ROUNDS: usize = 10;

fn info_field(conn: &mut redis::Connection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("persistence").query(conn).unwrap();
    common::info_number(&info, field)
}

fn value(round: usize, i: usize) -> String {
    format!("{round:03}-{i:06}-").repeat(9)
}

fn check_all(conn: &mut redis::Connection) {
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("key:{i:06}")).collect();
        let got: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(conn).unwrap();
        for (&i, got) in chunk.iter().zip(got) {
            let want = (i % 10 != 0).then(|| value(ROUNDS - 1, i));
            assert_eq!(got, want, "key {i}");
        }
    }
    let dbsize: u64 = redis::cmd("DBSIZE").query(conn).unwrap();
    assert_eq!(dbsize, (KEYS - KEYS / 10) as u64);
}

#[test]
fn compaction_bounds_tables_and_keeps_every_key_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--shards", "2", "--memtable-bytes", "65536"];
    let mut server = TestServer::start_in(dir.path(), &args);
    let mut conn = server.conn();
    for round in 0..ROUNDS {
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(250) {
            let mut pipe = redis::pipe();
            for &i in chunk {
                pipe.cmd("SET")
                    .arg(format!("key:{i:06}"))
                    .arg(value(round, i))
                    .ignore();
            }
            let () = pipe.query(&mut conn).unwrap();
        }
    }
    let mut pipe = redis::pipe();
    for i in (0..KEYS).step_by(10) {
        pipe.cmd("DEL").arg(format!("key:{i:06}")).ignore();
    }
    let () = pipe.query(&mut conn).unwrap();
    check_all(&mut conn);

    // Level 0 holds at most the trigger count per shard once the core has caught up.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let compactions = info_field(&mut conn, "compactions");
        let l0 = info_field(&mut conn, "l0_sstables");
        if compactions > 0 && l0 < 2 * 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the compaction core did not catch up: compactions {compactions}, l0_sstables {l0}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut conn)
        .unwrap();
    let level_tables: Vec<u64> = info
        .lines()
        .find_map(|l| l.strip_prefix("level_sstables:"))
        .expect("INFO shows tables per level")
        .trim()
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(
        level_tables.len(),
        7,
        "one count per level: {level_tables:?}"
    );
    assert!(
        level_tables[1..].iter().sum::<u64>() > 0,
        "data below level 0: {level_tables:?}"
    );
    let sstables_then: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("sstables:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        level_tables.iter().sum::<u64>(),
        sstables_then,
        "from one INFO reply"
    );
    let flushes = info_field(&mut conn, "flushes");
    let sstables = info_field(&mut conn, "sstables");
    let sstable_bytes = info_field(&mut conn, "sstable_bytes");
    let one_copy_bytes = (KEYS * (10 + value(0, 0).len() + 16)) as u64;
    eprintln!(
        "flushes {flushes}, live sstables {sstables}, sstable bytes {sstable_bytes}, one copy {one_copy_bytes}"
    );
    assert!(
        flushes > 20,
        "the test wrote enough to flush often ({flushes})"
    );
    assert!(
        sstables < flushes / 2,
        "compaction merged tables: {sstables} live after {flushes} flushes"
    );
    assert!(
        sstable_bytes < 4 * one_copy_bytes,
        "{sstable_bytes} live SSTable bytes for {one_copy_bytes} of data written {ROUNDS} times"
    );
    check_all(&mut conn);

    server.shutdown();
    let server = TestServer::start_in(dir.path(), &args);
    let mut conn = server.conn();
    check_all(&mut conn);
}
