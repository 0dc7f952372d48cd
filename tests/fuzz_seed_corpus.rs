//! Goal: the fuzz targets' seed corpus (`scripts/fuzz/seeds/<target>/`) is what tskv's own
//! encoders write today, so the fuzzer starts from valid requests, WAL records, SSTable
//! blocks and manifests, and a change of format that leaves the seeds stale is caught.
//!
//! Method: build every seed with the real encoders (the `redis` crate for requests, the
//! WAL, SSTable and manifest encoders of the library) and compare it byte for byte with the
//! committed file. With `TSKV_FUZZ_SEEDS_WRITE=1` the test writes the seeds instead, which
//! is how they are (re)generated:
//!
//! ```text
//! TSKV_FUZZ_SEEDS_WRITE=1 cargo test --test fuzz_seed_corpus
//! ```

use std::path::{Path, PathBuf};

use tskv::base::SeqNo;
use tskv::manifest::{LevelTable, Manifest};
use tskv::sstable::block::BlockBuilder;
use tskv::sstable::bloom::{hash_key, Bloom};
use tskv::sstable::format::{encode_index, Footer, IndexEntry};
use tskv::sstable::writer::SstWriter;
use tskv::sstable::TableId;
use tskv::wal::record::{encode, encode_full, RecordKind};
use tskv::wal::SegmentNo;

/// One seed: the target it feeds, its file name and its bytes.
struct Seed {
    target: &'static str,
    name: &'static str,
    bytes: Vec<u8>,
}

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fuzz/seeds")
}

fn packed(args: &[&str]) -> Vec<u8> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.get_packed_command()
}

