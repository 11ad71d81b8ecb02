"""auth through its own port and through the gateway, on both backends: the contract's routes, token
checks by a JWT library that is not ours, forged tokens, sessions, throttling and events."""
import concurrent.futures
import json
import signal
import time
import uuid

import jwt
import pytest
import requests

from conftest import Keel, wait_until

JSON = {"Content-Type": "application/json"}


def email():
    return f"u{uuid.uuid4().hex[:10]}@example.com"


def register(k, addr=None, password="correct horse battery", port="auth", **extra):
    body = {"email": addr or email(), "password": password, **extra}
    r = requests.post(k.url(port) + "/v1/auth/register", json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def login(k, addr, password, port="auth"):
    return requests.post(k.url(port) + "/v1/auth/login", json={"email": addr, "password": password}, timeout=30)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def assert_problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def refused_within(k, token, seconds=2.0, ports=("auth",)):
    """Polls /v1/auth/me with `token` on each port until it is 401; asserts it was within `seconds` (the
    contract's 1 s for a revocation, with room for a loaded machine). Returns the last answer."""
    start = time.time()
    for port in ports:
        while True:
            r = requests.get(k.url(port) + "/v1/auth/me", headers=bearer(token), timeout=10)
            if r.status_code == 401 or time.time() - start > seconds:
                break
            time.sleep(0.02)
        assert_problem(r, 401)
    return r


@pytest.fixture
def keel(keel_factory):
    # A short reuse window and a low failure limit keep the tests fast.
    return keel_factory(env={"KEEL_AUTH_REFRESH_REUSE_WINDOW_SECONDS": "1", "KEEL_AUTH_LOGIN_MAX_FAILURES": "5"}).start()


def test_register_login_and_me_through_the_gateway_and_auth(keel):
    addr = email()
    reg = register(keel, addr, port="gateway", display_name="Ada")
    assert reg["token_type"] == "Bearer" and reg["expires_in"] > 0
    assert reg["access_token"] and reg["refresh_token"] and reg["session_id"]
    user = reg["user"]
    assert user["email"] == addr and user["display_name"] == "Ada" and user["roles"] == ["user"]
    assert user["metadata"] == {} and user["created_at"].endswith("Z") and user["id"]
    for port in ("gateway", "auth"):
        r = login(keel, addr.upper(), "correct horse battery", port=port)
        assert r.status_code == 200, r.text
        me = requests.get(keel.url(port) + "/v1/auth/me", headers=bearer(r.json()["access_token"]), timeout=10)
        assert me.status_code == 200 and me.json()["id"] == user["id"]


def test_registration_creates_the_billing_account_and_events_in_one_go(keel):
    reg = register(keel)
    uid = reg["user"]["id"]
    accounts = keel.query("SELECT plan, balance FROM billing_accounts WHERE user_id = $1", uid)
    assert accounts == [("free", "0")]
    types = {row[0] for row in keel.query("SELECT type FROM observability_events WHERE subject = $1", uid)}
    assert {"keel.auth.user.registered", "keel.billing.account.created"} <= types


def test_registration_validation(keel):
    url = keel.url("auth") + "/v1/auth/register"
    body = assert_problem(requests.post(url, json={"email": "not-an-email", "password": "long enough"}, timeout=10), 422)
    assert body["errors"][0]["field"] == "email"
    body = assert_problem(requests.post(url, json={"email": email(), "password": "short"}, timeout=10), 422)
    assert body["errors"][0]["field"] == "password"
    assert_problem(requests.post(url, json={"email": email(), "password": "x" * 1025}, timeout=10), 422)
    assert_problem(requests.post(url, json={"password": "long enough"}, timeout=10), 422)
    # Length counts code points: eight two-byte characters are enough, four are not.
    assert requests.post(url, json={"email": email(), "password": "é" * 8}, timeout=30).status_code == 201
    assert_problem(requests.post(url, json={"email": email(), "password": "é" * 4}, timeout=10), 422)
    assert_problem(requests.post(url, data="{not json", headers=JSON, timeout=10), 400)
    assert_problem(requests.post(url, data="email=a", headers={"Content-Type": "text/plain"}, timeout=10), 415)


def test_duplicate_email_is_409_case_insensitively(keel):
    addr = email()
    register(keel, addr)
    r = requests.post(keel.url("auth") + "/v1/auth/register", json={"email": addr.upper(), "password": "another one!"},
                      timeout=30)
    assert_problem(r, 409)


def test_twenty_concurrent_registrations_of_one_email_make_one_account(keel):
    addr = email()

    def attempt(_):
        return requests.post(keel.url("auth") + "/v1/auth/register",
                             json={"email": addr, "password": "same password"}, timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(attempt, range(20)))
    assert codes.count(201) == 1, codes
    assert all(c in (201, 409) for c in codes), codes
    assert keel.query("SELECT COUNT(*) FROM users WHERE email_lower = $1", addr.lower()) == [("1",)]


def test_wrong_password_and_unknown_email_look_alike(keel):
    addr = email()
    register(keel, addr)
    a = login(keel, addr, "wrong password")
    b = login(keel, email(), "wrong password")
    assert_problem(a, 401)
    assert_problem(b, 401)
    assert a.json()["detail"] == b.json()["detail"] == "invalid credentials"


def test_repeated_failures_are_throttled_with_retry_after(keel):
    addr = email()
    register(keel, addr)
    codes = [login(keel, addr, f"wrong {i}").status_code for i in range(5)]
    assert codes == [401] * 5
    r = login(keel, addr, "correct horse battery")
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    types = [row[0] for row in keel.query("SELECT type FROM observability_events WHERE type = 'keel.auth.login.failed'")]
    assert len(types) >= 5


def test_parallel_guesses_cannot_pass_the_limit(keel):
    addr = email()
    register(keel, addr)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: login(keel, addr, f"guess {i}").status_code, range(16)))
    assert codes.count(401) <= 5, codes
    assert codes.count(429) >= 11, codes


