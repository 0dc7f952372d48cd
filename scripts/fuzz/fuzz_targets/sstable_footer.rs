//! The SSTable footer (`tskv::sstable::format::Footer::decode`), from arbitrary bytes as
//! they are and, for inputs as long as the footer their version field names, with the
//! footer's checksum rewritten: decoding never panics, and a footer it accepts encodes
//! back to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::sstable::format::Footer;
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
    if Footer::len_at_end(data) == Some(data.len()) {
        let mut resealed = data.to_vec();
        reseal_block(&mut resealed);
        check(&resealed);
    }
});
