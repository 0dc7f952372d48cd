//! Goal: `COMMAND`, `COMMAND INFO` and `COMMAND GETKEYS` tell cluster-aware clients and
//! proxies where each command's keys are, exactly as Redis 7.0 does for the commands tskv
//! shares with it.
//!
//! Method: for every command in tskv's table that Redis 7.0 also has, ask both servers
//! `COMMAND INFO name` (RESP2 and RESP3) and compare, byte for byte, the fields that say
//! where keys are (first key, last key, step, key specifications), the name, the arity
//! and the ACL categories; tskv's flags must be a subset of Redis's; the same for each
//! subcommand tskv lists (`memory|usage`, `object|encoding`, ...). Then compare `COMMAND
//! GETKEYS` and the subcommands' errors, and check the time-series commands, which Redis
//! does not have, for their specs. `COMMAND DOCS`: the summary, first version, group and
//! complexity of every shared command, byte for byte.

mod common;

use common::frames::Frames;
use common::redis_server::RedisServer;
use common::TestServer;

/// The end of the RESP2/RESP3 value starting at `bytes[at]`.
fn value_end(bytes: &[u8], at: usize) -> usize {
    let line_end = at + bytes[at..].windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let number = || -> i64 {
        std::str::from_utf8(&bytes[at + 1..line_end - 2])
            .unwrap()
            .parse()
            .unwrap()
    };
    match bytes[at] {
        b'$' | b'=' | b'!' => {
            let len = number();
            if len < 0 {
                line_end
            } else {
                line_end + len as usize + 2
            }
        }
        b'*' | b'~' | b'%' => {
            let count = number().max(0) * if bytes[at] == b'%' { 2 } else { 1 };
            (0..count).fold(line_end, |pos, _| value_end(bytes, pos))
        }
        _ => line_end,
    }
}

/// The raw bytes of each element of the aggregate `bytes` (a map's keys and values in
/// turn).
fn elements(bytes: &[u8]) -> Vec<Vec<u8>> {
    let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let count: usize = std::str::from_utf8(&bytes[1..line_end - 2])
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * if bytes[0] == b'%' { 2 } else { 1 };
    let mut pos = line_end;
    (0..count)
        .map(|_| {
            let end = value_end(bytes, pos);
            let element = bytes[pos..end].to_vec();
            pos = end;
            element
        })
        .collect()
}

/// The simple strings of a set or array of them.
fn words(bytes: &[u8]) -> Vec<String> {
    elements(bytes)
        .iter()
        .map(|w| String::from_utf8_lossy(&w[1..w.len() - 2]).into_owned())
        .collect()
}

fn tskv_command_names(conn: &mut Frames) -> Vec<String> {
    elements(&conn.request(&["COMMAND", "LIST"]))
        .iter()
        .map(|bulk| {
            let text = String::from_utf8_lossy(bulk).into_owned();
            text.split("\r\n").nth(1).unwrap().to_string()
        })
        .collect()
}