def test_refresh_rotates_and_tolerates_a_racing_tab(keel):
    reg = register(keel)
    url = keel.url("auth") + "/v1/auth/refresh"
    first = requests.post(url, json={"refresh_token": reg["refresh_token"]}, timeout=10)
    assert first.status_code == 200, first.text
    successor = first.json()["refresh_token"]
    assert successor != reg["refresh_token"] and first.json()["session_id"] == reg["session_id"]
    # The same old token again, inside the window: the same successor.
    again = requests.post(url, json={"refresh_token": reg["refresh_token"]}, timeout=10)
    assert again.status_code == 200 and again.json()["refresh_token"] == successor
    # The successor rotates on.
    nxt = requests.post(url, json={"refresh_token": successor}, timeout=10)
    assert nxt.status_code == 200


def test_refresh_token_reuse_after_the_window_revokes_the_session(keel):
    reg = register(keel)
    url = keel.url("auth") + "/v1/auth/refresh"
    successor = requests.post(url, json={"refresh_token": reg["refresh_token"]}, timeout=10).json()["refresh_token"]
    time.sleep(1.5)  # past the reuse window: time itself is the condition
    assert_problem(requests.post(url, json={"refresh_token": reg["refresh_token"]}, timeout=10), 401)
    # The thief's use ended the session: the newest token and the access token stop working too.
    assert_problem(requests.post(url, json={"refresh_token": successor}, timeout=10), 401)
    r = refused_within(keel, reg["access_token"])
    assert "invalid_token" in r.headers["WWW-Authenticate"]
    reasons = keel.query("SELECT revoked_reason FROM sessions WHERE id = $1", reg["session_id"])
    assert reasons == [("refresh_token_reuse",)]


def test_unknown_refresh_token_is_401(keel):
    assert_problem(requests.post(keel.url("auth") + "/v1/auth/refresh", json={"refresh_token": "nope"}, timeout=10), 401)


def test_logout_revokes_within_a_second_everywhere(keel):
    reg = register(keel)
    token = reg["access_token"]
    other = login(keel, reg["user"]["email"], "correct horse battery").json()
    r = requests.post(keel.url("gateway") + "/v1/auth/logout", headers=bearer(token), timeout=10)
    assert r.status_code == 204
    refused_within(keel, token, ports=("auth", "gateway"))
    # Only that session: the other still works.
    assert requests.get(keel.url("auth") + "/v1/auth/me", headers=bearer(other["access_token"]), timeout=10).ok
    assert_problem(requests.post(keel.url("auth") + "/v1/auth/refresh", json={"refresh_token": reg["refresh_token"]},
                                 timeout=10), 401)


