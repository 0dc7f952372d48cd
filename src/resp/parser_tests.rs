//! Tests of the RESP request parser ([`super`]).

use super::*;
pub(in crate::resp) use crate::resp::testing::feed;

/// Small limits, to reach every limit with short inputs.
pub(in crate::resp) fn small_limits() -> ProtocolLimits {
    ProtocolLimits {
        bulk_bytes_max: 16,
        array_len_max: 4,
        inline_bytes_max: 16,
    }
}

pub(in crate::resp) fn words(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|word| word.as_bytes().to_vec()).collect()
}

/// The error text a whole stream ends in, with default limits unless given.
pub(in crate::resp) fn error_of(limits: ProtocolLimits, input: &[u8]) -> String {
    match feed(limits, &[input]).error {
        Some(error) => error.to_string(),
        None => panic!("no error for {:?}", String::from_utf8_lossy(input)),
    }
}

const SAMPLE_PIPELINE: &[u8] = b"*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$10\r\nva\r\nl\x00ue!!\r\n\
PING\r\n\
*0\r\n\
GET \"a b\" 'c\\'d' \"\\x41\\n\"\n\
\r\n\
*2\r\n$3\r\nGET\r\n$0\r\n\r\n\
*-1\r\n\
  ECHO\thi  \r\n";

fn sample_requests() -> Vec<Vec<Vec<u8>>> {
    vec![
        vec![
            b"SET".to_vec(),
            b"key:1".to_vec(),
            b"va\r\nl\x00ue!!".to_vec(),
        ],
        words(&["PING"]),
        vec![],
        words(&["GET", "a b", "c'd", "A\n"]),
        vec![],
        words(&["GET", ""]),
        vec![],
        words(&["ECHO", "hi"]),
    ]
}

#[test]
fn sample_pipeline_parses_whole() {
    let outcome = feed(ProtocolLimits::default(), &[SAMPLE_PIPELINE]);
    assert_eq!(outcome.requests, sample_requests());
    assert_eq!((outcome.error, outcome.waiting.len()), (None, 0));
}

#[test]
fn sample_pipeline_parses_at_every_split_point() {
    for split in 0..=SAMPLE_PIPELINE.len() {
        let (head, tail) = SAMPLE_PIPELINE.split_at(split);
        let outcome = feed(ProtocolLimits::default(), &[head, tail]);
        assert_eq!(outcome.requests, sample_requests(), "split at {split}");
        assert_eq!(
            (outcome.error, outcome.waiting.len()),
            (None, 0),
            "split at {split}"
        );
    }
}

#[test]
fn sample_pipeline_parses_byte_by_byte() {
    let chunks: Vec<&[u8]> = SAMPLE_PIPELINE.chunks(1).collect();
    let outcome = feed(ProtocolLimits::default(), &chunks);
    assert_eq!(outcome.requests, sample_requests());
    assert_eq!((outcome.error, outcome.waiting.len()), (None, 0));
}

#[test]
fn pipeline_is_parsed_one_request_at_a_time() {
    let buf = b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n";
    let mut parser = RequestParser::new(ProtocolLimits::default());
    let mut args = Vec::new();
    assert_eq!(
        parser.parse(buf, &mut args),
        Ok(Parsed::Request { consumed: 14 })
    );
    assert_eq!(args, vec![8..12]);
    assert_eq!(&buf[args[0].clone()], b"PING");
    let rest = &buf[14..];
    assert_eq!(
        parser.parse(rest, &mut args),
        Ok(Parsed::Request {
            consumed: rest.len()
        })
    );
    assert_eq!(
        parser.args(rest, &args).collect::<Vec<_>>(),
        [b"ECHO".as_slice(), b"x"]
    );
}

#[test]
fn incomplete_is_stable_when_the_same_buffer_comes_again() {
    let full = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
    let mut parser = RequestParser::new(ProtocolLimits::default());
    let mut args = vec![0..1, 2..3];
    for len in 0..full.len() {
        for _ in 0..3 {
            assert_eq!(
                parser.parse(&full[..len], &mut args),
                Ok(Parsed::Incomplete)
            );
        }
    }
    assert_eq!(
        parser.parse(full, &mut args),
        Ok(Parsed::Request {
            consumed: full.len()
        })
    );
    assert_eq!(args, vec![8..11, 17..20]);
}

