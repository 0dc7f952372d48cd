//! Goal: the embedded `Engine` zero-fills new WAL segments only when each write is synced
//! (`Durability::SyncEachWrite`, where written zeros make each small fdatasync cheaper),
//! not in `Durability::Buffered`, where the zeros would double the bytes the WAL writes;
//! and a buffered store whose segments are only allocated recovers every synced write.
//!
//! Method: the file-system operations of each open are recorded (`iolog::Recorder`, which
//! also makes the WAL prepare its segments on the calling thread, so they are all seen):
//! a buffered open must write no run of zero bytes into a segment, a synced open must.
//! Then a buffered engine fills several segments (tiny ones), syncs, and is reopened.

use tskv::base::iolog::{Op, Recorder};
use tskv::config::StoreOptions;
use tskv::engine::{Durability, Engine, Options};

/// Bytes of each WAL segment: small, so that a few hundred writes cross several.
const SEGMENT_BYTES: u64 = 16 << 10;

fn options(durability: Durability) -> Options {
    Options {
        store: StoreOptions {
            memtable_bytes: 8 << 10,
            wal_segment_bytes: SEGMENT_BYTES,
            ..StoreOptions::default()
        },
        durability,
    }
}

/// Bytes of zeros written by the recorded operations, in writes of at least a KiB (a
/// record or batch is never all zeros; a zero-fill is).
fn zero_fill_bytes(ops: &[Op]) -> usize {
    ops.iter()
        .map(|op| match op {
            Op::Write { bytes, .. } if bytes.len() >= 1024 && bytes.iter().all(|&b| b == 0) => {
                bytes.len()
            }
            _ => 0,
        })
        .sum()
}

/// The zero bytes written while opening an engine in a fresh directory and writing to it.
fn zeros_written_by(durability: Durability) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(dir.path());
    let mut engine = Engine::open(dir.path(), options(durability)).unwrap();
    for i in 0..200u32 {
        engine
            .put(format!("key{i:05}").as_bytes(), &[7u8; 100])
            .unwrap();
    }
    engine.sync().unwrap();
    drop(engine);
    zero_fill_bytes(&recorder.finish())
}

#[test]
fn wal_segments_are_zero_filled_only_when_each_write_is_synced() {
    // One test, because only one recorder may run in a process at a time.
    let buffered = zeros_written_by(Durability::Buffered);
    assert_eq!(
        buffered, 0,
        "a buffered engine writes no zeros into its WAL"
    );
    let synced = zeros_written_by(Durability::SyncEachWrite);
    assert!(
        synced >= SEGMENT_BYTES as usize,
        "a synced engine zero-fills its segments (wrote {synced} zero bytes)"
    );
}

#[test]
fn buffered_store_on_allocated_segments_recovers_synced_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(dir.path(), options(Durability::Buffered)).unwrap();
    let value = [9u8; 100];
    // About 30 KiB of records: several segments and memtables.
    for i in 0..250u32 {
        engine.put(format!("key{i:05}").as_bytes(), &value).unwrap();
    }
    engine.sync().unwrap();
    drop(engine);
    let engine = Engine::open(dir.path(), options(Durability::Buffered)).unwrap();
    for i in 0..250u32 {
        assert_eq!(
            engine
                .get(format!("key{i:05}").as_bytes())
                .unwrap()
                .as_deref(),
            Some(&value[..]),
            "key{i:05} after reopening"
        );
    }
}