def test_logout_all_and_session_listing(keel):
    reg = register(keel)
    addr = reg["user"]["email"]
    second = login(keel, addr, "correct horse battery").json()
    r = requests.get(keel.url("auth") + "/v1/auth/sessions", headers=bearer(reg["access_token"]), timeout=10)
    items = r.json()["items"]
    assert {s["id"] for s in items} == {reg["session_id"], second["session_id"]}
    assert [s["current"] for s in items if s["id"] == reg["session_id"]] == [True]
    assert set(items[0]) >= {"id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"}
    assert requests.post(keel.url("auth") + "/v1/auth/logout-all", headers=bearer(second["access_token"]),
                         timeout=10).status_code == 204
    for t in (reg["access_token"], second["access_token"]):
        refused_within(keel, t)


def test_deleting_sessions_and_other_users_sessions_are_404(keel):
    a = register(keel)
    b = register(keel)
    a2 = login(keel, a["user"]["email"], "correct horse battery").json()
    url = keel.url("auth") + "/v1/auth/sessions/"
    assert_problem(requests.delete(url + b["session_id"], headers=bearer(a["access_token"]), timeout=10), 404)
    assert_problem(requests.delete(url + "not-a-uuid", headers=bearer(a["access_token"]), timeout=10), 404)
    assert requests.delete(url + a2["session_id"], headers=bearer(a["access_token"]), timeout=10).status_code == 204
    refused_within(keel, a2["access_token"])
    assert requests.get(keel.url("auth") + "/v1/auth/me", headers=bearer(b["access_token"]), timeout=10).ok


def test_patch_me(keel):
    reg = register(keel)
    url = keel.url("auth") + "/v1/auth/me"
    r = requests.patch(url, json={"display_name": "Grace", "metadata": {"theme": "dark"}},
                       headers=bearer(reg["access_token"]), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "Grace" and r.json()["metadata"] == {"theme": "dark"}
    assert requests.get(url, headers=bearer(reg["access_token"]), timeout=10).json()["metadata"] == {"theme": "dark"}
    assert_problem(requests.patch(url, json={"metadata": [1]}, headers=bearer(reg["access_token"]), timeout=10), 422)
    assert_problem(requests.patch(url, json={"email": "x@y.zz"}, headers=bearer(reg["access_token"]), timeout=10), 422)
    assert_problem(requests.patch(url, json={"display_name": "x"}, timeout=10), 401)


def test_patch_me_refuses_metadata_past_16_kib(keel):
    reg = register(keel)
    url = keel.url("auth") + "/v1/auth/me"
    body = assert_problem(requests.patch(url, json={"metadata": {"notes": "x" * 16400}},
                                         headers=bearer(reg["access_token"]), timeout=10), 422)
    assert body["errors"] == [{"field": "metadata", "message": "must be at most 16 KiB of JSON"}]
    # At the bound it is stored.
    r = requests.patch(url, json={"metadata": {"notes": "x" * 16000}}, headers=bearer(reg["access_token"]),
                       timeout=10)
    assert r.status_code == 200 and len(r.json()["metadata"]["notes"]) == 16000, r.text


def test_a_new_password_outside_the_length_bounds_is_422_and_changes_nothing(keel):
    reg = register(keel)
    url = keel.url("auth") + "/v1/auth/password"
    for new in ("short", "", "x" * 1025):
        r = requests.post(url, json={"current_password": "correct horse battery", "new_password": new},
                          headers=bearer(reg["access_token"]), timeout=30)
        body = assert_problem(r, 422)
        assert body["errors"] == [{"field": "new_password", "message": "must be 8 to 1024 characters"}], body
    assert login(keel, reg["user"]["email"], "correct horse battery").status_code == 200


def delete_user(k, user_id):
    """Deletes a user's row the way the schema cascades it (sessions, billing account, memories): no API does
    this, so it is done in the database, as an operator would."""
    if k.database:
        k.query("DELETE FROM users WHERE id = $1", user_id)
        return
    import pathlib
    import sqlite3
    con = sqlite3.connect(pathlib.Path(k.data_dir) / "keel.db")
    try:
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("DELETE FROM users WHERE id = ?", (user_id,))
        con.commit()
    finally:
        con.close()


def test_a_token_that_outlives_its_user_is_refused_where_the_user_is_needed(keel):
    reg = register(keel)
    tok = reg["access_token"]
    delete_user(keel, reg["user"]["id"])
    auth = keel.url("auth")
    for method, path, body in (("GET", "/v1/auth/me", None), ("PATCH", "/v1/auth/me", {"display_name": "Gone"}),
                               ("POST", "/v1/auth/password", {"current_password": "correct horse battery",
                                                              "new_password": "new password 1"})):
        r = requests.request(method, auth + path, json=body, headers=bearer(tok), timeout=30)
        assert assert_problem(r, 401)["detail"] == "the user no longer exists", (method, path)
        assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # A memory cannot be stored for a user who is gone: the reference to the user fails, 409.
    r = requests.post(keel.url("memory") + "/v1/memories", json={"content": "orphan"}, headers=bearer(tok),
                      timeout=10)
    assert assert_problem(r, 409)["detail"] == "a referenced resource does not exist"
    assert keel.query("SELECT COUNT(*) FROM memories WHERE user_id = $1", reg["user"]["id"]) == [("0",)]
    # Nor does a billing account remain.
    r = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(tok), timeout=10)
    assert assert_problem(r, 404)["detail"] == "this user has no billing account"


