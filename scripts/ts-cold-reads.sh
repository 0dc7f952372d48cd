#!/usr/bin/env bash
# Shows that TS.RANGE of a series whose blocks are in memory keeps its latency while
# time-series queries of series that must be read from disk are in flight: the shard reads
# their blocks through its io_uring (planned before the query runs) and serves everyone
# else meanwhile, instead of waiting in pread. Optionally runs a second server binary
# (BASE_BIN, e.g. one built before the planning) on the same data, in the same sitting.
#
# Method:
# * One shard and the compaction core pinned to core 0 (`--shards 1 --compaction-core 0
#   --fsync never`), a small block cache (BLOCK_CACHE, default 4 MiB) and TSBS cpu-only
#   data far larger than it (HOSTS x 10 series x STEPS 10-second samples, default 100 x
#   8,640: a day each); the load generators on core 1. After the load: `SAVE`, then the
#   script waits for `pending_compaction_bytes` to be 0.
# * "hot": an open-loop stream of `TS.RANGE cpu:host_0:usage_user` over its first hour
#   at RATE queries/s (its blocks stay cached), latency from the intended send time.
# * Per binary (the order alternates by round): phase A runs hot alone; phase B runs hot
#   while COLD_CLIENTS connections send tskv-bench's `tsbs-cpu-query` mix (`TS.RANGE` of a
#   random series and `TS.MRANGE ... FILTER hostname=host_N`, random one-hour windows) at
#   COLD_RATE queries/s, so block reads are in flight all the time. Before each phase the
#   page cache is dropped (root only; says so loudly when it cannot).
# * Prints hot p50/p99/p99.9/max per binary and phase, the cold throughput, and the block
#   reads the server made through its ring and with blocking `pread`s during phase B.
#
# Usage: scripts/ts-cold-reads.sh   (environment: HOSTS STEPS RATE DURATION COLD_CLIENTS
#                                    COLD_RATE BLOCK_CACHE ROUNDS BASE_BIN OUT)
set -euo pipefail
cd "$(dirname "$0")/.."

HOSTS=${HOSTS:-100}
STEPS=${STEPS:-8640}
RATE=${RATE:-500}
DURATION=${DURATION:-10}
COLD_CLIENTS=${COLD_CLIENTS:-16}
COLD_RATE=${COLD_RATE:-500}
BLOCK_CACHE=${BLOCK_CACHE:-4MiB}
ROUNDS=${ROUNDS:-1}
BASE_BIN=${BASE_BIN:-}
OUT=${OUT:-$(mktemp -d -t tskv-ts-cold-reads-XXXX)}
mkdir -p "$OUT"
# The TSBS data starts at 2016-01-01T00:00:00Z.
T0_MS=1451606400000
HOT="TS.RANGE cpu:host_0:usage_user $T0_MS $((T0_MS + 3600000))"

. scripts/lib/server.sh
cargo build --release --bin tskv-server --bin tskv-bench >&2
bench=target/release/tskv-bench
data=$(mktemp -d -t tskv-ts-cold-data-XXXX)
server_pid=
trap '[ -n "$server_pid" ] && kill $server_pid 2>/dev/null; rm -rf "$data"' EXIT

# start BINARY LOG: starts it on $data pinned to core 0; sets $port and $server_pid.
start() {
    taskset -c 0 "$1" --port 0 --data-dir "$data" --shards 1 --fsync never \
        --memtable-bytes 8MiB --block-cache-bytes "$BLOCK_CACHE" --compaction-core 0 \
        >"$OUT/ready.txt" 2>"$2" &
    server_pid=$!
    for _ in $(seq 300); do grep -q ready "$OUT/ready.txt" 2>/dev/null && break; sleep 0.1; done
    port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$OUT/ready.txt")
    [ -n "$port" ] || { echo "server did not start: $(cat "$2")" >&2; exit 1; }
}
stop() {
    redis-cli -p "$port" SHUTDOWN >/dev/null 2>&1 || true
    wait "$server_pid" || true
    server_pid=
}
field_of() { info_field "$port" "$1"; }
run_bench() { taskset -c 1 "$bench" --port "$port" --cpus 1 --quiet "$@"; }
drop_caches() {
    sync
    if ! (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
        echo "WARNING: cannot drop the page cache (not root?): cold reads may hit memory" >&2
    fi
}
hot() {
    run_bench --command "$HOT" --clients 2 --requests 400 >/dev/null
    run_bench --command "$HOT" --rate "$RATE" --duration "$DURATION" --warmup 1 \
        --clients 8 --json "$1" >/dev/null
}

echo "loading $HOSTS hosts x 10 series x $STEPS samples ..." >&2
start target/release/tskv-server "$OUT/server-load.log"
run_bench --workload tsbs-cpu-ingest --create-series --hosts "$HOSTS" \
    --requests $((HOSTS * STEPS)) --clients 16 --pipeline 8 >"$OUT/load.txt"
redis-cli -p "$port" SAVE >/dev/null
while [ "$(field_of pending_compaction_bytes)" != "0" ]; do sleep 0.2; done
echo "tables: $(field_of sstable_bytes) bytes in $(field_of sstables) SSTables" >&2
stop

binaries=(target/release/tskv-server)
[ -n "$BASE_BIN" ] && binaries+=("$BASE_BIN")
for round in $(seq 1 "$ROUNDS"); do
    for binary in $(alternating "$round" "${binaries[@]}"); do
        name=new
        [ "$binary" = "$BASE_BIN" ] && name=base
        start "$binary" "$OUT/server-$name-$round.log"
        drop_caches
        hot "$OUT/$name-$round-hot-alone.json"
        drop_caches
        async_before=$(field_of block_reads_async)
        blocking_before=$(field_of block_reads_blocking)
        run_bench --workload tsbs-cpu-query --hosts "$HOSTS" --clients "$COLD_CLIENTS" \
            --rate "$COLD_RATE" --duration $((DURATION + 4)) --json "$OUT/$name-$round-cold.json" \
            >/dev/null &
        cold_pid=$!
        sleep 1
        hot "$OUT/$name-$round-hot-with-cold.json"
        wait $cold_pid
        echo "$name $round $(($(field_of block_reads_async) - async_before)) $(($(field_of block_reads_blocking) - blocking_before))" >>"$OUT/reads.txt"
        stop
    done
done

lat() { jq -r ".total.latency_us.corrected.$2" "$1"; }
printf '%-6s %-5s %-14s %9s %9s %9s %9s\n' binary round phase p50_us p99_us p99.9_us max_us
for f in "$OUT"/*-hot-*.json; do
    base=$(basename "$f" .json)
    IFS=- read -r name round _ phase rest <<<"$base"
    printf '%-6s %-5s %-14s %9s %9s %9s %9s\n' "$name" "$round" "$phase${rest:+-$rest}" \
        "$(lat "$f" p50_us)" "$(lat "$f" p99_us)" "$(lat "$f" p99_9_us)" "$(lat "$f" max_us)"
done
echo "cold queries/s and block reads in phase B (ring, blocking):"
while read -r name round ring blocking; do
    echo "  $name round $round: $(jq -r '.total.ops_per_s | floor' "$OUT/$name-$round-cold.json") queries/s, $ring ring reads, $blocking blocking reads"
done <"$OUT/reads.txt"
echo "host: $(uname -r), $(nproc) cores, $(df -T "$data" | awk 'NR==2 {print $2}'), $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reports in $OUT" >&2
