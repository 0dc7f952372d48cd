#!/usr/bin/env bash
# Time-series range queries on TSBS cpu-only data: queries/s and samples scanned/s of
# `TS.RANGE` over a day of 10-second samples (with and without `AGGREGATION avg 60000`)
# and of `TS.MRANGE - + FILTER ... GROUPBY field REDUCE avg` over 1,000 series; then
# label-filtered `TS.MRANGE` and `TS.QUERYINDEX` over 10,000 series of which 1% match,
# optionally against a second server binary (BASE_BIN, e.g. one built before the label
# index) on the same data, alternating, in the same sitting.
#
# * The server runs with `--shards 1`, pinned to core 0 with its compaction core
#   (`taskset -c 0`, `--compaction-core 0`, `--fsync always`); tskv-bench runs on core 1
#   (`taskset -c 1 ... --cpus 1`).
# * Range data: `tskv-bench --workload tsbs-cpu-ingest --create-series` with HOSTS hosts
#   (x 10 metrics = the series) and exactly STEPS readings per series, 10 s apart (8,640 =
#   one day). Then `SAVE`, and the script waits for INFO's `pending_compaction_bytes` to be
#   0, so queries read SSTables as a settled server does. This server runs with
#   `--client-output-bytes-max GROUPBY_OUTPUT_BYTES_MAX` (16 MiB, the server's default; the
#   GROUPBY's shards send partial reductions, which the limit counts).
# * Each round runs each query closed loop (CLIENTS connections, one request in flight
#   each) for DURATION s after WARMUP s, with `tskv-bench --command`. samples scanned per
#   query = the samples in the queried range (STEPS for one series, STEPS x 10 x HOSTS for
#   the MRANGE), so samples scanned/s = queries/s x that.
# * Index data (a fresh directory): INDEX_HOSTS hosts (x 10 series) with INDEX_STEPS
#   readings each; the filter `hostname=(host_0,...,host_K)` names 1% of the hosts, so it
#   matches 1% of the series. Each round starts each binary on that directory in turn
#   (the order alternates by round), measures `TS.QUERYINDEX` and `TS.MRANGE - +` with the
#   filter, and shuts it down cleanly. (`TS.QUERYINDEX` reads no samples: its samples
#   scanned/s is 0; its cost is the filter itself.)
# * Prints one line per round and query, and per query the median and range over rounds.
#
# Usage: scripts/bench-ts-range.sh   (variables: ROUNDS, DURATION, WARMUP, CLIENTS, HOSTS,
#        STEPS, INDEX_HOSTS, INDEX_STEPS, BASE_BIN, GROUPBY_OUTPUT_BYTES_MAX, OUT). Needs: redis-cli, jq, taskset,
#        cargo, at least 2 cores.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CLIENTS=${CLIENTS:-2}
HOSTS=${HOSTS:-100}
STEPS=${STEPS:-8640}
INDEX_HOSTS=${INDEX_HOSTS:-1000}
INDEX_STEPS=${INDEX_STEPS:-36}
BASE_BIN=${BASE_BIN:-}
# The GROUPBY's partial reductions count against the client output limit: a day of 1,000
# series in 10 groups is about 5 MB.
GROUPBY_OUTPUT_BYTES_MAX=${GROUPBY_OUTPUT_BYTES_MAX:-16777216}
OUT=${OUT:-$(mktemp -d /tmp/tskv-ts-range.XXXXXX)}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
cargo build --release --bins >&2
BIN=target/release
SERVER_ARGS=(--shards 1 --fsync always --compaction-core 0)

. scripts/lib/server.sh

# start_server BINARY DIR LOG [FLAG...]: starts it pinned to core 0; sets $port and $server.
start_server() {
    port=$(free_port)
    taskset -c 0 "$1" --port "$port" --data-dir "$2" "${SERVER_ARGS[@]}" "${@:4}" >"$3" 2>&1 &
    server=$!
    wait_ready "$port"
}

# A failed step leaves no server behind.
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; true' EXIT

stop_server() {
    redis-cli -p "$port" SHUTDOWN >/dev/null 2>&1 || true
    wait "$server" || true
}

# load HOSTS STEPS: TSBS cpu-only series and exactly STEPS readings of each, then settled.
load() {
    taskset -c 1 "$BIN/tskv-bench" --port "$port" --workload tsbs-cpu-ingest --create-series \
        --hosts "$1" --requests $(($1 * $2)) --clients 16 --pipeline 8 --cpus 1 \
        --quiet --json "$OUT/load-$1.json" >"$OUT/load-$1.txt" 2>&1
    redis-cli -p "$port" SAVE >/dev/null
    while [ "$(info_field "$port" pending_compaction_bytes)" != "0" ]; do sleep 0.2; done
}

