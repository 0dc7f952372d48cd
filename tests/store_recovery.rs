//! Goal: recovery keeps every write it can prove intact, cuts away a torn WAL tail, and
//! refuses (with file and offset) to open or to answer from data it cannot trust.
//!
//! Method: each test writes through `ShardStore` with synchronous batches and flushes,
//! drops the store (a crash: no shutdown step exists), damages the files on disk the way a
//! crash or a bad disk would (truncation, garbage, flipped bytes, a missing manifest
//! install), reopens, and checks what is visible, the recovery counters and the log.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tskv::base::StoreError;
use tskv::config::{CompactionOptions, StoreOptions};
use tskv::store::ShardStore;
use tskv::wal::batch::BATCH_HEADER_BYTES;
use tskv::wal::record::encoded_len;

fn options(memtable_bytes: usize, wal_segment_bytes: u64) -> StoreOptions {
    StoreOptions {
        memtable_bytes,
        wal_segment_bytes,
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

fn value_of(store: &ShardStore, key: &str) -> Option<Vec<u8>> {
    store.get(key.as_bytes()).unwrap().and_then(|l| l.value)
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wal-{number:010}.log"))
}

/// Writes `key-<i>` = `value-<i>` for `i` in `range`, one synced batch per write.
fn write_keys(store: &mut ShardStore, range: std::ops::Range<u32>) {
    for i in range {
        store.put(
            format!("key-{i}").as_bytes(),
            format!("value-{i}").as_bytes(),
        );
        sync(store);
    }
}

/// Encoded size of the one-record WAL batch of `write_keys` for a single-digit `i`.
fn record_len() -> usize {
    BATCH_HEADER_BYTES + encoded_len("key-0".len(), "value-0".len())
}

thread_local! {
    /// What `tracing` logged on this thread while capturing (`None`: not capturing).
    static CAPTURED: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Writes log lines into this thread's capture buffer, if one is open.
struct ThreadCapture;

impl Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with(|c| {
            if let Some(text) = c.borrow_mut().as_mut() {
                text.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Opens the store and returns what it logged. One global subscriber serves every test
/// thread: a scoped (`with_default`) subscriber is flaky while other threads use the same
/// log call sites without one, because `tracing` caches per call site whether anyone
/// listens.
fn open_logged(dir: &Path, opts: &StoreOptions) -> (Result<ShardStore, StoreError>, String) {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(|| ThreadCapture)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    });
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let result = ShardStore::open(dir, opts);
    let text = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (result, String::from_utf8_lossy(&text).into_owned())
}

#[test]
fn truncated_last_segment_loses_only_the_cut_record() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(1 << 20, 64 << 10);
    let mut store = ShardStore::open(dir.path(), &opts).unwrap();
    write_keys(&mut store, 0..3);
    drop(store);

    let path = segment_path(dir.path(), 1);
    let cut_at = 2 * record_len() + 5;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut_at as u64)
        .unwrap();

    let mut store = ShardStore::open(dir.path(), &opts).unwrap();
    assert_eq!(value_of(&store, "key-0").as_deref(), Some(&b"value-0"[..]));
    assert_eq!(value_of(&store, "key-1").as_deref(), Some(&b"value-1"[..]));
    assert_eq!(value_of(&store, "key-2"), None);
    let stats = store.stats();
    assert_eq!(stats.recovery_replayed_records, 2);
    assert_eq!(stats.recovery_truncated_bytes, 5);
    assert_eq!(store.last_seq().0, 2);

    // Appends continue cleanly after the cut, and survive the next restart.
    write_keys(&mut store, 5..7);
    drop(store);
    let store = ShardStore::open(dir.path(), &opts).unwrap();
    assert_eq!(value_of(&store, "key-6").as_deref(), Some(&b"value-6"[..]));
    assert_eq!(value_of(&store, "key-2"), None);
    assert_eq!(store.stats().recovery_truncated_bytes, 0);
    assert_eq!(store.len().unwrap(), 4);
}

#[test]
fn torn_record_inside_preallocated_space_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(1 << 20, 64 << 10);
    let mut store = ShardStore::open(dir.path(), &opts).unwrap();
    write_keys(&mut store, 0..3);
    drop(store);

    // The last record's final bytes never reached the disk.
    let path = segment_path(dir.path(), 1);
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0; 4], (3 * record_len() - 4) as u64)
        .unwrap();

    let store = ShardStore::open(dir.path(), &opts).unwrap();
    assert_eq!(value_of(&store, "key-2"), None);
    assert_eq!(value_of(&store, "key-1").as_deref(), Some(&b"value-1"[..]));
    assert_eq!(
        store.stats().recovery_truncated_bytes,
        (record_len() - 4) as u64
    );
}

