"""Billing: the account every user gets, admin credits on an append-only ledger, idempotent usage."""
import concurrent.futures
import uuid

import pytest
import requests


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def keel(keel_factory):
    return keel_factory().start()


def new_user(keel):
    r = requests.post(keel.url("gateway") + "/v1/auth/register",
                      json={"email": f"b{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery"},
                      timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def admin_token(keel):
    addr = f"admin{uuid.uuid4().hex[:6]}@example.com"
    keel.cli("user", "create", "--email", addr, "--password-stdin", "--admin", input="admin password\n")
    return requests.post(keel.url("auth") + "/v1/auth/login", json={"email": addr, "password": "admin password"},
                         timeout=30).json()["access_token"]


def settled_balance(keel, token, expected, within=3.0):
    """The account's balance once the gateway's charges are flushed: `expected` as soon as it shows, else the
    last one read."""
    import time
    deadline = time.time() + within
    while True:
        balance = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(token),
                               timeout=10).json()["balance"]
        if balance == expected or time.time() > deadline:
            return balance
        time.sleep(0.2)


def test_every_user_has_an_account(keel):
    u = new_user(keel)
    r = requests.get(keel.url("gateway") + "/v1/billing/account", headers=bearer(u["access_token"]), timeout=10)
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["user_id"] == u["user"]["id"] and a["balance"] == 0 and a["plan"] == "free" and a["currency"]
    assert requests.get(keel.url("billing") + "/v1/billing/account", timeout=10).status_code == 401


def test_admin_credits_are_idempotent_and_on_the_ledger(keel):
    u = new_user(keel)
    account = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]),
                           timeout=10).json()
    admin = admin_token(keel)
    url = f"{keel.url('billing')}/v1/billing/accounts/{account['id']}/credits"
    first = requests.post(url, json={"amount": 500, "description": "welcome", "idempotency_key": "k1"},
                          headers=bearer(admin), timeout=10)
    assert first.status_code == 201, first.text
    again = requests.post(url, json={"amount": 500, "description": "welcome", "idempotency_key": "k1"},
                          headers=bearer(admin), timeout=10)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    second = requests.post(url, json={"amount": 25, "idempotency_key": "k2"}, headers=bearer(admin), timeout=10)
    assert second.json()["balance_after"] == 525
    ledger = requests.get(keel.url("billing") + "/v1/billing/ledger", headers=bearer(u["access_token"]), timeout=10)
    assert [e["amount"] for e in ledger.json()["items"]] == [25, 500]
    acc = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]), timeout=10)
    assert acc.json()["balance"] == 525
    # Plain users cannot credit; bad input is 422; unknown accounts 404.
    assert requests.post(url, json={"amount": 5, "idempotency_key": "k3"}, headers=bearer(u["access_token"]),
                         timeout=10).status_code == 403
    assert requests.post(url, json={"amount": -5, "idempotency_key": "k4"}, headers=bearer(admin),
                         timeout=10).status_code == 422
    assert requests.post(url, json={"amount": 5}, headers=bearer(admin), timeout=10).status_code == 422
    missing = f"{keel.url('billing')}/v1/billing/accounts/{uuid.uuid4()}/credits"
    assert requests.post(missing, json={"amount": 5, "idempotency_key": "x"}, headers=bearer(admin),
                         timeout=10).status_code == 404
    types = [r[0] for r in keel.query("SELECT type FROM observability_events WHERE subject = $1", u["user"]["id"])]
    assert types.count("keel.billing.ledger.posted") == 2


