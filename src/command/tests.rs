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
