//! Micro-benchmarks of the storage engine's inner loops, each on data built in memory
//! beforehand so that only the operation named is timed:
//!
//! - `memtable/insert` and `memtable/insert_seq`: inserting 10,000 distinct keys (16
//!   bytes, 100-byte values) into an empty memtable, in random order (the B-tree's case)
//!   or in key order (a sequential load, appended to the memtable's sorted run); the
//!   throughput is per insert.
//! - `sstable/build`: encoding 10,000 sorted entries into a whole SSTable (4 KiB data
//!   blocks, index, 10-bit Bloom filter, footer) with `SstWriter`.
//! - `sstable/block_find`: `sstable::block::find` of a present key in one decoded 4 KiB
//!   data block (the linear walk a point lookup does once it knows the block).
//! - `sstable/table_get` and `sstable/table_get_cached`: `Table::get` of a present key in a
//!   10,000-entry table on disk: Bloom probe, index search, then the data block read with
//!   `pread` (from the page cache) and checked, or taken from a `BlockCache`.
//! - `bloom/probe_hit` and `bloom/probe_miss`: `Bloom::may_contain` on a filter of 100,000
//!   keys at 10 bits per key, for keys that are in it and keys that are not.
//! - `merge/disjoint_4` and `merge/overlapping_4`: `MergeIter` over 4 sorted in-memory
//!   sources of 2,500 entries each, either interleaved (every key in one source) or all four
//!   holding the same keys at different sequence numbers (the newest wins); the throughput
//!   is per input entry.
//!
//! Run with `cargo bench --bench engine_micro`; add `-- --quick` or a filter such as
//! `-- bloom` for a shorter run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tskv::base::SeqNo;
use tskv::block_cache::BlockCache;
use tskv::compaction::merge::{EntrySource, MergeIter};
use tskv::memtable::Memtable;
use tskv::sstable::block::find;
use tskv::sstable::bloom::{hash_key, Bloom};
use tskv::sstable::reader::Table;
use tskv::sstable::writer::SstWriter;
use tskv::sstable::{TableEntry, TableId};

/// Bytes of every key, as in the db_bench-style benchmark.
const KEY_BYTES: usize = 16;
/// Bytes of every value.
const VALUE_BYTES: usize = 100;
/// Entries per memtable, table and merge run.
const ENTRY_COUNT: usize = 10_000;
/// Keys in the Bloom filter benchmarks.
const BLOOM_KEY_COUNT: usize = 100_000;
/// Data block size of the tables built here (the engine's default).
const BLOCK_BYTES: usize = 4096;
/// Bloom filter bits per key (the engine's default).
const BLOOM_BITS_PER_KEY: usize = 10;
/// Sources of the merge benchmarks.
const MERGE_SOURCE_COUNT: usize = 4;

/// Key number `index` as 16 ASCII digits, so byte order is numeric order.
fn key(index: usize) -> [u8; KEY_BYTES] {
    let mut out = [0u8; KEY_BYTES];
    out.copy_from_slice(format!("{index:016}").as_bytes());
    out
}

fn value(rng: &mut SmallRng) -> Vec<u8> {
    (0..VALUE_BYTES).map(|_| rng.gen()).collect()
}

/// Keys `0..count` in key order, each with a random value and sequence number `index + 1`.
fn sorted_entries(count: usize, rng: &mut SmallRng) -> Vec<TableEntry> {
    (0..count)
        .map(|index| TableEntry {
            key: key(index).to_vec(),
            seq: SeqNo(index as u64 + 1),
            value: Some(value(rng)),
            expire_at_ms: None,
        })
        .collect()
}

fn build_table(entries: &[TableEntry]) -> Vec<u8> {
    let mut writer = SstWriter::new(BLOCK_BYTES, BLOOM_BITS_PER_KEY);
    for entry in entries {
        writer.add(&entry.key, entry.seq, entry.value.as_deref(), None);
    }
    writer.finish()
}