def test_the_ledger_pages_newest_first_without_repeating_or_skipping_an_entry(keel):
    """?limit= and the cursor walk the ledger newest first: every entry once, and the last page has no cursor."""
    u = new_user(keel)
    headers = bearer(u["access_token"])
    account = requests.get(keel.url("billing") + "/v1/billing/account", headers=headers, timeout=10).json()
    admin = admin_token(keel)
    for amount in range(1, 6):
        assert requests.post(f"{keel.url('billing')}/v1/billing/accounts/{account['id']}/credits",
                             json={"amount": amount, "idempotency_key": f"page-{amount}"}, headers=bearer(admin),
                             timeout=10).status_code == 201
    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = requests.get(keel.url("billing") + "/v1/billing/ledger", params=params, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        pages.append([e["amount"] for e in r.json()["items"]])
        cursor = r.json()["next_cursor"]
        if not cursor or len(pages) > 5:
            break
    assert pages == [[5, 4], [3, 2], [1]]
    assert requests.get(keel.url("billing") + "/v1/billing/ledger", params={"cursor": "not-ours"}, headers=headers,
                        timeout=10).status_code == 400


def test_usage_posts_count_once_under_concurrency(keel):
    u = new_user(keel)
    svc = keel.cli("token", "create", "--service", "notes").stdout.strip()
    body = {"user_id": u["user"]["id"], "module": "notes", "metric": "writes", "quantity": 3,
            "idempotency_key": f"u-{uuid.uuid4().hex}"}

    def post(_):
        return requests.post(keel.url("billing") + "/v1/billing/usage", json=body, headers=bearer(svc), timeout=30)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(post, range(20)))
    codes = [r.status_code for r in results]
    assert codes.count(201) == 1 and codes.count(200) == 19, codes
    assert len({r.json()["id"] for r in results}) == 1
    other = dict(body, idempotency_key=f"u-{uuid.uuid4().hex}", quantity=4)
    assert requests.post(keel.url("billing") + "/v1/billing/usage", json=other, headers=bearer(svc),
                         timeout=10).status_code == 201
    usage = requests.get(keel.url("billing") + "/v1/billing/usage", headers=bearer(u["access_token"]), timeout=10)
    assert usage.status_code == 200, usage.text
    assert usage.json()["items"] == [{"module": "notes", "metric": "writes", "quantity": 7}]
    future = requests.get(keel.url("billing") + "/v1/billing/usage", params={"from": "2999-01-01T00:00:00Z"},
                          headers=bearer(u["access_token"]), timeout=10)
    assert future.json()["items"] == []
    assert requests.get(keel.url("billing") + "/v1/billing/usage", params={"from": "soon"},
                        headers=bearer(u["access_token"]), timeout=10).status_code == 422
    # Only service tokens post usage; bad input is 422.
    assert requests.post(keel.url("billing") + "/v1/billing/usage", json=other, headers=bearer(u["access_token"]),
                         timeout=10).status_code == 403
    bad = dict(body, idempotency_key="z", user_id="nobody")
    assert requests.post(keel.url("billing") + "/v1/billing/usage", json=bad, headers=bearer(svc),
                         timeout=10).status_code == 422
    bad = dict(body, idempotency_key="z2", quantity=0)
    assert requests.post(keel.url("billing") + "/v1/billing/usage", json=bad, headers=bearer(svc),
                         timeout=10).status_code == 422


def _requests_usage(keel, token, module):
    items = requests.get(keel.url("billing") + "/v1/billing/usage", headers=bearer(token), timeout=10).json()["items"]
    return sum(i["quantity"] for i in items if i["module"] == module and i["metric"] == "requests")


def test_the_gateway_meters_authenticated_requests(keel_factory):
    import signal
    import time
    k = keel_factory()
    k.start()
    u = new_user(k)
    tok = u["access_token"]
    for _ in range(3):
        assert requests.get(k.url("gateway") + "/v1/auth/me", headers=bearer(tok), timeout=10).status_code == 200
    deadline = time.time() + 2.5
    while time.time() < deadline and _requests_usage(k, tok, "auth") < 3:
        time.sleep(0.1)
    assert _requests_usage(k, tok, "auth") == 3  # within 2 s, each request once
    # Requests straight to a module's own port are not gateway traffic.
    requests.get(k.url("auth") + "/v1/auth/me", headers=bearer(tok), timeout=10)
    # A graceful shutdown flushes what the last second counted; nothing is lost or counted twice.
    for _ in range(4):
        requests.get(k.url("gateway") + "/v1/auth/me", headers=bearer(tok), timeout=10)
    assert k.stop(signal.SIGTERM) == 0
    k.start()
    assert _requests_usage(k, tok, "auth") == 7


