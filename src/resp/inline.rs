//! Splitting an inline command line into words, by the rules of Redis's `sdssplitargs`
//! (`sds.c`), which Redis applies to inline requests:
//!
//! * Words are separated by blanks. Blanks before a word are any of the C `isspace` bytes
//!   (space, `\t`, `\n`, `\v`, `\f`, `\r`); an unquoted word ends at space, `\t`, `\n` or `\r`.
//! * `"..."` quotes blanks and understands the escapes `\n \r \t \b \a`, `\xHH` (two hex
//!   digits), and `\` before any other byte stands for that byte (`\"`, `\\`).
//! * `'...'` quotes everything literally except `\'`, which is a `'`.
//! * Quoted and unquoted pieces glue into one word (`ab"c d"` is `abc d`), but a closing
//!   quote must be followed by a blank or the end of the line; otherwise, or if a quote is
//!   never closed, the request is refused with `unbalanced quotes in request`.
//!
//! One deviation: a NUL byte is an ordinary byte here. Redis works on a C string, so a NUL
//! ends the line there (and is an unclosed quote inside quotes).
//!
//! A word that equals one contiguous span of the line (the common case, quoted or not) is
//! returned as that span. Any other word (with an escape, or glued from pieces) is decoded
//! into the parser's scratch buffer, and its range is offset by the buffer length, past
//! the end of the buffer, where `RequestParser::arg` looks for it.

use std::ops::Range;

use super::error::{protocol_error, UNBALANCED_QUOTES};
use super::ProtocolError;

/// Splits `line` (offset 0 of the caller's buffer, without its line ending) into words,
/// appending their ranges to `args`. `scratch` is cleared, then holds the decoded words;
/// their ranges are offset by `scratch_base`, the caller's buffer length.
///
/// # Errors
/// `unbalanced quotes in request`, as described in the module docs.
pub(super) fn split(
    line: &[u8],
    scratch_base: usize,
    args: &mut Vec<Range<usize>>,
    scratch: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    debug_assert!(scratch_base >= line.len());
    scratch.clear();
    let mut at = 0;
    loop {
        while line.get(at).is_some_and(|&byte| is_c_space(byte)) {
            at += 1;
        }
        if at == line.len() {
            return Ok(());
        }
        let mut word = Word::new(scratch.len());
        at = read_word(line, at, &mut word, scratch)?;
        args.push(word.finish(scratch, scratch_base));
    }
}

/// Which quotes the reader is inside.
#[derive(Clone, Copy)]
enum Quote {
    None,
    Double,
    Single,
}

/// Reads the word starting at `at` (not a blank), returning the offset just past it.
fn read_word(
    line: &[u8],
    mut at: usize,
    word: &mut Word,
    scratch: &mut Vec<u8>,
) -> Result<usize, ProtocolError> {
    let mut quote = Quote::None;
    loop {
        let byte = line.get(at).copied();
        match (quote, byte) {
            (Quote::None, None | Some(b' ' | b'\n' | b'\r' | b'\t')) => return Ok(at),
            (Quote::None, Some(b'"')) => quote = Quote::Double,
            (Quote::None, Some(b'\'')) => quote = Quote::Single,
            (Quote::Double | Quote::Single, None) => return Err(unbalanced()),
            (Quote::Double, Some(b'"')) | (Quote::Single, Some(b'\'')) => {
                return close_quote(line, at);
            }
            (Quote::Double, Some(b'\\')) => at += double_quoted_escape(line, at, word, scratch),
            (Quote::Single, Some(b'\\')) if line.get(at + 1) == Some(&b'\'') => {
                word.escaped(b'\'', scratch);
                at += 1;
            }
            (_, Some(byte)) => word.literal(at, byte, scratch),
        }
        at += 1;
    }
}

/// Decodes the escape whose `\` is at `at` inside `"..."`, returning how many bytes after
/// the `\` it used. A `\` that ends the line is kept as a literal byte; the missing closing
/// quote is reported next.
fn double_quoted_escape(line: &[u8], at: usize, word: &mut Word, scratch: &mut Vec<u8>) -> usize {
    let hex = |offset: usize| {
        line.get(at + offset)
            .and_then(|&digit| char::from(digit).to_digit(16))
    };
    match (line.get(at + 1), hex(2), hex(3)) {
        (Some(b'x'), Some(high), Some(low)) => {
            // Two hex digits make a value below 256.
            word.escaped((high * 16 + low) as u8, scratch);
            3
        }
        (Some(&escaped), _, _) => {
            let byte = match escaped {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 0x08,
                b'a' => 0x07,
                other => other,
            };
            word.escaped(byte, scratch);
            1
        }
        (None, _, _) => {
            word.literal(at, b'\\', scratch);
            0
        }
    }
}

/// Ends the word at the closing quote at `at`, which must be followed by a blank or the
/// end of the line.
fn close_quote(line: &[u8], at: usize) -> Result<usize, ProtocolError> {
    match line.get(at + 1) {
        Some(&next) if !is_c_space(next) => Err(unbalanced()),
        _ => Ok(at + 1),
    }
}

/// The bytes C's `isspace` accepts in the "C" locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn unbalanced() -> ProtocolError {
    protocol_error(UNBALANCED_QUOTES)
}

/// A word being read: its decoded bytes always go to the scratch, and while they equal one
/// contiguous span of the line, that span is tracked so the scratch copy can be dropped.
struct Word {
    /// Where this word's bytes start in the scratch.
    scratch_start: usize,
    /// The span of the line the word equals so far (`None`: no bytes yet); meaningful only
    /// while `contiguous`.
    span: Option<Range<usize>>,
    contiguous: bool,
}

