//! Helpers shared by tskv's fuzz targets (`fuzz_targets/`).
//!
//! * [`check_split_invariance`] drives the RESP request parser the way a connection does
//!   (through tskv's own test driver, [`feed`]), with the input cut into chunks, so a target
//!   can check that the outcome never depends on the cuts.
//! * The `reseal_*` functions rewrite the checksums of a mutated input. Every on-disk format
//!   of tskv checks a CRC-32 before it decodes anything, so without them almost every
//!   mutation stops at the checksum and the decoders behind it are never reached. A target
//!   runs each input twice: as it is (the checksum path) and resealed (the decoders).
//!
//! The helpers only frame and checksum bytes; all decoding is done by tskv's own public
//! functions.

use std::ops::Range;

use tskv::config::ProtocolLimits;
pub use tskv::resp::testing::{feed, Outcome};
use tskv::sstable::format::{decode_index, Footer};

/// Small limits, so that inputs of a few hundred bytes reach every limit's error.
pub const TINY_LIMITS: ProtocolLimits = ProtocolLimits {
    bulk_bytes_max: 16,
    array_len_max: 8,
    inline_bytes_max: 32,
};

/// Cuts `input` into chunks of the lengths `chunk_lens` yields (clamped to 1..=what is
/// left; the rest in one chunk when it runs out).
pub fn cut(input: &[u8], mut chunk_lens: impl Iterator<Item = usize>) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let len = chunk_lens.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(len);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Chunk lengths from 1 to `max_len`, pseudo-random but fixed by `seed` (splitmix64), so a
/// crashing input replays the same cuts.
pub fn chunk_lens(seed: u64, max_len: usize) -> impl Iterator<Item = usize> {
    let mut state = seed;
    std::iter::repeat_with(move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        1 + (z % max_len as u64) as usize
    })
}

/// Checks that `input` gives the same outcome whole, a byte at a time and in pseudo-random
/// chunks, under `limits`, and returns it.
///
/// # Panics
/// If two ways of feeding disagree, or as [`feed`] when the parser breaks its contract.
pub fn check_split_invariance(limits: ProtocolLimits, input: &[u8]) -> Outcome {
    let whole = feed(limits, &cut(input, std::iter::empty()));
    let bytewise = feed(limits, &cut(input, std::iter::repeat(1)));
    assert_eq!(whole, bytewise, "whole vs one byte at a time");
    let seed = u64::from(crc32fast::hash(input));
    let chunked = feed(limits, &cut(input, chunk_lens(seed, 17)));
    assert_eq!(whole, chunked, "whole vs chunks (seed {seed})");
    whole
}

/// Rewrites the trailing CRC-32 of a checked block (payload then crc) to match its payload.
/// Does nothing to a block shorter than its checksum.
pub fn reseal_block(block: &mut [u8]) {
    let Some(payload_len) = block.len().checked_sub(4) else {
        return;
    };
    let crc = crc32fast::hash(&block[..payload_len]);
    block[payload_len..].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// Rewrites the checksums of a WAL segment: of each group-commit batch (after those of the
/// records inside it) and of each bare record (`crc32 u32 | length u32 | body`, the crc over
/// the length and body), walking by their length fields until a zero length or one that
/// runs past the end.
pub fn reseal_wal_records(segment: &mut [u8]) {
    let mut at = 0;
    while at < segment.len() {
        if tskv::wal::batch::starts_batch(&segment[at..]) {
            // A group-commit batch: its records first, then the batch's own CRC over them.
            let Some(body_len) = u32_at(segment, at + 8) else {
                return;
            };
            let body = at + tskv::wal::batch::BATCH_HEADER_BYTES;
            let Some(end) = body
                .checked_add(body_len as usize)
                .filter(|&e| e <= segment.len())
            else {
                return;
            };
            reseal_bare_records(&mut segment[body..end]);
            let crc = crc32fast::hash(&segment[at + 4..end]);
            segment[at..at + 4].copy_from_slice(&crc.to_le_bytes());
            at = end;
        } else {
            let Some(end) = reseal_one_record(segment, at) else {
                return;
            };
            at = end;
        }
    }
}

/// Rewrites the checksum of every bare record in `records`, front to back.
fn reseal_bare_records(records: &mut [u8]) {
    let mut at = 0;
    while let Some(end) = reseal_one_record(records, at) {
        at = end;
    }
}

/// Rewrites the checksum of the bare record at `at`; returns where it ends, or `None` if
/// no whole record is there.
fn reseal_one_record(buf: &mut [u8], at: usize) -> Option<usize> {
    let length = u32_at(buf, at + 4)?;
    let end = at + 8 + length as usize;
    if length == 0 || end > buf.len() {
        return None;
    }
    let crc = crc32fast::hash(&buf[at + 4..end]);
    buf[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    Some(end)
}

/// Rewrites the checksums of an SSTable file: the footer's, then those of the index and
/// Bloom blocks it points to, then those of the data blocks the index points to. Regions
/// that lie outside the file are left alone.
pub fn reseal_sstable(file: &mut [u8]) {
    let Some(footer_len) = Footer::len_at_end(file) else {
        return;
    };
    let footer_offset = file.len() - footer_len;
    reseal_block(&mut file[footer_offset..]);
    let Ok(footer) = Footer::decode(&file[footer_offset..]) else {
        return;
    };
    let region = |offset: u64, len: u32| -> Option<Range<usize>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len as usize)?;
        (end <= footer_offset).then_some(start..end)
    };
    if let Some(bloom) = region(footer.bloom_offset, footer.bloom_len_bytes) {
        reseal_block(&mut file[bloom]);
    }
    let Some(index) = region(footer.index_offset, footer.index_len_bytes) else {
        return;
    };
    reseal_block(&mut file[index.clone()]);
    let Some(payload) = file[index.clone()].get(..index.len().saturating_sub(4)) else {
        return;
    };
    let Ok(entries) = decode_index(payload) else {
        return;
    };
    for entry in entries {
        if let Some(block) = region(entry.offset, entry.len_bytes) {
            // A data block that overlaps the index would change it under our feet.
            if block.end <= index.start || block.start >= index.end {
                reseal_block(&mut file[block]);
            }
        }
    }
}
