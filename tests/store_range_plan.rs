//! Goal: the store's range planner names exactly the data blocks a range scan would read
//! from disk, within the cap it is given, so a caller can read them through a ring (in
//! steps for a long range) and then scan from memory only.
//!
//! Method: drive a `ShardStore` synchronously with 2,000 keys flushed to SSTables of 1 KiB
//! blocks. List a range's blocks with `blocks_in_range` and check them against the tables'
//! indexes; read them (`fetched_block`) pinned for the request and check that a scan from
//! memory of that range (`first_block_missing`) now misses nothing, while one past it
//! misses; list a long range in capped steps and check the steps cover it once.

use std::collections::HashSet;
use std::os::unix::fs::FileExt;

use tskv::block_cache::PinnedBlocks;
use tskv::config::StoreOptions;
use tskv::store::{BlockFetch, ShardStore};

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:05}").into_bytes()
}

fn loaded(dir: &std::path::Path) -> ShardStore {
    let opts = StoreOptions {
        memtable_bytes: 64 << 10,
        sstable_block_bytes: 1024,
        block_cache_bytes: 0,
        ..StoreOptions::default()
    };
    let mut store = ShardStore::open(dir, &opts).unwrap();
    for i in 0..2000 {
        store.put(&key(i), &[b'v'; 100]);
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

/// Reads `fetches` as the ring would and pins them (the cache is disabled).
fn pin(store: &ShardStore, fetches: &[BlockFetch], pins: &mut PinnedBlocks) {
    for fetch in fetches {
        let (offset, len) = fetch.table.table().block_extent(fetch.index);
        let mut raw = vec![0; len];
        fetch
            .table
            .table()
            .file()
            .read_exact_at(&mut raw, offset)
            .unwrap();
        let block = store.fetched_block(fetch, raw, false).unwrap();
        pins.insert((fetch.table.id(), fetch.index as u32), block);
    }
}

fn names(fetches: &[BlockFetch]) -> HashSet<(u64, usize)> {
    fetches.iter().map(|f| (f.table.id().0, f.index)).collect()
}

#[test]
fn a_range_lists_the_blocks_that_hold_it_and_then_scans_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = loaded(dir.path());
    let (start, end) = (key(500), key(599));
    let mut listed = Vec::new();
    assert!(store.blocks_in_range(&start, &end, usize::MAX, &mut listed));
    assert!(
        listed.len() > 1,
        "100 keys of ~110 bytes span several 1 KiB blocks"
    );
    for fetch in &listed {
        let entry = &fetch.table.table().index()[fetch.index];
        let before = fetch
            .index
            .checked_sub(1)
            .map(|i| &fetch.table.table().index()[i]);
        assert!(
            entry.last_key >= start,
            "block {} ends before the range",
            fetch.index
        );
        assert!(
            before.is_none_or(|b| b.last_key < end),
            "block {} starts after it",
            fetch.index
        );
    }
    assert_eq!(names(&listed).len(), listed.len(), "no block twice");

    let upto = |last: Vec<u8>| move |e: &tskv::sstable::TableEntry| e.key >= last;
    let missed = store
        .first_block_missing(&start, upto(end.clone()))
        .unwrap();
    assert!(missed.is_some(), "a cold range misses");

    let mut pins = PinnedBlocks::new();
    pin(&store, &listed, &mut pins);
    store.pin_for_request(pins);
    let missed = store
        .first_block_missing(&start, upto(end.clone()))
        .unwrap();
    assert!(missed.is_none(), "the listed blocks are all the scan reads");
    let mut again = Vec::new();
    assert!(store.blocks_in_range(&start, &end, usize::MAX, &mut again));
    assert!(again.is_empty(), "pinned blocks are not listed again");
    let past = store.first_block_missing(&start, upto(key(1500))).unwrap();
    assert!(past.is_some(), "a scan past the range misses");
    assert_eq!(store.unpin_request().len(), listed.len());
}

#[test]
fn a_long_range_is_listed_in_capped_steps_that_cover_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = loaded(dir.path());
    let (start, end) = (key(0), key(1999));
    let mut whole = Vec::new();
    assert!(store.blocks_in_range(&start, &end, usize::MAX, &mut whole));

    let mut steps = 0;
    let mut listed: Vec<BlockFetch> = Vec::new();
    loop {
        let before = listed.len();
        let complete = store.blocks_in_range(&start, &end, 16, &mut listed);
        assert!(listed.len() - before <= 16, "a step lists at most its cap");
        steps += 1;
        if complete {
            break;
        }
        assert_eq!(listed.len() - before, 16, "a capped step lists a full cap");
    }
    assert_eq!(
        names(&listed),
        names(&whole),
        "the steps list the whole range"
    );
    assert_eq!(listed.len(), whole.len(), "and each block once");
    assert!(steps > 2, "{} blocks took {steps} steps", whole.len());
}
