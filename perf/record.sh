#!/usr/bin/env bash
# Records a perf profile of a running process (tskv-server, usually) for a fixed window.
# See perf/README.md for the whole workflow.
set -euo pipefail

# Exit status 77 means "perf cannot run on this host" (missing, not permitted, or failing
# without a word): the automake convention for a skipped test, so callers such as
# tests/perf_flamegraph.rs can skip.
readonly EXIT_UNAVAILABLE=77

usage() {
    cat <<'EOF'
Usage: perf/record.sh --pid PID [--seconds N] [--delay N] [--call-graph fp|dwarf]
                      [--freq HZ] [-o FILE]

Runs `perf record` on the running process PID (all its threads) for a window of
--seconds, after waiting --delay seconds so warm-up passes first.

Options:
  --pid PID            process to record (required)
  --seconds N          length of the recording window in seconds (default 10)
  --delay N            seconds to wait before recording starts (default 0)
  --call-graph MODE    fp    frame pointers: cheap, small files; needs a build with
                             RUSTFLAGS="-C force-frame-pointers=yes" (the profiling
                             build in perf/README.md)  (default)
                       dwarf copies 16 KiB of stack per sample and unwinds offline:
                             works on any build with debug info; files ~50x larger
  --freq HZ            samples per second per CPU (default 999: not a multiple of
                       the scheduler tick, so sampling does not beat with it)
  -o FILE              output file (default perf.data)
  -h, --help           this text

The event is `cycles` where the CPU exposes hardware counters, else the software
`cpu-clock` timer (VMs without a virtual PMU); the script says which it used.

Exit status: 0 recorded; 2 usage; 77 perf missing, not permitted, or failing without a
message here (after 3 attempts); 1 otherwise.
Next step: perf/flamegraph.sh -i FILE
EOF
}

die_usage() {
    echo "record.sh: $*" >&2
    echo "Try 'perf/record.sh --help'." >&2
    exit 2
}

pid=""
seconds=10
delay=0
call_graph=fp
freq=999
output=perf.data

while [[ $# -gt 0 ]]; do
    case "$1" in
        --pid) pid="${2:-}"; shift 2 || die_usage "--pid needs a value" ;;
        --seconds) seconds="${2:-}"; shift 2 || die_usage "--seconds needs a value" ;;
        --delay) delay="${2:-}"; shift 2 || die_usage "--delay needs a value" ;;
        --call-graph) call_graph="${2:-}"; shift 2 || die_usage "--call-graph needs a value" ;;
        --freq) freq="${2:-}"; shift 2 || die_usage "--freq needs a value" ;;
        -o) output="${2:-}"; shift 2 || die_usage "-o needs a value" ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument '$1'" ;;
    esac
done

[[ -n "$pid" ]] || die_usage "--pid is required"
[[ "$pid" =~ ^[0-9]+$ ]] || die_usage "--pid must be a process id, got '$pid'"
[[ "$seconds" =~ ^[0-9]+([.][0-9]+)?$ ]] || die_usage "--seconds must be a number, got '$seconds'"
[[ "$delay" =~ ^[0-9]+([.][0-9]+)?$ ]] || die_usage "--delay must be a number, got '$delay'"
[[ "$freq" =~ ^[1-9][0-9]*$ ]] || die_usage "--freq must be a positive integer, got '$freq'"
[[ -n "$output" ]] || die_usage "-o needs a file name"
case "$call_graph" in
    fp) call_graph_args=(--call-graph fp) ;;
    dwarf) call_graph_args=(--call-graph "dwarf,16384") ;;
    *) die_usage "--call-graph must be fp or dwarf, got '$call_graph'" ;;
esac

if ! command -v perf >/dev/null 2>&1; then
    echo "record.sh: perf is not installed (Debian: apt-get install linux-perf;" \
        "Ubuntu: linux-tools-\$(uname -r))." >&2
    exit "$EXIT_UNAVAILABLE"
fi
# /proc, not kill -0: a process of another user exists but cannot be signalled, and
# perf's own error explains that case better.
if [[ ! -d "/proc/$pid" ]]; then
    echo "record.sh: no process $pid." >&2
    exit 1
fi

paranoid_file=/proc/sys/kernel/perf_event_paranoid
paranoid="$(cat "$paranoid_file" 2>/dev/null || echo unknown)"

