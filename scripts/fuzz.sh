#!/usr/bin/env bash
# Runs tskv's libFuzzer targets (scripts/fuzz/fuzz_targets/) with cargo fuzz, one after the
# other, each for a given time, then prints the executions and crashes of each.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: scripts/fuzz.sh [--seconds N] [--dev] [--build-only] [TARGET...]

Builds every fuzz target once (cargo +nightly fuzz build, AddressSanitizer, debug
assertions on), then runs each TARGET (default: all of them) for N seconds (default 60),
one at a time under `nice -n 19`, and prints one line per target:

    TARGET  executions  crashes  result

Each run (the target's binary, started as `cargo fuzz run` would) reads the seed corpus
scripts/fuzz/seeds/TARGET/ (committed; regenerate it with
`TSKV_FUZZ_SEEDS_WRITE=1 cargo test --test fuzz_seed_corpus`) and keeps what it finds in
scripts/fuzz/corpus/TARGET/ (not committed). A crashing input is saved under
scripts/fuzz/artifacts/TARGET/; replay it with
    cargo +nightly fuzz run --fuzz-dir scripts/fuzz TARGET ARTIFACT
Exit status: 0 if no target crashed, 1 if one did, 2 on a usage error, 3 if the nightly
toolchain or cargo-fuzz is missing.

Options:
  --seconds N    run each target for N seconds (libFuzzer -max_total_time)
  --dev          build without optimizations: much quicker to build, slower to run; for
                 short smoke runs (tests/fuzz_smoke.rs), not for finding bugs
  --build-only   build the targets and stop
  --list         print the targets and stop
  -h, --help     this text

Environment: TSKV_FUZZ_TARGET_DIR (default scripts/fuzz/target) is cargo's target dir;
CARGO_BUILD_JOBS defaults to 1.
USAGE
}

cd "$(dirname "$0")/.."
fuzz_dir=scripts/fuzz
seconds=60
build_only=0
# Default: optimized, with debug assertions and overflow checks (cargo fuzz's default; -O
# would turn them off).
profile=()
list_only=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds)
            [ $# -ge 2 ] || { echo "fuzz.sh: --seconds needs a value" >&2; exit 2; }
            seconds="$2"
            shift 2
            ;;
        --build-only) build_only=1; shift ;;
        --dev) profile=(--dev); shift ;;
        --list) list_only=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
case "$seconds" in
    '' | *[!0-9]* | 0) echo "fuzz.sh: --seconds must be a positive integer, got '$seconds'" >&2; exit 2 ;;
esac

all_targets=()
for file in "$fuzz_dir"/fuzz_targets/*.rs; do
    all_targets+=("$(basename "$file" .rs)")
done
if [ "$list_only" = 1 ]; then
    printf '%s\n' "${all_targets[@]}"
    exit 0
fi
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all_targets[@]}")
fi
for target in "${targets[@]}"; do
    [ -f "$fuzz_dir/fuzz_targets/$target.rs" ] || {
        echo "fuzz.sh: no target '$target'; targets: ${all_targets[*]}" >&2
        exit 2
    }
done

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 3
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is missing (cargo install cargo-fuzz)" >&2
    exit 3
fi

target_dir="${TSKV_FUZZ_TARGET_DIR:-$fuzz_dir/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
# The same options for build and run, so that run finds the build up to date.
fuzz_opts=("${profile[@]}" --fuzz-dir "$fuzz_dir" --target-dir "$target_dir")

echo "fuzz.sh: building ${#all_targets[@]} targets in $target_dir" >&2
nice -n 19 cargo +nightly fuzz build "${fuzz_opts[@]}" >&2
if [ "$build_only" = 1 ]; then
    exit 0
fi

if [ ${#profile[@]} -eq 0 ]; then
    bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"
else
    bin_dir="$target_dir/x86_64-unknown-linux-gnu/debug"
fi
log_dir="$target_dir/fuzz-logs"
mkdir -p "$log_dir"
crashed=0
summary=()
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    mkdir -p "$corpus" "$fuzz_dir/artifacts/$target"
    log="$log_dir/$target.log"
    echo "fuzz.sh: running $target for ${seconds}s (log: $log)" >&2
    status=0
    # The first corpus directory receives new inputs; the committed seeds stay as they are.
    # The binary itself, as `cargo fuzz run` would start it, without a cargo call per target.
    nice -n 19 "$bin_dir/$target" -artifact_prefix="$fuzz_dir/artifacts/$target/" \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        "$corpus" "$fuzz_dir/seeds/$target" >"$log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if [ -z "$execs" ]; then
        # A crash ends the run before the final stats: take the last progress line.
        execs="$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)"
    fi
    if [ "$status" = 0 ]; then
        result="ok"
        crashes=0
    else
        crashed=1
        crashes=1
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        result="CRASH (exit $status) ${artifact:-no artifact, see $log}"
        tail -n 40 "$log" >&2
    fi
    summary+=("$(printf '%-20s %12s %8s  %s' "$target" "${execs:-?}" "$crashes" "$result")")
done
rm -f /dev/shm/tskv-fuzz-sstable-*.sst "${TMPDIR:-/tmp}"/tskv-fuzz-sstable-*.sst

printf '%-20s %12s %8s  %s\n' target executions crashes result
printf '%s\n' "${summary[@]}"
exit "$crashed"