#[test]
fn garbage_tail_is_truncated_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(1 << 20, 64 << 10);
    let mut store = ShardStore::open(dir.path(), &opts).unwrap();
    write_keys(&mut store, 0..4);
    drop(store);

    let path = segment_path(dir.path(), 1);
    let end = 4 * record_len();
    let garbage: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8 | 1).collect();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&garbage, end as u64).unwrap();

    let (store, log) = open_logged(dir.path(), &opts);
    let mut store = store.unwrap();
    assert_eq!(store.len().unwrap(), 4);
    assert_eq!(store.stats().recovery_truncated_bytes, garbage.len() as u64);
    assert!(log.contains("truncating torn WAL tail"), "log: {log}");
    assert!(log.contains("wal-0000000001.log"), "log: {log}");
    assert!(log.contains(&format!("offset={end}")), "log: {log}");
    assert!(log.contains("bytes_dropped=100"), "log: {log}");

    // The tail was wiped: the next start finds nothing to cut, and new writes land there.
    write_keys(&mut store, 4..6);
    drop(store);
    let (store, log) = open_logged(dir.path(), &opts);
    let store = store.unwrap();
    assert_eq!(store.stats().recovery_truncated_bytes, 0);
    assert!(!log.contains("truncating"), "log: {log}");
    assert_eq!(store.len().unwrap(), 6);
}

#[test]
fn flipped_byte_in_an_older_segment_fails_open_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    // Each segment holds two records, so ten writes span several segments.
    let opts = options(1 << 20, 2 * record_len() as u64);
    let mut store = ShardStore::open(dir.path(), &opts).unwrap();
    write_keys(&mut store, 0..10);
    drop(store);
    assert!(
        segment_path(dir.path(), 3).exists(),
        "expected several segments"
    );

    let path = segment_path(dir.path(), 2);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let at = record_len() as u64 + 12; // inside the second batch of segment 2
    let mut byte = [0];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x04], at).unwrap();

    match ShardStore::open(dir.path(), &opts) {
        Err(e @ StoreError::WalCorruption { .. }) => {
            let StoreError::WalCorruption { file, offset, .. } = &e else {
                unreachable!()
            };
            assert!(file.ends_with("wal-0000000002.log"), "{e}");
            assert_eq!(*offset, record_len() as u64);
            let message = e.to_string();
            assert!(message.contains("wal-0000000002.log"), "{message}");
            assert!(
                message.contains(&format!("offset {}", record_len())),
                "{message}"
            );
        }
        Err(e) => panic!("expected corruption, got {e}"),
        Ok(_) => panic!("open succeeded over a corrupt segment"),
    }
}

#[test]
fn zero_tail_of_an_older_segment_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    // Segments larger than one record but not two: each is left with a zero tail.
    let opts = options(1 << 20, record_len() as u64 + 10);
    let mut store = ShardStore::open(dir.path(), &opts).unwrap();
    write_keys(&mut store, 0..6);
    drop(store);
    let store = ShardStore::open(dir.path(), &opts).unwrap();
    assert_eq!(store.len().unwrap(), 6);
    assert_eq!(store.stats().recovery_truncated_bytes, 0);
}

