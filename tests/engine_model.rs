//! Goal: the embedded `Engine` behaves like a `BTreeMap` through any sequence of puts,
//! deletes, gets, range scans, flushes, compactions, reopens and crashes, and a crash
//! loses exactly the writes that were not yet synced.
//!
//! Method: proptest generates operation sequences over 64 keys with tiny memtables and
//! levels (so flushes and compactions to several levels happen within a few hundred
//! operations), in both durability modes. Every operation is applied to the engine and to
//! a model; gets and scans are compared. A *clean reopen* syncs first and must keep
//! everything. A *crash* drops the engine without syncing: the reopened engine must hold
//! exactly the writes whose sequence number was durable at the crash (every write gets the
//! next sequence number), which the model rebuilds from its log of writes.

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;
use tskv::config::{CompactionOptions, StoreOptions};
use tskv::engine::{Durability, Engine, Options};

#[derive(Clone, Debug)]
enum Op {
    Put(u8, usize),
    Delete(u8),
    Get(u8),
    Scan(u8, u8, bool),
    Sync,
    Flush,
    Compact,
    Reopen,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (any::<u8>(), 0usize..200).prop_map(|(k, len)| Op::Put(k % 64, len)),
        3 => any::<u8>().prop_map(|k| Op::Delete(k % 64)),
        5 => any::<u8>().prop_map(|k| Op::Get(k % 70)),
        2 => (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(a, b, i)| Op::Scan(a % 70, b % 70, i)),
        2 => Just(Op::Sync),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

fn options(durability: Durability) -> Options {
    Options {
        store: StoreOptions {
            memtable_bytes: 2 << 10,
            wal_segment_bytes: 8 << 10,
            wal_zero_fill: true,
            sstable_block_bytes: 256,
            bloom_bits_per_key: 10,
            block_cache_bytes: 64 << 10,
            compaction_filter: None,
            compaction: CompactionOptions {
                l0_trigger_tables: 2,
                level1_target_bytes: 4 << 10,
                level_size_ratio: 2,
                target_table_bytes: 1 << 10,
            },
        },
        durability,
    }
}

fn key(k: u8) -> Vec<u8> {
    format!("key:{k:03}").into_bytes()
}

/// A write as the model logs it: `None` is a delete.
type Write = (Vec<u8>, Option<Vec<u8>>);

fn replay(log: &[Write]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    for (k, v) in log {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
    model
}

fn check_scan(engine: &Engine, model: &BTreeMap<Vec<u8>, Vec<u8>>, a: u8, b: u8, inclusive: bool) {
    let (lo, hi) = (key(a.min(b)), key(a.max(b)));
    let end = if inclusive {
        Bound::Included(hi.clone())
    } else {
        Bound::Excluded(hi.clone())
    };
    let got: Vec<(Vec<u8>, Vec<u8>)> = engine
        .scan((Bound::Included(lo.clone()), end.clone()))
        .collect::<Result<_, _>>()
        .unwrap();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model
        .range((Bound::Included(lo), end))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(got, want);
}

fn run(ops: Vec<Op>, durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(dir.path(), options(durability)).unwrap();
    let mut log: Vec<Write> = Vec::new();
    let mut model = BTreeMap::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Put(k, len) => {
                let value = vec![b'a' + (step % 26) as u8; len];
                engine.put(&key(k), &value).unwrap();
                model.insert(key(k), value.clone());
                log.push((key(k), Some(value)));
            }
            Op::Delete(k) => {
                engine.delete(&key(k)).unwrap();
                model.remove(&key(k));
                log.push((key(k), None));
            }
            Op::Get(k) => assert_eq!(
                engine.get(&key(k)).unwrap(),
                model.get(&key(k)).cloned(),
                "step {step}"
            ),
            Op::Scan(a, b, inclusive) => check_scan(&engine, &model, a, b, inclusive),
            Op::Sync => engine.sync().unwrap(),
            Op::Flush => engine.flush().unwrap(),
            Op::Compact => engine.compact().unwrap(),
            Op::Reopen => {
                engine.sync().unwrap();
                drop(engine);
                engine = Engine::open(dir.path(), options(durability)).unwrap();
            }
            Op::Crash => {
                // Sequence numbers start at 1 and every write takes the next: the durable
                // ones are the first `durable_seq` writes since the store was created.
                let durable = engine.store().durable_seq().0 as usize;
                drop(engine);
                log.truncate(durable);
                model = replay(&log);
                engine = Engine::open(dir.path(), options(durability)).unwrap();
            }
        }
    }
    for k in 0..70 {
        assert_eq!(engine.get(&key(k)).unwrap(), model.get(&key(k)).cloned());
    }
    let all: Vec<(Vec<u8>, Vec<u8>)> = engine
        .scan::<_, &[u8]>(..)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all, model.into_iter().collect::<Vec<_>>());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sync_each_write_matches_the_model(ops in proptest::collection::vec(op(), 1..300)) {
        run(ops, Durability::SyncEachWrite);
    }

    #[test]
    fn buffered_matches_the_model_and_a_crash_loses_only_unsynced_writes(
        ops in proptest::collection::vec(op(), 1..300)
    ) {
        run(ops, Durability::Buffered);
    }
}
