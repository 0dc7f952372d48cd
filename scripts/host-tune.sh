#!/usr/bin/env bash
# Applies a latency-oriented host tuning for benchmarking and profiling tskv, saving every
# prior value so scripts/host-restore.sh can put it back exactly.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/host-tune.sh [--dry-run] [--state-file FILE] [--no-turbo]
                            [--stop-irqbalance] [--busy-poll USEC]

Applies, as root, a latency-oriented tuning and saves each value it changes to the
state file first (default /var/tmp/tskv-host-state); scripts/host-restore.sh puts
them back. Running it twice keeps the values saved the first time, the originals.

Always:
  governor             every core's cpufreq governor -> performance
  thp.enabled          transparent huge pages -> madvise
  thp.defrag           THP defrag -> madvise
  perf_event_paranoid  -> 1 (users may profile their own processes, kernel included)
Only when asked:
  --no-turbo           turbo / boost off (intel_pstate no_turbo=1, or cpufreq boost=0)
  --stop-irqbalance    stop the irqbalance daemon (restore starts it again)
  --busy-poll USEC     net.core.busy_poll and busy_read -> USEC microseconds

Options:
  --dry-run            print what would change, change nothing
  --state-file FILE    where prior values are kept
  -h, --help           this text

A knob that does not exist here (a VM has no cpufreq, say) or cannot be written is
reported as "skipped: <knob>: <reason>" and the run goes on. Check the result with
scripts/host-check.sh.
EOF
}

die_usage() {
    echo "host-tune.sh: $*" >&2
    echo "Try 'scripts/host-tune.sh --help'." >&2
    exit 2
}

dry_run=0
state_file=/var/tmp/tskv-host-state
no_turbo=0
stop_irqbalance=0
busy_poll_us=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) dry_run=1; shift ;;
        --state-file) state_file="${2:-}"; shift 2 || die_usage "--state-file needs a value" ;;
        --no-turbo) no_turbo=1; shift ;;
        --stop-irqbalance) stop_irqbalance=1; shift ;;
        --busy-poll) busy_poll_us="${2:-}"; shift 2 || die_usage "--busy-poll needs a value" ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument '$1'" ;;
    esac
done
[[ -n "$state_file" ]] || die_usage "--state-file needs a file name"
if [[ -n "$busy_poll_us" && ! "$busy_poll_us" =~ ^[0-9]+$ ]]; then
    die_usage "--busy-poll takes microseconds, got '$busy_poll_us'"
fi

# The default lives in world-writable /var/tmp: trust only a state file that is ours and
# that nobody else can write, or another user could make root write where they chose.
state_file_trusted() {
    [[ -e "$1" ]] || return 0
    local owner mode
    owner="$(stat -c %u "$1")"
    mode="$(stat -c %a "$1")"
    [[ -f "$1" && ! -L "$1" && "$owner" == "$EUID" && ! "$mode" =~ [2367].$|[2367]$ ]]
}
if ! state_file_trusted "$state_file"; then
    echo "host-tune.sh: $state_file is not a regular file of uid $EUID writable only by" \
        "it; not trusting it. Remove it or pass --state-file." >&2
    exit 1
fi

set_count=0
unchanged_count=0
skipped_count=0

skipped() {
    echo "skipped: $1: $2"
    skipped_count=$((skipped_count + 1))
}

# State file lines: KNOB <tab> KIND (file|service) <tab> TARGET <tab> PRIOR VALUE.
declare -A saved=()
if [[ -r "$state_file" ]]; then
    while IFS=$'\t' read -r knob kind target _; do
        [[ -n "$knob" ]] && saved["$kind:$target"]=1
    done <"$state_file"
fi
if ((!dry_run)); then
    mkdir -p "$(dirname "$state_file")" 2>/dev/null || true
    if ! (umask 077 && : >>"$state_file") 2>/dev/null; then
        echo "host-tune.sh: cannot write the state file $state_file, so nothing could be" \
            "restored: changing nothing. Run as root, or pass --state-file." >&2
        exit 1
    fi
fi

# Saves the prior value unless an earlier run saved this target already (that one is the
# original).
remember() {
    local knob="$1" kind="$2" target="$3" prior="$4"
    [[ -n "${saved["$kind:$target"]:-}" ]] && return 0
    printf '%s\t%s\t%s\t%s\n' "$knob" "$kind" "$target" "$prior" >>"$state_file"
    saved["$kind:$target"]=1
}

# Reads a knob's current value; for sysfs choice lists, the [bracketed] one.
read_knob() {
    local text
    IFS= read -r text <"$1" || true
    if [[ "$text" =~ \[([^]]+)\] ]]; then
        text="${BASH_REMATCH[1]}"
    fi
    printf '%s' "$text"
}

