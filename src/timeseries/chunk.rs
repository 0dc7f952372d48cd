//! The sample chunk: a run of samples of one series, sorted by timestamp, encoded with
//! Gorilla's delta-of-delta timestamps and XOR'd values (T. Pelkonen et al., "Gorilla: A
//! Fast, Scalable, In-Memory Time Series Database", PVLDB 8(12), 2015, section 4.1), or
//! uncompressed, and closed by a CRC-32 so a damaged chunk is an error, never samples.
//!
//! ```text
//!  chunk = header (28 bytes) | payload (payload_len bytes) | crc32 u32   (little-endian)
//!
//!  header:  0  version u8 (= 1)
//!           1  encoding u8   0 = Gorilla, 1 = uncompressed
//!           2  reserved u16  (= 0)
//!           4  sample_count u32   (>= 1)
//!           8  first_ts_ms u64
//!          16  last_ts_ms u64
//!          24  payload_len u32
//!
//!  Gorilla payload, a bit stream, most significant bit first:
//!    sample 0:  value, 64 raw bits (its timestamp is first_ts_ms)
//!    sample i:  timestamp delta-of-delta D = (t_i - t_{i-1}) - (t_{i-1} - t_{i-2}),
//!               with t_{-1} = t_0 (wrapping u64 arithmetic):
//!                 D = 0               '0'
//!                 D in [-64, 63]      '10'   + 7 bits (two's complement)
//!                 D in [-256, 255]    '110'  + 9 bits
//!                 D in [-2048, 2047]  '1110' + 12 bits
//!                 otherwise           '1111' + 64 bits
//!               value, XOR with the previous value X:
//!                 X = 0               '0'
//!                 X fits the previous window of meaningful bits
//!                                     '10' + the window's bits
//!                 otherwise           '11' + leading zeros (6 bits) + meaningful bit
//!                                     count - 1 (6 bits) + the meaningful bits
//!  Uncompressed payload: sample_count × (ts_ms u64 | value f64 bits u64)
//! ```
//!
//! The timestamp buckets are the paper's, as two's-complement ranges, with the last widened
//! so a gap of any size fits (the paper's is 32 bits, for second-resolution data); the value encoding is the paper's
//! with 6-bit leading-zero counts. Values are kept bit for bit (−0.0, subnormals, NaN
//! payloads), the command layer decides which values it accepts. [`decode`] takes any bytes
//! and returns samples or an error, never panicking: it is the fuzz target's entry point.

use crate::base::codec::{open_block, seal_block, Cursor, FormatError, BLOCK_CRC_BYTES};

use super::bits::{BitReader, BitWriter};

/// Chunk format version written in the header.
pub const CHUNK_VERSION: u8 = 1;
/// Bytes of the chunk header.
pub const CHUNK_HEADER_BYTES: usize = 28;

/// One sample: a timestamp in milliseconds and a double.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch (any non-negative `i64`).
    pub ts_ms: u64,
    /// The value.
    pub value: f64,
}

/// How a chunk's samples are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkEncoding {
    /// Gorilla delta-of-delta timestamps and XOR'd values (`ENCODING COMPRESSED`).
    Gorilla,
    /// 16 bytes per sample (`ENCODING UNCOMPRESSED`).
    Uncompressed,
}

impl ChunkEncoding {
    fn tag(self) -> u8 {
        match self {
            Self::Gorilla => 0,
            Self::Uncompressed => 1,
        }
    }
}

/// A chunk's header fields, readable without decoding the samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    /// The payload's layout.
    pub encoding: ChunkEncoding,
    /// Samples in the chunk (at least 1).
    pub sample_count: u32,
    /// Timestamp of the first sample.
    pub first_ts_ms: u64,
    /// Timestamp of the last sample.
    pub last_ts_ms: u64,
}

fn format_error(reason: &'static str, offset: usize) -> FormatError {
    FormatError { reason, offset }
}

