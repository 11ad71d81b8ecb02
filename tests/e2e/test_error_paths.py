"""Error answers a client meets on every route family, each with the status and problem body the contract gives:
cursors this server did not issue, limits out of range, ids that are not ids, paths no module serves, bodies
that are not JSON objects, query strings that do not decode, the password-change throttle, each check a token
meets, and a database that does not answer in time. Each case is asked as a client would, through the gateway
unless it is about one module's own port."""
import base64
import contextlib
import http.client
import json
import os
import pathlib
import re
import subprocess
import threading
import time
import uuid

import jwt
import pytest
import requests

from conftest import wait_until
from test_billing import admin_token

BAD_CURSORS = ["not-a-cursor", "AAAA", "eyJrIjoxfQ", "%00", "x" * 300]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def problem(r, status):
    assert r.status_code == status, (r.request.method, r.url, r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers["Content-Type"]
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.fixture
def world(keel):
    """A user with one memory, that user's tokens, an admin's and a service's, all through the gateway."""
    gw = keel.url("gateway")
    r = requests.post(gw + "/v1/auth/register",
                      json={"email": f"e{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery"},
                      timeout=30)
    assert r.status_code == 201, r.text
    user = r.json()
    memory = requests.post(gw + "/v1/memories", json={"content": "a note"}, headers=bearer(user["access_token"]),
                           timeout=10)
    assert memory.status_code == 201, memory.text
    svc = keel.cli("token", "create", "--service", "errors").stdout.strip()
    return {"keel": keel, "gw": gw, "user": user, "tok": user["access_token"], "memory": memory.json()["id"],
            "admin": admin_token(keel), "svc": svc}


# Every list: (path, whose token) — the caller each list serves.
LISTS = [("/v1/memories", "tok"), ("/v1/memories/{memory}/history", "tok"), ("/v1/auth/sessions", "tok"),
         ("/v1/auth/users", "admin"), ("/v1/billing/ledger", "tok")]


def test_every_list_refuses_a_cursor_it_did_not_issue_with_400(world):
    for path, who in LISTS:
        url = world["gw"] + path.format(memory=world["memory"])
        for cursor in BAD_CURSORS:
            body = problem(requests.get(url, params={"cursor": cursor}, headers=bearer(world[who]), timeout=10), 400)
            assert "cursor" in body["detail"], (path, body)


def test_every_list_refuses_a_limit_out_of_range_with_422_naming_it(world):
    for path, who in LISTS:
        url = world["gw"] + path.format(memory=world["memory"])
        for limit in ("0", "501", "-1", "ten", "1.5", ""):
            body = problem(requests.get(url, params={"limit": limit}, headers=bearer(world[who]), timeout=10), 422)
            assert "limit" in str(body), (path, limit, body)
        # The bounds themselves are fine.
        for limit in ("1", "500"):
            r = requests.get(url, params={"limit": limit}, headers=bearer(world[who]), timeout=10)
            assert r.status_code == 200, (path, limit, r.text)


def test_ids_that_are_not_ids_are_404_on_every_method(world):
    gw, tok = world["gw"], world["tok"]
    for bad in ("not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", str(uuid.uuid4()) + "x"):
        for method, path, body in (("GET", f"/v1/memories/{bad}", None),
                                   ("PATCH", f"/v1/memories/{bad}", {"content": "x"}),
                                   ("DELETE", f"/v1/memories/{bad}", None),
                                   ("GET", f"/v1/memories/{bad}/history", None),
                                   ("DELETE", f"/v1/auth/sessions/{bad}", None)):
            problem(requests.request(method, gw + path, json=body, headers=bearer(tok), timeout=10), 404)
        problem(requests.post(f"{gw}/v1/billing/accounts/{bad}/credits",
                              json={"amount": 1, "idempotency_key": "k"}, headers=bearer(world["admin"]),
                              timeout=10), 404)
    # A well-formed id of nothing (or of someone else's) is 404 too, and nothing was changed.
    other = str(uuid.uuid4())
    problem(requests.patch(f"{gw}/v1/memories/{other}", json={"content": "x"}, headers=bearer(tok), timeout=10), 404)
    problem(requests.delete(f"{gw}/v1/memories/{other}", headers=bearer(tok), timeout=10), 404)
    problem(requests.post(f"{gw}/v1/billing/accounts/{other}/credits", json={"amount": 1, "idempotency_key": "k"},
                          headers=bearer(world["admin"]), timeout=10), 404)
    assert requests.get(f"{gw}/v1/memories/{world['memory']}", headers=bearer(tok), timeout=10).json()["content"] \
        == "a note"


def test_a_path_no_module_serves_is_404_at_the_gateway(world):
    for path in ("/v1/nothing-here", "/v1/nothing-here/deeper", "/v2/memories", "/v1/memoriesx"):
        for token in (world["tok"], None):
            r = requests.get(world["gw"] + path, headers=bearer(token) if token else {}, timeout=10)
            # Anonymous callers learn nothing of what exists: 401 first, where a token would be needed.
            problem(r, 404 if token else r.status_code)
            assert r.status_code in (401, 404)
        body = problem(requests.get(world["gw"] + path, headers=bearer(world["tok"]), timeout=10), 404)
        assert "no module serves this path" in body["detail"]


def test_a_method_a_route_does_not_take_is_405_with_allow(world):
    r = requests.put(world["gw"] + "/v1/memories", json={}, headers=bearer(world["tok"]), timeout=10)
    problem(r, 405)
    assert "GET" in r.headers["Allow"] and "POST" in r.headers["Allow"]


def test_password_changes_are_throttled_after_repeated_wrong_current_passwords(keel_factory):
    keel = keel_factory(env={"KEEL_AUTH_LOGIN_MAX_FAILURES": "5"}).start()
    gw = keel.url("gateway")
    r = requests.post(gw + "/v1/auth/register",
                      json={"email": f"p{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery"},
                      timeout=30)
    tok = r.json()["access_token"]
    url = gw + "/v1/auth/password"
    statuses = []
    for _ in range(8):
        r = requests.post(url, json={"current_password": "not the password", "new_password": "new password 1"},
                          headers=bearer(tok), timeout=30)
        statuses.append(r.status_code)
        if r.status_code == 429:
            break
    # Five failures are allowed here; then the attempts are refused before any hash is checked.
    assert statuses[:5] == [422] * 5 and statuses[-1] == 429, statuses
    body = problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1 and "too many" in body["detail"]
    # The right current password is refused too while the throttle holds: guessing cannot go on.
    r = requests.post(url, json={"current_password": "correct horse battery", "new_password": "new password 1"},
                      headers=bearer(tok), timeout=30)
    problem(r, 429)


def cursor(key):
    """A cursor in this server's own format ("k1:" and the last key, base64url) around `key`."""
    return base64.urlsafe_b64encode(b"k1:" + key.encode()).decode().rstrip("=")


def test_a_cursor_in_the_servers_format_around_a_key_no_list_issued_is_400(world):
    # Past the format check, each list checks the key itself: a key that is not an id is no cursor of its.
    for path, who in LISTS:
        url = world["gw"] + path.format(memory=world["memory"])
        for key in ("not-an-id", "", "1; DROP TABLE users", "00000000-0000-0000-0000-00000000000g"):
            body = problem(requests.get(url, params={"cursor": cursor(key)}, headers=bearer(world[who]),
                                        timeout=10), 400)
            assert body["detail"] == "the cursor is not one this server issued", (path, key, body)


def test_a_body_that_is_not_a_json_object_is_400(world):
    gw, tok = world["gw"], world["tok"]
    for data in (b"", b"[]", b'"a string"', b"42", b"null", b"true"):
        for method, path in (("POST", "/v1/memories"), ("PATCH", f"/v1/memories/{world['memory']}"),
                             ("POST", "/v1/memories/search"), ("PATCH", "/v1/auth/me")):
            r = requests.request(method, gw + path, data=data,
                                 headers={**bearer(tok), "Content-Type": "application/json"}, timeout=10)
            body = problem(r, 400)
            expected = "the request body is empty" if not data else "the request body must be a JSON object"
            assert body["detail"].startswith(expected), (method, path, data, body)
    # Nothing was changed by any of them.
    assert requests.get(f"{gw}/v1/memories/{world['memory']}", headers=bearer(tok), timeout=10).json()["version"] == 1


def raw_get(url, target, headers):
    """GET `target` exactly as written (no client re-encoding of the query): (status, headers, body)."""
    host, port = url.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def test_a_query_string_that_does_not_percent_decode_is_400(world):
    for target in ("/v1/memories?limit=%zz", "/v1/memories?limit=5%", "/v1/memories?%zz=1&limit=5",
                   "/v1/memories?tag=%G0", "/v1/auth/sessions?cursor=%e"):
        status, headers, data = raw_get(world["gw"], target, bearer(world["tok"]))
        assert status == 400, (target, status, data)
        assert headers["Content-Type"].startswith("application/problem+json")
        body = json.loads(data)
        assert body["status"] == 400 and body["detail"] == "malformed query string", (target, body)
    # Well-formed escapes are fine.
    status, _, data = raw_get(world["gw"], "/v1/memories?limit=%35", bearer(world["tok"]))
    assert status == 200, data


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_tokens_with_a_critical_header_or_an_unknown_key_are_401(world):
    real = world["tok"]
    header, claims, signature = real.split(".")
    kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    tokens = {
        "unsupported token header": b64(json.dumps({"alg": "EdDSA", "kid": kid, "crit": ["exp"]}).encode()),
        "access token signed by an unknown key": b64(json.dumps({"alg": "EdDSA", "kid": "no-such-key"}).encode()),
    }
    for detail, forged_header in tokens.items():
        token = forged_header + "." + claims + "." + signature
        for url in (world["gw"], world["keel"].url("memory")):
            r = requests.get(url + "/v1/memories", headers=bearer(token), timeout=10)
            body = problem(r, 401)
            assert body["detail"] == detail and r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


@pytest.fixture
def outside_key(keel_factory):
    """A keel running memory and billing (no auth: no process of it unseals signing keys) whose database also
    publishes a verification key this test holds the private half of, as a key retired by another deployment
    sharing the database would be. Tokens signed with it pass the signature check, so the claim checks that
    follow it can be met one at a time. Returns (keel, sign(claims) -> token)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = keel_factory(services="memory,billing").start()
    private = Ed25519PrivateKey.generate()
    kid = "outside-" + uuid.uuid4().hex
    x = b64(private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    jwk = {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x}
    k.query("INSERT INTO signing_keys (id, alg, public_jwk, private_key, status, retired_at, expires_at, created_at, "
            "updated_at) VALUES ($1, 'EdDSA', $2, 'sealed elsewhere', 'retired', $3, $4, $3, $3)",
            kid, json.dumps(jwk), "2020-01-01T00:00:00.000Z", "2999-01-01T00:00:00.000Z")
    k.stop()
    k.start()  # the verifiers load the published keys at start

    def sign(claims):
        return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid})
    return k, sign


def test_each_claim_check_refuses_a_well_signed_token_with_401(outside_key):
    k, sign = outside_key
    now = int(time.time())
    good = {"iss": "keel", "aud": "keel", "sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()), "exp": now + 300,
            "iat": now, "nbf": now, "roles": ["user"]}
    memories = k.url("memory") + "/v1/memories"
    # The well-signed token with every claim right is taken (the user has no memories), so each refusal below is
    # its one changed claim's.
    r = requests.get(memories, headers=bearer(sign(good)), timeout=10)
    assert r.status_code == 200 and r.json()["items"] == [], r.text
    cases = [
        ("access token issuer is not accepted", {"iss": "someone-else"}),
        ("access token issuer is not accepted", {"iss": None}),
        ("access token audience is not accepted", {"aud": "another-api"}),
        ("access token audience is not accepted", {"aud": ["another-api", "and-another"]}),
        ("access token audience is not accepted", {"aud": None}),
        ("access token has no expiry", {"exp": None}),
        ("access token has no expiry", {"exp": "tomorrow"}),
        ("access token is not yet valid", {"nbf": now + 3600}),
        ("access token lacks sub or sid", {"sub": None}),
        ("access token lacks sub or sid", {"sid": ""}),
        ("access token has expired", {"exp": now - 3600}),
    ]
    for detail, change in cases:
        claims = {key: value for key, value in {**good, **change}.items() if value is not None}
        for url in (memories, k.url("billing") + "/v1/billing/account"):
            r = requests.get(url, headers=bearer(sign(claims)), timeout=10)
            body = problem(r, 401)
            assert body["detail"] == detail, (change, url, body)
            assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # An audience list that holds keel's is accepted.
    r = requests.get(memories, headers=bearer(sign({**good, "aud": ["another-api", "keel"]})), timeout=10)
    assert r.status_code == 200, r.text


def test_a_valid_token_of_a_user_without_a_billing_account_is_404_on_billing(outside_key):
    k, sign = outside_key
    now = int(time.time())
    token = sign({"iss": "keel", "aud": "keel", "sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()),
                  "exp": now + 300, "iat": now, "nbf": now, "roles": ["user"]})
    body = problem(requests.get(k.url("billing") + "/v1/billing/account", headers=bearer(token), timeout=10), 404)
    assert body["detail"] == "this user has no billing account"
    # Its ledger and usage are empty lists, not errors.
    for path in ("/v1/billing/ledger", "/v1/billing/usage"):
        assert requests.get(k.url("billing") + path, headers=bearer(token), timeout=10).json()["items"] == []


@contextlib.contextmanager
def tables_locked(k, tables):
    """Another client of keel's database holds a lock on `tables` until the block ends: on PostgreSQL an
    ACCESS EXCLUSIVE lock on those tables (keel's statements on them wait, then time out); on SQLite the
    database's one write lock (`tables` aside: keel's writes wait, then give up)."""
    if not k.database:
        import sqlite3
        taken, release = threading.Event(), threading.Event()

        def hold():
            con = sqlite3.connect(pathlib.Path(k.data_dir) / "keel.db", isolation_level=None)
            try:
                con.execute("BEGIN IMMEDIATE")
                taken.set()
                release.wait(60)
                con.execute("ROLLBACK")
            finally:
                con.close()
        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        assert taken.wait(10)
        try:
            yield
        finally:
            release.set()
            holder.join(10)
        return
    m = re.match(r"postgresql://([^@]+)@([^:/]+):(\d+)/(\w+)", k.database)
    user, host, port, db = m.groups()
    app = "keel-test-lock-" + uuid.uuid4().hex[:8]
    holder = subprocess.Popen(["psql", "-h", host, "-p", port, "-U", user, "-d", db, "-qc",
                               f"BEGIN; LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)"],
                              env=dict(os.environ, PGAPPNAME=app), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: k.query("SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                                          "WHERE a.application_name = $1 AND l.mode = 'AccessExclusiveLock' "
                                          "AND l.granted", app)[0][0] == str(len(tables)), timeout=10)
        yield
    finally:
        k.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", app)
        holder.wait(10)


def test_a_database_that_does_not_answer_in_time_is_503_with_retry_after(backend, keel_factory):
    # PostgreSQL statements give up after 300 ms here; SQLite's writer waits its 5 s for the lock. The user rate
    # limit is off and the plan has a quota, so a gateway request's last check is the quota's.
    k = keel_factory(env={"KEEL_DATABASE_STATEMENT_TIMEOUT_MS": "300", "KEEL_GATEWAY_USER_RATE": "0",
                          "KEEL_BILLING_FREE_REQUESTS_PER_MINUTE": "1000"}).start()
    r = requests.post(k.url("auth") + "/v1/auth/register",
                      json={"email": f"d{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery"},
                      timeout=30)
    tok = r.json()["access_token"]
    memories = k.url("memory") + "/v1/memories"
    gw = k.url("gateway")

    def busy(r, detail):
        body = problem(r, 503)
        assert body["detail"] == detail, body
        assert int(r.headers["Retry-After"]) >= 1

    with tables_locked(k, ["memories", "billing_accounts"]):
        busy(requests.post(memories, json={"content": "waits"}, headers=bearer(tok), timeout=30),
             "the database is busy")
        if backend == "postgres":
            # The gateway has never seen this user: it must read the plan and balance first, and cannot.
            busy(requests.get(gw + "/v1/memories", headers=bearer(tok), timeout=30),
                 "the gateway cannot read this account's plan and balance")
    if backend == "postgres":
        # The fleet's shared request budgets cannot be leased: an anonymous request (the per-address limit)
        # and this user's (the plan's quota) are refused once the wait for a lease is over.
        with tables_locked(k, ["gateway_budgets"]):
            busy(requests.get(gw + "/.well-known/jwks.json", timeout=30),
                 "the fleet's request limits could not be checked in time")
            busy(requests.get(gw + "/v1/memories", headers=bearer(tok), timeout=30),
                 "the fleet's request limits could not be checked in time")
    # With the lock gone, the same requests go through, and the refused post stored nothing.
    assert wait_until(lambda: requests.get(gw + "/v1/memories", headers=bearer(tok), timeout=10).status_code == 200)
    assert requests.get(memories, headers=bearer(tok), timeout=10).json()["items"] == []
    assert requests.post(memories, json={"content": "goes"}, headers=bearer(tok), timeout=30).status_code == 201
