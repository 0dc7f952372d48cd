//! Every way a request is refused: [`ProtocolError`], with Redis's texts written once here,
//! and the tests that each malformed or oversized request gets its text.

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

pub(super) const INVALID_MULTIBULK_LENGTH: &str = "invalid multibulk length";
pub(super) const INVALID_BULK_LENGTH: &str = "invalid bulk length";
pub(super) const TOO_BIG_MBULK_COUNT: &str = "too big mbulk count string";
pub(super) const TOO_BIG_BULK_COUNT: &str = "too big bulk count string";
pub(super) const TOO_BIG_INLINE: &str = "too big inline request";
pub(super) const BULK_NOT_FOLLOWED_BY_CRLF: &str = "bulk string not followed by CRLF";
pub(super) const UNBALANCED_QUOTES: &str = "unbalanced quotes in request";

/// A `ProtocolError` with one of the fixed texts.
pub(super) fn protocol_error(text: &str) -> ProtocolError {
    ProtocolError(text.to_owned())
}

/// `expected '$', got 'x'`, with a byte outside printable ASCII written `\xHH` so the text
/// stays valid UTF-8 and cannot break the reply's framing.
pub(super) fn expected_dollar(got: u8) -> ProtocolError {
    let shown = if got.is_ascii_graphic() || got == b' ' {
        char::from(got).to_string()
    } else {
        format!("\\x{got:02x}")
    };
    ProtocolError(format!("expected '$', got '{shown}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProtocolLimits;
    use crate::resp::parser::tests::{error_of, feed, small_limits, words};
    use crate::resp::{Parsed, RequestParser};

    #[test]
    fn limits_are_inclusive() {
        let limits = small_limits();
        let at_limits = b"*4\r\n$16\r\n0123456789abcdef\r\n$0\r\n\r\n$1\r\nx\r\n$1\r\ny\r\n\
0123456789 abcde\r\n";
        let outcome = feed(limits, &[at_limits]);
        assert_eq!((outcome.error, outcome.waiting.len()), (None, 0));
        assert_eq!(
            outcome.requests,
            vec![
                words(&["0123456789abcdef", "", "x", "y"]),
                words(&["0123456789", "abcde"]),
            ]
        );
    }

    #[test]
    fn invalid_multibulk_length() {
        let text = "Protocol error: invalid multibulk length";
        let limits = ProtocolLimits::default();
        for input in [
            &b"*abc\r\n"[..],
            b"*\r\n",
            b"*01\r\n",
            b"*+1\r\n",
            b"*-0\r\n",
            b"*1 \r\n",
            b"*99999999999999999999\r\n",
            b"*3\rx",
        ] {
            assert_eq!(error_of(limits, input), text, "{input:?}");
        }
        assert_eq!(error_of(small_limits(), b"*5\r\n"), text);
    }

    #[test]
    fn invalid_bulk_length() {
        let text = "Protocol error: invalid bulk length";
        let limits = ProtocolLimits::default();
        for input in [
            &b"*1\r\n$abc\r\n"[..],
            b"*1\r\n$\r\n",
            b"*1\r\n$-1\r\n",
            b"*1\r\n$-5\r\n",
            b"*1\r\n$01\r\n",
            b"*1\r\n$3\rx",
            b"*2\r\n$1\r\nx\r\n$ 1\r\n",
        ] {
            assert_eq!(error_of(limits, input), text, "{input:?}");
        }
        assert_eq!(error_of(small_limits(), b"*1\r\n$17\r\n"), text);
    }

    #[test]
    fn huge_bulk_length_is_refused_at_its_header() {
        let mut parser = RequestParser::new(ProtocolLimits::default());
        let mut args = Vec::new();
        assert_eq!(
            parser.parse(b"*2\r\n$3\r\nSET\r\n$3000000000\r\n", &mut args),
            Err(protocol_error(INVALID_BULK_LENGTH))
        );
    }

    #[test]
    fn expected_dollar_names_the_byte() {
        let limits = ProtocolLimits::default();
        assert_eq!(
            error_of(limits, b"*1\r\nfoo\r\n"),
            "Protocol error: expected '$', got 'f'"
        );
        // Refused as soon as the byte is there, without its line.
        assert_eq!(
            error_of(limits, b"*2\r\n$1\r\nx\r\n:"),
            "Protocol error: expected '$', got ':'"
        );
        assert_eq!(
            error_of(limits, b"*1\r\n\r\n"),
            "Protocol error: expected '$', got '\\x0d'"
        );
        assert_eq!(
            error_of(limits, b"*1\r\n\xff"),
            "Protocol error: expected '$', got '\\xff'"
        );
    }

    #[test]
    fn too_big_count_strings() {
        let limits = small_limits();
        // 16 bytes of line without a `\r` yet: still within the limit.
        assert_eq!(feed(limits, &[b"*000000000000000"]).error, None);
        assert_eq!(
            error_of(limits, b"*0000000000000000"),
            "Protocol error: too big mbulk count string"
        );
        assert_eq!(feed(limits, &[b"*1\r\n$000000000000000"]).error, None);
        assert_eq!(
            error_of(limits, b"*1\r\n$0000000000000000"),
            "Protocol error: too big bulk count string"
        );
        // A line longer than the limit is too big even when its end is already there.
        assert_eq!(
            error_of(limits, b"*0000000000000000\r\n"),
            "Protocol error: too big mbulk count string"
        );
    }

    #[test]
    fn too_big_inline_request() {
        let limits = small_limits();
        let text = "Protocol error: too big inline request";
        // Up to 16 bytes of line, then `\r\n` or `\n`, are fine.
        for input in [&b"0123456789abcdef"[..], b"0123456789abcdef\r"] {
            let outcome = feed(limits, &[input]);
            assert_eq!((outcome.error, outcome.waiting.len()), (None, input.len()));
        }
        for input in [&b"0123456789abcdef\r\n"[..], b"0123456789abcdef\n"] {
            assert_eq!(
                feed(limits, &[input]).requests,
                vec![words(&["0123456789abcdef"])]
            );
        }
        for input in [
            &b"0123456789abcdefg"[..],
            b"0123456789abcdefg\n",
            b"0123456789abcdefg\r\n",
            b"0123456789abcdef\r\r\n",
        ] {
            assert_eq!(error_of(limits, input), text, "{input:?}");
        }
    }

    #[test]
    fn unbalanced_quotes_in_request() {
        let text = "Protocol error: unbalanced quotes in request";
        for input in [
            &b"GET \"a\n"[..],
            b"GET 'a\r\n",
            b"GET \"a\"b\n",
            b"GET 'a'b\n",
        ] {
            assert_eq!(
                error_of(ProtocolLimits::default(), input),
                text,
                "{input:?}"
            );
        }
    }

    #[test]
    fn bulk_not_followed_by_crlf() {
        let text = "Protocol error: bulk string not followed by CRLF";
        let limits = ProtocolLimits::default();
        for input in [
            &b"*1\r\n$3\r\nfooXY"[..],
            b"*1\r\n$3\r\nfoo\rX",
            b"*1\r\n$3\r\nfooo",
        ] {
            assert_eq!(error_of(limits, input), text, "{input:?}");
        }
        let outcome = feed(limits, &[b"*1\r\n$3\r\nfoo\r"]);
        assert_eq!((outcome.error, outcome.waiting.len()), (None, 12));
    }

    /// Found by fuzzing (`resp_request`): a payload followed by a bare `\n` at the end of
    /// the stream was refused when it arrived whole but left waiting when it arrived in
    /// pieces, because the parser waited for both bytes of the CRLF before checking either.
    #[test]
    fn bulk_followed_by_a_bare_lf_is_refused_however_the_stream_is_split() {
        let text = "Protocol error: bulk string not followed by CRLF";
        let limits = ProtocolLimits::default();
        let input: &[u8] = b"*2\r\n$3\r\nSET\r\n$2\r\nNX\n";
        assert_eq!(error_of(limits, input), text);
        for cut in 1..input.len() {
            let outcome = feed(limits, &[&input[..cut], &input[cut..]]);
            let error = outcome.error.map(|e| e.to_string());
            assert_eq!(error.as_deref(), Some(text), "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let error = feed(limits, &bytes).error.map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some(text));
    }

    #[test]
    fn parser_is_usable_after_an_error() {
        let mut parser = RequestParser::new(ProtocolLimits::default());
        let mut args = Vec::new();
        assert!(parser.parse(b"*x\r\n", &mut args).is_err());
        assert_eq!(parser.buf_bytes_min(), 0);
        assert_eq!(
            parser.parse(b"PING\n", &mut args),
            Ok(Parsed::Request { consumed: 5 })
        );
    }
}
