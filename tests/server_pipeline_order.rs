//! Goal: replies to a long pipeline come back in request order, and each request sees the
//! effect of every earlier one on its connection, even when consecutive requests touch keys
//! owned by different shards.
//!
//! Method: start the server with `--shards 2`; build 10,000 random requests (SET with and
//! without NX/XX, GET, DEL, EXISTS, MGET, MSET, ECHO with a sequence number, PING, DBSIZE) over
//! 200 keys, so both shards own many of them; compute each expected reply from a `HashMap`
//! model; write the whole pipeline from one thread while another reads the replies, and
//! compare reply i with the model's reply i.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::thread;

use common::{encode, Reply, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const REQUEST_COUNT: usize = 10_000;
const KEY_COUNT: usize = 200;

/// The server as a map; answers each request as Redis would.
#[derive(Default)]
struct Model {
    map: HashMap<String, String>,
}

impl Model {
    fn apply(&mut self, args: &[String]) -> Reply {
        let arg = |i: usize| args[i].as_str();
        match arg(0) {
            "SET" => {
                let exists = self.map.contains_key(arg(1));
                let allowed = match args.get(3).map(String::as_str) {
                    None => true,
                    Some("NX") => !exists,
                    Some("XX") => exists,
                    Some(other) => unreachable!("option {other}"),
                };
                if allowed {
                    self.map.insert(arg(1).into(), arg(2).into());
                    Reply::ok()
                } else {
                    Reply::Nil
                }
            }
            "GET" => self.map.get(arg(1)).map_or(Reply::Nil, Reply::bulk),
            "DEL" => {
                let removed = args[1..]
                    .iter()
                    .filter(|k| self.map.remove(*k).is_some())
                    .count();
                Reply::Int(removed as i64)
            }
            "EXISTS" => Reply::Int(
                args[1..]
                    .iter()
                    .filter(|k| self.map.contains_key(*k))
                    .count() as i64,
            ),
            "MGET" => Reply::Array(
                args[1..]
                    .iter()
                    .map(|k| self.map.get(k).map_or(Reply::Nil, Reply::bulk))
                    .collect(),
            ),
            "MSET" => {
                for pair in args[1..].chunks(2) {
                    self.map.insert(pair[0].clone(), pair[1].clone());
                }
                Reply::ok()
            }
            "ECHO" => Reply::bulk(arg(1)),
            "PING" => Reply::Status("PONG".into()),
            "DBSIZE" => Reply::Int(self.map.len() as i64),
            other => unreachable!("command {other}"),
        }
    }
}

fn random_request(rng: &mut StdRng, index: usize) -> Vec<String> {
    let key = |rng: &mut StdRng| format!("po:{}", rng.gen_range(0..KEY_COUNT));
    let value = |rng: &mut StdRng| format!("v{index}-{}", "x".repeat(rng.gen_range(0..64)));
    let keys = |rng: &mut StdRng, n: usize| (0..n).map(|_| key(rng)).collect::<Vec<_>>();
    let mut request: Vec<String> = match rng.gen_range(0..100) {
        0..=29 => vec!["SET".into(), key(rng), value(rng)],
        30..=34 => vec!["SET".into(), key(rng), value(rng), "NX".into()],
        35..=39 => vec!["SET".into(), key(rng), value(rng), "XX".into()],
        40..=64 => vec!["GET".into(), key(rng)],
        65..=71 => {
            let n = rng.gen_range(1..4);
            [vec!["DEL".to_string()], keys(rng, n)].concat()
        }
        72..=79 => {
            let n = rng.gen_range(1..5);
            [vec!["EXISTS".to_string()], keys(rng, n)].concat()
        }
        80..=87 => {
            let n = rng.gen_range(1..8);
            [vec!["MGET".to_string()], keys(rng, n)].concat()
        }
        88..=91 => {
            let mut r = vec!["MSET".to_string()];
            for _ in 0..rng.gen_range(1..5) {
                r.push(key(rng));
                r.push(value(rng));
            }
            r
        }
        92..=96 => vec!["ECHO".into(), format!("seq-{index}")],
        97..=98 => vec!["PING".into()],
        _ => vec!["DBSIZE".into()],
    };
    request.shrink_to_fit();
    request
}

#[test]
fn ten_thousand_pipelined_requests_answer_in_order() {
    let server = TestServer::start(&["--shards", "2"]);
    assert_eq!(server.ready().shards, 2);
    let mut rng = StdRng::seed_from_u64(common::test_seed());

    let mut model = Model::default();
    let mut requests = Vec::with_capacity(REQUEST_COUNT);
    let mut expected = Vec::with_capacity(REQUEST_COUNT);
    let mut wire = Vec::new();
    for i in 0..REQUEST_COUNT {
        let request = random_request(&mut rng, i);
        expected.push(model.apply(&request));
        wire.extend_from_slice(&encode(&request));
        requests.push(request);
    }

    let mut raw = server.raw();
    let mut writer = raw.writer_clone();
    let sender = thread::spawn(move || writer.write_all(&wire));
    for (i, want) in expected.iter().enumerate() {
        let got = raw.reply();
        assert_eq!(
            &got, want,
            "reply {i} to {:?} (replies before it matched)",
            requests[i]
        );
    }
    sender.join().unwrap().expect("write the pipeline");

    // The connection is still in step, and a fresh connection sees the final state.
    assert_eq!(raw.request(&["PING"]), Reply::Status("PONG".into()));
    let mut fresh = server.raw();
    for k in 0..KEY_COUNT {
        let key = format!("po:{k}");
        let want = model.map.get(&key).map_or(Reply::Nil, Reply::bulk);
        assert_eq!(fresh.request(&["GET", &key]), want, "final value of {key}");
    }
}