def test_password_hashing_past_its_queue_is_503_with_retry_after(keel_factory):
    # One hashing thread, one waiting hash, each hash slow (256 MiB): of six registrations at once, the ones
    # that find the queue full are refused at once instead of piling up.
    k = keel_factory(env={"KEEL_AUTH_HASH_THREADS": "1", "KEEL_AUTH_HASH_QUEUE": "1",
                          "KEEL_AUTH_ARGON2_MEMORY_KIB": "262144"}).start()
    addrs = [email() for _ in range(6)]

    def post(addr):
        return requests.post(k.url("auth") + "/v1/auth/register",
                             json={"email": addr, "password": "correct horse battery"}, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(len(addrs)) as pool:
        answers = list(pool.map(post, addrs))
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) == {201, 503}, statuses
    for addr, r in zip(addrs, answers):
        if r.status_code == 503:
            assert assert_problem(r, 503)["detail"] == "server busy, try again"
            assert int(r.headers["Retry-After"]) >= 1
            # Nothing was created: the same registration goes through once the queue has room.
            assert post(addr).status_code == 201


def test_password_change_revokes_the_other_sessions(keel):
    reg = register(keel)
    addr = reg["user"]["email"]
    other = login(keel, addr, "correct horse battery").json()
    url = keel.url("auth") + "/v1/auth/password"
    r = requests.post(url, json={"current_password": "wrong one!", "new_password": "new password 1"},
                      headers=bearer(reg["access_token"]), timeout=30)
    assert_problem(r, 422)
    r = requests.post(url, json={"current_password": "correct horse battery", "new_password": "new password 1"},
                      headers=bearer(reg["access_token"]), timeout=30)
    assert r.status_code == 204, r.text
    refused_within(keel, other["access_token"])
    assert requests.get(keel.url("auth") + "/v1/auth/me", headers=bearer(reg["access_token"]), timeout=10).ok
    assert login(keel, addr, "correct horse battery").status_code == 401
    assert login(keel, addr, "new password 1").status_code == 200
    types = {row[0] for row in keel.query("SELECT type FROM observability_events WHERE subject = $1", reg["user"]["id"])}
    assert {"keel.auth.password.changed", "keel.auth.session.revoked", "keel.auth.login.succeeded"} <= types


