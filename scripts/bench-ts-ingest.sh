#!/usr/bin/env bash
# TSBS "cpu-only" ingest into tskv with `--fsync always`, and the bytes each sample takes
# on disk once flushed and compacted.
#
# * The server runs with `--shards 1`, pinned to core 0 with its compaction core
#   (`taskset -c 0`, `--compaction-core 0`), so its samples/s are those of one shard core;
#   tskv-bench runs on core 1 (`taskset -c 1 ... --cpus 1`).
# * Each round starts a fresh server on an empty temporary data directory, creates the
#   series (`--create-series`: HOSTS hosts x 10 metrics), and runs
#   `tskv-bench --workload tsbs-cpu-ingest` closed loop (CLIENTS connections, PIPELINE
#   TS.MADD of 10 samples in flight each) for DURATION s after 2 s of warm-up.
# * Then `SAVE` flushes every memtable, the script waits until INFO's
#   `pending_compaction_bytes` is 0, stops the server (SHUTDOWN), and runs
#   `tskv-tool compact` (every level-0 table merged down, tombstones with nothing below
#   dropped), which reports the live SSTable bytes before (as the server left them) and
#   after. Samples on disk are the sum of TS.INFO's `totalSamples` over the series
#   (warm-up included), so bytes/sample = live SSTable bytes / samples.
# * Prints one line per round and the medians.
#
# Usage: scripts/bench-ts-ingest.sh   (variables: ROUNDS, DURATION, HOSTS, CLIENTS,
#        PIPELINE, OUT, BIN: the directory of the binaries, default target/release). Needs: redis-cli, jq, taskset, cargo, at least 2 cores.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
HOSTS=${HOSTS:-100}
CLIENTS=${CLIENTS:-32}
PIPELINE=${PIPELINE:-32}
OUT=${OUT:-$(mktemp -d /tmp/tskv-ts-ingest.XXXXXX)}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
cargo build --release --bins >&2
BIN=${BIN:-target/release}

. scripts/lib/server.sh

echo "host: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commit: $(git rev-parse --short HEAD)  hosts=$HOSTS clients=$CLIENTS pipeline=$PIPELINE duration=${DURATION}s"
printf 'round\tsamples_per_s\tsamples\tbytes_per_sample_as_served\tsstable_bytes\tbytes_per_sample\tsstables\n'
for round in $(seq 1 "$ROUNDS"); do
    dir=$(mktemp -d /tmp/tskv-ts-ingest-data.XXXXXX)
    port=$(free_port)
    taskset -c 0 "$BIN/tskv-server" --port "$port" --data-dir "$dir" --shards 1 \
        --fsync always --compaction-core 0 >"$OUT/server-$round.log" 2>&1 &
    server=$!
    wait_ready "$port"
    taskset -c 1 "$BIN/tskv-bench" --port "$port" --workload tsbs-cpu-ingest --create-series \
        --hosts "$HOSTS" --clients "$CLIENTS" --pipeline "$PIPELINE" --cpus 1 \
        --duration "$DURATION" --warmup 2 --json "$OUT/ingest-$round.json" \
        >"$OUT/bench-$round.txt" 2>&1
    rate=$(jq '.total.samples_per_s' "$OUT/ingest-$round.json")
    samples=0
    for key in $(redis-cli -p "$port" --scan --pattern 'cpu:*'); do
        n=$(redis-cli -p "$port" TS.INFO "$key" | awk 'prev == "totalSamples" { print; exit } { prev = $0 }')
        samples=$((samples + n))
    done
    redis-cli -p "$port" SAVE >/dev/null
    while [ "$(info_field "$port" pending_compaction_bytes)" != "0" ]; do sleep 0.2; done
    redis-cli -p "$port" SHUTDOWN >/dev/null 2>&1 || true
    wait "$server" || true
    "$BIN/tskv-tool" compact --json "$dir" >"$OUT/compact-$round.json"
    served=$(jq '[.shards[].sstable_bytes_before] | add' "$OUT/compact-$round.json")
    bytes=$(jq '.sstable_bytes' "$OUT/compact-$round.json")
    tables=$(jq '[.shards[].sstables] | add' "$OUT/compact-$round.json")
    per=$(python3 -c "print(f'{$bytes / max($samples, 1):.2f}')")
    served_per=$(python3 -c "print(f'{$served / max($samples, 1):.2f}')")
    printf '%s\t%.0f\t%s\t%s\t%s\t%s\t%s\n' "$round" "$rate" "$samples" "$served_per" "$bytes" "$per" "$tables" | tee -a "$OUT/raw.tsv"
    rm -rf "$dir"
done
echo "medians: samples/s per shard core $(cut -f2 "$OUT/raw.tsv" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')," \
    "bytes/sample $(cut -f6 "$OUT/raw.tsv" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')  (reports in $OUT)"