impl Word {
    fn new(scratch_start: usize) -> Self {
        Self {
            scratch_start,
            span: None,
            contiguous: true,
        }
    }

    /// Appends the byte found at offset `at` of the line.
    fn literal(&mut self, at: usize, byte: u8, scratch: &mut Vec<u8>) {
        scratch.push(byte);
        if !self.contiguous {
            return;
        }
        match &mut self.span {
            None => self.span = Some(at..at + 1),
            Some(span) if span.end == at => span.end += 1,
            Some(_) => self.contiguous = false,
        }
    }

    /// Appends a byte decoded from an escape, which no span of the line holds.
    fn escaped(&mut self, byte: u8, scratch: &mut Vec<u8>) {
        scratch.push(byte);
        self.contiguous = false;
    }

    /// The word's range: its span of the line, or its bytes in the scratch offset by
    /// `scratch_base`.
    fn finish(self, scratch: &mut Vec<u8>, scratch_base: usize) -> Range<usize> {
        if self.contiguous {
            scratch.truncate(self.scratch_start);
            // An empty word (`""`) has no span; any empty range reads as empty.
            return self.span.unwrap_or(0..0);
        }
        scratch_base + self.scratch_start..scratch_base + scratch.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words of `line`, decoded, or the error text.
    fn words(line: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let base = line.len() + 7;
        let mut args = Vec::new();
        let mut scratch = Vec::new();
        split(line, base, &mut args, &mut scratch).map_err(|error| error.0)?;
        Ok(args
            .into_iter()
            .map(|range| {
                if range.end <= line.len() {
                    line[range].to_vec()
                } else {
                    scratch[range.start - base..range.end - base].to_vec()
                }
            })
            .collect())
    }

    fn ok(list: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
        Ok(list.iter().map(|word| word.to_vec()).collect())
    }

    #[test]
    fn blanks_separate_words() {
        assert_eq!(words(b"SET key value"), ok(&[b"SET", b"key", b"value"]));
        assert_eq!(words(b"  a\t\tb  \r c "), ok(&[b"a", b"b", b"c"]));
        assert_eq!(words(b""), ok(&[]));
        assert_eq!(words(b" \t\x0b\x0c\r "), ok(&[]));
    }

    #[test]
    fn vertical_tab_and_form_feed_only_lead() {
        // Skipped before a word, but part of an unquoted word, as in `sdssplitargs`.
        assert_eq!(words(b"\x0ba\x0bb\x0c"), ok(&[b"a\x0bb\x0c"]));
        assert_eq!(words(b"\"a\"\x0bb"), ok(&[b"a", b"b"]));
    }

    #[test]
    fn double_quotes_take_escapes() {
        assert_eq!(words(br#""a b""#), ok(&[b"a b"]));
        assert_eq!(
            words(br#""\n\r\t\b\a\\\"\q""#),
            ok(&[b"\n\r\t\x08\x07\\\"q"])
        );
        assert_eq!(words(br#""\x41\x7a\xfF\x00""#), ok(&[b"Az\xff\x00"]));
        // Not two hex digits: `\x` is just `x`.
        assert_eq!(words(br#""\xZZ" "\x4""#), ok(&[b"xZZ", b"x4"]));
        assert_eq!(words(br#""it's""#), ok(&[b"it's"]));
    }

    #[test]
    fn single_quotes_are_literal_but_for_escaped_quote() {
        assert_eq!(words(br"'a\'b'"), ok(&[b"a'b"]));
        assert_eq!(words(br#"'\n "x" \\ a'"#), ok(&[br#"\n "x" \\ a"#]));
        // `\` does not escape itself: `\\'` is a `\` and an escaped quote.
        assert_eq!(words(br"'a\\''"), ok(&[br"a\'"]));
    }

    #[test]
    fn pieces_glue_into_one_word() {
        assert_eq!(words(br#"ab"c d" x'y'"#), ok(&[b"abc d", b"xy"]));
        assert_eq!(words(br#"a"""#), ok(&[b"a"]));
        assert_eq!(words(br#""" ''"#), ok(&[b"", b""]));
    }

    #[test]
    fn nul_is_an_ordinary_byte() {
        assert_eq!(words(b"a\x00b \"\x00\""), ok(&[b"a\x00b", b"\x00"]));
    }

    #[test]
    fn plain_words_are_spans_of_the_line() {
        let line = br#"GET "k y" 'v'"#;
        let mut args = Vec::new();
        let mut scratch = Vec::new();
        split(line, line.len(), &mut args, &mut scratch).unwrap();
        assert_eq!(args, vec![0..3, 5..8, 11..12]);
        assert!(scratch.is_empty());
    }

    #[test]
    fn escaped_words_live_past_the_buffer() {
        let line = br#"a "\x41" b'c'"#;
        let mut args = Vec::new();
        let mut scratch = Vec::new();
        split(line, 100, &mut args, &mut scratch).unwrap();
        assert_eq!(args, vec![0..1, 100..101, 101..103]);
        assert_eq!(scratch, b"Abc");
    }

    #[test]
    fn unbalanced_quotes() {
        for line in [
            &br#""abc"#[..],
            br"'abc",
            br#""abc"d"#,
            br"'abc'd",
            br#""abc\""#,
            br"'abc\'",
            br#""abc\"#,
            br#"a"b"c"#,
            br#"""#,
        ] {
            assert_eq!(
                words(line),
                Err("unbalanced quotes in request".to_owned()),
                "{line:?}"
            );
        }
    }
}
