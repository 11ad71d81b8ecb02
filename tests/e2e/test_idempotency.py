"""Idempotent creates (CONTRACT.md, "Safety rules"): an Idempotency-Key header makes a retried create answer
what the first one did, once, across racing retries and a kill -9, on both backends."""
import concurrent.futures
import signal
import uuid

import requests


def bearer(token, key=None):
    h = {"Authorization": f"Bearer {token}"}
    if key:
        h["Idempotency-Key"] = key
    return h


def register(keel):
    r = requests.post(keel.url("auth") + "/v1/auth/register", timeout=30,
                      json={"email": f"i{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery"})
    assert r.status_code == 201, r.text
    return r.json()


def memories(keel, token):
    return requests.get(keel.url("memory") + "/v1/memories", headers=bearer(token), timeout=10).json()["items"]


def test_a_retried_memory_create_answers_the_first_and_creates_once(keel):
    u = register(keel)
    tok, key = u["access_token"], uuid.uuid4().hex
    first = requests.post(keel.url("memory") + "/v1/memories", json={"content": "once"}, headers=bearer(tok, key),
                          timeout=10)
    again = requests.post(keel.url("memory") + "/v1/memories", json={"content": "once"}, headers=bearer(tok, key),
                          timeout=10)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and again.headers["ETag"] == first.headers["ETag"]
    assert [m["id"] for m in memories(keel, tok)] == [first.json()["id"]]
    # Another body under the same key is refused; another user's same key is theirs.
    other = requests.post(keel.url("memory") + "/v1/memories", json={"content": "twice"},
                          headers=bearer(tok, key), timeout=10)
    assert other.status_code == 422 and other.headers["Content-Type"].startswith("application/problem+json")
    v = register(keel)
    theirs = requests.post(keel.url("memory") + "/v1/memories", json={"content": "once"},
                           headers=bearer(v["access_token"], key), timeout=10)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    # Without a key every post creates.
    for _ in range(2):
        requests.post(keel.url("memory") + "/v1/memories", json={"content": "x"}, headers=bearer(tok), timeout=10)
    assert len(memories(keel, tok)) == 3
    bad = requests.post(keel.url("memory") + "/v1/memories", json={"content": "x"},
                        headers=bearer(tok, "has space"), timeout=10)
    assert bad.status_code == 400


def test_racing_retries_with_one_key_create_one_memory(keel):
    u = register(keel)
    tok, key = u["access_token"], uuid.uuid4().hex

    def post(_):
        return requests.post(keel.url("memory") + "/v1/memories", json={"content": "raced"},
                             headers=bearer(tok, key), timeout=10)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(16)))
    assert all(a.status_code == 201 for a in answers), [a.text for a in answers if a.status_code != 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(memories(keel, tok)) == 1


def test_an_acknowledged_key_replays_after_kill_9(keel_factory):
    k = keel_factory().start()
    u = register(k)
    tok, key = u["access_token"], uuid.uuid4().hex
    first = requests.post(k.url("memory") + "/v1/memories", json={"content": "durable"},
                          headers=bearer(tok, key), timeout=10)
    assert first.status_code == 201
    k.stop(signal.SIGKILL)
    k.start()
    again = requests.post(k.url("memory") + "/v1/memories", json={"content": "durable"},
                          headers=bearer(tok, key), timeout=10)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(memories(k, tok)) == 1


def test_events_and_billing_take_the_header(keel):
    svc = keel.cli("token", "create", "--service", "weather").stdout.strip()
    key = uuid.uuid4().hex
    body = {"type": "idem.test", "source": "/w", "data": {"n": 1}}
    first = requests.post(keel.url("events") + "/v1/events", json=body, headers=bearer(svc, key), timeout=10)
    again = requests.post(keel.url("events") + "/v1/events", json=body, headers=bearer(svc, key), timeout=10)
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["seq"] == first.json()["seq"] is not None
    seen = requests.get(keel.url("events") + "/v1/events", params={"type": "idem.test"}, headers=bearer(svc),
                        timeout=10).json()["items"]
    assert [e["id"] for e in seen] == [first.json()["id"]]
    # Billing credits: the header alone stands for the body's idempotency_key.
    admin_email = f"a{uuid.uuid4().hex[:8]}@example.com"
    keel.cli("user", "create", "--email", admin_email, "--password-stdin", "--admin", input="correct horse battery\n")
    admin = requests.post(keel.url("auth") + "/v1/auth/login", timeout=30,
                          json={"email": admin_email, "password": "correct horse battery"}).json()["access_token"]
    u = register(keel)
    account = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]),
                           timeout=10).json()
    credit = {"amount": 5, "description": "welcome"}
    url = keel.url("billing") + f"/v1/billing/accounts/{account['id']}/credits"
    c1 = requests.post(url, json=credit, headers=bearer(admin, key), timeout=10)
    c2 = requests.post(url, json=credit, headers=bearer(admin, key), timeout=10)
    assert c1.status_code == 201 and c2.status_code == 200 and c2.headers["Idempotent-Replayed"] == "true"
    assert c2.json()["id"] == c1.json()["id"]
    balance = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]),
                           timeout=10).json()["balance"]
    assert balance == account["balance"] + 5
