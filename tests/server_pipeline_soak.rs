//! Goal: many connections pipelining batches of mixed sizes through memtable flushes and
//! cross-shard hops all get every reply, with the right content, without ever sending a
//! byte more than their requests.
//!
//! Method: `--shards 2` (so most multi-key requests hop to the other shard), a 128 KiB
//! memtable (so flushes run all the time and write stalls park connections), and a read
//! budget of 2 per iteration (so budgets run out often). Eight client threads each own a
//! key prefix and send 16 batches of random size (1 to 3,000 requests) mixing SET, GET,
//! MGET and DEL over their own keys, written whole before reading. Each thread keeps a model
//! of its keys and checks every reply against it. The run is bounded by its request count;
//! a reply that does not come within the read timeout fails the test.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::thread;
use std::time::Duration;

use common::{encode, test_seed, Reply, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CLIENTS: usize = 8;
const BATCHES_PER_CLIENT: usize = 16;
const BATCH_REQUESTS_MAX: usize = 3000;
const KEYS_PER_CLIENT: usize = 500;
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

fn client(server_addr: std::net::SocketAddr, client_index: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ client_index as u64);
    let mut raw = common::RawConn::connect(server_addr);
    let mut model: HashMap<String, Vec<u8>> = HashMap::new();
    let key = |i: usize| format!("c{client_index}:key:{i}");
    for batch_index in 0..BATCHES_PER_CLIENT {
        let count = rng.gen_range(1..=BATCH_REQUESTS_MAX);
        let mut bytes = Vec::new();
        let mut expected = Vec::with_capacity(count);
        for _ in 0..count {
            let k = key(rng.gen_range(0..KEYS_PER_CLIENT));
            match rng.gen_range(0..10) {
                0..=4 => {
                    let len = rng.gen_range(1..400);
                    let value: Vec<u8> = (0..len).map(|_| rng.gen_range(b'a'..=b'z')).collect();
                    bytes.extend(encode(&[b"SET".as_slice(), k.as_bytes(), &value]));
                    model.insert(k, value);
                    expected.push(Reply::ok());
                }
                5..=7 => {
                    bytes.extend(encode(&["GET", &k]));
                    expected.push(model.get(&k).map_or(Reply::Nil, |v| Reply::Bulk(v.clone())));
                }
                8 => {
                    let others: Vec<String> = (0..4)
                        .map(|_| key(rng.gen_range(0..KEYS_PER_CLIENT)))
                        .collect();
                    let mut args = vec!["MGET".to_string(), k.clone()];
                    args.extend(others.iter().cloned());
                    bytes.extend(encode(&args));
                    expected.push(Reply::Array(
                        args[1..]
                            .iter()
                            .map(|k| model.get(k).map_or(Reply::Nil, |v| Reply::Bulk(v.clone())))
                            .collect(),
                    ));
                }
                _ => {
                    bytes.extend(encode(&["DEL", &k]));
                    let existed = model.remove(&k).is_some();
                    expected.push(Reply::Int(i64::from(existed)));
                }
            }
        }
        let mut writer = raw.writer_clone();
        writer
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("read timeout");
        thread::scope(|scope| {
            scope.spawn(move || writer.write_all(&bytes).expect("write batch"));
            for (i, want) in expected.iter().enumerate() {
                let got = match raw.try_reply() {
                    Ok(Some(reply)) => reply,
                    Ok(None) => panic!("client {client_index} batch {batch_index}: closed after {i} of {count} replies"),
                    Err(e) => panic!(
                        "client {client_index} batch {batch_index}: stalled after {i} of {count} replies ({e})"
                    ),
                };
                assert!(
                    got == *want,
                    "client {client_index} batch {batch_index} reply {i}: got {got:?}, want {want:?}"
                );
            }
        });
    }
}

#[test]
fn many_pipelining_connections_through_flushes_get_every_reply() {
    let seed = test_seed();
    let server = TestServer::start(&[
        "--shards",
        "2",
        "--memtable-bytes",
        "131072",
        "--conn-reads-per-iteration-max",
        "2",
    ]);
    let addr = server.addr();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| thread::spawn(move || client(addr, c, seed)))
        .collect();
    for (c, handle) in handles.into_iter().enumerate() {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(Box::new(format!("client {c}: {panic:?}")));
        }
    }
    let mut raw = server.raw();
    assert_eq!(raw.request(&["PING"]), Reply::Status("PONG".into()));
}
