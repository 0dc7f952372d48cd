//! The lines of a request, each found within the line limit (`inline_bytes_max`, Redis's
//! `PROTO_INLINE_MAX_SIZE`): an inline command line, and the `*<n>\r\n` / `$<len>\r\n`
//! header lines of a multibulk request with their number read as Redis's `string2ll` does.

use super::error::{protocol_error, TOO_BIG_INLINE};
use super::ProtocolError;

/// An inline line, found as far as the buffer allows.
pub(super) enum InlineLine {
    /// The line is `buf[..line_end]`, and its line ending (`\n` or `\r\n`) ends at `next`.
    Whole { line_end: usize, next: usize },
    /// The line's `\n` is not in the buffer yet; `buf[..scanned]` holds none.
    Partial { scanned: usize, need: usize },
}

/// Finds the end of the inline line at the start of `buf`, searching for its `\n` from
/// `scanned`: at most `line_bytes_max` bytes, then `\n` or `\r\n`.
///
/// # Errors
/// `too big inline request` as soon as the bytes present prove the line too long.
pub(super) fn inline_line(
    buf: &[u8],
    scanned: usize,
    line_bytes_max: usize,
) -> Result<InlineLine, ProtocolError> {
    // The `\n` of a line within the limit lies before this offset (line, `\r`, `\n`).
    let lf_end = line_bytes_max.saturating_add(2);
    let window = buf.get(scanned..buf.len().min(lf_end)).unwrap_or_default();
    let Some(lf) = window.iter().position(|&b| b == b'\n').map(|i| scanned + i) else {
        // Past the limit already unless the byte at the limit starts the line ending.
        let past_limit = buf.get(line_bytes_max).is_some_and(|&byte| byte != b'\r');
        if past_limit || buf.len() >= lf_end {
            return Err(protocol_error(TOO_BIG_INLINE));
        }
        return Ok(InlineLine::Partial {
            scanned: buf.len(),
            need: buf.len() + 1,
        });
    };
    let line_end = if lf > 0 && buf[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    if line_end > line_bytes_max {
        return Err(protocol_error(TOO_BIG_INLINE));
    }
    Ok(InlineLine::Whole {
        line_end,
        next: lf + 1,
    })
}

/// A `*<n>` or `$<len>` line, read as far as the buffer allows.
pub(super) enum Header {
    /// The line's number, and the offset just past its CRLF.
    Number { value: i64, next: usize },
    /// The line's end is not in the buffer yet; `buf[..scanned]` holds no `\r` after the
    /// line's start.
    Partial { scanned: usize, need: usize },
}

/// Reads the header line starting at `start` (its `*` or `$`), searching for its `\r`
/// from `scanned`. The line, without CRLF, may be at most `line_bytes_max` bytes, as
/// Redis bounds it by `PROTO_INLINE_MAX_SIZE`, the inline limit; past that it is
/// `too_big`. A number Redis's `string2ll` would refuse, or a `\r` not followed by `\n`,
/// is `invalid`.
pub(super) fn header(
    buf: &[u8],
    start: usize,
    scanned: usize,
    line_bytes_max: usize,
    too_big: &str,
    invalid: &str,
) -> Result<Header, ProtocolError> {
    // The `\r` of a line within the limit lies before this offset.
    let cr_end = start.saturating_add(line_bytes_max).saturating_add(1);
    let window = buf.get(scanned..buf.len().min(cr_end)).unwrap_or_default();
    let Some(cr) = window.iter().position(|&b| b == b'\r').map(|i| scanned + i) else {
        if buf.len() >= cr_end {
            return Err(protocol_error(too_big));
        }
        return Ok(Header::Partial {
            scanned: buf.len().max(scanned),
            need: buf.len() + 1,
        });
    };
    match buf.get(cr + 1) {
        None => Ok(Header::Partial {
            scanned: cr,
            need: cr + 2,
        }),
        Some(b'\n') => {
            let value = parse_number(&buf[start + 1..cr]).ok_or_else(|| protocol_error(invalid))?;
            Ok(Header::Number {
                value,
                next: cr + 2,
            })
        }
        Some(_) => Err(protocol_error(invalid)),
    }
}

/// A decimal integer as Redis's `string2ll` accepts it: an optional `-`, then `0` alone or
/// digits not starting with `0`; no `+`, no blanks, no overflow of `i64`.
fn parse_number(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', digits @ ..] => (true, digits),
        _ => (false, text),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(digit - b'0');
        value = value.checked_mul(10)?;
        // Accumulating toward the sign lets `i64::MIN` parse, as in Redis.
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_number_follows_string2ll() {
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b"-1"), Some(-1));
        assert_eq!(parse_number(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_number(b"-9223372036854775808"), Some(i64::MIN));
        for text in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_number(text), None, "{text:?}");
        }
    }
}
