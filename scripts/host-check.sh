#!/usr/bin/env bash
# Read-only report of the host settings that move tskv's latency and its profiles.
# Changes nothing; scripts/host-tune.sh applies a tuning, scripts/host-restore.sh undoes it.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/host-check.sh [--json] [--data-dir DIR]

Reports, read-only, the host settings that matter for benchmarking and profiling
tskv: CPU governor, turbo, SMT, transparent huge pages, isolated / nohz_full cores,
irqbalance, socket busy polling, perf_event_paranoid, kptr_restrict, hardware
counters, clocksource, kernel, CPU model, core count, and the file system and
mount options of the data directory.

Each item has a value and a verdict:
  ok        fine for latency measurements as it is
  consider  worth changing on a benchmark host (the note says why and how)
  n/a       the knob does not exist here (a VM, a container, another driver)
  info      a fact to record with results (BENCHMARKING.md), no verdict

Options:
  --json          one JSON object: {"items": [{"item", "value", "verdict", "note"}]}
  --data-dir DIR  the tskv data directory to inspect (default ./tskv-data; its
                  nearest existing parent is used if it does not exist yet)
  -h, --help      this text
EOF
}

die_usage() {
    echo "host-check.sh: $*" >&2
    echo "Try 'scripts/host-check.sh --help'." >&2
    exit 2
}

json=0
data_dir=./tskv-data
while [[ $# -gt 0 ]]; do
    case "$1" in
        --json) json=1; shift ;;
        --data-dir) data_dir="${2:-}"; shift 2 || die_usage "--data-dir needs a value" ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument '$1'" ;;
    esac
done
[[ -n "$data_dir" ]] || die_usage "--data-dir needs a directory"

items=()
# add ITEM VALUE VERDICT NOTE: one line of the report. Fields are kept tab-separated.
add() {
    local value="${2//$'\t'/ }"
    items+=("$1"$'\t'"${value//$'\n'/ }"$'\t'"$3"$'\t'"${4:-}")
}

# Prints the first line of a file, or nothing if it cannot be read.
read_first() {
    local line=""
    [[ -r "$1" ]] && IFS= read -r line <"$1" 2>/dev/null
    printf '%s' "$line"
}

# The bracketed choice of a sysfs list file such as "always [madvise] never".
bracketed() {
    local text
    text="$(read_first "$1")"
    [[ "$text" =~ \[([^]]+)\] ]] && printf '%s' "${BASH_REMATCH[1]}"
}

cores="$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)"

check_governor() {
    local files=(/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor)
    if [[ ! -e "${files[0]}" ]]; then
        add governor "none" n/a "no cpufreq here (VM, or no frequency driver): the host sets the clock"
        return
    fi
    local values
    values="$(cat "${files[@]}" 2>/dev/null | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep=", " }')"
    if [[ "$values" =~ ^performance\ x[0-9]+$ ]]; then
        add governor "$values" ok "every core at performance"
    else
        add governor "$values" consider "performance keeps clocks up between requests (host-tune.sh)"
    fi
}

check_turbo() {
    local no_turbo=/sys/devices/system/cpu/intel_pstate/no_turbo
    local boost=/sys/devices/system/cpu/cpufreq/boost
    if [[ -r "$no_turbo" ]]; then
        if [[ "$(read_first "$no_turbo")" == 1 ]]; then
            add turbo "off (intel_pstate)" ok "steady clock for A/B runs"
        else
            add turbo "on (intel_pstate)" consider "clock varies with heat and load; host-tune.sh --no-turbo for A/B runs"
        fi
    elif [[ -r "$boost" ]]; then
        if [[ "$(read_first "$boost")" == 0 ]]; then
            add turbo "off (cpufreq boost)" ok "steady clock for A/B runs"
        else
            add turbo "on (cpufreq boost)" consider "clock varies with heat and load; host-tune.sh --no-turbo for A/B runs"
        fi
    else
        add turbo "unknown" n/a "no intel_pstate/no_turbo or cpufreq/boost here"
    fi
}

check_smt() {
    local control active
    control="$(read_first /sys/devices/system/cpu/smt/control)"
    active="$(read_first /sys/devices/system/cpu/smt/active)"
    case "$control" in
        "") add smt "unknown" n/a "no /sys/devices/system/cpu/smt" ;;
        on)
            if [[ "$active" == 1 ]]; then
                add smt "on, active" consider "hyperthread siblings share a core: pin server and load generator to different physical cores"
            else
                add smt "on, inactive" ok "no sibling threads online"
            fi
            ;;
        off | forceoff) add smt "$control" ok "one thread per core" ;;
        *) add smt "$control" ok "no SMT exposed (a VM shows each vCPU as a core)" ;;
    esac
}

