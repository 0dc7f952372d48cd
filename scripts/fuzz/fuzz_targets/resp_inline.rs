//! Inline commands (`PING`, `SET k "a b"` as telnet sends them) through the RESP request
//! parser: the input is made into one inline line (cut at its first `\n`, never starting
//! with `*`, ended by `\r\n`), so every input reaches the word splitter (Redis's
//! `sdssplitargs` rules). The line is one request or an error, never `Incomplete`; the
//! outcome does not depend on how the line is cut into reads; and a line of only letters,
//! digits and spaces splits into its space-separated words.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskv::config::ProtocolLimits;
use tskv_fuzz::{check_split_invariance, TINY_LIMITS};

fuzz_target!(|data: &[u8]| {
    let body = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut line = Vec::with_capacity(body.len() + 3);
    if body.first() == Some(&b'*') {
        line.push(b' ');
    }
    line.extend_from_slice(body);
    line.extend_from_slice(b"\r\n");
    for limits in [ProtocolLimits::default(), TINY_LIMITS] {
        let outcome = check_split_invariance(limits, &line);
        assert!(outcome.waiting.is_empty(), "a whole line left waiting");
        if outcome.error.is_some() {
            assert!(outcome.requests.is_empty(), "an error after a request");
            continue;
        }
        assert_eq!(outcome.requests.len(), 1, "one line, one request");
        let plain = body.iter().all(|b| b.is_ascii_alphanumeric() || *b == b' ');
        if plain {
            let words: Vec<Vec<u8>> = body
                .split(|&b| b == b' ')
                .filter(|w| !w.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            assert_eq!(outcome.requests[0], words);
        }
    }
});