explain_denied() {
    cat >&2 <<EOF
record.sh: perf was not permitted to record process $pid.
  kernel.perf_event_paranoid is $paranoid here, and you are uid $EUID.
  To profile your own processes as a normal user, set it to 1 (user and kernel frames)
  or 2 (user frames only), or run as root / give perf CAP_PERFMON:
      sudo sysctl -w kernel.perf_event_paranoid=1      # until reboot
      echo 'kernel.perf_event_paranoid = 1' | sudo tee /etc/sysctl.d/60-perf.conf
      sudo scripts/host-tune.sh                         # sets it, restorable
  Values 3 and above (Debian/Ubuntu kernels) forbid perf for every unprivileged user.
  A process of another user also needs ptrace permission (same uid, or root).
  In a container, the runtime's seccomp profile may block perf_event_open outright.
EOF
}

# Pick the event ourselves: asked for `cycles` on a host without a PMU, perf silently
# samples cpu-clock instead, and the user deserves to know which clock the picture is in.
event=cpu-clock
event_reason="hardware counters are not available here (a VM without a virtual PMU?)"
if cycles_line="$(perf stat -x, -e cycles -- true 2>&1 >/dev/null)"; then
    if [[ "${cycles_line%%,*}" =~ ^[0-9]+$ ]]; then
        event=cycles
        event_reason="hardware cycle counter"
    fi
fi
echo "record.sh: event: $event ($event_reason)" >&2
if [[ "$event" == cpu-clock ]]; then
    echo "record.sh: sampling the software cpu-clock timer: on-CPU time is right," \
        "but there are no cycles, instructions or cache counters." >&2
fi
if [[ "$paranoid" =~ ^[0-9]+$ ]] && ((paranoid >= 2)) && ((EUID != 0)); then
    echo "record.sh: perf_event_paranoid is $paranoid: kernel frames will be missing" \
        "(user space only); set it to 1 to see them (perf/README.md)." >&2
fi

if [[ "$delay" != 0 ]]; then
    echo "record.sh: waiting ${delay}s for warm-up" >&2
    sleep "$delay"
fi
if [[ ! -d "/proc/$pid" ]]; then
    echo "record.sh: process $pid exited during the delay." >&2
    exit 1
fi

comm="$(cat "/proc/$pid/comm" 2>/dev/null || echo '?')"
threads="$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
echo "record.sh: recording pid $pid ($comm, $threads threads) for ${seconds}s at ${freq} Hz," \
    "call graph $call_graph -> $output" >&2
perf_log="$(mktemp)"
trap 'rm -f "$perf_log"' EXIT
# perf has been seen to exit 255 at once without a word (once, in CI, on a host where it
# otherwise records fine). A silent failure is retried; one that gives a reason is not.
readonly ATTEMPTS_MAX=3
attempt=1
while :; do
    set +e
    # `-- sleep N` bounds the window; perf follows every thread of PID meanwhile. Both
    # of perf's streams go to the log so that whatever it says is shown below.
    perf record -e "$event" -F "$freq" "${call_graph_args[@]}" -p "$pid" -o "$output" \
        -- sleep "$seconds" >"$perf_log" 2>&1
    status=$?
    set -e
    cat "$perf_log" >&2
    if ((status == 0)); then
        break
    fi
    if grep -qiE 'permission|not permitted|perf_event_paranoid|access to performance' \
        "$perf_log"; then
        explain_denied
        exit "$EXIT_UNAVAILABLE"
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "record.sh: pid $pid exited while perf was attaching to it." >&2
        exit 1
    fi
    if [[ -s "$perf_log" ]]; then
        echo "record.sh: perf record failed (exit $status)." >&2
        exit 1
    fi
    if ((attempt >= ATTEMPTS_MAX)); then
        echo "record.sh: perf record exited $status without a message, $attempt times;" \
            "perf cannot record on this host right now (perf $(perf --version 2>&1 |
                awk '{print $3}'), kernel $(uname -r), perf_event_paranoid $paranoid)." >&2
        exit "$EXIT_UNAVAILABLE"
    fi
    echo "record.sh: perf record exited $status without a message; trying again" \
        "($((attempt + 1)) of $ATTEMPTS_MAX)." >&2
    attempt=$((attempt + 1))
    sleep 1
done

recorded="$(perf evlist -i "$output" 2>/dev/null | head -n 1 || true)"
if ! grep -qE '\([0-9]+ samples\)' "$perf_log"; then
    # perf writes "(N samples)" only when there were some.
    echo "record.sh: warning: no samples in $output. Was pid $pid busy during the" \
        "window, and is it the server itself rather than a wrapper shell or taskset" \
        "parent? ($comm)" >&2
fi
echo "record.sh: wrote $output (event ${recorded:-$event})." \
    "Next: perf/flamegraph.sh -i $output" >&2
