//! Throughput of the RESP request parser on pipelines of 16 commands, as `redis-benchmark
//! -P 16` sends them: `SET key:NNNN <64-byte value>` and `GET key:NNNN`.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use tskv::config::ProtocolLimits;
use tskv::resp::{Parsed, RequestParser};

/// Commands in each pipeline.
const PIPELINE_LEN: usize = 16;
/// Bytes of each SET value.
const VALUE_BYTES: usize = 64;

/// `args` encoded as one RESP multibulk request.
fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

fn pipeline(set: bool) -> Vec<u8> {
    let value = [b'v'; VALUE_BYTES];
    let mut out = Vec::new();
    for index in 0..PIPELINE_LEN {
        let key = format!("key:{index:04}");
        if set {
            encode(&[b"SET", key.as_bytes(), &value], &mut out);
        } else {
            encode(&[b"GET", key.as_bytes()], &mut out);
        }
    }
    out
}

/// Parses every request of `buf`, returning the argument count as a checksum.
fn parse_all(
    parser: &mut RequestParser,
    buf: &[u8],
    args: &mut Vec<std::ops::Range<usize>>,
) -> usize {
    let mut at = 0;
    let mut arg_count = 0;
    while let Ok(Parsed::Request { consumed }) = parser.parse(&buf[at..], args) {
        at += consumed;
        arg_count += args.len();
    }
    assert_eq!(at, buf.len());
    arg_count
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("resp_parse");
    for (name, set) in [("set_pipeline_16", true), ("get_pipeline_16", false)] {
        let buf = pipeline(set);
        group.throughput(Throughput::Bytes(buf.len() as u64));
        let mut parser = RequestParser::new(ProtocolLimits::default());
        let mut args = Vec::new();
        group.bench_function(name, |b| {
            b.iter(|| parse_all(&mut parser, black_box(&buf), &mut args));
        });
    }
    group.finish();
}

// `criterion_main!` would generate an undocumented public function; this is its body.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
