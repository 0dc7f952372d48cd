//! An SSTable data block (`tskv::sstable::block`): the input is a block payload (the crc
//! already checked, as the reader hands it over), and also goes through `open_block` as a
//! whole block. `BlockEntries` and `find` never panic; the entries decoded have strictly
//! increasing keys; `find` returns each of them by its key; and a payload that decodes
//! entirely is rebuilt byte for byte by `BlockBuilder`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::base::codec::open_block;
use tskv::sstable::block::{find, BlockBuilder, BlockEntries};

fuzz_target!(|data: &[u8]| {
    let _ = open_block(data);
    let mut entries = Vec::new();
    let mut failed = false;
    for entry in BlockEntries::new(data) {
        match entry {
            Ok(entry) => entries.push(entry),
            Err(_) => failed = true,
        }
    }
    for pair in entries.windows(2) {
        assert!(pair[0].key < pair[1].key, "keys not increasing");
    }
    for entry in &entries {
        assert_eq!(find(data, entry.key), Ok(Some(*entry)));
    }
    let _ = find(data, b"");
    let _ = find(data, b"\xff\xff\xff\xff");
    if !failed {
        let mut builder = BlockBuilder::new();
        for entry in &entries {
            builder.add(entry.key, entry.seq, entry.value, entry.expire_at_ms);
        }
        let mut block = Vec::new();
        builder.finish_into(&mut block);
        assert_eq!(open_block(&block), Ok(data), "block does not rebuild");
    }
});
