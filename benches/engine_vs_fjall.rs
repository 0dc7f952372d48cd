//! A db_bench-style comparison of tskv's embedded `Engine` with `fjall`, run side by side.
//!
//! Every round runs the same phases on both engines, one after the other, each in its own
//! fresh directory, and the engine that goes first alternates from round to round. Keys are
//! 16 ASCII digits (the even numbers `0, 2, 4, ...` are written, so the odd numbers between
//! them are missing keys), values 100 random bytes. The phases, each timed on its own:
//!
//! - `fillseq`: write N keys in key order into an empty store, then sync.
//! - `fillrandom`: write the same N keys in a random order into another empty store, then
//!   sync. The next phases use this store.
//! - `overwrite`: N writes of keys drawn at random (with repeats) from the N, then sync.
//! - then, not timed: each engine flushes its memtable to SSTables and finishes its
//!   compactions, so that the reads below go through the on-disk read path of both.
//! - `readrandom`: N point reads of present keys, in a random order.
//! - `readmissing`: N point reads of absent keys (the odd numbers), in a random order.
//! - `seekrandom`: N/10 seeks to a random present key, each reading the next 10 entries.
//!
//! Durability is the same on both sides: no fdatasync per write, one at the end of each
//! write phase. tskv runs with `Durability::Buffered` and `Engine::sync()`; fjall with
//! `manual_journal_persist(true)` and `Database::persist(PersistMode::SyncData)`. In both,
//! writes gather in a buffer in the process (written out when it fills or at a memtable
//! switch), and only the sync promises anything: a crash loses at most the writes since it.
//!
//! Sizes are matched where both engines have the knob: 32 MiB memtables, 64 MiB block
//! caches, 4 KiB data blocks, no compression (tskv does not compress). Everything else is
//! each engine's default; in particular both flush and compact on background threads
//! (fjall as many as cores, at most 4; tskv an SSTable encoder, a writer and its
//! compaction thread).
//!
//! Run: `cargo bench --bench engine_vs_fjall`. `TSKV_BENCH_KEYS` (default 200000) sets N,
//! `TSKV_BENCH_ROUNDS` (default 3) the rounds, `TSKV_BENCH_DIR` the directory the stores
//! are made in (default: cargo's target temporary directory, on the same disk as the
//! build). Run without `--bench` (as `cargo test --benches` does) it makes one quick round
//! of 2,000 keys as a smoke test.
//!
//! For profiling one engine's phase (say under `valgrind --tool=callgrind`),
//! `TSKV_BENCH_ENGINES` (default `tskv,fjall`) names the engines to run and
//! `TSKV_BENCH_PHASES` (default: all) the phases; a phase after `fillseq` needs the store
//! `fillrandom` made, so `fillrandom` (and `overwrite`, for the reads) still runs
//! whenever a later phase is asked for, but only the phases asked for are reported. With
//! one engine there are no ratios.

use std::path::Path;
use std::time::{Duration, Instant};

use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, KeyspaceCreateOptions, PersistMode};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tskv::config::StoreOptions;
use tskv::engine::{Durability, Engine, Options};

/// Bytes of every key.
const KEY_BYTES: usize = 16;
/// Bytes of every value.
const VALUE_BYTES: usize = 100;
/// Entries read after each seek.
const SEEK_NEXT_COUNT: usize = 10;
/// Seeks are this many times fewer than N.
const SEEKS_PER_KEY_DIVISOR: usize = 10;
/// Memtable size given to both engines.
const MEMTABLE_BYTES: usize = 32 << 20;
/// Block cache size given to both engines.
const BLOCK_CACHE_BYTES: u64 = 64 << 20;
/// Random bytes values are cut from.
const VALUE_POOL_BYTES: usize = 1 << 20;

/// The phases, in the order they run.
const PHASES: [&str; 6] = [
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readmissing",
    "seekrandom",
];

/// What one engine must offer the benchmark.
trait Store {
    fn put(&mut self, key: &[u8], value: &[u8]);
    /// The value's length, if the key is present.
    fn get(&self, key: &[u8]) -> Option<usize>;
    /// Seeks to `start` and reads up to `count` entries; returns how many there were.
    fn seek_read(&self, start: &[u8], count: usize) -> usize;
    /// Makes every write so far durable (fdatasync).
    fn sync(&mut self);
    /// Flushes the memtable to SSTables and waits until compactions are done.
    fn settle(&mut self);
}

