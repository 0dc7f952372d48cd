//! Test support, not part of the API: drives a [`RequestParser`] over a byte stream the way
//! a connection does, checking the parser's contract on every call. The one driver behind
//! the parser's unit tests, `tests/resp_parser_props.rs` and the fuzz targets
//! (`scripts/fuzz`), so they all hold the parser to the same rules.

use std::ops::Range;

use super::{Parsed, ProtocolError, RequestParser};
use crate::config::ProtocolLimits;

/// What the parser made of a whole stream.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Each request's arguments, in order (empty for a request to skip, such as `*0`).
    pub requests: Vec<Vec<Vec<u8>>>,
    /// The error that ended the stream, if any.
    pub error: Option<ProtocolError>,
    /// Bytes left waiting for the rest of a request when the stream ended without an error;
    /// empty after an error (what is left then depends on how much had arrived, and the
    /// connection is closed anyway).
    pub waiting: Vec<u8>,
}

/// Feeds `chunks` to a fresh parser with `limits` as a connection does: append a chunk,
/// parse until `Incomplete`, drop the bytes of each parsed request. Stops at the first
/// error.
///
/// # Panics
/// If the parser breaks its contract: a request that consumes no byte or more than the
/// buffer, an `Incomplete` that does not ask for more bytes or that a repeated call on the
/// same buffer does not repeat, or more calls than bytes and chunks fed (no progress).
pub fn feed(limits: ProtocolLimits, chunks: &[&[u8]]) -> Outcome {
    let mut parser = RequestParser::new(limits);
    let mut buf = Vec::new();
    let mut args: Vec<Range<usize>> = Vec::new();
    let mut requests = Vec::new();
    // Each call parses a request of at least one byte, or ends a chunk.
    let calls_max = chunks.iter().map(|chunk| chunk.len() + 1).sum::<usize>();
    let mut calls = 0;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            calls += 1;
            assert!(calls <= calls_max, "parser does not progress");
            match parser.parse(&buf, &mut args) {
                Ok(Parsed::Incomplete) => {
                    assert!(
                        parser.buf_bytes_min() > buf.len(),
                        "Incomplete without asking for more bytes"
                    );
                    assert_eq!(parser.parse(&buf, &mut args), Ok(Parsed::Incomplete));
                    break;
                }
                Ok(Parsed::Request { consumed }) => {
                    assert!(
                        (1..=buf.len()).contains(&consumed),
                        "consumed {consumed} of {} bytes",
                        buf.len()
                    );
                    requests.push(parser.args(&buf, &args).map(<[u8]>::to_vec).collect());
                    buf.drain(..consumed);
                }
                Err(error) => {
                    return Outcome {
                        requests,
                        error: Some(error),
                        waiting: Vec::new(),
                    }
                }
            }
        }
    }
    Outcome {
        requests,
        error: None,
        waiting: buf,
    }
}
