#!/usr/bin/env bash
# Draws differential flamegraphs between two perf recordings, in both directions.
# See perf/README.md for the whole workflow.
set -euo pipefail

readonly EXIT_UNAVAILABLE=77

usage() {
    cat <<'EOF'
Usage: perf/diff.sh BEFORE.data AFTER.data [-o PREFIX]

Folds both recordings' stacks (as perf/flamegraph.sh does) and draws two differential
flamegraphs with inferno-diff-folded --normalize, which scales BEFORE to AFTER's total
first, so recordings of different lengths or load compare by share of time:

  PREFIX-forward.svg   AFTER's shape, coloured by the change from BEFORE:
                       red grew, blue shrank. Shows what is new or bigger.
  PREFIX-backward.svg  BEFORE's shape, same colours (hues negated): shows what
                       shrank or vanished, which the forward graph cannot draw.

Options:
  -o PREFIX    output prefix (default: diff); PREFIX-before.folded and
               PREFIX-after.folded are kept too
  -h, --help   this text

Record both builds with the same event, frequency, call-graph mode and load. Stacks
are compared by name, so Rust's per-build symbol hashes are dropped while folding.
Exit status: 0 drawn; 2 usage; 77 perf or inferno unavailable; 1 otherwise.
EOF
}

die_usage() {
    echo "diff.sh: $*" >&2
    echo "Try 'perf/diff.sh --help'." >&2
    exit 2
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="diff"
inputs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        -o) prefix="${2:-}"; shift 2 || die_usage "-o needs a value" ;;
        -h | --help) usage; exit 0 ;;
        -*) die_usage "unknown option '$1'" ;;
        *) inputs+=("$1"); shift ;;
    esac
done
((${#inputs[@]} == 2)) || die_usage "need exactly two recordings: BEFORE.data AFTER.data"
[[ -n "$prefix" ]] || die_usage "-o needs a prefix"
before="${inputs[0]}"
after="${inputs[1]}"
for file in "$before" "$after"; do
    [[ -f "$file" ]] || die_usage "no recording at '$file'"
done
if ! command -v perf >/dev/null 2>&1; then
    echo "diff.sh: perf is not installed (needed for perf script)." >&2
    exit "$EXIT_UNAVAILABLE"
fi

status=0
tools="$("$here/flamegraph.sh" --ensure-tools)" || status=$?
((status == 0)) || exit "$status"

event_of() {
    perf evlist -i "$1" 2>/dev/null | head -n 1 || true
}
before_event="$(event_of "$before")"
after_event="$(event_of "$after")"
if [[ "$before_event" != "$after_event" ]]; then
    echo "diff.sh: warning: the recordings sampled different events" \
        "($before_event vs $after_event); the comparison is of unlike units." >&2
fi

# perf/flamegraph.sh owns the folding rules (demangling, dropping build hashes).
"$here/flamegraph.sh" -i "$before" -o "$prefix-before.svg" --no-svg
"$here/flamegraph.sh" -i "$after" -o "$prefix-after.svg" --no-svg

"$tools/inferno-diff-folded" --normalize "$prefix-before.folded" "$prefix-after.folded" \
    | "$tools/inferno-flamegraph" \
        --title "$(basename "$before") -> $(basename "$after"): red grew, blue shrank" \
        --subtitle "forward: widths of $(basename "$after"), normalized" \
        >"$prefix-forward.svg"
"$tools/inferno-diff-folded" --normalize "$prefix-after.folded" "$prefix-before.folded" \
    | "$tools/inferno-flamegraph" --negate \
        --title "$(basename "$before") -> $(basename "$after"): red grew, blue shrank" \
        --subtitle "backward: widths of $(basename "$before"), normalized" \
        >"$prefix-backward.svg"
echo "diff.sh: wrote $prefix-forward.svg and $prefix-backward.svg" >&2
