//! The incremental, zero-copy RESP2 request parser.
//!
//! # State machine
//!
//! Positions are offsets into the caller's buffer, which begins with the request being
//! parsed (the caller drops the bytes of each finished request, or passes the rest).
//!
//! ```text
//!        first byte '*'                  count n >= 1
//!  Idle ────────────────► ArrayHeader ────────────────► BulkHeader ◄──────────┐
//!   │                         │ n <= 0                       │ "$<len>\r\n"   │ elements left
//!   │ any other first byte    │                              ▼                │
//!   └──────► Inline ──────────┴──────────► Request ◄─── BulkPayload ──────────┘
//!            whole line                  (back to Idle)  last element
//! ```
//!
//! Each state records how far it has looked (`scanned`, or where the current element
//! starts), so a call with a grown buffer resumes there instead of rescanning. The parser
//! also keeps `need`, the buffer length below which no progress is possible: one byte past
//! what was searched for a line end, or the end of a bulk payload plus the first byte of its
//! CRLF (then the second, so a wrong first byte is refused as soon as it arrives). A call with
//! a shorter buffer returns `Incomplete` at once, so a 64 MiB value arriving in 16 KiB reads
//! costs one comparison per read. A finished request or an error puts the parser back in
//! `Idle` with `need` zero.
//!
//! Errors are reported as soon as the bytes present prove the request malformed, never
//! later, and the outcome never depends on how the stream was split into reads.

use std::ops::Range;

use crate::config::ProtocolLimits;

use super::error::{
    expected_dollar, protocol_error, BULK_NOT_FOLLOWED_BY_CRLF, INVALID_BULK_LENGTH,
    INVALID_MULTIBULK_LENGTH, TOO_BIG_BULK_COUNT, TOO_BIG_MBULK_COUNT,
};
use super::inline;
use super::line::{self, Header, InlineLine};
use super::{Parsed, ProtocolError};

/// Where the parser is inside the current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first byte of a request.
    Idle,
    /// In an inline line starting at offset 0; `buf[..scanned]` holds no `\n`.
    Inline { scanned: usize },
    /// In the `*<n>\r\n` line at offset 0; `buf[..scanned]` holds no `\r`.
    ArrayHeader { scanned: usize },
    /// In the `$<len>\r\n` line of the next element, which starts at `start`;
    /// `buf[start..scanned]` holds no `\r`. `left` elements remain, this one included.
    BulkHeader {
        start: usize,
        scanned: usize,
        left: usize,
    },
    /// Waiting for the payload `start..start + len` of an element and its CRLF. `left`
    /// elements remain, this one included.
    BulkPayload {
        start: usize,
        len: usize,
        left: usize,
    },
}

/// What one step of the state machine achieved.
enum Flow {
    /// The state moved on; take another step.
    Continue,
    /// No progress is possible until the buffer holds `need` bytes.
    Incomplete { need: usize },
    /// A request ends at `consumed`; its arguments are in `RequestParser::ranges`.
    Done { consumed: usize },
}

