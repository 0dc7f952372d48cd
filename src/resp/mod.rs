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
//! * `parser.rs`: [`RequestParser`], the state machine: where a request starts and ends,
//!   and the ranges of its arguments.
//! * `line.rs`: finding each line of a request within the line limit: inline lines, and
//!   the `*<n>` / `$<len>` header lines with their numbers (`string2ll`).
//! * `inline.rs`: splitting an inline line into words (Redis's `sdssplitargs`).
//! * `error.rs`: [`ProtocolError`] and every text it carries, with the tests that each
//!   malformed or oversized request gets its text.
//! * `testing.rs` (hidden): the driver that feeds a byte stream to a parser in chunks, for
//!   the unit tests, the proptests and the fuzz targets.
//! * `reply.rs`: the reply encoders of the types both protocols share.
//! * `resp3.rs`: [`Protocol`] and the replies whose bytes depend on it (null, map, set,
//!   double, boolean, big number, verbatim string), RESP3's types and their RESP2 forms.

mod error;
mod inline;
mod line;
mod parser;
mod reply;
pub mod resp3;
#[doc(hidden)]
pub mod testing;

pub use error::ProtocolError;
pub use parser::RequestParser;
pub use reply::{array_header, bulk, error, integer, null_array, null_bulk, simple};
pub use resp3::Protocol;

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