def test_plan_quota_admits_exactly_its_requests_each_minute(keel_factory):
    """A plan's quota counts requests per wall-clock minute: with 5 a minute, exactly 5 pass and the 6th is
    429. A burst that straddles a minute's turn (two windows) proves nothing; it is tried again with a new
    user."""
    import time
    quota = 5
    k = keel_factory(env={"KEEL_BILLING_FREE_REQUESTS_PER_MINUTE": str(quota)}).start()
    for _ in range(3):
        tok = new_user(k)["access_token"]  # registration is not metered
        if time.time() % 60 > 58:  # close to a minute's turn: start after it
            time.sleep(60.1 - time.time() % 60)
        start = time.time()
        answers = [requests.get(k.url("gateway") + "/v1/auth/me", headers=bearer(tok), timeout=10)
                   for _ in range(quota + 2)]
        end = time.time()
        if int((start - 0.05) // 60) == int(end // 60):  # the gateway's clock lags by milliseconds at most
            break
    else:
        pytest.fail("every burst straddled a minute's turn")
    assert [a.status_code for a in answers] == [200] * quota + [429] * 2, [a.text for a in answers]
    limited = answers[quota]
    assert limited.headers["Content-Type"].startswith("application/problem+json")
    assert "quota" in limited.json()["detail"]
    # Retry-After points at the next minute.
    assert 1 <= int(limited.headers["Retry-After"]) <= 61 - int(end % 60)


def test_priced_requests_need_credits_402(keel_factory):
    import time
    k = keel_factory(env={"KEEL_BILLING_FREE_REQUEST_PRICE": "10"}).start()
    u = new_user(k)
    tok = u["access_token"]
    r = requests.get(k.url("gateway") + "/v1/auth/me", headers=bearer(tok), timeout=10)
    assert r.status_code == 402 and r.headers["Content-Type"].startswith("application/problem+json")
    account = requests.get(k.url("billing") + "/v1/billing/account", headers=bearer(tok), timeout=10).json()
    admin = admin_token(k)
    assert requests.post(f"{k.url('billing')}/v1/billing/accounts/{account['id']}/credits",
                         json={"amount": 25, "idempotency_key": "topup"}, headers=bearer(admin), timeout=10).status_code == 201
    time.sleep(1.1)  # the gateway's view of the balance is at most a second old
    codes = [requests.get(k.url("gateway") + "/v1/auth/me", headers=bearer(tok), timeout=10).status_code for _ in range(3)]
    assert codes == [200, 200, 402]
    assert settled_balance(k, tok, 5) == 5
    ledger = requests.get(k.url("billing") + "/v1/billing/ledger", headers=bearer(tok), timeout=10).json()["items"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [("usage", -20), ("credit", 25)]


def user_with_five_requests_of_credit(keel_factory):
    """A keel whose requests cost 10 credits, and a user with 50 that the gateway already knows of."""
    import time
    k = keel_factory(env={"KEEL_BILLING_FREE_REQUEST_PRICE": "10"}).start()
    tok = new_user(k)["access_token"]
    account = requests.get(k.url("billing") + "/v1/billing/account", headers=bearer(tok), timeout=10).json()
    assert requests.post(f"{k.url('billing')}/v1/billing/accounts/{account['id']}/credits",
                         json={"amount": 50, "idempotency_key": "five"}, headers=bearer(admin_token(k)),
                         timeout=10).status_code == 201
    time.sleep(1.1)  # the gateway's view of the balance is at most a second old
    return k, tok


def test_credits_buy_exactly_their_requests_across_flushes(keel_factory):
    """The gateway charges in batches (a flush a second) and reads balances again after each one: spread over
    several flushes, credits for five requests still buy exactly five."""
    import time
    k, tok = user_with_five_requests_of_credit(keel_factory)
    codes = []
    for _ in range(9):
        codes.append(requests.get(k.url("gateway") + "/v1/auth/me", headers=bearer(tok), timeout=10).status_code)
        time.sleep(0.35)
    assert codes == [200] * 5 + [402] * 4
    assert settled_balance(k, tok, 0) == 0


def test_concurrent_requests_cannot_overdraw(keel_factory):
    """Twenty requests at once against credits for five: five pass, whatever thread each lands on."""
    k, tok = user_with_five_requests_of_credit(keel_factory)

    def get(_):
        return requests.get(k.url("gateway") + "/v1/auth/me", headers=bearer(tok), timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(get, range(20)))
    assert sorted(codes) == [200] * 5 + [402] * 15, codes
    assert settled_balance(k, tok, 0) == 0


def test_concurrent_duplicate_credits_post_once(keel):
    u = new_user(keel)
    account = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]),
                           timeout=10).json()
    admin = admin_token(keel)
    url = f"{keel.url('billing')}/v1/billing/accounts/{account['id']}/credits"

    def post(_):
        return requests.post(url, json={"amount": 7, "idempotency_key": "same"}, headers=bearer(admin), timeout=30)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(post, range(20)))
    codes = [r.status_code for r in results]
    assert codes.count(201) == 1 and codes.count(200) == 19, codes
    assert len({r.json()["id"] for r in results}) == 1
    acc = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]), timeout=10)
    assert acc.json()["balance"] == 7


