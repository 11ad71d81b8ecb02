"""Starts keel and measures the time until all six modules answer /health with 200; then its idle RSS.
usage: startup.py KEEL_BIN PORT_BASE DATA_DIR [runs]"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

keel, base, data_root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5


def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


times, rss = [], []
for i in range(runs):
    data_dir = tempfile.mkdtemp(prefix="keel-bench-", dir=data_root)
    env = dict(os.environ, KEEL_LOG_LEVEL="warn")
    t0 = time.perf_counter()
    p = subprocess.Popen([keel, "serve", "--port-base", str(base), "--data-dir", data_dir], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pending = set(range(base, base + 6))
    deadline = t0 + 10
    while pending and time.perf_counter() < deadline:
        for port in list(pending):
            if healthy(port):
                pending.discard(port)
        if pending:
            time.sleep(0.001)
    elapsed = (time.perf_counter() - t0) * 1000
    if pending:
        p.kill()
        sys.exit(f"modules on ports {sorted(pending)} never became healthy")
    times.append(elapsed)
    time.sleep(1.0)
    rss.append(rss_kib(p.pid))
    p.terminate()
    p.wait(timeout=10)

print(f"start to all six healthy (first run, fresh database): {times[0]:.1f} ms")
print(f"start to all six healthy (median of {runs} fresh starts): {statistics.median(times):.1f} ms")
print(f"idle RSS, all six modules: {statistics.median(rss) / 1024:.1f} MiB (max {max(rss) / 1024:.1f} MiB)")
