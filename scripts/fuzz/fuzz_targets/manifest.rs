//! The manifest (`tskv::manifest::Manifest::decode`), from arbitrary bytes as they are and
//! with the file's checksum rewritten: decoding never panics, the tables it accepts are
//! below `next_table_id`, at most once each, in level order, with keys in order, and a
//! version 2 manifest encodes back to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::manifest::{Manifest, FORMAT_VERSION, LEVELS_MAX};
use tskv_fuzz::reseal_block;

fn check(bytes: &[u8]) {
    let Ok(manifest) = Manifest::decode(bytes) else {
        return;
    };
    let mut ids = std::collections::HashSet::new();
    for pair in manifest.tables.windows(2) {
        assert!(pair[0].level <= pair[1].level, "levels out of order");
    }
    for table in &manifest.tables {
        assert!((table.level as usize) < LEVELS_MAX);
        assert!(table.id < manifest.next_table_id);
        assert!(ids.insert(table.id), "table listed twice");
        if let Some((smallest, largest)) = &table.key_range {
            assert!(smallest <= largest, "key range reversed");
        }
    }
    if bytes[8..12] == FORMAT_VERSION.to_le_bytes() {
        assert_eq!(manifest.encode(), bytes, "manifest does not re-encode");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut resealed = data.to_vec();
    reseal_block(&mut resealed);
    check(&resealed);
});
