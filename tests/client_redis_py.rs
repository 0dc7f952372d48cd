//! Goal: redis-py, the most used Python client, works against tskv at its defaults: it
//! opens connections with `HELLO 3` (redis-py 8 and later) and pipelines.
//!
//! Method: run a small Python script with redis-py against a real tskv-server (two
//! shards): ping, set, get, incr, a non-transactional pipeline, transactional ones on one
//! key and across both shards, a `WATCH` retry transaction, a session with a TTL, `.ts()`'s
//! default (transactional) pipeline on one series and creating series and adding samples
//! across shards (a `TS.DEL` across shards refused), and the protocol the
//! connection ended up speaking (`CLIENT INFO`'s `resp`). If `python3` or the `redis`
//! package is missing (`.ci/run` installs it with pip when the network allows), the test
//! says `SKIP` on stderr, past libtest's capture, and passes.

mod common;

use std::io::Write as _;
use std::process::Command;

use common::TestServer;

const SCRIPT: &str = r#"
import sys
import redis

r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
assert r.ping() is True
assert r.set("py:key", "value") is True
assert r.get("py:key") == b"value"
assert r.incr("py:counter") == 1
assert r.incr("py:counter", 41) == 42
assert r.get("py:missing") is None
pipe = r.pipeline(transaction=False)
pipe.set("py:a", 1).incr("py:a").get("py:a").mget("py:a", "py:key", "py:none").delete("py:a")
assert pipe.execute() == [True, 2, b"2", [b"2", b"value", None], 1], "pipeline"
assert r.config_get("databases") == {"databases": "1"}
# The default pipeline is a MULTI/EXEC transaction, on one shard's key...
tx = r.pipeline()
tx.incr("py:tx").incr("py:tx").get("py:tx")
assert tx.execute() == [1, 2, b"2"], "transactional pipeline"
# ... and on keys of both shards (ten keys cannot all hash to one of two).
keys = [f"py:many{i}" for i in range(10)]
tx = r.pipeline()
for i, key in enumerate(keys):
    tx.set(key, i)
tx.mget(keys)
assert tx.execute() == [True] * 10 + [[str(i).encode() for i in range(10)]], "across shards"
# The WATCH retry helper over keys of both shards.
def move(pipe):
    a, b = (int(v) for v in pipe.mget(keys[0], keys[9]))
    pipe.multi()
    pipe.set(keys[0], a - 1)
    pipe.set(keys[9], b + 1)
r.transaction(move, *keys)
assert r.mget(keys[0], keys[9]) == [b"-1", b"10"], "WATCH transaction across shards"
# Sessions with a time to live.
assert r.set("py:session", "token", ex=60) is True
assert 55 <= r.ttl("py:session") <= 60, "a session's TTL"
assert r.expire("py:session", 120) is True and 115 <= r.ttl("py:session") <= 120
assert r.persist("py:session") is True and r.ttl("py:session") == -1
assert r.getex("py:session", px=500) == b"token" and 0 < r.pttl("py:session") <= 500
# Time series in r.ts()'s default pipeline (MULTI/EXEC) on one series...
tp = r.ts().pipeline()
tp.create("py:temp", labels={"room": "lab"}).add("py:temp", 1000, 20.5)
tp.madd([("py:temp", 2000, 21.0), ("py:temp", 3000, 21.5)])
tp.range("py:temp", "-", "+").get("py:temp")
want = [True, 1000, [2000, 3000], [(1000, 20.5), (2000, 21.0), (3000, 21.5)], (3000, 21.5)]
assert tp.execute() == want, "TS pipeline"
# ... and creating series and adding samples on both shards (a transaction across shards).
tp = r.ts().pipeline()
for i, key in enumerate(keys):
    tp.create(key + ":ts", labels={"n": str(i)}).add(key + ":ts", 1000, i)
tp.madd([(keys[0] + ":ts", 2000, 1.5), (keys[9] + ":ts", 2000, 2.5)])
tp.range(keys[9] + ":ts", "-", "+")
want = [True, 1000] * 10 + [[2000, 2000], [(1000, 9.0), (2000, 2.5)]]
assert tp.execute() == want, "TS pipeline across shards"
assert r.ts().get(keys[0] + ":ts") == (2000, 1.5), "its samples stay"
# A TS.DEL across shards is refused whole: nothing runs.
tp = r.ts().pipeline()
for key in keys:
    tp.add(key + ":ts", 3000, 1).delete(key + ":ts", 0, 1000)
try:
    tp.execute()
    raise AssertionError("a TS.DEL transaction across shards ran")
except redis.ResponseError as e:
    assert "TS.DEL in a transaction across shards" in str(e), e
assert r.ts().get(keys[0] + ":ts") == (2000, 1.5), "nothing of it ran"
print("resp=" + str(r.client_info()["resp"]), "redis-py=" + redis.__version__)
"#;

/// Why redis-py cannot run here, if it cannot.
fn missing_python() -> Option<String> {
    match Command::new("python3")
        .args(["-c", "import redis"])
        .output()
    {
        Err(e) => Some(format!("python3 not runnable ({e})")),
        Ok(out) if !out.status.success() => Some(format!(
            "redis-py not installed (pip install redis): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

#[test]
fn redis_py_at_its_defaults() {
    if let Some(reason) = missing_python() {
        let _ = writeln!(std::io::stderr(), "SKIP: client_redis_py: {reason}");
        return;
    }
    let server = TestServer::start(&["--shards", "2"]);
    let output = Command::new("python3")
        .args(["-c", SCRIPT, &server.port().to_string()])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "redis-py script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let version = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("redis-py="))
        .expect("the script prints redis-py's version");
    let major: u32 = version.split('.').next().unwrap().parse().unwrap();
    if major >= 8 {
        assert!(
            stdout.contains("resp=3"),
            "redis-py {version} speaks RESP3 by default: {stdout}"
        );
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "NOTE: client_redis_py: redis-py {version} defaults to RESP2; RESP3 not exercised"
        );
    }
}
