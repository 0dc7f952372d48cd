#!/usr/bin/env bash
# Bytes per sample on disk for real recorded series: machine metrics as Performance
# Co-Pilot (PCP) recorded them on real hosts, loaded into tskv and compacted.
#
# * Data: PCP archives shipped in Debian's `pcp-testsuite` package (GPL-2+), fetched
#   with `apt-get download` into CACHE (once); scripts/pcp-to-csv.py turns each into
#   `series,timestamp_ms,value` CSV (PCP's `pmdumplog`, from the `pcp` package, reads the
#   archive): counters as raw counters, timestamps as recorded (to the millisecond).
#   Series matching SERIES_EXCLUDE (default `^proc\.`: per-process metrics) are left out.
#   - `20130706`: host "billing02", 2013-07-05 04:17 to 2013-07-06 04:15 UTC, kernel,
#     memory, disk, network and file-system metrics, most every 60 s (485 series, 317,894
#     samples).
#   - `20180416.10.00`: host "brolley-t530", 2018-04-16 18:01 to 22:32 UTC, every 10 s,
#     each metric logged twice per interval a few hundred ms apart (two logging groups);
#     without per-process metrics 1,210 series, 2,260,969 samples.
# * Per dataset and variant, a fresh server (`--shards 1 --fsync always`) on an empty data
#   directory is loaded with scripts/ts-csv-resp.py | `redis-cli --pipe` (one `TS.CREATE`
#   per series, then `TS.MADD`s of 100 samples in file order); `SAVE`; the script waits
#   until INFO's `pending_compaction_bytes` is 0, sums `totalSamples` and the sealed chunks
#   of `TS.INFO key DEBUG` over the series, `SHUTDOWN`s and runs `tskv-tool compact` (as
#   scripts/bench-ts-ingest.sh does). bytes/sample = live SSTable bytes after compaction
#   over the samples; chunk bytes/sample = sealed chunk bytes over the sealed samples.
# * Variants: timestamps as recorded (ms), and cut to whole seconds (`--ts-unit-ms 1000`,
#   the resolution Gorilla stores; a repeated second keeps the last value), for each
#   CHUNK_SIZE in CHUNK_SIZES (a seal takes a quarter of CHUNK_SIZE in samples).
# * Where the bytes go: scripts/ts-sst-bytes.py splits the compacted SSTables by entry
#   kind (series settings, chunks, open samples a checkpoint stored, seal marks, SSTable
#   framing) from `tskv-tool sst --entries`; scripts/gorilla-bits.py splits the chunks'
#   bits (timestamps, values, header and CRC) with a model of the codec, every sample
#   sealed, whose total can be checked against the measured chunk bytes.
#
# Usage: scripts/bench-ts-bytes.sh   (variables: CACHE, OUT, BIN, DATASETS (archive names,
#        default "20130706 20180416.10.00"), SERIES_EXCLUDE, CHUNK_SIZES (default 4096))
#        Needs: apt-get (to fetch the package), pmdumplog and pminfo (`apt-get install
#        pcp`), redis-cli, jq, python3, cargo.
set -euo pipefail

CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tskv-bench-data}
OUT=${OUT:-$(mktemp -d /tmp/tskv-ts-bytes.XXXXXX)}
DATASETS=${DATASETS:-20130706 20180416.10.00}
SERIES_EXCLUDE=${SERIES_EXCLUDE:-^proc\.}
CHUNK_SIZES=${CHUNK_SIZES:-4096}
mkdir -p "$CACHE" "$OUT"
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
    cargo build --release --bins >&2
    BIN=target/release
fi
. scripts/lib/server.sh

for tool in pmdumplog pminfo redis-cli jq; do
    command -v "$tool" >/dev/null || { echo "needs $tool (pmdumplog, pminfo: apt-get install pcp)" >&2; exit 1; }
done

echo "host: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commit: $(git rev-parse --short HEAD)"

# fetch_csv ARCHIVE: writes $OUT/ARCHIVE.csv from the archive in Debian's pcp-testsuite
# package (fetched once into CACHE), without the series matching SERIES_EXCLUDE.
fetch_csv() {
    local archive=$1 archive_dir=$CACHE/pcp-testsuite deb
    if ! ls "$archive_dir/$archive".meta* >/dev/null 2>&1; then
        deb=$(ls "$CACHE"/pcp-testsuite_*.deb 2>/dev/null | head -1 || true)
        if [ -z "$deb" ]; then
            (cd "$CACHE" && apt-get download pcp-testsuite >&2)
            deb=$(ls "$CACHE"/pcp-testsuite_*.deb | head -1)
        fi
        mkdir -p "$archive_dir"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$archive_dir" --strip-components 6 \
            --wildcards "./var/lib/pcp/testsuite/archives/$archive.*"
    fi
    python3 scripts/pcp-to-csv.py "$archive_dir/$archive" >"$OUT/$archive.all.csv"
    grep -Ev "$SERIES_EXCLUDE" "$OUT/$archive.all.csv" >"$OUT/$archive.csv" || true
    echo "data: PCP archive $archive ($(pmdumplog -L "$archive_dir/$archive" | awk '/from host/ {print $NF}')), $(wc -l <"$OUT/$archive.csv") samples"
}

