"""A mixed soak against one keel (bench/soak.sh): users who read, write, edit, search and delete memories,
post events and usage, refresh their tokens and log out and in again, through the gateway, at a bounded rate;
meanwhile keel's RSS, its data directory and the database's tables are sampled. Prints the series and the
two bars of issue #13: RSS at the end over RSS after the first minute (<= 1.05; each the median of that
minute's samples), and the data directory's
growth in the last third of the run against its growth in the first third plus the growth of the data keel
keeps on purpose for a window (events for their retention, sessions until they end, idempotent answers for
24 h, the ledger for good).

Usage: soak.py GATEWAY_URL SERVICE_TOKEN KEEL_PID DATA_DIR SECONDS"""
import collections
import json
import os
import random
import sqlite3
import sys
import threading
import time

import requests

gateway, service_token, pid, data_dir, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], \
    float(sys.argv[5])
USERS = int(os.environ.get("SOAK_USERS", "6"))
RATE = float(os.environ.get("SOAK_RATE", "60"))  # requests a second for each user
LIVE = 20  # memories a user keeps; past it the oldest goes
REFRESH_EVERY = 60.0  # seconds between a user's token refreshes
RELOGIN_EVERY = 240.0  # seconds between a user's logout and login (a new session)
SAMPLE_EVERY = 10.0
# Tables whose rows keel keeps on purpose for a window longer than the soak: their growth is live data.
WINDOWED = ("observability_events", "sessions", "refresh_tokens", "idempotent_requests", "ledger_entries")
WORDS = ("apple banana cherry delta echo falcon garden harbor island jungle kettle lemon meadow nectar "
         "orchid pepper quartz river saddle timber umbrella violet walnut xenon yellow zephyr").split()

stop = threading.Event()
counts = collections.Counter()
lock = threading.Lock()


def note(kind):
    with lock:
        counts[kind] += 1


class User:
    def __init__(self, i):
        self.email = f"soak{i}-{random.randrange(1 << 30)}@example.com"
        self.password = "correct horse battery staple"
        self.s = requests.Session()
        r = self.s.post(f"{gateway}/v1/auth/register", json={"email": self.email, "password": self.password},
                        timeout=30)
        r.raise_for_status()
        self.take(r.json())
        self.live = collections.deque()
        self.refreshed = self.logged_in = time.monotonic()

    def take(self, tokens):
        self.access, self.refresh = tokens["access_token"], tokens["refresh_token"]
        self.s.headers["Authorization"] = f"Bearer {self.access}"

    def call(self, method, path, **kw):
        r = self.s.request(method, f"{gateway}{path}", timeout=30, **kw)
        note("requests")
        if r.status_code >= 500:
            note("5xx")
            print(f"soak: {method} {path}: {r.status_code} {r.text[:200]}", file=sys.stderr)
        elif r.status_code >= 400:
            note("4xx")
            print(f"soak: {method} {path}: {r.status_code} {r.text[:200]}", file=sys.stderr)
        return r

    def step(self):
        now = time.monotonic()
        if now - self.logged_in > RELOGIN_EVERY:
            self.call("POST", "/v1/auth/logout")
            r = self.call("POST", "/v1/auth/login", json={"email": self.email, "password": self.password})
            if r.ok:
                self.take(r.json())
            self.logged_in = self.refreshed = now
        elif now - self.refreshed > REFRESH_EVERY:
            r = self.call("POST", "/v1/auth/refresh", json={"refresh_token": self.refresh})
            if r.ok:
                self.take(r.json())
            self.refreshed = now
        op = random.random()
        if op < 0.25:
            self.call("GET", "/v1/auth/me")
        elif op < 0.45:
            body = {"content": " ".join(random.choices(WORDS, k=12)), "tags": random.sample(WORDS, 2),
                    "metadata": {"n": random.randrange(100)}}
            if random.random() < 0.5:
                body["embedding"] = [random.random() for _ in range(8)]
            r = self.call("POST", "/v1/memories", json=body)
            if r.status_code == 201:
                self.live.append(r.json()["id"])
            while len(self.live) > LIVE:
                self.call("DELETE", f"/v1/memories/{self.live.popleft()}")
        elif op < 0.60 and self.live:
            self.call("PATCH", f"/v1/memories/{random.choice(self.live)}",
                      json={"content": " ".join(random.choices(WORDS, k=12))})
        elif op < 0.70 and self.live:
            self.call("GET", f"/v1/memories/{random.choice(self.live)}")
        elif op < 0.80:
            self.call("POST", "/v1/memories/search", json={"query": " ".join(random.sample(WORDS, 2))})
        elif op < 0.85:
            self.call("POST", "/v1/memories/search", json={"embedding": [random.random() for _ in range(8)]})
        elif op < 0.92:
            r = self.s.post(f"{gateway}/v1/events", timeout=30, headers={"Authorization": f"Bearer {service_token}"},
                            json={"type": "soak.tick", "source": "/soak", "data": {"n": random.randrange(1000)}})
            note("requests")
            if r.status_code >= 400:
                note("5xx" if r.status_code >= 500 else "4xx")
        else:
            self.call("GET", "/v1/billing/usage")


