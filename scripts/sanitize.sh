#!/usr/bin/env bash
# Runs the library's unit tests and a set of integration tests under AddressSanitizer, so
# the unsafe runtime corner (src/runtime/: io_uring buffer ownership, epoll, eventfd,
# syscalls) is checked, in the library and in the tskv-server the integration tests spawn.
set -euo pipefail

# The integration tests run by default: the store tests drive the engine (WAL, SSTables,
# manifest, compaction) in process; the server tests spawn tskv-server, whose shards do all
# their file I/O through io_uring and all their socket I/O through epoll.
default_tests=(
    resp_parser_props
    store_recovery
    store_block_cache
    store_compaction
    tool_inspect
    server_commands
    server_bad_input
    server_fragmented_requests
    server_pipeline_order
    server_pipeline_stall
    server_backpressure
    server_cross_shard
    server_cold_reads
    server_durability
    server_scan
    server_shard_failure
    server_no_fallocate
    server_compaction
)

usage() {
    cat <<USAGE
usage: scripts/sanitize.sh [--lib-only] [TEST...]

Builds with the nightly toolchain and RUSTFLAGS="-Zsanitizer=address --cfg tskv_sanitize"
for --target x86_64-unknown-linux-gnu (so build scripts and proc macros stay
uninstrumented) in its own target dir, then runs \`cargo test --lib\` and the integration
tests TEST... (default: ${default_tests[*]}).

The tskv-server those tests spawn (CARGO_BIN_EXE_tskv-server) is built by the same command
and so is instrumented too; --cfg tskv_sanitize leaves mimalloc out of it, so its heap goes
through the malloc ASan checks. Deliberate leaks are suppressed, each with its reason, in
scripts/lsan-suppressions.txt. ASan writes each report to a file (log_path) rather than to
stderr, so a report from a spawned server is not lost in a test's captured output; any
report makes the script fail and is printed at the end.

Exit status: 0 if every test passed and ASan reported nothing, 1 otherwise, 2 on a usage
error, 3 if the nightly toolchain is missing.

Options:
  --lib-only     only the library's unit tests
  -h, --help     this text

Environment: TSKV_ASAN_TARGET_DIR (default target/asan) is cargo's target dir;
CARGO_BUILD_JOBS defaults to 1; ASAN_OPTIONS is extended, not replaced.
USAGE
}

cd "$(dirname "$0")/.."
lib_only=0
tests=()
while [ $# -gt 0 ]; do
    case "$1" in
        --lib-only) lib_only=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "sanitize.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) tests+=("$1"); shift ;;
    esac
done
if [ "$lib_only" = 0 ] && [ ${#tests[@]} -eq 0 ]; then
    tests=("${default_tests[@]}")
fi
for test in "${tests[@]}"; do
    [ -f "tests/$test.rs" ] || { echo "sanitize.sh: no test tests/$test.rs" >&2; exit 2; }
done
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "sanitize.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 3
fi

target_dir="${TSKV_ASAN_TARGET_DIR:-target/asan}"
report_dir="$target_dir/asan-reports"
rm -rf "$report_dir"
mkdir -p "$report_dir"
report_dir="$(cd "$report_dir" && pwd)"

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
export CARGO_TARGET_DIR="$target_dir"
export RUSTFLAGS="-Zsanitizer=address --cfg tskv_sanitize"
# detect_leaks: LeakSanitizer runs at each process's exit. log_path: one file per process
# (asan.<pid>), read below. detect_stack_use_after_return: also catch a pointer to a
# stack frame used after the frame returned.
# Deliberate leaks, each with its reason, are listed in scripts/lsan-suppressions.txt.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$(pwd)/scripts/lsan-suppressions.txt"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:log_path=$report_dir/asan:detect_stack_use_after_return=1"

test_args=(--lib)
for test in "${tests[@]}"; do
    test_args+=(--test "$test")
done
status=0
# --no-fail-fast: a failing test binary must not hide what the others would report.
nice -n 19 cargo +nightly test --no-fail-fast --target x86_64-unknown-linux-gnu "${test_args[@]}" || status=$?

# A file without "ERROR:" is only LeakSanitizer's list of the suppressions it applied.
reports=()
for file in "$report_dir"/asan.*; do
    [ -e "$file" ] || continue
    if grep -q "ERROR:" "$file"; then
        reports+=("$file")
    fi
done
if [ ${#reports[@]} -gt 0 ]; then
    echo "sanitize.sh: AddressSanitizer reported ${#reports[@]} problem(s):" >&2
    for report in "${reports[@]}"; do
        echo "==== $report" >&2
        cat "$report" >&2
    done
    exit 1
fi
# The server the integration tests ran must itself have been instrumented.
server="$target_dir/x86_64-unknown-linux-gnu/debug/tskv-server"
if [ ${#tests[@]} -gt 0 ] && ! grep -q __asan_init "$server"; then
    echo "sanitize.sh: $server is not built with AddressSanitizer" >&2
    exit 1
fi
if [ "$status" != 0 ]; then
    echo "sanitize.sh: tests failed (exit $status); AddressSanitizer reported nothing" >&2
    exit 1
fi
echo "sanitize.sh: clean: library unit tests and ${#tests[@]} integration test(s) passed under AddressSanitizer with no report"