MAX_TOTAL = 2**53 - 1  # the largest integer JSON carries exactly: the bound of every balance and usage total


def test_usage_totals_stop_at_their_bound_with_422_and_stay_readable(keel):
    u = new_user(keel)
    svc = keel.cli("token", "create", "--service", "meter").stdout.strip()

    def post(quantity, metric="tokens"):
        return requests.post(keel.url("billing") + "/v1/billing/usage", headers=bearer(svc), timeout=10,
                             json={"user_id": u["user"]["id"], "module": "meter", "metric": metric,
                                   "quantity": quantity, "idempotency_key": uuid.uuid4().hex})

    for _ in range(7):
        assert post(2**50).status_code == 201
    refused = post(2**50)  # each within the per-post cap, but 8 of them pass 2^53 - 1
    assert refused.status_code == 422, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert "quantity" in refused.text
    assert post(2**50 - 1).status_code == 201  # exactly to the bound
    assert post(1).status_code == 422
    assert post(5, metric="calls").status_code == 201  # another metric has its own total

    r = requests.get(keel.url("billing") + "/v1/billing/usage", headers=bearer(u["access_token"]), timeout=10)
    assert r.status_code == 200, r.text
    totals = {(i["module"], i["metric"]): i["quantity"] for i in r.json()["items"]}
    assert totals[("meter", "tokens")] == MAX_TOTAL and totals[("meter", "calls")] == 5


def test_a_balance_stops_at_its_bound_with_422(keel):
    u = new_user(keel)
    account = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]),
                           timeout=10).json()
    admin = admin_token(keel)

    def credit(amount):
        return requests.post(f"{keel.url('billing')}/v1/billing/accounts/{account['id']}/credits",
                             headers=bearer(admin), timeout=10,
                             json={"amount": amount, "idempotency_key": uuid.uuid4().hex})

    for _ in range(7):
        assert credit(2**50).status_code == 201
    refused = credit(2**50)
    assert refused.status_code == 422 and "amount" in refused.text, refused.text
    assert credit(2**50 - 1).status_code == 201
    assert credit(1).status_code == 422
    r = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]), timeout=10)
    assert r.status_code == 200 and r.json()["balance"] == MAX_TOTAL
    entries = requests.get(keel.url("billing") + "/v1/billing/ledger", headers=bearer(u["access_token"]),
                           timeout=10)
    assert entries.status_code == 200 and len(entries.json()["items"]) == 8
    assert entries.json()["items"][0]["balance_after"] == MAX_TOTAL


