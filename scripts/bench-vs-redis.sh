#!/usr/bin/env bash
# Compares tskv with Redis on this machine, in one run, as BENCHMARKING.md asks.
#
# * Each server is pinned to core 0 (`taskset -c 0`, tskv with `--shards 1`), the load
#   generator to core 1 (`taskset -c 1`, tskv-bench also with `--cpus 1`).
# * Pairs at the same durability: tskv `--fsync always` vs Redis `--appendonly yes
#   --appendfsync always`, and tskv `--fsync never` vs Redis `--appendonly yes
#   --appendfsync no`.
# * Two load generators. redis-benchmark (`-t set,get -c 50 -P {1,16}`), and tskv-bench:
#   - closed loop SET and GET, measured apart (`--ratio 1:0`, then `--ratio 0:1` after
#     every key was written once), at `--pipeline 1` and `--pipeline 16` with 50
#     connections and `--pipeline-batch` (a batch of P, then wait for all P replies, as
#     redis-benchmark's -P does): the same shape as redis-benchmark's SET and GET tests,
#     so the two tools can be checked against each other;
#   - open loop at a fixed, modest rate (RATE, SET:GET 1:1, after a load), reporting
#     latency measured from the intended send time (corrected for coordinated
#     omission): p50, p99, p99.9, max;
#   - YCSB A, B and C (`--workload ycsb-a --load` ...) when this tskv-bench has
#     `--workload`; skipped with a note otherwise.
#   Both tools use the same key space (`key:` + 12 digits, KEYS keys) and value size.
# * Every measurement runs on a freshly started server with an empty temporary data
#   directory and a free port, alternating tskv, Redis, tskv, Redis ... over ROUNDS rounds.
# * Prints the host, every raw figure, and per workload: the median ops/s of each side,
#   the median of the per-round ratios tskv/Redis with its min-max, and the load
#   generator's own CPU use (marked `!` near saturation: then the client was the limit).
#   Also the agreement of the two tools: tskv-bench ops/s / redis-benchmark req/s against
#   the same Redis, closed loop, -c 50 -P 16.
# * Keeps every JSON report of tskv-bench, the raw table and the summary in --out DIR,
#   and per tskv-bench workload and round a folder charts/NAME/ with `tskv-bench compare`
#   of tskv (A) against Redis (B): compare.txt (ops/s and percentiles side by side, ratio
#   redis/tskv), compare.svg (both latency spectra in one chart), and each side's own
#   charts from `tskv-bench plot` in tskv/ and redis/.
#
# Usage: scripts/bench-vs-redis.sh [--quick] [--rounds N] [--duration S] [--out DIR] ...
#        (scripts/bench-vs-redis.sh --help lists every option and its variable)
# Needs: redis-server and redis-benchmark (apt-get install redis-server redis-tools), jq,
# taskset, cargo, and at least 2 cores.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/bench-vs-redis.sh [options]

Compares tskv with Redis side by side (BENCHMARKING.md): servers on core 0, load
generators (redis-benchmark and tskv-bench) on core 1, same durability on both sides,
alternating tskv and Redis over several rounds.

Options (each also settable by the environment variable in brackets):
  --quick           smoke test: 1 round, 1 s per step, small N and key space;
                    the figures mean nothing, the plumbing is exercised
  --rounds N        rounds of A B alternation                     [ROUNDS, default 3]
  --n N             requests per redis-benchmark test             [N, default 200000]
  --duration S      measured seconds per tskv-bench step          [DURATION, default 5]
  --warmup S        tskv-bench warm-up seconds before measuring   [WARMUP, default 1]
  --rate R          open-loop rate in ops/s (SET:GET 1:1)         [RATE, default 50000]
  --keys K          key space of both tools                       [KEYS, default 100000]
  --value-size B    value bytes of both tools                     [VALUE_SIZE, default 32]
  --clients C       connections of both tools                     [CLIENTS, default 50]
  --out DIR         where to keep JSON reports, raw.tsv and summary.txt
                    (default: a new temporary directory; its path is printed)
  -h, --help        this text

A full run takes about ROUNDS x 2 configurations x 2 servers x (9 x (DURATION +
WARMUP) s + key loads + redis-benchmark): roughly a quarter of an hour with the
defaults, YCSB included.
EOF
}

