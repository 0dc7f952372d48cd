//! Goal: a walk over a shard's keys from memory only (what `SCAN`, `KEYS` and `RANDOMKEY`
//! run on a shard's loop) stops where a block is missing, names it, and after the block
//! is read goes on from where it stopped, ending with exactly the keys a blocking scan
//! sees, and never reading a block itself.
//!
//! Method: drive a `ShardStore` synchronously with 1 KiB blocks and an 8 KiB block cache.
//! Write 3,000 keys in three flushes (overwrites and deletions between them, so the merge
//! has several tables and tombstones to hide), then walk: on each stop, read the named
//! blocks as the shard's ring would (`pread` of the block's extent, then
//! `ShardStore::fetched_block`), pin them, and drop the pins when the walk moved on, as the
//! shard does. Compare with the live keys of a blocking scan, and check the cache counted
//! no blocking read.

use std::os::unix::fs::FileExt;

use tskv::block_cache::PinnedBlocks;
use tskv::config::StoreOptions;
use tskv::shard::scan_walk::{KeyFilter, Walk, WalkEnd, WalkNeeds};
use tskv::store::ShardStore;

fn flush(store: &mut ShardStore) {
    store.request_freeze();
    while let Some(batch) = store.take_wal_batch().unwrap() {
        store.write_batch_sync(batch).unwrap();
    }
    while let Some(job) = store.take_flush_blocking().unwrap() {
        store.flush_sync(job).unwrap();
    }
}

fn loaded(dir: &std::path::Path) -> ShardStore {
    let opts = StoreOptions {
        memtable_bytes: 64 << 10,
        sstable_block_bytes: 1024,
        block_cache_bytes: 8 << 10,
        ..StoreOptions::default()
    };
    let mut store = ShardStore::open(dir, &opts).unwrap();
    for round in 0..3u32 {
        for i in 0..3000u32 {
            if i % 3 == round {
                store.put(format!("key:{i:05}").as_bytes(), &[b'v'; 60]);
            }
        }
        for i in (0..3000u32).step_by(7 + round as usize) {
            store.delete(format!("key:{i:05}").as_bytes());
        }
        flush(&mut store);
    }
    assert!(store.stats().sstables >= 3, "{:?}", store.stats());
    store
}

#[test]
fn a_walk_from_memory_resumes_where_it_stopped_and_ends_with_every_live_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = loaded(dir.path());
    let expected: Vec<Vec<u8>> = store
        .scan_from(b"")
        .map(Result::unwrap)
        .filter(|e| e.value.is_some())
        .map(|e| e.key)
        .collect();
    let blocking_before = store.block_cache_stats().blocking_reads;

    let mut walk = Walk::new(Vec::new(), usize::MAX, KeyFilter::default());
    let mut pinned = PinnedBlocks::new();
    let mut stops = 0;
    while walk.end.is_none() {
        let examined = walk.examined();
        let mut needs = WalkNeeds::default();
        walk.advance_in_memory(&store, &pinned, &mut needs);
        if walk.examined() > examined {
            pinned.clear();
        }
        if needs.is_empty() {
            continue;
        }
        stops += 1;
        assert!(stops < 10_000, "the walk makes progress");
        for fetch in needs.scan_blocks.iter().chain(&needs.point_blocks) {
            let (offset, len) = fetch.table.table().block_extent(fetch.index);
            let mut raw = vec![0; len];
            fetch
                .table
                .table()
                .file()
                .read_exact_at(&mut raw, offset)
                .unwrap();
            let block = store.fetched_block(fetch, raw, false).unwrap();
            pinned.insert((fetch.table.id(), fetch.index as u32), block);
        }
    }
    assert_eq!(walk.end, Some(WalkEnd::Exhausted));
    assert_eq!(walk.keys.len(), expected.len());
    assert!(
        walk.keys == expected,
        "the walk lists each live key once, in order"
    );
    assert!(stops > 10, "the walk stopped for blocks ({stops} stops)");
    assert_eq!(
        store.block_cache_stats().blocking_reads,
        blocking_before,
        "the walk read no block itself"
    );
}
