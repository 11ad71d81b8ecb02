"""Follows GET /v1/events (after + wait) for DURATION seconds and prints the lag between each event's commit
time and its arrival here, plus how many it saw. usage: follower.py EVENTS_URL TOKEN TYPE DURATION"""
import datetime
import statistics
import sys
import time

import requests

url, token, etype, duration = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
headers = {"Authorization": f"Bearer {token}"}
after = 0  # TYPE is fresh: nothing of it before this run
lags, seqs = [], []
session = requests.Session()
end = time.time() + duration
while time.time() < end:
    body = session.get(url, params={"type": etype, "after": after, "wait": "1s", "limit": 500}, headers=headers,
                       timeout=10).json()
    now = datetime.datetime.now(datetime.timezone.utc)
    for e in body["items"]:
        t = datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
        lags.append((now - t).total_seconds() * 1000)
        seqs.append(e["seq"])
    after = body["next_after"]
if not lags:
    sys.exit("the follower saw no events")
lags.sort()
dupes = len(seqs) - len(set(seqs))
ordered = all(a < b for a, b in zip(seqs, seqs[1:]))
print(f"follower: {len(lags)} events, lag p50 {statistics.median(lags):.1f} ms, "
      f"p99 {lags[int(len(lags) * 0.99) - 1]:.1f} ms, max {lags[-1]:.1f} ms; duplicates {dupes}; in seq order {ordered}")
