//! Unit tests of command parsing: Redis's error texts and option rules.

use super::*;

fn parse_words(words: &[&str]) -> Result<Command<'static>, String> {
    let args: Vec<&'static [u8]> = words
        .iter()
        .map(|w| w.to_string().leak().as_bytes() as &'static [u8])
        .collect();
    parse(&args).1
}

#[test]
fn unknown_command_lists_args_like_redis() {
    assert_eq!(
        parse_words(&["FOO", "a", "b"]).unwrap_err(),
        "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        parse_words(&["foo"]).unwrap_err(),
        "ERR unknown command 'foo', with args beginning with: "
    );
}

#[test]
fn arity_errors_use_lower_case_name() {
    assert_eq!(
        parse_words(&["GET"]).unwrap_err(),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        parse_words(&["MSET", "a", "1", "b"]).unwrap_err(),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        parse_words(&["PING", "a", "b"]).unwrap_err(),
        "ERR wrong number of arguments for 'ping' command"
    );
}

#[test]
fn set_options() {
    assert_eq!(
        parse_words(&["set", "k", "v", "nx"]).unwrap(),
        Command::Set {
            key: b"k",
            value: b"v",
            condition: SetCondition::IfAbsent
        }
    );
    assert_eq!(
        parse_words(&["set", "k", "v", "nx", "xx"]).unwrap_err(),
        "ERR syntax error"
    );
    assert_eq!(
        parse_words(&["set", "k", "v", "ex"]).unwrap_err(),
        "ERR syntax error"
    );
}

#[test]
fn select_only_db_zero() {
    assert_eq!(parse_words(&["select", "0"]).unwrap(), Command::Select);
    assert_eq!(
        parse_words(&["select", "1"]).unwrap_err(),
        "ERR DB index is out of range"
    );
    assert_eq!(
        parse_words(&["select", "x"]).unwrap_err(),
        "ERR value is not an integer or out of range"
    );
}

/// What the previous parser (UTF-8 check, then `str::parse`) accepted, as the reference.
fn parse_i64_by_str(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes[0] == b'+' || bytes.len() > 20 {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[test]
fn parse_i64_takes_the_edges_as_str_parse_does() {
    for text in [
        "0",
        "-0",
        "007",
        "-",
        "",
        "+1",
        "1 ",
        " 1",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "00000000000000000001",
        "000000000000000000001",
        "12a",
        "1.5",
        "--1",
    ] {
        assert_eq!(
            parse_i64(text.as_bytes()),
            parse_i64_by_str(text.as_bytes()),
            "{text:?}"
        );
    }
}

proptest::proptest! {
    #[test]
    fn parse_i64_accepts_exactly_what_str_parse_accepts(
        bytes in proptest::collection::vec(proptest::sample::select(b"-+0123456789a \xff".to_vec()), 0..24),
        number: i64,
    ) {
        proptest::prop_assert_eq!(parse_i64(&bytes), parse_i64_by_str(&bytes));
        let text = number.to_string();
        proptest::prop_assert_eq!(parse_i64(text.as_bytes()), Some(number));
    }
}
