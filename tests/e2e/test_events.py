"""The event log: CloudEvents written by keel and by third parties, filters, long-polling, and a follower that
misses nothing while many writers post at once (on PostgreSQL too, where sequence order is not commit order)."""
import concurrent.futures
import http.client
import json
import threading
import time
import uuid

import pytest
import requests


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def keel(keel_factory):
    return keel_factory().start()


@pytest.fixture
def svc(keel):
    return keel.cli("token", "create", "--service", "weather").stdout.strip()


def post(keel, token, **body):
    return requests.post(keel.url("events") + "/v1/events", json=body, headers=bearer(token), timeout=10)


def read(keel, token, **params):
    return requests.get(keel.url("events") + "/v1/events", params=params, headers=bearer(token), timeout=90)


def test_post_and_read_cloudevents(keel, svc):
    r = post(keel, svc, type="com.example.weather.updated", source="/weather", subject="city-7", data={"temp": 21})
    assert r.status_code == 201, r.text
    e = r.json()
    assert e["specversion"] == "1.0" and e["datacontenttype"] == "application/json"
    assert e["type"] == "com.example.weather.updated" and e["data"] == {"temp": 21} and e["seq"] > 0
    got = read(keel, svc, type="com.example.weather.updated")
    assert got.status_code == 200
    body = got.json()
    assert [x["id"] for x in body["items"]] == [e["id"]] and body["next_after"] == e["seq"]
    assert read(keel, svc, subject="city-7").json()["items"][0]["id"] == e["id"]
    assert read(keel, svc, source="/nowhere").json()["items"] == []


def test_keels_own_events_are_in_the_log(keel, svc):
    reg = requests.post(keel.url("gateway") + "/v1/auth/register",
                        json={"email": f"e{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse battery"},
                        timeout=30).json()
    uid = reg["user"]["id"]
    types = [e["type"] for e in read(keel, svc, subject=uid).json()["items"]]
    assert "keel.auth.user.registered" in types and "keel.billing.account.created" in types
    for e in read(keel, svc, subject=uid).json()["items"]:
        assert reg["access_token"] not in str(e) and reg["refresh_token"] not in str(e)


def test_who_may_read_and_write(keel, svc):
    user = requests.post(keel.url("auth") + "/v1/auth/register",
                         json={"email": f"e{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse battery"},
                         timeout=30).json()["access_token"]
    assert requests.get(keel.url("events") + "/v1/events", timeout=10).status_code == 401
    assert read(keel, user).status_code == 403
    assert post(keel, user, type="x.y", source="/s").status_code == 403
    r = post(keel, svc, type="keel.auth.user.registered", source="/fake")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "type"
    for spoof in ("KEEL.auth.user.registered", "Keel.billing.ledger.posted", "kEeL.x"):
        r = post(keel, svc, type=spoof, source="/fake")  # the reserved prefix in any case
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "type", spoof
    assert post(keel, svc, source="/s").status_code == 422
    assert post(keel, svc, type="x.y").status_code == 422
    assert read(keel, svc, limit=0).status_code == 422
    assert read(keel, svc, after=-1).status_code == 422
    assert read(keel, svc, wait="2h").status_code == 422
    assert read(keel, svc, since="yesterday").status_code == 422


def test_invalid_events_are_422_naming_the_field_and_store_nothing(keel, svc):
    before = read(keel, svc).json()["next_after"]
    cases = [
        ({"type": "com.example.bad type"}, "type", "must not contain whitespace"),
        ({"type": "com.example.tab\there"}, "type", "must not contain whitespace"),
        ({"type": "com.example.line\n"}, "type", "must not contain whitespace"),
        ({"data": {"note": "a\u0000b"}}, "data", "must not contain NUL characters"),
        ({"data": ["ok", {"k\u0000": 1}]}, "data", "must not contain NUL characters"),
        ({"data": {"blob": "x" * 65536}}, "data", "must be at most 64 KiB of JSON"),
        ({"dataschema": "https://example.com/s"}, "dataschema", "is not a CloudEvents attribute keel stores"),
        ({"user_id": "someone"}, "user_id", "is not a CloudEvents attribute keel stores"),
    ]
    for change, field, message in cases:
        body = {"type": "com.example.checked", "source": "/checks", **change}
        r = requests.post(keel.url("events") + "/v1/events", json=body, headers=bearer(svc), timeout=10)
        assert r.status_code == 422 and r.headers["Content-Type"].startswith("application/problem+json"), r.text
        assert {"field": field, "message": message} in r.json()["errors"], (change, r.json())
    assert read(keel, svc).json()["next_after"] == before  # none of them was stored
    # The attributes keel does store, and data just under the bound, are taken.
    r = post(keel, svc, type="com.example.checked", source="/checks", specversion="1.0",
             datacontenttype="application/json", data={"blob": "x" * 60000})
    assert r.status_code == 201, r.text


