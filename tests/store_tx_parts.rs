//! Goal: the engine's half of transactions across shards keeps a transaction whole or
//! absent through a crash, on its own, without the server: a part whose transaction no
//! shard committed is skipped at open (and its sequence numbers are not handed out
//! again); a part whose commit record sits only in another shard's WAL counts, and the
//! shard writes its own commit record at open so the part still counts once that other
//! WAL is gone; an undecided part is never flushed into an SSTable; a coordinator's commit
//! record keeps its WAL segment until every participant has its own.
//!
//! Method: two `ShardStore`s in the shard directories of one data directory, driven
//! through the store API the shards use (`tx_part_begin`/`tx_part_end`, `commit_tx`,
//! `release_commit_hold`), with every WAL batch written and fdatasynced synchronously. A
//! "crash" drops the stores without writing anything more; reopening reads the outcomes
//! from both WALs (`tskv::datadir::tx_outcomes`), as the server does.

use std::path::Path;

use tskv::config::{CompactionOptions, StoreOptions};
use tskv::datadir::{shard_dir, tx_outcomes};
use tskv::store::ShardStore;
use tskv::wal::tx::TxId;

fn options() -> StoreOptions {
    StoreOptions {
        memtable_bytes: 64 << 10,
        wal_segment_bytes: 64 << 10,
        wal_zero_fill: true,
        sstable_block_bytes: 512,
        bloom_bits_per_key: 10,
        block_cache_bytes: 64 << 10,
        compaction: CompactionOptions::default(),
        compaction_filter: None,
    }
}

fn sync(store: &mut ShardStore) {
    if let Some(batch) = store.take_wal_batch().unwrap() {
        store.write_batch_sync(batch).unwrap();
    }
}

/// Opens both shards of `data` as the server does: outcomes first, then each shard.
fn open_both(data: &Path) -> (ShardStore, ShardStore) {
    let outcomes = tx_outcomes(data, 2).unwrap();
    let open = |i: usize| {
        ShardStore::open_shard(&shard_dir(data, i), &options(), &outcomes.shard(i)).unwrap()
    };
    (open(0), open(1))
}

fn value(store: &ShardStore, key: &str) -> Option<Vec<u8>> {
    store.get(key.as_bytes()).unwrap().and_then(|l| l.value)
}

/// Writes `key = value` as the part of transaction `id` on `store`, durably.
fn part(store: &mut ShardStore, id: TxId, key: &str, value: &str) {
    let first = store.tx_part_begin();
    store.put(key.as_bytes(), value.as_bytes());
    store.tx_part_end(id, first).expect("the part wrote");
    sync(store);
}

#[test]
fn a_part_no_shard_committed_is_skipped_at_open() {
    let data = tempfile::tempdir().unwrap();
    let (mut a, mut b) = open_both(data.path());
    a.put(b"before", b"1");
    sync(&mut a);
    part(&mut a, TxId(7), "x", "new");
    part(&mut b, TxId(7), "y", "new");
    let last_seq = a.last_seq();
    // Crash: both parts durable, no commit record anywhere.
    drop((a, b));
    let (mut a, b) = open_both(data.path());
    assert_eq!(value(&a, "before").as_deref(), Some(&b"1"[..]));
    assert_eq!(value(&a, "x"), None, "a part of an uncommitted transaction");
    assert_eq!(value(&b, "y"), None, "a part of an uncommitted transaction");
    assert!(
        a.last_seq() >= last_seq,
        "skipped writes keep their sequence numbers used"
    );
    // A write after the restart is not mistaken for the skipped part at the next open.
    a.put(b"x", b"after");
    sync(&mut a);
    drop((a, b));
    let (a, _) = open_both(data.path());
    assert_eq!(value(&a, "x").as_deref(), Some(&b"after"[..]));
}

#[test]
fn a_part_committed_elsewhere_counts_and_gets_its_own_commit_at_open() {
    let data = tempfile::tempdir().unwrap();
    let (mut a, mut b) = open_both(data.path());
    part(&mut a, TxId(3), "x", "committed");
    part(&mut b, TxId(3), "y", "committed");
    // Shard 0 coordinates: its commit record is durable, shard 1's own never written.
    a.commit_tx(TxId(3), true);
    sync(&mut a);
    drop((a, b));
    let (a, b) = open_both(data.path());
    assert_eq!(value(&a, "x").as_deref(), Some(&b"committed"[..]));
    assert_eq!(value(&b, "y").as_deref(), Some(&b"committed"[..]));
    drop((a, b));
    // Shard 1 wrote its own commit record at that open: the part counts even with the
    // coordinator's WAL gone.
    for entry in std::fs::read_dir(shard_dir(data.path(), 0)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let (_, b) = open_both(data.path());
    assert_eq!(value(&b, "y").as_deref(), Some(&b"committed"[..]));
}

#[test]
fn an_undecided_part_is_not_flushed_into_an_sstable() {
    let data = tempfile::tempdir().unwrap();
    let (mut a, _) = open_both(data.path());
    a.put(b"plain", b"1");
    part(&mut a, TxId(9), "x", "undecided");
    a.request_freeze();
    sync(&mut a);
    assert!(
        a.take_flush_blocking().unwrap().is_none(),
        "a memtable holding an undecided part is flushed"
    );
    a.commit_tx(TxId(9), false);
    sync(&mut a);
    let job = a
        .take_flush_blocking()
        .unwrap()
        .expect("decided: the flush goes");
    a.flush_sync(job).unwrap();
}

#[test]
fn a_commit_record_keeps_its_segment_until_released() {
    let data = tempfile::tempdir().unwrap();
    let (mut a, _) = open_both(data.path());
    let dir = shard_dir(data.path(), 0);
    let segments = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".log")
            })
            .count()
    };
    part(&mut a, TxId(5), "x", "v");
    a.commit_tx(TxId(5), true);
    sync(&mut a);
    // Fill and flush past the segment holding the commit record.
    let value = vec![b'v'; 1000];
    for i in 0..200 {
        a.put(format!("fill{i}").as_bytes(), &value);
        sync(&mut a);
    }
    while let Some(job) = a.take_flush_blocking().unwrap() {
        a.flush_sync(job).unwrap();
        sync(&mut a);
    }
    a.delete_covered_segments();
    let held = segments();
    a.release_commit_hold(TxId(5));
    a.delete_covered_segments();
    assert!(
        segments() < held,
        "released, the covered segments go ({held} before)"
    );
    assert!(held > 1, "the commit record's segment was kept");
}