printf 'variant\tseries\tsamples\tsealed\tchunks\tchunk_bytes_per_sample\topen\tsstable_bytes\tbytes_per_sample\n'

# run_variant NAME TS_UNIT_MS DUPLICATE_POLICY CHUNK_SIZE: loads, saves, measures and
# prints one row.
run_variant() {
    local name=$1 unit=$2 policy=$3 chunk_size=$4
    local dir port server
    dir=$(mktemp -d /tmp/tskv-ts-bytes-data.XXXXXX)
    port=$(free_port)
    "$BIN/tskv-server" --port "$port" --data-dir "$dir" --shards 1 --fsync always \
        >"$OUT/server-$name.log" 2>&1 &
    server=$!
    wait_ready "$port"
    python3 scripts/ts-csv-resp.py --prefix pcp: --ts-unit-ms "$unit" \
        --duplicate-policy "$policy" \
        --chunk-size-bytes "$chunk_size" "$csv" 2>"$OUT/load-$name.txt" |
        redis-cli -p "$port" --pipe >>"$OUT/load-$name.txt"
    grep -q 'errors: 0,' "$OUT/load-$name.txt" || { cat "$OUT/load-$name.txt" >&2; exit 1; }
    redis-cli -p "$port" SAVE >/dev/null
    while [ "$(info_field "$port" pending_compaction_bytes)" != "0" ]; do sleep 0.2; done
    local series=0 samples=0 sealed=0 chunks=0 chunk_bytes=0
    for key in $(redis-cli -p "$port" --scan --pattern 'pcp:*'); do
        read -r n s c b < <(redis-cli -p "$port" TS.INFO "$key" DEBUG | awk '
            prev == "totalSamples" { n = $1 }
            prev == "samples" { s += $1; c++ }
            prev == "size" { b += $1 }
            { prev = $0 }
            END { print n + 0, s + 0, c + 0, b + 0 }')
        series=$((series + 1)) samples=$((samples + n)) sealed=$((sealed + s))
        chunks=$((chunks + c)) chunk_bytes=$((chunk_bytes + b))
    done
    redis-cli -p "$port" SHUTDOWN >/dev/null 2>&1 || true
    wait "$server" || true
    "$BIN/tskv-tool" compact --json "$dir" >"$OUT/compact-$name.json"
    local bytes model reports=() sst report
    bytes=$(jq '.sstable_bytes' "$OUT/compact-$name.json")
    for sst in "$dir"/shard-*/sst-*.sst; do
        report=$OUT/sst-$name-$(basename "$sst" .sst).json
        "$BIN/tskv-tool" --json sst --entries "$sst" >"$report"
        reports+=("$report")
    done
    model=$(python3 scripts/gorilla-bits.py --ts-unit-ms "$unit" --chunk-size-bytes "$chunk_size" \
        --seal-samples $((chunk_size / 4)) "$csv")
    python3 - "$name" "$series" "$samples" "$sealed" "$chunks" "$chunk_bytes" "$bytes" <<'EOF' | tee -a "$OUT/raw.tsv"
import sys
name, series, samples, sealed, chunks, chunk_bytes, sstable = sys.argv[1:]
samples, sealed, chunk_bytes, sstable = int(samples), int(sealed), int(chunk_bytes), int(sstable)
print(f"{name}\t{series}\t{samples}\t{sealed}\t{chunks}\t{chunk_bytes / max(sealed, 1):.3f}"
      f"\t{samples - sealed}\t{sstable}\t{sstable / max(samples, 1):.3f}")
EOF
    echo "    on disk, bytes per sample by entry kind: $(python3 scripts/ts-sst-bytes.py --per "$samples" "${reports[@]}")"
    echo "    model, every sample sealed (bytes per sample): $model"
    rm -rf "$dir"
}

for archive in $DATASETS; do
    fetch_csv "$archive"
    csv=$OUT/$archive.csv
    for size in $CHUNK_SIZES; do
        run_variant "$archive-ms-chunk$size" 1 BLOCK "$size"
        run_variant "$archive-seconds-chunk$size" 1000 LAST "$size"
    done
done
echo "(reports in $OUT)"
