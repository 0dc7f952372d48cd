//! A series' metadata: what `TS.CREATE` and `TS.ALTER` set, stored under the series' meta
//! key (see [`super::keys`]) as one checked block.
//!
//! ```text
//!  0  version u8 (= 3; 1 and 2 are still read)
//!  1  encoding u8            0 = compressed (Gorilla), 1 = uncompressed
//!  2  duplicate_policy u8    0 = none set, 1 block, 2 first, 3 last, 4 min, 5 max, 6 sum
//!  3  reserved u8 (= 0)
//!  4  series_id u64          names the series' chunk and sample keys
//! 12  retention_ms u64       0 = keep forever
//! 20  chunk_size_bytes u32
//! 24  label_count u32
//! 28  labels: label_count × (name_len u32 | name | value_len u32 | value)
//!  …  ignore_max_time_diff_ms u64          (version 2 on; version 1 means 0)
//!  …  ignore_max_value_diff f64            (version 2 on; version 1 means 0)
//!  …  source_key_len u32 | source_key      (version 2 on; u32::MAX: not a destination)
//!  …  rule_count u32                       (version 2 on; version 1 means none)
//!  …  rules: rule_count × (dest_len u32 | dest_key | aggregator u8 | bucket_ms u64 |
//!                          align_ms u64 | samples_from_ms u64 (version 3 on))
//!  …  crc32 u32 of everything before       (all integers little-endian)
//! ```

use crate::base::codec::{open_block, seal_block, Cursor, FormatError};

use super::aggregate::Aggregator;
use super::args::IgnoreWindow;
use super::chunk::ChunkEncoding;

const META_VERSION: u8 = 3;

/// What to do when a sample arrives for a timestamp that already has one
/// (RedisTimeSeries's `DUPLICATE_POLICY` / `ON_DUPLICATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DuplicatePolicy {
    /// Refuse the new sample (the default).
    Block,
    /// Keep the existing value.
    First,
    /// Take the new value.
    Last,
    /// Keep the smaller.
    Min,
    /// Keep the larger.
    Max,
    /// Add the new value to the existing one.
    Sum,
}

impl DuplicatePolicy {
    const ALL: [Self; 6] = [
        Self::Block,
        Self::First,
        Self::Last,
        Self::Min,
        Self::Max,
        Self::Sum,
    ];

    /// Parses a policy name, case-insensitively.
    pub fn parse(name: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| name.eq_ignore_ascii_case(p.name().as_bytes()))
    }

    /// The lower-case name `TS.INFO` prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::First => "first",
            Self::Last => "last",
            Self::Min => "min",
            Self::Max => "max",
            Self::Sum => "sum",
        }
    }

    /// The value to keep when `new` arrives where `old` is, or `None` to refuse it.
    pub fn resolve(self, old: f64, new: f64) -> Option<f64> {
        match self {
            Self::Block => None,
            Self::First => Some(old),
            Self::Last => Some(new),
            Self::Min => Some(old.min(new)),
            Self::Max => Some(old.max(new)),
            Self::Sum => Some(old + new),
        }
    }

    fn tag(policy: Option<Self>) -> u8 {
        policy.map_or(0, |p| p as u8 + 1)
    }

    fn from_tag(tag: u8) -> Result<Option<Self>, FormatError> {
        match tag {
            0 => Ok(None),
            t => Self::ALL
                .get(usize::from(t) - 1)
                .copied()
                .map(Some)
                .ok_or(FormatError {
                    reason: "unknown duplicate policy",
                    offset: 2,
                }),
        }
    }
}

/// Default `CHUNK_SIZE` of RedisTimeSeries, in bytes.
pub const CHUNK_SIZE_DEFAULT_BYTES: u32 = 4096;

/// A series' settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesMeta {
    /// Unique on the shard for as long as the data directory lives (the sequence number
    /// of the write that created the series), so a deleted series' leftovers never mix
    /// with a new series of the same name.
    pub series_id: u64,
    /// `RETENTION`: samples older than the newest minus this are refused and hidden;
    /// 0 keeps everything.
    pub retention_ms: u64,
    /// How sealed chunks are encoded (`ENCODING`).
    pub encoding: ChunkEncoding,
    /// `CHUNK_SIZE`: the encoded size a sealed chunk is cut at.
    pub chunk_size_bytes: u32,
    /// `DUPLICATE_POLICY`, `None` when not set (then `BLOCK` applies).
    pub duplicate_policy: Option<DuplicatePolicy>,
    /// `LABELS`, in the order given.
    pub labels: Vec<(Vec<u8>, Vec<u8>)>,
    /// `IGNORE maxTimeDiff maxValDiff` (0 and 0 when not set).
    pub ignore: IgnoreWindow,
    /// The series whose rule writes into this one (`TS.INFO`'s `sourceKey`).
    pub source_key: Option<Vec<u8>>,
    /// The compaction rules from this series (`TS.CREATERULE` with this as the source).
    pub rules: Vec<CompactionRule>,
}

