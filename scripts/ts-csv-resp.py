#!/usr/bin/env python3
"""Turn `series,timestamp_ms,value` CSV lines into the RESP commands that load them into
tskv (or RedisTimeSeries), for `redis-cli --pipe`.

For each series, in order of first appearance: `TS.CREATE PREFIX+series [CHUNK_SIZE n]`;
then the samples in file order, as `TS.MADD key ts value ...` of at most --batch samples
each (a batch may mix series). Values are sent as written in the file, so the server
parses exactly the recorded text. With --ts-unit-ms U each timestamp is cut down to a
multiple of U ms (U = 1000: the 1-second resolution Gorilla stores), which is a stated
change of the data, off by default.

--duplicate-policy P adds `DUPLICATE_POLICY P` to each `TS.CREATE` (cutting timestamps
can make two samples of a series share one).

Usage: ts-csv-resp.py [--prefix P] [--chunk-size-bytes N] [--batch N] [--ts-unit-ms U]
       [--duplicate-policy P] FILE.csv | redis-cli -p PORT --pipe
Prints the series and sample counts to stderr ("series=S samples=N").
"""
import argparse
import sys


def bulk(word: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(word), word)


def command(words) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(bulk(w) for w in words)


def read_samples(path: str, ts_unit_ms: int):
    """Yields (series, timestamp_ms, value text) per CSV line; blank lines are skipped."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            fields = line.rsplit(b",", 2)
            if len(fields) != 3:
                raise SystemExit(f"{path}:{number}: expected series,timestamp_ms,value")
            series, ts, value = fields
            ts_ms = int(ts)
            float(value)  # refuse a line the server would refuse, with its line number
            yield series, ts_ms - ts_ms % ts_unit_ms, value


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--prefix", default="")
    p.add_argument("--chunk-size-bytes", type=int)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--ts-unit-ms", type=int, default=1)
    p.add_argument("--duplicate-policy")
    a = p.parse_args()
    prefix = a.prefix.encode()
    samples = list(read_samples(a.file, a.ts_unit_ms))
    out = sys.stdout.buffer
    created = set()
    for series, _, _ in samples:
        if series in created:
            continue
        created.add(series)
        words = [b"TS.CREATE", prefix + series]
        if a.chunk_size_bytes:
            words += [b"CHUNK_SIZE", b"%d" % a.chunk_size_bytes]
        if a.duplicate_policy:
            words += [b"DUPLICATE_POLICY", a.duplicate_policy.encode()]
        out.write(command(words))
    for at in range(0, len(samples), a.batch):
        words = [b"TS.MADD"]
        for series, ts_ms, value in samples[at : at + a.batch]:
            words += [prefix + series, b"%d" % ts_ms, value]
        out.write(command(words))
    print(f"series={len(created)} samples={len(samples)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