def test_admin_lists_users_and_plain_users_cannot(keel):
    plain = register(keel)
    assert_problem(requests.get(keel.url("auth") + "/v1/auth/users", headers=bearer(plain["access_token"]), timeout=10), 403)
    admin_email = email()
    out = keel.cli("user", "create", "--email", admin_email, "--password-stdin", "--admin", input="admin password\n")
    created = json.loads(out.stdout)
    assert created["roles"] == ["user", "admin"]
    token = login(keel, admin_email, "admin password").json()["access_token"]
    # The command line creates a user as registration does: with the billing account and the events.
    account = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(token), timeout=10)
    assert account.status_code == 200 and account.json()["user_id"] == created["id"]
    types = {row[0] for row in keel.query("SELECT type FROM observability_events WHERE subject = $1", created["id"])}
    assert {"keel.auth.user.registered", "keel.billing.account.created"} <= types
    r = requests.get(keel.url("auth") + "/v1/auth/users?limit=1", headers=bearer(token), timeout=10)
    assert r.status_code == 200
    assert len(r.json()["items"]) == 1 and r.json()["next_cursor"]
    r2 = requests.get(keel.url("auth") + "/v1/auth/users", params={"limit": 1, "cursor": r.json()["next_cursor"]},
                      headers=bearer(token), timeout=10)
    assert r2.status_code == 200, (r2.text, r2.url)
    assert r2.json()["items"][0]["id"] != r.json()["items"][0]["id"]
    assert_problem(requests.get(keel.url("auth") + "/v1/auth/users?limit=0", headers=bearer(token), timeout=10), 422)
    dup = keel.cli("user", "create", "--email", admin_email, "--password-stdin", input="admin password\n", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr


def jwks_client_key(k, token):
    keys = requests.get(k.url("gateway") + "/.well-known/jwks.json", timeout=10).json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    return jwt.PyJWK(next(key for key in keys if key["kid"] == kid))


def test_pyjwt_verifies_our_tokens_through_the_jwks(keel):
    reg = register(keel)
    token = reg["access_token"]
    key = jwks_client_key(keel, token)
    assert key.key_type == "OKP"
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience="keel", issuer="keel")
    assert claims["sub"] == reg["user"]["id"] and claims["sid"] == reg["session_id"]
    assert claims["roles"] == ["user"] and claims["exp"] > time.time() and claims["jti"]
    conf = requests.get(keel.url("gateway") + "/.well-known/openid-configuration", timeout=10,
                        headers={"Host": "evil.example.net"}).json()
    # Without public_url: the gateway on this machine, whatever Host the request named.
    assert conf["issuer"] == "keel" and conf["jwks_uri"] == f"http://localhost:{keel.port_base}/.well-known/jwks.json"
    assert "EdDSA" in conf["id_token_signing_alg_values_supported"]


def test_issuer_metadata_comes_from_public_url_never_from_host(keel_factory):
    k = keel_factory(env={"KEEL_PUBLIC_URL": "https://id.example.com/keel/"}).start()
    conf = requests.get(k.url("auth") + "/.well-known/openid-configuration", timeout=10,
                        headers={"Host": "evil.example.net"}).json()
    assert conf["jwks_uri"] == "https://id.example.com/keel/.well-known/jwks.json"
    assert conf["token_endpoint"] == "https://id.example.com/keel/v1/auth/login"
    assert "evil" not in json.dumps(conf)
    bad = keel_factory(env={"KEEL_PUBLIC_URL": "https://user@x.example.com?q"})
    p = bad.cli("serve", check=False)
    assert p.returncode == 2 and "public_url" in p.stderr


def test_es256_by_configuration(keel_factory):
    k = keel_factory(env={"KEEL_AUTH_SIGNING_ALG": "ES256"}).start()
    reg = register(k)
    key = jwks_client_key(k, reg["access_token"])
    assert key.key_type == "EC"
    claims = jwt.decode(reg["access_token"], key.key, algorithms=["ES256"], audience="keel", issuer="keel")
    assert claims["sub"] == reg["user"]["id"]
    assert requests.get(k.url("auth") + "/v1/auth/me", headers=bearer(reg["access_token"]), timeout=10).ok


def b64(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_forged_tokens_are_refused(keel):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    reg = register(keel)
    token = reg["access_token"]
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    jwk = next(k for k in requests.get(keel.url("auth") + "/.well-known/jwks.json", timeout=10).json()["keys"]
               if k["kid"] == header["kid"])
    public_raw = b64(json.dumps(jwk).encode()).encode()

    forged = {}
    forged["alg none"] = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": header["kid"]}).encode()) + "." + \
        b64(json.dumps(claims).encode()) + "."
    forged["HS256 keyed with the public key"] = jwt.encode(claims, public_raw, algorithm="HS256",
                                                         headers={"kid": header["kid"]})
    other = Ed25519PrivateKey.generate()
    forged["another key under the same kid"] = jwt.encode(
        claims, other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()), algorithm="EdDSA", headers={"kid": header["kid"]})
    h, p, s = token.split(".")
    tampered = dict(claims, roles=["user", "admin"])
    forged["tampered payload"] = h + "." + b64(json.dumps(tampered).encode()) + "." + s
    forged["garbage"] = "abc.def.ghi"
    forged["wrong audience"] = None  # needs our key; covered by claims checks in unit tests

    for name, bad in forged.items():
        if bad is None:
            continue
        for port in ("auth", "gateway"):
            r = requests.get(keel.url(port) + "/v1/auth/me", headers=bearer(bad), timeout=10)
            assert r.status_code == 401, (name, port, r.text)
            assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # Missing and malformed Authorization headers.
    assert_problem(requests.get(keel.url("auth") + "/v1/auth/me", timeout=10), 401)
    assert_problem(requests.get(keel.url("auth") + "/v1/auth/me", headers={"Authorization": "Basic abc"}, timeout=10), 401)


