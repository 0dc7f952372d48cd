//! Goal: compaction bounds the number of SSTables and the bytes on disk however long the
//! store runs, never loses or resurrects a key, keeps every file an older version (an open
//! iterator) still uses, and a crash at any point of it leaves a directory that opens with
//! every acknowledged key.
//!
//! Method: drive a `ShardStore` synchronously (the same engine code the server runs, with
//! blocking I/O instead of the rings) with tiny memtables and levels. Overwrite the same
//! keys many times, delete some, flush and compact, and compare with a `BTreeMap`; measure
//! live table bytes against one copy of the data. For the crash, run one compaction job
//! step by step and, before and after every step and after the install, copy the directory
//! (what a crash would leave, page cache aside) and open the copy.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tskv::compaction::job::CompactionJob;
use tskv::compaction::picker::pick;
use tskv::compaction::sink::SyncSink;
use tskv::config::{CompactionOptions, StoreOptions};
use tskv::store::ShardStore;
use tskv::version::set::VersionSet;

fn options() -> StoreOptions {
    StoreOptions {
        memtable_bytes: 8 << 10,
        wal_segment_bytes: 64 << 10,
        wal_zero_fill: true,
        sstable_block_bytes: 512,
        bloom_bits_per_key: 10,
        block_cache_bytes: 64 << 10,
        compaction_filter: None,
        compaction: CompactionOptions {
            l0_trigger_tables: 4,
            level1_target_bytes: 32 << 10,
            level_size_ratio: 4,
            target_table_bytes: 8 << 10,
        },
    }
}

fn sync_wal(store: &mut ShardStore) {
    while let Some(batch) = store.take_wal_batch().unwrap() {
        store.write_batch_sync(batch).unwrap();
    }
}

fn flush_all(store: &mut ShardStore) {
    sync_wal(store);
    while let Some(job) = store.take_flush_blocking().unwrap() {
        store.flush_sync(job).unwrap();
        sync_wal(store);
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:06}").into_bytes()
}

/// Writes `rounds` overwrites of `keys` keys (100-byte values), deleting every 7th key in
/// the last round, flushing as the memtable fills and compacting after every round.
fn overwrite(
    store: &mut ShardStore,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    keys: usize,
    rounds: usize,
) {
    for round in 0..rounds {
        for i in 0..keys {
            let k = key(i);
            if round + 1 == rounds && i % 7 == 0 {
                store.delete(&k);
                model.remove(&k);
            } else {
                let value = format!("{round:04}-{i:06}-").repeat(8).into_bytes();
                store.put(&k, &value);
                model.insert(k, value);
            }
            if !store.can_accept_writes() || i % 64 == 0 {
                flush_all(store);
            }
        }
        flush_all(store);
        store.compact_sync().unwrap();
    }
}

fn assert_matches(store: &ShardStore, model: &BTreeMap<Vec<u8>, Vec<u8>>, keys: usize) {
    for i in 0..keys {
        let k = key(i);
        let got = store.get(&k).unwrap().and_then(|l| l.value);
        assert_eq!(got.as_ref(), model.get(&k), "key {i}");
    }
    assert_eq!(store.len().unwrap(), model.len() as u64);
    let scanned: Vec<(Vec<u8>, Vec<u8>)> = store
        .scan_from(b"")
        .map(Result::unwrap)
        .filter_map(|e| e.value.map(|v| (e.key, v)))
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(scanned, want, "a full scan returns the model in order");
}

fn sst_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sst"))
        .collect();
    names.sort();
    names
}

#[test]
fn overwrites_stay_within_bounded_tables_and_space() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ShardStore::open(dir.path(), &options()).unwrap();
    let mut model = BTreeMap::new();
    let keys = 600;
    overwrite(&mut store, &mut model, keys, 10);
    assert_matches(&store, &model, keys);

    let version = Arc::clone(store.version());
    let levels = version.level_bytes();
    assert!(
        levels[1..].iter().any(|&b| b > 0),
        "compaction moved data below level 0: {levels:?}"
    );
    assert!(
        version.levels()[0].len() < options().compaction.l0_trigger_tables,
        "level 0 is compacted down: {levels:?}"
    );
    let live_bytes: u64 = levels.iter().sum();
    let one_copy_bytes = model
        .iter()
        .map(|(k, v)| (k.len() + v.len() + 16) as u64)
        .sum::<u64>();
    let ratio = live_bytes as f64 / one_copy_bytes as f64;
    eprintln!(
        "10 overwrites of {keys} keys: live SSTable bytes {live_bytes}, one copy {one_copy_bytes}, ratio {ratio:.2}, levels {levels:?}"
    );
    // Ten copies were written; without compaction the ratio would be about 10.
    assert!(
        ratio < 2.5,
        "space amplification {ratio:.2} (levels {levels:?})"
    );
    // Only the live tables' files remain.
    assert_eq!(sst_files(dir.path()).len(), version.table_count());

    drop(version);
    drop(store);
    let reopened = ShardStore::open(dir.path(), &options()).unwrap();
    assert_matches(&reopened, &model, keys);
}

