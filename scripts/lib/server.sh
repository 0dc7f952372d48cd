# Shell helpers the benchmark scripts share for driving a local tskv-server; sourced, not
# run: `. "$(dirname "$0")/lib/server.sh"`.

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_ready PORT: waits up to 30 s until a server on PORT answers PING.
wait_ready() {
    for _ in $(seq 1 600); do
        redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2
    return 1
}

# info_field PORT FIELD: prints FIELD of `INFO persistence` (e.g. pending_compaction_bytes).
info_field() {
    redis-cli -p "$1" INFO persistence | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}

# alternating ROUND BINARY [BASE]: prints the binaries in the order round ROUND runs them,
# as given in odd rounds and swapped in even ones, so that neither always runs first.
alternating() {
    if [ $# = 3 ] && [ $(($1 % 2)) = 0 ]; then
        echo "$3" "$2"
    else
        shift
        echo "$@"
    fi
}