def test_after_and_limit_page_through_in_order(keel, svc):
    seqs = [post(keel, svc, type="page.test", source="/p", data={"i": i}).json()["seq"] for i in range(7)]
    seen, after = [], 0
    for _ in range(len(seqs) + 2):  # a cursor that does not move on must fail the test, not hang it
        body = read(keel, svc, type="page.test", after=after, limit=3).json()
        if not body["items"]:
            assert body["next_after"] == after
            break
        seen += [e["seq"] for e in body["items"]]
        after = body["next_after"]
    assert seen == seqs


def test_wait_returns_when_an_event_arrives(keel, svc):
    latest = read(keel, svc, type="wait.test").json()["next_after"]
    start = time.time()
    empty = read(keel, svc, type="wait.test", after=latest, wait="1s").json()
    assert 0.9 <= time.time() - start < 3 and empty["items"] == [] and empty["next_after"] == latest
    posted = []
    writer = threading.Timer(0.5, lambda: posted.append(post(keel, svc, type="wait.test", source="/w")))
    writer.start()
    start = time.time()
    body = read(keel, svc, type="wait.test", after=latest, wait="10s").json()
    assert 0.4 <= time.time() - start < 2
    assert [e["type"] for e in body["items"]] == ["wait.test"]
    writer.join(timeout=10)
    assert posted[0].status_code == 201 and posted[0].json()["seq"] == body["items"][0]["seq"]


def test_a_follower_misses_nothing_under_concurrent_writers(keel, svc):
    writers, per_writer = 8, 40
    posted, seen, stop = set(), [], threading.Event()
    start_after = read(keel, svc, type="follow.test").json()["next_after"]

    def follower():
        after = start_after
        while not stop.is_set() or len(seen) < writers * per_writer:
            body = read(keel, svc, type="follow.test", after=after, wait="1s", limit=500).json()
            seen.extend(e["id"] for e in body["items"])
            after = body["next_after"]
            if stop.is_set() and not body["items"]:
                break

    def writer(w):
        ids = []
        for i in range(per_writer):
            r = post(keel, svc, type="follow.test", source=f"/w{w}", data={"i": i})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        return ids

    t = threading.Thread(target=follower)
    t.start()
    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        for ids in pool.map(writer, range(writers)):
            posted.update(ids)
    stop.set()
    t.join(timeout=60)
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    assert set(seen) == posted, f"missed {len(posted - set(seen))} events"


def test_concurrent_posts_store_every_character_as_sent(backend, keel_factory):
    """Posts that arrive together are written together (on PostgreSQL, one statement of arrays for a group):
    quotes, backslashes, braces, commas, the word NULL, newlines and non-ASCII text come back exactly as
    posted, and a missing subject stays missing rather than becoming a string."""
    keel = keel_factory().start()
    svc = keel.cli("token", "create", "--service", "weather").stdout.strip()
    awkward = ['say "hi"', "back\\slash\\", "{a,b}", "NULL", "", "line\nbreak", "Zürich ☂ 東京", "\\\"", ",", " "]
    sent = []
    for i in range(160):
        text = awkward[i % len(awkward)]
        body = {"type": "chars.test", "source": f"/s/{text}" if text.strip() else "/s", "data": {"t": text, "i": i}}
        if i % 3:
            body["subject"] = text if text else "x"
        sent.append(body)
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    # Sent in bursts: every connection's request is on the wire before any answer is read, so posts arrive
    # while a transaction is under way and queue for the next one together.
    ids = []
    port = int(keel.url("events").rsplit(":", 1)[1])
    for burst in range(0, len(sent), 80):
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in sent[burst:burst + 80]]
        for c in conns:
            c.connect()
        for c, body in zip(conns, sent[burst:burst + 80]):
            headers = {**bearer(svc), "Content-Type": "application/json"}
            if body["data"]["i"] % 2:
                headers["traceparent"] = traceparent
            c.request("POST", "/v1/events", body=json.dumps(body), headers=headers)
        for c in conns:
            r = c.getresponse()
            text = r.read()
            assert r.status == 201, text
            ids.append(json.loads(text)["id"])
            c.close()
    deadline, got = time.time() + 20, {}
    while len(got) < len(sent) and time.time() < deadline:
        body = read(keel, svc, type="chars.test", limit=500).json()
        got = {e["id"]: e for e in body["items"]}
    assert len(got) == len(sent)
    for body, id_ in zip(sent, ids):
        e = got[id_]
        assert e["source"] == body["source"] and e["data"] == body["data"]
        assert e["subject"] == body.get("subject"), (e["subject"], body)
        assert (e.get("traceparent") or "").startswith("00-0af7651916cd43dd8448eb211c80319c") == bool(body["data"]["i"] % 2)


