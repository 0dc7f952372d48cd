//! An SSTable index block (`tskv::sstable::format::decode_index`): the input is an index
//! payload, and also goes through `open_block` as a whole block. Decoding never panics, and
//! an index it accepts has strictly increasing keys and encodes back to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::base::codec::open_block;
use tskv::sstable::format::{decode_index, encode_index};

fuzz_target!(|data: &[u8]| {
    let _ = open_block(data).map(decode_index);
    if let Ok(entries) = decode_index(data) {
        for pair in entries.windows(2) {
            assert!(pair[0].last_key < pair[1].last_key, "keys not increasing");
        }
        let mut again = Vec::new();
        encode_index(&mut again, &entries);
        assert_eq!(again, data, "index does not re-encode");
    }
});