struct Tskv(Engine);

impl Tskv {
    fn open(dir: &Path) -> Self {
        let options = Options {
            store: StoreOptions {
                memtable_bytes: MEMTABLE_BYTES,
                block_cache_bytes: BLOCK_CACHE_BYTES,
                sstable_block_bytes: 4096,
                ..StoreOptions::default()
            },
            durability: Durability::Buffered,
        };
        Self(Engine::open(dir, options).expect("opening tskv"))
    }
}

impl Store for Tskv {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.0.put(key, value).expect("tskv put");
    }

    fn get(&self, key: &[u8]) -> Option<usize> {
        self.0.get(key).expect("tskv get").map(|value| value.len())
    }

    fn seek_read(&self, start: &[u8], count: usize) -> usize {
        let mut read = 0;
        for entry in self.0.scan(start..).take(count) {
            let (_key, value) = entry.expect("tskv scan");
            std::hint::black_box(value);
            read += 1;
        }
        read
    }

    fn sync(&mut self) {
        self.0.sync().expect("tskv sync");
    }

    fn settle(&mut self) {
        self.0.flush().expect("tskv flush");
        self.0.compact().expect("tskv compact");
    }
}

struct Fjall {
    db: Database,
    keyspace: fjall::Keyspace,
}

impl Fjall {
    fn open(dir: &Path) -> Self {
        let db = Database::builder(dir)
            .cache_size(BLOCK_CACHE_BYTES)
            .open()
            .expect("opening fjall");
        let keyspace = db
            .keyspace("bench", || {
                KeyspaceCreateOptions::default()
                    .manual_journal_persist(true)
                    .max_memtable_size(MEMTABLE_BYTES as u64)
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::None))
            })
            .expect("opening fjall's keyspace");
        Self { db, keyspace }
    }
}

impl Store for Fjall {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.keyspace.insert(key, value).expect("fjall insert");
    }

    fn get(&self, key: &[u8]) -> Option<usize> {
        self.keyspace
            .get(key)
            .expect("fjall get")
            .map(|value| value.len())
    }

    fn seek_read(&self, start: &[u8], count: usize) -> usize {
        let mut read = 0;
        for guard in self.keyspace.range(start..).take(count) {
            let (_key, value) = guard.into_inner().expect("fjall range");
            std::hint::black_box(value);
            read += 1;
        }
        read
    }

    fn sync(&mut self) {
        self.db
            .persist(PersistMode::SyncData)
            .expect("fjall persist");
    }

    fn settle(&mut self) {
        // fjall has no public "flush now"; this hidden method is the one its tests use.
        self.keyspace
            .rotate_memtable_and_wait()
            .expect("fjall memtable flush");
        while self.db.outstanding_flushes() > 0 || self.db.active_compactions() > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// How big and how long a run is.
struct Plan {
    /// False for the smoke run, whose figures are too small to mean anything.
    full: bool,
    key_count: usize,
    round_count: usize,
    root: std::path::PathBuf,
    /// Which engines run: tskv, fjall.
    engines: [bool; 2],
    /// Which phases are reported, in the order of [`PHASES`].
    phases: [bool; 6],
}

/// The names in the comma-separated list in variable `name` (all of `known` if unset),
/// as flags in the order of `known`.
fn selection<const N: usize>(name: &str, known: [&str; N]) -> [bool; N] {
    let Ok(text) = std::env::var(name) else {
        return [true; N];
    };
    let mut chosen = [false; N];
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let index = known
            .iter()
            .position(|k| *k == word)
            .unwrap_or_else(|| panic!("{name}: {word:?} is none of {known:?}"));
        chosen[index] = true;
    }
    assert!(chosen.contains(&true), "{name} names nothing to run");
    chosen
}

impl Plan {
    fn from_env() -> Self {
        // `cargo bench` passes `--bench`; anything else (`cargo test --benches`) gets a smoke run.
        let full = std::env::args().any(|arg| arg == "--bench");
        let number = |name: &str, default: usize| {
            std::env::var(name).map_or(default, |text| {
                text.parse()
                    .unwrap_or_else(|_| panic!("{name} must be a whole number, not {text:?}"))
            })
        };
        let root = std::env::var_os("TSKV_BENCH_DIR")
            .map_or_else(|| env!("CARGO_TARGET_TMPDIR").into(), Into::into);
        let engines = selection("TSKV_BENCH_ENGINES", ["tskv", "fjall"]);
        let phases = selection("TSKV_BENCH_PHASES", PHASES);
        if full {
            Self {
                full,
                key_count: number("TSKV_BENCH_KEYS", 200_000).max(SEEKS_PER_KEY_DIVISOR),
                round_count: number("TSKV_BENCH_ROUNDS", 3).max(1),
                root,
                engines,
                phases,
            }
        } else {
            Self {
                full,
                key_count: 2_000,
                round_count: 1,
                root,
                engines,
                phases,
            }
        }
    }
}