die() { echo "bench-vs-redis: $*" >&2; exit 1; }

N=${N:-200000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
RATE=${RATE:-50000}
KEYS=${KEYS:-100000}
VALUE_SIZE=${VALUE_SIZE:-32}
CLIENTS=${CLIENTS:-50}
out=${OUT:-}
quick=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --rounds) ROUNDS="${2:-}"; shift 2 || die "--rounds needs a value" ;;
        --n) N="${2:-}"; shift 2 || die "--n needs a value" ;;
        --duration) DURATION="${2:-}"; shift 2 || die "--duration needs a value" ;;
        --warmup) WARMUP="${2:-}"; shift 2 || die "--warmup needs a value" ;;
        --rate) RATE="${2:-}"; shift 2 || die "--rate needs a value" ;;
        --keys) KEYS="${2:-}"; shift 2 || die "--keys needs a value" ;;
        --value-size) VALUE_SIZE="${2:-}"; shift 2 || die "--value-size needs a value" ;;
        --clients) CLIENTS="${2:-}"; shift 2 || die "--clients needs a value" ;;
        --out) out="${2:-}"; shift 2 || die "--out needs a value" ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
if ((quick)); then
    ROUNDS=1 N=20000 DURATION=1 WARMUP=0 KEYS=10000
fi
for var in ROUNDS N KEYS VALUE_SIZE CLIENTS; do
    [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer, got '${!var}'"
done
for var in DURATION WARMUP RATE; do
    [[ "${!var}" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "$var must be a number, got '${!var}'"
done

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

for tool in redis-server redis-benchmark redis-cli taskset cargo jq; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server redis-tools util-linux jq)"
done
[ "$(nproc --all)" -ge 2 ] || die "needs at least 2 cores (server on core $SERVER_CORE, client on core $CLIENT_CORE)"

echo "== building tskv (cargo build --release)" >&2
cargo build --release >&2
bin_dir="${CARGO_TARGET_DIR:-$repo/target}/release"
bin="$bin_dir/tskv-server"
bench_bin="$bin_dir/tskv-bench"
[ -x "$bin" ] || die "no binary at $bin"
[ -x "$bench_bin" ] || die "no binary at $bench_bin"

# tskv-bench grows: use the YCSB presets and --load only where this build has them.
bench_help=$("$bench_bin" --help)
has_workload=0
has_load=0
grep -q -- '--workload' <<<"$bench_help" && has_workload=1
grep -qE -- '^ *--load( |$)' <<<"$bench_help" && has_load=1
notes=()
if ((!has_workload)); then
    notes+=("this tskv-bench has no --workload: YCSB A/B/C rows skipped (rebuild once it has)")
elif ((!has_load)); then
    notes+=("this tskv-bench has no --load: YCSB runs are preceded by a sequential SET of every key instead")
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tskv-bench.XXXXXX")
if [[ -z "$out" ]]; then
    out=$(mktemp -d "${TMPDIR:-/tmp}/tskv-bench-results.XXXXXX")
else
    mkdir -p "$out"
fi
out=$(cd "$out" && pwd)
echo "== results go to $out" >&2
server_pid=""
client_pid=""
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
cleanup() {
    if [ -n "$client_pid" ]; then
        kill -TERM "$client_pid" 2>/dev/null || true
        wait "$client_pid" 2>/dev/null || true
    fi
    stop_server
    rm -rf "$work"
}
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

# Starts server $1 (tskv|redis) of configuration $2 on a fresh directory and port.
start_server() {
    if [ "$1" = tskv ]; then start_tskv "$tskv_flags"; else start_redis "$redis_flags"; fi
}

raw="$out/raw.tsv"
printf 'config\tworkload\tserver\tround\tops_per_s\tclient_cpu_pct\tclient_busy_max_pct\tp50_us\tp99_us\tp99_9_us\tmax_us\n' >"$raw"
# Appends one raw row: config workload server round ops cpu busy p50 p99 p99.9 max.
record() {
    local IFS=$'\t'
    echo "$*" | tee -a "$raw" >&2
}

# Runs redis-benchmark against $port, one SET and one GET test per pipeline depth.
redis_benchmark() {
    local server=$1 round=$2 p csv timing cpu
    for p in "${PIPELINES[@]}"; do
        csv="$work/out.csv"
        timing="$work/time"
        { TIMEFORMAT='%R %U %S'; time taskset -c "$CLIENT_CORE" redis-benchmark -h 127.0.0.1 -p "$port" \
            -t set,get -n "$N" -c "$CLIENTS" -P "$p" -r "$KEYS" -d "$VALUE_SIZE" -q --csv \
            >"$csv" 2>"$work/bench.stderr"; } 2>"$timing"
        cpu=$(tail -n 1 "$timing" | awk '{ if ($1 > 0) printf "%.0f", 100 * ($2 + $3) / $1; else print "?" }')
        grep -qi error "$csv" "$work/bench.stderr" && die "redis-benchmark reported an error against $server: $(cat "$csv")"
        cp "$csv" "$out/r$round-$config-$server-redis-benchmark-P$p.csv"
        while IFS=, read -r test rps _; do
            test=${test//\"/}
            rps=${rps//\"/}
            [ "$test" = test ] && continue
            # redis-benchmark's busy share is its CPU share: it is one thread.
            record "$config" "rb $test P$p" "$server" "$round" "$rps" "$cpu" "$cpu" - - - -
        done <"$csv"
    done
}

# Runs tskv-bench on the client core against $port with the common flags and "$@"; fails
# the script with tskv-bench's own message if it fails.
tskv_bench() {
    local status=0
    taskset -c "$CLIENT_CORE" "$bench_bin" --host 127.0.0.1 --port "$port" --cpus "$CLIENT_CORE" \
        --clients "$CLIENTS" --keys "$KEYS" --value-size "$VALUE_SIZE" --quiet "$@" \
        >"$work/tb.stdout" 2>"$work/tb.stderr" &
    client_pid=$!
    wait "$client_pid" || status=$?
    client_pid=""
    if ((status != 0)); then
        cat "$work/tb.stdout" "$work/tb.stderr" >&2
        die "tskv-bench failed (exit $status): tskv-bench $*"
    fi
}

# Writes every key of the key space once, in order, unmeasured in the table.
load_keys() {
    tskv_bench --ratio 1:0 --key-dist sequential --requests "$KEYS" --pipeline 16
}

# One measured tskv-bench step: label, then tskv-bench flags. Keeps the JSON report and
# appends the raw row.
measure() {
    local label=$1 json
    shift
    json="$out/r$round-$config-$server-${label// /_}.json"
    tskv_bench --json "$json" "$@"
    local fields
    fields=$(jq -r '
        (.total.latency_us.corrected // .total.latency_us.uncorrected) as $l
        | [.total.ops_per_s, .cpu.process_pct_of_one_core, ([.cpu.threads[].busy_pct] | max),
           $l.p50_us, $l.p99_us, $l.p99_9_us, $l.max_us, .total.errors + .total.unexpected]
        | map(if type == "number" then (. * 10 | round / 10) else . end) | @tsv' "$json")
    local ops cpu busy p50 p99 p999 max errors
    IFS=$'\t' read -r ops cpu busy p50 p99 p999 max errors <<<"$fields"
    ((${errors%.*} == 0)) || echo "warning: $errors errors or unexpected replies in $json" >&2
    if [[ $label != open* ]]; then p50=- p99=- p999=- max=-; fi
    record "$config" "$label" "$server" "$round" "$ops" "$cpu" "$busy" "$p50" "$p99" "$p999" "$max"
}

# Every measurement of one round for one configuration, alternating tskv and Redis.
run_round() {
    local p w
    for server in tskv redis; do
        start_server "$server"; redis_benchmark "$server" "$round"; stop_server
    done
    for server in tskv redis; do
        start_server "$server"
        for p in "${PIPELINES[@]}"; do
            measure "tb SET P$p" --ratio 1:0 --pipeline "$p" --pipeline-batch --duration "$DURATION" --warmup "$WARMUP"
        done
        stop_server
    done
    for server in tskv redis; do
        start_server "$server"
        load_keys
        for p in "${PIPELINES[@]}"; do
            measure "tb GET P$p" --ratio 0:1 --pipeline "$p" --pipeline-batch --duration "$DURATION" --warmup "$WARMUP"
        done
        stop_server
    done
    # Open loop: pipeline 16 lets a send leave on schedule even while an earlier reply on
    # the same connection is late; latency counts from the intended send time either way.
    for server in tskv redis; do
        start_server "$server"
        load_keys
        measure "open 1:1 @$RATE" --rate "$RATE" --ratio 1:1 --pipeline 16 \
            --duration "$DURATION" --warmup "$WARMUP"
        stop_server
    done
    if ((has_workload)); then
        for w in a b c; do
            for server in tskv redis; do
                start_server "$server"
                if ((has_load)); then
                    measure "ycsb-$w" --workload "ycsb-$w" --load --duration "$DURATION" --warmup "$WARMUP"
                else
                    load_keys
                    measure "ycsb-$w" --workload "ycsb-$w" --duration "$DURATION" --warmup "$WARMUP"
                fi
                stop_server
            done
        done
    fi
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
    echo "cores:     $(nproc --all) (servers on core $SERVER_CORE, redis-benchmark and tskv-bench on core $CLIENT_CORE)"
    echo "governor:  $governor"
    echo "thp:       $thp"
    echo "data fs:   $fs ($work)"
    echo "tskv:      git $sha, --shards 1"
    echo "redis:     $(redis-server --version | awk '{ print $3 }' | sed 's/v=//')"
    echo "load:      redis-benchmark -t set,get -n $N -c $CLIENTS -P {${PIPELINES[*]}} -r $KEYS -d $VALUE_SIZE;"
    echo "           tskv-bench --clients $CLIENTS --keys $KEYS --value-size $VALUE_SIZE --duration $DURATION --warmup $WARMUP;"
    echo "           open loop --rate $RATE --ratio 1:1; $ROUNDS round(s)$( ((quick)) && echo ', --quick: a smoke test, not a measurement')"
}

echo "== raw results: config workload server round ops/s client-cpu% busy% p50 p99 p99.9 max (µs)" >&2
for round in $(seq "$ROUNDS"); do
    for entry in "${CONFIGS[@]}"; do
        IFS='|' read -r config tskv_flags redis_flags <<<"$entry"
        run_round
    done
done

# Per tskv-bench workload and round: tskv against Redis with `tskv-bench compare`, and
# each side's charts with `tskv-bench plot`, in charts/ROUND-CONFIG-WORKLOAD/.
compare_runs() {
    local json other name dir
    for json in "$out"/r*-tskv-*.json; do
        [ -e "$json" ] || continue
        other=${json/-tskv-/-redis-}
        [ -e "$other" ] || continue
        name=$(basename "$json" .json)
        name=$(tr -c 'A-Za-z0-9_.\n-' '_' <<<"${name/-tskv-/-}")
        dir="$out/charts/$name"
        mkdir -p "$dir"
        cp "$json" "$dir/tskv.json"
        cp "$other" "$dir/redis.json"
        "$bench_bin" compare "$dir/tskv.json" "$dir/redis.json" --out "$dir" >"$dir/compare.txt" \
            || die "tskv-bench compare failed on $json"
        "$bench_bin" plot "$dir/tskv.json" --out "$dir/tskv" >/dev/null || die "tskv-bench plot failed on $json"
        "$bench_bin" plot "$dir/redis.json" --out "$dir/redis" >/dev/null || die "tskv-bench plot failed on $other"
    done
}

summarize() {
    echo
    host_info
    for note in "${notes[@]}"; do echo "note:      $note"; done
    echo
    awk -F'\t' '
        function median(list,   n, a, i, j, t) {
            n = split(list, a, " ")
            if (n == 0) return ""
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        NR == 1 { next }
        {
            row = $1 "\t" $2
            if (!(row in seen)) { seen[row] = 1; order[++rows] = row }
            ops[row, $3, $4] = $5; rounds[$4] = 1
            cpu[row, $3] = cpu[row, $3] " " $6; busy[row, $3] = busy[row, $3] " " $7
            if ($8 != "-") { lat[row, $3, "p50"] = lat[row, $3, "p50"] " " $8; lat[row, $3, "p99"] = lat[row, $3, "p99"] " " $9
                             lat[row, $3, "p999"] = lat[row, $3, "p999"] " " $10; lat[row, $3, "max"] = lat[row, $3, "max"] " " $11 }
        }
        END {
            warn = 90
            printf "%-12s %-18s %12s %12s %10s %13s %15s\n", "config", "workload", "tskv ops/s", "redis ops/s", "tskv/redis", "ratio min-max", "client cpu%"
            for (i = 1; i <= rows; i++) {
                row = order[i]; t = ""; r = ""; q = ""; lo = ""; hi = ""
                for (k in rounds) {
                    if (!((row, "tskv", k) in ops) || !((row, "redis", k) in ops)) continue
                    a = ops[row, "tskv", k]; b = ops[row, "redis", k]
                    t = t " " a; r = r " " b
                    if (b > 0) { x = a / b; q = q " " x; if (lo == "" || x < lo) lo = x; if (hi == "" || x > hi) hi = x }
                }
                split(row, f, "\t")
                ct = median(cpu[row, "tskv"]); cr = median(cpu[row, "redis"])
                bt = median(busy[row, "tskv"]); br = median(busy[row, "redis"])
                mark = (bt >= warn || br >= warn) ? " !" : ""
                if (mark != "") saturated = 1
                printf "%-12s %-18s %12.0f %12.0f %10.2f %6.2f-%-6.2f %7.0f/%.0f%s\n", f[1], f[2], median(t), median(r), median(q), lo, hi, ct, cr, mark
            }
            print ""
            print "ops/s: median over rounds (rb = redis-benchmark req/s, tb = tskv-bench, closed loop unless open);"
            print "tskv/redis: median of the per-round ratios, with min-max;"
            print "client cpu%: median CPU use of the load generator against tskv/redis, % of one core."
            if (saturated) print "! the load generator was " warn "% or more busy: that row measures the client as much as the server."

            print ""
            print "open loop, latency from the intended send time (corrected), µs, median over rounds:"
            printf "%-12s %-18s %-6s %10s %9s %9s %9s %9s\n", "config", "workload", "server", "ops/s", "p50", "p99", "p99.9", "max"
            for (i = 1; i <= rows; i++) {
                row = order[i]; split(row, f, "\t")
                if (f[2] !~ /^open/) continue
                for (s = 1; s <= 2; s++) {
                    srv = s == 1 ? "tskv" : "redis"; o = ""
                    for (k in rounds) if ((row, srv, k) in ops) o = o " " ops[row, srv, k]
                    printf "%-12s %-18s %-6s %10.0f %9.1f %9.1f %9.1f %9.1f\n", f[1], f[2], srv, median(o),
                        median(lat[row, srv, "p50"]), median(lat[row, srv, "p99"]), median(lat[row, srv, "p999"]), median(lat[row, srv, "max"])
                }
            }

            print ""
            print "tool agreement, closed loop -c 50 -P 16: tskv-bench ops/s / redis-benchmark req/s, per round"
            printf "%-12s %-5s %-6s %8s %15s  %s\n", "config", "test", "server", "median", "min-max", "per round"
            for (i = 1; i <= rows; i++) {
                row = order[i]; split(row, f, "\t")
                if (f[2] !~ /^tb (SET|GET) P16$/) continue
                test = substr(f[2], 4, 3); other = f[1] "\trb " test " P16"
                for (s = 2; s >= 1; s--) {
                    srv = s == 1 ? "tskv" : "redis"; q = ""; lo = ""; hi = ""; list = ""
                    for (k = 1; k in rounds; k++) {
                        if (!((row, srv, k) in ops) || !((other, srv, k) in ops) || ops[other, srv, k] <= 0) continue
                        x = ops[row, srv, k] / ops[other, srv, k]; q = q " " x; list = list sprintf(" %.2f", x)
                        if (lo == "" || x < lo) lo = x; if (hi == "" || x > hi) hi = x
                    }
                    if (q != "") printf "%-12s %-5s %-6s %8.2f %7.2f-%-7.2f %s\n", f[1], test, srv, median(q), lo, hi, list
                }
            }
            print "(1.00: both tools saw the same throughput from the same server; the Redis rows are the check"
            print " of tskv-bench against a tool that is not ours.)"
        }
    ' "$raw"
}

compare_runs
summarize | tee "$out/summary.txt"
echo
echo "results: $out (summary.txt, raw.tsv, one JSON report per tskv-bench run, redis-benchmark CSVs,"
echo "         charts/*/ with compare.txt and compare.svg of tskv against Redis per workload)"
