#!/usr/bin/env bash
# Turns a perf recording into a flamegraph SVG with inferno (perf script -> folded -> SVG).
# See perf/README.md for the whole workflow.
set -euo pipefail

# Exit status 77 means "a tool this needs is not available here" (perf missing, inferno
# not installed and not installable): the automake convention for a skipped test.
readonly EXIT_UNAVAILABLE=77
# A version requirement, so every machine draws with the same inferno.
readonly INFERNO_VERSION="${INFERNO_VERSION:-^0.12}"

usage() {
    cat <<'EOF'
Usage: perf/flamegraph.sh [-i perf.data] [-o out.svg] [--title T] [--no-svg]
       perf/flamegraph.sh --ensure-tools

Reads a perf recording (perf/record.sh), folds its stacks with inferno-collapse-perf
and draws them with inferno-flamegraph. Rust symbols are demangled and their hashes
(::h0123456789abcdef) dropped, so two builds' stacks compare equal.

Options:
  -i FILE          perf recording (default perf.data)
  -o FILE          SVG to write (default: the input name with .svg for .data);
                   the folded stacks are kept beside it as <out>.folded
  --title T        title drawn on the graph (default: names the input and its event)
  --no-svg         write only the folded stacks (perf/diff.sh uses this)
  --ensure-tools   only make sure the inferno tools are there; print their directory
  -h, --help       this text

The inferno tools are taken from PATH or $CARGO_HOME/bin (~/.cargo/bin); if absent they
are installed once with `cargo install inferno --locked` into ~/.cargo/bin (or into
$TSKV_TOOLS_DIR/bin when that is set). TSKV_NO_INSTALL=1 forbids installing.

Exit status: 0 drawn; 2 usage; 77 perf or inferno unavailable; 1 otherwise.
EOF
}

die_usage() {
    echo "flamegraph.sh: $*" >&2
    echo "Try 'perf/flamegraph.sh --help'." >&2
    exit 2
}

# Prints the directory holding inferno-collapse-perf, inferno-flamegraph and
# inferno-diff-folded, installing them first if none is found.
ensure_inferno() {
    local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    local dir
    local candidates=()
    [[ -n "${TSKV_TOOLS_DIR:-}" ]] && candidates+=("$TSKV_TOOLS_DIR/bin")
    local on_path
    if on_path="$(command -v inferno-flamegraph 2>/dev/null)"; then
        candidates+=("$(dirname "$on_path")")
    fi
    candidates+=("$cargo_bin")
    for dir in "${candidates[@]}"; do
        if [[ -x "$dir/inferno-collapse-perf" && -x "$dir/inferno-flamegraph" \
            && -x "$dir/inferno-diff-folded" ]]; then
            echo "$dir"
            return 0
        fi
    done
    if [[ "${TSKV_NO_INSTALL:-0}" == 1 ]]; then
        echo "flamegraph.sh: inferno is not installed and TSKV_NO_INSTALL=1 forbids" \
            "installing it: cargo install inferno --locked" >&2
        return "$EXIT_UNAVAILABLE"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "flamegraph.sh: inferno is not installed and there is no cargo to install it." >&2
        return "$EXIT_UNAVAILABLE"
    fi
    local root_args=() dest="$cargo_bin"
    if [[ -n "${TSKV_TOOLS_DIR:-}" ]]; then
        root_args=(--root "$TSKV_TOOLS_DIR")
        dest="$TSKV_TOOLS_DIR/bin"
    fi
    echo "flamegraph.sh: installing inferno $INFERNO_VERSION into $dest" \
        "(once; a minute or two)" >&2
    # Our RUSTFLAGS (frame pointers) and target dir are for tskv, not for the tool: a
    # private temporary target dir keeps the install from touching tskv's build output.
    if ! env -u RUSTFLAGS -u CARGO_TARGET_DIR \
        cargo install inferno --locked --version "$INFERNO_VERSION" "${root_args[@]}" >&2; then
        echo "flamegraph.sh: could not install inferno: see cargo's message above (crates.io unreachable?)." >&2
        return "$EXIT_UNAVAILABLE"
    fi
    echo "$dest"
}

# Writes folded stacks of perf recording $1 to stdout.
fold_stacks() {
    local input="$1" tools="$2"
    # perf demangles Rust's legacy symbols itself but keeps the ::h<16 hex> hash, which
    # differs between builds; the first sed drops it. --all marks kernel frames with _[k].
    # io_uring's kernel threads are named after their owner's pid (iou-wrk-1234); the
    # last sed drops the pid, so two recordings' stacks line up in perf/diff.sh.
    perf script -i "$input" --demangle 2>/dev/null \
        | sed -E 's/::h[0-9a-f]{16}//g' \
        | "$tools/inferno-collapse-perf" --all \
        | sed -E 's/^(iou-(wrk|sqp))-[0-9]+;/\1;/'
}

input=perf.data
output=""
title=""
ensure_only=0
draw=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        -i) input="${2:-}"; shift 2 || die_usage "-i needs a value" ;;
        -o) output="${2:-}"; shift 2 || die_usage "-o needs a value" ;;
        --title) title="${2:-}"; shift 2 || die_usage "--title needs a value" ;;
        --no-svg) draw=0; shift ;;
        --ensure-tools) ensure_only=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument '$1'" ;;
    esac
done

status=0
tools="$(ensure_inferno)" || status=$?
((status == 0)) || exit "$status"
if ((ensure_only)); then
    echo "$tools"
    exit 0
fi

if ! command -v perf >/dev/null 2>&1; then
    echo "flamegraph.sh: perf is not installed (needed for perf script)." >&2
    exit "$EXIT_UNAVAILABLE"
fi
[[ -f "$input" ]] || die_usage "no recording at '$input' (make one with perf/record.sh)"
if [[ -z "$output" ]]; then
    output="${input%.data}.svg"
fi
folded="${output%.svg}.folded"
event="$(perf evlist -i "$input" 2>/dev/null | head -n 1 || true)"
if [[ -z "$title" ]]; then
    title="$(basename "$input") (${event:-unknown event})"
fi

fold_stacks "$input" "$tools" >"$folded"
if [[ ! -s "$folded" ]]; then
    echo "flamegraph.sh: $input holds no stacks (was the process idle, or the" \
        "window too short?)" >&2
    exit 1
fi
if ((!draw)); then
    echo "flamegraph.sh: wrote $folded" >&2
    exit 0
fi
# inferno-collapse-perf weighs each sample by its period: nanoseconds for cpu-clock,
# cycles for cycles. Name the unit, so the tooltip's counts mean something.
case "$event" in
    cpu-clock* | task-clock*) countname=ns ;;
    cycles* | instructions*) countname="${event%%:*}" ;;
    *) countname=events ;;
esac
"$tools/inferno-flamegraph" --title "$title" --countname "$countname" --colors rust \
    "$folded" >"$output"
total="$(awk '{ n += $NF } END { printf "%.0f", n }' "$folded")"
if [[ "$countname" == ns ]]; then
    total="$(awk -v n="$total" 'BEGIN { printf "%.0f ms", n / 1e6 }') of on-CPU time"
else
    total="$total $countname"
fi
echo "flamegraph.sh: wrote $output ($total; folded stacks in $folded)" >&2
