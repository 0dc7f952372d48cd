//! Goal: every command tskv implements answers as Redis does, replies and errors alike.
//!
//! Method: start the real server with two shards, so keys live on both, and round-trip each
//! command through the `redis` crate, comparing the exact reply values (`+OK` versus a bulk
//! string, nil versus an empty string) and the exact Redis wording of error replies. Replies
//! whose shape the crate would hide (QUIT closing the connection, HELLO's flat array) are read
//! with the harness's raw RESP reader.

mod common;

use common::{error_line, Reply, TestServer};
use redis::{Connection, RedisResult, Value};

fn start() -> TestServer {
    TestServer::start(&["--shards", "2"])
}

/// Sends one command and returns the reply, or the server's error as an `Err`.
fn q(con: &mut Connection, args: &[&[u8]]) -> RedisResult<Value> {
    let (name, rest) = args.split_first().expect("a command");
    let mut cmd = redis::cmd(std::str::from_utf8(name).expect("ASCII command name"));
    for arg in rest {
        cmd.arg(*arg);
    }
    cmd.query(con)
}

/// Like [`q`] but for arguments that are all text.
fn qs(con: &mut Connection, args: &[&str]) -> RedisResult<Value> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    q(con, &args)
}

/// The reply of a command that must succeed.
fn ok(con: &mut Connection, args: &[&str]) -> Value {
    qs(con, args).unwrap_or_else(|e| panic!("{args:?} failed: {e:?}"))
}

/// The error line of a command that must fail.
fn err(con: &mut Connection, args: &[&str]) -> String {
    match qs(con, args) {
        Ok(v) => panic!("{args:?} should have failed, got {v:?}"),
        Err(e) => error_line(&e),
    }
}

fn bulk(s: impl AsRef<[u8]>) -> Value {
    Value::BulkString(s.as_ref().to_vec())
}

fn status(s: &str) -> Value {
    Value::SimpleString(s.into())
}

fn wrong_args(cmd: &str) -> String {
    format!("ERR wrong number of arguments for '{cmd}' command")
}

#[test]
fn ping_echo_quit() {
    let server = start();
    let mut con = server.conn();
    assert_eq!(ok(&mut con, &["PING"]), status("PONG"));
    assert_eq!(ok(&mut con, &["PING", "hello there"]), bulk("hello there"));
    assert_eq!(
        ok(&mut con, &["ping"]),
        status("PONG"),
        "command names are case-insensitive"
    );
    assert_eq!(err(&mut con, &["PING", "a", "b"]), wrong_args("ping"));

    let binary: &[u8] = b"bin\0ary\r\nwith CRLF \xff";
    assert_eq!(q(&mut con, &[b"ECHO", binary]).unwrap(), bulk(binary));
    assert_eq!(ok(&mut con, &["ECHO", ""]), bulk(""));
    assert_eq!(err(&mut con, &["ECHO"]), wrong_args("echo"));
    assert_eq!(err(&mut con, &["ECHO", "a", "b"]), wrong_args("echo"));

    // QUIT answers +OK and then the server closes the connection.
    let mut raw = server.raw();
    raw.send(b"*1\r\n$4\r\nQUIT\r\n").unwrap();
    assert_eq!(raw.reply(), Reply::ok());
    assert_eq!(
        raw.replies_until_closed(),
        vec![],
        "nothing after QUIT's +OK"
    );
    assert_eq!(
        ok(&mut con, &["PING"]),
        status("PONG"),
        "other connections unaffected"
    );
}

