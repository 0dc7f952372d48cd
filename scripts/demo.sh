#!/usr/bin/env bash
# A tour of tskv in one command: load, profile, crash, recover, inspect.
#
# 1. Builds the release binaries, and the frame-pointer profiling build of tskv-server
#    when perf may record here (perf/README.md).
# 2. Starts tskv-server (`--fsync always`) on a fresh data directory and drives it with
#    tskv-bench for --seconds (a SET:GET 1:1 mix, zipfian keys) with its live progress
#    line, while perf/record.sh records the server.
# 3. Proves durability across a crash: a small writer (python3, 8 connections) SETs
#    numbered keys and logs each key the server acknowledged; the server is killed with
#    SIGKILL mid-stream, restarted on the same directory, and every acknowledged key must
#    read back with its value. Exit status 1 if any is missing or wrong.
# 4. Draws the flamegraph (perf/flamegraph.sh) and shows `tskv-tool info` and `verify`
#    of the data directory.
#
# Usage: scripts/demo.sh [--seconds N] [--out DIR] [--no-perf]
# Needs: cargo, python3; perf for the profile (skipped with a note without it).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/demo.sh [--seconds N] [--crash-after S] [--out DIR] [--no-perf]

Builds tskv, loads it with tskv-bench while perf records it, kills it with SIGKILL in
the middle of a stream of acknowledged writes, restarts it and checks that every
acknowledged write survived, then prints the flamegraph's path and tskv-tool's view of
the data directory.

Options:
  --seconds N       length of the tskv-bench run (default 20)
  --crash-after S   seconds of acknowledged writes before the SIGKILL (default 2)
  --out DIR         where to keep the data directory, the bench JSON, the recording
                    and the SVG (default: a new temporary directory, kept)
  --no-perf         skip the profiling build, the recording and the flamegraph
  -h, --help        this text

Exit status: 0 every acknowledged key read back; 1 a key was missing or wrong, or a
step failed; 2 usage.
EOF
}

die() { echo "demo: $*" >&2; exit 1; }
die_usage() { echo "demo: $*" >&2; echo "Try 'scripts/demo.sh --help'." >&2; exit 2; }

seconds=20
crash_after=2
out=""
use_perf=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds="${2:-}"; shift 2 || die_usage "--seconds needs a value" ;;
        --crash-after) crash_after="${2:-}"; shift 2 || die_usage "--crash-after needs a value" ;;
        --out) out="${2:-}"; shift 2 || die_usage "--out needs a value" ;;
        --no-perf) use_perf=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument '$1'" ;;
    esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die_usage "--seconds must be a positive integer, got '$seconds'"
[[ "$crash_after" =~ ^[0-9]+([.][0-9]+)?$ ]] || die_usage "--crash-after must be a number, got '$crash_after'"

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
for tool in cargo python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

if [[ -z "$out" ]]; then
    out=$(mktemp -d "${TMPDIR:-/tmp}/tskv-demo.XXXXXX")
else
    mkdir -p "$out"
fi
out=$(cd "$out" && pwd)
data="$out/data"
[[ ! -e "$data" ]] || die "$data exists already: give --out a new directory"

step() { printf '\n== %s\n' "$*"; }

