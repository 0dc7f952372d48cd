#!/usr/bin/env python3
"""Turn a Performance Co-Pilot archive into `series,timestamp_ms,value` CSV lines.

Reads `pmdumplog -x ARCHIVE` (PCP's own dump of every recorded value with its full
timestamp) and prints one line per numeric value, in the archive's order:

    <metric>[:<instance>],<unix ms>,<value as recorded>

The timestamp is the archive's record time cut to milliseconds (tskv's unit); values are
printed as pmdumplog prints them (counters stay raw counters, no rate conversion), except
that a metric of PCP type `float` (32-bit, printed with 8 digits) is turned back into the
float it recorded and printed as that float widened exactly to a double, as a collector
storing doubles would store it. Series names keep only `[A-Za-z0-9_.:-]`. Non-numeric values (strings, events) are skipped and
counted on stderr. Usage: pcp-to-csv.py ARCHIVE > out.csv   (needs pmdumplog, from `pcp`)
"""
import calendar
import re
import struct
import subprocess
import sys
import time

RECORD = re.compile(r"^(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d)\.(\d{6}) (\d{4}) \d+ metrics?$")
VALUE = re.compile(r'^\s+[\d.]+ \(([^)]+)\):(?: inst \[\d+ or "([^"]*)"\])? value (\S+)$')
INST = re.compile(r'^\s+inst \[\d+ or "([^"]*)"\] value (\S+)$')
NAME_BAD = re.compile(r"[^A-Za-z0-9_.:-]")


def main() -> int:
    archive = sys.argv[1]
    dump = subprocess.run(
        ["pmdumplog", "-x", archive], env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True,
    ).stdout
    floats = float_metrics(archive)
    ts_ms = None
    metric = None
    skipped = 0
    out = sys.stdout
    for line in dump.splitlines():
        m = RECORD.match(line)
        if m:
            secs = calendar.timegm(time.strptime(f"{m[1]} {m[3]}", "%a %b %d %H:%M:%S %Y"))
            ts_ms = secs * 1000 + int(m[2]) // 1000
            continue
        m = VALUE.match(line)
        if m:
            metric = m[1]
            if m[3] is not None:
                skipped += emit(out, metric, m[2], ts_ms, m[3], metric in floats)
            continue
        m = re.match(r"^\s+[\d.]+ \(([^)]+)\):$", line)
        if m:
            metric = m[1]
            continue
        m = INST.match(line)
        if m and metric is not None:
            skipped += emit(out, metric, m[1], ts_ms, m[2], metric in floats)
    if skipped:
        print(f"pcp-to-csv: skipped {skipped} non-numeric values", file=sys.stderr)
    return 0


def float_metrics(archive: str) -> set:
    """The names of the archive's metrics whose PCP type is `float` (from `pminfo -d`)."""
    described = subprocess.run(
        ["pminfo", "-d", "-a", archive], check=True, capture_output=True, text=True
    ).stdout
    names = set()
    name = None
    for line in described.splitlines():
        if line and not line[0].isspace():
            name = line.strip()
        elif "Data Type: float" in line and name:
            names.add(name)
    return names


def emit(out, metric: str, inst, ts_ms: int, value: str, is_float32: bool) -> int:
    """Writes one CSV line; returns 1 when the value is not a finite number."""
    try:
        number = float(value)
    except ValueError:
        return 1
    if number != number or number in (float("inf"), float("-inf")):
        return 1
    if is_float32:
        value = repr(struct.unpack("<f", struct.pack("<f", number))[0])
    name = metric if inst is None else f"{metric}:{inst}"
    out.write(f"{NAME_BAD.sub('_', name)},{ts_ms},{value}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
