//! A whole WAL segment (`tskv::wal::reader`): the segment reader, `tail_of`, `judge_tail`
//! and the repair plan (`Salvage`) on arbitrary bytes, as they are and with every batch's
//! and record's checksum rewritten. Nothing panics; every record read re-encodes to the
//! bytes at its offset, below `valid_end`; the reader says why it stopped; the tail it
//! describes lies inside the segment, a clean tail being all zero bytes; the verdict
//! follows the torn-tail rule; and a repaired segment reads back the records before the
//! bad bytes plus the intact batches kept, then only zeros.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::base::SeqNo;
use tskv::wal::reader::{judge_tail, tail_of, Salvage, SegmentReader, Tail, TailVerdict};
use tskv::wal::record::encode_full;
use tskv_fuzz::reseal_wal_records;

fn check(segment: &[u8]) {
    let mut reader = SegmentReader::new(segment);
    let mut records = 0u64;
    for (offset, record) in reader.by_ref() {
        let mut again = Vec::new();
        encode_full(
            &mut again,
            record.kind,
            record.seq,
            record.key,
            record.value,
            record.expire_at_ms,
        );
        assert_eq!(
            segment.get(offset..offset + again.len()),
            Some(&again[..]),
            "a record does not re-encode to its bytes"
        );
        records += 1;
    }
    assert!(reader.stop().is_some(), "the reader ended without a reason");
    assert!(reader.next().is_none(), "records after the stop");
    let valid_end = reader.valid_end();
    assert!(valid_end <= segment.len());
    let tail = tail_of(segment, &reader, SeqNo(0));
    match tail {
        Tail::Clean { zero_bytes } => {
            assert_eq!(valid_end + zero_bytes, segment.len());
            assert!(segment[valid_end..].iter().all(|&b| b == 0));
            assert_eq!(judge_tail(&tail, false), TailVerdict::Clean);
            assert!(Salvage::plan(segment, &reader, SeqNo(0)).is_none());
        }
        Tail::Garbage {
            offset,
            bytes,
            intact_after,
            ..
        } => {
            assert_eq!(offset, valid_end);
            assert!(bytes >= 1 && offset + bytes <= segment.len());
            assert_ne!(segment[offset + bytes - 1], 0);
            let last = if intact_after.proof.is_some() {
                TailVerdict::Corruption
            } else {
                TailVerdict::TornTail
            };
            assert_eq!(judge_tail(&tail, true), last);
            assert_eq!(judge_tail(&tail, false), TailVerdict::Corruption);
            let plan = Salvage::plan(segment, &reader, SeqNo(0)).expect("a plan for garbage");
            assert_eq!(plan.kept_batches, intact_after.batches);
            let repaired = plan.rewrite(segment);
            assert_eq!(repaired.len(), segment.len());
            let mut again = SegmentReader::new(&repaired);
            let read = again.by_ref().count() as u64;
            assert_eq!(read, records + plan.kept_records, "the repair lost records");
            assert!(matches!(
                tail_of(&repaired, &again, SeqNo(0)),
                Tail::Clean { .. }
            ));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut resealed = data.to_vec();
    reseal_wal_records(&mut resealed);
    check(&resealed);
});