fn resp_seeds() -> Vec<Seed> {
    let mut pipeline = packed(&["PING"]);
    pipeline.extend(packed(&["MSET", "a", "1", "b", "2"]));
    pipeline.extend(packed(&["MGET", "a", "b", "missing"]));
    pipeline.extend_from_slice(b"*0\r\n*-1\r\nPING\r\n\r\nGET a\n");
    let mut binary = packed(&["SET", "k\r\n\0", "\u{ff}\u{1}value"]);
    binary.extend(packed(&["DEL", "k\r\n\0"]));
    let inline = |line: &str| line.as_bytes().to_vec();
    vec![
        Seed {
            target: "resp_request",
            name: "set",
            bytes: packed(&["SET", "sensor:42", "21.5", "NX"]),
        },
        Seed {
            target: "resp_request",
            name: "pipeline",
            bytes: pipeline,
        },
        Seed {
            target: "resp_request",
            name: "binary",
            bytes: binary,
        },
        Seed {
            target: "resp_inline",
            name: "ping",
            bytes: inline("PING"),
        },
        Seed {
            target: "resp_inline",
            name: "quoted",
            bytes: inline(r#"SET "key with\x41 \"escapes\"\n" 'it\'s' glu"ed " x"#),
        },
        Seed {
            target: "resp_inline",
            name: "blanks",
            bytes: inline(" \t MGET a  b\tc "),
        },
    ]
}

fn wal_seeds() -> Vec<Seed> {
    let mut put = Vec::new();
    encode(&mut put, RecordKind::Put, SeqNo(7), b"sensor:42", b"21.5");
    let mut delete = Vec::new();
    encode(&mut delete, RecordKind::Delete, SeqNo(8), b"sensor:42", b"");
    let mut put_expiring = Vec::new();
    encode_full(
        &mut put_expiring,
        RecordKind::PutExpiring,
        SeqNo(9),
        b"session:7",
        b"token",
        Some(1_700_000_000_000),
    );
    let mut segment = Vec::new();
    for seq in 1..=3 {
        encode(&mut segment, RecordKind::Put, SeqNo(seq), b"key", b"value");
    }
    encode(&mut segment, RecordKind::Delete, SeqNo(4), b"key", b"");
    let mut torn = segment.clone();
    torn.truncate(torn.len() - 3);
    segment.resize(segment.len() + 64, 0);
    // Segments as the server writes them now: one framed batch per group commit.
    let mut framed = Vec::new();
    for (first, count, durable) in [(1u64, 2u64, 0u64), (3, 1, 2), (4, 3, 3)] {
        let mut batch = Vec::new();
        tskv::wal::batch::begin(&mut batch);
        for seq in first..first + count {
            encode(&mut batch, RecordKind::Put, SeqNo(seq), b"key", b"value");
        }
        tskv::wal::batch::seal(&mut batch, count as u32, SeqNo(first), SeqNo(durable));
        framed.extend_from_slice(&batch);
    }
    let mut flipped = framed.clone();
    let second_batch = tskv::wal::batch::BATCH_HEADER_BYTES + 2 * (framed.len() / 10);
    flipped[second_batch] ^= 0x10;
    framed.resize(framed.len() + 64, 0);
    vec![
        Seed {
            target: "wal_segment",
            name: "batches-then-zeros",
            bytes: framed,
        },
        Seed {
            target: "wal_segment",
            name: "flipped-bit-then-intact-batch",
            bytes: flipped,
        },
        Seed {
            target: "wal_record",
            name: "put",
            bytes: put,
        },
        Seed {
            target: "wal_record",
            name: "delete",
            bytes: delete,
        },
        Seed {
            target: "wal_record",
            name: "put-expiring",
            bytes: put_expiring,
        },
        Seed {
            target: "wal_segment",
            name: "records-then-zeros",
            bytes: segment,
        },
        Seed {
            target: "wal_segment",
            name: "torn-tail",
            bytes: torn,
        },
    ]
}

fn sstable(entries: u64, block_bytes: usize) -> Vec<u8> {
    let mut writer = SstWriter::new(block_bytes, 10);
    for i in 0..entries {
        let key = format!("key-{i:04}");
        let value = format!("value-{i}");
        let value = (i % 5 != 3).then_some(value.as_bytes());
        let expire_at_ms = (value.is_some() && i % 7 == 5).then_some(1_700_000_000_000 + i);
        writer.add(key.as_bytes(), SeqNo(100 + i), value, expire_at_ms);
    }
    writer.finish()
}

fn sstable_seeds() -> Vec<Seed> {
    let mut block = BlockBuilder::new();
    block.add(b"a", SeqNo(3), Some(b"one"), None);
    block.add(b"b", SeqNo(1), None, None);
    block.add(b"c", SeqNo(2), Some(b""), None);
    block.add(b"d", SeqNo(4), Some(b"soon"), Some(1_700_000_000_000));
    let mut data_block = Vec::new();
    block.finish_into(&mut data_block);
    data_block.truncate(data_block.len() - 4);
    let mut index = Vec::new();
    let entries = [("apple", 0, 100), ("zebra", 100, 50)];
    let entries: Vec<IndexEntry> = entries
        .iter()
        .map(|&(key, offset, len_bytes)| IndexEntry {
            last_key: key.as_bytes().to_vec(),
            offset,
            len_bytes,
        })
        .collect();
    encode_index(&mut index, &entries);
    let hashes: Vec<u64> = (0..20)
        .map(|i| hash_key(format!("key-{i}").as_bytes()))
        .collect();
    let mut bloom = Vec::new();
    Bloom::build(&hashes, 10).encode(&mut bloom);
    let footer = Footer {
        index_offset: 1000,
        index_len_bytes: 77,
        bloom_offset: 1077,
        bloom_len_bytes: 30,
        entry_count: 12,
        smallest_seq: SeqNo(5),
        largest_seq: SeqNo(16),
        first_deadline_ms: Some(1_700_000_000_000),
        format_version: tskv::sstable::format::FORMAT_VERSION,
    };
    vec![
        Seed {
            target: "sstable_data_block",
            name: "put-tombstone-empty",
            bytes: data_block,
        },
        Seed {
            target: "sstable_index",
            name: "two-blocks",
            bytes: index,
        },
        Seed {
            target: "sstable_bloom",
            name: "twenty-keys",
            bytes: bloom,
        },
        Seed {
            target: "sstable_footer",
            name: "footer",
            bytes: footer.encode().to_vec(),
        },
        Seed {
            target: "sstable_file",
            name: "one-entry",
            bytes: sstable(1, 4096),
        },
        Seed {
            target: "sstable_file",
            name: "thirty-entries-small-blocks",
            bytes: sstable(30, 64),
        },
        Seed {
            target: "sstable_file",
            name: "empty",
            bytes: sstable(0, 4096),
        },
    ]
}

fn manifest_seeds() -> Vec<Seed> {
    let table = |level, id, smallest: &str, largest: &str| LevelTable {
        level,
        id: TableId(id),
        key_range: Some((smallest.as_bytes().to_vec(), largest.as_bytes().to_vec())),
    };
    let manifest = Manifest {
        next_table_id: TableId(9),
        tables: vec![
            table(0, 7, "a", "m"),
            table(0, 8, "c", "z"),
            table(1, 3, "a", "f"),
            table(1, 5, "g", "g"),
        ],
        wal_start: SegmentNo(4),
        last_seq: SeqNo(1234),
    };
    vec![
        Seed {
            target: "manifest",
            name: "two-levels",
            bytes: manifest.encode(),
        },
        Seed {
            target: "manifest",
            name: "empty",
            bytes: Manifest::default().encode(),
        },
    ]
}

fn all_seeds() -> Vec<Seed> {
    let mut seeds = resp_seeds();
    seeds.extend(wal_seeds());
    seeds.extend(sstable_seeds());
    seeds.extend(manifest_seeds());
    seeds
}

#[test]
fn seed_corpus_matches_the_encoders() {
    let write = std::env::var_os("TSKV_FUZZ_SEEDS_WRITE").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for seed in all_seeds() {
        let dir = seeds_dir().join(seed.target);
        let path = dir.join(seed.name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &seed.bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(seed.bytes.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "seeds missing or stale (regenerate with TSKV_FUZZ_SEEDS_WRITE=1 cargo test --test \
         fuzz_seed_corpus): {stale:?}"
    );
}

#[test]
fn every_fuzz_target_has_seeds() {
    let manifest = std::fs::read_to_string(seeds_dir().join("../Cargo.toml")).unwrap();
    let seeds = all_seeds();
    let targets: Vec<&str> = manifest
        .lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .filter(|name| *name != "tskv-fuzz" && *name != "tskv_fuzz")
        .collect();
    assert!(targets.len() >= 10, "targets found: {targets:?}");
    for target in targets {
        assert!(
            seeds.iter().any(|seed| seed.target == target),
            "fuzz target {target} has no seed"
        );
    }
}
