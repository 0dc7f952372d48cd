//! The client side of RESP2: request encoding (arrays of bulk strings) and an incremental
//! reply parser that reports "incomplete" until a whole reply is buffered.
//!
//! ```text
//!  +OK\r\n            simple string      -ERR msg\r\n   error
//!  :42\r\n            integer            $3\r\nbar\r\n  bulk string
//!  $-1\r\n  *-1\r\n  _\r\n   null        *2\r\n<reply><reply>  array
//! ```

use std::fmt;

use crate::limits;

/// Appends one command, an array of bulk strings, to `out`.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let mut digits = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(digits.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(digits.format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends the header of an array of `count` bulk strings; follow it with `count`
/// [`encode_bulk`]s.
pub fn encode_array_header(out: &mut Vec<u8>, count: usize) {
    let mut digits = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(digits.format(count).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends one bulk string.
pub fn encode_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut digits = itoa::Buffer::new();
    out.push(b'$');
    out.extend_from_slice(digits.format(bytes.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Splits one encoded command (an array of bulk strings, as [`encode_command`] writes it)
/// off the front of `bytes`: its arguments and the bytes it took. `None` if `bytes` does not
/// start with a whole command of that shape.
pub fn decode_command(bytes: &[u8]) -> Option<(Vec<&[u8]>, usize)> {
    let number = |line: &[u8]| std::str::from_utf8(line).ok()?.parse::<usize>().ok();
    let (header, mut pos) = read_line(bytes, 0).ok()??;
    let count = number(header.strip_prefix(b"*")?)?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let (line, start) = read_line(bytes, pos).ok()??;
        let len = number(line.strip_prefix(b"$")?)?;
        let end = start.checked_add(len)?;
        if bytes.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        args.push(&bytes[start..end]);
        pos = end + 2;
    }
    Some((args, pos))
}

/// One parsed reply. Strings borrow from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+...`
    Simple(&'a [u8]),
    /// `-...`
    Error(&'a [u8]),
    /// `:...`
    Integer(i64),
    /// `$n` followed by n bytes.
    Bulk(&'a [u8]),
    /// `$-1`, `*-1` or RESP3 `_`.
    Null,
    /// `*n` followed by n replies, which were checked and skipped.
    Array {
        /// Its elements, n.
        len: usize,
        /// How many of its elements (not counting nested ones) are error replies (`-...`):
        /// the failed parts of a multi-part command such as `TS.MADD`.
        errors: usize,
    },
}

/// A reply that is not valid RESP: the connection cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A reply began with a byte that is not a RESP2 type marker.
    UnknownType(u8),
    /// A length or integer was not a decimal number.
    BadNumber,
    /// A bulk string was not followed by CRLF.
    MissingCrlf,
    /// A line, bulk string or array exceeded its limit.
    TooLong,
    /// Arrays nested deeper than the limit.
    TooDeep,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnknownType(b) => write!(f, "unknown reply type byte 0x{b:02x}"),
            ProtocolError::BadNumber => f.write_str("malformed length or integer"),
            ProtocolError::MissingCrlf => f.write_str("bulk string not terminated by CRLF"),
            ProtocolError::TooLong => f.write_str("reply exceeds a size limit"),
            ProtocolError::TooDeep => f.write_str("arrays nested too deeply"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Parses one reply from the start of `buf`: `Ok(None)` if more bytes are needed, else the
/// reply and how many bytes it took.
///
/// # Errors
/// [`ProtocolError`] when the bytes cannot be RESP.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    parse_at(buf, 0, 0)
}

fn parse_at(
    buf: &[u8],
    pos: usize,
    depth: usize,
) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    let Some((line, after_line)) = read_line(buf, pos)? else {
        return Ok(None);
    };
    let (&marker, body) = line
        .split_first()
        .ok_or(ProtocolError::UnknownType(b'\r'))?;
    match marker {
        b'+' => Ok(Some((Reply::Simple(body), after_line))),
        b'-' => Ok(Some((Reply::Error(body), after_line))),
        b':' => Ok(Some((Reply::Integer(parse_i64(body)?), after_line))),
        b'_' => Ok(Some((Reply::Null, after_line))),
        b'$' => parse_bulk(buf, after_line, parse_i64(body)?),
        b'*' => parse_array(buf, after_line, parse_i64(body)?, depth),
        other => Err(ProtocolError::UnknownType(other)),
    }
}

fn parse_bulk(
    buf: &[u8],
    start: usize,
    len: i64,
) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    if len < 0 {
        return Ok(Some((Reply::Null, start)));
    }
    let len = usize::try_from(len).map_err(|_| ProtocolError::TooLong)?;
    if len > limits::BULK_LEN_MAX_BYTES {
        return Err(ProtocolError::TooLong);
    }
    let end = start + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtocolError::MissingCrlf);
    }
    Ok(Some((Reply::Bulk(&buf[start..end]), end + 2)))
}

fn parse_array(
    buf: &[u8],
    start: usize,
    count: i64,
    depth: usize,
) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    if count < 0 {
        return Ok(Some((Reply::Null, start)));
    }
    let count = usize::try_from(count).map_err(|_| ProtocolError::TooLong)?;
    if count > limits::ARRAY_LEN_MAX {
        return Err(ProtocolError::TooLong);
    }
    if depth >= limits::ARRAY_DEPTH_MAX {
        return Err(ProtocolError::TooDeep);
    }
    let mut pos = start;
    let mut errors = 0;
    for _ in 0..count {
        match parse_at(buf, pos, depth + 1)? {
            Some((element, next)) => {
                errors += usize::from(matches!(element, Reply::Error(_)));
                pos = next;
            }
            None => return Ok(None),
        }
    }
    Ok(Some((Reply::Array { len: count, errors }, pos)))
}

