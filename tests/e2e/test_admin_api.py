"""The admin routes the console uses (CONTRACT.md, "admin console"): user search, one user, disabling and
enabling, roles, ending a user's sessions; each needs the admin role, each change is an event, and a disabled
user is locked out at once (login 403, refresh 401, access tokens 401 within a second)."""
import json
import os
import subprocess

import requests

from conftest import KEEL_BIN, PASSWORD, bearer, register, wait_until


NO_ID = "0" * 8 + "-0000-7000-8000-" + "0" * 12


def gw(keel, path):
    return keel.url("gateway") + path


def login(keel, email, password=PASSWORD):
    return requests.post(gw(keel, "/v1/auth/login"), json={"email": email, "password": password}, timeout=10)


def admin_token(keel):
    email = f"admin-{os.urandom(4).hex()}@example.com"
    keel.cli("user", "create", "--email", email, "--password-stdin", "--admin", input="admin password\n")
    r = login(keel, email, "admin password")
    assert r.status_code == 200, r.text
    return r.json()["access_token"], r.json()["user"]["id"]


def assert_problem(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/problem+json")


def test_an_admin_finds_a_user_by_email_and_reads_them(keel):
    admin, _ = admin_token(keel)
    email, reg = register(keel, "findme")
    register(keel, "other")
    r = requests.get(gw(keel, "/v1/auth/users"), params={"query": email.split("@")[0].upper()},
                     headers=bearer(admin), timeout=10)
    assert r.status_code == 200, r.text
    assert [u["email"] for u in r.json()["items"]] == [email]
    assert r.json()["items"][0]["disabled"] is False
    # '%' and '_' in a query are themselves, not wildcards.
    r = requests.get(gw(keel, "/v1/auth/users"), params={"query": "%"}, headers=bearer(admin), timeout=10)
    assert r.status_code == 200 and r.json()["items"] == []
    one = requests.get(gw(keel, f"/v1/auth/users/{reg['user']['id']}"), headers=bearer(admin), timeout=10)
    assert one.status_code == 200 and one.json()["email"] == email and one.json()["disabled"] is False
    assert_problem(requests.get(gw(keel, "/v1/auth/users/" + "0" * 8 + "-0000-7000-8000-" + "0" * 12),
                                headers=bearer(admin), timeout=10), 404)
    assert_problem(requests.get(gw(keel, "/v1/auth/users/nope"), headers=bearer(admin), timeout=10), 404)
    assert_problem(requests.get(gw(keel, "/v1/auth/users"), params={"query": "x" * 255}, headers=bearer(admin),
                                timeout=10), 422)


def test_a_disabled_user_is_locked_out_at_once_and_can_be_let_back_in(keel):
    admin, admin_id = admin_token(keel)
    email, reg = register(keel)
    uid, access, refresh = reg["user"]["id"], reg["access_token"], reg["refresh_token"]
    other_session = login(keel, email).json()["access_token"]  # no refresh is tried on this one
    assert requests.get(gw(keel, "/v1/auth/me"), headers=bearer(access), timeout=10).status_code == 200
    r = requests.patch(gw(keel, f"/v1/auth/users/{uid}"), json={"disabled": True}, headers=bearer(admin), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["disabled"] is True
    assert_problem(login(keel, email), 403)
    assert_problem(login(keel, email, "wrong password"), 401)  # only the right password learns it is disabled
    assert_problem(requests.post(gw(keel, "/v1/auth/refresh"), json={"refresh_token": refresh}, timeout=10), 401)
    for token in (access, other_session):
        assert wait_until(lambda t=token: requests.get(gw(keel, "/v1/auth/me"), headers=bearer(t), timeout=10)
                          .status_code == 401, timeout=2)
    types = {row[0] for row in keel.query("SELECT type FROM observability_events WHERE subject = $1", uid)}
    assert "keel.auth.user.disabled" in types
    r = requests.patch(gw(keel, f"/v1/auth/users/{uid}"), json={"disabled": False}, headers=bearer(admin),
                       timeout=10)
    assert r.status_code == 200 and r.json()["disabled"] is False
    assert login(keel, email).status_code == 200
    # An admin cannot lock themselves out.
    assert_problem(requests.patch(gw(keel, f"/v1/auth/users/{admin_id}"), json={"disabled": True},
                                  headers=bearer(admin), timeout=10), 422)
    assert_problem(requests.patch(gw(keel, f"/v1/auth/users/{admin_id}"), json={"roles": ["user"]},
                                  headers=bearer(admin), timeout=10), 422)


def test_roles_are_set_by_an_admin_and_take_effect_at_the_next_login(keel):
    admin, _ = admin_token(keel)
    email, reg = register(keel)
    uid = reg["user"]["id"]
    r = requests.patch(gw(keel, f"/v1/auth/users/{uid}"), json={"roles": ["admin", "user", "admin"]},
                       headers=bearer(admin), timeout=10)
    assert r.status_code == 200 and r.json()["roles"] == ["user", "admin"]
    token = login(keel, email).json()["access_token"]
    assert requests.get(gw(keel, "/v1/auth/users"), headers=bearer(token), timeout=10).status_code == 200
    for body, field in (({"roles": ["root"]}, "roles"), ({"roles": ["admin"]}, "roles"), ({"roles": "admin"}, "roles"),
                        ({"disabled": "yes"}, "disabled"), ({"email": "x@example.com"}, "email"), ({}, "disabled")):
        r = requests.patch(gw(keel, f"/v1/auth/users/{uid}"), json=body, headers=bearer(admin), timeout=10)
        assert_problem(r, 422)
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())


def test_an_admin_ends_every_session_of_a_user(keel):
    admin, _ = admin_token(keel)
    email, reg = register(keel)
    second = login(keel, email).json()
    r = requests.delete(gw(keel, f"/v1/auth/users/{reg['user']['id']}/sessions"), headers=bearer(admin), timeout=10)
    assert r.status_code == 204
    for token in (reg["access_token"], second["access_token"]):
        assert wait_until(lambda t=token: requests.get(gw(keel, "/v1/auth/me"), headers=bearer(t), timeout=10)
                          .status_code == 401, timeout=2)
    assert login(keel, email).status_code == 200  # not disabled: a new login works
    assert_problem(requests.delete(gw(keel, "/v1/auth/users/" + "0" * 8 + "-0000-7000-8000-" + "0" * 12 + "/sessions"),
                                   headers=bearer(admin), timeout=10), 404)


def test_a_plain_user_gets_403_on_every_admin_route(keel):
    _, reg = register(keel)
    token, uid = reg["access_token"], reg["user"]["id"]
    for method, path, body in (("GET", "/v1/auth/users", None), ("GET", f"/v1/auth/users/{uid}", None),
                               ("PATCH", f"/v1/auth/users/{uid}", {"roles": ["user", "admin"]}),
                               ("DELETE", f"/v1/auth/users/{uid}/sessions", None),
                               ("GET", f"/v1/auth/users/{uid}/sessions", None),
                               ("DELETE", f"/v1/auth/users/{uid}/sessions/{NO_ID}", None),
                               ("GET", "/v1/billing/accounts", None), ("GET", f"/v1/billing/accounts/{NO_ID}", None),
                               ("GET", f"/v1/billing/accounts/{NO_ID}/ledger", None),
                               ("GET", "/v1/gateway/traffic", None), ("GET", "/v1/gateway/config", None)):
        assert_problem(requests.request(method, gw(keel, path), json=body, headers=bearer(token), timeout=10), 403)
    assert requests.get(gw(keel, "/v1/auth/me"), headers=bearer(token), timeout=10).json()["roles"] == ["user"]


def test_an_admin_reads_a_users_memories_and_each_read_is_an_event(keel):
    admin, admin_id = admin_token(keel)
    _, reg = register(keel)
    token, uid = reg["access_token"], reg["user"]["id"]
    mem = requests.post(gw(keel, "/v1/memories"), json={"content": "prefers window seats"}, headers=bearer(token),
                        timeout=10).json()
    requests.patch(gw(keel, f"/v1/memories/{mem['id']}"), json={"content": "prefers aisle seats"},
                   headers=bearer(token), timeout=10).raise_for_status()

    def admin_reads():
        return [row[0] for row in keel.query(
            "SELECT data FROM observability_events WHERE type = 'keel.memory.admin_read' AND subject = $1 ORDER BY seq",
            uid)]

    listed = requests.get(gw(keel, "/v1/memories"), params={"user_id": uid}, headers=bearer(admin), timeout=10)
    assert listed.status_code == 200 and [m["id"] for m in listed.json()["items"]] == [mem["id"]]
    one = requests.get(gw(keel, f"/v1/memories/{mem['id']}"), headers=bearer(admin), timeout=10)
    assert one.status_code == 200 and one.json()["content"] == "prefers aisle seats"
    history = requests.get(gw(keel, f"/v1/memories/{mem['id']}/history"), headers=bearer(admin), timeout=10)
    assert history.status_code == 200 and history.json()["items"][0]["content"] == "prefers window seats"
    found = requests.post(gw(keel, "/v1/memories/search"), json={"user_id": uid, "query": "aisle"},
                          headers=bearer(admin), timeout=10)
    assert found.status_code == 200 and [i["memory"]["id"] for i in found.json()["items"]] == [mem["id"]]
    reads = [json.loads(d) for d in admin_reads()]
    assert [r["read"] for r in reads] == ["list", "memory", "history", "search"]
    assert all(r["by"] == admin_id and r["user_id"] == uid for r in reads)
    # A plain user names nobody else; an admin reading their own memories is no admin read.
    _, other = register(keel)
    assert_problem(requests.get(gw(keel, "/v1/memories"), params={"user_id": uid},
                                headers=bearer(other["access_token"]), timeout=10), 403)
    assert_problem(requests.post(gw(keel, "/v1/memories/search"), json={"user_id": uid, "query": "aisle"},
                                 headers=bearer(other["access_token"]), timeout=10), 403)
    assert_problem(requests.get(gw(keel, f"/v1/memories/{mem['id']}"), headers=bearer(other["access_token"]),
                                timeout=10), 404)
    assert_problem(requests.get(gw(keel, "/v1/memories"), params={"user_id": "nope"}, headers=bearer(admin),
                                timeout=10), 422)
    assert requests.get(gw(keel, "/v1/memories"), params={"user_id": admin_id}, headers=bearer(admin),
                        timeout=10).status_code == 200
    assert len(admin_reads()) == 4
    # The event log tells an admin which memory changed, not what it says: that read goes through the
    # recorded routes above.
    logged = requests.get(gw(keel, "/v1/events"), params={"subject": uid},
                          headers=bearer(admin), timeout=10).json()["items"]
    changes = [e["data"] for e in logged if e["type"] in ("keel.memory.created", "keel.memory.updated")]
    assert changes == [{"id": mem["id"], "namespace": "default", "version": 1},
                       {"id": mem["id"], "namespace": "default", "version": 2}], changes
    assert "aisle" not in json.dumps(logged) and "window" not in json.dumps(logged)
    assert len(admin_reads()) == 4


def test_an_admin_lists_a_users_sessions_and_revokes_one(keel):
    admin, admin_id = admin_token(keel)
    email, reg = register(keel)
    uid = reg["user"]["id"]
    second = login(keel, email).json()
    r = requests.get(gw(keel, f"/v1/auth/users/{uid}/sessions"), headers=bearer(admin), timeout=10)
    assert r.status_code == 200, r.text
    sessions = r.json()["items"]
    assert len(sessions) == 2 and not any(s["current"] for s in sessions)
    # Newest first: the second login's session is the first item; revoking it leaves the first alive.
    target = sessions[0]["id"]
    r = requests.delete(gw(keel, f"/v1/auth/users/{uid}/sessions/{target}"), headers=bearer(admin), timeout=10)
    assert r.status_code == 204, r.text
    assert wait_until(lambda: requests.get(gw(keel, "/v1/auth/me"), headers=bearer(second["access_token"]),
                                           timeout=10).status_code == 401, timeout=2)
    assert requests.post(gw(keel, "/v1/auth/refresh"), json={"refresh_token": second["refresh_token"]},
                         timeout=10).status_code == 401
    assert requests.get(gw(keel, "/v1/auth/me"), headers=bearer(reg["access_token"]), timeout=10).status_code == 200
    # The event names the session, why, and the admin who ended it.
    [event] = [json.loads(row[0]) for row in keel.query(
        "SELECT data FROM observability_events WHERE type = 'keel.auth.session.revoked' AND subject = $1", uid)]
    assert event == {"session_id": target, "reason": "revoked_by_admin", "by": admin_id}
    left = requests.get(gw(keel, f"/v1/auth/users/{uid}/sessions"), headers=bearer(admin), timeout=10).json()
    assert [s["id"] for s in left["items"]] == [sessions[1]["id"]]
    # Another user's session id under this user is not found; so is a user that does not exist.
    _, other = register(keel)
    other_session = requests.get(gw(keel, f"/v1/auth/users/{other['user']['id']}/sessions"), headers=bearer(admin),
                                 timeout=10).json()["items"][0]["id"]
    assert_problem(requests.delete(gw(keel, f"/v1/auth/users/{uid}/sessions/{other_session}"),
                                   headers=bearer(admin), timeout=10), 404)
    assert requests.get(gw(keel, "/v1/auth/me"), headers=bearer(other["access_token"]), timeout=10).status_code == 200
    assert_problem(requests.get(gw(keel, f"/v1/auth/users/{NO_ID}/sessions"), headers=bearer(admin), timeout=10), 404)
    assert_problem(requests.delete(gw(keel, f"/v1/auth/users/nope/sessions/{target}"), headers=bearer(admin),
                                   timeout=10), 404)


def test_an_admin_finds_a_users_billing_account_and_its_ledger(keel):
    admin, _ = admin_token(keel)
    _, reg = register(keel)
    uid = reg["user"]["id"]
    r = requests.get(gw(keel, "/v1/billing/accounts"), params={"user_id": uid}, headers=bearer(admin), timeout=10)
    assert r.status_code == 200, r.text
    [account] = r.json()["items"]
    assert account["user_id"] == uid
    for key, amount in (("grant-1", 500), ("grant-2", 250), ("grant-1", 500)):
        requests.post(gw(keel, f"/v1/billing/accounts/{account['id']}/credits"),
                      json={"amount": amount, "idempotency_key": key}, headers=bearer(admin),
                      timeout=10).raise_for_status()
    one = requests.get(gw(keel, f"/v1/billing/accounts/{account['id']}"), headers=bearer(admin), timeout=10)
    assert one.status_code == 200 and one.json()["balance"] == account["balance"] + 750
    # The user sees the same balance as the admin.
    own = requests.get(gw(keel, "/v1/billing/account"), headers=bearer(reg["access_token"]), timeout=10).json()
    assert own["balance"] == one.json()["balance"]
    ledger = requests.get(gw(keel, f"/v1/billing/accounts/{account['id']}/ledger"), params={"limit": 1},
                          headers=bearer(admin), timeout=10)
    assert ledger.status_code == 200
    assert [e["amount"] for e in ledger.json()["items"]] == [250] and ledger.json()["next_cursor"]
    rest = requests.get(gw(keel, f"/v1/billing/accounts/{account['id']}/ledger"),
                        params={"cursor": ledger.json()["next_cursor"]}, headers=bearer(admin), timeout=10).json()
    assert [e["amount"] for e in rest["items"]][:1] == [500]
    # Every account, page by page, holds this one exactly once.
    seen, cursor = [], None
    while True:
        page = requests.get(gw(keel, "/v1/billing/accounts"), params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                            headers=bearer(admin), timeout=10).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen.count(account["id"]) == 1 and seen == sorted(seen)
    assert_problem(requests.get(gw(keel, f"/v1/billing/accounts/{NO_ID}"), headers=bearer(admin), timeout=10), 404)
    assert_problem(requests.get(gw(keel, f"/v1/billing/accounts/{NO_ID}/ledger"), headers=bearer(admin),
                                timeout=10), 404)
    assert_problem(requests.get(gw(keel, "/v1/billing/accounts"), params={"user_id": "nope"}, headers=bearer(admin),
                                timeout=10), 422)


def test_the_gateway_reports_each_modules_recent_traffic_to_an_admin(keel):
    admin, _ = admin_token(keel)
    _, reg = register(keel)
    for _ in range(20):
        requests.get(gw(keel, "/v1/memories"), headers=bearer(reg["access_token"]), timeout=10).raise_for_status()
    requests.get(gw(keel, "/v1/memories/" + NO_ID), headers=bearer(reg["access_token"]), timeout=10)  # a 404

    def memory_requests():
        r = requests.get(gw(keel, "/v1/gateway/traffic"), params={"seconds": 30}, headers=bearer(admin), timeout=10)
        assert r.status_code == 200, r.text
        series = r.json()["modules"].get("memory", [])
        assert r.json()["seconds"] == 30 and len(series) == 30
        assert [s["at"] for s in series] == list(range(series[0]["at"], series[0]["at"] + 30))
        return series

    # The seconds are whole ones: the requests show once their second has passed.
    assert wait_until(lambda: sum(s["requests"] for s in memory_requests()) == 21, timeout=3)
    busy = [s for s in memory_requests() if s["requests"]]
    assert sum(s["errors"] for s in busy) == 0  # a 404 is the client's error, not the server's
    assert all(0 < s["p50_ms"] <= s["p99_ms"] < 1000 for s in busy)
    assert all(s["p50_ms"] == 0 for s in memory_requests() if not s["requests"])
    assert_problem(requests.get(gw(keel, "/v1/gateway/traffic"), params={"seconds": 500}, headers=bearer(admin),
                                timeout=10), 422)


def test_an_admin_reads_the_effective_configuration_without_secrets(keel):
    admin, _ = admin_token(keel)
    r = requests.get(gw(keel, "/v1/gateway/config"), headers=bearer(admin), timeout=10)
    assert r.status_code == 200, r.text
    toml = r.json()["toml"]
    assert "[auth]" in toml and "[gateway]" in toml and f"port_base = {keel.port_base}" in toml
    # What `keel config` prints for the same settings (the port base given as serve was given it).
    a = [KEEL_BIN, "config", "--data-dir", str(keel.data_dir)] + (["--database", keel.database] if keel.database else [])
    printed = subprocess.run(a, capture_output=True, text=True, timeout=30, cwd=keel.cwd, check=True,
                             env=dict(keel.env, KEEL_PORT_BASE=str(keel.port_base))).stdout
    assert toml == printed


def test_the_sign_in_page_learns_whether_an_admin_exists(keel):
    register(keel)  # users, but nobody who can use the console
    r = requests.get(gw(keel, "/v1/auth/setup"), timeout=10)
    assert r.status_code == 200 and r.json() == {"has_admin": False}
    admin_token(keel)
    # A no is remembered for up to a second.
    assert wait_until(lambda: requests.get(gw(keel, "/v1/auth/setup"), timeout=10).json()["has_admin"], timeout=3)