def test_expired_and_revoked_service_tokens(keel):
    short = keel.cli("token", "create", "--service", "invoicer", "--ttl", "1").stdout.strip()
    claims = jwt.decode(short, options={"verify_signature": False})
    assert claims["roles"] == ["service"] and claims["svc"] == "invoicer" and claims["sub"] == "service:invoicer"
    key = jwks_client_key(keel, short)
    jwt.decode(short, key.key, algorithms=["EdDSA"], audience="keel", issuer="keel", options={"verify_exp": False})
    wait_past(claims["exp"])  # time itself is the condition
    # A service token on a user route is 403 while valid, 401 once expired.
    r = requests.get(keel.url("auth") + "/v1/auth/me", headers=bearer(short), timeout=10)
    assert_problem(r, 401)
    assert "expired" in r.json()["detail"]

    long = keel.cli("token", "create", "--service", "indexer").stdout.strip()
    assert_problem(requests.get(keel.url("auth") + "/v1/auth/me", headers=bearer(long), timeout=10), 403)
    sid = jwt.decode(long, options={"verify_signature": False})["sid"]
    assert keel.cli("token", "revoke", "--id", sid).returncode == 0
    refused_within(keel, long)


def wait_past(unix_seconds):
    """Returns once this machine's clock has passed `unix_seconds` (a token's exp) by a little."""
    while time.time() < unix_seconds + 0.2:
        time.sleep(0.05)


def test_a_token_in_the_verifiers_cache_is_refused_once_it_expires(keel_factory):
    """A token checked once is kept verified in memory; past its exp it is still 401, through the gateway and on
    the module's own port. One I/O thread: the requests after exp land where the token was cached."""
    k = keel_factory(extra_args=["--io-threads", "1"]).start()
    short = k.cli("token", "create", "--service", "clock", "--ttl", "3").stdout.strip()
    exp = jwt.decode(short, options={"verify_signature": False})["exp"]
    urls = [k.url("gateway") + "/v1/registry/modules", k.url("registry") + "/v1/registry/modules"]
    for url in urls:
        for _ in range(3):
            assert requests.get(url, headers=bearer(short), timeout=10).status_code == 200, url
    assert time.time() < exp  # the uses above were before it expired
    wait_past(exp)
    for url in urls:
        for _ in range(3):
            r = requests.get(url, headers=bearer(short), timeout=10)
            assert_problem(r, 401)
            assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"' and "expired" in r.json()["detail"]


def test_a_users_access_token_stops_working_at_its_expiry(keel_factory, backend):
    """The shortest access-token lifetime auth allows (30 s): used while valid, refused once expired, through
    the gateway and on auth's own port. Expiry is checked in memory, whatever the database: run once."""
    if backend != "sqlite":
        pytest.skip("token expiry does not touch the database; the SQLite run covers it")
    k = keel_factory(env={"KEEL_AUTH_ACCESS_TTL_SECONDS": "30"}, extra_args=["--io-threads", "1"]).start()
    reg = register(k, port="gateway")
    token = reg["access_token"]
    assert reg["expires_in"] == 30
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    for port in ("gateway", "auth"):
        for _ in range(3):
            assert requests.get(k.url(port) + "/v1/auth/me", headers=bearer(token), timeout=10).status_code == 200
    wait_past(exp)
    for port in ("gateway", "auth"):
        for _ in range(3):
            r = requests.get(k.url(port) + "/v1/auth/me", headers=bearer(token), timeout=10)
            assert_problem(r, 401)
            assert "expired" in r.json()["detail"]
    # The session outlives its access token: a refresh gets a new one.
    r = requests.post(k.url("gateway") + "/v1/auth/refresh", json={"refresh_token": reg["refresh_token"]}, timeout=10)
    assert r.status_code == 200
    assert requests.get(k.url("gateway") + "/v1/auth/me", headers=bearer(r.json()["access_token"]), timeout=10).ok


