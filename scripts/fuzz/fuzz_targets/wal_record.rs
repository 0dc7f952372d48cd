//! One WAL record (`tskv::wal::record::decode`) from arbitrary bytes, as they are and with
//! the record's checksum rewritten to match: decoding never panics, and a record it accepts
//! lies within the bytes and encodes back to exactly them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::wal::record::{decode, encode_full, Decoded};
use tskv_fuzz::reseal_wal_records;

fn check(bytes: &[u8]) {
    if let Decoded::Record { record, len_bytes } = decode(bytes) {
        assert!(len_bytes <= bytes.len());
        let mut again = Vec::new();
        encode_full(
            &mut again,
            record.kind,
            record.seq,
            record.key,
            record.value,
            record.expire_at_ms,
        );
        assert_eq!(again, &bytes[..len_bytes], "record does not re-encode");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut resealed = data.to_vec();
    reseal_wal_records(&mut resealed);
    check(&resealed);
});
