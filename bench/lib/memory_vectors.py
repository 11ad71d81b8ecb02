"""The memory benchmark's vectors (bench/memory.sh).

gen WORK N DIMS CLUSTERS NOISE QUERIES THREADS SEED
    N clustered vectors: CLUSTERS Gaussian centers (N(0, 1) per dimension), each vector a random center plus
    N(0, NOISE^2) per dimension, rounded to 4 decimals (the JSON sent is then exactly the data); QUERIES query
    vectors drawn the same way (new draws, not from the data set). Writes WORK/vectors.npy, WORK/queries.npy,
    the load's request bodies WORK/vec-bodies.0 .. THREADS-1 (content "vec I" for row I, namespace "vec") and
    the searches' bodies WORK/vec-queries (one a line).

recall WORK URL TOKEN DB USER_ID
    Maps each row to its memory id (DB, by content), computes the exact top 10 by cosine with numpy, runs the
    queries one after another on one keep-alive connection to URL (POST /v1/memories/search), and prints
    recall@10 and the client-side latencies.
"""
import http.client
import io
import json
import sqlite3
import sys
import time
import urllib.parse

import numpy as np


def gen(work, n, dims, clusters, noise, queries, threads, seed):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dims))

    def draw(count):
        x = centers[rng.integers(0, clusters, count)] + noise * rng.standard_normal((count, dims))
        return np.round(x, 4)

    data, qs = draw(n), draw(queries)
    np.save(f"{work}/vectors.npy", data.astype(np.float32))
    np.save(f"{work}/queries.npy", qs.astype(np.float32))

    def rows(m):
        buf = io.StringIO()
        np.savetxt(buf, m, fmt="%.4f", delimiter=",")
        return buf.getvalue().splitlines()

    files = [open(f"{work}/vec-bodies.{t}", "w") for t in range(threads)]
    for i, r in enumerate(rows(data)):
        files[i % threads].write(f'{{"namespace":"vec","content":"vec {i}","embedding":[{r}]}}\n')
    for f in files:
        f.close()
    with open(f"{work}/vec-queries", "w") as f:
        for r in rows(qs):
            f.write(f'{{"namespace":"vec","embedding":[{r}],"limit":10}}\n')
    # How clustered: mean cosine of a vector to its own nearest data vector, and to a random one.
    sample = data[:2000] / np.linalg.norm(data[:2000], axis=1, keepdims=True)
    sims = sample @ sample.T
    np.fill_diagonal(sims, -1)
    print(f"{np.mean(sims.max(axis=1)):.2f} {np.mean(sims[np.triu_indices(len(sample), 1)]):.2f}")


def percentile(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, max(0, int(round(p / 100 * len(sorted_ms))) - 1))]


def recall(work, url, token, db, user_id):
    data = np.load(f"{work}/vectors.npy")
    qs = np.load(f"{work}/queries.npy")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    ids = [None] * len(data)
    for content, mid in con.execute(
        "SELECT content, id FROM memories WHERE user_id = ? AND namespace = 'vec'", (user_id,)
    ):
        i = int(content.split()[1])
        if 0 <= i < len(ids):
            ids[i] = mid
    con.close()
    missing = sum(1 for x in ids if x is None)

    xn = data / np.linalg.norm(data, axis=1, keepdims=True)
    qn = qs / np.linalg.norm(qs, axis=1, keepdims=True)
    exact = []
    for start in range(0, len(qn), 100):
        sims = qn[start : start + 100] @ xn.T
        top = np.argpartition(-sims, 10, axis=1)[:, :10]
        for row in top:
            exact.append({ids[j] for j in row})

    with open(f"{work}/vec-queries") as f:
        bodies = [line.rstrip("\n") for line in f if line.strip()]
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def search(body):
        conn.request("POST", u.path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()

    for body in bodies[:20]:  # warm the connection and caches
        search(body)
    found, lat, bad, short = [], [], 0, 0
    for body in bodies:
        t = time.perf_counter()
        status, payload = search(body)
        lat.append((time.perf_counter() - t) * 1000)
        if status != 200:
            bad += 1
            found.append(set())
            continue
        items = json.loads(payload)["items"]
        short += len(items) < 10
        found.append({it["memory"]["id"] for it in items})
    conn.close()
    rec = float(np.mean([len(f & e) / 10 for f, e in zip(found, exact)]))
    lat.sort()
    print(
        f"recall={rec:.4f} p50_ms={percentile(lat, 50):.3f} p99_ms={percentile(lat, 99):.3f} "
        f"max_ms={lat[-1]:.3f} queries={len(bodies)} non200={bad} short={short} unmapped={missing}"
    )


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen":
        w, n, d, c, noise, q, t, s = args
        gen(w, int(n), int(d), int(c), float(noise), int(q), int(t), int(s))
    elif cmd == "recall":
        recall(*args)
    else:
        sys.exit(f"unknown command {cmd}")