def test_a_logout_on_one_process_is_refused_by_another_within_a_second(keel_factory, tmp_path):
    """Two processes on one database (and one data directory: one master key): a session logged out through
    one is refused by the other once it polls the revocations (every 250 ms), within the contract's second."""
    data = str(tmp_path / "shared")
    (tmp_path / "shared").mkdir()
    a = keel_factory(data_dir=data, services="auth").start()
    b = keel_factory(data_dir=data, services="gateway,auth").start()
    reg = register(a)
    token = reg["access_token"]
    urls = [b.url("gateway") + "/v1/auth/me", b.url("auth") + "/v1/auth/me"]
    for url in urls:
        for _ in range(3):
            assert requests.get(url, headers=bearer(token), timeout=10).status_code == 200, url
    assert requests.post(a.url("auth") + "/v1/auth/logout", headers=bearer(token), timeout=10).status_code == 204
    logged_out = time.time()
    assert_problem(requests.get(a.url("auth") + "/v1/auth/me", headers=bearer(token), timeout=10), 401)
    pending = set(urls)

    def all_refuse():
        for url in list(pending):
            if requests.get(url, headers=bearer(token), timeout=10).status_code == 401:
                pending.discard(url)
        return not pending

    deadline = logged_out + 3
    while not all_refuse() and time.time() < deadline:
        time.sleep(0.05)
    took = time.time() - logged_out
    assert not pending, f"{pending} still accept the token {took:.2f} s after the logout"
    assert took < 1.0, took  # the contract: effective within 1 s of a logout
    for url in urls:  # and it stays refused
        assert_problem(requests.get(url, headers=bearer(token), timeout=10), 401)


def test_key_rotation_keeps_old_tokens_valid(keel):
    reg = register(keel)
    out = keel.cli("keys", "rotate").stdout
    assert "new signing key" in out
    # The JWKS serves both keys at once (the new key is published before it signs).
    deadline = time.time() + 10
    while time.time() < deadline:
        keys = requests.get(keel.url("auth") + "/.well-known/jwks.json", timeout=10).json()["keys"]
        if len(keys) == 2:
            break
        time.sleep(0.5)
    assert len(keys) == 2
    assert requests.get(keel.url("auth") + "/v1/auth/me", headers=bearer(reg["access_token"]), timeout=10).ok


def test_no_secret_reaches_logs_or_events(keel):
    password = "a very secret password"
    reg = register(keel, password=password)
    requests.post(keel.url("auth") + "/v1/auth/refresh", json={"refresh_token": reg["refresh_token"]}, timeout=10)
    login(keel, reg["user"]["email"], "wrong secret password")
    # The failed login's access-log line is written once it was answered.
    assert wait_until(lambda: '"path":"/v1/auth/login"' in keel.log() and '"status":401' in keel.log())
    log = keel.log()
    for secret in (password, "wrong secret password", reg["refresh_token"], reg["access_token"]):
        assert secret not in log
    events = " ".join(row[0] for row in keel.query("SELECT data FROM observability_events"))
    for secret in (password, reg["refresh_token"], reg["access_token"]):
        assert secret not in events


def test_users_survive_a_restart(keel_factory):
    k = keel_factory()
    k.start()
    addr = email()
    register(k, addr)
    assert k.stop(signal.SIGTERM) == 0
    k.start()
    assert login(k, addr, "correct horse battery").status_code == 200


