//! Goal: point lookups that miss the memtable read each SSTable data block from its file
//! once and then from the block cache, within the cache's byte bound, and a damaged block
//! is an error every time, never cached as good.
//!
//! Method: drive a `ShardStore` synchronously. Flush 2,000 keys to SSTables, read one key
//! twice and compare the cache's hit and miss counters; read every key with a cache smaller
//! than the data and check the byte bound; flip a byte inside a data block and read it twice.

use std::os::unix::fs::FileExt;

use tskv::config::StoreOptions;
use tskv::store::ShardStore;

fn options(block_cache_bytes: u64) -> StoreOptions {
    StoreOptions {
        memtable_bytes: 64 << 10,
        sstable_block_bytes: 1024,
        block_cache_bytes,
        ..StoreOptions::default()
    }
}

fn load(dir: &std::path::Path, opts: &StoreOptions) -> ShardStore {
    let mut store = ShardStore::open(dir, opts).unwrap();
    for i in 0..2000 {
        store.put(format!("key:{i:05}").as_bytes(), &[b'v'; 100]);
    }
    store.request_freeze();
    while let Some(batch) = store.take_wal_batch().unwrap() {
        store.write_batch_sync(batch).unwrap();
    }
    while let Some(job) = store.take_flush_blocking().unwrap() {
        store.flush_sync(job).unwrap();
    }
    assert!(store.stats().sstables > 0 && store.stats().memtable_entries == 0);
    store
}

#[test]
fn a_block_is_read_once_then_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let store = load(dir.path(), &options(1 << 20));
    let before = store.block_cache_stats();
    let value = |k: &str| store.get(k.as_bytes()).unwrap().and_then(|l| l.value);
    assert_eq!(value("key:00042").as_deref(), Some(&[b'v'; 100][..]));
    let first = store.block_cache_stats();
    assert_eq!(first.misses, before.misses + 1);
    assert_eq!(value("key:00042").as_deref(), Some(&[b'v'; 100][..]));
    // A neighbour in the same 1 KiB block is a hit too.
    assert_eq!(value("key:00043").as_deref(), Some(&[b'v'; 100][..]));
    let second = store.block_cache_stats();
    assert_eq!(second.misses, first.misses, "no more reads");
    assert_eq!(second.hits, first.hits + 2);
}

#[test]
fn the_cache_stays_within_its_byte_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = load(dir.path(), &options(16 << 10));
    for i in 0..2000 {
        let got = store.get(format!("key:{i:05}").as_bytes()).unwrap();
        assert!(got.and_then(|l| l.value).is_some(), "key {i}");
    }
    let stats = store.block_cache_stats();
    assert!(stats.bytes <= 16 << 10, "{stats:?}");
    assert!(stats.misses > 16, "most blocks did not fit: {stats:?}");
}

#[test]
fn a_damaged_block_is_an_error_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(1 << 20);
    drop(load(dir.path(), &opts));
    // The first table holds the first keys written (they went in in key order).
    let sst = dir.path().join("sst-0000000001.sst");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&sst)
        .unwrap();
    let mut byte = [0];
    file.read_exact_at(&mut byte, 20).unwrap();
    file.write_all_at(&[byte[0] ^ 0x40], 20).unwrap();
    let store = ShardStore::open(dir.path(), &opts).unwrap();
    for _ in 0..2 {
        assert!(
            store.get(b"key:00000").is_err(),
            "a damaged block is never served"
        );
    }
}
