//! The values of flags that are more than a number: presets, key distributions, CPU lists,
//! the SET:GET ratio and value sizes, each with its parser.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum;
use serde::Serialize;

use crate::limits;

/// Preset workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// YCSB A, update heavy: 50% read, 50% update, zipfian.
    YcsbA,
    /// YCSB B, read mostly: 95% read, 5% update, zipfian.
    YcsbB,
    /// YCSB C, read only: 100% read, zipfian.
    YcsbC,
    /// YCSB D, read latest: 95% read, 5% insert, key-dist latest.
    YcsbD,
    /// YCSB E, short ranges: 95% scan (MGET of 1..=100 consecutive keys), 5% insert, zipfian.
    YcsbE,
    /// YCSB F, read-modify-write: 50% read, 50% RMW (GET then SET of one key on one
    /// connection, one op with its own latency row), zipfian.
    YcsbF,
    /// TSBS cpu-only ingest: per host and 10 s step, TS.MADD of its 10 metrics.
    TsbsCpuIngest,
    /// TSBS cpu-only queries: TS.RANGE of one series and TS.MRANGE ... FILTER
    /// hostname=host_N, over random one-hour windows.
    TsbsCpuQuery,
}

impl Preset {
    /// The flag value, e.g. `ycsb-a`.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string())
    }

    /// Whether this is a YCSB preset.
    pub fn is_ycsb(self) -> bool {
        !self.is_tsbs()
    }

    /// Whether this is a TSBS preset.
    pub fn is_tsbs(self) -> bool {
        matches!(self, Preset::TsbsCpuIngest | Preset::TsbsCpuQuery)
    }
}

/// Key distributions, see [`crate::keydist`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDistKind {
    /// Every key equally likely.
    Uniform,
    /// Keys in order, wrapping around.
    Sequential,
    /// Normal around the middle of the keyspace, standard deviation keyspace/8.
    Gaussian,
    /// YCSB scrambled zipfian, θ = 0.99.
    Zipfian,
    /// SETs write new keys in order; GETs are zipfian over recency.
    Latest,
}

/// A list of CPU ids such as `0,2-3`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CpuList(pub Vec<usize>);

impl FromStr for CpuList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut cpus = Vec::new();
        for part in s.split(',').map(str::trim) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (parse_usize(a)?, parse_usize(b)?),
                None => {
                    let cpu = parse_usize(part)?;
                    (cpu, cpu)
                }
            };
            if first > last {
                return Err(format!("CPU range {part} runs backwards"));
            }
            cpus.extend(first..=last);
        }
        Ok(CpuList(cpus))
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&ids.join(","))
    }
}

/// The SET:GET mix as two weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ratio {
    /// Weight of SET.
    pub set: u32,
    /// Weight of GET.
    pub get: u32,
}

impl FromStr for Ratio {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (set, get) = s
            .split_once(':')
            .ok_or_else(|| format!("ratio {s:?} is not SET:GET"))?;
        let ratio = Ratio {
            set: set.trim().parse().map_err(|e| format!("SET weight: {e}"))?,
            get: get.trim().parse().map_err(|e| format!("GET weight: {e}"))?,
        };
        if ratio.set == 0 && ratio.get == 0 {
            return Err("ratio 0:0 sends nothing".into());
        }
        Ok(ratio)
    }
}

/// SET value size: a fixed size or a uniform range, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ValueSize {
    /// Smallest value size.
    pub min_bytes: usize,
    /// Largest value size.
    pub max_bytes: usize,
}

impl FromStr for ValueSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (min_bytes, max_bytes) = match s.split_once('-') {
            Some((a, b)) => (parse_usize(a)?, parse_usize(b)?),
            None => {
                let n = parse_usize(s)?;
                (n, n)
            }
        };
        if min_bytes > max_bytes {
            return Err(format!("value size range {s} runs backwards"));
        }
        if max_bytes > limits::VALUE_SIZE_MAX_BYTES {
            return Err(format!(
                "value size {max_bytes} exceeds {} bytes",
                limits::VALUE_SIZE_MAX_BYTES
            ));
        }
        Ok(ValueSize {
            min_bytes,
            max_bytes,
        })
    }
}

fn parse_usize(s: &str) -> Result<usize, String> {
    s.trim()
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!("1".parse::<CpuList>().unwrap().0, vec![1]);
        assert_eq!("0,1".parse::<CpuList>().unwrap().0, vec![0, 1]);
        assert_eq!("2-3".parse::<CpuList>().unwrap().0, vec![2, 3]);
        assert_eq!("0,2-4".parse::<CpuList>().unwrap().0, vec![0, 2, 3, 4]);
        assert!("3-2".parse::<CpuList>().is_err());
        assert!("a".parse::<CpuList>().is_err());
    }

    #[test]
    fn ratios_and_value_sizes_parse() {
        assert_eq!("1:10".parse::<Ratio>().unwrap(), Ratio { set: 1, get: 10 });
        assert!("0:0".parse::<Ratio>().is_err());
        assert!("1".parse::<Ratio>().is_err());
        let v: ValueSize = "16-64".parse().unwrap();
        assert_eq!((v.min_bytes, v.max_bytes), (16, 64));
        let v: ValueSize = "3".parse().unwrap();
        assert_eq!((v.min_bytes, v.max_bytes), (3, 3));
        assert!("64-16".parse::<ValueSize>().is_err());
    }
}