def test_usage_stored_past_the_bound_still_reads(keel):
    """Usage an older keel stored without the check (3 x 2^62 overflows int64) reads as the bound, never 500."""
    u = new_user(keel)
    account = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]),
                           timeout=10).json()
    for _ in range(3):
        keel.query("INSERT INTO usage_records (id, account_id, user_id, module, metric, quantity, idempotency_key, "
                   "created_at, updated_at) VALUES ($1, $2, $3, 'meter', 'tokens', $4, $5, $6, $6)",
                   str(uuid.uuid4()), account["id"], u["user"]["id"], 2**62, uuid.uuid4().hex,
                   "2026-01-01T00:00:00.000Z")
    r = requests.get(keel.url("billing") + "/v1/billing/usage", headers=bearer(u["access_token"]), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [{"module": "meter", "metric": "tokens", "quantity": MAX_TOTAL}]


def test_user_billing_routes_refuse_service_tokens(keel):
    """Account, ledger and usage are a user's own: a service token is valid but has no user, so 403."""
    u = new_user(keel)
    svc = keel.cli("token", "create", "--service", "x").stdout.strip()
    for port in ("billing", "gateway"):
        for path in ("/v1/billing/account", "/v1/billing/ledger", "/v1/billing/usage"):
            r = requests.get(keel.url(port) + path, headers=bearer(svc), timeout=10)
            assert r.status_code == 403, (port, path, r.status_code, r.text)
            assert r.headers["Content-Type"].startswith("application/problem+json")
            assert requests.get(keel.url(port) + path, headers=bearer(u["access_token"]), timeout=10).status_code == 200


def test_a_retried_credit_replays_its_answer_even_at_the_balances_bound(keel):
    """A retry with the same Idempotency-Key answers the original (status and body, Idempotent-Replayed) and
    posts nothing, whatever happened to the account since: here the balance reached its bound, so the credit
    posted afresh would be 422. (A plain retry cannot tell a ledger that checks for the key from one that
    does not: the second insert breaks the unique (account, key) and rolls back, and the route answers the
    stored entry either way. At the bound the credit is refused before it gets to the insert.)"""
    u = new_user(keel)
    tok = u["access_token"]
    account = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(tok), timeout=10).json()
    admin = admin_token(keel)
    url = f"{keel.url('billing')}/v1/billing/accounts/{account['id']}/credits"

    def credit(amount, key):
        return requests.post(url, json={"amount": amount, "description": "top-up"}, timeout=10,
                             headers={**bearer(admin), "Idempotency-Key": key})

    first = credit(2**50, "first")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    for i in range(6):
        assert credit(2**50, f"more-{i}").status_code == 201
    assert credit(2**50 - 1, "last").json()["balance_after"] == MAX_TOTAL
    again = credit(2**50, "first")
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true", again.text
    assert again.json() == first.json()  # the original entry, balance_after 2^50 included
    balance = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(tok), timeout=10).json()
    assert balance["balance"] == MAX_TOTAL
    ledger = requests.get(keel.url("billing") + "/v1/billing/ledger", headers=bearer(tok), timeout=10).json()
    assert len(ledger["items"]) == 8
    assert [e["idempotency_key"] for e in ledger["items"]].count("first") == 1