/// One compaction rule: every closed bucket of the source goes into `dest_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionRule {
    /// The destination series.
    pub dest_key: Vec<u8>,
    /// How a bucket's samples fold into one.
    pub aggregator: Aggregator,
    /// Bucket duration in milliseconds (> 0).
    pub bucket_ms: u64,
    /// Buckets start at `align_ms` plus multiples of `bucket_ms`.
    pub align_ms: u64,
    /// The rule folds only samples at or after this timestamp: the source's newest
    /// timestamp plus one when the rule was created (0 for a source without samples, and
    /// for metadata written before version 3), so the bucket open at creation starts
    /// empty, as in RedisTimeSeries.
    pub samples_from_ms: u64,
}

impl SeriesMeta {
    /// Encodes the metadata as a checked block.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![
            META_VERSION,
            match self.encoding {
                ChunkEncoding::Gorilla => 0,
                ChunkEncoding::Uncompressed => 1,
            },
            DuplicatePolicy::tag(self.duplicate_policy),
            0,
        ];
        out.extend_from_slice(&self.series_id.to_le_bytes());
        out.extend_from_slice(&self.retention_ms.to_le_bytes());
        out.extend_from_slice(&self.chunk_size_bytes.to_le_bytes());
        out.extend_from_slice(&(self.labels.len() as u32).to_le_bytes());
        for (name, value) in &self.labels {
            for part in [name, value] {
                out.extend_from_slice(&(part.len() as u32).to_le_bytes());
                out.extend_from_slice(part);
            }
        }
        out.extend_from_slice(&self.ignore.max_time_diff_ms.to_le_bytes());
        out.extend_from_slice(&self.ignore.max_value_diff.to_le_bytes());
        match &self.source_key {
            Some(key) => {
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(key);
            }
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
        out.extend_from_slice(&(self.rules.len() as u32).to_le_bytes());
        for rule in &self.rules {
            out.extend_from_slice(&(rule.dest_key.len() as u32).to_le_bytes());
            out.extend_from_slice(&rule.dest_key);
            out.push(rule.aggregator.tag());
            out.extend_from_slice(&rule.bucket_ms.to_le_bytes());
            out.extend_from_slice(&rule.align_ms.to_le_bytes());
            out.extend_from_slice(&rule.samples_from_ms.to_le_bytes());
        }
        seal_block(&mut out, 0);
        out
    }

    /// Decodes metadata written by [`SeriesMeta::encode`].
    ///
    /// # Errors
    /// A checksum mismatch, a short buffer, an unknown version, encoding or policy.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let body = open_block(bytes)?;
        let mut c = Cursor::new(body);
        let head = c.bytes(4)?;
        let version = head[0];
        if !(1..=META_VERSION).contains(&version) {
            return Err(FormatError {
                reason: "unknown series metadata version",
                offset: 0,
            });
        }
        let encoding = match head[1] {
            0 => ChunkEncoding::Gorilla,
            1 => ChunkEncoding::Uncompressed,
            _ => {
                return Err(FormatError {
                    reason: "unknown series encoding",
                    offset: 1,
                })
            }
        };
        let duplicate_policy = DuplicatePolicy::from_tag(head[2])?;
        let series_id = c.u64()?;
        let retention_ms = c.u64()?;
        let chunk_size_bytes = c.u32()?;
        let label_count = c.u32()?;
        let mut labels = Vec::new();
        for _ in 0..label_count {
            let name_len = c.u32()? as usize;
            let name = c.bytes(name_len)?.to_vec();
            let value_len = c.u32()? as usize;
            labels.push((name, c.bytes(value_len)?.to_vec()));
        }
        let mut ignore = IgnoreWindow::default();
        let mut source_key = None;
        let mut rules = Vec::new();
        if version >= 2 {
            ignore.max_time_diff_ms = c.u64()?;
            ignore.max_value_diff = f64::from_bits(c.u64()?);
            let source_len = c.u32()?;
            if source_len != u32::MAX {
                source_key = Some(c.bytes(source_len as usize)?.to_vec());
            }
            for _ in 0..c.u32()? {
                let dest_len = c.u32()? as usize;
                let dest_key = c.bytes(dest_len)?.to_vec();
                let at = c.position();
                let aggregator = Aggregator::from_tag(c.bytes(1)?[0]).ok_or(FormatError {
                    reason: "unknown compaction aggregator",
                    offset: at,
                })?;
                let (bucket_ms, align_ms) = (c.u64()?, c.u64()?);
                let samples_from_ms = if version >= 3 { c.u64()? } else { 0 };
                rules.push(CompactionRule {
                    dest_key,
                    aggregator,
                    bucket_ms,
                    align_ms,
                    samples_from_ms,
                });
            }
        }
        if !c.is_empty() {
            return Err(FormatError {
                reason: "bytes after the labels",
                offset: c.position(),
            });
        }
        Ok(Self {
            series_id,
            retention_ms,
            encoding,
            chunk_size_bytes,
            duplicate_policy,
            labels,
            ignore,
            source_key,
            rules,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_damage_is_an_error() {
        let meta = SeriesMeta {
            series_id: 99,
            retention_ms: 60_000,
            encoding: ChunkEncoding::Uncompressed,
            chunk_size_bytes: 128,
            duplicate_policy: Some(DuplicatePolicy::Sum),
            labels: vec![(b"host".to_vec(), b"a".to_vec())],
            ignore: IgnoreWindow {
                max_time_diff_ms: 5,
                max_value_diff: 0.25,
            },
            source_key: Some(b"raw".to_vec()),
            rules: vec![CompactionRule {
                dest_key: b"avg".to_vec(),
                aggregator: Aggregator::StdS,
                bucket_ms: 60_000,
                align_ms: 7,
                samples_from_ms: 1234,
            }],
        };
        let bytes = meta.encode();
        assert_eq!(SeriesMeta::decode(&bytes).unwrap(), meta);
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(SeriesMeta::decode(&damaged).is_err());
        }
    }

    #[test]
    fn version_1_metadata_still_reads_without_ignore() {
        let meta = SeriesMeta {
            series_id: 7,
            retention_ms: 0,
            encoding: ChunkEncoding::Gorilla,
            chunk_size_bytes: 4096,
            duplicate_policy: None,
            labels: vec![],
            ignore: IgnoreWindow::default(),
            source_key: None,
            rules: vec![],
        };
        let bytes = meta.encode();
        let mut v1 = open_block(&bytes).unwrap().to_vec();
        v1[0] = 1;
        // Without the ignore window (16 bytes), the source key (4) and the rule count (4).
        v1.truncate(v1.len() - 24);
        seal_block(&mut v1, 0);
        assert_eq!(SeriesMeta::decode(&v1).unwrap(), meta);
    }

    #[test]
    fn version_2_rules_read_with_every_sample_folded() {
        let rule = CompactionRule {
            dest_key: b"d".to_vec(),
            aggregator: Aggregator::Sum,
            bucket_ms: 10,
            align_ms: 0,
            samples_from_ms: 0,
        };
        let meta = SeriesMeta {
            series_id: 7,
            retention_ms: 0,
            encoding: ChunkEncoding::Gorilla,
            chunk_size_bytes: 4096,
            duplicate_policy: None,
            labels: vec![],
            ignore: IgnoreWindow::default(),
            source_key: None,
            rules: vec![rule],
        };
        let bytes = meta.encode();
        let mut v2 = open_block(&bytes).unwrap().to_vec();
        v2[0] = 2;
        // Without the rule's samples_from_ms (8 bytes, last).
        v2.truncate(v2.len() - 8);
        seal_block(&mut v2, 0);
        assert_eq!(SeriesMeta::decode(&v2).unwrap(), meta);
    }

    #[test]
    fn policies_resolve_like_redistimeseries() {
        assert_eq!(DuplicatePolicy::parse(b"SuM"), Some(DuplicatePolicy::Sum));
        assert_eq!(DuplicatePolicy::Block.resolve(1.0, 2.0), None);
        assert_eq!(DuplicatePolicy::Sum.resolve(1.0, 2.0), Some(3.0));
        assert_eq!(DuplicatePolicy::Min.resolve(1.0, 2.0), Some(1.0));
        assert_eq!(DuplicatePolicy::First.resolve(1.0, 2.0), Some(1.0));
    }
}
