//! Goal: the RESP request parser frames any stream the way a client meant it, however the
//! stream is split into reads, and never panics, hangs or loses its place on bad input.
//!
//! Method: proptest.
//! (a) Random pipelines of multibulk and inline commands with random arguments (inline
//!     words encoded bare, in `"..."` with escapes, in `'...'`, or glued from pieces), plus
//!     requests to skip (`*0`, `*-1`, blank lines), are encoded, cut at random points and fed
//!     the way a connection does (append a chunk, parse until `Incomplete`, drop consumed
//!     bytes; `tskv::resp::testing::feed`, which also checks the per-call guarantees). The
//!     argument lists must come back exactly, in order, with nothing left over.
//! (b) Arbitrary bytes (fully random, drawn from RESP's punctuation, or a valid pipeline
//!     with bytes overwritten), under default and tiny limits, fed whole and in random
//!     chunks: no panic, every `Request` consumes at least one byte, a repeated call on an
//!     unchanged buffer stays `Incomplete`, and the outcome (requests, then the error or
//!     the bytes left waiting) is the same for every split.

use proptest::prelude::*;
use proptest::sample::Index;
use tskv::config::ProtocolLimits;
use tskv::resp::testing::feed;

/// How one command is written on the wire.
#[derive(Debug, Clone)]
enum Command {
    /// `*<n>` and `n` bulk strings; with no arguments, `*0` or `*-1` (by `null`).
    Multibulk { args: Vec<Vec<u8>>, null: bool },
    /// One inline line; each word with a choice of encoding, then `\r\n` or `\n`.
    Inline {
        words: Vec<(Vec<u8>, u8)>,
        crlf: bool,
        lead: bool,
    },
}

impl Command {
    /// The arguments the parser must return for this command.
    fn args(&self) -> Vec<Vec<u8>> {
        match self {
            Command::Multibulk { args, .. } => args.clone(),
            Command::Inline { words, .. } => words.iter().map(|(word, _)| word.clone()).collect(),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Command::Multibulk { args, null } => {
                if args.is_empty() && *null {
                    out.extend_from_slice(b"*-1\r\n");
                    return;
                }
                out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
                for arg in args {
                    out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                    out.extend_from_slice(arg);
                    out.extend_from_slice(b"\r\n");
                }
            }
            Command::Inline { words, crlf, lead } => {
                let mut line = Vec::new();
                if *lead {
                    line.extend_from_slice(b" \t");
                }
                for (index, (word, choice)) in words.iter().enumerate() {
                    if index > 0 {
                        line.extend_from_slice(if choice & 1 == 0 { b" " } else { b"\t  " });
                    }
                    encode_word(word, *choice, &mut line);
                }
                // A line starting with `*` would be read as multibulk.
                if line.first() == Some(&b'*') {
                    out.push(b' ');
                }
                out.extend_from_slice(&line);
                out.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
        }
    }
}

/// Bytes that may stand unquoted in an inline word.
fn bare_safe(byte: u8) -> bool {
    !matches!(
        byte,
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'"' | b'\''
    )
}

/// Writes `word` in the encoding `choice` picks, falling back to double quotes, which can
/// hold any bytes.
fn encode_word(word: &[u8], choice: u8, out: &mut Vec<u8>) {
    match (choice >> 1) % 4 {
        0 if !word.is_empty() && word.iter().all(|&b| bare_safe(b)) => out.extend_from_slice(word),
        1 if !word.contains(&b'\n') && word.last() != Some(&b'\\') => {
            out.push(b'\'');
            for &byte in word {
                if byte == b'\'' {
                    out.push(b'\\');
                }
                out.push(byte);
            }
            out.push(b'\'');
        }
        2 => {
            // A bare prefix glued to a quoted rest: `ab"c d"`.
            let bare = word.iter().take_while(|&&b| bare_safe(b)).count().min(3);
            out.extend_from_slice(&word[..bare]);
            double_quoted(&word[bare..], choice & 0x80 != 0, out);
        }
        _ => double_quoted(word, choice & 0x80 != 0, out),
    }
}

fn double_quoted(word: &[u8], hex_everything: bool, out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in word {
        match byte {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', byte]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ if hex_everything || !byte.is_ascii_graphic() => {
                out.extend_from_slice(format!("\\x{byte:02X}").as_bytes());
            }
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// Argument bytes: fully random, or from an alphabet heavy in RESP and quoting syntax.
fn arg_bytes() -> impl Strategy<Value = Vec<u8>> {
    let syntax = prop::sample::select(b"ab*$:-+01\r\n \t\"'\\x\x00\x0b".to_vec());
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24),
        prop::collection::vec(syntax, 0..24),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (prop::collection::vec(arg_bytes(), 0..6), any::<bool>())
            .prop_map(|(args, null)| Command::Multibulk { args, null }),
        (
            prop::collection::vec((arg_bytes(), any::<u8>()), 0..6),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(words, crlf, lead)| Command::Inline { words, crlf, lead }),
    ]
}

/// Cut points, as indexes into a stream of any length.
fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..12)
}

/// Splits `stream` at the `cuts`.
fn chunks<'a>(stream: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
    at.sort_unstable();
    at.push(stream.len());
    let mut start = 0;
    at.into_iter()
        .map(|end| {
            let chunk = &stream[start..end];
            start = end;
            chunk
        })
        .collect()
}

fn tiny_limits() -> ProtocolLimits {
    ProtocolLimits {
        bulk_bytes_max: 8,
        array_len_max: 3,
        inline_bytes_max: 12,
    }
}

/// Input for (b): random bytes, RESP punctuation, or a valid pipeline with some bytes
/// overwritten.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let punctuation = prop::sample::select(b"*$\r\n0123-9 \"'\\xaz".to_vec());
    let mutated = (
        prop::collection::vec(command(), 1..6),
        prop::collection::vec((any::<Index>(), any::<u8>()), 1..4),
    )
        .prop_map(|(commands, edits)| {
            let mut stream = Vec::new();
            for command in &commands {
                command.encode(&mut stream);
            }
            for (at, byte) in edits {
                let at = at.index(stream.len());
                stream[at] = byte;
            }
            stream
        });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(punctuation, 0..256),
        mutated,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn split_pipelines_parse_to_their_commands(
        commands in prop::collection::vec(command(), 0..12),
        cuts in cuts(),
    ) {
        let mut stream = Vec::new();
        for command in &commands {
            command.encode(&mut stream);
        }
        let expected: Vec<Vec<Vec<u8>>> = commands.iter().map(Command::args).collect();
        let outcome = feed(ProtocolLimits::default(), &chunks(&stream, &cuts));
        prop_assert_eq!(outcome.error, None);
        prop_assert_eq!(outcome.requests, expected);
        prop_assert!(outcome.waiting.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_does_not_matter(
        stream in hostile_bytes(),
        cuts in cuts(),
        tiny in any::<bool>(),
    ) {
        let limits = if tiny { tiny_limits() } else { ProtocolLimits::default() };
        let whole = feed(limits, &[&stream]);
        let split = feed(limits, &chunks(&stream, &cuts));
        prop_assert_eq!(whole, split);
    }
}