/// Writes `keys` keys `rounds` times (about 150-byte values), flushing every 32 writes and
/// after each round, without compacting: the tables pile up in level 0.
fn write_rounds(
    store: &mut ShardStore,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    rounds: usize,
    keys: usize,
) {
    for round in 0..rounds {
        for i in 0..keys {
            let value = format!("v{round}-{i}-").repeat(12).into_bytes();
            store.put(&key(i), &value);
            model.insert(key(i), value);
            if i % 32 == 0 {
                flush_all(store);
            }
        }
        flush_all(store);
    }
}

/// Every entry of every table of `version`, read from the files.
fn contents(version: &tskv::version::Version) -> Vec<tskv::sstable::TableEntry> {
    version
        .tables_newest_first()
        .flat_map(|t| tskv::sstable::iter::TableIter::new(Arc::clone(t)))
        .map(Result::unwrap)
        .collect()
}

#[test]
fn an_old_version_keeps_its_files_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ShardStore::open(dir.path(), &options()).unwrap();
    let mut model = BTreeMap::new();
    // No compaction yet: three rounds of flushes pile up in level 0.
    write_rounds(&mut store, &mut model, 3, 300);
    let before = Arc::clone(store.version());
    let old_files = sst_files(dir.path());
    assert!(before.levels()[0].len() >= 4, "level 0 is full");
    let before_contents = contents(&before);

    store.compact_sync().unwrap();
    assert_matches(&store, &model, 300);
    for name in &old_files {
        assert!(
            dir.path().join(name).exists(),
            "{name} deleted while an old version holds it"
        );
    }
    let after_contents = contents(&before);
    assert_eq!(
        after_contents, before_contents,
        "the old version reads as before"
    );

    drop(before);
    let now = sst_files(dir.path());
    for name in &old_files {
        assert!(!now.contains(name), "{name} survived its last version");
    }
    assert_eq!(now.len(), store.version().table_count());
}

