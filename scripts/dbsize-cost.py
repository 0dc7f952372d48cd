#!/usr/bin/env python3
# Measures what DBSIZE costs the shard loop: usage `scripts/dbsize-cost.py PORT KEYS [nosave]`
# against a running one-shard tskv-server (README, INFO). Without `nosave` the keys are
# flushed to SSTables first; with it they stay in the active memtable.
# Loads N keys into a one-shard server, then alternates SET + DBSIZE on one connection
# while a second connection sends PING back to back; reports DBSIZE reply times and the
# PING latencies seen meanwhile (the shard's loop is free iff PINGs stay fast).
import socket, sys, time, threading, statistics
port, n = int(sys.argv[1]), int(sys.argv[2])
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); return s
def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
def read_line(s, buf):
    while b"\r\n" not in buf[0]:
        buf[0] += s.recv(65536)
    line, buf[0] = buf[0].split(b"\r\n", 1)
    return line
a = conn(); abuf = [b""]
batch = 1000
for start in range(0, n, batch):
    a.sendall(b"".join(cmd("SET", "key:%d" % i, "v" * 100) for i in range(start, min(n, start + batch))))
    for _ in range(start, min(n, start + batch)):
        read_line(a, abuf)
if len(sys.argv) < 4: a.sendall(cmd("SAVE")); read_line(a, abuf)
stop = False; pings = []
def pinger():
    b = conn(); bbuf = [b""]
    while not stop:
        t = time.perf_counter(); b.sendall(cmd("PING")); read_line(b, bbuf); pings.append(time.perf_counter() - t)
th = threading.Thread(target=pinger); th.start()
times = []
for r in range(10):
    a.sendall(cmd("SET", "churn", r)); read_line(a, abuf)
    t = time.perf_counter(); a.sendall(cmd("DBSIZE")); line = read_line(a, abuf); times.append(time.perf_counter() - t)
stop = True; th.join()
pings.sort()
print("keys", line.decode(), "DBSIZE ms median %.1f max %.1f" % (statistics.median(times) * 1e3, max(times) * 1e3),
      "| PING during: n=%d p50 %.2f ms p99 %.2f ms max %.1f ms" % (len(pings), pings[len(pings)//2] * 1e3, pings[int(len(pings) * .99)] * 1e3, pings[-1] * 1e3))
