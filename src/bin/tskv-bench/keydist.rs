//! Key distributions: which key index (0..keys) the next request touches.
//!
//! Pure policy: a [`KeyGenerator`] draws from a caller-supplied random number generator, so a
//! seeded generator gives the same key sequence every time.
//!
//! * uniform: every key equally likely.
//! * sequential: 0, 1, 2, ... wrapping around (each thread starts at its own offset).
//! * gaussian: normal with mean keys/2 and standard deviation keys/8, clamped to the keyspace.
//! * zipfian: YCSB's scrambled zipfian. Ranks follow a zipfian law with θ = 0.99, drawn with
//!   the algorithm of Gray et al. ("Quickly generating billion-record synthetic databases",
//!   SIGMOD 1994) as in YCSB's `ZipfianGenerator`; rank r is then mapped to key
//!   `fnv1a64(r) mod keys`, so the popular keys are scattered over the keyspace. Unlike YCSB's
//!   `ScrambledZipfianGenerator`, the law is over the real keyspace size rather than over
//!   10¹⁰ items folded onto it, so the skew is the stated θ.
//! * latest: the keyspace is a ring in which SETs insert at the next position; GETs are
//!   zipfian over recency (rank 0 is the key inserted last), as YCSB's `SkewedLatestGenerator`.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::cli::KeyDistKind;
use crate::limits;

/// The skew YCSB uses for its zipfian distributions.
pub const ZIPFIAN_THETA: f64 = 0.99;

/// Whether a request reads a key or writes one (which is an insert for `latest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A GET.
    Read,
    /// A SET.
    Write,
}

/// Draws key indexes from one distribution over `0..keys`.
#[derive(Debug, Clone)]
pub struct KeyGenerator {
    keys: u64,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Uniform,
    Sequential { next: u64 },
    Gaussian(Normal<f64>),
    Zipfian(Zipfian),
    Latest { ranks: Zipfian, newest: u64 },
}

impl KeyGenerator {
    /// A generator over `0..keys` (`keys` ≥ 1). `start` is where sequential and latest begin,
    /// so threads can start at different places in the keyspace.
    pub fn new(kind: KeyDistKind, keys: u64, start: u64) -> Self {
        assert!(keys >= 1, "empty keyspace");
        let start = start % keys;
        let state = match kind {
            KeyDistKind::Uniform => State::Uniform,
            KeyDistKind::Sequential => State::Sequential { next: start },
            KeyDistKind::Gaussian => {
                let mean = keys as f64 / 2.0;
                let sd = (keys as f64 / 8.0).max(f64::MIN_POSITIVE);
                State::Gaussian(Normal::new(mean, sd).expect("finite positive deviation"))
            }
            KeyDistKind::Zipfian => State::Zipfian(Zipfian::new(keys, ZIPFIAN_THETA)),
            KeyDistKind::Latest => State::Latest {
                ranks: Zipfian::new(keys, ZIPFIAN_THETA),
                newest: start,
            },
        };
        Self { keys, state }
    }

    /// Tells the generator that `key_index` (≥ `keys`, beyond the initial keyspace) was just
    /// inserted. `latest` then reads relative to it: zipfian over the last `keys` inserted
    /// indexes, newest first. Other distributions keep drawing from `0..keys`.
    pub fn inserted(&mut self, key_index: u64) {
        if let State::Latest { newest, .. } = &mut self.state {
            *newest = key_index;
        }
    }

    /// The next key index: in `0..keys`, or for `latest` after [`KeyGenerator::inserted`],
    /// at most the newest inserted index.
    pub fn next_key<R: Rng + ?Sized>(&mut self, rng: &mut R, access: Access) -> u64 {
        let keys = self.keys;
        let key = match &mut self.state {
            State::Uniform => rng.gen_range(0..keys),
            State::Sequential { next } => {
                let key = *next;
                *next = (key + 1) % keys;
                key
            }
            State::Gaussian(normal) => {
                let x = normal.sample(rng).round();
                x.clamp(0.0, (keys - 1) as f64) as u64
            }
            State::Zipfian(zipf) => fnv1a_64(zipf.sample(rng)) % keys,
            State::Latest { ranks, newest } => match access {
                Access::Write => {
                    *newest = (*newest + 1) % keys;
                    *newest
                }
                Access::Read => {
                    let rank = ranks.sample(rng) % keys;
                    if *newest >= keys {
                        // Inserts extended the keyspace: the last `keys` indexes are live.
                        *newest - rank
                    } else {
                        (*newest + keys - rank) % keys
                    }
                }
            },
        };
        debug_assert!(key < keys || matches!(self.state, State::Latest { .. }));
        key
    }
}