/// Encodes `samples` (non-empty, strictly increasing timestamps) as one chunk.
///
/// # Panics
/// If `samples` is empty or not strictly increasing: a caller bug.
pub fn encode(samples: &[Sample], encoding: ChunkEncoding) -> Vec<u8> {
    assert!(!samples.is_empty(), "a chunk holds at least one sample");
    assert!(
        samples.windows(2).all(|w| w[0].ts_ms < w[1].ts_ms),
        "chunk samples must be strictly increasing in time"
    );
    let payload = match encoding {
        ChunkEncoding::Gorilla => gorilla_payload(samples),
        ChunkEncoding::Uncompressed => {
            let mut out = Vec::with_capacity(samples.len() * 16);
            for s in samples {
                out.extend_from_slice(&s.ts_ms.to_le_bytes());
                out.extend_from_slice(&s.value.to_bits().to_le_bytes());
            }
            out
        }
    };
    let mut out = Vec::with_capacity(CHUNK_HEADER_BYTES + payload.len() + BLOCK_CRC_BYTES);
    out.push(CHUNK_VERSION);
    out.push(encoding.tag());
    out.extend_from_slice(&0u16.to_le_bytes());
    let count = u32::try_from(samples.len()).expect("fewer than 2^32 samples in a chunk");
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&samples[0].ts_ms.to_le_bytes());
    out.extend_from_slice(&samples[samples.len() - 1].ts_ms.to_le_bytes());
    let payload_len = u32::try_from(payload.len()).expect("chunk payload under 4 GiB");
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(&payload);
    seal_block(&mut out, 0);
    out
}

fn gorilla_payload(samples: &[Sample]) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.write(samples[0].value.to_bits(), 64);
    let (mut prev_ts, mut prev_delta) = (samples[0].ts_ms, 0u64);
    let mut prev_bits = samples[0].value.to_bits();
    let mut window: Option<(u32, u32)> = None; // (leading zeros, meaningful bits)
    for s in &samples[1..] {
        let delta = s.ts_ms.wrapping_sub(prev_ts);
        let dod = delta.wrapping_sub(prev_delta) as i64;
        match dod {
            0 => w.write(0, 1),
            -64..=63 => {
                w.write(0b10, 2);
                w.write(dod as u64, 7);
            }
            -256..=255 => {
                w.write(0b110, 3);
                w.write(dod as u64, 9);
            }
            -2048..=2047 => {
                w.write(0b1110, 4);
                w.write(dod as u64, 12);
            }
            _ => {
                w.write(0b1111, 4);
                w.write(dod as u64, 64);
            }
        }
        (prev_ts, prev_delta) = (s.ts_ms, delta);
        let bits = s.value.to_bits();
        let xor = bits ^ prev_bits;
        prev_bits = bits;
        if xor == 0 {
            w.write(0, 1);
            continue;
        }
        let leading = xor.leading_zeros().min(63);
        let trailing = xor.trailing_zeros();
        match window {
            Some((lead, len)) if leading >= lead && trailing >= 64 - lead - len => {
                w.write(0b10, 2);
                w.write(xor >> (64 - lead - len), len);
            }
            _ => {
                let len = 64 - leading - trailing;
                w.write(0b11, 2);
                w.write(u64::from(leading), 6);
                w.write(u64::from(len - 1), 6);
                w.write(xor >> trailing, len);
                window = Some((leading, len));
            }
        }
    }
    w.finish()
}

/// Where a walk over the chunks of series `series_id` that may hold samples up to
/// `to_ms` ends: at the first entry that is not one of its chunks (`key`), or at a live
/// chunk (`value`) whose first sample is after `to_ms` (the walk has read it). The one
/// rule of every reader of a series' chunks and of the plan that reads their blocks
/// through the ring first (`super::plan`); a tombstone and a deletion mark of the
/// series (which follows its chunk, [`super::marks`]) go on.
///
/// # Errors
/// A damaged chunk header.
pub fn walk_ends(
    key: &[u8],
    value: Option<&[u8]>,
    series_id: u64,
    to_ms: u64,
) -> Result<bool, FormatError> {
    if super::keys::chunk_key_ts(key, series_id).is_none() {
        let ours = super::keys::parse_mark_key(key).is_some_and(|m| m.series_id == series_id);
        return Ok(!ours);
    }
    match value {
        Some(value) => Ok(header(value)?.first_ts_ms > to_ms),
        None => Ok(false),
    }
}

/// Reads and checks a chunk's header (and its checksum) without decoding its samples.
///
/// # Errors
/// A checksum mismatch, a short buffer, an unknown version or encoding, or fields that
/// contradict each other.
pub fn header(chunk: &[u8]) -> Result<ChunkHeader, FormatError> {
    let body = open_block(chunk)?;
    let mut c = Cursor::new(body);
    let head = c.bytes(4)?;
    if head[0] != CHUNK_VERSION {
        return Err(format_error("unknown chunk version", 0));
    }
    let encoding = match head[1] {
        0 => ChunkEncoding::Gorilla,
        1 => ChunkEncoding::Uncompressed,
        _ => return Err(format_error("unknown chunk encoding", 1)),
    };
    let sample_count = c.u32()?;
    let first_ts_ms = c.u64()?;
    let last_ts_ms = c.u64()?;
    let payload_len = c.u32()? as usize;
    if body.len() != CHUNK_HEADER_BYTES + payload_len {
        return Err(format_error(
            "payload length disagrees with the chunk size",
            24,
        ));
    }
    if sample_count == 0
        || first_ts_ms > last_ts_ms
        || (sample_count == 1) != (first_ts_ms == last_ts_ms)
    {
        return Err(format_error("inconsistent sample count or time range", 4));
    }
    Ok(ChunkHeader {
        encoding,
        sample_count,
        first_ts_ms,
        last_ts_ms,
    })
}

