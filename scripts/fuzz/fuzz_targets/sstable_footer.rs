//! The SSTable footer (`tskv::sstable::format::Footer::decode`), from arbitrary bytes as
//! they are and, for 64-byte inputs, with the footer's checksum rewritten: decoding never
//! panics, and a footer it accepts encodes back to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::sstable::format::{Footer, FOOTER_BYTES};
use tskv_fuzz::reseal_block;

fn check(bytes: &[u8]) {
    if let Ok(footer) = Footer::decode(bytes) {
        assert_eq!(
            footer.encode().as_slice(),
            bytes,
            "footer does not re-encode"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() == FOOTER_BYTES {
        let mut resealed = data.to_vec();
        reseal_block(&mut resealed);
        check(&resealed);
    }
});
