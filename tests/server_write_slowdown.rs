//! Goal: while level 0 is in the slowdown band (at least
//! `L0_SLOWDOWN_TABLES_PER_TRIGGER` times its compaction trigger deep, below the stop), a
//! shard delays its writes' WAL batches without blocking its loop: a write waits for the
//! delay its previous batch set, reads and `INFO` on another connection are answered
//! meanwhile, and the slowdown is counted in `INFO persistence` and on `/metrics`.
//!
//! Method: one shard with compaction paused (`TSKV_FAULT_COMPACTION_PAUSED`), so level 0
//! only grows: `SET` + `SAVE` rounds put it 4 tables into the band. An 8 MiB write then
//! makes the next batch wait about 2 s (8 MiB at 16 MiB/s, times 4 tables of depth).
//! A second write is sent and, on another connection, `INFO` is polled until it shows that
//! write's hold begun and not ended (`write_slowdowns` one up, `write_slowdown_us`
//! unchanged, since the time is added when a hold ends): that `INFO`, and a `GET` right
//! after, were answered while the write was held. Then the write's `+OK` arrives and the
//! hold's time is counted. No wall-clock time is asserted.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::frames::Frames;
use common::{encode, Launch, TestServer};
use tskv::config::L0_TRIGGER_TABLES_DEFAULT;
use tskv::config::{L0_SLOWDOWN_TABLES_PER_TRIGGER, L0_STOP_TABLES_PER_TRIGGER};

fn info(raw: &mut Frames) -> String {
    String::from_utf8(raw.request(&["INFO", "persistence"])).unwrap()
}

#[test]
fn writes_in_the_slowdown_band_wait_while_reads_are_answered() {
    let metrics_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let launch = Launch {
        env: &[(tskv::fault::COMPACTION_PAUSED_VAR, "1")],
        ..Launch::default()
    };
    let tskv = TestServer::start_with(
        &["--shards", "1", "--metrics-addr", &metrics_addr.to_string()],
        &launch,
    );
    let mut reader = Frames::connect(tskv.port());
    let mut writer = Frames::connect(tskv.port());
    assert_eq!(reader.request(&["SET", "r", "read-me"]), b"+OK\r\n");

    // Level 0 four tables into the band, well short of the stop.
    let depth = 4;
    let tables = L0_TRIGGER_TABLES_DEFAULT * L0_SLOWDOWN_TABLES_PER_TRIGGER + depth - 1;
    assert!(tables < L0_TRIGGER_TABLES_DEFAULT * L0_STOP_TABLES_PER_TRIGGER);
    for round in 0..tables {
        let key = format!("t{round}");
        assert_eq!(writer.request(&["SET", &key, "v"]), b"+OK\r\n");
        assert_eq!(writer.request(&["SAVE"]), b"+OK\r\n");
    }
    let before = info(&mut reader);
    assert_eq!(
        common::info_number(&before, "l0_sstables"),
        tables as u64,
        "{before}"
    );

    // A large batch in the band sets a long delay for the next one.
    let big = "b".repeat(8 << 20);
    assert_eq!(writer.request(&["SET", "big", &big]), b"+OK\r\n");
    let settled = info(&mut reader);
    let (slowdowns, slowdown_us) = (
        common::info_number(&settled, "write_slowdowns"),
        common::info_number(&settled, "write_slowdown_us"),
    );
    writer
        .writer
        .write_all(&encode(&["SET", "held", "1"]))
        .unwrap();

    // The held write's hold shows as begun and not ended, in a reply to another client.
    let deadline = Instant::now() + Duration::from_secs(60);
    let during = loop {
        let text = info(&mut reader);
        if common::info_number(&text, "write_slowdowns") > slowdowns {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the write was never held: {text}"
        );
    };
    assert_eq!(
        common::info_number(&during, "write_slowdowns"),
        slowdowns + 1,
        "{during}"
    );
    assert_eq!(
        common::info_number(&during, "write_slowdown_us"),
        slowdown_us,
        "INFO was answered while the write was held: {during}"
    );
    assert_eq!(reader.request(&["GET", "r"]), b"$7\r\nread-me\r\n");

    // The held write goes on once its delay passed, and its wait is counted.
    assert_eq!(writer.frame(), b"+OK\r\n");
    assert_eq!(reader.request(&["GET", "held"]), b"$1\r\n1\r\n");
    let after = info(&mut reader);
    assert!(
        common::info_number(&after, "write_slowdown_us") > slowdown_us,
        "{after}"
    );
    assert_eq!(
        common::info_number(&after, "write_stalls"),
        0,
        "the band is not the stop"
    );
    let text = common::scrape_metrics(metrics_addr);
    let s = "{shard=\"0\"}";
    assert!(common::metrics_sample(&text, &format!("tskv_write_slowdowns_total{s}")) >= 1.0);
    assert!(
        common::metrics_sample(&text, &format!("tskv_write_slowdown_microseconds_total{s}")) > 0.0
    );
}