# measure ROUND NAME SAMPLES_PER_QUERY COMMAND: one closed-loop run of one query.
measure() {
    local json="$OUT/$2-$1.json"
    taskset -c 1 "$BIN/tskv-bench" --port "$port" --command "$4" --clients "$CLIENTS" \
        --pipeline 1 --cpus 1 --duration "$DURATION" --warmup "$WARMUP" --quiet \
        --json "$json" >"$OUT/$2-$1.txt" 2>&1
    local qps errors
    qps=$(jq '.total.ops_per_s' "$json")
    errors=$(jq '.total.errors // 0' "$json")
    [ "$errors" = "0" ] || { echo "$2: $errors error replies (see $OUT/$2-$1.txt)" >&2; exit 1; }
    printf '%s\t%s\t%.1f\t%.0f\n' "$1" "$2" "$qps" "$(python3 -c "print($qps * $3)")" |
        tee -a "$OUT/raw.tsv"
}

echo "host: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commit: $(git rev-parse --short HEAD)  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "range data: $HOSTS hosts x 10 series x $STEPS samples; index data: $INDEX_HOSTS hosts x 10 series x $INDEX_STEPS samples"
echo "clients=$CLIENTS duration=${DURATION}s warmup=${WARMUP}s rounds=$ROUNDS base=${BASE_BIN:-none}"
printf 'round\tquery\tqueries_per_s\tsamples_scanned_per_s\n'

day="cpu:host_0:usage_user"
series=$((HOSTS * 10))
dir=$(mktemp -d /tmp/tskv-ts-range-data.XXXXXX)
start_server "$BIN/tskv-server" "$dir" "$OUT/server-range.log" \
    --client-output-bytes-max "$GROUPBY_OUTPUT_BYTES_MAX"
load "$HOSTS" "$STEPS"
[ "$(redis-cli -p "$port" TS.RANGE "$day" - + AGGREGATION count 1000000000 | sed -n 2p)" = "$STEPS" ] ||
    { echo "$day does not hold $STEPS samples" >&2; exit 1; }
for round in $(seq 1 "$ROUNDS"); do
    measure "$round" range "$STEPS" "TS.RANGE $day - +"
    measure "$round" range-avg-60s "$STEPS" "TS.RANGE $day - + AGGREGATION avg 60000"
    measure "$round" mrange-groupby "$((series * STEPS))" \
        "TS.MRANGE - + FILTER measurement=cpu GROUPBY field REDUCE avg"
done
stop_server
rm -rf "$dir"

matching_hosts=$((INDEX_HOSTS / 100))
list=$(seq -s, 0 $((matching_hosts - 1)) | sed 's/\([0-9]\+\)/host_\1/g')
filter="hostname=($list)"
dir=$(mktemp -d /tmp/tskv-ts-index-data.XXXXXX)
start_server "$BIN/tskv-server" "$dir" "$OUT/server-index-load.log"
load "$INDEX_HOSTS" "$INDEX_STEPS"
found=$(redis-cli -p "$port" TS.QUERYINDEX "$filter" | wc -l)
[ "$found" = "$((matching_hosts * 10))" ] ||
    { echo "the filter matches $found series, not $((matching_hosts * 10))" >&2; exit 1; }
stop_server
binaries=("$BIN/tskv-server")
[ -n "$BASE_BIN" ] && binaries+=("$BASE_BIN")
for round in $(seq 1 "$ROUNDS"); do
    for binary in $(alternating "$round" "${binaries[@]}"); do
        name=index
        [ "$binary" = "$BASE_BIN" ] && name=base
        start_server "$binary" "$dir" "$OUT/server-$name-$round.log"
        measure "$round" "queryindex-$name" 0 "TS.QUERYINDEX $filter"
        measure "$round" "mrange-1pct-$name" "$((matching_hosts * 10 * INDEX_STEPS))" \
            "TS.MRANGE - + FILTER $filter"
        stop_server
    done
done
rm -rf "$dir"

echo "per query: median queries/s (min-max), median samples scanned/s  (reports in $OUT)"
for query in $(cut -f2 "$OUT/raw.tsv" | awk '!seen[$0]++'); do
    awk -F'\t' -v q="$query" '$2 == q { print $3 "\t" $4 }' "$OUT/raw.tsv" | sort -n |
        awk -v q="$query" '{ a[NR] = $1; s[NR] = $2 }
            END { m = int((NR + 1) / 2); printf "%s\t%s (%s-%s)\t%s\n", q, a[m], a[1], a[NR], s[m] }'
done
