"""Memory: each user's memories, with versions, TTL, full-text, vector and hybrid search, on both backends."""
import concurrent.futures
import math
import random
import time
import uuid

import pytest
import requests

from conftest import wait_until


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def new_user(keel):
    r = requests.post(keel.url("auth") + "/v1/auth/register",
                      json={"email": f"m{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery"},
                      timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["access_token"]


class Client:
    def __init__(self, keel, token, module="memory"):
        self.base = keel.url(module)
        self.s = requests.Session()
        self.s.headers.update(bearer(token))

    def create(self, expect=201, **body):
        r = self.s.post(self.base + "/v1/memories", json=body, timeout=30)
        assert r.status_code == expect, r.text
        return r.json()

    def get(self, mid):
        return self.s.get(f"{self.base}/v1/memories/{mid}", timeout=30)

    def patch(self, mid, body, if_match=None):
        headers = {"If-Match": if_match} if if_match else {}
        return self.s.patch(f"{self.base}/v1/memories/{mid}", json=body, headers=headers, timeout=30)

    def delete(self, mid):
        return self.s.delete(f"{self.base}/v1/memories/{mid}", timeout=30)

    def list(self, **params):
        r = self.s.get(self.base + "/v1/memories", params=params, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def search(self, expect=200, **body):
        r = self.s.post(self.base + "/v1/memories/search", json=body, timeout=30)
        assert r.status_code == expect, r.text
        return r.json()

    def search_ids(self, **body):
        return [it["memory"]["id"] for it in self.search(**body)["items"]]


def fields_of(problem):
    return {e["field"] for e in problem.get("errors", [])}


@pytest.fixture
def keel(keel_factory):
    return keel_factory().start()


def test_create_read_list_update_delete(keel):
    c = Client(keel, new_user(keel))
    m = c.create(content="User prefers dark mode", tags=["ui", "pref", "ui"], metadata={"source": "chat"})
    assert m["namespace"] == "default" and m["version"] == 1 and m["tags"] == ["ui", "pref"]
    assert m["metadata"] == {"source": "chat"} and m["embedding_dims"] is None and m["expires_at"] is None
    assert m["created_at"].endswith("Z") and m["created_at"] == m["updated_at"]
    r = c.get(m["id"])
    assert r.status_code == 200 and r.json() == m and r.headers["ETag"] == '"1"'

    other = c.create(content="Works at a bakery", namespace="work", tags=["job"])
    assert [x["id"] for x in c.list()["items"]] == [other["id"], m["id"]]  # newest first
    assert [x["id"] for x in c.list(namespace="work")["items"]] == [other["id"]]
    assert [x["id"] for x in c.list(tag="ui")["items"]] == [m["id"]]
    page = c.list(limit=1)
    assert len(page["items"]) == 1 and page["next_cursor"]
    assert [x["id"] for x in c.list(limit=1, cursor=page["next_cursor"])["items"]] == [m["id"]]

    r = c.patch(m["id"], {"content": "User prefers light mode", "tags": ["ui"]})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["content"] == "User prefers light mode" and r.json()["tags"] == ["ui"]
    assert r.json()["metadata"] == {"source": "chat"}  # untouched fields stay
    assert r.headers["ETag"] == '"2"'
    assert c.list(tag="pref")["items"] == []

    assert c.delete(m["id"]).status_code == 204
    assert c.get(m["id"]).status_code == 404
    assert c.delete(m["id"]).status_code == 404
    assert [x["id"] for x in c.list()["items"]] == [other["id"]]


def test_another_users_memory_is_404_everywhere(keel):
    alice, bob = Client(keel, new_user(keel)), Client(keel, new_user(keel))
    secret = alice.create(content="alice's secret recipe", embedding=[1.0, 0.0, 0.0])
    assert bob.get(secret["id"]).status_code == 404
    assert bob.patch(secret["id"], {"content": "mine now"}).status_code == 404
    assert bob.delete(secret["id"]).status_code == 404
    assert bob.s.get(f"{bob.base}/v1/memories/{secret['id']}/history", timeout=10).status_code == 404
    assert bob.list()["items"] == []
    assert bob.search(query="secret recipe")["items"] == []
    bob.create(content="bob's own", embedding=[1.0, 0.0, 0.0])
    assert [it["memory"]["content"] for it in bob.search(embedding=[1.0, 0.0, 0.0])["items"]] == ["bob's own"]
    assert alice.get(secret["id"]).json()["content"] == "alice's secret recipe"

    base = keel.url("memory")
    assert requests.get(base + "/v1/memories", timeout=10).status_code == 401
    assert requests.post(base + "/v1/memories", json={"content": "x"}, timeout=10).status_code == 401
    r = requests.get(base + "/v1/memories", headers=bearer("not.a.token"), timeout=10)
    assert r.status_code == 401 and "invalid_token" in r.headers["WWW-Authenticate"]
    service = keel.cli("token", "create", "--service", "indexer").stdout.strip()
    r = requests.get(base + "/v1/memories", headers=bearer(service), timeout=10)
    assert r.status_code == 403 and r.headers["Content-Type"].startswith("application/problem+json")


def test_routes_through_the_gateway(keel):
    c = Client(keel, new_user(keel), module="gateway")
    m = c.create(content="routed through the gateway")
    assert c.get(m["id"]).status_code == 200
    assert c.search_ids(query="gateway") == [m["id"]]


INVALID = [
    ({}, "content"),
    ({"content": ""}, "content"),
    ({"content": None}, "content"),
    ({"content": 5}, "content"),
    ({"content": "x" * (64 * 1024 + 1)}, "content"),
    ({"content": "é" * (32 * 1024 + 1)}, "content"),  # 64 KiB counts bytes, not characters
    ({"content": "a\u0000b"}, "content"),
    ({"content": "x", "namespace": "Bad Namespace"}, "namespace"),
    ({"content": "x", "namespace": "n" * 65}, "namespace"),
    ({"content": "x", "tags": "ui"}, "tags"),
    ({"content": "x", "tags": [1]}, "tags"),
    ({"content": "x", "tags": [""]}, "tags"),
    ({"content": "x", "tags": ["t%d" % i for i in range(33)]}, "tags"),
    ({"content": "x", "metadata": [1]}, "metadata"),
    ({"content": "x", "metadata": {"k": "a\u0000"}}, "metadata"),
    ({"content": "x", "metadata": {"k": "x" * (64 * 1024)}}, "metadata"),  # past 64 KiB as JSON
    ({"content": "x", "embedding": []}, "embedding"),
    ({"content": "x", "embedding": [0.0, 0.0]}, "embedding"),
    ({"content": "x", "embedding": ["1"]}, "embedding"),
    ({"content": "x", "embedding": [1e39]}, "embedding"),
    ({"content": "x", "embedding": [0.5] * 4097}, "embedding"),
    ({"content": "x", "ttl_seconds": 0}, "ttl_seconds"),
    ({"content": "x", "ttl_seconds": 1.5}, "ttl_seconds"),
]


def test_invalid_memories_are_422_naming_the_field(keel):
    c = Client(keel, new_user(keel))
    for body, field in INVALID:
        r = c.s.post(c.base + "/v1/memories", json=body, timeout=30)
        assert r.status_code == 422, (body if len(str(body)) < 200 else field, r.text)
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert field in fields_of(r.json()), (field, r.json())
    assert c.list()["items"] == []


def test_malformed_bodies_and_limits(keel):
    c = Client(keel, new_user(keel))
    r = c.s.post(c.base + "/v1/memories", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400
    r = c.s.post(c.base + "/v1/memories", data=b"content", headers={"Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 415
    assert c.create(content="x" * (64 * 1024))["content"] == "x" * (64 * 1024)  # the limit itself is fine
    assert c.get("not-a-uuid").status_code == 404
    assert c.get(str(uuid.uuid4())).status_code == 404
    assert c.s.get(c.base + "/v1/memories", params={"limit": 501}, timeout=10).status_code == 422
    assert c.s.get(c.base + "/v1/memories", params={"cursor": "garbage"}, timeout=10).status_code == 400
    assert c.s.get(c.base + "/v1/memories", params={"namespace": "BAD"}, timeout=10).status_code == 422
    assert "query" in fields_of(c.search(expect=422))
    assert "query" in fields_of(c.search(expect=422, query="?!* ()"))
    assert "limit" in fields_of(c.search(expect=422, query="x", limit=1000))
    assert "metadata" in fields_of(c.search(expect=422, query="x", metadata="k=v"))


def test_fts_operators_in_queries_are_plain_words(keel):
    c = Client(keel, new_user(keel))
    m = c.create(content="the quick brown fox NEAR the river AND the hill")
    for q in ['"unbalanced', "NEAR(fox river)", "fox AND OR NOT", "content:fox", "fox*", "^fox", "-fox", "{scope}: x",
              "' OR 1=1 --", "fox\u0000river"]:
        r = c.s.post(c.base + "/v1/memories/search", json={"query": q}, timeout=10)
        assert r.status_code in (200, 422), (q, r.status_code, r.text)
        if r.status_code == 200 and "fox" in q.lower():
            assert [it["memory"]["id"] for it in r.json()["items"]] == [m["id"]], q


def test_versions_if_match_and_history(keel):
    c = Client(keel, new_user(keel))
    m = c.create(content="v1", tags=["a"], metadata={"n": 1})
    assert c.patch(m["id"], {"content": "v2"}, if_match='"1"').status_code == 200
    stale = c.patch(m["id"], {"content": "lost update"}, if_match='"1"')
    assert stale.status_code == 412 and stale.headers["Content-Type"].startswith("application/problem+json")
    assert c.get(m["id"]).json()["content"] == "v2"
    assert c.patch(m["id"], {"metadata": {"n": 3}}, if_match="2").status_code == 200  # bare numbers too
    assert c.patch(m["id"], {"tags": ["b"]}, if_match="*").status_code == 200
    assert c.patch(m["id"], {"content": "x"}, if_match='"nope"').status_code == 412
    cur = c.get(m["id"]).json()
    assert cur["version"] == 4 and cur["content"] == "v2" and cur["metadata"] == {"n": 3} and cur["tags"] == ["b"]

    h = c.s.get(f"{c.base}/v1/memories/{m['id']}/history", timeout=10).json()
    assert [(v["version"], v["content"]) for v in h["items"]] == [(3, "v2"), (2, "v2"), (1, "v1")]
    assert h["items"][2]["tags"] == ["a"] and h["items"][2]["metadata"] == {"n": 1}
    assert h["items"][1]["metadata"] == {"n": 1} and h["items"][0]["metadata"] == {"n": 3}
    assert all(v["id"] == m["id"] and v["created_at"] == m["created_at"] for v in h["items"])
    page = c.s.get(f"{c.base}/v1/memories/{m['id']}/history", params={"limit": 2}, timeout=10).json()
    assert [v["version"] for v in page["items"]] == [3, 2] and page["next_cursor"]
    rest = c.s.get(f"{c.base}/v1/memories/{m['id']}/history",
                   params={"limit": 2, "cursor": page["next_cursor"]}, timeout=10).json()
    assert [v["version"] for v in rest["items"]] == [1]

    assert "namespace" in fields_of(c.patch(m["id"], {"namespace": "other"}).json())
    assert c.patch(m["id"], {"content": None}).status_code == 422
    assert c.patch(m["id"], {}).json()["version"] == 4  # nothing to change: no new version


def test_history_keeps_the_newest_versions_it_is_configured_for(keel_factory):
    k = keel_factory(env={"KEEL_MEMORY_VERSIONS_KEPT": "3"}).start()
    c = Client(k, new_user(k))
    m = c.create(content="edit 0")
    for i in range(1, 11):
        assert c.patch(m["id"], {"content": f"edit {i}"}).status_code == 200
    assert c.get(m["id"]).json()["version"] == 11
    h = c.s.get(f"{c.base}/v1/memories/{m['id']}/history", timeout=10).json()
    # A memory edited all day does not grow without bound: the newest three past versions, nothing older.
    assert [(v["version"], v["content"]) for v in h["items"]] == [(10, "edit 9"), (9, "edit 8"), (8, "edit 7")]


def test_concurrent_patches_with_if_match_let_exactly_one_win(keel):
    c = Client(keel, new_user(keel))
    m = c.create(content="counter 0")

    def attempt(i):
        s = requests.Session()
        s.headers.update(c.s.headers)
        return s.patch(f"{c.base}/v1/memories/{m['id']}", json={"content": f"writer {i}"},
                       headers={"If-Match": '"1"'}, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(attempt, range(12)))
    assert codes.count(200) == 1 and codes.count(412) == 11, codes
    assert c.get(m["id"]).json()["version"] == 2


def test_ttl_hides_expired_memories_and_the_sweeper_deletes_them(keel_factory):
    keel = keel_factory(env={"KEEL_MEMORY_SWEEP_INTERVAL_MS": "200"}).start()
    c = Client(keel, new_user(keel))
    short = c.create(content="ephemeral note about tea", ttl_seconds=1, embedding=[0.0, 1.0])
    kept = c.create(content="lasting note about tea", embedding=[0.0, 1.0])
    assert short["expires_at"] and c.get(short["id"]).status_code == 200
    longer = c.create(content="a note that will outlive the test", ttl_seconds=3600)
    cleared = c.patch(longer["id"], {"ttl_seconds": None}).json()
    assert cleared["expires_at"] is None
    assert wait_until(lambda: c.get(short["id"]).status_code == 404, timeout=4)  # its TTL was 1 s
    assert short["id"] not in [x["id"] for x in c.list()["items"]]
    assert c.search_ids(query="tea") == [kept["id"]]
    assert c.search_ids(embedding=[0.0, 1.0]) == [kept["id"]]
    assert c.patch(short["id"], {"content": "revive"}).status_code == 404
    deadline = time.time() + 5
    while time.time() < deadline and keel.query("SELECT COUNT(*) FROM memories WHERE id = $1", short["id"])[0][0] != "0":
        time.sleep(0.1)
    assert keel.query("SELECT COUNT(*) FROM memories WHERE id = $1", short["id"]) == [("0",)]
    assert keel.query("SELECT COUNT(*) FROM memories WHERE id = $1", kept["id"]) == [("1",)]


def test_full_text_search_ranks_by_bm25_with_filters(keel):
    c = Client(keel, new_user(keel))
    best = c.create(content="Espresso, espresso and more espresso: the user drinks espresso daily",
                    tags=["coffee", "habit"], metadata={"source": "chat", "confidence": 0.9, "pinned": True})
    once = c.create(content="Mentioned espresso once while talking about travel plans to Rome",
                    tags=["coffee"], metadata={"source": "email", "confidence": 1})
    c.create(content="Prefers green tea in the afternoon", tags=["tea"])
    work = c.create(content="Espresso machine at the office is broken", namespace="work")
    ids = c.search_ids(query="espresso")
    assert ids[0] == best["id"] and set(ids) == {best["id"], once["id"], work["id"]}
    items = c.search(query="espresso")["items"]
    assert items[0]["score"] > items[1]["score"] > 0
    assert ids.index(work["id"]) < ids.index(once["id"])  # BM25 favours the shorter of two single mentions
    assert c.search_ids(query="drinking") == [best["id"]]  # stemmed: drinks ~ drinking
    tea = c.list(tag="tea")["items"][0]["id"]
    assert set(c.search_ids(query="Rome tea")) == {once["id"], tea}  # any of the words
    assert c.search_ids(query="espresso", namespace="work") == [work["id"]]
    assert c.search_ids(query="espresso", tags=["coffee", "habit"]) == [best["id"]]
    assert c.search_ids(query="espresso", tags=["coffee", "missing"]) == []
    assert c.search_ids(query="espresso", metadata={"source": "email"}) == [once["id"]]
    assert c.search_ids(query="espresso", metadata={"confidence": 1}) == [once["id"]]
    assert c.search_ids(query="espresso", metadata={"confidence": 1.0}) == [once["id"]]
    assert c.search_ids(query="espresso", metadata={"pinned": True}) == [best["id"]]
    assert c.search_ids(query="espresso", metadata={"pinned": 1}) == []
    assert c.search_ids(query="espresso", metadata={"source": "chat", "confidence": 0.9}) == [best["id"]]
    assert c.search_ids(query="espresso", limit=1) == [best["id"]]
    c.patch(best["id"], {"content": "Switched to decaf"})
    assert best["id"] not in c.search_ids(query="espresso")
    assert c.search_ids(query="decaf") == [best["id"]]


def normalized(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def cosine(a, b):
    return sum(x * y for x, y in zip(normalized(a), normalized(b)))


def test_vector_search_is_cosine_per_namespace_dimension(keel):
    c = Client(keel, new_user(keel))
    a = c.create(content="a", embedding=[1.0, 0.0, 0.0])
    b = c.create(content="b", embedding=[0.7, 0.7, 0.0])
    d = c.create(content="d", embedding=[0.0, 0.0, 5.0])
    items = c.search(embedding=[2.0, 0.1, 0.0])["items"]
    assert [it["memory"]["id"] for it in items] == [a["id"], b["id"], d["id"]]
    assert abs(items[0]["score"] - cosine([1, 0, 0], [2.0, 0.1, 0])) < 1e-5
    assert abs(items[2]["score"]) < 1e-6

    r = c.s.post(c.base + "/v1/memories", json={"content": "x", "embedding": [1.0, 2.0]}, timeout=10)
    assert r.status_code == 422 and "embedding" in fields_of(r.json())
    assert len(c.list()["items"]) == 3  # nothing stored by the refused write
    other = c.create(content="other ns", namespace="small", embedding=[1.0, 2.0])
    assert c.search_ids(embedding=[1.0, 2.0]) == [other["id"]]  # namespaces of that dimension only
    assert "embedding" in fields_of(c.search(expect=422, embedding=[1.0, 2.0], namespace="default"))
    assert c.search_ids(embedding=[1.0, 2.0], namespace="unused") == []

    c.patch(d["id"], {"embedding": [1.0, 0.05, 0.0]})
    assert c.search_ids(embedding=[1.0, 0.05, 0.0], limit=1) == [d["id"]]
    c.patch(d["id"], {"embedding": None})
    assert d["id"] not in c.search_ids(embedding=[1.0, 0.05, 0.0])
    assert c.get(d["id"]).json()["embedding_dims"] is None
    c.delete(a["id"])
    assert c.search_ids(embedding=[1.0, 0.0, 0.0]) == [b["id"]]


def test_hnsw_search_finds_the_exact_neighbours(keel_factory):
    keel = keel_factory(env={"KEEL_MEMORY_HNSW_THRESHOLD": "100"}).start()
    c = Client(keel, new_user(keel))
    rnd = random.Random(7)
    dims = 24
    vectors = [[rnd.gauss(0, 1) for _ in range(dims)] for _ in range(600)]

    def add(i):
        s = requests.Session()
        s.headers.update(c.s.headers)
        r = s.post(c.base + "/v1/memories", json={"content": f"vector {i}", "namespace": "vec", "embedding": vectors[i],
                                                  "tags": ["even" if i % 2 == 0 else "odd"]}, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(add, range(len(vectors))))
    deadline = time.time() + 30
    while time.time() < deadline:
        metrics = requests.get(keel.url("memory") + "/metrics", timeout=10).text
        pending = [line for line in metrics.splitlines() if line.startswith("keel_memory_vectors_pending ")]
        if c.search_ids(embedding=vectors[0], namespace="vec", limit=1) and pending == ["keel_memory_vectors_pending 0"]:
            break
        time.sleep(0.1)
    assert pending == ["keel_memory_vectors_pending 0"]
    hits = 0
    for q in range(40):
        query = [rnd.gauss(0, 1) for _ in range(dims)]
        exact = sorted(range(len(vectors)), key=lambda i: -cosine(query, vectors[i]))[:10]
        got = c.search_ids(embedding=query, namespace="vec", limit=10)
        hits += len(set(got) & {ids[i] for i in exact})
    assert hits / 400 >= 0.95
    # A filter is applied before ranking: the best even vector, not the best vector filtered afterwards.
    query = vectors[1]
    best_even = max((i for i in range(0, len(vectors), 2)), key=lambda i: cosine(query, vectors[i]))
    assert c.search_ids(embedding=query, namespace="vec", tags=["even"], limit=1) == [ids[best_even]]
    c.delete(ids[1])
    assert ids[1] not in c.search_ids(embedding=vectors[1], namespace="vec", limit=5)


def test_hybrid_search_fuses_both_rankings(keel):
    c = Client(keel, new_user(keel))
    # Text ranks text_only, both; vectors rank both, vec_only, text_only. Fused (1 / (60 + rank) summed):
    # both 1/62 + 1/61 > text_only 1/61 + 1/63 > vec_only 1/62.
    both = c.create(content="hiking trip in the alps", embedding=[1.0, 0.15])
    text_only = c.create(content="hiking boots need new laces, hiking hiking", embedding=[-1.0, 0.3])
    vec_only = c.create(content="mountain weekend", embedding=[1.0, 0.5])
    assert c.search_ids(query="hiking") == [text_only["id"], both["id"]]
    assert c.search_ids(embedding=[1.0, 0.15]) == [both["id"], vec_only["id"], text_only["id"]]
    items = c.search(query="hiking", embedding=[1.0, 0.15])["items"]
    assert [it["memory"]["id"] for it in items] == [both["id"], text_only["id"], vec_only["id"]]
    assert [it["score"] for it in items] == pytest.approx([1 / 62 + 1 / 61, 1 / 61 + 1 / 63, 1 / 62])
    assert c.search_ids(query="hiking", embedding=[1.0, 0.15], limit=1) == [both["id"]]


def test_vectors_written_by_another_process_are_found(keel_factory, backend):
    first = keel_factory().start()
    second = keel_factory(database=first.database, data_dir=first.data_dir, services="memory").start()
    token = new_user(first)
    a, b = Client(first, token), Client(second, token)
    m = a.create(content="written by the first process", embedding=[0.3, 0.9, 0.1])
    assert b.search_ids(embedding=[0.3, 0.9, 0.1]) == [m["id"]]
    a.patch(m["id"], {"embedding": [0.9, -0.3, 0.0]})
    assert b.search(embedding=[0.9, -0.3, 0.0])["items"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    a.delete(m["id"])
    assert b.search_ids(embedding=[0.9, -0.3, 0.0]) == []


def test_created_memories_survive_kill_9(keel_factory):
    keel = keel_factory().start()
    c = Client(keel, new_user(keel))

    def add(i):
        s = requests.Session()
        s.headers.update(c.s.headers)
        r = s.post(c.base + "/v1/memories", json={"content": f"durable memory number {i}", "embedding": [1.0, i + 1.0]},
                   timeout=30)
        return r.json()["id"] if r.status_code == 201 else None

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        created = [x for x in pool.map(add, range(300)) if x]
    keel.kill()  # SIGKILL right after the last 201: no graceful shutdown
    assert len(created) == 300
    again = keel_factory(database=keel.database, data_dir=keel.data_dir).start()
    c2 = Client(again, c.s.headers["Authorization"].split(" ", 1)[1])
    for mid in created:
        assert c2.get(mid).status_code == 200
    assert len(c2.search_ids(query="durable", limit=100)) == 100
    assert len(c2.search_ids(embedding=[1.0, 5.0], limit=100)) == 100


def test_memory_paths_are_in_openapi(keel):
    doc = requests.get(keel.url("gateway") + "/openapi.json", timeout=10).json()
    for path in ["/v1/memories", "/v1/memories/{id}", "/v1/memories/search", "/v1/memories/{id}/history"]:
        assert path in doc["paths"], path
    assert {"get", "patch", "delete"} <= set(doc["paths"]["/v1/memories/{id}"])


def test_common_words_give_way_to_rare_ones(keel_factory, backend):
    # [memory] common_word_rows = 3: a word in more than 3 memories is common (SQLite's full-text ranking).
    keel = keel_factory(env={"KEEL_MEMORY_COMMON_WORD_ROWS": "3"}).start()
    c = Client(keel, new_user(keel))
    ids = [c.create(content=f"note number {i}" + (" note note" if i == 1 else ""))["id"] for i in range(6)]
    zebra = c.create(content="a note about a zebra")
    if backend == "sqlite":
        # A rare word decides which memories qualify; the common one would only reorder them.
        assert c.search_ids(query="zebra note") == [zebra["id"]]
        # Common words alone: the newest 3 matches are ranked.
        assert set(c.search_ids(query="note")) == {zebra["id"], ids[5], ids[4]}
    else:
        assert c.search_ids(query="zebra note")[0] == zebra["id"]
        assert c.search_ids(query="note")[0] == ids[1]