/// An incremental RESP2 request parser. Keeps a little state between calls so that a
/// large bulk string arriving in many small reads is not rescanned from the start each time
/// (it remembers how many bytes it needs before trying again).
///
/// One parser serves one connection. Between an `Incomplete` and the next call, the buffer
/// may only grow at its end; after a `Request`, the next call starts afresh at the start of
/// whatever buffer it is given.
#[derive(Debug)]
pub struct RequestParser {
    limits: ProtocolLimits,
    state: State,
    /// Buffer length, in bytes, below which `parse` cannot make progress.
    need: usize,
    /// Arguments of the request in progress; swapped into the caller's vector when done.
    ranges: Vec<Range<usize>>,
    /// Decoded inline words that are not a plain range of the buffer (see [`Self::arg`]).
    scratch: Vec<u8>,
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: ProtocolLimits) -> Self {
        Self {
            limits,
            state: State::Idle,
            need: 0,
            ranges: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Parses the next request at the start of `buf`. On `Parsed::Request`, `args` is
    /// cleared and filled with the byte range of each argument inside `buf`. On
    /// `Parsed::Incomplete` the caller keeps the bytes and calls again when more arrived.
    /// Never panics, whatever the bytes.
    ///
    /// A request is a multibulk array if its first byte is `*`, else an inline line
    /// (RESP spec, "Sending commands to a Redis server" and "Inline commands"). Read the
    /// arguments with [`Self::arg`] or [`Self::args`]: an inline word with backslash escapes
    /// has a range past the end of `buf` (see the [module docs](super)).
    ///
    /// # Errors
    /// [`ProtocolError`] for malformed input or input past `limits` (a bulk length above
    /// `bulk_bytes_max` or negative, an array length above `array_len_max`, an inline line
    /// longer than `inline_bytes_max` (line ending not counted), a bulk string not followed
    /// by CRLF).
    /// The texts are listed on [`ProtocolError`]. After an error the parser is reset, but
    /// the connection should be closed: the rest of the stream cannot be framed.
    pub fn parse(
        &mut self,
        buf: &[u8],
        args: &mut Vec<Range<usize>>,
    ) -> Result<Parsed, ProtocolError> {
        if buf.len() < self.need {
            return Ok(Parsed::Incomplete);
        }
        loop {
            let flow = match self.step(buf) {
                Ok(flow) => flow,
                Err(error) => {
                    self.reset();
                    return Err(error);
                }
            };
            match flow {
                Flow::Continue => {}
                Flow::Incomplete { need } => {
                    debug_assert!(need > buf.len(), "Incomplete must ask for more bytes");
                    self.need = need;
                    return Ok(Parsed::Incomplete);
                }
                Flow::Done { consumed } => {
                    debug_assert!(consumed > 0 && consumed <= buf.len());
                    args.clear();
                    std::mem::swap(args, &mut self.ranges);
                    self.state = State::Idle;
                    self.need = 0;
                    return Ok(Parsed::Request { consumed });
                }
            }
        }
    }

    /// The bytes of one argument of the request the last [`Self::parse`] returned, given
    /// the same `buf`: `&buf[range]` for a multibulk argument or a plain inline word, the
    /// decoded bytes held by the parser for an inline word with escapes. Valid until the
    /// next `parse`. A range that did not come from that call yields an empty slice.
    pub fn arg<'a>(&'a self, buf: &'a [u8], range: &Range<usize>) -> &'a [u8] {
        let bytes = if range.end <= buf.len() {
            buf.get(range.clone())
        } else {
            let base = buf.len();
            self.scratch
                .get(range.start.saturating_sub(base)..range.end - base)
        };
        debug_assert!(
            bytes.is_some(),
            "argument range {range:?} is not from this parse"
        );
        bytes.unwrap_or_default()
    }

    /// The bytes of each argument in `ranges`, in order, as [`Self::arg`] gives them.
    pub fn args<'a>(
        &'a self,
        buf: &'a [u8],
        ranges: &'a [Range<usize>],
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        ranges.iter().map(move |range| self.arg(buf, range))
    }

    /// The buffer length, in bytes, that the next [`Self::parse`] needs before it can make
    /// progress: after `Incomplete`, at least one byte more than the buffer held, and for a
    /// bulk string whose header has been read, the end of its payload and CRLF. A reader
    /// can reserve this much room. Zero when no request is in progress.
    pub fn buf_bytes_min(&self) -> usize {
        match self.state {
            // `need` stops one byte short of the CRLF, to check its first byte early.
            State::BulkPayload { start, len, .. } => start.saturating_add(len).saturating_add(2),
            _ => self.need,
        }
    }

    /// Forgets any partly parsed request, so the next [`Self::parse`] starts at the start of
    /// a request. Needed only if the caller replaces its buffer mid-request.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.need = 0;
        self.ranges.clear();
    }

    /// Runs the handler of the current state.
    fn step(&mut self, buf: &[u8]) -> Result<Flow, ProtocolError> {
        match self.state {
            State::Idle => {
                self.ranges.clear();
                self.state = match buf.first() {
                    None => return Ok(Flow::Incomplete { need: 1 }),
                    Some(b'*') => State::ArrayHeader { scanned: 1 },
                    Some(_) => State::Inline { scanned: 0 },
                };
                Ok(Flow::Continue)
            }
            State::Inline { scanned } => self.inline(buf, scanned),
            State::ArrayHeader { scanned } => self.array_header(buf, scanned),
            State::BulkHeader {
                start,
                scanned,
                left,
            } => self.bulk_header(buf, start, scanned, left),
            State::BulkPayload { start, len, left } => self.bulk_payload(buf, start, len, left),
        }
    }

    /// An inline line: at most `inline_bytes_max` bytes, then `\n` or `\r\n`.
    fn inline(&mut self, buf: &[u8], scanned: usize) -> Result<Flow, ProtocolError> {
        match line::inline_line(buf, scanned, self.limits.inline_bytes_max)? {
            InlineLine::Partial { scanned, need } => {
                self.state = State::Inline { scanned };
                Ok(Flow::Incomplete { need })
            }
            InlineLine::Whole { line_end, next } => {
                let line = &buf[..line_end];
                inline::split(line, buf.len(), &mut self.ranges, &mut self.scratch)?;
                Ok(Flow::Done { consumed: next })
            }
        }
    }

    /// The `*<n>\r\n` line. A count of zero or less is a request to skip, as in Redis
    /// (`*-1` is the null array; Redis skips every count <= 0 alike).
    fn array_header(&mut self, buf: &[u8], scanned: usize) -> Result<Flow, ProtocolError> {
        let header = line::header(
            buf,
            0,
            scanned,
            self.limits.inline_bytes_max,
            TOO_BIG_MBULK_COUNT,
            INVALID_MULTIBULK_LENGTH,
        )?;
        let (count, next) = match header {
            Header::Partial { scanned, need } => {
                self.state = State::ArrayHeader { scanned };
                return Ok(Flow::Incomplete { need });
            }
            Header::Number { value, next } => (value, next),
        };
        if count <= 0 {
            return Ok(Flow::Done { consumed: next });
        }
        let left = usize::try_from(count)
            .ok()
            .filter(|&count| count <= self.limits.array_len_max)
            .ok_or_else(|| protocol_error(INVALID_MULTIBULK_LENGTH))?;
        self.state = State::BulkHeader {
            start: next,
            scanned: next + 1,
            left,
        };
        Ok(Flow::Continue)
    }

    /// The `$<len>\r\n` line of an array element.
    fn bulk_header(
        &mut self,
        buf: &[u8],
        start: usize,
        scanned: usize,
        left: usize,
    ) -> Result<Flow, ProtocolError> {
        // The type byte decides at once; Redis waits for the line end to say the same.
        match buf.get(start) {
            None => return Ok(Flow::Incomplete { need: start + 1 }),
            Some(b'$') => {}
            Some(&other) => return Err(expected_dollar(other)),
        }
        let header = line::header(
            buf,
            start,
            scanned,
            self.limits.inline_bytes_max,
            TOO_BIG_BULK_COUNT,
            INVALID_BULK_LENGTH,
        )?;
        let (len, next) = match header {
            Header::Partial { scanned, need } => {
                self.state = State::BulkHeader {
                    start,
                    scanned,
                    left,
                };
                return Ok(Flow::Incomplete { need });
            }
            Header::Number { value, next } => (value, next),
        };
        // A length past the limit is refused now, before any of its bytes are awaited.
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= self.limits.bulk_bytes_max)
            .ok_or_else(|| protocol_error(INVALID_BULK_LENGTH))?;
        self.state = State::BulkPayload {
            start: next,
            len,
            left,
        };
        Ok(Flow::Continue)
    }

    /// The payload of an array element and its CRLF.
    fn bulk_payload(
        &mut self,
        buf: &[u8],
        start: usize,
        len: usize,
        left: usize,
    ) -> Result<Flow, ProtocolError> {
        let end = start.saturating_add(len);
        let need = end.saturating_add(2);
        // Check what has arrived of the CRLF now, so a wrong length fails without waiting.
        let tail = buf.get(end..need.min(buf.len())).unwrap_or_default();
        if !b"\r\n".starts_with(tail) {
            return Err(protocol_error(BULK_NOT_FOLLOWED_BY_CRLF));
        }
        if buf.len() < need {
            // Come back when the first byte of the CRLF is there, not only both: that byte
            // alone can prove the request malformed, and waiting for the second would make
            // the outcome depend on how the stream was split (fuzzing found `NX\n` at the
            // end of a stream refused whole but left waiting when fed in pieces).
            let need = if buf.len() <= end { end + 1 } else { need };
            return Ok(Flow::Incomplete { need });
        }
        self.ranges.push(start..end);
        if left == 1 {
            return Ok(Flow::Done { consumed: need });
        }
        self.state = State::BulkHeader {
            start: need,
            scanned: need + 1,
            left: left - 1,
        };
        Ok(Flow::Continue)
    }
}
#[cfg(test)]
#[path = "parser_tests.rs"]
pub(super) mod tests;
