#!/usr/bin/env bash
# Starts N tskv servers behind one twemproxy (nutcracker), or stops them all.
#
#   scripts/twemproxy.sh start [N]   # N servers (default 3) on ports BASE_PORT+1..N,
#                                    # nutcracker on PROXY_PORT; prints the proxy address
#   scripts/twemproxy.sh stop        # stops nutcracker and every server it started
#
# Environment: TSKV_SERVER (the server binary; default target/release/tskv-server, built
# if missing), DIR (state: data directories, logs, pid files, the generated
# nutcracker.yml; default ./twemproxy-run), BASE_PORT (default 6380), PROXY_PORT
# (default 22121), STATS_PORT (nutcracker's stats, default 22222), SHARDS (--shards per
# server, default 1). nutcracker comes from the Debian package `nutcracker`.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${DIR:-./twemproxy-run}"
BASE_PORT="${BASE_PORT:-6380}"
PROXY_PORT="${PROXY_PORT:-22121}"
STATS_PORT="${STATS_PORT:-22222}"
SHARDS="${SHARDS:-1}"
TSKV_SERVER="${TSKV_SERVER:-target/release/tskv-server}"

wait_port() { # wait_port PORT WHAT
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "error: $2 did not listen on port $1 (logs in $DIR)" >&2
    return 1
}

start() {
    local n="${1:-3}"
    command -v nutcracker >/dev/null || { echo "error: nutcracker not installed (apt-get install nutcracker)" >&2; exit 1; }
    [ -x "$TSKV_SERVER" ] || cargo build --release --bin tskv-server
    mkdir -p "$DIR"
    if ls "$DIR"/*.pid >/dev/null 2>&1; then
        echo "error: $DIR holds pid files of a running set; run '$0 stop' first" >&2
        exit 1
    fi
    {
        echo "tskv:"
        echo "  listen: 127.0.0.1:$PROXY_PORT"
        echo "  hash: murmur"  # see scripts/twemproxy/nutcracker.yml
        echo "  distribution: ketama"
        echo "  redis: true"
        echo "  auto_eject_hosts: false"
        echo "  server_retry_timeout: 2000"
        echo "  server_failure_limit: 3"
        echo "  timeout: 10000"
        echo "  servers:"
        for i in $(seq 1 "$n"); do
            echo "   - 127.0.0.1:$((BASE_PORT + i)):1 tskv-$i"
        done
    } > "$DIR/nutcracker.yml"
    nutcracker --test-conf --conf-file "$DIR/nutcracker.yml" >/dev/null
    for i in $(seq 1 "$n"); do
        "$TSKV_SERVER" --port $((BASE_PORT + i)) --shards "$SHARDS" \
            --data-dir "$DIR/data-$i" < /dev/null > "$DIR/tskv-$i.log" 2>&1 &
        echo $! > "$DIR/tskv-$i.pid"
    done
    for i in $(seq 1 "$n"); do wait_port $((BASE_PORT + i)) "tskv-$i"; done
    # Its own messages go to --output; nothing it inherits may hold our stdout open.
    nutcracker --conf-file "$DIR/nutcracker.yml" --stats-port "$STATS_PORT" \
        --output "$DIR/nutcracker.log" < /dev/null > /dev/null 2>&1 &
    echo $! > "$DIR/nutcracker.pid"
    wait_port "$PROXY_PORT" nutcracker
    echo "twemproxy on 127.0.0.1:$PROXY_PORT in front of $n tskv servers (ports $((BASE_PORT + 1))-$((BASE_PORT + n)), state in $DIR)"
}

stop() {
    local stopped=0
    for pidfile in "$DIR"/nutcracker.pid "$DIR"/tskv-*.pid; do
        [ -f "$pidfile" ] || continue
        local pid
        pid="$(cat "$pidfile")"
        # SIGTERM: tskv finishes its writes in flight and exits 0.
        if kill "$pid" 2>/dev/null; then
            while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
            stopped=$((stopped + 1))
        fi
        rm -f "$pidfile"
    done
    echo "stopped $stopped processes"
}

case "${1:-}" in
    start) start "${2:-3}" ;;
    stop) stop ;;
    *) echo "usage: $0 start [N] | stop" >&2; exit 2 ;;
esac
