//! Goal: the storage engine behaves like a `BTreeMap` through any mix of writes, WAL
//! batches, memtable flushes and restarts.
//!
//! Method: proptest generates a sequence of operations (put, delete, get, taking and
//! synchronously writing the WAL batch, taking and executing a flush, counting keys, and
//! reopening the store from its directory). Every operation is applied both to a
//! `ShardStore` and to a `BTreeMap` model, and every read is compared. The memtable limit
//! (4 KiB) and WAL segment size (2 KiB) are tiny so freezes, flushes, segment rotations
//! and oversized batches happen often. A batch may be taken and held "in the ring" while
//! writes, reads and flushes go on, as the shard loop does. Before a reopen all pending WAL records are written
//! and synced, so the reopened store must hold exactly the model's contents.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use tskv::base::SeqNo;
use tskv::config::{CompactionOptions, StoreOptions};
use tskv::store::{Lookup, ShardStore};
use tskv::wal::WalBatch;

#[derive(Clone, Debug)]
enum Op {
    Put(u8, usize),
    Delete(u8),
    Get(u8),
    SyncWal,
    /// Take a batch but leave it "in the ring" while other operations go on.
    TakeBatch,
    /// Complete the held batch (write and fdatasync).
    CompleteBatch,
    Flush,
    /// Run compactions until the policy is satisfied.
    Compact,
    Len,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (any::<u8>(), 0usize..300).prop_map(|(k, len)| Op::Put(k % 48, len)),
        3 => any::<u8>().prop_map(|k| Op::Delete(k % 48)),
        5 => any::<u8>().prop_map(|k| Op::Get(k % 64)),
        4 => Just(Op::SyncWal),
        2 => Just(Op::TakeBatch),
        2 => Just(Op::CompleteBatch),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Len),
        1 => Just(Op::Reopen),
    ]
}

fn options() -> StoreOptions {
    StoreOptions {
        memtable_bytes: 4 << 10,
        wal_segment_bytes: 2 << 10,
        wal_zero_fill: true,
        sstable_block_bytes: 256,
        bloom_bits_per_key: 10,
        block_cache_bytes: 64 << 10,
        // Tiny levels, so a few flushes fill level 0 and compactions reach level 3 and more.
        compaction_filter: None,
        compaction: CompactionOptions {
            l0_trigger_tables: 2,
            level1_target_bytes: 4 << 10,
            level_size_ratio: 2,
            target_table_bytes: 1 << 10,
        },
    }
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k:03}").into_bytes()
}

struct Harness {
    store: ShardStore,
    model: BTreeMap<Vec<u8>, Vec<u8>>,
    last_seq: SeqNo,
    held: Option<WalBatch>,
}

impl Harness {
    fn complete_batch(&mut self) {
        if let Some(batch) = self.held.take() {
            let last = batch.last_seq;
            self.store.write_batch_sync(batch).unwrap();
            assert_eq!(self.store.written_seq(), last);
        }
    }

    fn sync_wal(&mut self) {
        self.complete_batch();
        if let Some(batch) = self.store.take_wal_batch().unwrap() {
            let last = batch.last_seq;
            self.store.write_batch_sync(batch).unwrap();
            assert_eq!(self.store.written_seq(), last);
            assert_eq!(self.store.durable_seq(), last);
        }
    }

    fn flush(&mut self) {
        if let Some(job) = self.store.take_flush_blocking().unwrap() {
            self.store.flush_sync(job).unwrap();
        }
    }

    /// What the shard does on a write stall: push the WAL and the waiting flush through;
    /// on a level 0 too deep, wait for compaction (here run inline; the server's
    /// compaction core runs it meanwhile).
    fn make_room(&mut self) {
        while !self.store.can_accept_writes() {
            if self.store.level0_stalled() {
                self.store.compact_sync().unwrap();
            }
            self.sync_wal();
            self.flush();
        }
    }

    fn check_seq(&mut self, seq: SeqNo) {
        assert!(seq > self.last_seq, "sequence numbers must increase");
        self.last_seq = seq;
    }

    fn check_get(&self, k: &[u8]) {
        let got = self.store.get(k).unwrap();
        let got_value = got.and_then(|Lookup { value, .. }| value);
        assert_eq!(
            got_value.as_ref(),
            self.model.get(k),
            "key {:?}",
            String::from_utf8_lossy(k)
        );
    }

    fn check_all(&self) {
        for k in 0..64 {
            self.check_get(&key(k));
        }
        assert_eq!(self.store.len().unwrap(), self.model.len() as u64);
    }

    fn apply(&mut self, op: Op, dir: &Path) {
        match op {
            Op::Put(k, len) => {
                self.make_room();
                let value = vec![k.wrapping_add(len as u8); len];
                let seq = self.store.put(&key(k), &value);
                self.check_seq(seq);
                self.model.insert(key(k), value);
            }
            Op::Delete(k) => {
                self.make_room();
                let seq = self.store.delete(&key(k));
                self.check_seq(seq);
                self.model.remove(&key(k));
            }
            Op::Get(k) => self.check_get(&key(k)),
            Op::SyncWal => self.sync_wal(),
            Op::TakeBatch => {
                if self.held.is_none() {
                    self.held = self.store.take_wal_batch().unwrap();
                }
            }
            Op::CompleteBatch => self.complete_batch(),
            Op::Flush => self.flush(),
            Op::Compact => {
                self.store.compact_sync().unwrap();
                self.check_all();
            }
            Op::Len => assert_eq!(self.store.len().unwrap(), self.model.len() as u64),
            Op::Reopen => {
                self.sync_wal();
                let last = self.store.last_seq();
                // Replacing the store drops the old one without any shutdown, like a crash
                // (after the sync above, so nothing acknowledged is lost).
                let reopened = ShardStore::open(dir, &options()).unwrap();
                self.store = reopened;
                assert_eq!(self.store.last_seq(), last);
                assert_eq!(self.store.durable_seq(), last);
                assert_eq!(self.store.written_seq(), last);
                self.check_all();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_btreemap(ops in proptest::collection::vec(op(), 1..300)) {
        let dir = tempfile::tempdir().unwrap();
        let store = ShardStore::open(dir.path(), &options()).unwrap();
        let mut h = Harness { store, model: BTreeMap::new(), last_seq: SeqNo(0), held: None };
        for op in ops {
            h.apply(op, dir.path());
        }
        h.check_all();
        h.apply(Op::Reopen, dir.path());
    }
}

/// A long deterministic run that certainly crosses many flushes and segments.
#[test]
fn many_flushes_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let store = ShardStore::open(dir.path(), &options()).unwrap();
    let mut h = Harness {
        store,
        model: BTreeMap::new(),
        last_seq: SeqNo(0),
        held: None,
    };
    for round in 0..20u32 {
        for i in 0..200u32 {
            let k = ((i * 7 + round) % 48) as u8;
            if i % 5 == 0 {
                h.apply(Op::Delete(k), dir.path());
            } else {
                h.apply(Op::Put(k, (i as usize * 13) % 250), dir.path());
            }
            if i % 3 == 0 {
                h.apply(Op::SyncWal, dir.path());
            }
            if i % 17 == 0 {
                h.apply(Op::Flush, dir.path());
            }
        }
        h.apply(Op::Reopen, dir.path());
    }
    let stats = h.store.stats();
    assert!(
        stats.sstables > 3,
        "expected several SSTables, got {stats:?}"
    );
    // Covered WAL segments are deleted: only a handful may remain.
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("wal-")
        })
        .count();
    assert!(segments <= 4, "{segments} WAL segments left");
}
