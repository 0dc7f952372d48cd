//! Goal: after `FLUSHALL`, a compaction rule across shards works as before it. (Regression:
//! `FLUSHALL` reset each shard's whole series state, including which shard it is and how
//! many there are, so every shard then took every series for its own: `TS.CREATERULE`
//! looked for the destination on the source's shard and answered that it does not exist.)
//!
//! Method: a two-shard server; a source on one shard and a destination on the other, both
//! ways round (keys picked with `tskv::datadir::shard_of`), created after a `FLUSHALL`;
//! `TS.CREATERULE` must answer `OK`, and the destination must receive the closed buckets
//! (polled, as they arrive after the source's reply).

mod common;

use std::time::{Duration, Instant};

use common::{Reply, TestServer};

fn req(con: &mut common::RawConn, line: &str) -> Reply {
    let args: Vec<&str> = line.split_whitespace().collect();
    con.request(&args)
}

fn key_on(prefix: &str, shard: usize) -> String {
    common::keys_on(2, shard, prefix, 1).remove(0)
}

#[test]
fn a_rule_across_shards_works_after_flushall() {
    let server = TestServer::start(&["--shards", "2"]);
    let mut c = server.raw();
    assert_eq!(req(&mut c, "TS.CREATE before"), Reply::ok());
    assert_eq!(req(&mut c, "FLUSHALL"), Reply::ok());
    for (src_shard, dst_shard) in [(0, 1), (1, 0)] {
        let src = key_on(&format!("src{src_shard}-"), src_shard);
        let dst = key_on(&format!("dst{dst_shard}-"), dst_shard);
        assert_eq!(req(&mut c, &format!("TS.CREATE {src}")), Reply::ok());
        assert_eq!(req(&mut c, &format!("TS.CREATE {dst}")), Reply::ok());
        assert_eq!(
            req(
                &mut c,
                &format!("TS.CREATERULE {src} {dst} AGGREGATION sum 10")
            ),
            Reply::ok(),
            "TS.CREATERULE from shard {src_shard} to shard {dst_shard} after FLUSHALL"
        );
        for ts in 0..25 {
            assert_eq!(req(&mut c, &format!("TS.ADD {src} {ts} 1")), Reply::Int(ts));
        }
        // Buckets 0 and 10 are closed: ten samples of 1 each.
        let expected = Reply::Array(vec![
            Reply::Array(vec![Reply::Int(0), Reply::Status("10".into())]),
            Reply::Array(vec![Reply::Int(10), Reply::Status("10".into())]),
        ]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = req(&mut c, &format!("TS.RANGE {dst} - +"));
            if got == expected {
                break;
            }
            if Instant::now() > deadline {
                assert_eq!(got, expected, "{dst} never received the closed buckets");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
