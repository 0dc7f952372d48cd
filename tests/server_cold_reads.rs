//! Goal: reads of keys whose SSTable blocks are not in memory go through the shard's ring
//! without blocking it, and a pipelined connection still sees exactly its own order:
//! a GET that waits for a block read is never overtaken by the SET, DEL or conditional SET
//! after it, on its own shard or through another shard.
//!
//! Method: `--shards 2 --memtable-bytes 65536 --block-cache-bytes 65536`, then 20,000 keys
//! of 200 bytes (about 4 MB, so nearly every block is cold). On one connection, pipeline
//! for 2,000 shuffled keys the sequence GET, SET, GET, DEL, EXISTS, GET, SET NX, GET, and an
//! MGET of the key with a neighbour that may live on the other shard, all written before any
//! reply is read; compare every reply with a model. `INFO persistence` must show block
//! reads submitted through the ring (`block_reads_async`), so the path was exercised.

mod common;

use std::collections::HashMap;
use std::io::Write;

use common::{encode, test_seed, Reply, TestServer};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

const KEYS: usize = 20_000;
const CHECKED: usize = 2_000;

fn key(i: usize) -> String {
    format!("cold:{i:06}")
}

#[test]
fn pipelined_requests_on_cold_keys_keep_their_order() {
    let server = TestServer::start(&[
        "--shards",
        "2",
        "--memtable-bytes",
        "65536",
        "--block-cache-bytes",
        "65536",
    ]);
    let mut raw = server.raw();
    let mut model: HashMap<String, String> = HashMap::new();
    let mut load = Vec::new();
    for i in 0..KEYS {
        let value = format!("{i:06}-").repeat(28);
        load.extend(encode(&["SET", &key(i), &value]));
        model.insert(key(i), value);
    }
    let mut writer = raw.writer_clone();
    let sender = std::thread::spawn(move || writer.write_all(&load).unwrap());
    for _ in 0..KEYS {
        assert_eq!(raw.reply(), Reply::ok());
    }
    sender.join().unwrap();
    let reads_before = raw.persistence_number("block_reads_async");

    let mut order: Vec<usize> = (0..KEYS).collect();
    order.shuffle(&mut StdRng::seed_from_u64(test_seed()));
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    let bulk = |v: Option<&String>| v.map_or(Reply::Nil, Reply::bulk);
    for &i in &order[..CHECKED] {
        let k = key(i);
        let neighbour = key((i + 1) % KEYS);
        let v1 = format!("new-{i}");
        let v2 = format!("nx-{i}");
        let steps: Vec<(Vec<String>, Reply)> = vec![
            (vec!["GET".into(), k.clone()], bulk(model.get(&k))),
            (vec!["SET".into(), k.clone(), v1.clone()], Reply::ok()),
            (vec!["GET".into(), k.clone()], Reply::bulk(&v1)),
            (vec!["DEL".into(), k.clone()], Reply::Int(1)),
            (vec!["EXISTS".into(), k.clone()], Reply::Int(0)),
            (vec!["GET".into(), k.clone()], Reply::Nil),
            (
                vec!["SET".into(), k.clone(), v2.clone(), "NX".into()],
                Reply::ok(),
            ),
            (vec!["GET".into(), k.clone()], Reply::bulk(&v2)),
        ];
        for (args, reply) in steps {
            requests.extend(encode(&args));
            expected.push(reply);
        }
        model.insert(k.clone(), v2.clone());
        requests.extend(encode(&["MGET", &k, &neighbour]));
        expected.push(Reply::Array(vec![
            Reply::bulk(&v2),
            bulk(model.get(&neighbour)),
        ]));
    }
    let mut writer = raw.writer_clone();
    let sender = std::thread::spawn(move || writer.write_all(&requests).unwrap());
    for (n, want) in expected.iter().enumerate() {
        let got = raw.reply();
        assert!(got == *want, "reply {n}: got {got:?}, want {want:?}");
    }
    sender.join().unwrap();

    let reads = raw.persistence_number("block_reads_async") - reads_before;
    eprintln!("block reads through the ring: {reads}");
    assert!(
        reads > 100,
        "cold lookups went through the ring ({reads} reads)"
    );
}