server_pid=""
bench_pid=""
record_pid=""
writer_pid=""
# Whether process $1 runs (a zombie, exited but not yet waited for, does not).
alive() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}
stop_pid() {
    local pid=$1 signal=${2:-TERM}
    [[ -n "$pid" ]] || return 0
    kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop_pid "$bench_pid"
    stop_pid "$writer_pid"
    # record.sh runs in its own session (setsid): its group holds perf and its sleep.
    if [[ -n "$record_pid" ]]; then
        kill -TERM -- "-$record_pid" 2>/dev/null || true
        wait "$record_pid" 2>/dev/null || true
    fi
    stop_pid "$server_pid"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Pinning as in BENCHMARKING.md when there are 2 cores or more.
server_pin=()
bench_pin=()
bench_cpus=()
if (($(nproc) >= 2)); then
    server_pin=(taskset -c 0)
    bench_pin=(taskset -c 1)
    bench_cpus=(--cpus 1)
    command -v taskset >/dev/null || { server_pin=(); bench_pin=(); bench_cpus=(); }
fi

# perf: usable if it can record a child of ours (the server will be one too).
perf_note=""
if ((!use_perf)); then
    perf_note="skipped (--no-perf)"
elif ! command -v perf >/dev/null; then
    perf_note="skipped: perf is not installed (Debian: apt-get install linux-perf)"
elif ! perf record -q -e cpu-clock -o "$out/probe.data" -- true >/dev/null 2>&1; then
    perf_note="skipped: perf may not record here (perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo '?'); see perf/README.md)"
fi
rm -f "$out/probe.data"
[[ -z "$perf_note" ]] || use_perf=0

step "building (cargo build --release)"
cargo build --release
target="${CARGO_TARGET_DIR:-$repo/target}"
bin_dir="$target/release"
server_bin="$bin_dir/tskv-server"
if ((use_perf)); then
    # The profiling build of perf/README.md, in its own target directory.
    prof_target="$target/profiling-fp"
    step "building the profiling tskv-server (frame pointers, debug info) into $prof_target"
    RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C force-frame-pointers=yes" CARGO_TARGET_DIR="$prof_target" \
        cargo build --profile profiling --bin tskv-server
    server_bin="$prof_target/profiling/tskv-server"
fi

# Starts the server on $data; sets server_pid and port; prints the ready line.
start_server() {
    local log="$out/server-$1"
    "${server_pin[@]}" "$server_bin" --port 0 --data-dir "$data" --shards 1 --fsync always \
        >"$log.stdout" 2>"$log.stderr" &
    server_pid=$!
    for _ in $(seq 600); do
        if grep -q '^ready: ' "$log.stdout" 2>/dev/null; then
            port=$(sed -n 's/^ready: listening on [^,]*:\([0-9]*\),.*/\1/p' "$log.stdout")
            cat "$log.stdout"
            return
        fi
        alive "$server_pid" || die "tskv-server exited: $(tail -5 "$log.stderr")"
        sleep 0.05
    done
    die "tskv-server printed no ready line: $(tail -5 "$log.stderr")"
}

step "starting tskv-server --fsync always --shards 1 on $data"
start_server first

step "tskv-bench: ${seconds}s, SET:GET 1:1, zipfian keys, 50 connections x pipeline 16"
record_status=""
if ((use_perf)); then
    if ((seconds >= 10)); then delay=3; else delay=1; fi
    window=$((seconds - delay - 1))
    ((window >= 1)) || window=1
    setsid "$repo/perf/record.sh" --pid "$server_pid" --delay "$delay" --seconds "$window" \
        -o "$out/server.perf.data" 2>"$out/record.log" &
    record_pid=$!
    echo "perf/record.sh --pid $server_pid records seconds $delay to $((delay + window)) (log: $out/record.log)"
fi
"${bench_pin[@]}" "$bin_dir/tskv-bench" --port "$port" "${bench_cpus[@]}" --clients 50 --pipeline 16 \
    --ratio 1:1 --key-dist zipfian --keys 100000 --value-size 16-256 --duration "$seconds" \
    --json "$out/bench.json" &
bench_pid=$!
wait "$bench_pid" || die "tskv-bench failed"
bench_pid=""
if [[ -n "$record_pid" ]]; then
    record_status=0
    wait "$record_pid" || record_status=$?
    record_pid=""
    case "$record_status" in
        0) perf_note="recorded: $out/server.perf.data" ;;
        77) perf_note="skipped: perf was not permitted to record the server ($(tail -n 1 "$out/record.log"))"; use_perf=0 ;;
        *) perf_note="failed (exit $record_status): see $out/record.log"; use_perf=0 ;;
    esac
fi

step "durability across a crash: acknowledged writes, then SIGKILL"
cat >"$out/crash.py" <<'EOF'
"""Writer and checker for the crash demo.

write PORT DIR CONNS: each connection SETs demo:N (N = its index, its index + CONNS, ...)
to value(N), one request at a time, and appends N to DIR/acked once the reply is +OK.
In-flight keys (sent, no reply) go to DIR/inflight when the connection breaks.
check PORT DIR: GETs every acknowledged key and reports acknowledged, verified, missing
and wrong; exit 1 unless missing and wrong are 0.
"""
import socket
import sys
import threading
import time


def value(n):
    return ("value-%d-" % n + "x" * (n % 61)).encode()


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Reader:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def bulk(self):
        line = self.line()
        if line.startswith(b"$-1"):
            return None
        if not line.startswith(b"$"):
            raise ValueError("unexpected reply %r" % line)
        return self.exact(int(line[1:]))


