//! An SSTable Bloom block (`tskv::sstable::bloom::Bloom::decode`): the input is a Bloom
//! payload, and also goes through `open_block` as a whole block. Decoding never panics; a
//! filter it accepts encodes back to exactly the input and answers probes without
//! panicking. A filter built from hashes cut from the input, encoded and decoded, still
//! says "maybe" for every one of them (no false negatives).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::base::codec::open_block;
use tskv::sstable::bloom::{hash_key, Bloom};

fuzz_target!(|data: &[u8]| {
    let _ = open_block(data).map(Bloom::decode);
    if let Ok(bloom) = Bloom::decode(data) {
        let mut again = Vec::new();
        bloom.encode(&mut again);
        assert_eq!(again, data, "filter does not re-encode");
        for key in data.chunks(7) {
            let _ = bloom.may_contain(key);
        }
        let _ = bloom.may_contain_hash(u64::MAX);
    }
    let hashes: Vec<u64> = data.chunks(5).map(hash_key).collect();
    let bits_per_key = data.first().map_or(10, |&b| usize::from(b % 32));
    let mut encoded = Vec::new();
    Bloom::build(&hashes, bits_per_key).encode(&mut encoded);
    let bloom = Bloom::decode(&encoded).expect("a built filter decodes");
    assert!(
        hashes.iter().all(|&h| bloom.may_contain_hash(h)),
        "false negative"
    );
});