#[test]
fn hello_select_client() {
    let server = start();
    let mut raw = server.raw();

    // HELLO 2 answers like Redis in RESP2: a flat array of field, value pairs.
    let Reply::Array(fields) = raw.request(&["HELLO", "2"]) else {
        panic!("HELLO 2 should answer an array");
    };
    assert_eq!(
        fields.len() % 2,
        0,
        "HELLO 2 answers field/value pairs: {fields:?}"
    );
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|pair| pair[0] == Reply::bulk(name))
            .map(|pair| pair[1].clone())
    };
    assert!(
        field("server").is_some(),
        "HELLO 2 has a 'server' field: {fields:?}"
    );
    assert_eq!(
        field("proto"),
        Some(Reply::Int(2)),
        "HELLO 2 reports proto 2: {fields:?}"
    );

    // Versions other than 2 and 3 are refused with Redis 7.0's text (RESP3 itself is
    // covered by server_resp3.rs).
    let Reply::Error(e) = raw.request(&["HELLO", "4"]) else {
        panic!("HELLO 4 must be refused");
    };
    assert_eq!(e, "NOPROTO unsupported protocol version");
    assert_eq!(
        raw.request(&["PING"]),
        Reply::Status("PONG".into()),
        "still RESP2 after HELLO 4"
    );

    let mut con = server.conn();
    assert_eq!(ok(&mut con, &["SELECT", "0"]), Value::Okay);
    let e = err(&mut con, &["SELECT", "1"]);
    assert!(
        e.starts_with("ERR "),
        "SELECT 1 is refused with an ERR: {e:?}"
    );
    assert_eq!(err(&mut con, &["SELECT"]), wrong_args("select"));

    assert_eq!(
        ok(&mut con, &["CLIENT", "GETNAME"]),
        Value::Nil,
        "no name yet"
    );
    assert_eq!(ok(&mut con, &["CLIENT", "SETNAME", "tester"]), Value::Okay);
    assert_eq!(ok(&mut con, &["CLIENT", "GETNAME"]), bulk("tester"));
    assert_eq!(
        ok(&mut con, &["CLIENT", "SETINFO", "LIB-NAME", "tskv-tests"]),
        Value::Okay
    );
    assert_eq!(
        ok(&mut con, &["CLIENT", "SETINFO", "LIB-VER", "1.2.3"]),
        Value::Okay
    );

    let Value::Int(id1) = ok(&mut con, &["CLIENT", "ID"]) else {
        panic!("CLIENT ID answers an integer");
    };
    let mut other = server.conn();
    let Value::Int(id2) = ok(&mut other, &["CLIENT", "ID"]) else {
        panic!("CLIENT ID answers an integer");
    };
    assert!(id1 > 0 && id2 > 0, "client ids are positive: {id1}, {id2}");
    assert_ne!(id1, id2, "two connections have different ids");
    assert_eq!(
        ok(&mut other, &["CLIENT", "GETNAME"]),
        Value::Nil,
        "names are per connection"
    );
}

#[test]
fn command_and_config() {
    let server = start();
    let mut con = server.conn();

    let Value::Int(count) = ok(&mut con, &["COMMAND", "COUNT"]) else {
        panic!("COMMAND COUNT answers an integer");
    };
    let Value::Array(entries) = ok(&mut con, &["COMMAND"]) else {
        panic!("COMMAND answers an array");
    };
    assert_eq!(
        entries.len() as i64,
        count,
        "COMMAND COUNT matches COMMAND's length"
    );
    let mut names = Vec::new();
    for entry in &entries {
        let Value::Array(fields) = entry else {
            panic!("each COMMAND entry is an array: {entry:?}");
        };
        let (Some(Value::BulkString(name)), Some(Value::Int(_arity))) =
            (fields.first(), fields.get(1))
        else {
            panic!("a COMMAND entry starts with name and arity: {entry:?}");
        };
        names.push(String::from_utf8_lossy(name).to_lowercase());
    }
    for expected in [
        "ping", "echo", "quit", "hello", "select", "client", "command", "config", "set", "get",
        "del", "exists", "mget", "mset", "dbsize", "info", "shutdown",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "COMMAND lists {expected}: {names:?}"
        );
    }
    assert!(
        matches!(ok(&mut con, &["COMMAND", "DOCS"]), Value::Array(_)),
        "COMMAND DOCS answers an array (redis-cli asks for it on connect)"
    );

    // redis-benchmark reads these two at start-up.
    let Value::Array(save) = ok(&mut con, &["CONFIG", "GET", "save"]) else {
        panic!("CONFIG GET answers an array");
    };
    assert_eq!(
        save.len(),
        2,
        "CONFIG GET save answers [name, value]: {save:?}"
    );
    assert_eq!(save[0], bulk("save"));
    assert!(
        matches!(save[1], Value::BulkString(_)),
        "save's value is a bulk string: {save:?}"
    );
    let Value::Array(aof) = ok(&mut con, &["CONFIG", "GET", "appendonly"]) else {
        panic!("CONFIG GET answers an array");
    };
    assert_eq!(
        aof.len(),
        2,
        "CONFIG GET appendonly answers [name, value]: {aof:?}"
    );
    assert_eq!(aof[0], bulk("appendonly"));
    assert!(
        aof[1] == bulk("yes") || aof[1] == bulk("no"),
        "appendonly is yes or no: {aof:?}"
    );
}