/// Zipfian ranks over `0..items` with skew θ: P(rank = i) ∝ 1 / (i + 1)^θ, drawn in O(1)
/// with Gray et al.'s method.
#[derive(Debug, Clone)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// The law over `items` ≥ 1 ranks with skew `theta` in (0, 1).
    pub fn new(items: u64, theta: f64) -> Self {
        assert!(items >= 1, "zipfian over no items");
        assert!(theta > 0.0 && theta < 1.0, "theta must be in (0, 1)");
        let zetan = zeta(items, theta);
        let zeta2 = zeta(2, theta);
        let eta = if items > 2 {
            (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan)
        } else {
            // Never used: with 1 or 2 items the first two branches of `sample` always hit.
            0.0
        };
        Self {
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
        }
    }

    /// The exact probability of `rank` under the law (what `sample` approximates).
    #[cfg(test)]
    pub fn probability(&self, rank: u64) -> f64 {
        1.0 / ((rank + 1) as f64).powf(self.theta) / self.zetan
    }

    /// Draws one rank in `0..items`; rank 0 is the most popular.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5_f64.powf(self.theta) {
            return 1.min(self.items - 1);
        }
        let rank = self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        (rank as u64).min(self.items - 1)
    }
}

/// The generalised harmonic number Σ_{i=1..n} 1/i^θ. Exact up to
/// [`limits::ZETA_EXACT_ITEMS_MAX`] terms; the rest of the sum is the Euler–Maclaurin
/// estimate, whose error there is far below f64 rounding of the total.
pub fn zeta(n: u64, theta: f64) -> f64 {
    let exact_terms = n.min(limits::ZETA_EXACT_ITEMS_MAX);
    let mut sum: f64 = (1..=exact_terms).map(|i| (i as f64).powf(-theta)).sum();
    if n > exact_terms {
        let f = |x: f64| x.powf(-theta);
        let df = |x: f64| -theta * x.powf(-theta - 1.0);
        let (a, b) = (exact_terms as f64, n as f64);
        // Σ_{i=a+1..b} f(i) = ∫_a^b f + (f(b) - f(a))/2 + (f'(b) - f'(a))/12 - ...
        let integral = (b.powf(1.0 - theta) - a.powf(1.0 - theta)) / (1.0 - theta);
        sum += integral + (f(b) - f(a)) / 2.0 + (df(b) - df(a)) / 12.0;
    }
    sum
}

/// FNV-1a, 64-bit, over the eight little-endian bytes of `value`.
pub fn fnv1a_64(value: u64) -> u64 {
    fnv1a_64_bytes(&value.to_le_bytes())
}