/// Writes 60 keys in one batch into a store with a 4 KiB memtable, which freezes it, then
/// flushes it into `sst-0000000001.sst`.
fn store_with_one_sstable(dir: &Path, opts: &StoreOptions) -> ShardStore {
    let mut store = ShardStore::open(dir, opts).unwrap();
    for i in 0..60 {
        store.put(format!("a-{i:03}").as_bytes(), &[b'v'; 100]);
    }
    sync(&mut store);
    assert_eq!(store.stats().immutable_memtables, 1);
    let job = store
        .take_flush_blocking()
        .unwrap()
        .expect("a frozen memtable to flush");
    store.flush_sync(job).unwrap();
    assert_eq!(store.stats().sstables, 1);
    store
}

#[test]
fn flipped_byte_in_an_sstable_block_is_an_error_not_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(4 << 10, 64 << 10);
    let store = store_with_one_sstable(dir.path(), &opts);
    assert_eq!(value_of(&store, "a-000").as_deref(), Some(&[b'v'; 100][..]));
    drop(store);

    // Byte 20 lies in the key of the first entry of the first data block.
    let path = dir.path().join("sst-0000000001.sst");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut byte = [0];
    file.read_exact_at(&mut byte, 20).unwrap();
    file.write_all_at(&[byte[0] ^ 0x01], 20).unwrap();

    let store = ShardStore::open(dir.path(), &opts).unwrap();
    match store.get(b"a-000") {
        Err(StoreError::Corruption { file, offset, .. }) => {
            assert!(file.ends_with("sst-0000000001.sst"));
            assert_eq!(offset, 0);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(matches!(store.len(), Err(StoreError::Corruption { .. })));
    // Keys in other, intact blocks are still served.
    assert_eq!(value_of(&store, "a-059").as_deref(), Some(&[b'v'; 100][..]));
}

#[test]
fn crash_between_sstable_write_and_manifest_install_recovers_from_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(4 << 10, 64 << 10);
    let mut store = ShardStore::open(dir.path(), &opts).unwrap();
    for i in 0..60 {
        store.put(format!("a-{i:03}").as_bytes(), format!("v{i}").as_bytes());
    }
    store.delete(b"a-007");
    sync(&mut store);
    let job = store
        .take_flush_blocking()
        .unwrap()
        .expect("a frozen memtable to flush");
    // The table reaches the disk, but the crash comes before the manifest names it.
    job.file.write_all_at(&job.buf, 0).unwrap();
    job.file.sync_data().unwrap();
    let sst = dir.path().join(format!("sst-{:010}.sst", job.table_id));
    drop(job);
    drop(store);
    assert!(sst.exists());

    let mut store = ShardStore::open(dir.path(), &opts).unwrap();
    assert!(!sst.exists(), "the uninstalled SSTable must be removed");
    assert_eq!(store.stats().sstables, 0);
    assert_eq!(store.len().unwrap(), 59);
    assert_eq!(value_of(&store, "a-042").as_deref(), Some(&b"v42"[..]));
    assert_eq!(value_of(&store, "a-007"), None);

    // The replayed memtable is over its limit, so it is frozen again and flushes normally.
    let job = store
        .take_flush_blocking()
        .unwrap()
        .expect("the replayed memtable is frozen");
    store.flush_sync(job).unwrap();
    store.put(b"after", b"flush");
    sync(&mut store);
    drop(store);
    let store = ShardStore::open(dir.path(), &opts).unwrap();
    assert_eq!(store.stats().sstables, 1);
    assert_eq!(store.len().unwrap(), 60);
    assert_eq!(value_of(&store, "a-042").as_deref(), Some(&b"v42"[..]));
    assert_eq!(value_of(&store, "after").as_deref(), Some(&b"flush"[..]));
}

#[test]
fn corrupt_manifest_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(4 << 10, 64 << 10);
    drop(store_with_one_sstable(dir.path(), &opts));
    let path = dir.path().join("MANIFEST");
    let mut bytes = fs::read(&path).unwrap();
    bytes[13] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    match ShardStore::open(dir.path(), &opts) {
        Err(StoreError::Corruption { file, .. }) => assert!(file.ends_with("MANIFEST")),
        Err(e) => panic!("expected corruption, got {e}"),
        Ok(_) => panic!("open succeeded over a corrupt manifest"),
    }
}
