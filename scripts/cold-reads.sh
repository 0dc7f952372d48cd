#!/usr/bin/env bash
# Shows that GETs of keys whose blocks are in memory keep their latency while GETs of keys
# that must be read from disk are in flight: the shard submits those reads through its
# io_uring and serves everyone else meanwhile, instead of waiting in pread.
#
# Method:
# * One shard and the compaction core pinned to core 0 (`--shards 1 --compaction-core 0`),
#   a small block cache (`--block-cache-bytes`, default 4 MiB) and a data set far larger
#   than it (KEYS keys of 100 bytes, default 1M, about 130 MB of SSTables); the load
#   generators on core 1.
# * "hot": an open-loop GET stream at RATE ops/s over the first HOT_KEYS keys (their blocks
#   stay cached), latency measured from the intended send time (corrected for coordinated
#   omission).
# * After the load, the script waits until compaction has settled (no compaction output for
#   3 s), since a compaction on the shard's core would show in both phases' tails.
# * Phase A runs hot alone; phase B runs hot while COLD_CLIENTS connections GET keys
#   uniformly over the whole data set at COLD_RATE ops/s (open loop, a rate the core can
#   serve, so what the hot tail shows is waiting for reads, not a saturated CPU), so block
#   reads are in flight all the time.
#   Before each phase the page cache is dropped (`/proc/sys/vm/drop_caches`, root only; the
#   script says so loudly when it cannot), so cold reads really go to the device.
# * Prints hot p50/p99/p99.9/max in A and B with the ratio B/A, the cold throughput, and
#   the server's block cache and ring-read counters. A ratio near 1 is the claim; with
#   reads blocking the loop, every cold read would add a device read time to the hot tail.
#
# Usage: scripts/cold-reads.sh   (environment: KEYS HOT_KEYS RATE DURATION COLD_CLIENTS COLD_RATE
#                                 BLOCK_CACHE OUT)
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-1000000}
HOT_KEYS=${HOT_KEYS:-1000}
RATE=${RATE:-5000}
DURATION=${DURATION:-10}
COLD_CLIENTS=${COLD_CLIENTS:-16}
COLD_RATE=${COLD_RATE:-5000}
BLOCK_CACHE=${BLOCK_CACHE:-4MiB}
OUT=${OUT:-$(mktemp -d -t tskv-cold-reads-XXXX)}

cargo build --release --bin tskv-server --bin tskv-bench >&2
server=target/release/tskv-server
bench=target/release/tskv-bench
data=$(mktemp -d -t tskv-cold-data-XXXX)
port_file=$OUT/ready.txt
taskset -c 0 "$server" --port 0 --data-dir "$data" --shards 1 --fsync never \
    --memtable-bytes 8MiB --block-cache-bytes "$BLOCK_CACHE" --compaction-core 0 >"$port_file" 2>"$OUT/server.log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do grep -q ready "$port_file" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$port_file")
[ -n "$port" ] || { echo "server did not start: $(cat "$OUT/server.log")" >&2; exit 1; }
run_bench() { taskset -c 1 "$bench" --port "$port" --cpus 1 --value-size 100 "$@"; }

echo "loading $KEYS keys ..." >&2
run_bench --ratio 1:0 --key-dist sequential --keys "$KEYS" --requests "$KEYS" \
    --clients 8 --pipeline 64 >"$OUT/load.txt"
# Let the compaction core settle: hot latencies measured during a compaction on the same
# core would measure the compaction.
settled=0
for _ in $(seq 240); do
    before=$(redis-cli -p "$port" INFO persistence | tr -d '\r' | sed -n 's/^compaction_written_bytes://p')
    sleep 1
    after=$(redis-cli -p "$port" INFO persistence | tr -d '\r' | sed -n 's/^compaction_written_bytes://p')
    if [ "$before" = "$after" ]; then settled=$((settled + 1)); else settled=0; fi
    [ "$settled" -ge 3 ] && break
done

drop_caches() {
    sync
    if ! (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
        echo "WARNING: cannot drop the page cache (not root?): cold reads may hit memory" >&2
    fi
}
hot() {
    # Warm the hot blocks into the block cache, then measure.
    run_bench --ratio 0:1 --keys "$HOT_KEYS" --requests $((HOT_KEYS * 4)) --clients 4 >/dev/null
    run_bench --ratio 0:1 --keys "$HOT_KEYS" --rate "$RATE" --duration "$DURATION" \
        --warmup 1 --clients 8 --json "$1" >/dev/null
}

drop_caches
hot "$OUT/hot-alone.json"
drop_caches
run_bench --ratio 0:1 --keys "$KEYS" --clients "$COLD_CLIENTS" --rate "$COLD_RATE" \
    --duration $((DURATION + 4)) --json "$OUT/cold.json" >/dev/null &
cold_pid=$!
sleep 1
hot "$OUT/hot-with-cold.json"
wait $cold_pid

field() { jq -r ".total.latency_us.corrected.$2" "$1"; }
printf '%-22s %10s %10s %10s %10s\n' "hot GET (corrected)" p50_us p99_us p99.9_us max_us
for phase in hot-alone hot-with-cold; do
    f=$OUT/$phase.json
    printf '%-22s %10s %10s %10s %10s\n' "$phase" "$(field "$f" p50_us)" "$(field "$f" p99_us)" \
        "$(field "$f" p99_9_us)" "$(field "$f" max_us)"
done
a=$(field "$OUT/hot-alone.json" p99_us)
b=$(field "$OUT/hot-with-cold.json" p99_us)
echo "hot p99 with cold reads in flight / alone: $(echo "scale=2; $b / $a" | bc)"
echo "cold GETs: $(jq -r '.total.ops_per_s | floor' "$OUT/cold.json") ops/s over $COLD_CLIENTS connections"
redis-cli -p "$port" INFO persistence | grep -E 'block_(cache|reads)' || true
echo "host: $(uname -r), $(nproc) cores, $(df -T "$data" | awk 'NR==2 {print $2}'), $(git rev-parse --short HEAD)"
echo "reports in $OUT" >&2