fn compare_entries(protocol: &str) {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut theirs = Frames::connect(redis.port);
    let mut ours = Frames::connect(tskv.port());
    if protocol == "3" {
        theirs.request(&["HELLO", "3"]);
        ours.request(&["HELLO", "3"]);
    }
    let names = tskv_command_names(&mut ours);
    assert!(names.len() > 50, "{names:?}");
    let mut shared = 0;
    let mut subcommands = 0;
    for name in &names {
        let expected = elements(&theirs.request(&["COMMAND", "INFO", name]));
        let got = elements(&ours.request(&["COMMAND", "INFO", name]));
        assert_eq!(got.len(), 1);
        let ours_entry = elements(&got[0]);
        assert_eq!(ours_entry.len(), 10, "{name}: ten fields as Redis 7");
        if [&b"*-1"[..], b"$-1", b"_"]
            .iter()
            .any(|nil| expected[0].starts_with(nil))
        {
            assert!(name.starts_with("ts."), "{name} is unknown to Redis");
            continue;
        }
        shared += 1;
        let theirs_entry = elements(&expected[0]);
        for (field, what) in [
            (0, "name"),
            (1, "arity"),
            (3, "first key"),
            (4, "last key"),
            (5, "step"),
            (6, "ACL categories"),
            (8, "key specs"),
        ] {
            assert_eq!(
                String::from_utf8_lossy(&ours_entry[field]),
                String::from_utf8_lossy(&theirs_entry[field]),
                "RESP{protocol} COMMAND INFO {name}: {what}"
            );
        }
        let redis_flags = words(&theirs_entry[2]);
        for flag in words(&ours_entry[2]) {
            assert!(
                redis_flags.contains(&flag),
                "{name}: flag {flag} not Redis's"
            );
        }
        // Subcommands (where container commands keep their keys): each of ours must be
        // Redis's, found by name (Redis lists them in hash order).
        let theirs_subs: Vec<Vec<Vec<u8>>> = elements(&theirs_entry[9])
            .iter()
            .map(|e| elements(e))
            .collect();
        for ours_sub in elements(&ours_entry[9]).iter().map(|e| elements(e)) {
            subcommands += 1;
            let sub_name = String::from_utf8_lossy(&ours_sub[0]).into_owned();
            let theirs_sub = theirs_subs
                .iter()
                .find(|t| t[0] == ours_sub[0])
                .unwrap_or_else(|| panic!("{name}: Redis has no subcommand {sub_name:?}"));
            for field in [1, 3, 4, 5, 6, 8] {
                assert_eq!(
                    String::from_utf8_lossy(&ours_sub[field]),
                    String::from_utf8_lossy(&theirs_sub[field]),
                    "RESP{protocol} {sub_name:?} field {field}"
                );
            }
        }
    }
    assert!(shared > 40, "{shared} commands compared");
    assert!(subcommands >= 17, "{subcommands} subcommands compared");
}

#[test]
fn key_specs_match_redis_in_resp2() {
    compare_entries("2");
}

#[test]
fn key_specs_match_redis_in_resp3() {
    compare_entries("3");
}

#[test]
fn getkeys_and_errors_match_redis() {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut theirs = Frames::connect(redis.port);
    let mut ours = Frames::connect(tskv.port());
    let sequence: &[&[&str]] = &[
        &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
        &["COMMAND", "GETKEYS", "MSET", "a", "1", "b"],
        &["COMMAND", "GETKEYS", "DEL", "a", "b", "c"],
        &["COMMAND", "GETKEYS", "SET", "k", "v", "NX"],
        &["COMMAND", "GETKEYS", "get", "k"],
        &["COMMAND", "GETKEYS", "GETRANGE", "k", "0", "1"],
        &["COMMAND", "GETKEYS", "PING", "x"],
        &["COMMAND", "GETKEYS", "NOSUCH", "x"],
        &["COMMAND", "GETKEYS", "GET", "a", "b"],
        &["COMMAND", "GETKEYS", "GET"],
        &["COMMAND", "INFO", "nosuch", "get"],
        &["COMMAND", "GETKEYS", "OBJECT", "ENCODING", "k"],
        &["COMMAND", "GETKEYS", "object", "freq", "k"],
        &["COMMAND", "GETKEYS", "MEMORY", "USAGE", "k", "SAMPLES", "5"],
        &["COMMAND", "GETKEYS", "MEMORY", "DOCTOR"],
        &["COMMAND", "GETKEYS", "OBJECT", "NOSUCH", "k"],
        &["COMMAND", "GETKEYS", "OBJECT", "ENCODING", "k", "extra"],
        &["COMMAND", "COUNT", "x"],
        &["COMMAND", "LIST", "FILTERBY"],
        &["COMMAND", "NOSUCH"],
    ];
    for command in sequence {
        assert_eq!(
            String::from_utf8_lossy(&ours.request(command)),
            String::from_utf8_lossy(&theirs.request(command)),
            "{command:?}"
        );
    }
}

