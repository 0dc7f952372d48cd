#!/usr/bin/env bash
# Compares tskv with Redis on this machine, in one run, as BENCHMARKING.md asks:
#
# * each server is pinned to core 0 (`taskset -c 0`, tskv with `--shards 1`) and
#   redis-benchmark to core 1;
# * pairs at the same durability: tskv `--fsync always` vs Redis `--appendonly yes
#   --appendfsync always`, and tskv `--fsync never` vs Redis `--appendonly yes
#   --appendfsync no`;
# * `redis-benchmark -t set,get -n N -c 50 -P {1,16} -q --csv`, alternating tskv, Redis,
#   tskv, Redis ... over ROUNDS rounds, each server started fresh on an empty temporary
#   data directory and a free port;
# * prints the host, every raw figure, and a table of median requests/s, the median ratio
#   tskv/Redis with its min-max spread, and redis-benchmark's own CPU use (near 100% means
#   the client, not the server, was the limit).
#
# Usage: scripts/bench-vs-redis.sh            (N=200000 ROUNDS=3 by default)
#        N=500000 ROUNDS=5 scripts/bench-vs-redis.sh
# Needs: redis-server and redis-benchmark (apt-get install redis-server redis-tools), taskset,
# and at least 2 cores.
set -euo pipefail

N=${N:-200000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
PIPELINES=(1 16)
# name | tskv flags | Redis flags
CONFIGS=(
    "fsync-always|--fsync always|--appendonly yes --appendfsync always"
    "fsync-never|--fsync never|--appendonly yes --appendfsync no"
)
SERVER_CORE=0
CLIENT_CORE=1

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

die() { echo "bench-vs-redis: $*" >&2; exit 1; }
for tool in redis-server redis-benchmark redis-cli taskset cargo; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server redis-tools util-linux)"
done
[ "$(nproc --all)" -ge 2 ] || die "needs at least 2 cores (server on core $SERVER_CORE, client on core $CLIENT_CORE)"