/// Keys and values prepared before any timing: the key bytes and the orders they are used in.
struct Workload {
    present: Vec<[u8; KEY_BYTES]>,
    absent: Vec<[u8; KEY_BYTES]>,
    random_order: Vec<usize>,
    overwrite_order: Vec<usize>,
    read_order: Vec<usize>,
    missing_order: Vec<usize>,
    seek_order: Vec<usize>,
    value_pool: Vec<u8>,
}

fn key(number: usize) -> [u8; KEY_BYTES] {
    let mut out = [0u8; KEY_BYTES];
    out.copy_from_slice(format!("{number:016}").as_bytes());
    out
}

impl Workload {
    fn new(key_count: usize, rng: &mut SmallRng) -> Self {
        let shuffled = |rng: &mut SmallRng| {
            let mut order: Vec<usize> = (0..key_count).collect();
            order.shuffle(rng);
            order
        };
        Self {
            present: (0..key_count).map(|i| key(2 * i)).collect(),
            absent: (0..key_count).map(|i| key(2 * i + 1)).collect(),
            random_order: shuffled(rng),
            overwrite_order: (0..key_count)
                .map(|_| rng.gen_range(0..key_count))
                .collect(),
            read_order: shuffled(rng),
            missing_order: shuffled(rng),
            seek_order: (0..key_count / SEEKS_PER_KEY_DIVISOR)
                // Far enough from the end that every seek finds 10 entries.
                .map(|_| rng.gen_range(0..key_count - SEEK_NEXT_COUNT))
                .collect(),
            value_pool: (0..VALUE_POOL_BYTES).map(|_| rng.gen()).collect(),
        }
    }

    /// The value written for write number `index` of a phase.
    fn value(&self, index: usize) -> &[u8] {
        let at = index.wrapping_mul(7919) % (VALUE_POOL_BYTES - VALUE_BYTES);
        &self.value_pool[at..at + VALUE_BYTES]
    }
}

/// Times `run`, which does `op_count` operations; returns operations per second.
fn ops_per_second(op_count: usize, run: impl FnOnce()) -> f64 {
    let started = Instant::now();
    run();
    op_count as f64 / started.elapsed().as_secs_f64()
}

fn write_phase(store: &mut dyn Store, work: &Workload, order: &mut dyn Iterator<Item = usize>) {
    for (index, number) in order.enumerate() {
        store.put(&work.present[number], work.value(index));
    }
    store.sync();
}

