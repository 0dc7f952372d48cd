//! The reply types whose encoding depends on the protocol a connection chose with `HELLO`.
//!
//! RESP3 (<https://github.com/redis/redis-specifications/blob/master/protocol/RESP3.md>) adds
//! types that RESP2 lacks; Redis 7 sends each of them to a RESP2 client as the RESP2 value
//! below (its `networking.c`, `addReplyNull`, `addReplyMapLen`, `addReplyDouble`, ...). Every
//! protocol-dependent reply of the server is written through these functions, so the two
//! encodings live in one place and RESP2 output stays exactly what it was before RESP3.
//!
//! | RESP3 type (spec section) | RESP3 bytes | RESP2 bytes |
//! | --- | --- | --- |
//! | Null ("Null") | `_\r\n` | `$-1\r\n` (null bulk) or `*-1\r\n` (null array) |
//! | Map ("Map type") | `%<pairs>\r\n` then key, value, ... | `*<2 × pairs>\r\n`, a flat array |
//! | Set ("Set reply") | `~<len>\r\n` then elements | `*<len>\r\n` |
//! | Double ("Double type") | `,<%.17g>\r\n`, `,inf\r\n`, `,-inf\r\n` | the same text as a bulk string |
//! | Boolean ("Boolean reply") | `#t\r\n` / `#f\r\n` | `:1\r\n` / `:0\r\n` |
//! | Big number ("Big number type") | `(<digits>\r\n` | the digits as a bulk string |
//! | Verbatim string ("Verbatim string type") | `=<len>\r\n<fmt>:<text>\r\n`, `len` counting `fmt:` | `text` as a bulk string |

use super::reply;

/// The protocol a connection speaks: RESP2 until `HELLO 3`, and again after `HELLO 2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2, the default of every new connection.
    #[default]
    Resp2,
    /// RESP3, chosen with `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The protocol for a `HELLO` version number: 2 or 3, `None` for any other (`-NOPROTO`).
    pub fn from_version(version: i64) -> Option<Self> {
        match version {
            2 => Some(Self::Resp2),
            3 => Some(Self::Resp3),
            _ => None,
        }
    }

    /// The version number `HELLO` reports in its `proto` field: 2 or 3.
    pub fn version(self) -> i64 {
        match self {
            Self::Resp2 => 2,
            Self::Resp3 => 3,
        }
    }
}

/// Appends a null where RESP2 sends a null bulk string (`GET` of a missing key).
pub fn null(out: &mut Vec<u8>, proto: Protocol) {
    match proto {
        Protocol::Resp2 => reply::null_bulk(out),
        Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
    }
}

/// Appends a null where RESP2 sends a null array (`*-1`).
pub fn null_array(out: &mut Vec<u8>, proto: Protocol) {
    match proto {
        Protocol::Resp2 => reply::null_array(out),
        Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
    }
}

/// Appends a map header for `pairs` key/value pairs; the caller appends `2 × pairs` values,
/// each key followed by its value.
pub fn map_header(out: &mut Vec<u8>, proto: Protocol, pairs: usize) {
    match proto {
        Protocol::Resp2 => reply::array_header(out, pairs * 2),
        Protocol::Resp3 => aggregate_header(out, b'%', pairs),
    }
}

/// Appends a set header for `len` elements; the caller appends them.
pub fn set_header(out: &mut Vec<u8>, proto: Protocol, len: usize) {
    match proto {
        Protocol::Resp2 => reply::array_header(out, len),
        Protocol::Resp3 => aggregate_header(out, b'~', len),
    }
}