/// Decodes a chunk into its samples, in time order. Never panics, whatever the bytes.
///
/// # Errors
/// Anything [`header`] rejects, a bit stream that ends early or has bytes left over,
/// timestamps that do not increase, or ones that disagree with the header.
pub fn decode(chunk: &[u8]) -> Result<Vec<Sample>, FormatError> {
    let h = header(chunk)?;
    let payload = &chunk[CHUNK_HEADER_BYTES..chunk.len() - BLOCK_CRC_BYTES];
    let count = h.sample_count as usize;
    let samples = match h.encoding {
        ChunkEncoding::Uncompressed => {
            if payload.len() != count.saturating_mul(16) {
                return Err(format_error(
                    "uncompressed payload size",
                    CHUNK_HEADER_BYTES,
                ));
            }
            let mut c = Cursor::new(payload);
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                let ts_ms = c.u64()?;
                let value = f64::from_bits(c.u64()?);
                out.push(Sample { ts_ms, value });
            }
            out
        }
        ChunkEncoding::Gorilla => {
            // Every sample after the first takes at least two bits: bound the allocation.
            if count - 1 > payload.len().saturating_mul(4) {
                return Err(format_error("more samples than the payload can hold", 4));
            }
            decode_gorilla(payload, h.first_ts_ms, count)?
        }
    };
    let ordered = samples.windows(2).all(|w| w[0].ts_ms < w[1].ts_ms);
    let ends_match = samples.first().map(|s| s.ts_ms) == Some(h.first_ts_ms)
        && samples.last().map(|s| s.ts_ms) == Some(h.last_ts_ms);
    if !ordered || !ends_match {
        return Err(format_error(
            "sample timestamps out of order or off the header",
            8,
        ));
    }
    Ok(samples)
}

fn decode_gorilla(
    payload: &[u8],
    first_ts_ms: u64,
    count: usize,
) -> Result<Vec<Sample>, FormatError> {
    let mut r = BitReader::new(payload);
    let mut bits = r.read(64)?;
    let mut out = Vec::with_capacity(count);
    out.push(Sample {
        ts_ms: first_ts_ms,
        value: f64::from_bits(bits),
    });
    let (mut ts, mut delta) = (first_ts_ms, 0u64);
    let mut window: Option<(u32, u32)> = None;
    while out.len() < count {
        let dod = if r.read(1)? == 0 {
            0
        } else if r.read(1)? == 0 {
            sign_extend(r.read(7)?, 7)
        } else if r.read(1)? == 0 {
            sign_extend(r.read(9)?, 9)
        } else if r.read(1)? == 0 {
            sign_extend(r.read(12)?, 12)
        } else {
            r.read(64)?
        };
        delta = delta.wrapping_add(dod);
        ts = ts.wrapping_add(delta);
        if r.read(1)? == 1 {
            let xor = if r.read(1)? == 0 {
                let (lead, len) =
                    window.ok_or(format_error("value reuses a window never set", 0))?;
                r.read(len)? << (64 - lead - len)
            } else {
                let lead = r.read(6)? as u32;
                let len = r.read(6)? as u32 + 1;
                if lead + len > 64 {
                    return Err(format_error(
                        "value window wider than 64 bits",
                        r.byte_offset(),
                    ));
                }
                window = Some((lead, len));
                r.read(len)? << (64 - lead - len)
            };
            bits ^= xor;
        }
        out.push(Sample {
            ts_ms: ts,
            value: f64::from_bits(bits),
        });
    }
    if !r.only_padding_left() {
        return Err(format_error(
            "bytes left after the last sample",
            r.byte_offset(),
        ));
    }
    Ok(out)
}