def problem(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_usage_posts_name_each_invalid_field_with_422(keel):
    u = new_user(keel)
    svc = keel.cli("token", "create", "--service", "notes").stdout.strip()
    url = keel.url("billing") + "/v1/billing/usage"
    good = {"user_id": u["user"]["id"], "module": "notes", "metric": "writes", "quantity": 1}
    cases = [
        ({"quantity": None}, "quantity", "is required"),
        ({"quantity": "null"}, "quantity", "is required"),
        ({"module": "Notes"}, "module", "must match [a-z][a-z0-9._-]{0,62}"),
        ({"module": "9lives"}, "module", "must match [a-z][a-z0-9._-]{0,62}"),
        ({"metric": "write s"}, "metric", "must match [a-z][a-z0-9._-]{0,62}"),
        ({"metric": "-writes"}, "metric", "must match [a-z][a-z0-9._-]{0,62}"),
    ]
    for change, field, message in cases:
        # None leaves the field out; "null" sends it as JSON null, which is no quantity either.
        body = {k: (None if v == "null" else v) for k, v in
                {**good, **change, "idempotency_key": f"u-{uuid.uuid4().hex}"}.items() if v is not None}
        errors = problem(requests.post(url, json=body, headers=bearer(svc), timeout=10), 422)["errors"]
        assert {"field": field, "message": message} in errors, (change, errors)
    # A well-formed id that is no user's: 422 on user_id, and nothing is recorded.
    key = f"u-{uuid.uuid4().hex}"
    r = requests.post(url, json={**good, "user_id": str(uuid.uuid4()), "idempotency_key": key},
                      headers=bearer(svc), timeout=10)
    assert problem(r, 422)["errors"] == [{"field": "user_id", "message": "no such user"}]
    assert keel.query("SELECT COUNT(*) FROM usage_records WHERE idempotency_key = $1", key) == [("0",)]
    assert requests.get(keel.url("billing") + "/v1/billing/usage", headers=bearer(u["access_token"]),
                        timeout=10).json()["items"] == []


def test_an_idempotency_key_header_that_differs_from_the_bodys_key_is_422(keel):
    u = new_user(keel)
    svc = keel.cli("token", "create", "--service", "notes").stdout.strip()
    admin = admin_token(keel)
    account = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]),
                           timeout=10).json()["id"]
    posts = [
        (keel.url("billing") + "/v1/billing/usage", svc,
         {"user_id": u["user"]["id"], "module": "notes", "metric": "writes", "quantity": 1}),
        (keel.url("billing") + f"/v1/billing/accounts/{account}/credits", admin, {"amount": 5}),
    ]
    for url, token, body in posts:
        for body_key in ("body-key", 7):
            r = requests.post(url, json={**body, "idempotency_key": body_key},
                              headers={**bearer(token), "Idempotency-Key": "header-key"}, timeout=10)
            assert problem(r, 422)["errors"] == [
                {"field": "idempotency_key", "message": "differs from the Idempotency-Key header"}], url
        # The same key in both, or in the header alone, is one post.
        first = requests.post(url, json={**body, "idempotency_key": "same"},
                              headers={**bearer(token), "Idempotency-Key": "same"}, timeout=10)
        again = requests.post(url, json=body, headers={**bearer(token), "Idempotency-Key": "same"}, timeout=10)
        assert first.status_code == 201 and again.status_code == 200, (first.text, again.text)
        assert again.json()["id"] == first.json()["id"]
    assert requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]),
                        timeout=10).json()["balance"] == 5


def test_a_credit_without_an_amount_is_422(keel):
    u = new_user(keel)
    admin = admin_token(keel)
    account = requests.get(keel.url("billing") + "/v1/billing/account", headers=bearer(u["access_token"]),
                           timeout=10).json()["id"]
    url = keel.url("billing") + f"/v1/billing/accounts/{account}/credits"
    for body in ({"idempotency_key": "k1"}, {"description": "no amount", "idempotency_key": "k2"},
                 {"amount": None, "idempotency_key": "k3"}):
        errors = problem(requests.post(url, json=body, headers=bearer(admin), timeout=10), 422)["errors"]
        assert errors == [{"field": "amount", "message": "is required"}], errors
    assert requests.get(keel.url("billing") + "/v1/billing/ledger", headers=bearer(u["access_token"]),
                        timeout=10).json()["items"] == []
