//! Goal: a key's expiry deadline is part of its version in the engine: it survives flushes,
//! compactions and reopening exactly, an expired version is never read, and compaction
//! reclaims expired versions instead of carrying them forever.
//!
//! Method: the embedded [`Engine`] with a tiny memtable and level-0 trigger, so writes go
//! through several SSTables and compactions. Keys get deadlines already past, an hour
//! ahead, or none; after flushes, a compaction and a reopen, point reads and scans must show
//! exactly the live keys with their deadlines, and the SSTable files themselves must hold no
//! expired value and, once compacted, no entry for an expired key at all.

use std::path::Path;
use std::sync::Arc;

use tskv::base::unix_now_ms;
use tskv::config::{CompactionOptions, StoreOptions};
use tskv::engine::{Durability, Engine, Options};
use tskv::sstable::iter::TableIter;
use tskv::sstable::reader::Table;
use tskv::sstable::{TableEntry, TableId};

const KEYS: usize = 3000;

fn options() -> Options {
    Options {
        store: StoreOptions {
            memtable_bytes: 16 << 10,
            wal_segment_bytes: 64 << 10,
            wal_zero_fill: true,
            sstable_block_bytes: 512,
            bloom_bits_per_key: 10,
            block_cache_bytes: 64 << 10,
            compaction_filter: None,
            compaction: CompactionOptions {
                l0_trigger_tables: 2,
                level1_target_bytes: 1 << 20,
                level_size_ratio: 4,
                target_table_bytes: 64 << 10,
            },
        },
        durability: Durability::Buffered,
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:05}").into_bytes()
}

/// Key `i`'s deadline: past for i % 3 == 0, an hour ahead for i % 3 == 1, none otherwise.
fn deadline(i: usize, now_ms: u64) -> Option<u64> {
    match i % 3 {
        0 => Some(now_ms - 1),
        1 => Some(now_ms + 3_600_000),
        _ => None,
    }
}

/// Every entry of every SSTable file in `dir`, read from the files.
fn table_entries(dir: &Path) -> Vec<TableEntry> {
    let mut entries = Vec::new();
    for file in std::fs::read_dir(dir).unwrap() {
        let name = file.unwrap().file_name().to_string_lossy().into_owned();
        let Some(id) = TableId::from_file_name(&name) else {
            continue;
        };
        let table = Arc::new(Table::open(&dir.join(&name), id).unwrap());
        entries.extend(TableIter::new(table).map(Result::unwrap));
    }
    entries
}

fn check_reads(engine: &Engine, now_ms: u64) {
    for i in 0..KEYS {
        let got = engine.get(&key(i)).unwrap();
        if i % 3 == 0 {
            assert_eq!(got, None, "key {i} expired before it was read");
        } else {
            assert_eq!(got, Some(format!("value-{i}").into_bytes()), "key {i}");
        }
    }
    let scanned: Vec<Vec<u8>> = engine.scan::<_, &[u8]>(..).map(|e| e.unwrap().0).collect();
    let live: Vec<Vec<u8>> = (0..KEYS).filter(|i| i % 3 != 0).map(key).collect();
    assert_eq!(scanned, live, "a scan shows exactly the live keys");
    // Deadlines come back exactly, wherever the version lives.
    for entry in engine.store().scan_from(b"") {
        let entry = entry.unwrap();
        let i: usize = std::str::from_utf8(&entry.key[4..])
            .unwrap()
            .parse()
            .unwrap();
        if entry.value.is_some() {
            assert_eq!(entry.expire_at_ms, deadline(i, now_ms), "key {i}");
        }
    }
}

#[test]
fn deadlines_survive_flush_compaction_and_reopen_and_expired_versions_are_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let now_ms = unix_now_ms();
    {
        let mut engine = Engine::open(dir.path(), options()).unwrap();
        for i in 0..KEYS {
            let value = format!("value-{i}");
            engine
                .put_expiring(&key(i), value.as_bytes(), deadline(i, now_ms))
                .unwrap();
            if i % 1000 == 999 {
                engine.flush().unwrap();
            }
        }
        engine.flush().unwrap();
        // The tables hold the deadlines themselves (the memtable is empty now).
        let flushed = table_entries(dir.path());
        assert!(
            flushed
                .iter()
                .any(|e| e.expire_at_ms == Some(now_ms + 3_600_000)),
            "the flushed tables hold the values with their deadlines"
        );
        check_reads(&engine, now_ms);
        engine.compact().unwrap();
        check_reads(&engine, now_ms);
    }
    let compacted = table_entries(dir.path());
    assert!(
        compacted
            .iter()
            .all(|e| e.value.is_none() || !tskv::base::is_expired(e.expire_at_ms, now_ms)),
        "no expired value is left in an SSTable"
    );
    let expired_entries = compacted
        .iter()
        .filter(|e| {
            let i: usize = std::str::from_utf8(&e.key[4..]).unwrap().parse().unwrap();
            i.is_multiple_of(3)
        })
        .count();
    assert_eq!(
        expired_entries, 0,
        "compaction into the bottom level drops expired keys entirely"
    );
    let engine = Engine::open(dir.path(), options()).unwrap();
    check_reads(&engine, now_ms);
}
