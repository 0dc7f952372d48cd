//! Printable forms of keys and values, as Redis's `sdscatrepr` writes them: in double
//! quotes, with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` escaped, other printable ASCII as
//! is, and every other byte as `\xHH`.

use std::fmt::Write;

/// The quoted, escaped form of `bytes`.
pub fn repr(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => write!(out, "\\x{b:02x}").expect("writing to a String"),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::repr;

    #[test]
    fn escapes_like_sdscatrepr() {
        assert_eq!(repr(b"plain key"), "\"plain key\"");
        assert_eq!(repr(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(repr(b"\n\r\t\x07\x08"), "\"\\n\\r\\t\\a\\b\"");
        assert_eq!(repr(&[0, 0x7f, 0xff]), "\"\\x00\\x7f\\xff\"");
        assert_eq!(repr(b""), "\"\"");
    }
}