def test_a_follower_misses_nothing_across_four_processes_when_one_is_killed(backend, keel_factory):
    """PostgreSQL numbers events after commit (no lock shared by every writer): four processes with sixteen
    writers each, one killed with SIGKILL mid-run; a follower on another process gets every acknowledged
    event once, in increasing seq, and events the killed process committed get numbers from the others."""
    if backend != "postgres":
        pytest.skip("one process serves a SQLite database")
    procs = [keel_factory(services="events") for _ in range(4)]
    svc = procs[0].cli("token", "create", "--service", "weather").stdout.strip()  # before: keys load at start
    for p in procs:
        p.start()
    writers, per_writer = 16, 20
    acked, seen_ids, seen_seqs = set(), [], []
    lock, stop = threading.Lock(), threading.Event()
    follow_at = procs[1]
    start_after = read(follow_at, svc, type="scale.test").json()["next_after"]

    def follower():
        after = start_after
        while not stop.is_set():
            body = read(follow_at, svc, type="scale.test", after=after, wait="1s", limit=500).json()
            seen_ids.extend(e["id"] for e in body["items"])
            seen_seqs.extend(e["seq"] for e in body["items"])
            after = body["next_after"]

    def writer(k, w):
        session = requests.Session()
        for i in range(per_writer):
            try:
                r = session.post(procs[k].url("events") + "/v1/events", headers=bearer(svc), timeout=10,
                                 json={"type": "scale.test", "source": f"/p{k}/w{w}", "data": {"i": i}})
            except requests.RequestException:
                return  # its process was killed: what it sent last is unknown
            assert r.status_code == 201, r.text
            assert isinstance(r.json()["seq"], int)
            with lock:
                acked.add(r.json()["id"])

    t = threading.Thread(target=follower)
    t.start()
    with concurrent.futures.ThreadPoolExecutor(4 * writers) as pool:
        futures = [pool.submit(writer, k, w) for k in range(4) for w in range(writers)]
        deadline = time.time() + 30
        while len(acked) < writers * per_writer and time.time() < deadline:  # a quarter of the run
            time.sleep(0.01)
        procs[3].kill()
        for f in futures:
            f.result()
    # Every acknowledged event reaches the follower; the killed process's committed ones are numbered too.
    deadline = time.time() + 15
    while not acked <= set(seen_ids) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # anything numbered late would show up as a duplicate or out of order
    stop.set()
    t.join(timeout=30)
    assert len(seen_ids) == len(set(seen_ids)), "an event was delivered twice"
    assert seen_seqs == sorted(seen_seqs) and len(set(seen_seqs)) == len(seen_seqs), "seq not increasing"
    assert acked <= set(seen_ids), f"missed {len(acked - set(seen_ids))} acknowledged events"
    unnumbered = procs[0].query("SELECT count(*) FROM observability_events WHERE seq IS NULL")
    assert unnumbered == [("0",)], "committed events left without a number"
    assert len(acked) >= writers * per_writer * 3, "the writers on the processes left did not finish"


def test_login_failures_say_why_and_for_whom_to_admins_only(keel, svc):
    """A service reading the log must not learn whether an email has an account from the failures it causes."""
    email = f"lf{uuid.uuid4().hex[:8]}@example.com"
    r = requests.post(keel.url("auth") + "/v1/auth/register", json={"email": email, "password": "correct horse battery"},
                      timeout=30)
    user_id = r.json()["user"]["id"]
    for tried in (email, f"nobody{uuid.uuid4().hex[:8]}@example.com"):
        r = requests.post(keel.url("auth") + "/v1/auth/login", json={"email": tried, "password": "wrong password!"},
                          timeout=30)
        assert r.status_code == 401
    seen = read(keel, svc, type="keel.auth.login.failed").json()["items"]
    assert len(seen) == 2
    for e in seen:  # the same shape whether the account exists or not
        assert e["subject"] is None and set(e["data"]) == {"ip"}, e
    # Nor does filtering by a user's id tell a service which attempts were for that user.
    assert read(keel, svc, type="keel.auth.login.failed", subject=user_id).json()["items"] == []
    assert read(keel, svc, subject=user_id).json()["items"] != []  # the user's other events still are
    admin_email = f"adm{uuid.uuid4().hex[:8]}@example.com"
    keel.cli("user", "create", "--email", admin_email, "--password-stdin", "--admin", input="admin password\n")
    admin = requests.post(keel.url("auth") + "/v1/auth/login", json={"email": admin_email, "password": "admin password"},
                          timeout=30).json()["access_token"]
    full = read(keel, admin, type="keel.auth.login.failed").json()["items"]
    assert [(e["subject"], e["data"]["reason"]) for e in full] == [(user_id, "wrong_password"), (None, "unknown_account")]
    assert len(read(keel, admin, type="keel.auth.login.failed", subject=user_id).json()["items"]) == 1
