//! Goal: the `INFO` fields tools read (`redis-cli --stat`: `db0:keys`, `used_memory`,
//! `connected_clients`, `blocked_clients`, `total_commands_processed`,
//! `total_connections_received`) hold real numbers, and `CLIENT LIST` / `CLIENT INFO` have
//! Redis 7.0's format and list the clients of every shard.
//!
//! Method: a tskv-server with two shards; keys written and deleted across both shards,
//! then `INFO` read as `redis-cli --stat` reads it (its `getInfoField`: the first
//! occurrence of the name, one separator skipped, up to `,` or CR). Several named
//! connections (accepted by either shard), then `CLIENT LIST` must show each with its
//! name and last command, sorted by id, with the same field names in the same order as a
//! real `redis-server`'s `CLIENT INFO`.

mod common;

use common::redis_server::RedisServer;
use common::{Reply, TestServer};

/// `redis-cli`'s `getInfoField`: the value after the first `field` and one separator.
fn info_field<'t>(info: &'t str, field: &str) -> Option<&'t str> {
    let at = info.find(field)? + field.len() + 1;
    let rest = &info[at..];
    let end = rest.find([',', '\r']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn info(raw: &mut common::RawConn, section: Option<&str>) -> String {
    let mut args = vec!["INFO"];
    args.extend(section);
    let Reply::Bulk(text) = raw.request(&args) else {
        panic!("INFO is a bulk string in RESP2");
    };
    String::from_utf8(text).unwrap()
}

#[test]
fn info_has_the_numbers_redis_cli_stat_reads() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut raw = server.raw();
    let _second = server.raw();
    let empty = info(&mut raw, Some("keyspace"));
    assert_eq!(
        empty, "# Keyspace\r\n",
        "an empty database has no db0 line, as Redis"
    );

    for i in 0..30 {
        assert_eq!(raw.request(&["SET", &format!("key:{i}"), "v"]), Reply::ok());
    }
    for i in 0..10 {
        assert_eq!(raw.request(&["DEL", &format!("key:{i}")]), Reply::Int(1));
    }
    let text = info(&mut raw, None);
    assert!(
        text.ends_with("# Keyspace\r\ndb0:keys=20,expires=0,avg_ttl=0\r\n"),
        "keyspace is last, as in Redis: {text}"
    );
    let number = |field: &str| -> u64 {
        info_field(&text, field)
            .unwrap_or_else(|| panic!("no {field} in {text}"))
            .parse()
            .unwrap_or_else(|e| panic!("{field}: {e} in {text}"))
    };
    assert_eq!(number("db0:keys"), 20);
    assert!(
        number("used_memory") > 1 << 20,
        "a running server uses over 1 MiB"
    );
    assert_eq!(number("connected_clients"), 2);
    assert_eq!(number("blocked_clients"), 0);
    assert!(number("total_commands_processed") >= 41);
    assert!(number("total_connections_received") >= 2);
    let human = info_field(&text, "used_memory_human").unwrap();
    assert!(human.ends_with(['K', 'M', 'G']), "{human}");
    // Sections named alone.
    let memory = info(&mut raw, Some("memory"));
    assert!(memory.starts_with("# Memory\r\nused_memory:"), "{memory}");
    assert!(!memory.contains("Keyspace"), "{memory}");
}

fn fields(line: &str) -> Vec<(&str, &str)> {
    line.trim_end()
        .split(' ')
        .map(|pair| {
            pair.split_once('=')
                .unwrap_or_else(|| panic!("{pair} in {line}"))
        })
        .collect()
}

fn client_info(raw: &mut common::RawConn) -> String {
    let Reply::Bulk(text) = raw.request(&["CLIENT", "INFO"]) else {
        panic!("CLIENT INFO is a bulk string in RESP2");
    };
    String::from_utf8(text).unwrap()
}

#[test]
fn client_list_shows_every_shard_s_clients_in_redis_format() {
    let redis = RedisServer::start();
    let mut theirs = common::RawConn::connect(([127, 0, 0, 1], redis.port).into());
    let redis_line = client_info(&mut theirs);
    let redis_names: Vec<&str> = fields(&redis_line).iter().map(|(k, _)| *k).collect();

    let server = TestServer::start(&["--shards", "2"]);
    let mut conns: Vec<common::RawConn> = (0..8).map(|_| server.raw()).collect();
    let mut ids = Vec::new();
    for (i, conn) in conns.iter_mut().enumerate() {
        let Reply::Int(id) = conn.request(&["CLIENT", "ID"]) else {
            panic!("CLIENT ID is an integer");
        };
        ids.push(id);
        assert_eq!(
            conn.request(&["CLIENT", "SETNAME", &format!("c{i}")]),
            Reply::ok()
        );
        assert_eq!(conn.request(&["GET", "k"]), Reply::Nil);
    }

    let own = client_info(&mut conns[0]);
    let own_fields = fields(&own);
    let names: Vec<&str> = own_fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, redis_names, "CLIENT INFO fields as Redis 7.0");
    assert!(own.ends_with('\n'));
    let field = |fields: &[(&str, &str)], name: &str| -> String {
        fields
            .iter()
            .find(|(k, _)| *k == name)
            .unwrap()
            .1
            .to_owned()
    };
    assert_eq!(field(&own_fields, "id"), ids[0].to_string());
    assert_eq!(field(&own_fields, "name"), "c0");
    assert_eq!(field(&own_fields, "cmd"), "client|info");
    assert_eq!(field(&own_fields, "resp"), "2");
    assert_eq!(field(&own_fields, "laddr"), server.addr().to_string());

    let Reply::Bulk(list) = conns[0].request(&["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST is a bulk string in RESP2");
    };
    let list = String::from_utf8(list).unwrap();
    let lines: Vec<Vec<(&str, &str)>> = list.lines().map(fields).collect();
    let listed: Vec<i64> = lines
        .iter()
        .map(|f| field(f, "id").parse().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(listed, sorted, "every client of both shards, by id: {list}");
    for (line, id) in lines.iter().zip(&listed) {
        let i = ids.iter().position(|x| x == id).unwrap();
        assert_eq!(field(line, "name"), format!("c{i}"));
        let cmd = if i == 0 { "client|list" } else { "get" };
        assert_eq!(field(line, "cmd"), cmd, "{list}");
    }
    assert_eq!(
        conns[0].request(&["CLIENT", "LIST", "TYPE", "pubsub"]),
        Reply::bulk("")
    );
}