/// Runs the phases `phases` asks for on one engine (and those they need); returns ops/s
/// in the order of [`PHASES`], NaN for a phase not run.
fn run_engine<S: Store>(
    open: impl Fn(&Path) -> S,
    work: &Workload,
    root: &Path,
    phases: &[bool; 6],
) -> [f64; 6] {
    let n = work.present.len();
    let mut result = [f64::NAN; 6];

    if phases[0] {
        let dir = tempfile::tempdir_in(root).expect("temporary directory");
        let mut store = open(dir.path());
        result[0] = ops_per_second(n, || write_phase(&mut store, work, &mut (0..n)));
        drop(store);
        drop(dir);
    }
    if !phases[1..].contains(&true) {
        return result;
    }

    let dir = tempfile::tempdir_in(root).expect("temporary directory");
    let mut store = open(dir.path());
    result[1] = ops_per_second(n, || {
        write_phase(&mut store, work, &mut work.random_order.iter().copied());
    });
    if !phases[2..].contains(&true) {
        return result;
    }
    result[2] = ops_per_second(n, || {
        write_phase(&mut store, work, &mut work.overwrite_order.iter().copied());
    });
    if !phases[3..].contains(&true) {
        return result;
    }
    store.settle();

    result[3] = ops_per_second(n, || {
        let found = work
            .read_order
            .iter()
            .filter(|&&number| store.get(&work.present[number]) == Some(VALUE_BYTES))
            .count();
        assert_eq!(found, n, "readrandom must find every key");
    });
    result[4] = ops_per_second(n, || {
        let found = work
            .missing_order
            .iter()
            .filter(|&&number| store.get(&work.absent[number]).is_some())
            .count();
        assert_eq!(found, 0, "readmissing must find no key");
    });
    result[5] = ops_per_second(work.seek_order.len(), || {
        let read: usize = work
            .seek_order
            .iter()
            .map(|&number| store.seek_read(&work.present[number], SEEK_NEXT_COUNT))
            .sum();
        assert_eq!(read, work.seek_order.len() * SEEK_NEXT_COUNT);
    });
    drop(store);
    drop(dir);
    result
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

fn main() {
    let plan = Plan::from_env();
    std::fs::create_dir_all(&plan.root).expect("creating the benchmark directory");
    let mut rng = SmallRng::seed_from_u64(6);
    let work = Workload::new(plan.key_count, &mut rng);
    println!(
        "engine_vs_fjall: {} keys of {KEY_BYTES} bytes, values of {VALUE_BYTES} bytes, {} rounds, stores under {}",
        plan.key_count,
        plan.round_count,
        plan.root.display()
    );
    let mut tskv_rounds: Vec<[f64; 6]> = Vec::new();
    let mut fjall_rounds: Vec<[f64; 6]> = Vec::new();
    for round in 0..plan.round_count {
        // Alternate which engine goes first, so neither always runs on a cooler machine.
        let tskv_first = round % 2 == 0;
        for turn in 0..2 {
            let tskv_turn = (turn == 0) == tskv_first;
            if !plan.engines[usize::from(!tskv_turn)] {
                continue;
            }
            if tskv_turn {
                tskv_rounds.push(run_engine(Tskv::open, &work, &plan.root, &plan.phases));
                println!(
                    "round {}: tskv  {:?}",
                    round + 1,
                    rounded(tskv_rounds.last())
                );
            } else {
                fjall_rounds.push(run_engine(Fjall::open, &work, &plan.root, &plan.phases));
                println!(
                    "round {}: fjall {:?}",
                    round + 1,
                    rounded(fjall_rounds.last())
                );
            }
        }
    }
    print_table(&tskv_rounds, &fjall_rounds, &plan.phases);
    if !plan.full {
        println!("(smoke run without --bench: it checks that both engines run, its figures mean nothing)");
    }
}

/// The figures of one round, `None` for a phase not run.
fn rounded(result: Option<&[f64; 6]>) -> Vec<Option<u64>> {
    result.map_or_else(Vec::new, |r| {
        r.iter()
            .map(|&x| (!x.is_nan()).then(|| x.round() as u64))
            .collect()
    })
}

fn print_table(tskv_rounds: &[[f64; 6]], fjall_rounds: &[[f64; 6]], phases: &[bool; 6]) {
    println!();
    if tskv_rounds.is_empty() || fjall_rounds.is_empty() {
        // One engine only: its medians, no ratios.
        let (name, rounds) = if fjall_rounds.is_empty() {
            ("tskv", tskv_rounds)
        } else {
            ("fjall", fjall_rounds)
        };
        println!("| phase | {name} ops/s (median) |");
        println!("| --- | ---: |");
        for (phase_index, phase) in PHASES.iter().enumerate() {
            if phases[phase_index] {
                let figures: Vec<f64> = rounds.iter().map(|r| r[phase_index]).collect();
                println!("| {phase} | {:.0} |", median(&figures));
            }
        }
        return;
    }
    println!(
        "| phase | tskv ops/s (median) | fjall ops/s (median) | tskv / fjall, median (min–max) |"
    );
    println!("| --- | ---: | ---: | --- |");
    for (phase_index, phase) in PHASES.iter().enumerate() {
        if !phases[phase_index] {
            continue;
        }
        let tskv: Vec<f64> = tskv_rounds.iter().map(|r| r[phase_index]).collect();
        let fjall: Vec<f64> = fjall_rounds.iter().map(|r| r[phase_index]).collect();
        let ratios: Vec<f64> = tskv.iter().zip(&fjall).map(|(t, f)| t / f).collect();
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "| {phase} | {:.0} | {:.0} | {:.2} ({min:.2}–{max:.2}) |",
            median(&tskv),
            median(&fjall),
            median(&ratios),
        );
    }
}