/// A range view (what a streamed `TS.RANGE` reads from) answers as of when it was
/// taken: later overwrites, deletes, flushes and compactions change nothing it returns,
/// and no file it needs is deleted under it.
#[test]
fn a_range_view_reads_as_of_when_it_was_taken() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ShardStore::open(dir.path(), &options()).unwrap();
    let mut model = BTreeMap::new();
    write_rounds(&mut store, &mut model, 2, 300);
    // Some keys only in the memtable, some deleted there.
    for i in 0..300 {
        let k = key(i);
        if i % 5 == 0 {
            store.put(&k, b"fresh");
            model.insert(k, b"fresh".to_vec());
        } else if i % 11 == 0 {
            store.delete(&k);
            model.remove(&k);
        }
    }
    let (start, end) = (key(50), key(249));
    let view = store.range_view(&start, &end);
    let frozen: BTreeMap<Vec<u8>, Vec<u8>> = model
        .range(start.clone()..=end.clone())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let files_then = sst_files(dir.path());

    // Everything changes afterwards.
    for i in 0..300 {
        let k = key(i);
        if i % 3 == 0 {
            store.delete(&k);
        } else {
            store.put(&k, format!("later-{i}").as_bytes());
        }
    }
    flush_all(&mut store);
    store.compact_full_sync().unwrap();
    for name in &files_then {
        assert!(
            dir.path().join(name).exists(),
            "{name} deleted under the view"
        );
    }
    for i in 50..=249 {
        let k = key(i);
        for cache in [None, Some(store.block_cache())] {
            let got = view.get(&k, cache).unwrap();
            assert_eq!(got.as_ref(), frozen.get(&k), "key {i} as of the view");
        }
    }
    drop(view);
    let now = sst_files(dir.path());
    assert!(
        files_then.iter().all(|f| !now.contains(f)),
        "the view's files go once it is dropped (a full compaction rewrote them all)"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_crash_at_any_point_of_a_compaction_keeps_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        compaction_filter: None,
        compaction: CompactionOptions {
            target_table_bytes: 2 << 10,
            ..options().compaction
        },
        ..options()
    };
    let mut store = ShardStore::open(dir.path(), &opts).unwrap();
    let mut model = BTreeMap::new();
    write_rounds(&mut store, &mut model, 2, 400);
    drop(store);

    // Run the compaction by hand, snapshotting the directory around every step.
    let manifest = tskv::manifest::Manifest::load(dir.path()).unwrap().unwrap();
    let mut versions = VersionSet::recover(dir.path(), manifest).unwrap();
    let version = Arc::clone(versions.current());
    let task = pick(&version.metas(), &opts.compaction, 0).expect("level 0 is full");
    assert!(!task.is_trivial_move());
    let mut job = CompactionJob::new(
        task,
        &version,
        dir.path().to_path_buf(),
        opts.clone(),
        Arc::clone(versions.table_ids()),
    );
    let crashes = tempfile::tempdir().unwrap();
    let mut snapshot = 0;
    let mut check_crash_copy = |label: &str| {
        let copy = crashes.path().join(format!("{snapshot:03}"));
        snapshot += 1;
        copy_dir(dir.path(), &copy);
        let reopened = ShardStore::open(&copy, &opts).unwrap();
        for (k, v) in &model {
            let got = reopened.get(k).unwrap().and_then(|l| l.value);
            assert_eq!(got.as_ref(), Some(v), "{label}: key {k:?}");
        }
        drop(reopened);
        // The copy opened clean: no file the manifest does not name is left.
        let leftovers = sst_files(&copy).len();
        let manifest = tskv::manifest::Manifest::load(&copy).unwrap().unwrap();
        assert_eq!(
            leftovers,
            manifest.tables.len(),
            "{label}: orphans removed at open"
        );
    };
    check_crash_copy("before the first output");
    let mut steps = 0;
    while !job.step(&mut SyncSink).unwrap() {
        steps += 1;
        check_crash_copy(&format!("after output {steps}"));
    }
    assert!(steps >= 2, "the job wrote several outputs ({steps})");
    check_crash_copy("after the last output, before the install");
    let (edit, _) = job.finish();
    versions.apply(edit).unwrap();
    check_crash_copy("after the install, inputs not yet deleted");
    drop(version);
    drop(versions);
    check_crash_copy("after the inputs were deleted");
}

/// Writes stop while level 0 is [`tskv::config::L0_STOP_TABLES_PER_TRIGGER`] times its
/// trigger deep (compaction has fallen behind), the stall is counted, and a compaction
/// lets them go on and ends it. Before the stop, from
/// [`tskv::config::L0_SLOWDOWN_TABLES_PER_TRIGGER`] times the trigger, the slowdown band's
/// depth grows by one per table (the shard delays WAL batches by it), and compaction ends
/// it too.
#[test]
fn a_deep_level_0_stalls_writes_until_compaction_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options();
    let mut store = ShardStore::open(dir.path(), &opts).unwrap();
    let stop = opts.compaction.l0_trigger_tables * tskv::config::L0_STOP_TABLES_PER_TRIGGER;
    let slowdown = opts.compaction.l0_trigger_tables * tskv::config::L0_SLOWDOWN_TABLES_PER_TRIGGER;
    // One flushed table per round, never compacted.
    for round in 0..stop {
        let depth = if round < slowdown {
            0
        } else {
            round - slowdown + 1
        };
        assert_eq!(store.level0_slowdown_depth_tables(), depth, "round {round}");
        assert!(
            store.can_accept_writes(),
            "round {round}: level 0 has {} tables",
            store.stats().level_tables[0]
        );
        store.put(&key(round), b"v");
        store.request_freeze();
        flush_all(&mut store);
    }
    assert_eq!(store.stats().level_tables[0], stop);
    assert!(store.level0_stalled() && !store.can_accept_writes());
    store.note_write_stall();
    assert_eq!(store.write_stalls().0, 1);
    store.compact_sync().unwrap();
    assert!(store.can_accept_writes(), "compaction made room");
    assert_eq!(
        store.level0_slowdown_depth_tables(),
        0,
        "and ended the slowdown"
    );
    assert_eq!(store.stats().level_tables[0], 0);
    let (stalls, stalled_us) = store.write_stalls();
    assert_eq!(stalls, 1);
    assert!(stalled_us > 0, "the stall ended when compaction made room");
}
