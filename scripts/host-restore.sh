#!/usr/bin/env bash
# Puts back the host settings that scripts/host-tune.sh changed, from its state file.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/host-restore.sh [--dry-run] [--state-file FILE]

Writes back, in reverse order, every prior value scripts/host-tune.sh saved in the
state file (default /var/tmp/tskv-host-state), and restarts irqbalance if it stopped
it. The state file is removed once everything is restored; a knob that cannot be
restored now is reported as "skipped: <knob>: <reason>" and kept in the file, so
running this again later finishes the job.

Options:
  --dry-run          print what would be restored, change nothing
  --state-file FILE  the state file host-tune.sh wrote
  -h, --help         this text
EOF
}

die_usage() {
    echo "host-restore.sh: $*" >&2
    echo "Try 'scripts/host-restore.sh --help'." >&2
    exit 2
}

dry_run=0
state_file=/var/tmp/tskv-host-state
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) dry_run=1; shift ;;
        --state-file) state_file="${2:-}"; shift 2 || die_usage "--state-file needs a value" ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument '$1'" ;;
    esac
done
[[ -n "$state_file" ]] || die_usage "--state-file needs a file name"

if [[ ! -s "$state_file" ]]; then
    echo "host-restore.sh: nothing to restore: no saved values in $state_file"
    exit 0
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
    echo "host-restore.sh: $state_file is not a regular file of uid $EUID writable only" \
        "by it; not trusting it." >&2
    exit 1
fi

restored_count=0
kept=()

# restore_line LINE: restores one saved value; prints why not and returns 1 if it cannot.
restore_line() {
    local knob kind target prior error
    IFS=$'\t' read -r knob kind target prior <<<"$1"
    case "$kind" in
        file)
            # host-tune.sh only ever writes kernel knobs.
            if [[ ! "$target" =~ ^/(sys|proc/sys)/ || "$target" == *..* ]]; then
                echo "skipped: $knob: $target is not a /sys or /proc/sys knob"
                return 1
            fi
            if [[ ! -e "$target" ]]; then
                echo "skipped: $knob: $target no longer exists"
                return 1
            fi
            if ((dry_run)); then
                echo "would restore: $knob: $prior ($target)"
                return 0
            fi
            if ! error="$({ printf '%s\n' "$prior" >"$target"; } 2>&1)"; then
                echo "skipped: $knob: cannot write $target: ${error##*: }"
                return 1
            fi
            ;;
        service)
            if [[ "$knob" != irqbalance ]]; then
                echo "skipped: $knob: not a service host-tune.sh stops"
                return 1
            fi
            if ((dry_run)); then
                echo "would restart: $knob"
                return 0
            fi
            if [[ "$target" == systemd ]]; then
                error="$(systemctl start "$knob" 2>&1)" || {
                    echo "skipped: $knob: systemctl start failed: $error"
                    return 1
                }
            else
                error="$("$knob" 2>&1)" || {
                    echo "skipped: $knob: could not start it: $error"
                    return 1
                }
            fi
            ;;
        *)
            echo "skipped: $knob: unknown kind '$kind' in $state_file"
            return 1
            ;;
    esac
    echo "restored: $knob: $prior"
    restored_count=$((restored_count + 1))
}

mapfile -t lines <"$state_file"
for ((index = ${#lines[@]} - 1; index >= 0; index--)); do
    line="${lines[index]}"
    [[ -n "$line" ]] || continue
    if ! restore_line "$line"; then
        kept=("$line" "${kept[@]}")
    fi
done

if ((dry_run)); then
    exit 0
fi
if ((${#kept[@]} == 0)); then
    rm -f "$state_file"
    echo "host-restore.sh: $restored_count restored; removed $state_file"
else
    printf '%s\n' "${kept[@]}" >"$state_file"
    echo "host-restore.sh: $restored_count restored, ${#kept[@]} kept in $state_file" \
        "for a later run"
fi
