//! Goal: a request is parsed the same however TCP splits it: byte by byte, in the middle of a
//! header, a CRLF or a large bulk string.
//!
//! Method: start the server with two shards; send a pipeline of multibulk and inline requests
//! one byte per write (with TCP_NODELAY, so most bytes arrive in their own segment), then a
//! 1 MiB SET in 997-byte pieces (an odd size, so the cuts fall everywhere), and compare every
//! reply with the one the same request gets when sent whole.

mod common;

use std::io::Write;
use std::thread;

use common::{encode, Reply, TestServer};

#[test]
fn requests_split_at_every_byte() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for i in 0..20 {
        let key = format!("frag:{i}");
        let value = format!("value {i} with spaces");
        wire.extend_from_slice(&encode(&["SET", &key, &value]));
        expected.push(Reply::ok());
        wire.extend_from_slice(&encode(&["GET", &key]));
        expected.push(Reply::bulk(&value));
        wire.extend_from_slice(format!("ECHO \"inline {i}\"\r\n").as_bytes());
        expected.push(Reply::bulk(format!("inline {i}")));
    }
    wire.extend_from_slice(b"PING\n");
    expected.push(Reply::Status("PONG".into()));
    wire.extend_from_slice(&encode(&["MGET", "frag:0", "frag:missing", "frag:19"]));
    expected.push(Reply::Array(vec![
        Reply::bulk("value 0 with spaces"),
        Reply::Nil,
        Reply::bulk("value 19 with spaces"),
    ]));

    let mut raw = server.raw();
    let mut writer = raw.writer_clone();
    let sender = thread::spawn(move || -> std::io::Result<()> {
        for byte in wire {
            writer.write_all(&[byte])?;
        }
        Ok(())
    });
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&raw.reply(), want, "reply {i}");
    }
    sender.join().unwrap().expect("send byte by byte");
}

#[test]
fn large_bulk_string_in_odd_pieces() {
    let server = TestServer::start(&["--shards", "2"]);
    let value: Vec<u8> = (0..(1 << 20)).map(|i| (i * 7 % 256) as u8).collect();
    let mut wire = encode(&[b"SET".as_slice(), b"frag:big", &value]);
    wire.extend_from_slice(&encode(&["GET", "frag:big"]));

    let mut raw = server.raw();
    let mut writer = raw.writer_clone();
    let sender = thread::spawn(move || -> std::io::Result<()> {
        for piece in wire.chunks(997) {
            writer.write_all(piece)?;
            writer.flush()?;
        }
        Ok(())
    });
    assert_eq!(raw.reply(), Reply::ok(), "SET of 1 MiB in 997-byte pieces");
    assert_eq!(
        raw.reply(),
        Reply::Bulk(value.clone()),
        "GET returns every byte"
    );
    sender.join().unwrap().expect("send in pieces");
    assert_eq!(
        server.raw().request(&["GET", "frag:big"]),
        Reply::Bulk(value),
        "from another connection"
    );
}
