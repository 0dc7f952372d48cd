//! A whole WAL segment (`tskv::wal::reader`): the segment reader, `tail_of` and
//! `judge_tail` on arbitrary bytes, as they are and with every record's checksum
//! rewritten. Nothing panics; the records read re-encode to exactly the bytes before
//! `valid_end`; the reader says why it stopped; and the tail it describes lies inside the
//! segment, a clean tail being all zero bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::wal::reader::{judge_tail, tail_of, SegmentReader, Tail, TailVerdict};
use tskv::wal::record::encode;
use tskv_fuzz::reseal_wal_records;

fn check(segment: &[u8]) {
    let mut reader = SegmentReader::new(segment);
    let mut again = Vec::new();
    for record in reader.by_ref() {
        encode(
            &mut again,
            record.kind,
            record.seq,
            record.key,
            record.value,
        );
    }
    assert!(reader.stop().is_some(), "the reader ended without a reason");
    assert!(reader.next().is_none(), "records after the stop");
    let valid_end = reader.valid_end();
    assert_eq!(again, &segment[..valid_end], "records do not re-encode");
    let tail = tail_of(segment, &reader);
    match tail {
        Tail::Clean { zero_bytes } => {
            assert_eq!(valid_end + zero_bytes, segment.len());
            assert!(segment[valid_end..].iter().all(|&b| b == 0));
            assert_eq!(judge_tail(&tail, false), TailVerdict::Clean);
        }
        Tail::Garbage { offset, bytes, .. } => {
            assert_eq!(offset, valid_end);
            assert!(bytes >= 1 && offset + bytes <= segment.len());
            assert_ne!(segment[offset + bytes - 1], 0);
            assert_eq!(judge_tail(&tail, true), TailVerdict::TornTail);
            assert_eq!(judge_tail(&tail, false), TailVerdict::Corruption);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut resealed = data.to_vec();
    reseal_wal_records(&mut resealed);
    check(&resealed);
});
