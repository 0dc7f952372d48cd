#!/usr/bin/env python3
"""Where the bits of Gorilla-compressed chunks go, for `series,timestamp_ms,value` CSV data.

A model of tskv's chunk codec (the layout drawn in `src/timeseries/chunk.rs`): each
series' samples, sorted by time (a repeated timestamp keeps the last value, as
`DUPLICATE_POLICY LAST`), are cut into chunks of at most --seal-samples samples (the
open samples one seal takes: a quarter of CHUNK_SIZE) whose encoding stays within
--chunk-size-bytes, and every bit is counted as timestamps (delta-of-delta codes), values
(XOR codes, the first value's 64 bits included) or chunk header and CRC (32 bytes a chunk,
first and last timestamp included). It assumes every sample is sealed: the steady state,
with no open samples. Its total is checked against the chunk sizes `TS.INFO key DEBUG`
reports (scripts/bench-ts-bytes.sh prints both).

Usage: gorilla-bits.py [--ts-unit-ms U] [--seal-samples N] [--chunk-size-bytes B] FILE.csv
Prints one line of `name=value` figures: counts, `chunk_bytes` (the chunks' encoded size
in all, as `TS.INFO key DEBUG` sums them), then bytes per sample.
"""
import argparse
import struct
import sys
from collections import defaultdict

CHUNK_OVERHEAD_BYTES = 28 + 4  # header + CRC-32, from chunk.rs


def ts_bits(dod: int) -> int:
    if dod == 0:
        return 1
    if -64 <= dod <= 63:
        return 2 + 7
    if -256 <= dod <= 255:
        return 3 + 9
    if -2048 <= dod <= 2047:
        return 4 + 12
    return 4 + 64


def chunk_bits(samples):
    """(timestamp bits, value bits) of one chunk's Gorilla payload."""
    t_bits, v_bits = 0, 64
    prev_ts, prev_delta = samples[0][0], 0
    prev = samples[0][1]
    window = None
    for ts, bits in samples[1:]:
        delta = ts - prev_ts
        t_bits += ts_bits(delta - prev_delta)
        prev_ts, prev_delta = ts, delta
        xor = bits ^ prev
        prev = bits
        if xor == 0:
            v_bits += 1
            continue
        leading = min(64 - xor.bit_length(), 63)
        trailing = (xor & -xor).bit_length() - 1
        if window and leading >= window[0] and trailing >= 64 - window[0] - window[1]:
            v_bits += 2 + window[1]
        else:
            meaningful = 64 - leading - trailing
            v_bits += 2 + 6 + 6 + meaningful
            window = (leading, meaningful)
    return t_bits, v_bits


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--ts-unit-ms", type=int, default=1)
    p.add_argument("--seal-samples", type=int, default=1024)
    p.add_argument("--chunk-size-bytes", type=int, default=4096)
    a = p.parse_args()
    series = defaultdict(dict)
    with open(a.file) as f:
        for line in f:
            name, ts, value = line.strip().rsplit(",", 2)
            ts_ms = int(ts)
            ts_ms -= ts_ms % a.ts_unit_ms
            series[name][ts_ms] = struct.unpack("<Q", struct.pack("<d", float(value)))[0]
    total = t_total = v_total = chunks = chunk_bytes = 0
    deltas = defaultdict(int)
    for points in series.values():
        samples = sorted(points.items())
        total += len(samples)
        for (t0, _), (t1, _) in zip(samples, samples[1:]):
            deltas[round((t1 - t0) / 1000)] += 1
        for seal_at in range(0, len(samples), a.seal_samples):
            # One seal's samples, cut into chunks as `cut_chunks` in series.rs does.
            rest = samples[seal_at : seal_at + a.seal_samples]
            while rest:
                take = len(rest)
                while True:
                    t_bits, v_bits = chunk_bits(rest[:take])
                    size = CHUNK_OVERHEAD_BYTES + (t_bits + v_bits + 7) // 8
                    if size <= a.chunk_size_bytes or take == 1:
                        break
                    take = max(1, min(take - 1, take * a.chunk_size_bytes // size))
                t_total += t_bits
                v_total += v_bits
                chunks += 1
                chunk_bytes += size
                rest = rest[take:]
    common = sorted(deltas.items(), key=lambda kv: -kv[1])[:3]
    print(
        f"series={len(series)} samples={total} chunks={chunks} chunk_bytes={chunk_bytes}"
        f" timestamps={t_total / 8 / total:.3f} values={v_total / 8 / total:.3f}"
        f" chunk_header={chunks * CHUNK_OVERHEAD_BYTES / total:.3f}"
        f" chunks_total={chunk_bytes / total:.3f}"
        f" commonest_intervals_s={','.join(f'{d}:{n}' for d, n in common)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