# tune_file KNOB PATH VALUE [WHY-MISSING]: sets one sysfs/procfs file, politely.
tune_file() {
    local knob="$1" path="$2" value="$3" why_missing="${4:-not on this kernel or VM}"
    if [[ ! -e "$path" ]]; then
        skipped "$knob" "$path does not exist ($why_missing)"
        return 0
    fi
    local prior error
    if ! prior="$(read_knob "$path" 2>/dev/null)"; then
        skipped "$knob" "cannot read $path"
        return 0
    fi
    if [[ "$prior" == "$value" ]]; then
        echo "unchanged: $knob: already $value"
        unchanged_count=$((unchanged_count + 1))
        return 0
    fi
    if ((dry_run)); then
        echo "would set: $knob: $prior -> $value ($path)"
        return 0
    fi
    if ! error="$({ printf '%s\n' "$value" >"$path"; } 2>&1)"; then
        skipped "$knob" "cannot write $path: ${error##*: }"
        return 0
    fi
    remember "$knob" file "$path" "$prior"
    echo "set: $knob: $prior -> $value"
    set_count=$((set_count + 1))
}

tune_governor() {
    local files=(/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor)
    if [[ ! -e "${files[0]}" ]]; then
        skipped governor "no cpufreq here (a VM, or no frequency driver): the host sets the clock"
        return 0
    fi
    local file cpu available
    for file in "${files[@]}"; do
        cpu="${file#/sys/devices/system/cpu/}"
        cpu="${cpu%%/*}"
        available="$(cat "${file%/*}/scaling_available_governors" 2>/dev/null || true)"
        if [[ -n "$available" && " $available " != *" performance "* ]]; then
            skipped "governor $cpu" "the driver offers no performance governor ($available)"
            continue
        fi
        tune_file "governor $cpu" "$file" performance
    done
}

tune_turbo() {
    local no_turbo_file=/sys/devices/system/cpu/intel_pstate/no_turbo
    local boost_file=/sys/devices/system/cpu/cpufreq/boost
    if [[ -e "$no_turbo_file" ]]; then
        tune_file turbo "$no_turbo_file" 1
    elif [[ -e "$boost_file" ]]; then
        tune_file turbo "$boost_file" 0
    else
        skipped turbo "neither $no_turbo_file nor $boost_file exists (a VM?)"
    fi
}

tune_irqbalance() {
    if ! pgrep -x irqbalance >/dev/null 2>&1; then
        echo "unchanged: irqbalance: not running"
        unchanged_count=$((unchanged_count + 1))
        return 0
    fi
    if ((dry_run)); then
        echo "would stop: irqbalance"
        return 0
    fi
    local error
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        error="$(systemctl stop irqbalance 2>&1)" || {
            skipped irqbalance "systemctl stop failed: $error"
            return 0
        }
        remember irqbalance service systemd running
    else
        error="$(pkill -x irqbalance 2>&1)" || {
            skipped irqbalance "cannot stop it: ${error:-pkill failed}"
            return 0
        }
        remember irqbalance service daemon running
    fi
    echo "set: irqbalance: running -> stopped"
    set_count=$((set_count + 1))
}

if ((dry_run)); then
    echo "host-tune.sh: dry run, nothing is changed"
fi
tune_governor
if ((no_turbo)); then
    tune_turbo
fi
tune_file thp.enabled /sys/kernel/mm/transparent_hugepage/enabled madvise \
    "kernel without transparent huge pages"
tune_file thp.defrag /sys/kernel/mm/transparent_hugepage/defrag madvise \
    "kernel without transparent huge pages"
tune_file perf_event_paranoid /proc/sys/kernel/perf_event_paranoid 1 \
    "kernel without perf events"
if ((stop_irqbalance)); then
    tune_irqbalance
fi
if [[ -n "$busy_poll_us" ]]; then
    tune_file net.core.busy_poll /proc/sys/net/core/busy_poll "$busy_poll_us" \
        "kernel without CONFIG_NET_RX_BUSY_POLL"
    tune_file net.core.busy_read /proc/sys/net/core/busy_read "$busy_poll_us" \
        "kernel without CONFIG_NET_RX_BUSY_POLL"
fi

if ((dry_run)); then
    exit 0
fi
if [[ ! -s "$state_file" ]]; then
    rm -f "$state_file"
fi
echo "host-tune.sh: $set_count set, $unchanged_count unchanged, $skipped_count skipped."
if [[ -s "$state_file" ]]; then
    echo "host-tune.sh: prior values in $state_file; undo with scripts/host-restore.sh"
fi
