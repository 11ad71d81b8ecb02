"""Error answers a client meets on every route family, each with the status and problem body the contract gives:
cursors this server did not issue, limits out of range, ids that are not ids, paths no module serves, and the
password-change throttle. Each case is asked through the gateway, as a client would."""
import uuid

import pytest
import requests

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
    return {"gw": gw, "user": user, "tok": user["access_token"], "memory": memory.json()["id"],
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