fn bench_memtable(c: &mut Criterion, rng: &mut SmallRng) {
    let sorted: Vec<[u8; KEY_BYTES]> = (0..ENTRY_COUNT).map(key).collect();
    let mut shuffled = sorted.clone();
    shuffled.shuffle(rng);
    let value = value(rng);
    let mut group = c.benchmark_group("memtable");
    group.throughput(Throughput::Elements(ENTRY_COUNT as u64));
    for (name, keys) in [("insert", &shuffled), ("insert_seq", &sorted)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                Memtable::new,
                |mut memtable| {
                    for (index, key) in keys.iter().enumerate() {
                        memtable.insert(key, SeqNo(index as u64 + 1), Some(&value), None);
                    }
                    // Returned, so that dropping it is not timed.
                    memtable
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

fn bench_sstable(c: &mut Criterion, rng: &mut SmallRng) {
    let entries = sorted_entries(ENTRY_COUNT, rng);
    let bytes = build_table(&entries);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(TableId(1).file_name());
    std::fs::write(&path, &bytes).expect("writing the table");
    let table = Table::open(&path, TableId(1)).expect("opening the table");
    let mut probes: Vec<usize> = (0..ENTRY_COUNT).collect();
    probes.shuffle(rng);

    let mut group = c.benchmark_group("sstable");
    group.throughput(Throughput::Elements(ENTRY_COUNT as u64));
    group.bench_function("build", |b| b.iter(|| build_table(black_box(&entries))));

    group.throughput(Throughput::Elements(1));
    let block_index = table.block_count() / 2;
    let payload = table.read_block(block_index).expect("reading a block");
    let block_keys: Vec<Vec<u8>> = tskv::sstable::block::BlockEntries::new(&payload)
        .map(|entry| entry.expect("a valid entry").key.to_vec())
        .collect();
    let mut at = 0;
    group.bench_function("block_find", |b| {
        b.iter(|| {
            at = (at + 7) % block_keys.len();
            let found = find(black_box(&payload), &block_keys[at]).expect("a valid block");
            assert!(found.is_some());
            found.map(|entry| entry.seq)
        });
    });

    let mut at = 0;
    group.bench_function("table_get", |b| {
        b.iter(|| {
            at = (at + 1) % probes.len();
            let found = table.get(&key(probes[at])).expect("a readable table");
            assert!(found.is_some());
            found
        });
    });

    let cache = std::cell::RefCell::new(BlockCache::new(64 << 20));
    let mut at = 0;
    group.bench_function("table_get_cached", |b| {
        b.iter(|| {
            at = (at + 1) % probes.len();
            let found = table
                .get_cached(&key(probes[at]), &cache)
                .expect("a readable table");
            assert!(found.is_some());
            found
        });
    });
    group.finish();
}

fn bench_bloom(c: &mut Criterion, rng: &mut SmallRng) {
    // Present keys are the even numbers, absent ones the odd numbers between them.
    let hashes: Vec<u64> = (0..BLOOM_KEY_COUNT)
        .map(|index| hash_key(&key(2 * index)))
        .collect();
    let bloom = Bloom::build(&hashes, BLOOM_BITS_PER_KEY);
    let mut present: Vec<[u8; KEY_BYTES]> = (0..BLOOM_KEY_COUNT).map(|i| key(2 * i)).collect();
    let mut absent: Vec<[u8; KEY_BYTES]> = (0..BLOOM_KEY_COUNT).map(|i| key(2 * i + 1)).collect();
    present.shuffle(rng);
    absent.shuffle(rng);

    let mut group = c.benchmark_group("bloom");
    group.throughput(Throughput::Elements(1));
    for (name, keys) in [("probe_hit", &present), ("probe_miss", &absent)] {
        let mut at = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                at = (at + 1) % keys.len();
                bloom.may_contain(black_box(&keys[at]))
            });
        });
    }
    group.finish();
}

/// The merge benchmarks' sources: `disjoint` deals keys out in turn, otherwise every source
/// holds the same keys, source `s` at sequence numbers above those of source `s - 1`.
fn merge_sources(disjoint: bool, rng: &mut SmallRng) -> Vec<Vec<TableEntry>> {
    let per_source = ENTRY_COUNT / MERGE_SOURCE_COUNT;
    let mut sources: Vec<Vec<TableEntry>> = (0..MERGE_SOURCE_COUNT)
        .map(|_| Vec::with_capacity(per_source))
        .collect();
    if disjoint {
        for (index, entry) in sorted_entries(ENTRY_COUNT, rng).into_iter().enumerate() {
            sources[index % MERGE_SOURCE_COUNT].push(entry);
        }
    } else {
        for (number, source) in sources.iter_mut().enumerate() {
            for mut entry in sorted_entries(per_source, rng) {
                entry.seq = SeqNo(entry.seq.0 + (number * per_source) as u64);
                source.push(entry);
            }
        }
    }
    sources
}

fn bench_merge(c: &mut Criterion, rng: &mut SmallRng) {
    let mut group = c.benchmark_group("merge");
    group.throughput(Throughput::Elements(ENTRY_COUNT as u64));
    for (name, disjoint) in [("disjoint_4", true), ("overlapping_4", false)] {
        let sources = merge_sources(disjoint, rng);
        let expected = if disjoint {
            ENTRY_COUNT
        } else {
            ENTRY_COUNT / MERGE_SOURCE_COUNT
        };
        group.bench_function(name, |b| {
            b.iter_batched(
                // Copying the sources is set-up, not timed.
                || sources.clone(),
                |sources| {
                    let boxed: Vec<EntrySource<'static>> = sources
                        .into_iter()
                        .map(|entries| Box::new(entries.into_iter().map(Ok)) as EntrySource<'_>)
                        .collect();
                    let mut count = 0;
                    for entry in MergeIter::new(boxed, 0) {
                        black_box(entry.expect("in-memory sources do not fail"));
                        count += 1;
                    }
                    assert_eq!(count, expected);
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

// `criterion_main!` would generate an undocumented public function; this is its body.
fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    let mut rng = SmallRng::seed_from_u64(6);
    bench_memtable(&mut criterion, &mut rng);
    bench_sstable(&mut criterion, &mut rng);
    bench_bloom(&mut criterion, &mut rng);
    bench_merge(&mut criterion, &mut rng);
    criterion.final_summary();
}