/// FNV-1a, 64-bit, over `bytes`.
pub fn fnv1a_64_bytes(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn draw(kind: KeyDistKind, keys: u64, seed: u64, n: usize) -> Vec<u64> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut gen = KeyGenerator::new(kind, keys, 0);
        (0..n)
            .map(|_| gen.next_key(&mut rng, Access::Read))
            .collect()
    }

    #[test]
    fn fnv1a_matches_published_vectors() {
        assert_eq!(fnv1a_64_bytes(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64_bytes(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64_bytes(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn zeta_tail_estimate_matches_the_exact_sum() {
        let n = limits::ZETA_EXACT_ITEMS_MAX * 3;
        let exact: f64 = (1..=n).map(|i| (i as f64).powf(-ZIPFIAN_THETA)).sum();
        let estimate = zeta(n, ZIPFIAN_THETA);
        assert!(
            (exact - estimate).abs() / exact < 1e-9,
            "{exact} vs {estimate}"
        );
    }

    #[test]
    fn every_distribution_stays_in_the_keyspace_and_is_deterministic() {
        for kind in [
            KeyDistKind::Uniform,
            KeyDistKind::Sequential,
            KeyDistKind::Gaussian,
            KeyDistKind::Zipfian,
            KeyDistKind::Latest,
        ] {
            for keys in [1, 2, 3, 1000] {
                let a = draw(kind, keys, 42, 5000);
                assert!(a.iter().all(|&k| k < keys), "{kind:?} over {keys}");
                assert_eq!(a, draw(kind, keys, 42, 5000), "{kind:?} not deterministic");
            }
        }
        assert_ne!(
            draw(KeyDistKind::Uniform, 1000, 1, 100),
            draw(KeyDistKind::Uniform, 1000, 2, 100)
        );
    }

    #[test]
    fn sequential_wraps_from_its_start() {
        let mut rng = SmallRng::seed_from_u64(0);
        let mut gen = KeyGenerator::new(KeyDistKind::Sequential, 4, 2);
        let keys: Vec<u64> = (0..6)
            .map(|_| gen.next_key(&mut rng, Access::Read))
            .collect();
        assert_eq!(keys, vec![2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn gaussian_centres_on_the_middle_with_an_eighth_spread() {
        let keys = 80_000;
        let sample = draw(KeyDistKind::Gaussian, keys, 7, 200_000);
        let n = sample.len() as f64;
        let mean = sample.iter().map(|&k| k as f64).sum::<f64>() / n;
        let var = sample
            .iter()
            .map(|&k| (k as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!((mean - 40_000.0).abs() < 100.0, "mean {mean}");
        assert!((var.sqrt() - 10_000.0).abs() < 100.0, "sd {}", var.sqrt());
    }

    /// The probability Gray's method gives `rank`: exact for ranks 0 and 1; for rank r ≥ 2
    /// the share of u in [0, 1) for which ⌊n (η u − η + 1)^α⌋ = r, from inverting that map.
    fn gray_probability(zipf: &Zipfian, rank: u64) -> f64 {
        let n = zipf.items as f64;
        let first_two = (1.0 + 0.5_f64.powf(zipf.theta)) / zipf.zetan;
        match rank {
            0 => 1.0 / zipf.zetan,
            1 => first_two - 1.0 / zipf.zetan,
            r => {
                let u_at = |x: f64| ((x / n).powf(1.0 - zipf.theta) - 1.0 + zipf.eta) / zipf.eta;
                let lo = u_at(r as f64).max(first_two);
                let hi = u_at(r as f64 + 1.0).max(first_two);
                hi - lo
            }
        }
    }

    fn rank_counts(zipf: &Zipfian, seed: u64, samples: usize) -> Vec<u64> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut counts = vec![0u64; zipf.items as usize];
        for _ in 0..samples {
            counts[zipf.sample(&mut rng) as usize] += 1;
        }
        counts
    }

    #[test]
    fn zipfian_rank_frequencies_match_the_law() {
        let items = 1000;
        let zipf = Zipfian::new(items, ZIPFIAN_THETA);
        let samples = 2_000_000;
        let counts = rank_counts(&zipf, 3, samples);
        let share = |rank: u64| counts[rank as usize] as f64 / samples as f64;
        // Ranks 0 and 1 follow the exact law 1 / ((r + 1)^θ ζ(n)).
        for rank in 0..2 {
            let (observed, expected) = (share(rank), zipf.probability(rank));
            assert!(
                (observed - expected).abs() / expected < 0.01,
                "rank {rank}: observed {observed:.5}, law {expected:.5}"
            );
        }
        // Every rank of the head follows Gray's method (as YCSB's generator does) ...
        for rank in 2..50 {
            let (observed, expected) = (share(rank), gray_probability(&zipf, rank));
            let sd = (expected * (1.0 - expected) / samples as f64).sqrt();
            assert!(
                (observed - expected).abs() < 5.0 * sd,
                "rank {rank}: observed {observed:.5}, Gray {expected:.5}"
            );
        }
        // ... which is known to overweight ranks 2..12 of the exact law (+17% at rank 2)
        // and to stay within 4% of it for every later rank.
        for rank in 2..13 {
            let ratio = gray_probability(&zipf, rank) / zipf.probability(rank);
            assert!(
                (1.0..1.18).contains(&ratio),
                "rank {rank}: Gray/law {ratio:.3}"
            );
        }
        for rank in 13..items {
            let ratio = gray_probability(&zipf, rank) / zipf.probability(rank);
            assert!(
                (0.96..1.01).contains(&ratio),
                "rank {rank}: Gray/law {ratio:.3}"
            );
        }
        // The law sums to 1, and the top 10% of ranks carry about what it says they carry
        // (0.685 by the law, 0.696 by Gray's method).
        let total: f64 = (0..items).map(|r| zipf.probability(r)).sum();
        assert!((total - 1.0).abs() < 1e-9);
        let top_law: f64 = (0..items / 10).map(|r| zipf.probability(r)).sum();
        let top_observed: f64 = (0..items / 10).map(share).sum();
        assert!(
            (top_observed - top_law).abs() < 0.02,
            "{top_observed} vs {top_law}"
        );
    }

    #[test]
    fn scrambled_zipfian_puts_the_top_ranks_on_their_hashed_keys() {
        let keys = 10_000;
        let zipf = Zipfian::new(keys, ZIPFIAN_THETA);
        let samples = 1_000_000;
        let drawn = draw(KeyDistKind::Zipfian, keys, 11, samples);
        let mut counts = std::collections::HashMap::new();
        for k in drawn {
            *counts.entry(k).or_insert(0u64) += 1;
        }
        let mut by_count: Vec<(u64, u64)> = counts.into_iter().collect();
        by_count.sort_by_key(|&(_, count)| std::cmp::Reverse(count));
        for rank in 0..5u64 {
            let key = fnv1a_64(rank) % keys;
            assert_eq!(
                by_count[rank as usize].0, key,
                "rank {rank} is not on its hashed key"
            );
            let observed = by_count[rank as usize].1 as f64 / samples as f64;
            let expected = gray_probability(&zipf, rank);
            // Other ranks can hash onto the same key and add a little mass.
            assert!(
                observed >= expected * 0.97 && observed <= expected * 1.05,
                "rank {rank}: observed {observed:.5}, expected {expected:.5}"
            );
        }
    }

    #[test]
    fn latest_follows_inserts_beyond_the_keyspace() {
        let keys = 100;
        let mut rng = SmallRng::seed_from_u64(8);
        let mut gen = KeyGenerator::new(KeyDistKind::Latest, keys, keys - 1);
        gen.inserted(150);
        let reads: Vec<u64> = (0..10_000)
            .map(|_| gen.next_key(&mut rng, Access::Read))
            .collect();
        assert!(
            reads.iter().all(|&k| (51..=150).contains(&k)),
            "outside the live window"
        );
        let newest = reads.iter().filter(|&&k| k == 150).count();
        let oldest = reads.iter().filter(|&&k| k == 51).count();
        assert!(
            newest > 10 * oldest.max(1),
            "newest {newest}, oldest {oldest}"
        );
    }

    #[test]
    fn latest_reads_favour_the_newest_writes() {
        let keys = 1000;
        let mut rng = SmallRng::seed_from_u64(5);
        let mut gen = KeyGenerator::new(KeyDistKind::Latest, keys, 0);
        for _ in 0..10 {
            gen.next_key(&mut rng, Access::Write);
        }
        let newest = 10;
        assert_eq!(gen.next_key(&mut rng, Access::Write), newest + 1);
        let reads: Vec<u64> = (0..100_000)
            .map(|_| gen.next_key(&mut rng, Access::Read))
            .collect();
        let newest_share = reads.iter().filter(|&&k| k == newest + 1).count() as f64 / 1e5;
        let expected = Zipfian::new(keys, ZIPFIAN_THETA).probability(0);
        assert!(
            (newest_share - expected).abs() / expected < 0.05,
            "{newest_share} vs {expected}"
        );
        // The one before the newest is next most popular; keys just "ahead" (oldest) are cold.
        let second = reads.iter().filter(|&&k| k == newest).count();
        let oldest = reads.iter().filter(|&&k| k == newest + 2).count();
        assert!(
            second > 10 * oldest.max(1),
            "second {second}, oldest {oldest}"
        );
    }
}