echo "== building tskv (cargo build --release)" >&2
cargo build --release >&2
bin="${CARGO_TARGET_DIR:-$repo/target}/release/tskv-server"
[ -x "$bin" ] || die "no binary at $bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/tskv-bench.XXXXXX")
server_pid=""
# Whether process $1 runs (a zombie, exited but not yet waited for, does not).
alive() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}
stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 300); do alive "$server_pid" || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port nothing listens on, below the ephemeral range so that no client socket holds it
# (Redis cannot pick a port itself).
free_port() {
    local port low
    low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 100); do
        port=$((10000 + RANDOM % (low - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

# Starts tskv on a fresh directory; sets server_pid and port.
start_tskv() {
    local flags=$1 dir="$work/data-$RANDOM$RANDOM"
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    taskset -c "$SERVER_CORE" "$bin" --bind 127.0.0.1 --port 0 --data-dir "$dir" --shards 1 $flags \
        >"$dir.stdout" 2>"$dir.stderr" &
    server_pid=$!
    for _ in $(seq 300); do
        if grep -q '^ready: ' "$dir.stdout" 2>/dev/null; then
            port=$(sed -n 's/^ready: listening on [^,]*:\([0-9]*\),.*/\1/p' "$dir.stdout")
            return
        fi
        alive "$server_pid" || die "tskv exited: $(tail -5 "$dir.stderr")"
        sleep 0.1
    done
    die "tskv printed no ready line: $(tail -5 "$dir.stderr")"
}

# Starts Redis on a fresh directory; sets server_pid and port. Retries with another port if
# the chosen one was taken in the meantime.
start_redis() {
    local flags=$1 dir attempt
    for attempt in 1 2 3 4 5; do
        dir="$work/data-$RANDOM$RANDOM"
        mkdir -p "$dir"
        port=$(free_port)
        # shellcheck disable=SC2086
        taskset -c "$SERVER_CORE" redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' \
            --daemonize no --logfile "$dir.log" $flags &
        server_pid=$!
        for _ in $(seq 300); do
            [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return
            alive "$server_pid" || break
            sleep 0.1
        done
        if alive "$server_pid"; then
            die "redis-server did not answer PING: $(tail -3 "$dir.log")"
        fi
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
        grep -q "Address already in use" "$dir.log" || die "redis-server exited: $(tail -3 "$dir.log")"
        echo "port $port was taken (attempt $attempt); trying another" >&2
    done
    die "redis-server could not get a free port"
}

raw="$work/raw.tsv"
# Runs redis-benchmark against $port; appends "config P test server round rps client_cpu%".
bench() {
    local config=$1 server=$2 round=$3 p out timing cpu
    for p in "${PIPELINES[@]}"; do
        out="$work/out.csv"
        timing="$work/time"
        { TIMEFORMAT='%R %U %S'; time taskset -c "$CLIENT_CORE" redis-benchmark -h 127.0.0.1 -p "$port" \
            -t set,get -n "$N" -c "$CLIENTS" -P "$p" -q --csv >"$out" 2>"$work/bench.stderr"; } 2>"$timing"
        cpu=$(tail -n 1 "$timing" | awk '{ if ($1 > 0) printf "%.0f", 100 * ($2 + $3) / $1; else print "?" }')
        grep -qi error "$out" "$work/bench.stderr" && die "redis-benchmark reported an error against $server: $(cat "$out")"
        awk -F'","' -v c="$config" -v p="$p" -v s="$server" -v r="$round" -v cpu="$cpu" \
            'NR > 1 { gsub(/"/, "", $1); print c "\t" p "\t" $1 "\t" s "\t" r "\t" $2 "\t" cpu }' \
            "$out" | tee -a "$raw" >&2
    done
}

host_info() {
    local sha governor thp fs
    sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    git diff --quiet HEAD 2>/dev/null || sha="$sha (with uncommitted changes)"
    governor=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null || echo "not readable")
    thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo "not readable")
    fs=$(findmnt -n -o FSTYPE --target "$work" 2>/dev/null || df -T "$work" | awk 'NR == 2 { print $2 }')
    echo "host:      $(hostname)"
    echo "kernel:    $(uname -r)"
    echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "cores:     $(nproc --all) (server on core $SERVER_CORE, redis-benchmark on core $CLIENT_CORE)"
    echo "governor:  $governor"
    echo "thp:       $thp"
    echo "data fs:   $fs ($work)"
    echo "tskv:      git $sha, --shards 1"
    echo "redis:     $(redis-server --version | awk '{ print $3 }' | sed 's/v=//')"
    echo "load:      redis-benchmark -t set,get -n $N -c $CLIENTS -P {${PIPELINES[*]}} -q --csv, $ROUNDS rounds"
}

echo "== raw results: config P test server round rps client-cpu%" >&2
for round in $(seq "$ROUNDS"); do
    for entry in "${CONFIGS[@]}"; do
        IFS='|' read -r name tskv_flags redis_flags <<<"$entry"
        start_tskv "$tskv_flags"
        bench "$name" tskv "$round"
        stop_server
        start_redis "$redis_flags"
        bench "$name" redis "$round"
        stop_server
    done
done

echo
host_info
echo
awk -F'\t' '
    function median(list,   n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        row = $1 "\t" $2 "\t" $3
        if (!(row in seen)) { seen[row] = 1; order[++rows] = row }
        rps[row, $4, $5] = $6; rounds[$5] = 1
        cpu[row, $4] = cpu[row, $4] " " $7
    }
    END {
        printf "%-13s %3s %-4s %14s %14s %13s %15s %12s\n", "config", "P", "test", "tskv req/s", "redis req/s", "tskv/redis", "ratio min-max", "client cpu%"
        for (i = 1; i <= rows; i++) {
            row = order[i]; t = ""; r = ""; q = ""; lo = ""; hi = ""
            for (k in rounds) {
                if (!((row, "tskv", k) in rps) || !((row, "redis", k) in rps)) continue
                a = rps[row, "tskv", k]; b = rps[row, "redis", k]
                t = t " " a; r = r " " b
                if (b > 0) { x = a / b; q = q " " x; if (lo == "" || x < lo) lo = x; if (hi == "" || x > hi) hi = x }
            }
            split(row, f, "\t")
            printf "%-13s %3s %-4s %14.0f %14.0f %13.2f %7.2f-%-7.2f %5.0f/%-6.0f\n", f[1], f[2], f[3], median(t), median(r), median(q), lo, hi, median(cpu[row, "tskv"]), median(cpu[row, "redis"])
        }
        print ""
        print "req/s: median over rounds; tskv/redis: median of the per-round ratios, with min-max;"
        print "client cpu%: median CPU use of redis-benchmark against tskv/redis (near 100: client-bound)."
    }
' "$raw"
