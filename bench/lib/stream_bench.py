"""Realtime streams under load (bench/stream.sh): subscribers on GET /v1/stream, writers posting memories.

  fanout WRITE_URL READ_URL USERS SUBS_PER_USER RATE SECONDS
      USERS users, each with SUBS_PER_USER streams of topic `memories` opened at READ_URL (a gateway), and
      RATE memory writes a second through WRITE_URL (a gateway: the same one, or another process's on the
      same PostgreSQL) for SECONDS, spread over the users. Prints the delivery latency from each write's 201
      to its receipt on every stream of its user (p50, p99, max; a message that arrives before its 201 counts
      0), and the messages lost and duplicated.
  idle READ_URL USERS STREAMS KEEL_PID
      STREAMS idle streams over USERS users; prints keel's RSS before and after, and /health p99 (1,000
      requests, one connection) while they are open.

Only 127.0.0.1 is targeted. Asyncio, raw HTTP/1.1: one process holds 10,000 streams.
"""
import asyncio
import json
import os
import sys
import time
import urllib.parse

import requests


def register(url, n):
    """n users through the gateway; their (id, token)."""
    import concurrent.futures
    tag = os.urandom(4).hex()

    def one(i):
        r = requests.post(url + "/v1/auth/register",
                          json={"email": f"s{tag}-{i}@example.com", "password": "correct horse battery"}, timeout=60)
        r.raise_for_status()
        return r.json()["user"]["id"], r.json()["access_token"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def hostport(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


async def read_head(reader):
    status = int((await reader.readline()).split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            return status, headers
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()


class Subscriber:
    def __init__(self, url, token, on_message):
        self.url, self.token, self.on_message = url, token, on_message
        self.opened = asyncio.Event()
        self.writer = None

    async def run(self):
        host, port = hostport(self.url)
        reader, self.writer = await asyncio.open_connection(host, port, limit=1 << 22)
        self.writer.write(f"GET /v1/stream?topics=memories HTTP/1.1\r\nHost: {host}\r\n"
                          f"Authorization: Bearer {self.token}\r\n\r\n".encode())
        status, headers = await read_head(reader)
        if status != 200:
            raise RuntimeError(f"stream answered {status}")
        self.opened.set()
        buf = b""
        while True:
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                return
            buf += await reader.readexactly(size)
            await reader.readexactly(2)
            now = time.monotonic()
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                fields = {}
                for line in block.decode().split("\n"):
                    if line and not line.startswith(":"):
                        k, _, v = line.partition(":")
                        fields[k] = v[1:] if v.startswith(" ") else v
                if "data" in fields:
                    self.on_message(fields, now)

    def close(self):
        if self.writer:
            self.writer.close()


async def post_memory(reader, writer, host, token, content):
    body = json.dumps({"content": content}).encode()
    writer.write(f"POST /v1/memories HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    status, headers = await read_head(reader)
    data = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, data


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


async def fanout(write_url, read_url, users, subs_per_user, rate, seconds):
    people = register(write_url, users)
    received = {}   # memory id -> [receipt times]
    seen = {}       # (subscriber index) -> list of (seq, memory id)
    acked = {}      # memory id -> time of its 201
    owner = {}      # memory id -> user index
    subs = []
    for u, (uid, token) in enumerate(people):
        for k in range(subs_per_user):
            index = len(subs)
            seen[index] = []

            def on_message(fields, now, index=index):
                if fields.get("event") == "resync":
                    seen[index].append((None, "resync"))
                    return
                e = json.loads(fields["data"])
                mid = e["data"]["id"]
                seen[index].append((int(fields["id"]), mid))
                received.setdefault(mid, []).append(now)

            subs.append((u, Subscriber(read_url, token, on_message)))
    tasks = [asyncio.create_task(s.run()) for _, s in subs]
    await asyncio.wait_for(asyncio.gather(*(s.opened.wait() for _, s in subs)), 60)
    await asyncio.sleep(0.5)
    host, port = hostport(write_url)
    writers = 16
    conns = [await asyncio.open_connection(host, port) for _ in range(writers)]
    total = int(rate * seconds)
    start = time.monotonic()
    errors = 0

    async def writer_loop(w):
        nonlocal errors
        reader, writer = conns[w]
        for i in range(w, total, writers):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            u = i % users
            status, data = await post_memory(reader, writer, host, people[u][1], f"m{i}")
            if status != 201:
                errors += 1
                continue
            mid = json.loads(data)["id"]
            acked[mid] = time.monotonic()
            owner[mid] = u

    await asyncio.gather(*(writer_loop(w) for w in range(writers)))
    elapsed = time.monotonic() - start
    await asyncio.sleep(2)  # the last messages arrive
    for _, s in subs:
        s.close()
    for t in tasks:
        t.cancel()
    latencies, lost, duplicated, out_of_order, resyncs = [], 0, 0, 0, 0
    for index, (u, _) in enumerate(subs):
        mine = {m for m, o in owner.items() if o == u}
        got = [m for seq, m in seen[index] if seq is not None]
        resyncs += sum(1 for seq, m in seen[index] if seq is None)
        seqs = [seq for seq, m in seen[index] if seq is not None]
        out_of_order += sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
        duplicated += len(got) - len(set(got))
        lost += len(mine - set(got))
    for mid, times in received.items():
        if mid in acked:
            latencies.extend(max(0.0, t - acked[mid]) * 1000 for t in times)
    print(f"subscribers {len(subs)} ({users} users x {subs_per_user}), writes {len(acked)} in {elapsed:.1f} s "
          f"({len(acked) / elapsed:.0f}/s, {errors} failed), deliveries {len(latencies)}")
    print(f"latency write 201 -> receipt: p50 {pct(latencies, 50):.1f} ms, p99 {pct(latencies, 99):.1f} ms, "
          f"max {max(latencies) if latencies else float('nan'):.1f} ms")
    print(f"lost {lost}, duplicated {duplicated}, out of order {out_of_order}, resync {resyncs}")
    print(json.dumps({"p99_ms": pct(latencies, 99), "lost": lost, "duplicated": duplicated,
                      "out_of_order": out_of_order, "deliveries": len(latencies)}))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def idle(read_url, users, streams, pid):
    people = register(read_url, users)
    before = rss_kib(pid)
    subs = [Subscriber(read_url, people[i % users][1], lambda f, t: None) for i in range(streams)]
    tasks = []
    for i in range(0, streams, 500):  # in batches: the listen backlog is finite
        batch = subs[i:i + 500]
        tasks += [asyncio.create_task(s.run()) for s in batch]
        await asyncio.wait_for(asyncio.gather(*(s.opened.wait() for s in batch)), 60)
    await asyncio.sleep(2)
    after = rss_kib(pid)
    host, port = hostport(read_url)
    reader, writer = await asyncio.open_connection(host, port)
    times = []
    for _ in range(1000):
        t0 = time.monotonic()
        writer.write(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        status, headers = await read_head(reader)
        await reader.readexactly(int(headers.get("content-length", "0")))
        times.append((time.monotonic() - t0) * 1000)
    open_now = sum(1 for t in tasks if not t.done())
    for s in subs:
        s.close()
    print(f"idle streams {streams} ({open_now} still open at the end), keel RSS {before / 1024:.1f} -> "
          f"{after / 1024:.1f} MiB (+{(after - before) / 1024:.1f} MiB)")
    print(f"/health with them open: p50 {pct(times, 50):.2f} ms, p99 {pct(times, 99):.2f} ms")
    print(json.dumps({"rss_growth_mib": (after - before) / 1024, "health_p99_ms": pct(times, 99),
                      "open": open_now}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "fanout":
        asyncio.run(fanout(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]),
                           float(sys.argv[7])))
    elif mode == "idle":
        asyncio.run(idle(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