#[test]
fn set_get_nx_xx() {
    let server = start();
    let mut con = server.conn();

    assert_eq!(ok(&mut con, &["GET", "k"]), Value::Nil, "missing key");
    assert_eq!(ok(&mut con, &["SET", "k", "v1"]), Value::Okay);
    assert_eq!(ok(&mut con, &["GET", "k"]), bulk("v1"));
    assert_eq!(ok(&mut con, &["SET", "k", "v2"]), Value::Okay, "overwrite");
    assert_eq!(ok(&mut con, &["GET", "k"]), bulk("v2"));

    assert_eq!(
        ok(&mut con, &["SET", "k", "v3", "NX"]),
        Value::Nil,
        "NX on an existing key"
    );
    assert_eq!(
        ok(&mut con, &["GET", "k"]),
        bulk("v2"),
        "NX left the value alone"
    );
    assert_eq!(
        ok(&mut con, &["SET", "k", "v4", "XX"]),
        Value::Okay,
        "XX on an existing key"
    );
    assert_eq!(ok(&mut con, &["GET", "k"]), bulk("v4"));
    assert_eq!(
        ok(&mut con, &["SET", "fresh", "f1", "nx"]),
        Value::Okay,
        "NX on a missing key"
    );
    assert_eq!(ok(&mut con, &["GET", "fresh"]), bulk("f1"));
    assert_eq!(
        ok(&mut con, &["SET", "absent", "a", "XX"]),
        Value::Nil,
        "XX on a missing key"
    );
    assert_eq!(
        ok(&mut con, &["GET", "absent"]),
        Value::Nil,
        "XX did not create the key"
    );

    // A deleted key is missing for NX and XX alike.
    assert_eq!(ok(&mut con, &["DEL", "fresh"]), Value::Int(1));
    assert_eq!(ok(&mut con, &["SET", "fresh", "f2", "XX"]), Value::Nil);
    assert_eq!(ok(&mut con, &["SET", "fresh", "f3", "NX"]), Value::Okay);
    assert_eq!(ok(&mut con, &["GET", "fresh"]), bulk("f3"));

    assert_eq!(
        err(&mut con, &["SET", "k", "v", "NX", "XX"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut con, &["SET", "k", "v", "BOGUS"]),
        "ERR syntax error"
    );
    assert_eq!(
        ok(&mut con, &["GET", "k"]),
        bulk("v4"),
        "a refused SET changes nothing"
    );
    assert_eq!(err(&mut con, &["SET", "k"]), wrong_args("set"));
    assert_eq!(err(&mut con, &["GET"]), wrong_args("get"));
    assert_eq!(err(&mut con, &["GET", "a", "b"]), wrong_args("get"));

    // Keys and values are binary-safe; empty and large values round-trip.
    let key: &[u8] = b"key\0with\r\nbytes\xff";
    let value: &[u8] = b"\0\r\n\xfe value";
    assert_eq!(q(&mut con, &[b"SET", key, value]).unwrap(), Value::Okay);
    assert_eq!(q(&mut con, &[b"GET", key]).unwrap(), bulk(value));
    assert_eq!(ok(&mut con, &["SET", "empty", ""]), Value::Okay);
    assert_eq!(
        ok(&mut con, &["GET", "empty"]),
        bulk(""),
        "empty string, not nil"
    );
    let big: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    assert_eq!(q(&mut con, &[b"SET", b"big", &big]).unwrap(), Value::Okay);
    assert_eq!(
        q(&mut con, &[b"GET", b"big"]).unwrap(),
        bulk(&big),
        "1 MiB value"
    );
}

#[test]
fn del_exists_counts() {
    let server = start();
    let mut con = server.conn();

    ok(&mut con, &["SET", "a", "1"]);
    ok(&mut con, &["SET", "b", "2"]);
    assert_eq!(ok(&mut con, &["EXISTS", "a"]), Value::Int(1));
    assert_eq!(
        ok(&mut con, &["EXISTS", "a", "a", "b", "missing"]),
        Value::Int(3),
        "repeats count"
    );
    assert_eq!(
        ok(&mut con, &["DEL", "a", "a", "b", "missing"]),
        Value::Int(2),
        "each key deleted once"
    );
    assert_eq!(ok(&mut con, &["EXISTS", "a", "b"]), Value::Int(0));
    assert_eq!(
        ok(&mut con, &["DEL", "a"]),
        Value::Int(0),
        "deleting a deleted key"
    );
    assert_eq!(ok(&mut con, &["GET", "a"]), Value::Nil);

    // Many keys, so both shards hold some of them.
    let keys: Vec<String> = (0..64).map(|i| format!("many:{i}")).collect();
    for key in &keys {
        ok(&mut con, &["SET", key, "x"]);
    }
    let mut args: Vec<&str> = vec!["EXISTS"];
    args.extend(keys.iter().map(String::as_str));
    args.extend(keys.iter().take(10).map(String::as_str));
    args.push("many:missing");
    assert_eq!(
        ok(&mut con, &args),
        Value::Int(74),
        "EXISTS across shards counts repeats"
    );
    args[0] = "DEL";
    assert_eq!(
        ok(&mut con, &args),
        Value::Int(64),
        "DEL across shards counts each key once"
    );
    args[0] = "EXISTS";
    assert_eq!(ok(&mut con, &args), Value::Int(0));

    assert_eq!(err(&mut con, &["DEL"]), wrong_args("del"));
    assert_eq!(err(&mut con, &["EXISTS"]), wrong_args("exists"));
}

#[test]
fn mget_mset() {
    let server = start();
    let mut con = server.conn();

    let mut mset: Vec<String> = vec!["MSET".into()];
    for i in 0..40 {
        mset.push(format!("m:{i}"));
        mset.push(format!("v{i}"));
    }
    let mset: Vec<&str> = mset.iter().map(String::as_str).collect();
    assert_eq!(ok(&mut con, &mset), Value::Okay);
    assert_eq!(
        ok(
            &mut con,
            &["MGET", "m:1", "m:missing", "m:2", "m:1", "m:39"]
        ),
        Value::Array(vec![
            bulk("v1"),
            Value::Nil,
            bulk("v2"),
            bulk("v1"),
            bulk("v39")
        ]),
        "MGET keeps order and repeats, nil for missing keys"
    );
    let mut mget: Vec<String> = vec!["MGET".into()];
    mget.extend((0..40).map(|i| format!("m:{i}")));
    let mget: Vec<&str> = mget.iter().map(String::as_str).collect();
    let expected: Vec<Value> = (0..40).map(|i| bulk(format!("v{i}"))).collect();
    assert_eq!(
        ok(&mut con, &mget),
        Value::Array(expected),
        "MGET across shards"
    );
    assert_eq!(
        ok(&mut con, &["MGET", "nope"]),
        Value::Array(vec![Value::Nil])
    );

    assert_eq!(
        ok(&mut con, &["MSET", "dup", "first", "dup", "second"]),
        Value::Okay
    );
    assert_eq!(
        ok(&mut con, &["GET", "dup"]),
        bulk("second"),
        "MSET: the last of a repeated key wins"
    );

    assert_eq!(err(&mut con, &["MSET"]), wrong_args("mset"));
    assert_eq!(err(&mut con, &["MSET", "k"]), wrong_args("mset"));
    assert_eq!(err(&mut con, &["MSET", "k", "v", "k2"]), wrong_args("mset"));
    assert_eq!(
        ok(&mut con, &["EXISTS", "k", "k2"]),
        Value::Int(0),
        "a refused MSET writes nothing"
    );
    assert_eq!(err(&mut con, &["MGET"]), wrong_args("mget"));
}

#[test]
fn dbsize_counts_live_keys() {
    let server = start();
    let mut con = server.conn();

    assert_eq!(ok(&mut con, &["DBSIZE"]), Value::Int(0), "fresh server");
    for i in 0..100 {
        ok(&mut con, &["SET", &format!("d:{i}"), "x"]);
    }
    assert_eq!(ok(&mut con, &["DBSIZE"]), Value::Int(100));
    for i in 0..100 {
        ok(&mut con, &["SET", &format!("d:{i}"), "y"]);
    }
    assert_eq!(
        ok(&mut con, &["DBSIZE"]),
        Value::Int(100),
        "overwrites add no keys"
    );
    for i in 0..10 {
        ok(&mut con, &["DEL", &format!("d:{i}")]);
    }
    assert_eq!(
        ok(&mut con, &["DBSIZE"]),
        Value::Int(90),
        "deletes remove keys"
    );
    ok(&mut con, &["SET", "d:0", "back"]);
    assert_eq!(
        ok(&mut con, &["DBSIZE"]),
        Value::Int(91),
        "a deleted key written again"
    );
    let mut other = server.conn();
    assert_eq!(
        ok(&mut other, &["DBSIZE"]),
        Value::Int(91),
        "same count on another connection"
    );
    assert_eq!(err(&mut con, &["DBSIZE", "x"]), wrong_args("dbsize"));
}

#[test]
fn info_sections() {
    let server = start();
    // Raw connections, so the only commands counted are ours.
    for i in 0..3 {
        let mut raw = server.raw();
        assert_eq!(raw.request(&["SET", &format!("i:{i}"), "v"]), Reply::ok());
    }
    let mut raw = server.raw();
    assert_eq!(raw.request(&["GET", "i:0"]), Reply::bulk("v"));
    assert_eq!(raw.request(&["GET", "i:9"]), Reply::Nil);

    let info = |raw: &mut common::RawConn, args: &[&str]| -> String {
        match raw.request(args) {
            Reply::Bulk(b) => String::from_utf8(b).expect("INFO is text"),
            other => panic!("{args:?} answers a bulk string, got {other:?}"),
        }
    };
    let field = |text: &str, name: &str| -> Option<String> {
        text.lines().find_map(|l| {
            l.trim_end_matches('\r')
                .strip_prefix(&format!("{name}:"))
                .map(str::to_string)
        })
    };

    let all = info(&mut raw, &["INFO"]);
    for header in ["# Server", "# Clients", "# Persistence", "# Stats"] {
        assert!(all.contains(header), "INFO has section {header}:\n{all}");
    }

    let server_section = info(&mut raw, &["INFO", "server"]);
    assert!(
        server_section.contains("# Server"),
        "INFO server:\n{server_section}"
    );
    assert!(
        !server_section.contains("# Clients"),
        "INFO server holds only that section:\n{server_section}"
    );
    assert_eq!(
        field(&server_section, "tcp_port"),
        Some(server.port().to_string()),
        "tcp_port"
    );
    assert_eq!(
        field(&server_section, "process_id"),
        Some(server.pid().to_string()),
        "process_id"
    );

    let clients = info(&mut raw, &["INFO", "clients"]);
    let connected: u64 = field(&clients, "connected_clients")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO clients has connected_clients:\n{clients}"));
    assert!(
        connected >= 1,
        "at least this connection is connected:\n{clients}"
    );

    let persistence = info(&mut raw, &["INFO", "persistence"]);
    assert!(
        persistence.contains("# Persistence"),
        "INFO persistence:\n{persistence}"
    );

    let stats = info(&mut raw, &["INFO", "stats"]);
    assert!(stats.contains("# Stats"), "INFO stats:\n{stats}");
    assert!(
        field(&stats, "total_commands_processed")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some(),
        "INFO stats has total_commands_processed:\n{stats}"
    );
    let calls = |name: &str| -> Option<u64> {
        let value = field(&stats, &format!("cmdstat_{name}"))?;
        value
            .split(',')
            .find_map(|kv| kv.strip_prefix("calls=")?.parse().ok())
    };
    assert_eq!(
        calls("set"),
        Some(3),
        "cmdstat_set counts the SETs of all connections:\n{stats}"
    );
    assert_eq!(
        calls("get"),
        Some(2),
        "cmdstat_get counts the GETs:\n{stats}"
    );
}

#[test]
fn error_replies() {
    let server = start();
    let mut con = server.conn();
    assert_eq!(
        err(&mut con, &["FOO", "a"]),
        "ERR unknown command 'FOO', with args beginning with: 'a' "
    );
    assert_eq!(
        err(&mut con, &["FOO", "a", "b c"]),
        "ERR unknown command 'FOO', with args beginning with: 'a' 'b c' "
    );
    assert_eq!(
        err(&mut con, &["FOO"]),
        "ERR unknown command 'FOO', with args beginning with: "
    );
    assert_eq!(err(&mut con, &["GET"]), wrong_args("get"));
    assert_eq!(
        err(&mut con, &["gEt"]),
        wrong_args("get"),
        "command name lower-cased in the error"
    );
    assert_eq!(
        ok(&mut con, &["PING"]),
        status("PONG"),
        "errors leave the connection usable"
    );
}