#[test]
fn state_is_reset_after_a_request() {
    let buf = b"*1\r\n$4\r\nPING\r\n";
    let mut parser = RequestParser::new(ProtocolLimits::default());
    let mut args = Vec::new();
    for _ in 0..2 {
        // The caller forgot to drop the bytes: the same request parses again.
        assert_eq!(
            parser.parse(buf, &mut args),
            Ok(Parsed::Request { consumed: 14 })
        );
        assert_eq!(args, vec![8..12]);
        assert_eq!(parser.buf_bytes_min(), 0);
    }
}

#[test]
fn large_bulk_waits_on_the_hint() {
    let mut stream = b"*2\r\n$3\r\nSET\r\n$100000\r\n".to_vec();
    let header_len = stream.len();
    let mut parser = RequestParser::new(ProtocolLimits::default());
    let mut args = Vec::new();
    assert_eq!(parser.parse(&stream, &mut args), Ok(Parsed::Incomplete));
    assert_eq!(parser.buf_bytes_min(), header_len + 100_000 + 2);
    stream.extend(std::iter::repeat_n(b'v', 100_000));
    assert_eq!(parser.parse(&stream, &mut args), Ok(Parsed::Incomplete));
    assert_eq!(parser.buf_bytes_min(), header_len + 100_000 + 2);
    stream.extend_from_slice(b"\r\n");
    assert_eq!(
        parser.parse(&stream, &mut args),
        Ok(Parsed::Request {
            consumed: stream.len()
        })
    );
    assert_eq!(args[1], header_len..header_len + 100_000);
}

#[test]
fn hint_moves_past_scanned_bytes_of_a_line() {
    let mut parser = RequestParser::new(ProtocolLimits::default());
    let mut args = Vec::new();
    assert_eq!(parser.parse(b"", &mut args), Ok(Parsed::Incomplete));
    assert_eq!(parser.buf_bytes_min(), 1);
    assert_eq!(parser.parse(b"SET a b", &mut args), Ok(Parsed::Incomplete));
    assert_eq!(parser.buf_bytes_min(), 8);
    assert_eq!(
        parser.parse(b"SET a b\r", &mut args),
        Ok(Parsed::Incomplete)
    );
    assert_eq!(parser.buf_bytes_min(), 9);
    assert_eq!(
        parser.parse(b"SET a b\r\n", &mut args),
        Ok(Parsed::Request { consumed: 9 })
    );
    assert_eq!(args, vec![0..3, 4..5, 6..7]);
}

#[test]
fn reset_forgets_a_partial_request() {
    let mut parser = RequestParser::new(ProtocolLimits::default());
    let mut args = Vec::new();
    assert_eq!(
        parser.parse(b"*2\r\n$3\r\nGET\r\n", &mut args),
        Ok(Parsed::Incomplete)
    );
    parser.reset();
    assert_eq!(
        parser.parse(b"PING\n", &mut args),
        Ok(Parsed::Request { consumed: 5 })
    );
    assert_eq!(args, vec![0..4]);
}

#[test]
fn counts_of_zero_or_less_are_skipped() {
    for input in [
        &b"*0\r\n"[..],
        b"*-1\r\n",
        b"*-5\r\n",
        b"*-9223372036854775808\r\n",
    ] {
        let mut parser = RequestParser::new(ProtocolLimits::default());
        let mut args = vec![0..1, 2..3];
        assert_eq!(
            parser.parse(input, &mut args),
            Ok(Parsed::Request {
                consumed: input.len()
            })
        );
        assert!(args.is_empty());
    }
}

#[test]
fn empty_inline_lines_are_empty_requests() {
    let outcome = feed(ProtocolLimits::default(), &[b"\n\r\n \t \r\nPING\n"]);
    assert_eq!(
        outcome.requests,
        vec![vec![], vec![], vec![], words(&["PING"])]
    );
}

#[test]
fn inline_words_index_the_buffer_unless_escaped() {
    let buf = b"SET \"a b\" 'x\\'y' \"\\x41\" tail";
    let line = [buf.as_slice(), b"\r\n"].concat();
    let mut parser = RequestParser::new(ProtocolLimits::default());
    let mut args = Vec::new();
    assert_eq!(
        parser.parse(&line, &mut args),
        Ok(Parsed::Request {
            consumed: line.len()
        })
    );
    assert_eq!(args[0], 0..3);
    assert_eq!(args[1], 5..8);
    assert!(args[2].end > line.len() && args[3].end > line.len());
    assert_eq!(
        parser.args(&line, &args).collect::<Vec<_>>(),
        [&b"SET"[..], b"a b", b"x'y", b"A", b"tail"]
    );
}