def run_user(u):
    gap = 1.0 / RATE
    nxt = time.monotonic()
    while not stop.is_set():
        try:
            u.step()
        except requests.RequestException as e:
            note("errors")
            print(f"soak: {e}", file=sys.stderr)
        nxt += gap
        time.sleep(max(0.0, nxt - time.monotonic()))


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def dir_bytes():
    total = 0
    for root, _, files in os.walk(data_dir):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def table_bytes():
    """Bytes in use per table (its indexes included), from SQLite's dbstat; a short-lived connection, so it
    never holds back keel's checkpoints."""
    c = sqlite3.connect(os.path.join(data_dir, "keel.db"), timeout=10)
    try:
        tables = dict(c.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')"))
        out = collections.Counter()
        for name, size in c.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            out[tables.get(name, name)] += size
        return out
    finally:
        c.close()


users = [User(i) for i in range(USERS)]
threads = [threading.Thread(target=run_user, args=(u,), daemon=True) for u in users]
start = time.monotonic()
for t in threads:
    t.start()
samples = []  # (t, rss KiB, data dir bytes, windowed bytes, tables)
print(f"{'t (s)':>6} {'RSS MiB':>8} {'data dir MiB':>13} {'windowed MiB':>13} {'requests':>9} {'5xx':>4}")
while True:
    t = time.monotonic() - start
    tables = table_bytes()
    s = (t, rss_kib(), dir_bytes(), sum(tables[w] for w in WINDOWED), tables)
    samples.append(s)
    with lock:
        c = dict(counts)
    print(f"{t:6.0f} {s[1] / 1024:8.1f} {s[2] / 2**20:13.2f} {s[3] / 2**20:13.2f} {c.get('requests', 0):9d} "
          f"{c.get('5xx', 0):4d}", flush=True)
    if t >= seconds:
        break
    time.sleep(max(0.0, SAMPLE_EVERY - (time.monotonic() - start - t)))
stop.set()
for th in threads:
    th.join(timeout=30)


def at(when):
    """The sample nearest to `when` seconds."""
    return min(samples, key=lambda s: abs(s[0] - when))


def median_rss(lo, hi):
    """The median RSS of the samples taken from `lo` to `hi` seconds: one sample can land on a request's
    momentary peak (a search's buffers, a batch being written) and misstate where memory stands."""
    values = sorted(s[1] for s in samples if lo <= s[0] <= hi)
    return values[len(values) // 2] if values else at(lo)[1]


end = samples[-1]
rss_after_minute = median_rss(60, 120)  # the second minute
rss_end = median_rss(end[0] - 60, end[0])  # the last minute
ratio = rss_end / rss_after_minute
third = end[0] / 3
s0, s1, s2, s3 = at(0), at(third), at(2 * third), end
g_first, g_last = s1[2] - s0[2], s3[2] - s2[2]
w_last = s3[3] - s2[3]
limit = 0.10 * g_first + max(0, w_last)
total = counts["requests"]
print()
print("growth by table over the run (MiB):")
for name in sorted(set(s0[4]) | set(end[4]), key=lambda n: -(end[4][n] - s0[4][n])):
    d = end[4][name] - s0[4][name]
    if abs(d) >= 2**16:
        print(f"  {name:28} {d / 2**20:8.2f}{'  (windowed)' if name in WINDOWED else ''}")
print()
print(f"requests: {total} in {end[0]:.0f} s ({total / end[0]:.0f}/s); 4xx {counts['4xx']}, 5xx {counts['5xx']}, "
      f"transport errors {counts['errors']}")
print(f"RSS (median of each minute's samples): {rss_after_minute / 1024:.1f} MiB in the second minute, "
      f"{rss_end / 1024:.1f} MiB in the last: "
      f"ratio {ratio:.3f} (bar <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")
print(f"data dir growth: first third {g_first / 2**20:.2f} MiB, last third {g_last / 2**20:.2f} MiB, of which "
      f"windowed live data {w_last / 2**20:.2f} MiB; bar: last <= 10% of first + windowed = "
      f"{limit / 2**20:.2f} MiB: {'met' if g_last <= limit else 'NOT met'}")
if total:
    print(f"bytes per request (whole run): data dir {(end[2] - s0[2]) / total:.0f}, windowed tables "
          f"{(end[3] - s0[3]) / total:.0f}")
ok = ratio <= 1.05 and g_last <= limit and counts["5xx"] == 0 and counts["errors"] == 0
sys.exit(0 if ok else 1)
