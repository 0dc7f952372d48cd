//! RESP2 reply encoders (RESP spec, "RESP protocol description": simple strings, simple
//! errors, integers, bulk strings, arrays). Each appends one value to a `Vec<u8>`.

/// Appends a simple string: `+<s>\r\n`. `s` must not contain CR or LF; if it does (a bug),
/// they are sent as spaces so the stream stays framed.
pub fn simple(out: &mut Vec<u8>, s: &str) {
    debug_assert!(
        !s.contains(['\r', '\n']),
        "simple string {s:?} holds CR or LF"
    );
    out.push(b'+');
    push_line_text(out, s);
    out.extend_from_slice(b"\r\n");
}

/// Appends an error: `-<msg>\r\n` (`msg` starts with its code, e.g. `ERR ...`); CR and LF in
/// `msg` are replaced by spaces.
pub fn error(out: &mut Vec<u8>, msg: &str) {
    out.push(b'-');
    push_line_text(out, msg);
    out.extend_from_slice(b"\r\n");
}

/// Appends an integer: `:<n>\r\n`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a bulk string: `$<len>\r\n<bytes>\r\n`, `len` in bytes.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut len = itoa::Buffer::new();
    let len = len.format(bytes.len()).as_bytes();
    out.reserve(1 + len.len() + 2 + bytes.len() + 2);
    out.push(b'$');
    out.extend_from_slice(len);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends the null bulk string: `$-1\r\n`.
pub fn null_bulk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// Appends an array header: `*<len>\r\n`; the caller appends the `len` elements.
pub fn array_header(out: &mut Vec<u8>, len: usize) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends the null array: `*-1\r\n`.
pub fn null_array(out: &mut Vec<u8>) {
    out.extend_from_slice(b"*-1\r\n");
}

/// Appends `text` with CR and LF turned into spaces, as Redis does for error replies.
fn push_line_text(out: &mut Vec<u8>, text: &str) {
    out.extend(text.bytes().map(|byte| match byte {
        b'\r' | b'\n' => b' ',
        other => other,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        // Start non-empty: every encoder appends.
        let mut out = b"#".to_vec();
        write(&mut out);
        out
    }

    #[test]
    fn simple_string() {
        assert_eq!(encoded(|out| simple(out, "OK")), b"#+OK\r\n");
        assert_eq!(encoded(|out| simple(out, "")), b"#+\r\n");
    }

    #[test]
    fn error_replaces_line_breaks() {
        assert_eq!(
            encoded(|out| error(out, "ERR unknown command")),
            b"#-ERR unknown command\r\n"
        );
        assert_eq!(
            encoded(|out| error(out, "ERR a\r\nb\nc")),
            b"#-ERR a  b c\r\n"
        );
    }

    #[test]
    fn integers() {
        assert_eq!(encoded(|out| integer(out, 0)), b"#:0\r\n");
        assert_eq!(encoded(|out| integer(out, -42)), b"#:-42\r\n");
        assert_eq!(
            encoded(|out| integer(out, i64::MIN)),
            b"#:-9223372036854775808\r\n"
        );
    }

    #[test]
    fn bulk_strings() {
        assert_eq!(encoded(|out| bulk(out, b"hello")), b"#$5\r\nhello\r\n");
        assert_eq!(encoded(|out| bulk(out, b"")), b"#$0\r\n\r\n");
        assert_eq!(encoded(|out| bulk(out, b"a\r\nb")), b"#$4\r\na\r\nb\r\n");
        assert_eq!(encoded(null_bulk), b"#$-1\r\n");
    }

    #[test]
    fn arrays() {
        assert_eq!(encoded(|out| array_header(out, 0)), b"#*0\r\n");
        assert_eq!(encoded(|out| array_header(out, 12)), b"#*12\r\n");
        assert_eq!(encoded(null_array), b"#*-1\r\n");
    }
}