def write(port, directory, conns):
    lock = threading.Lock()
    acked = open(directory + "/acked", "w")
    inflight = open(directory + "/inflight", "w")
    deadline = time.monotonic() + 120  # a safety net: the demo kills the server long before

    def run(first):
        try:
            sock = socket.create_connection(("127.0.0.1", port))
        except OSError:
            return
        reader = Reader(sock)
        n = first
        while time.monotonic() < deadline:
            key = b"demo:%d" % n
            try:
                sock.sendall(command(b"SET", key, value(n)))
                reply = reader.line()
            except (OSError, ConnectionError):
                with lock:
                    inflight.write("%d\n" % n)
                    inflight.flush()
                return
            if reply != b"+OK":
                sys.stderr.write("demo:%d: unexpected reply %r\n" % (n, reply))
                return
            with lock:
                acked.write("%d\n" % n)
                acked.flush()
            n += conns

    threads = [threading.Thread(target=run, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def check(port, directory):
    acked = [int(x) for x in open(directory + "/acked").read().split()]
    inflight = [int(x) for x in open(directory + "/inflight").read().split()]
    sock = socket.create_connection(("127.0.0.1", port))
    reader = Reader(sock)

    def get_all(keys):
        found = {}
        for i in range(0, len(keys), 512):
            batch = keys[i:i + 512]
            sock.sendall(b"".join(command(b"GET", b"demo:%d" % n) for n in batch))
            for n in batch:
                found[n] = reader.bulk()
        return found

    got = get_all(acked)
    missing = [n for n in acked if got[n] is None]
    wrong = [n for n in acked if got[n] is not None and got[n] != value(n)]
    verified = len(acked) - len(missing) - len(wrong)
    landed = sum(1 for v in get_all(inflight).values() if v is not None)
    print("acknowledged: %d" % len(acked))
    print("verified:     %d" % verified)
    print("missing:      %d%s" % (len(missing), "  e.g. demo:%d" % missing[0] if missing else ""))
    print("wrong value:  %d%s" % (len(wrong), "  e.g. demo:%d" % wrong[0] if wrong else ""))
    print("in flight at the kill (sent, never acknowledged): %d, of which present now: %d"
          " (either way is correct)" % (len(inflight), landed))
    return 0 if not missing and not wrong and acked else 1


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(check(int(sys.argv[2]), sys.argv[3]))
EOF
python3 "$out/crash.py" write "$port" "$out" 8 &
writer_pid=$!
for _ in $(seq 100); do
    [[ -s "$out/acked" ]] && break
    alive "$writer_pid" || die "the writer stopped before any acknowledgement"
    sleep 0.05
done
sleep "$crash_after"
acked_before=$(wc -l <"$out/acked")
kill -KILL "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
echo "kill -9 tskv-server after ${crash_after}s of writing (about $acked_before keys acknowledged by then)"
wait "$writer_pid" || true
writer_pid=""

step "restarting tskv-server on the same data directory"
started=$(date +%s.%N)
start_server second
awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "ready %.2f s after the start (WAL replay included)\n", b - a }'
grep -iE 'recover|replay|truncat|torn' "$out/server-second.stderr" | tail -n 5 || true

step "reading back every acknowledged key"
check_status=0
python3 "$out/crash.py" check "$port" "$out" | tee "$out/durability.txt" || check_status=$?
stop_pid "$server_pid"
server_pid=""

svg=""
if ((use_perf)); then
    step "flamegraph (perf/flamegraph.sh)"
    flame_status=0
    "$repo/perf/flamegraph.sh" -i "$out/server.perf.data" -o "$out/server.svg" \
        --title "tskv-server under tskv-bench SET:GET 1:1, -c 50 -P 16 (scripts/demo.sh)" || flame_status=$?
    case "$flame_status" in
        0) svg="$out/server.svg" ;;
        77) perf_note="flamegraph skipped: perf or inferno unavailable (perf/README.md, section 5)" ;;
        *) perf_note="flamegraph failed (exit $flame_status)" ;;
    esac
fi

step "tskv-tool info $data"
"$bin_dir/tskv-tool" info "$data"
step "tskv-tool verify $data"
"$bin_dir/tskv-tool" verify "$data" || echo "(tskv-tool verify exited $?)"
first_key=$(head -n 1 "$out/acked")
step "tskv-tool get $data demo:$first_key"
"$bin_dir/tskv-tool" get "$data" "demo:$first_key" || true

step "summary"
bench_line=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
t = r["total"]
print("%.0f ops/s over %.1f s, closed loop; p99 %.0f us; tskv-bench CPU %.0f%% of one core"
      % (t["ops_per_s"], r["window_s"], t["latency_us"]["uncorrected"]["p99_us"], r["cpu"]["process_pct_of_one_core"]))
' "$out/bench.json" 2>/dev/null || echo "see $out/bench.json")
echo "load:        $bench_line"
echo "durability:  $(tr '\n' ' ' <"$out/durability.txt" | sed 's/  */ /g; s/ in flight.*//')"
echo "profile:     ${svg:-none} ${perf_note:+($perf_note)}"
echo "bench JSON:  $out/bench.json"
echo "data dir:    $data"
echo "everything is kept in $out (rm -rf it when done)"
if ((check_status != 0)); then
    echo "demo: FAILED: an acknowledged key did not survive the crash" >&2
    exit 1
fi