check_thp() {
    local base=/sys/kernel/mm/transparent_hugepage value
    value="$(bracketed "$base/enabled")"
    case "$value" in
        "") add thp.enabled "unknown" n/a "no $base/enabled" ;;
        always) add thp.enabled always consider "khugepaged and compaction stalls cause latency spikes; madvise (host-tune.sh)" ;;
        *) add thp.enabled "$value" ok "huge pages only where asked for" ;;
    esac
    value="$(bracketed "$base/defrag")"
    case "$value" in
        "") add thp.defrag "unknown" n/a "no $base/defrag" ;;
        always) add thp.defrag always consider "page faults may stall in direct compaction; madvise (host-tune.sh)" ;;
        *) add thp.defrag "$value" ok "no direct compaction on ordinary faults" ;;
    esac
}

# Prints the value of kernel command-line parameter $1, or nothing.
cmdline_param() {
    local word
    for word in $(read_first /proc/cmdline); do
        [[ "$word" == "$1="* ]] && printf '%s' "${word#*=}" && return 0
    done
    return 0
}

check_isolation() {
    local name sysfs cmdline value
    for name in isolcpus nohz_full; do
        if [[ "$name" == isolcpus ]]; then
            sysfs=/sys/devices/system/cpu/isolated
        else
            sysfs=/sys/devices/system/cpu/nohz_full
        fi
        cmdline="$(cmdline_param "$name")"
        if [[ -r "$sysfs" ]]; then
            value="$(read_first "$sysfs")"
        else
            value=""
        fi
        if [[ -n "$value" || -n "$cmdline" ]]; then
            add "$name" "${value:-none} (cmdline: ${cmdline:-none})" ok "keep the server's shards on these cores"
        elif [[ ! -e "$sysfs" && "$name" == nohz_full ]]; then
            add "$name" "none" n/a "kernel built without NO_HZ_FULL"
        elif ((cores < 4)); then
            add "$name" "none" n/a "too few cores ($cores) to set any aside"
        else
            add "$name" "none" consider "a dedicated host can keep the scheduler and ticks off the shard cores (kernel cmdline, reboot)"
        fi
    done
}

check_irqbalance() {
    if ! command -v pgrep >/dev/null 2>&1; then
        add irqbalance "unknown" n/a "no pgrep to look"
    elif pgrep -x irqbalance >/dev/null 2>&1; then
        add irqbalance running consider "may move NIC interrupts onto a shard core mid-run; host-tune.sh --stop-irqbalance"
    else
        add irqbalance "not running" ok "interrupts stay where they are"
    fi
}

check_busy_poll() {
    local name value
    for name in busy_poll busy_read; do
        value="$(read_first "/proc/sys/net/core/$name")"
        if [[ -z "$value" ]]; then
            add "net.core.$name" "unknown" n/a "no /proc/sys/net/core/$name"
        elif [[ "$value" == 0 ]]; then
            add "net.core.$name" "0" ok "off (default): no spinning in the kernel for packets"
        else
            add "net.core.$name" "$value us" consider "spins up to $value us per call: helps NIC latency, not loopback, and costs CPU"
        fi
    done
}

check_perf() {
    local paranoid kptr
    paranoid="$(read_first /proc/sys/kernel/perf_event_paranoid)"
    if [[ -z "$paranoid" ]]; then
        add perf_event_paranoid "unknown" n/a "no /proc/sys/kernel/perf_event_paranoid"
    elif ((paranoid <= 1)); then
        add perf_event_paranoid "$paranoid" ok "users can profile their own processes, kernel frames included"
    elif ((paranoid == 2)); then
        add perf_event_paranoid "$paranoid" consider "non-root profiles lose kernel frames; 1 allows them (host-tune.sh)"
    else
        add perf_event_paranoid "$paranoid" consider "perf is closed to non-root users; 1 opens it (host-tune.sh)"
    fi
    kptr="$(read_first /proc/sys/kernel/kptr_restrict)"
    if [[ -z "$kptr" ]]; then
        add kptr_restrict "unknown" n/a "no /proc/sys/kernel/kptr_restrict"
    elif [[ "$kptr" == 0 ]]; then
        add kptr_restrict 0 ok "kernel symbols resolve in profiles"
    else
        add kptr_restrict "$kptr" consider "non-root profiles show kernel frames as [unknown]; root's resolve at 1"
    fi
    if ! command -v perf >/dev/null 2>&1; then
        add hw_counters "unknown" n/a "perf is not installed"
        return
    fi
    local line
    line="$(perf stat -x, -e cycles,instructions -- true 2>&1 >/dev/null || true)"
    if [[ "$line" =~ ^[0-9]+,[^$'\n']*cycles ]]; then
        add hw_counters "cycles, instructions" ok "perf can sample cycles and count IPC and cache misses"
    else
        add hw_counters "not supported" n/a "no PMU (a VM?): perf samples the cpu-clock timer; no cycles, instructions or cache counters"
    fi
}

