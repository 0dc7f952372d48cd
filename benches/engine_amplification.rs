//! Write and space amplification of the engine under overwrites, and what they do to reads.
//!
//! Method: `tskv::engine::Engine` with the default options (32 MiB memtable, leveled
//! compaction, 64 MiB block cache) and buffered durability (synced every 1,000 writes, so
//! the WAL is written in batches as the server's group commit does). Load KEYS keys
//! (16-byte keys, 100-byte values) once in random order and measure GET latency over
//! random keys (the "fresh" baseline); then overwrite every key ROUNDS more times, each
//! round in a new random order, let compaction settle, and measure again. Prints:
//! - write amplification: bytes written to SSTables (flushes and compaction outputs) per
//!   byte of keys and values the user wrote;
//! - space amplification: bytes of live SSTables per byte of one copy of the data
//!   (key, value and the 16 bytes of per-entry overhead of the table format);
//! - GET p50/p99 after the overwrites against the fresh store, as a ratio.
//!
//! Run: `cargo bench --bench engine_amplification` (KEYS, default 1,000,000, and ROUNDS,
//! default 10, scale it; `KEYS=100000 ROUNDS=3` takes seconds).

use std::time::Instant;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tskv::engine::{Durability, Engine, Options};

const VALUE_BYTES: usize = 100;
const SYNC_EVERY_WRITES: usize = 1000;
const GETS: usize = 200_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key(i: usize) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..4].copy_from_slice(b"key:");
    k[4..].copy_from_slice(format!("{i:012}").as_bytes());
    k
}

fn write_round(engine: &mut Engine, order: &[usize], round: usize) {
    let mut value = [0u8; VALUE_BYTES];
    for (n, &i) in order.iter().enumerate() {
        value[..8].copy_from_slice(&(round as u64).to_le_bytes());
        value[8..16].copy_from_slice(&(i as u64).to_le_bytes());
        engine.put(&key(i), &value).expect("put");
        if n % SYNC_EVERY_WRITES == SYNC_EVERY_WRITES - 1 {
            engine.sync().expect("sync");
        }
    }
    engine.sync().expect("sync");
}

/// GET latency percentiles (p50, p99) in microseconds over random keys.
fn get_latency_us(engine: &Engine, keys: usize, rng: &mut SmallRng) -> (u64, u64) {
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..GETS {
        let k = key(rng.gen_range(0..keys));
        let started = Instant::now();
        let found = engine.get(&k).expect("get");
        let ns = started.elapsed().as_nanos() as u64;
        assert!(found.is_some(), "every key was written");
        histogram.record(ns.max(1)).expect("record");
    }
    (
        histogram.value_at_quantile(0.50) / 1000,
        histogram.value_at_quantile(0.99) / 1000,
    )
}

fn main() {
    let keys = env_usize("KEYS", 1_000_000);
    let rounds = env_usize("ROUNDS", 10);
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = Options {
        durability: Durability::Buffered,
        ..Options::default()
    };
    let mut engine = Engine::open(dir.path(), options).expect("open");
    let mut rng = SmallRng::seed_from_u64(42);
    let mut order: Vec<usize> = (0..keys).collect();

    let started = Instant::now();
    order.shuffle(&mut rng);
    write_round(&mut engine, &order, 0);
    engine.flush().expect("flush");
    engine.compact().expect("compact");
    let fresh = get_latency_us(&engine, keys, &mut rng);
    for round in 1..=rounds {
        order.shuffle(&mut rng);
        write_round(&mut engine, &order, round);
    }
    engine.flush().expect("flush");
    engine.compact().expect("compact");
    let after = get_latency_us(&engine, keys, &mut rng);
    let elapsed = started.elapsed();

    let stats = engine.store().stats();
    let user_bytes = ((rounds + 1) * keys * (16 + VALUE_BYTES)) as u64;
    let table_bytes_written = stats.flushed_bytes + stats.compaction.written_bytes;
    let one_copy_bytes = (keys * (16 + VALUE_BYTES + 16)) as u64;
    println!(
        "{keys} keys x {} writes each (16 B keys, {VALUE_BYTES} B values), {:.1} s",
        rounds + 1,
        elapsed.as_secs_f64()
    );
    println!(
        "write amplification: {:.2} ({} table bytes written: {} by flushes, {} by compactions, for {} user bytes)",
        table_bytes_written as f64 / user_bytes as f64,
        table_bytes_written,
        stats.flushed_bytes,
        stats.compaction.written_bytes,
        user_bytes
    );
    println!(
        "space amplification: {:.2} ({} live SSTable bytes for {} bytes of one copy; tables by level {:?})",
        stats.sstable_bytes as f64 / one_copy_bytes as f64,
        stats.sstable_bytes,
        one_copy_bytes,
        stats.level_tables
    );
    println!(
        "GET after {} writes: p50 {} us, p99 {} us; freshly loaded: p50 {} us, p99 {} us; p99 ratio {:.2}",
        (rounds + 1) * keys,
        after.0,
        after.1,
        fresh.0,
        fresh.1,
        after.1 as f64 / fresh.1.max(1) as f64
    );
}
