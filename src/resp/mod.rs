//! RESP2, the Redis serialization protocol (<https://redis.io/docs/latest/develop/reference/protocol-spec/>).
//!
//! CONTRACT (written by the shard-loop author; the RESP author fills in the bodies and may
//! add private items and sub-modules `parser.rs` / `reply.rs`, keeping these signatures).
//!
//! * [`RequestParser`] parses client requests incrementally and without copying: it returns
//!   argument ranges into the caller's buffer. It accepts both multibulk arrays
//!   (`*<n>\r\n$<len>\r\n<bytes>\r\n...`) and inline commands (a line of space-separated
//!   words, with Redis's `"..."`/`'...'` quoting, ending in `\n` or `\r\n`, as `redis-cli`,
//!   `telnet` and `nc` send). Empty inline lines are skipped.
//! * The reply functions append RESP2 replies to a `Vec<u8>`.

use std::ops::Range;

use crate::config::ProtocolLimits;

/// A request the server cannot parse. The connection must get `-ERR <Display>` and then be
/// closed, as Redis does. Texts follow Redis's `networking.c`, e.g.
/// `Protocol error: invalid multibulk length`, `Protocol error: invalid bulk length`,
/// `Protocol error: expected '$', got 'x'`, `Protocol error: too big inline request`,
/// `Protocol error: unbalanced quotes in request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

/// Outcome of one [`RequestParser::parse`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The buffer does not yet hold a whole request; read more and call again with the
    /// same (grown) buffer. Nothing was consumed.
    Incomplete,
    /// One request was parsed: its arguments are in `args`, and the first `consumed` bytes
    /// of the buffer are used up. `args` may be empty only for a skipped empty inline line.
    Request {
        /// Bytes of the buffer used by this request.
        consumed: usize,
    },
}

/// An incremental RESP2 request parser. Keeps a little state between calls so that a
/// large bulk string arriving in many small reads is not rescanned from the start each time
/// (it remembers how many bytes it needs before trying again).
#[derive(Debug)]
pub struct RequestParser {
    limits: ProtocolLimits,
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: ProtocolLimits) -> Self {
        Self { limits }
    }

    /// Parses the next request at the start of `buf`. On `Parsed::Request`, `args` is
    /// cleared and filled with the byte range of each argument inside `buf`. On
    /// `Parsed::Incomplete` the caller keeps the bytes and calls again when more arrived.
    /// Never panics, whatever the bytes.
    ///
    /// # Errors
    /// [`ProtocolError`] for malformed input or input past `limits` (a bulk length above
    /// `bulk_bytes_max` or negative, an array length above `array_len_max`, an inline line
    /// longer than `inline_bytes_max` without its end, a bulk string not followed by CRLF).
    pub fn parse(
        &mut self,
        buf: &[u8],
        args: &mut Vec<Range<usize>>,
    ) -> Result<Parsed, ProtocolError> {
        let _ = (buf, args, &self.limits);
        todo!()
    }
}

/// Appends a simple string: `+<s>\r\n`. `s` must not contain CR or LF.
pub fn simple(out: &mut Vec<u8>, s: &str) {
    let _ = (out, s);
    todo!()
}

/// Appends an error: `-<msg>\r\n` (`msg` starts with its code, e.g. `ERR ...`); CR and LF in
/// `msg` are replaced by spaces.
pub fn error(out: &mut Vec<u8>, msg: &str) {
    let _ = (out, msg);
    todo!()
}

/// Appends an integer: `:<n>\r\n`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    let _ = (out, n);
    todo!()
}

/// Appends a bulk string: `$<len>\r\n<bytes>\r\n`.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    let _ = (out, bytes);
    todo!()
}

/// Appends the null bulk string: `$-1\r\n`.
pub fn null_bulk(out: &mut Vec<u8>) {
    let _ = out;
    todo!()
}

/// Appends an array header: `*<len>\r\n`; the caller appends the `len` elements.
pub fn array_header(out: &mut Vec<u8>, len: usize) {
    let _ = (out, len);
    todo!()
}

/// Appends the null array: `*-1\r\n`.
pub fn null_array(out: &mut Vec<u8>) {
    let _ = out;
    todo!()
}