/// Appends a double, formatted as Redis's `addReplyDouble`: C's `%.17g`, and `inf`/`-inf`
/// for the infinities. NaN is sent as `nan` (Redis never replies with one).
pub fn double(out: &mut Vec<u8>, proto: Protocol, value: f64) {
    let text = format_double(value);
    match proto {
        Protocol::Resp2 => reply::bulk(out, text.as_bytes()),
        Protocol::Resp3 => {
            out.push(b',');
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Appends a boolean (RESP2: the integer 1 or 0).
pub fn boolean(out: &mut Vec<u8>, proto: Protocol, value: bool) {
    match (proto, value) {
        (Protocol::Resp2, value) => reply::integer(out, i64::from(value)),
        (Protocol::Resp3, true) => out.extend_from_slice(b"#t\r\n"),
        (Protocol::Resp3, false) => out.extend_from_slice(b"#f\r\n"),
    }
}

/// Appends a big number given as its decimal digits, with an optional leading `-`
/// (RESP2: a bulk string of the same digits).
pub fn big_number(out: &mut Vec<u8>, proto: Protocol, digits: &str) {
    debug_assert!(
        digits
            .strip_prefix('-')
            .unwrap_or(digits)
            .bytes()
            .all(|b| b.is_ascii_digit()),
        "big number {digits:?} is not decimal digits"
    );
    match proto {
        Protocol::Resp2 => reply::bulk(out, digits.as_bytes()),
        Protocol::Resp3 => {
            out.push(b'(');
            out.extend_from_slice(digits.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Appends a verbatim string of format `format` (`txt` or `mkd`, three bytes, as the spec
/// requires); RESP2 gets `text` as a plain bulk string. Redis sends `INFO`, `CLIENT LIST`
/// and `CLIENT INFO` this way.
pub fn verbatim(out: &mut Vec<u8>, proto: Protocol, format: &[u8; 3], text: &[u8]) {
    match proto {
        Protocol::Resp2 => reply::bulk(out, text),
        Protocol::Resp3 => {
            aggregate_header(out, b'=', text.len() + 4);
            out.extend_from_slice(format);
            out.push(b':');
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn aggregate_header(out: &mut Vec<u8>, kind: u8, len: usize) {
    out.push(kind);
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `value` as C's `printf("%.17g")` prints it (17 significant digits, trailing zeros cut,
/// exponent form below 1e-4 and from 1e17 on), with `inf`, `-inf` and `nan` spelled as
/// Redis spells them.
pub fn format_double(value: f64) -> String {
    const PRECISION: i32 = 17;
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust rounds `{:e}` correctly, as glibc's printf does: the digits agree.
    let scientific = format!("{:.*e}", (PRECISION - 1) as usize, value);
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    if (-4..PRECISION).contains(&exponent) {
        let decimals = (PRECISION - 1 - exponent) as usize;
        trim_fraction(format!("{value:.decimals$}"))
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            trim_fraction(mantissa.to_owned()),
            exponent.abs()
        )
    }
}

/// Cuts trailing zeros of a fraction, and the point if nothing is left after it.
fn trim_fraction(mut text: String) -> String {
    if text.contains('.') {
        let kept = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(kept);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out);
        out
    }

    #[test]
    fn nulls() {
        assert_eq!(encoded(|o| null(o, Protocol::Resp2)), b"$-1\r\n");
        assert_eq!(encoded(|o| null(o, Protocol::Resp3)), b"_\r\n");
        assert_eq!(encoded(|o| null_array(o, Protocol::Resp2)), b"*-1\r\n");
        assert_eq!(encoded(|o| null_array(o, Protocol::Resp3)), b"_\r\n");
    }

    #[test]
    fn maps_and_sets() {
        assert_eq!(encoded(|o| map_header(o, Protocol::Resp2, 7)), b"*14\r\n");
        assert_eq!(encoded(|o| map_header(o, Protocol::Resp3, 7)), b"%7\r\n");
        assert_eq!(encoded(|o| set_header(o, Protocol::Resp2, 3)), b"*3\r\n");
        assert_eq!(encoded(|o| set_header(o, Protocol::Resp3, 3)), b"~3\r\n");
    }

    #[test]
    fn verbatim_counts_the_format_prefix() {
        // The spec's example: `=15\r\ntxt:Some string\r\n`.
        assert_eq!(
            encoded(|o| verbatim(o, Protocol::Resp3, b"txt", b"Some string")),
            b"=15\r\ntxt:Some string\r\n"
        );
        assert_eq!(
            encoded(|o| verbatim(o, Protocol::Resp2, b"txt", b"Some string")),
            b"$11\r\nSome string\r\n"
        );
    }

    #[test]
    fn booleans_and_big_numbers() {
        assert_eq!(encoded(|o| boolean(o, Protocol::Resp3, true)), b"#t\r\n");
        assert_eq!(encoded(|o| boolean(o, Protocol::Resp3, false)), b"#f\r\n");
        assert_eq!(encoded(|o| boolean(o, Protocol::Resp2, true)), b":1\r\n");
        let digits = "3492890328409238509324850943850943825024385";
        assert_eq!(
            encoded(|o| big_number(o, Protocol::Resp3, digits)),
            format!("({digits}\r\n").into_bytes()
        );
        assert_eq!(
            encoded(|o| big_number(o, Protocol::Resp2, "-12")),
            b"$3\r\n-12\r\n"
        );
    }

    #[test]
    fn doubles_print_like_percent_17g() {
        // Expected texts are glibc's printf("%.17g").
        for (value, text) in [
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (-2.0, "-2"),
            (1e17, "1e+17"),
            (1.5e16, "15000000000000000"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (123456.789, "123456.789"),
            (3.0e300, "3.0000000000000002e+300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
        ] {
            assert_eq!(format_double(value), text, "{value:e}");
        }
        assert_eq!(encoded(|o| double(o, Protocol::Resp3, 1.5)), b",1.5\r\n");
        assert_eq!(
            encoded(|o| double(o, Protocol::Resp2, 1.5)),
            b"$3\r\n1.5\r\n"
        );
        assert_eq!(
            encoded(|o| double(o, Protocol::Resp3, f64::INFINITY)),
            b",inf\r\n"
        );
    }
}