def test_bad_auth_config_is_a_one_line_error(tmp_path):
    import subprocess
    from conftest import KEEL_BIN
    p = subprocess.run([KEEL_BIN, "serve", "--data-dir", str(tmp_path)], env={"KEEL_AUTH_SIGNING_ALG": "HS256"},
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "[auth] signing_alg" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr


def test_openapi_document_lists_the_auth_paths(keel):
    r = requests.get(keel.url("gateway") + "/openapi.json", timeout=10)
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/me", "/.well-known/jwks.json"):
        assert path in doc["paths"], path
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_hostile_inputs_are_4xx_and_store_nothing_broken(keel):
    reg = register(keel)
    h = bearer(reg["access_token"])
    # A cursor we did not issue (or one that decodes to a non-id) is 400, on both backends.
    import base64
    bad = base64.urlsafe_b64encode(b"k1:not-a-uuid").rstrip(b"=").decode()
    for cursor in (bad, "%%%", "zzzz"):
        r = requests.get(keel.url("auth") + "/v1/auth/sessions", params={"cursor": cursor}, headers=h, timeout=10)
        assert r.status_code == 400, (cursor, r.text)
    # NUL characters are refused, not truncated or turned into a 500.
    assert_problem(requests.patch(keel.url("auth") + "/v1/auth/me", json={"display_name": "a\u0000b"}, headers=h,
                                  timeout=10), 422)
    assert_problem(requests.patch(keel.url("auth") + "/v1/auth/me", json={"metadata": {"k": "a\u0000"}}, headers=h,
                                  timeout=10), 422)
    # A User-Agent that is not UTF-8 still lets you log in; the session list stays valid JSON.
    r = requests.post(keel.url("auth") + "/v1/auth/login", json={"email": reg["user"]["email"],
                      "password": "correct horse battery"}, headers={"User-Agent": b"bad \xff\xfe agent"}, timeout=30)
    assert r.status_code == 200, r.text
    sessions = requests.get(keel.url("auth") + "/v1/auth/sessions", headers=h, timeout=10).json()["items"]
    assert any(s["user_agent"] == "bad  agent" for s in sessions)
    # An absurdly long email at login is the same 401 as any unknown account.
    assert_problem(login(keel, "x" * 3000 + "@example.com", "whatever123"), 401)


def test_keels_module_names_take_no_service_token(keel):
    for name in ("gateway", "auth", "memory", "registry", "billing", "events"):
        p = keel.cli("token", "create", "--service", name, check=False)
        assert p.returncode == 2 and p.stdout == "" and "keel's own modules" in p.stderr, (name, p.stderr)


def test_emails_a_person_would_call_the_same_are_one_account(keel):
    tag = uuid.uuid4().hex[:6]
    pairs = [(f"\u00c4rger{tag}@Example.com", f"\u00e4rger{tag}@example.com"),             # Ä and ä
             (f"\uff21\uff22{tag}@example.com", f"ab{tag}@example.com"),                   # full-width letters
             (f"\u212aelvin{tag}@example.com", f"kelvin{tag}@example.com"),                # the Kelvin sign
             (f"a{tag}@b\u00fccher.example", f"a{tag}@xn--bcher-kva.example"),             # IDNA
             (f"a\u0308{tag}@example.org", f"\u00e4{tag}@example.org")]                    # decomposed ä
    for first, second in pairs:
        u = register(keel, first)
        r = requests.post(keel.url("auth") + "/v1/auth/register", json={"email": second, "password": "correct horse battery"},
                          timeout=30)
        assert r.status_code == 409, (first, second, r.status_code, r.text)
        # Either spelling logs in to the one account, which keeps the email as it was given.
        for spelling in (first, second, second.upper()):
            r = login(keel, spelling, "correct horse battery")
            assert r.status_code == 200, (spelling, r.text)
            assert r.json()["user"]["id"] == u["user"]["id"] and r.json()["user"]["email"] == first
    r = requests.post(keel.url("auth") + "/v1/auth/register", json={"email": "a@exa\u200dmple.com",
                                                                    "password": "correct horse battery"}, timeout=30)
    assert r.status_code == 422 and "email" in r.text


def test_emails_stored_by_an_older_keel_are_found_after_a_restart(keel_factory):
    k = keel_factory().start()
    tag = uuid.uuid4().hex[:6]
    u = register(k, f"\u00c4rger{tag}@B\u00fccher.example")
    # As an older keel stored it: only ASCII folded, the domain as typed.
    k.query("UPDATE users SET email_lower = $1 WHERE id = $2", f"\u00e4rger{tag}@b\u00fccher.example", u["user"]["id"])
    assert login(k, f"\u00e4rger{tag}@xn--bcher-kva.example", "correct horse battery").status_code == 401
    k.stop()
    k.start()
    r = login(k, f"\u00c4RGER{tag}@xn--bcher-kva.example", "correct horse battery")
    assert r.status_code == 200 and r.json()["user"]["id"] == u["user"]["id"], r.text
