//! Redis's glob patterns, for `KEYS`, `SCAN ... MATCH` and `CONFIG GET`: the rules of
//! Redis's `stringmatchlen` (`util.c`), on bytes.
//!
//! - `*` matches any run of bytes, `?` any one byte;
//! - `[abc]` one of the listed bytes, `[^abc]` one byte not listed, `[a-z]` a range (either
//!   order); inside brackets `\x` is the byte `x`;
//! - `\x` elsewhere matches `x` literally; every other byte matches itself.
//!
//! An unclosed `[` takes the rest of the pattern as its set, as Redis does.

/// Whether `text` matches `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative with one backtrack point for the last `*`: linear in practice and never
    // recursing on hostile patterns such as "*a*a*a*a*b".
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    let (matched, next) = match_class(pattern, p + 1, text[t]);
                    if matched {
                        p = next;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                c => {
                    if c == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        // Mismatch: let the last `*` take one more byte, or fail.
        match star {
            Some((star_p, star_t)) => {
                p = star_p;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `byte` against the class whose body starts at `pattern[start]` (after `[`).
/// Returns whether it matched and the index after the closing `]`.
fn match_class(pattern: &[u8], start: usize, byte: u8) -> (bool, usize) {
    let mut i = start;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            matched |= pattern[i + 1] == byte;
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            let (a, b) = (pattern[i], pattern[i + 2]);
            let (lo, hi) = (a.min(b), a.max(b));
            matched |= (lo..=hi).contains(&byte);
            i += 3;
        } else {
            matched |= pattern[i] == byte;
            i += 1;
        }
    }
    // Past the `]` (or the end of an unclosed class).
    (matched != negate, (i + 1).min(pattern.len()))
}

#[cfg(test)]
mod tests {
    use super::glob_match;
    use proptest::prelude::*;

    #[test]
    fn redis_examples() {
        // The examples of Redis's KEYS documentation.
        for (pattern, yes, no) in [
            (
                "h?llo",
                &["hello", "hallo", "hxllo"][..],
                &["hllo", "heello"][..],
            ),
            ("h*llo", &["hllo", "heeeello"], &["hell"]),
            ("h[ae]llo", &["hello", "hallo"], &["hillo"]),
            ("h[^e]llo", &["hallo", "hbllo"], &["hello"]),
            ("h[a-b]llo", &["hallo", "hbllo"], &["hcllo"]),
            ("h\\*llo", &["h*llo"], &["hello"]),
            ("*", &["", "anything"], &[]),
            (
                "sensor:*:temp",
                &["sensor:1:temp", "sensor::temp"],
                &["sensor:1:hum"],
            ),
            ("[z-a]", &["m"], &["A"]),
        ] {
            for text in yes {
                assert!(
                    glob_match(pattern.as_bytes(), text.as_bytes()),
                    "{pattern} ~ {text}"
                );
            }
            for text in no {
                assert!(
                    !glob_match(pattern.as_bytes(), text.as_bytes()),
                    "{pattern} !~ {text}"
                );
            }
        }
    }

    #[test]
    fn hostile_pattern_finishes() {
        let text = vec![b'a'; 10_000];
        assert!(!glob_match(b"*a*a*a*a*a*a*a*a*b", &text));
    }

    proptest! {
        /// A pattern without special bytes matches exactly itself; `*` + it matches every
        /// text ending in it.
        #[test]
        fn literals_and_suffixes(lit in "[a-z:0-9]{0,12}", prefix in "[a-z:0-9]{0,12}") {
            prop_assert!(glob_match(lit.as_bytes(), lit.as_bytes()));
            let text = format!("{prefix}{lit}");
            let suffix_pattern = format!("*{lit}");
            prop_assert!(glob_match(suffix_pattern.as_bytes(), text.as_bytes()));
            prop_assert_eq!(glob_match(lit.as_bytes(), text.as_bytes()), prefix.is_empty());
        }

        #[test]
        fn arbitrary_patterns_never_panic(pattern in proptest::collection::vec(any::<u8>(), 0..20),
                                          text in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = glob_match(&pattern, &text);
        }
    }
}
