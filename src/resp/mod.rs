//! RESP2 and RESP3, the Redis serialization protocol (<https://redis.io/docs/latest/develop/reference/protocol-spec/>).
//!
//! CONTRACT (written by the shard-loop author; the RESP author fills in the bodies and may
//! add private items and sub-modules `parser.rs` / `reply.rs`, keeping these signatures).
//!
//! * [`RequestParser`] parses client requests incrementally and without copying: it returns
//!   argument ranges into the caller's buffer. It accepts both multibulk arrays
//!   (`*<n>\r\n$<len>\r\n<bytes>\r\n...`) and inline commands (a line of space-separated
//!   words, with Redis's `"..."`/`'...'` quoting, ending in `\n` or `\r\n`, as `redis-cli`,
//!   `telnet` and `nc` send). Empty inline lines are skipped.
//! * The reply functions append replies to a `Vec<u8>`: `reply.rs` the types RESP2 and RESP3
//!   share, [`resp3`] those whose bytes depend on the connection's [`Protocol`].
//!
//! # Reading the arguments
//!
//! A multibulk argument, and an inline word without backslash escapes, is a plain range of
//! the caller's buffer. An inline word with escapes (`"a\x41\n"`) or glued quoted pieces
//! (`ab"c d"`) has no such range: its decoded bytes live in the parser until the next
//! [`RequestParser::parse`], and its range lies past the end of the buffer. Read arguments
//! with [`RequestParser::arg`] or [`RequestParser::args`], which handle both, rather than by
//! slicing the buffer.
//!
//! # Layout
//!
//! * `parser.rs`: [`RequestParser`], the multibulk state machine and inline line framing.
//! * `inline.rs`: splitting an inline line into words (Redis's `sdssplitargs`).
//! * `reply.rs`: the reply encoders of the types both protocols share.
//! * `resp3.rs`: [`Protocol`] and the replies whose bytes depend on it (null, map, set,
//!   double, boolean, big number, verbatim string), RESP3's types and their RESP2 forms.

mod inline;
mod parser;
mod reply;
pub mod resp3;

pub use parser::RequestParser;
pub use reply::{array_header, bulk, error, integer, null_array, null_bulk, simple};
pub use resp3::Protocol;

/// A request the server cannot parse. The connection must get `-ERR <Display>` and then be
/// closed, as Redis does. Texts follow Redis's `networking.c`:
///
/// * `Protocol error: invalid multibulk length`: the count of `*<n>` is not a number, is
///   above `array_len_max`, or its line does not end in CRLF.
/// * `Protocol error: invalid bulk length`: the length of `$<len>` is not a number, is
///   negative, is above `bulk_bytes_max`, or its line does not end in CRLF.
/// * `Protocol error: expected '$', got 'x'`: an array element is not a bulk string. A byte
///   outside printable ASCII is shown as `\xHH` (Redis sends the raw byte).
/// * `Protocol error: too big mbulk count string` / `too big bulk count string`: a `*` or
///   `$` line longer than `inline_bytes_max` bytes (Redis: `PROTO_INLINE_MAX_SIZE`).
/// * `Protocol error: too big inline request`: an inline line longer than
///   `inline_bytes_max` bytes, not counting its line ending.
/// * `Protocol error: unbalanced quotes in request`: an unclosed quote in an inline line,
///   or a closing quote followed by something other than a blank.
/// * `Protocol error: bulk string not followed by CRLF`: the two bytes after a bulk
///   string's payload are not `\r\n` (Redis does not check; we do, so that a wrong length
///   cannot shift the framing of the rest of the stream).
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
    /// of the buffer are used up (`consumed` is always at least 1). `args` may be empty
    /// only for a request to skip: an empty or blank inline line, or an array header with a
    /// count of zero or less (`*0\r\n`, `*-1\r\n`), which Redis skips as well.
    Request {
        /// Bytes of the buffer used by this request.
        consumed: usize,
    },
}