/// The line starting at `pos` without its CRLF, and the position after the CRLF.
fn read_line(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let rest = &buf[pos.min(buf.len())..];
    let window = &rest[..rest.len().min(limits::LINE_LEN_MAX_BYTES)];
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) if nl > 0 && window[nl - 1] == b'\r' => {
            Ok(Some((&window[..nl - 1], pos + nl + 1)))
        }
        Some(_) => Err(ProtocolError::MissingCrlf),
        None if rest.len() >= limits::LINE_LEN_MAX_BYTES => Err(ProtocolError::TooLong),
        None => Ok(None),
    }
}

fn parse_i64(digits: &[u8]) -> Result<i64, ProtocolError> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() {
        return Err(ProtocolError::BadNumber);
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(ProtocolError::BadNumber);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d - b'0')))
            .ok_or(ProtocolError::BadNumber)?;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> Reply<'_> {
        let (reply, used) = parse_reply(bytes).unwrap().expect("complete");
        assert_eq!(used, bytes.len());
        reply
    }

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"k", b"hello"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n");
    }

    #[test]
    fn piecewise_encoding_matches_and_decodes_back() {
        let mut whole = Vec::new();
        encode_command(&mut whole, &[b"MGET", b"a", b"bc"]);
        let mut pieces = Vec::new();
        encode_array_header(&mut pieces, 3);
        for arg in [&b"MGET"[..], b"a", b"bc"] {
            encode_bulk(&mut pieces, arg);
        }
        assert_eq!(whole, pieces);
        whole.extend_from_slice(b"*1\r\n");
        let (args, used) = decode_command(&whole).unwrap();
        assert_eq!(args, vec![&b"MGET"[..], b"a", b"bc"]);
        assert_eq!(used, pieces.len());
        assert_eq!(decode_command(&whole[used..]), None);
    }

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(whole(b"+OK\r\n"), Reply::Simple(b"OK"));
        assert_eq!(whole(b"-ERR no\r\n"), Reply::Error(b"ERR no"));
        assert_eq!(whole(b":-42\r\n"), Reply::Integer(-42));
        assert_eq!(whole(b"$3\r\nbar\r\n"), Reply::Bulk(b"bar"));
        assert_eq!(whole(b"$0\r\n\r\n"), Reply::Bulk(b""));
        assert_eq!(whole(b"$-1\r\n"), Reply::Null);
        assert_eq!(whole(b"*-1\r\n"), Reply::Null);
        assert_eq!(whole(b"_\r\n"), Reply::Null);
        assert_eq!(
            whole(b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n"),
            Reply::Array { len: 2, errors: 0 }
        );
        assert_eq!(whole(b"*0\r\n"), Reply::Array { len: 0, errors: 0 });
        // Only the array's own elements count, not those of nested arrays.
        assert_eq!(
            whole(b"*3\r\n:1\r\n-ERR dup\r\n*1\r\n-ERR nested\r\n"),
            Reply::Array { len: 3, errors: 1 }
        );
    }

    #[test]
    fn every_prefix_of_a_reply_is_incomplete() {
        let replies: &[&[u8]] = &[b"+OK\r\n", b"$5\r\nhello\r\n", b"*2\r\n$1\r\na\r\n:7\r\n"];
        for reply in replies {
            for cut in 0..reply.len() {
                assert_eq!(
                    parse_reply(&reply[..cut]),
                    Ok(None),
                    "prefix {cut} of {reply:?}"
                );
            }
        }
    }

    #[test]
    fn parses_replies_back_to_back() {
        let buf = b"+OK\r\n$2\r\nhi\r\n$-1\r\n";
        let mut pos = 0;
        let mut seen = Vec::new();
        while let Some((reply, used)) = parse_reply(&buf[pos..]).unwrap() {
            seen.push(format!("{reply:?}"));
            pos += used;
        }
        assert_eq!(pos, buf.len());
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn rejects_malformed_replies() {
        assert_eq!(
            parse_reply(b"?x\r\n"),
            Err(ProtocolError::UnknownType(b'?'))
        );
        assert_eq!(parse_reply(b":12a\r\n"), Err(ProtocolError::BadNumber));
        assert_eq!(
            parse_reply(b"$2\r\nabcd\r\n"),
            Err(ProtocolError::MissingCrlf)
        );
        assert_eq!(parse_reply(b"+OK\n"), Err(ProtocolError::MissingCrlf));
        assert_eq!(
            parse_reply(b"$999999999999\r\n"),
            Err(ProtocolError::TooLong)
        );
        let deep = b"*1\r\n".repeat(limits::ARRAY_DEPTH_MAX + 1);
        assert_eq!(parse_reply(&deep), Err(ProtocolError::TooDeep));
        let long = vec![b'+'; limits::LINE_LEN_MAX_BYTES + 1];
        assert_eq!(parse_reply(&long), Err(ProtocolError::TooLong));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(
            proptest::sample::select(b"+-:$*_\r\n0123456789aOK".to_vec()), 0..48)
        ) {
            if let Ok(Some((_, used))) = parse_reply(&bytes) {
                proptest::prop_assert!(used <= bytes.len());
            }
        }

        #[test]
        fn a_valid_reply_parses_whole_at_any_split(value in proptest::collection::vec(
            proptest::prelude::any::<u8>(), 0..40), cut in 0usize..64
        ) {
            let mut buf = Vec::new();
            buf.extend_from_slice(b"*2\r\n$");
            buf.extend_from_slice(value.len().to_string().as_bytes());
            buf.extend_from_slice(b"\r\n");
            buf.extend_from_slice(&value);
            buf.extend_from_slice(b"\r\n:5\r\n");
            let cut = cut.min(buf.len());
            if cut < buf.len() {
                proptest::prop_assert_eq!(parse_reply(&buf[..cut]), Ok(None));
            }
            proptest::prop_assert_eq!(parse_reply(&buf), Ok(Some((Reply::Array { len: 2, errors: 0 }, buf.len()))));
        }
    }
}
