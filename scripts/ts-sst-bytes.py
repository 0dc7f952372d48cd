#!/usr/bin/env python3
"""Where a tskv data directory's SSTable bytes go, by kind of time-series entry.

Reads the `tskv-tool --json sst --entries FILE` reports given as arguments and prints,
as `name=bytes` pairs, the key and value bytes of each kind of entry (by the internal
key's tag, `src/timeseries/keys.rs`: meta 0x01, chunk 0x02, sample 0x03 (open samples a
checkpoint stored), seal mark 0x06; anything else is `other`), their counts, and
`framing`: the rest of the files (entry headers, block CRCs, index, Bloom filter, footer).
With --per N, every byte figure is divided by N (e.g. the sample count).

Usage: ts-sst-bytes.py [--per N] REPORT.json ...
"""
import argparse
import json
import sys

KINDS = {1: "meta", 2: "chunk", 3: "sample", 6: "seal_mark"}


def key_bytes(shown: str) -> bytes:
    """The raw key from tskv-tool's quoted, escaped form (`"\\xff\\x01name"`)."""
    inner = shown[1:-1] if shown.startswith('"') else shown
    return inner.encode("latin1").decode("unicode_escape").encode("latin1")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("reports", nargs="+")
    p.add_argument("--per", type=float, default=1.0)
    a = p.parse_args()
    sizes = {name: 0 for name in [*KINDS.values(), "other"]}
    counts = dict.fromkeys(sizes, 0)
    file_bytes = 0
    for path in a.reports:
        with open(path) as f:
            report = json.load(f)
        file_bytes += report["file_bytes"]
        for entry in report["entries"]:
            key = key_bytes(entry["key"])
            kind = KINDS.get(key[1], "other") if len(key) > 1 and key[0] == 0xFF else "other"
            sizes[kind] += len(key) + (entry.get("value_bytes") or 0)
            counts[kind] += 1
    framing = file_bytes - sum(sizes.values())
    shown = {**sizes, "framing": framing, "total": file_bytes}
    print(" ".join(f"{k}={v / a.per:.3f}" if a.per != 1 else f"{k}={v}" for k, v in shown.items()),
          " ".join(f"{k}_entries={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
