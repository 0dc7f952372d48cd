#!/usr/bin/env python3
# Measures what a KEYS reply whose client stops reading holds on the server (README,
# SCAN/KEYS): usage `scripts/keys-stalled-memory.py SERVER_BINARY KEYS`. Starts the server
# (2 shards, a fresh data directory, a 1 GiB output limit so an old build does not refuse
# the reply), loads KEYS keys of about 100 bytes, SAVEs, waits 5 s, then sends `KEYS *` on a
# socket it never reads; 8 s later prints the server's RSS before and during, and the
# stalled client's `omem` from CLIENT LIST. Needs the `redis` Python package.
import re, socket, subprocess, sys, tempfile, time
import redis
binary, n = sys.argv[1], int(sys.argv[2])
data = tempfile.mkdtemp()
proc = subprocess.Popen([binary, "--port", "0", "--shards", "2", "--data-dir", data,
                         "--client-output-bytes-max", str(1 << 30)],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
port = int(re.search(r":(\d+),", proc.stdout.readline()).group(1))
r = redis.Redis(port=port)
pipe = r.pipeline(transaction=False)
for i in range(n):
    pipe.set(f"key:{i:08}:" + "x" * 86, "v")
    if i % 10000 == 9999:
        pipe.execute()
pipe.execute()
r.execute_command("SAVE")
time.sleep(5)
def rss_mib():
    status = open(f"/proc/{proc.pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) // 1024
before = rss_mib()
stalled = socket.create_connection(("127.0.0.1", port))
stalled.sendall(b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n")
time.sleep(8)
during = rss_mib()
lines = [l for l in r.execute_command("CLIENT", "LIST").decode().splitlines() if " cmd=keys " in l]
omem = re.search(r"omem=(\d+)", lines[0]).group(1) if lines else "?"
print(f"{binary}: {n} keys (reply about {n * 110 // 1_000_000} MB): "
      f"RSS before {before} MiB, during the stalled KEYS {during} MiB, omem {omem} bytes")
proc.terminate()
proc.wait()
