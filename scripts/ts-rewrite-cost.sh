#!/usr/bin/env bash
# Counts the instructions the shard spends on the two time-series writes that used to
# rewrite chunks on its loop: a `TS.DEL` of a long range, and a seal that takes one old
# out-of-order sample. Instructions, not time, so a busy host does not blur the figures;
# run it with two builds to compare them in one sitting.
#
# Method, per binary (BINS, default the release `tskv-server`):
# * A fresh server (`--shards 1 --compaction-core 0`) gets one series (`CHUNK_SIZE 4096`)
#   of SAMPLES samples ten seconds apart in `TS.MADD` batches of 500, then `SAVE`, and is
#   restarted under `valgrind --tool=callgrind` (so the figures include what reading the
#   chunks from disk costs); a `TS.GET` loads the series' state before counting starts.
# * "delete": counters zeroed, then `TS.DEL` of the middle half of the series.
# * "old sample": on a second fresh copy, counters zeroed, then one `TS.ADD` in the
#   middle of the series and 2,047 after its newest sample (two seals, one of them takes
#   the old sample).
# * Prints the instructions of each (callgrind's summary, all threads).
#
# Usage: scripts/ts-rewrite-cost.sh   (environment: BINS SAMPLES PORT)
set -euo pipefail
cd "$(dirname "$0")/.."

BINS=${BINS:-target/release/tskv-server}
SAMPLES=${SAMPLES:-1000000}
PORT=${PORT:-7811}
STEP_MS=10000
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for tool in redis-cli valgrind callgrind_control python3; do
    command -v "$tool" >/dev/null || { echo "ts-rewrite-cost: needs $tool" >&2; exit 1; }
done

# RESP for stdin of `redis-cli --pipe`: one command per line of words.
resp() {
    python3 -c '
import sys
for line in sys.stdin:
    words = line.split()
    sys.stdout.write("*%d\r\n" % len(words))
    for w in words:
        sys.stdout.write("$%d\r\n%s\r\n" % (len(w), w))
'
}

python3 -c "
print('TS.CREATE s CHUNK_SIZE 4096')
for b in range(0, $SAMPLES, 500):
    print('TS.MADD ' + ' '.join('s %d %s' % (i * $STEP_MS, (i % 977) / 8) for i in range(b, min(b + 500, $SAMPLES))))
" | resp >"$WORK/load.resp"
python3 -c "
print('TS.ADD s %d 1.5' % ($SAMPLES // 2 * $STEP_MS + 5))
for i in range($SAMPLES, $SAMPLES + 2047):
    print('TS.ADD s %d %s' % (i * $STEP_MS, (i % 977) / 8))
" | resp >"$WORK/old-sample.resp"
DEL_FROM=$((SAMPLES / 4 * STEP_MS))
DEL_TO=$((SAMPLES * 3 / 4 * STEP_MS))

wait_ready() {
    for _ in $(seq 1 300); do
        redis-cli -p "$PORT" PING 2>/dev/null | grep -q PONG && return 0
        sleep 1
    done
    echo "ts-rewrite-cost: the server did not start" >&2
    exit 1
}

# measure BIN NAME: loads a fresh copy, restarts it under callgrind, runs NAME's writes.
measure() {
    local bin=$1 name=$2 dir="$WORK/data"
    rm -rf "$dir"
    "$bin" --shards 1 --port "$PORT" --data-dir "$dir" --compaction-core 0 >/dev/null 2>&1 &
    wait_ready
    redis-cli -p "$PORT" --pipe <"$WORK/load.resp" >/dev/null
    redis-cli -p "$PORT" SAVE >/dev/null
    redis-cli -p "$PORT" SHUTDOWN >/dev/null 2>&1 || true
    wait
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" \
        "$bin" --shards 1 --port "$PORT" --data-dir "$dir" --compaction-core 0 >/dev/null 2>&1 &
    local pid=$!
    wait_ready
    # Loads the series' state (every chunk key is walked once after a restart).
    redis-cli -p "$PORT" TS.GET s >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    case $name in
        delete) redis-cli -p "$PORT" TS.DEL s "$DEL_FROM" "$DEL_TO" >/dev/null ;;
        old-sample) redis-cli -p "$PORT" --pipe <"$WORK/old-sample.resp" >/dev/null ;;
    esac
    callgrind_control -d "$pid" >/dev/null 2>&1
    redis-cli -p "$PORT" SHUTDOWN >/dev/null 2>&1 || true
    wait
    # The dump after zeroing is the second file of the process.
    local dump
    dump=$(ls "$WORK"/cg."$pid".* | head -1)
    printf '%-40s %-10s %15s instructions\n' "$bin" "$name" "$(sed -n 's/^summary: //p' "$dump")"
    rm -f "$WORK"/cg.*
}

for bin in $BINS; do
    measure "$bin" delete
    measure "$bin" old-sample
done
