//! The RESP encoding of the TSBS cpu-only commands ([`crate::tsbs`] draws what they carry):
//! `TS.CREATE` with the series' labels, `TS.MADD` of one host's 10 metrics at one time, and
//! the `TS.RANGE` / `TS.MRANGE` queries.

use std::fmt::Write as _;

use super::{Command, Request};
use crate::resp_client::{self, encode_array_header, encode_bulk};
use crate::tsbs::{self, CpuQuery};

/// Appends `TS.CREATE key LABELS ...` of series `series`.
pub(super) fn encode_create(series: u64, out: &mut Vec<u8>) {
    let labels = tsbs::series_labels(series);
    encode_array_header(out, 3 + 2 * labels.len());
    encode_bulk(out, b"TS.CREATE");
    encode_bulk(out, tsbs::series_key(series).as_bytes());
    encode_bulk(out, b"LABELS");
    for (name, value) in &labels {
        encode_bulk(out, name.as_bytes());
        encode_bulk(out, value.as_bytes());
    }
}

/// Appends `TS.MADD` of `batch`'s samples (one key, timestamp and value per metric);
/// `text` is a scratch buffer for the values' digits.
pub(super) fn encode_madd(batch: &tsbs::IngestBatch, text: &mut String, out: &mut Vec<u8>) {
    let mut digits = itoa::Buffer::new();
    let timestamp = digits.format(batch.timestamp_ms).as_bytes().to_vec();
    encode_array_header(out, 1 + 3 * batch.values.len());
    encode_bulk(out, b"TS.MADD");
    for (metric, value) in batch.values.iter().enumerate() {
        let series = batch.host * tsbs::METRICS_PER_HOST + metric as u64;
        encode_bulk(out, tsbs::series_key(series).as_bytes());
        encode_bulk(out, &timestamp);
        text.clear();
        let _ = write!(text, "{value}");
        encode_bulk(out, text.as_bytes());
    }
}

/// Appends `query` as `TS.RANGE` or `TS.MRANGE` and returns its request.
pub(super) fn encode_query(query: CpuQuery, out: &mut Vec<u8>) -> Request {
    let mut request = Request {
        command: Command::TsRange,
        key_index: 0,
        value_len: 0,
        scan_len: 0,
    };
    let window = |from: u64, to: u64| [from.to_string(), to.to_string()];
    match query {
        CpuQuery::Range {
            series,
            from_ms,
            to_ms,
        } => {
            let [from, to] = window(from_ms, to_ms);
            let key = tsbs::series_key(series);
            resp_client::encode_command(
                out,
                &[b"TS.RANGE", key.as_bytes(), from.as_bytes(), to.as_bytes()],
            );
            request.key_index = series;
        }
        CpuQuery::Mrange {
            host,
            from_ms,
            to_ms,
        } => {
            let [from, to] = window(from_ms, to_ms);
            let host_filter = format!("hostname={}", tsbs::host_name(host));
            resp_client::encode_command(
                out,
                &[
                    b"TS.MRANGE",
                    from.as_bytes(),
                    to.as_bytes(),
                    b"FILTER",
                    b"measurement=cpu",
                    host_filter.as_bytes(),
                ],
            );
            request.command = Command::TsMrange;
            request.key_index = host;
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use super::super::tests::{args_of, config};
    use super::super::{Mix, Workload};
    use crate::cli::{Ratio, ValueSize};
    use crate::tsbs::{self, TsbsConfig};

    #[test]
    fn tsbs_ingest_sends_ten_triples_per_batch() {
        let fleet = TsbsConfig {
            hosts: 2,
            span_hours: 1,
        };
        let mut cfg = config(
            Ratio { set: 1, get: 0 },
            ValueSize {
                min_bytes: 1,
                max_bytes: 1,
            },
        );
        cfg.mix = Mix::TsIngest(fleet);
        let mut workload = Workload::new(&cfg, 0, 0, 1);
        let mut out = Vec::new();
        for _ in 0..4 {
            workload.next(&mut out);
        }
        let commands = args_of(&out);
        for (i, args) in commands.iter().enumerate() {
            assert_eq!(args[0], "TS.MADD");
            assert_eq!(args.len(), 31);
            let host = i % 2;
            let ts = tsbs::EPOCH_MS + (i as u64 / 2) * tsbs::INTERVAL_MS;
            for (m, triple) in args[1..].chunks(3).enumerate() {
                assert_eq!(triple[0], format!("cpu:host_{host}:{}", tsbs::METRICS[m]));
                assert_eq!(triple[1], ts.to_string());
                let v: f64 = triple[2].parse().unwrap();
                assert!((0.0..=100.0).contains(&v));
            }
        }
    }
}