check_clocksource() {
    local value
    value="$(read_first /sys/devices/system/clocksource/clocksource0/current_clocksource)"
    case "$value" in
        "") add clocksource "unknown" n/a "no clocksource in sysfs" ;;
        tsc | kvm-clock | arch_sys_counter | hyperv_clocksource_tsc_page)
            add clocksource "$value" ok "clock_gettime stays in the vDSO" ;;
        *) add clocksource "$value" consider "clock_gettime may be a real syscall: timing-heavy code slows down" ;;
    esac
}

check_machine() {
    local model
    model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
    if [[ -z "$model" ]] && command -v lscpu >/dev/null 2>&1; then
        model="$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ { print $2; exit }')"
    fi
    add kernel "$(uname -r)" info "record with results"
    add cpu_model "${model:-unknown}" info "record with results"
    if ((cores <= 2)); then
        add cores "$cores" info "server on core 0, load generator on core 1 (taskset -c)"
    else
        add cores "$cores" info "say which cores the server and the load generator had"
    fi
}

check_data_dir() {
    local dir="$data_dir" fstype="" options="" source="" target=""
    while [[ ! -e "$dir" ]]; do
        dir="$(dirname "$dir")"
    done
    if command -v findmnt >/dev/null 2>&1; then
        read -r fstype options source target < <(findmnt -n -T "$dir" -o FSTYPE,OPTIONS,SOURCE,TARGET 2>/dev/null || true) || true
    fi
    if [[ -z "$fstype" ]]; then
        # No findmnt: the longest mount point that prefixes the directory.
        local abs
        abs="$(cd "$dir" && pwd -P)"
        read -r source target fstype options < <(awk -v p="$abs" '
            { mp = $2; if ((p == mp || index(p, mp == "/" ? "/" : mp "/") == 1) && length(mp) >= best) { best = length(mp); line = $1 " " $2 " " $3 " " $4 } }
            END { print line }' /proc/mounts) || true
    fi
    local value="${fstype:-unknown} on ${target:-?} (${source:-?}), for $data_dir"
    case "$fstype" in
        tmpfs | ramfs) add data_dir.fs "$value" consider "fsync is a no-op in memory: durable-write figures mean nothing here" ;;
        overlay) add data_dir.fs "$value" consider "a container's overlay: mount a volume for the data dir" ;;
        btrfs | zfs) add data_dir.fs "$value" consider "copy-on-write: fsync costs differ from ext4/xfs; say so with results" ;;
        nfs* | cifs | fuse*) add data_dir.fs "$value" consider "network or FUSE file system: fsync latency is the server's" ;;
        ext4 | xfs) add data_dir.fs "$value" ok "a local journaling file system" ;;
        "") add data_dir.fs "$value" n/a "could not find the mount" ;;
        *) add data_dir.fs "$value" info "record with results" ;;
    esac
    if [[ -z "$options" ]]; then
        add data_dir.mount "unknown" n/a "could not read mount options"
    elif [[ ",$options," =~ ,(nobarrier|barrier=0), ]]; then
        add data_dir.mount "$options" consider "write barriers off: fsync does not flush the device cache"
    elif [[ ",$options," =~ ,(sync|dirsync), ]]; then
        add data_dir.mount "$options" consider "synchronous mount: every write waits, not only fsync"
    elif [[ ",$options," =~ ,data=journal, ]]; then
        add data_dir.mount "$options" consider "data=journal writes data twice"
    else
        add data_dir.mount "$options" ok "nothing that changes fsync semantics"
    fi
}

json_escape() {
    local s="$1"
    s="${s//\\/\\\\}"
    s="${s//\"/\\\"}"
    s="${s//$'\t'/\\t}"
    s="${s//$'\r'/\\r}"
    s="${s//$'\n'/\\n}"
    printf '%s' "$s"
}

print_text() {
    local line item value verdict note
    printf '%-22s %-9s %s\n' ITEM VERDICT "VALUE -- NOTE"
    for line in "${items[@]}"; do
        IFS=$'\t' read -r item value verdict note <<<"$line"
        printf '%-22s %-9s %s -- %s\n' "$item" "$verdict" "$value" "$note"
    done
}

print_json() {
    local line item value verdict note sep=""
    printf '{"items": ['
    for line in "${items[@]}"; do
        IFS=$'\t' read -r item value verdict note <<<"$line"
        printf '%s\n  {"item": "%s", "value": "%s", "verdict": "%s", "note": "%s"}' "$sep" \
            "$(json_escape "$item")" "$(json_escape "$value")" \
            "$(json_escape "$verdict")" "$(json_escape "$note")"
        sep=","
    done
    printf '\n]}\n'
}

check_machine
check_governor
check_turbo
check_smt
check_thp
check_isolation
check_irqbalance
check_busy_poll
check_perf
check_clocksource
check_data_dir

if ((json)); then
    print_json
else
    print_text
fi