/// Sign-extends the low `width` bits of `raw` to a wrapping `u64`.
fn sign_extend(raw: u64, width: u32) -> u64 {
    let shift = 64 - width;
    (((raw << shift) as i64) >> shift) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples_from(pairs: &[(u64, f64)]) -> Vec<Sample> {
        pairs
            .iter()
            .map(|&(ts_ms, value)| Sample { ts_ms, value })
            .collect()
    }

    fn bits_equal(a: &[Sample], b: &[Sample]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.ts_ms == y.ts_ms && x.value.to_bits() == y.value.to_bits())
    }

    /// Sorted, de-duplicated timestamps from arbitrary gaps, with arbitrary value bits.
    fn series() -> impl Strategy<Value = Vec<Sample>> {
        let gap = prop_oneof![Just(10_000u64), 0u64..3, 1u64..5000, 1u64..(1 << 40)];
        let value = prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(-0.0f64),
            Just(f64::MIN_POSITIVE / 4.0),
            Just(f64::MAX),
            (-1000i32..1000).prop_map(|n| f64::from(n) / 4.0),
        ];
        (0u64..(1 << 50), prop::collection::vec((gap, value), 1..300)).prop_map(|(start, raw)| {
            let mut ts = start;
            let mut out = Vec::new();
            for (gap, value) in raw {
                ts = ts.saturating_add(gap.max(1)).min(i64::MAX as u64);
                if out.last().is_some_and(|s: &Sample| s.ts_ms >= ts) {
                    break;
                }
                out.push(Sample { ts_ms: ts, value });
            }
            out
        })
    }

    proptest! {
        #[test]
        fn gorilla_and_uncompressed_round_trip_bit_exactly(samples in series()) {
            for encoding in [ChunkEncoding::Gorilla, ChunkEncoding::Uncompressed] {
                let chunk = encode(&samples, encoding);
                let back = decode(&chunk).unwrap();
                prop_assert!(bits_equal(&samples, &back));
                let h = header(&chunk).unwrap();
                prop_assert_eq!(h.sample_count as usize, samples.len());
            }
        }

        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_a_valid_header_with_arbitrary_payload(
            payload in prop::collection::vec(any::<u8>(), 0..120),
            count in 1u32..2000,
            first in any::<u64>(),
            last in any::<u64>(),
            encoding in 0u8..2,
        ) {
            // A correct checksum over garbage reaches the bit-stream decoder itself.
            let mut chunk = vec![CHUNK_VERSION, encoding, 0, 0];
            chunk.extend_from_slice(&count.to_le_bytes());
            chunk.extend_from_slice(&first.to_le_bytes());
            chunk.extend_from_slice(&last.to_le_bytes());
            chunk.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            chunk.extend_from_slice(&payload);
            seal_block(&mut chunk, 0);
            let _ = decode(&chunk);
        }
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let samples: Vec<Sample> = (0..200)
            .map(|i| Sample {
                ts_ms: 1_600_000_000_000 + i * 10_000 + (i % 7),
                value: 20.0 + (i as f64).sin(),
            })
            .collect();
        for encoding in [ChunkEncoding::Gorilla, ChunkEncoding::Uncompressed] {
            let chunk = encode(&samples, encoding);
            for bit in 0..chunk.len() * 8 {
                let mut damaged = chunk.clone();
                damaged[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    decode(&damaged).is_err(),
                    "flipped bit {bit} went unnoticed"
                );
            }
            assert!(decode(&chunk[..chunk.len() - 1]).is_err());
        }
    }

    #[test]
    fn regular_ten_second_data_compresses_like_gorilla() {
        // Gorilla reports 1.37 bytes per sample on its production data; regular 10 s steps
        // with slowly moving values must stay in that region.
        let samples: Vec<Sample> = (0..1000)
            .map(|i| Sample {
                ts_ms: 1_700_000_000_000 + i * 10_000,
                value: (50 + (i / 100) % 3) as f64,
            })
            .collect();
        let chunk = encode(&samples, ChunkEncoding::Gorilla);
        let per_sample = chunk.len() as f64 / samples.len() as f64;
        assert!(per_sample < 1.0, "{per_sample} bytes per sample");
    }

    #[test]
    fn single_sample_and_extreme_gaps() {
        let samples = samples_from(&[
            (0, -0.0),
            (i64::MAX as u64 - 1, f64::MAX),
            (i64::MAX as u64, 1e-310),
        ]);
        assert!(bits_equal(
            &decode(&encode(&samples, ChunkEncoding::Gorilla)).unwrap(),
            &samples
        ));
        let one = samples_from(&[(5, 1.5)]);
        assert!(bits_equal(
            &decode(&encode(&one, ChunkEncoding::Gorilla)).unwrap(),
            &one
        ));
    }
}
