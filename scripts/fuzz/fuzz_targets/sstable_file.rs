//! A whole SSTable file (`tskv::sstable::reader::Table::open`, then `TableIter`, `get`,
//! `check_block`), from arbitrary bytes written to a temporary file, as they are and with
//! every checksum rewritten (footer, index, Bloom and the data blocks the index names).
//! Opening either succeeds or returns an error, never panics; on an open table, walking
//! every entry, seeking, looking keys up and checking each block also never panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tskv::sstable::iter::TableIter;
use tskv::sstable::reader::Table;
use tskv::sstable::TableId;
use tskv_fuzz::reseal_sstable;

/// One file per fuzzing process, rewritten for each input; in `/dev/shm` when there is one,
/// since a file on disk costs most of each run.
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("tskv-fuzz-sstable-{}.sst", std::process::id()))
    })
}

fn check(bytes: &[u8]) {
    std::fs::write(path(), bytes).expect("writing the temporary SSTable");
    let Ok(table) = Table::open(path(), TableId(1)) else {
        return;
    };
    let mut keys = Vec::new();
    for entry in TableIter::new(&table) {
        match entry {
            Ok(entry) => keys.push(entry.key),
            Err(_) => break,
        }
    }
    for key in &keys {
        let _ = table.get(key);
        let _ = TableIter::seek(&table, key).next();
    }
    let _ = table.get(b"");
    for block_index in 0..table.block_count() {
        let (offset, len) = table.block_extent(block_index);
        let start = usize::try_from(offset).expect("offset inside the file");
        let _ = table.check_block(block_index, bytes[start..start + len].to_vec());
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut resealed = data.to_vec();
    reseal_sstable(&mut resealed);
    if resealed != data {
        check(&resealed);
    }
});
