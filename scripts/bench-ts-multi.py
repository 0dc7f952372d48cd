#!/usr/bin/env python3
# Transactions per second of redis-py MULTI/EXEC pipelines against a running tskv-server of
# two or more shards (README, "Transactions"): two TS.ADDs on series of one shard, two
# TS.ADDs on series of two shards (a transaction across shards), and two SETs on keys of two
# shards. Usage: `scripts/bench-ts-multi.py PORT CLIENTS TRANSACTIONS RUN` (CLIENTS
# processes, TRANSACTIONS each; RUN prefixes the keys, so rounds on one server do not mix).
# Keys are placed by asking the server: a TS.DEL of two keys in one transaction is
# refused across shards.
import sys, time, multiprocessing as mp
import redis

PORT, PROCS, N = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
RUN = sys.argv[4]

def same_shard(r, a, b):
    """Whether a and b live on one shard: a TS.DEL of both in one transaction is refused
    whole across shards, and on one shard fails on each missing key."""
    p = r.pipeline()
    p.execute_command("TS.DEL", a, 0, 1)
    p.execute_command("TS.DEL", b, 0, 1)
    try:
        p.execute()
    except redis.ResponseError as e:
        return "across shards" not in str(e)
    raise SystemExit(f"{a} or {b} exists already: use another RUN")

def keys_for(r, prefix, want_same):
    for i in range(1000):
        a, b = f"{prefix}:a{i}", f"{prefix}:b{i}"
        if same_shard(r, a, b) == want_same:
            r.execute_command("TS.CREATE", a)
            r.execute_command("TS.CREATE", b)
            return a, b
    raise SystemExit("no key found")

def worker(args):
    mode, w = args
    r = redis.Redis(port=PORT)
    a, b = keys_for(r, f"{RUN}{mode}{w}", mode == "ts_one")
    if mode == "str_two":
        r.delete(a, b)
    start = time.perf_counter()
    for n in range(1, N + 1):
        p = r.pipeline()
        if mode == "str_two":
            p.set(a, n).set(b, n)
        else:
            p.execute_command("TS.ADD", a, n, n).execute_command("TS.ADD", b, n, n)
        p.execute()
    return time.perf_counter() - start

if __name__ == "__main__":
    for mode in ["ts_one", "ts_two", "str_two"]:
        with mp.Pool(PROCS) as pool:
            wall = max(pool.map(worker, [(mode, w) for w in range(PROCS)]))
        print(f"{mode}: {PROCS*N/wall:.0f} tx/s ({PROCS} clients x {N})")