#[test]
fn time_series_commands_have_key_specs() {
    let tskv = TestServer::start(&["--shards", "2"]);
    let mut conn = Frames::connect(tskv.port());
    let entry = |conn: &mut Frames, name: &str| {
        let reply = conn.request(&["COMMAND", "INFO", name]);
        elements(&elements(&reply)[0])
    };
    let madd = entry(&mut conn, "ts.madd");
    assert_eq!(
        (&madd[3][..], &madd[4][..], &madd[5][..]),
        (&b":1\r\n"[..], &b":-1\r\n"[..], &b":3\r\n"[..])
    );
    assert_eq!(
        conn.request(&["COMMAND", "GETKEYS", "TS.MADD", "a", "1", "2", "b", "1", "2"]),
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    let range = entry(&mut conn, "ts.range");
    assert_eq!(elements(&range[8]).len(), 1, "one key spec");
    let mrange = entry(&mut conn, "ts.mrange");
    assert_eq!(mrange[3], b":0\r\n", "label-filtered commands name no key");
}

/// The value after `field` in a RESP3 map's raw elements (key, value, key, value, ...).
fn map_value(map: &[u8], field: &str) -> Option<String> {
    let items = elements(map);
    let key = format!("${}\r\n{field}\r\n", field.len()).into_bytes();
    let at = items.chunks(2).position(|kv| kv[0] == key)?;
    Some(String::from_utf8_lossy(&items[at * 2 + 1]).into_owned())
}

/// `COMMAND DOCS` (RESP3 and RESP2) gives each shared command Redis 7.0's summary, first
/// version, group and complexity, and a deprecated one's deprecation, byte for byte; every time-series command has all four
/// non-empty, with `module: timeseries`.
#[test]
fn docs_match_redis() {
    let redis = RedisServer::start();
    let tskv = TestServer::start(&["--shards", "2"]);
    for protocol in ["3", "2"] {
        let mut theirs = Frames::connect(redis.port);
        let mut ours = Frames::connect(tskv.port());
        if protocol == "3" {
            theirs.request(&["HELLO", "3"]);
            ours.request(&["HELLO", "3"]);
        }
        compare_docs(&mut theirs, &mut ours, protocol);
    }
}

const DOCS_FIELDS: [&str; 4] = ["summary", "since", "group", "complexity"];
/// Given by Redis 7.0 (and tskv) for a deprecated command only.
const DEPRECATION_FIELDS: [&str; 3] = ["doc_flags", "deprecated_since", "replaced_by"];

fn compare_docs(theirs: &mut Frames, ours: &mut Frames, protocol: &str) {
    let names = tskv_command_names(ours);
    let all = ours.request(&["COMMAND", "DOCS"]);
    assert_eq!(
        elements(&all).len(),
        names.len() * 2,
        "every command's docs"
    );
    let mut compared = 0;
    for name in names.iter().filter(|n| !n.starts_with("ts.")) {
        let doc = |conn: &mut Frames, field: &str| {
            let reply = conn.request(&["COMMAND", "DOCS", name]);
            let items = elements(&reply);
            assert_eq!(items.len(), 2, "{name}: one entry");
            map_value(&items[1], field).unwrap_or_else(|| panic!("{name}: no {field}"))
        };
        for field in DOCS_FIELDS {
            assert_eq!(
                doc(ours, field),
                doc(theirs, field),
                "COMMAND DOCS {name}: {field} (RESP{protocol})"
            );
        }
        let field = |conn: &mut Frames, field: &str| {
            let items = elements(&conn.request(&["COMMAND", "DOCS", name]));
            map_value(&items[1], field)
        };
        for deprecation in DEPRECATION_FIELDS {
            assert_eq!(
                field(ours, deprecation),
                field(theirs, deprecation),
                "COMMAND DOCS {name}: {deprecation} (RESP{protocol})"
            );
        }
        compared += 1;
    }
    assert!(compared > 60, "{compared} commands compared");
    for name in names.iter().filter(|n| n.starts_with("ts.")) {
        let entry = elements(&ours.request(&["COMMAND", "DOCS", name]));
        for field in DOCS_FIELDS {
            let value = map_value(&entry[1], field).unwrap_or_else(|| panic!("{name}: {field}"));
            assert!(!value.starts_with("$0\r\n"), "{name}: empty {field}");
        }
    }
    let ts = elements(&ours.request(&["COMMAND", "DOCS", "ts.add", "nosuch"]));
    assert_eq!(ts.len(), 2, "unknown names are left out, as Redis does");
    assert_eq!(
        map_value(&ts[1], "module").as_deref(),
        Some("$10\r\ntimeseries\r\n")
    );
    assert_eq!(
        map_value(&ts[1], "group").as_deref(),
        Some("$6\r\nmodule\r\n")
    );
}
