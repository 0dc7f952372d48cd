#!/usr/bin/env bash
# Latency of time-series reads of a series nobody writes while the same shard ingests
# other series with `--fsync always`, against a string GET on that shard in the same run.
#
# * The server runs with `--shards 1` on core 0 (`taskset -c 0`, `--compaction-core 0`);
#   both load generators run on core 1.
# * Each round starts a fresh server, writes the series `idle` (a day of 10-second
#   samples, 8,640) and the string `idlestr`, then starts
#   `tskv-bench --workload tsbs-cpu-ingest` open loop at RATE TS.MADD/s (10 samples each,
#   HOSTS hosts), so the shard's WAL is fdatasynced all the time without saturating the
#   host. After 3 s a second tskv-bench sends, open loop at 200 requests/s in all over one
#   connection, `TS.GET idle`, `TS.RANGE idle - +` and `GET idlestr` for DURATION s.
# * Prints, per round and binary, the uncorrected p50 and p99 of each command in µs, and
#   the p50 ratio of `TS.GET` to `GET`: a read that waits for an fdatasync it does not
#   depend on shows as a ratio well above 1.
# * BASE, when set, is a second binaries' directory (e.g. an older build): the rounds run
#   both, alternating which goes first, so both meet the same host.
#
# Usage: scripts/bench-ts-read-latency.sh   (variables: ROUNDS, DURATION, RATE, HOSTS,
#        OUT, BIN: the binaries' directory, default target/release, BASE). Needs:
#        redis-cli, jq, taskset, python3, cargo, at least 2 cores.
set -euo pipefail

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8}
RATE=${RATE:-20000}
HOSTS=${HOSTS:-100}
OUT=${OUT:-$(mktemp -d /tmp/tskv-ts-read-latency.XXXXXX)}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
cargo build --release --bins >&2
BIN=${BIN:-target/release}
BENCH=$BIN/tskv-bench

. scripts/lib/server.sh

# The idle series and string, in one pipelined stream of RESP commands.
seed_commands() {
    python3 - <<'PY'
import sys
def cmd(*words):
    words = [str(w).encode() for w in words]
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
out = cmd("TS.CREATE", "idle")
for start in range(0, 8640, 100):
    args = []
    for i in range(start, start + 100):
        args += ["idle", 1_000 + i * 10_000, i % 97]
    out += cmd("TS.MADD", *args)
out += cmd("SET", "idlestr", "v")
sys.stdout.buffer.write(out)
PY
}

echo "host: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commit: $(git rev-parse --short HEAD)  rate=${RATE} TS.MADD/s hosts=$HOSTS duration=${DURATION}s"
printf 'round\tbinaries\tts_get_p50_us\tts_get_p99_us\tts_range_p50_us\tts_range_p99_us\tget_p50_us\tget_p99_us\tts_get_to_get_p50\n'
for round in $(seq 1 "$ROUNDS"); do
    for bin in $(alternating "$round" "$BIN" ${BASE:+"$BASE"}); do
        dir=$(mktemp -d /tmp/tskv-ts-read-latency-data.XXXXXX)
        port=$(free_port)
        taskset -c 0 "$bin/tskv-server" --port "$port" --data-dir "$dir" --shards 1 \
            --fsync always --compaction-core 0 >"$OUT/server.log" 2>&1 &
        server=$!
        wait_ready "$port"
        seed_commands | redis-cli -p "$port" --pipe >/dev/null
        taskset -c 1 "$BENCH" --port "$port" --workload tsbs-cpu-ingest --create-series \
            --hosts "$HOSTS" --clients 16 --rate "$RATE" --duration $((DURATION + 6)) \
            --cpus 1 --quiet >"$OUT/ingest.txt" 2>&1 &
        ingest=$!
        sleep 3
        runs=$((${runs:-0} + 1))
        json="$OUT/reads-$runs.json"
        taskset -c 1 "$BENCH" --port "$port" --clients 1 --rate 200 --duration "$DURATION" \
            --cpus 1 --quiet --json "$json" --command "TS.GET idle" \
            --command "TS.RANGE idle - +" --command "GET idlestr" >/dev/null 2>&1
        wait "$ingest" || true
        redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
        wait "$server" || true
        rm -rf "$dir"
        jq -r --arg round "$round" --arg bin "$bin" '
            .commands as $c
            | [$c["ts.get"], $c["ts.range"], $c["get"]]
            | map(.latency_us.uncorrected) as $l
            | [$round, $bin]
              + ($l | map((.p50_us | floor), (.p99_us | floor)) | map(tostring))
              + [(($l[0].p50_us / $l[2].p50_us) * 100 | round / 100 | tostring)]
            | join("\t")' "$json" | tee -a "$OUT/raw.tsv"
    done
done
echo "(reports in $OUT)"
