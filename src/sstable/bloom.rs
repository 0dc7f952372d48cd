//! Bloom filters: "maybe present" or "certainly absent" for a key, per table.
//!
//! Payload of the Bloom block (before its crc):
//!
//! ```text
//!  ┌──────────┬──────────────────────────┐
//!  │ k u32    │ bit array (m = 8·n bits) │
//!  └──────────┴──────────────────────────┘
//! ```
//!
//! A key's 64-bit xxh3 hash `h` gives `h1 = low 32 bits`, `h2 = high 32 bits`, and probe
//! `i` (0 ≤ i < k) tests bit `(h1 + i·h2) mod m` (double hashing; bit `j` is bit `j % 8`
//! of byte `j / 8`). `k = round(ln 2 · bits_per_key)`, clamped to 1..=30.

use crate::base::codec::{Cursor, FormatError};

/// Most probes per key.
pub const PROBES_MAX: u32 = 30;
/// Fewest bits in a filter, so tiny tables still filter.
pub const BITS_MIN: usize = 64;

/// The hash a filter is built from and probed with.
pub fn hash_key(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// A Bloom filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bloom {
    probes: u32,
    bits: Vec<u8>,
}

impl Bloom {
    /// A filter over the keys whose [`hash_key`] hashes are `hashes`, with about
    /// `bits_per_key` bits per key.
    pub fn build(hashes: &[u64], bits_per_key: usize) -> Self {
        let bits_per_key = bits_per_key.max(1);
        let bit_count = (hashes.len() * bits_per_key).max(BITS_MIN).div_ceil(8) * 8;
        let probes = ((bits_per_key as f64) * std::f64::consts::LN_2).round() as u32;
        let mut bloom = Self {
            probes: probes.clamp(1, PROBES_MAX),
            bits: vec![0; bit_count / 8],
        };
        for &h in hashes {
            for bit in bloom.probe_bits(h) {
                bloom.bits[bit / 8] |= 1 << (bit % 8);
            }
        }
        bloom
    }

    fn probe_bits(&self, h: u64) -> impl Iterator<Item = usize> {
        let bit_count = (self.bits.len() * 8) as u64;
        let h1 = h & 0xffff_ffff;
        let h2 = h >> 32;
        (0..u64::from(self.probes))
            .map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % bit_count) as usize)
    }

    /// False if the key is certainly absent.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.may_contain_hash(hash_key(key))
    }

    /// Like [`Bloom::may_contain`], from a precomputed [`hash_key`].
    pub fn may_contain_hash(&self, h: u64) -> bool {
        self.probe_bits(h)
            .all(|bit| self.bits[bit / 8] & (1 << (bit % 8)) != 0)
    }

    /// Appends the payload (without crc) to `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.probes.to_le_bytes());
        buf.extend_from_slice(&self.bits);
    }

    /// Decodes a payload (crc already checked and removed).
    ///
    /// # Errors
    /// If it is too short, has no bits, or an impossible probe count.
    pub fn decode(payload: &[u8]) -> Result<Self, FormatError> {
        let mut cursor = Cursor::new(payload);
        let probes = cursor.u32()?;
        let bits = &payload[cursor.position()..];
        if !(1..=PROBES_MAX).contains(&probes) {
            return Err(FormatError {
                reason: "Bloom probe count out of range",
                offset: 0,
            });
        }
        if bits.is_empty() {
            return Err(FormatError {
                reason: "Bloom filter without bits",
                offset: 4,
            });
        }
        Ok(Self {
            probes,
            bits: bits.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
        range.map(|i| format!("key-{i}").into_bytes()).collect()
    }

    #[test]
    fn no_false_negatives_and_round_trip() {
        let ks = keys(0..1000);
        let hashes: Vec<u64> = ks.iter().map(|k| hash_key(k)).collect();
        let bloom = Bloom::build(&hashes, 10);
        assert!(ks.iter().all(|k| bloom.may_contain(k)));
        let mut buf = Vec::new();
        bloom.encode(&mut buf);
        assert_eq!(Bloom::decode(&buf).unwrap(), bloom);
    }

    #[test]
    fn false_positive_rate_is_about_one_percent_at_ten_bits() {
        let hashes: Vec<u64> = keys(0..10_000).iter().map(|k| hash_key(k)).collect();
        let bloom = Bloom::build(&hashes, 10);
        let probes = keys(1_000_000..1_100_000);
        let false_positives = probes.iter().filter(|k| bloom.may_contain(k)).count();
        let rate = false_positives as f64 / probes.len() as f64;
        // Theory: (1 - e^(-k/10))^k with k = 7 gives 0.82%.
        assert!(rate < 0.02, "false positive rate {rate}");
        assert!(rate > 0.002, "suspiciously low false positive rate {rate}");
    }

    #[test]
    fn empty_filter_rejects_everything() {
        let bloom = Bloom::build(&[], 10);
        assert!(!bloom.may_contain(b"anything"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100), key in any::<u64>()) {
            if let Ok(bloom) = Bloom::decode(&bytes) {
                let _ = bloom.may_contain_hash(key);
            }
        }
    }
}
