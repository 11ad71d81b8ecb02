"""Registry and gateway as one system: third-party modules register, get routed and balanced, die and are
routed around; blocking queries; credentials; edge auth; rate limits; a split deployment over one database."""
import concurrent.futures
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import Keel, RecordingUpstream, ScriptedUpstream, self_signed, wait_until


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def user_token(k):
    r = requests.post(k.url("gateway") + "/v1/auth/register",
                      json={"email": f"u{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery"},
                      timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def service_token(k, name):
    return k.cli("token", "create", "--service", name).stdout.strip()


def put_instance(k, token, module, instance, **body):
    return requests.put(f"{k.url('registry')}/v1/registry/modules/{module}/instances/{instance}", json=body,
                        headers=bearer(token), timeout=10)


def instances(k, token, module, **params):
    return requests.get(f"{k.url('registry')}/v1/registry/modules/{module}/instances", params=params,
                        headers=bearer(token), timeout=90)


@pytest.fixture
def keel(keel_factory):
    return keel_factory(env={"KEEL_REGISTRY_CHECK_INTERVAL_MS": "200", "KEEL_REGISTRY_GRACE_SECONDS": "2"}).start()


def test_keels_own_modules_register_themselves(keel):
    tok = user_token(keel)["access_token"]
    r = requests.get(keel.url("registry") + "/v1/registry/modules", headers=bearer(tok), timeout=10)
    assert r.status_code == 200 and int(r.headers["X-Keel-Index"]) > 0
    mods = {m["name"]: m for m in r.json()["items"]}
    for name in ("gateway", "auth", "memory", "registry", "billing", "events"):
        assert mods[name]["passing"] >= 1, mods
    assert "/v1/auth" in mods["auth"]["routes"]
    health = requests.get(keel.url("gateway") + "/health", timeout=10).json()
    assert health["modules"]["auth"] == "ok" and health["status"] == "ok"


def test_registry_writes_need_the_right_credential(keel):
    user = user_token(keel)["access_token"]
    ext = service_token(keel, "ext")
    other = service_token(keel, "other")
    body = {"url": "http://127.0.0.1:9/", "routes": ["/v1/ext"]}
    assert put_instance(keel, "", "ext", "a", **body).status_code == 401
    assert requests.put(f"{keel.url('registry')}/v1/registry/modules/ext/instances/a", json=body, timeout=10).status_code == 401
    assert put_instance(keel, user, "ext", "a", **body).status_code == 403
    assert put_instance(keel, other, "ext", "a", **body).status_code == 403
    assert put_instance(keel, ext, "ext", "a", **body).status_code == 200
    # Reads need any valid token.
    assert requests.get(keel.url("registry") + "/v1/registry/modules", timeout=10).status_code == 401
    assert instances(keel, user, "ext").status_code == 200


def test_registration_is_validated(keel):
    ext = service_token(keel, "ext")
    cases = [
        ("ext", "a", {"url": "not a url"}, "url"),
        ("ext", "a", {"url": "ftp://x/"}, "url"),
        ("ext", "a", {}, "url"),
        ("ext", "a", {"url": "http://127.0.0.1:1/", "routes": ["no-slash"]}, "routes"),
        ("ext", "a", {"url": "http://127.0.0.1:1/", "ttl_seconds": 0}, "ttl_seconds"),
        ("ext", "bad id!", {"url": "http://127.0.0.1:1/"}, "instance_id"),
        ("ext", "a", {"url": "http://127.0.0.1:1/", "routes": "/v1/ext"}, "routes"),
        ("ext", "a", {"url": "http://127.0.0.1:1/", "routes": ["/v1/e%d" % i for i in range(33)]}, "routes"),
        ("ext", "a", {"url": "http://127.0.0.1:1/", "routes": ["/v1/ext", ""]}, "routes"),
        ("ext", "a", {"url": "http://127.0.0.1:1/", "tags": ["ok", 5]}, "tags"),
        ("ext", "a", {"url": "http://127.0.0.1:1/", "tags": ["x" * 257]}, "tags"),
        ("ext", "a", {"url": "http://127.0.0.1:1/", "tags": ["a\u0000b"]}, "tags"),
        ("ext", "a", {"url": "http://127.0.0.1:1/", "health_path": "health"}, "health_path"),
    ]
    for module, instance, body, field in cases:
        r = put_instance(keel, ext, module, instance, **body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert field in [e["field"] for e in r.json()["errors"]], r.text
    bad_name = service_token(keel, "x")
    r = requests.put(f"{keel.url('registry')}/v1/registry/modules/Bad_Name/instances/a",
                     json={"url": "http://127.0.0.1:1/"}, headers=bearer(bad_name), timeout=10)
    assert r.status_code in (403, 422)


def test_an_instance_filter_by_an_unknown_status_is_422(keel):
    ext = service_token(keel, "ext")
    assert put_instance(keel, ext, "ext", "a", url="http://127.0.0.1:1/").status_code == 200
    for status in ("up", "PASSING", ""):
        r = instances(keel, ext, "ext", status=status)
        assert r.status_code == 422 and r.headers["Content-Type"].startswith("application/problem+json"), r.text
        assert r.json()["errors"] == [{"field": "status", "message": "must be passing or critical"}]
    assert [i["instance_id"] for i in instances(keel, ext, "ext", status="passing").json()["items"]] == ["a"]


def test_route_prefixes_belong_to_one_module(keel):
    ext = service_token(keel, "ext")
    other = service_token(keel, "other")
    assert put_instance(keel, ext, "ext", "a", url="http://127.0.0.1:1/", routes=["/v1/auth/steal"]).status_code == 409
    assert put_instance(keel, ext, "ext", "a", url="http://127.0.0.1:1/", routes=["/v1/ext"]).status_code == 200
    assert put_instance(keel, other, "other", "a", url="http://127.0.0.1:1/", routes=["/v1/ext"]).status_code == 409
    assert put_instance(keel, other, "other", "a", url="http://127.0.0.1:1/", routes=["/v1/ext/deeper"]).status_code == 409
    assert put_instance(keel, other, "other", "a", url="http://127.0.0.1:1/", routes=["/v1/other"]).status_code == 200


def test_keels_paths_and_names_are_reserved(keel, upstream_factory):
    ext = service_token(keel, "ext")
    u = upstream_factory("ext")
    for reserved in ("/", "/health", "/health/live", "/health/x", "/metrics", "/openapi.json", "/.well-known/jwks.json",
                     "/admin", "/admin/users", "/v1/stream", "/v1/stream/tickets", "/v1"):
        r = put_instance(keel, ext, "ext", "a", url=u.url, routes=[reserved])
        assert r.status_code == 409, (reserved, r.text)
    for unnormalized in ("//", "/v1/ext/", "/v1//ext", "/v1/./ext", "/v1/../health", "/v1/%65xt", "/v1/ext/.."):
        r = put_instance(keel, ext, "ext", "a", url=u.url, routes=[unnormalized])
        assert r.status_code == 422, (unnormalized, r.text)
    # Nothing was claimed: /health/x is keel's 404, not the third party's.
    assert requests.get(keel.url("gateway") + "/health/x", timeout=10).status_code == 404
    assert u.hits == 0
    # keel's module names are keel's, whoever asks (an admin included).
    email = f"adm-{uuid.uuid4().hex[:6]}@example.com"
    keel.cli("user", "create", "--email", email, "--password-stdin", "--admin", input="correct horse battery\n")
    admin = requests.post(keel.url("auth") + "/v1/auth/login", timeout=30,
                          json={"email": email, "password": "correct horse battery"}).json()["access_token"]
    for name in ("gateway", "auth", "memory", "registry", "billing", "events"):
        r = put_instance(keel, admin, name, "impostor", url=u.url)
        assert r.status_code == 403, (name, r.text)
    listed = requests.get(keel.url("registry") + "/v1/registry/modules/auth/instances", headers=bearer(admin),
                          timeout=10).json()["items"]
    assert all(i["instance_id"] != "impostor" for i in listed)


def test_gateway_routes_balances_and_passes_identity(keel, upstream_factory):
    a, b = upstream_factory("a"), upstream_factory("b")
    ext = service_token(keel, "ext")
    for name, u in (("a", a), ("b", b)):
        assert put_instance(keel, ext, "ext", name, url=u.url, routes=["/v1/ext"]).status_code == 200
    reg = user_token(keel)
    tok = reg["access_token"]
    # The routing change reaches the gateway within a second.
    assert wait_until(lambda: requests.get(keel.url("gateway") + "/v1/ext/hello", headers=bearer(tok),
                                           timeout=10).status_code == 200, timeout=1.5)
    seen = set()
    for _ in range(20):
        r = requests.get(keel.url("gateway") + "/v1/ext/hello?x=1", headers={**bearer(tok), "X-Keel-User-Id": "forged",
                         "X-Request-Id": "rid-1", "X-Forwarded-For": "10.9.8.7"}, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["path"] == "/v1/ext/hello?x=1"
        seen.add(body["upstream"])
        assert r.headers["X-Request-Id"] == "rid-1"
    assert seen == {"a", "b"}
    headers = a.seen[-1]
    assert headers["x-keel-user-id"] == reg["user"]["id"]
    assert headers["x-keel-roles"] == "user"
    assert headers["x-request-id"] == "rid-1"
    assert headers["x-forwarded-for"] == "10.9.8.7, 127.0.0.1"
    assert headers["traceparent"].startswith("00-")
    # Bodies pass through, whatever their type.
    r = requests.post(keel.url("gateway") + "/v1/ext/echo", data=b"plain text", headers={**bearer(tok),
                      "Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 200 and r.json()["body"] == "plain text"
    # HEAD announces the length the upstream gave for the body a GET would have, and sends no body.
    direct = requests.head(a.url + "/v1/ext/hello", timeout=10)
    head = requests.head(keel.url("gateway") + "/v1/ext/hello", headers=bearer(tok), timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == direct.headers["Content-Length"] != "0"
    # No token, no entry.
    r = requests.get(keel.url("gateway") + "/v1/ext/hello", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a_dead_instance_is_routed_around(keel, upstream_factory):
    a, b = upstream_factory("a"), upstream_factory("b")
    ext = service_token(keel, "ext")
    for name, u in (("a", a), ("b", b)):
        put_instance(keel, ext, "ext", name, url=u.url, routes=["/v1/ext"], health_path="/health", ttl_seconds=60)
    tok = user_token(keel)["access_token"]
    wait_until(lambda: requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok), timeout=10).ok)
    b.stop()
    # Every request still succeeds: refused connections are retried on the live instance and ejected.
    for _ in range(20):
        r = requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok), timeout=10)
        assert r.status_code == 200 and r.json()["upstream"] == "a"
    # The health check turns it critical, then it is removed after the grace period.
    ext_tok = user_token(keel)["access_token"]
    assert wait_until(lambda: any(i["instance_id"] == "b" and i["status"] == "critical"
                                  for i in instances(keel, ext_tok, "ext").json()["items"]), timeout=3)
    assert wait_until(lambda: all(i["instance_id"] != "b" for i in instances(keel, ext_tok, "ext").json()["items"]),
                      timeout=6)
    types = [r[0] for r in keel.query("SELECT type FROM observability_events WHERE type LIKE 'keel.registry.%'")]
    assert "keel.registry.instance.registered" in types and "keel.registry.instance.deregistered" in types


def test_ttl_expiry_stops_routing_and_heartbeats_renew(keel, upstream_factory):
    a = upstream_factory("a")
    ext = service_token(keel, "ext")
    put_instance(keel, ext, "ext", "a", url=a.url, routes=["/v1/ext"], ttl_seconds=1)
    tok = user_token(keel)["access_token"]
    assert wait_until(lambda: requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok), timeout=10).ok)
    hb = f"{keel.url('registry')}/v1/registry/modules/ext/instances/a/heartbeat"
    assert requests.post(hb, headers=bearer(ext), timeout=10).status_code == 200
    assert requests.post(f"{keel.url('registry')}/v1/registry/modules/ext/instances/nope/heartbeat",
                         headers=bearer(ext), timeout=10).status_code == 404
    # Without heartbeats it lapses: critical, then the gateway answers 503 fast instead of hanging.
    assert wait_until(lambda: instances(keel, tok, "ext", status="critical").json()["items"], timeout=3)
    r = wait_until(lambda: (lambda resp: resp if resp.status_code == 503 else None)(
        requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok), timeout=10)), timeout=2)
    assert r is not None and r.headers["Content-Type"].startswith("application/problem+json")
    assert "Retry-After" in r.headers
    types = [row[0] for row in keel.query("SELECT type FROM observability_events WHERE type = 'keel.registry.instance.expired'")]
    assert types
    # A heartbeat brings it back while it is critical; once removed (grace 2 s) it registers again.
    if requests.post(hb, headers=bearer(ext), timeout=10).status_code == 404:
        assert put_instance(keel, ext, "ext", "a", url=a.url, routes=["/v1/ext"], ttl_seconds=30).status_code == 200
    assert wait_until(lambda: requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok), timeout=10).ok)


def test_a_passing_health_check_does_not_revive_an_instance_whose_ttl_lapsed(keel, upstream_factory):
    """Only heartbeats renew a TTL: an instance that stopped heartbeating turns critical when its TTL lapses and
    is removed after the grace period (2 s here), although its health endpoint keeps answering 200."""
    a = upstream_factory("a")
    ext = service_token(keel, "ext")
    assert put_instance(keel, ext, "ext", "a", url=a.url, routes=["/v1/ext"], health_path="/health",
                        ttl_seconds=1).status_code == 200
    tok = user_token(keel)["access_token"]
    assert wait_until(lambda: requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok), timeout=10).ok)
    statuses = []

    def gone():
        items = [i for i in instances(keel, tok, "ext").json()["items"] if i["instance_id"] == "a"]
        statuses.append(items[0]["status"] if items else None)
        return not items

    assert wait_until(gone, timeout=6, step=0.1), statuses  # TTL 1 s + grace 2 s, checked every 0.2 s
    # Once critical it stayed critical until it went, while its health checks kept passing all along.
    first_critical = statuses.index("critical")
    assert set(statuses[first_critical:]) == {"critical", None}, statuses
    assert a.healthy and a.health_checks >= 3
    r = requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok), timeout=10)
    assert r.status_code == 503 and r.headers["Content-Type"].startswith("application/problem+json")


def test_unreachable_module_is_a_fast_502(keel):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed_port = s.getsockname()[1]
    s.close()
    ext = service_token(keel, "ext")
    put_instance(keel, ext, "ext", "a", url=f"http://127.0.0.1:{closed_port}", routes=["/v1/ext"], ttl_seconds=60)
    tok = user_token(keel)["access_token"]
    assert wait_until(lambda: requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok),
                                           timeout=10).status_code != 404)  # routed
    start = time.time()
    r = requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok), timeout=10)
    assert r.status_code == 502 and time.time() - start < 2
    assert r.headers["Content-Type"].startswith("application/problem+json")


def test_an_upstream_that_never_answers_is_a_504_at_the_upstream_timeout(keel_factory):
    k = keel_factory(env={"KEEL_GATEWAY_UPSTREAM_TIMEOUT_MS": "300"}).start()
    release = threading.Event()
    # Reads each request's head and says nothing until the test ends.
    silent = ScriptedUpstream(lambda conn, head: release.wait(30) and False)
    try:
        assert put_instance(k, service_token(k, "silent"), "silent", "a", url=silent.url, routes=["/v1/silent"],
                            ttl_seconds=60).status_code == 200
        tok = user_token(k)["access_token"]
        url = k.url("gateway") + "/v1/silent/x"
        assert wait_until(lambda: requests.get(url, headers=bearer(tok), timeout=10).status_code != 404)  # routed
        for method in ("GET", "POST"):
            start = time.time()
            r = requests.request(method, url, json={} if method == "POST" else None, headers=bearer(tok), timeout=10)
            assert r.status_code == 504 and time.time() - start < 3, (method, r.status_code, time.time() - start)
            assert r.headers["Content-Type"].startswith("application/problem+json")
            body = r.json()
            assert body["status"] == 504 and body["detail"] == "module silent did not answer in time", body
    finally:
        release.set()
        silent.close()


def RawUpstream(reply):
    """An upstream that reads a request's head, sends `reply` whatever it asked, and closes at once: the close
    comes in the same breath as the last bytes."""
    return ScriptedUpstream(lambda conn, head: conn.sendall(reply))


def test_an_upstream_that_closes_is_seen_at_once(keel):
    """An HTTP/1.0 answer without Content-Length ends where the upstream closes; an upstream that says
    100 Continue and closes gave no answer. The gateway must see either close at once, not at its upstream
    timeout (30 s)."""
    tok = user_token(keel)["access_token"]
    body = b"until the close" * 100
    cases = [("closer", RawUpstream(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body), 200),
             ("quitter", RawUpstream(b"HTTP/1.1 100 Continue\r\n\r\n"), 502)]
    try:
        for module, upstream, status in cases:
            assert put_instance(keel, service_token(keel, module), module, "a", url=upstream.url,
                                routes=[f"/v1/{module}"]).status_code == 200
            assert wait_until(lambda: requests.get(keel.url("gateway") + f"/v1/{module}/x", headers=bearer(tok),
                                                   timeout=10).status_code != 404, timeout=2)
            for _ in range(5):
                start = time.time()
                r = requests.get(keel.url("gateway") + f"/v1/{module}/x", headers=bearer(tok), timeout=10)
                assert r.status_code == status, (module, r.status_code, r.text[:200])
                if status == 200:
                    assert r.content == body
                assert time.time() - start < 2, module
    finally:
        for _, upstream, _ in cases:
            upstream.close()


# Name lookups through LD_PRELOAD: getaddrinfo() for names containing "slow-dns" sleeps 5 s (a hanging DNS
# server); names containing "fast-dns" are 127.0.0.1; the rest are looked up as usual.
SLOW_DNS = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>
int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints, struct addrinfo** res) {
  static int (*real)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  if (!real) real = dlsym(RTLD_NEXT, "getaddrinfo");
  if (node && strstr(node, "slow-dns")) {
    sleep(5);
    return EAI_NONAME;
  }
  if (node && strstr(node, "fast-dns")) return real("127.0.0.1", service, hints, res);
  return real(node, service, hints, res);
}
"""


def test_names_are_resolved_and_a_hanging_lookup_is_a_timely_504(keel_factory, upstream_factory, tmp_path):
    src, lib = tmp_path / "slow_dns.c", tmp_path / "slow_dns.so"
    src.write_text(SLOW_DNS)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src), "-ldl"], check=True)
    # One I/O thread: every lookup starts from the same thread.
    k = keel_factory(env={"LD_PRELOAD": str(lib), "KEEL_GATEWAY_CONNECT_TIMEOUT_MS": "500"},
                     extra_args=["--io-threads", "1"]).start()
    tok = user_token(k)["access_token"]
    # A name that resolves is routed to.
    u = upstream_factory("named")
    named = service_token(k, "named")
    assert put_instance(k, named, "named", "a", url=u.url.replace("127.0.0.1", "localhost"),
                        routes=["/v1/named"]).status_code == 200
    assert wait_until(lambda: requests.get(k.url("gateway") + "/v1/named/x", headers=bearer(tok),
                                           timeout=10).status_code == 200, timeout=2)
    # A lookup that hangs ends at the connect timeout.
    ext = service_token(k, "ext")
    assert put_instance(k, ext, "ext", "a", url="http://slow-dns.example:8080", routes=["/v1/ext"],
                        ttl_seconds=60).status_code == 200
    fast = upstream_factory("fast")
    assert put_instance(k, service_token(k, "fast"), "fast", "a", url=fast.url.replace("127.0.0.1", "a.fast-dns.test"),
                        routes=["/v1/fast"]).status_code == 200
    assert wait_until(lambda: requests.get(k.url("gateway") + "/v1/ext/x", headers=bearer(tok),
                                           timeout=10).status_code != 404, timeout=2)
    start = time.time()
    r = requests.get(k.url("gateway") + "/v1/ext/x", headers=bearer(tok), timeout=10)
    assert r.status_code == 504 and time.time() - start < 2, (r.status_code, time.time() - start)
    assert r.headers["Content-Type"].startswith("application/problem+json")
    # That lookup still hangs (5 s): a name never looked up before is not held up behind it.
    r = requests.get(k.url("gateway") + "/v1/fast/x", headers=bearer(tok), timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    assert time.time() - start < 2


def test_https_upstreams_are_proxied_with_their_certificate_checked(keel_factory, upstream_factory, tmp_path):
    trusted, untrusted = self_signed(tmp_path, "trusted"), self_signed(tmp_path, "untrusted")
    # keel trusts only the first certificate (OpenSSL's SSL_CERT_FILE stands for the system's CAs).
    k = keel_factory(env={"SSL_CERT_FILE": trusted[0]}).start()
    good, bad = upstream_factory("good", tls=trusted), upstream_factory("bad", tls=untrusted)
    tok = user_token(k)["access_token"]
    for name, u in (("good", good), ("bad", bad)):
        svc = service_token(k, name)
        assert put_instance(k, svc, name, "a", url=u.url, routes=[f"/v1/{name}"]).status_code == 200
    assert wait_until(lambda: requests.get(k.url("gateway") + "/v1/good/x", headers=bearer(tok),
                                           timeout=10).status_code == 200, timeout=2)
    r = requests.post(k.url("gateway") + "/v1/good/echo?q=1", data=b"over tls", headers={**bearer(tok),
                      "Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 200 and r.json() == {"upstream": "good", "path": "/v1/good/echo?q=1",
                                                 "method": "POST", "body": "over tls"}
    assert good.seen[-1]["x-keel-user-id"] and good.seen[-1]["host"] == f"localhost:{good.port}"
    # A certificate nobody vouches for is refused: the request fails fast and never reaches that upstream.
    r = requests.get(k.url("gateway") + "/v1/bad/x", headers=bearer(tok), timeout=10)
    assert r.status_code == 502 and r.headers["Content-Type"].startswith("application/problem+json")
    assert bad.hits == 0


def test_blocking_queries_return_on_change_and_wait_without_one(keel, upstream_factory):
    ext = service_token(keel, "ext")
    tok = user_token(keel)["access_token"]
    r = instances(keel, tok, "ext")
    assert r.status_code == 200 and r.json()["items"] == []  # watchable before it appears
    index = int(r.headers["X-Keel-Index"])
    start = time.time()
    r = instances(keel, tok, "ext", index=index, wait="1s")
    assert 0.9 <= time.time() - start < 3 and int(r.headers["X-Keel-Index"]) == index
    timer = threading.Timer(0.5, lambda: put_instance(keel, ext, "ext", "a", url="http://127.0.0.1:1/"))
    timer.start()
    start = time.time()
    r = instances(keel, tok, "ext", index=index, wait="30s")
    elapsed = time.time() - start
    timer.join()
    assert 0.4 <= elapsed < 2, elapsed
    assert int(r.headers["X-Keel-Index"]) > index
    assert [i["instance_id"] for i in r.json()["items"]] == ["a"]
    assert instances(keel, tok, "ext", index=index, wait="61s").status_code == 422
    assert instances(keel, tok, "ext", index="x").status_code == 422
    # Many watchers of one index: one change wakes them all at once.
    index = int(r.headers["X-Keel-Index"])
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        watches = [pool.submit(instances, keel, tok, "ext", index=index, wait="30s") for _ in range(20)]
        time.sleep(0.5)
        changed = time.time()
        put_instance(keel, ext, "ext", "b", url="http://127.0.0.1:1/")
        answers = [w.result(timeout=10) for w in watches]
        assert time.time() - changed < 2
    assert all(int(a.headers["X-Keel-Index"]) > index and len(a.json()["items"]) == 2 for a in answers)


def test_deregistration(keel, upstream_factory):
    a = upstream_factory("a")
    ext = service_token(keel, "ext")
    put_instance(keel, ext, "ext", "a", url=a.url, routes=["/v1/ext"], tags=["blue"], version="1.2.0")
    tok = user_token(keel)["access_token"]
    assert [i["instance_id"] for i in instances(keel, tok, "ext", tag="blue").json()["items"]] == ["a"]
    assert instances(keel, tok, "ext", tag="green").json()["items"] == []
    assert [i["version"] for i in instances(keel, tok, "ext", version="1.2.0").json()["items"]] == ["1.2.0"]
    r = requests.delete(f"{keel.url('registry')}/v1/registry/modules/ext/instances/a", headers=bearer(ext), timeout=10)
    assert r.status_code == 204
    assert instances(keel, tok, "ext").json()["items"] == []
    assert wait_until(lambda: requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok),
                                           timeout=10).status_code == 503, timeout=1.5)


def test_rate_limits_per_user(keel_factory):
    k = keel_factory(env={"KEEL_GATEWAY_USER_RATE": "1", "KEEL_GATEWAY_USER_BURST": "3"}).start()
    tok = user_token(k)["access_token"]
    codes = [requests.get(k.url("gateway") + "/v1/auth/me", headers=bearer(tok), timeout=10) for _ in range(5)]
    assert [c.status_code for c in codes[:3]] == [200, 200, 200]
    assert codes[4].status_code == 429 and int(codes[4].headers["Retry-After"]) >= 1


def test_rate_limits_per_address_on_public_routes(keel_factory):
    """Requests without a token are limited per client address: past the burst, 429 with Retry-After."""
    k = keel_factory(env={"KEEL_GATEWAY_IP_RATE": "0.2", "KEEL_GATEWAY_IP_BURST": "3"}).start()
    answers = [requests.get(k.url("gateway") + "/.well-known/jwks.json", timeout=10) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429], [a.text for a in answers]
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert answers[3].headers["Content-Type"].startswith("application/problem+json")
    assert "address" in answers[3].json()["detail"]
    # Another public route from the same address shares the budget; the module's own port is not limited.
    assert requests.post(k.url("gateway") + "/v1/auth/login", json={"email": "a@example.com", "password": "x" * 8},
                         timeout=10).status_code == 429
    assert requests.get(k.url("auth") + "/.well-known/jwks.json", timeout=10).status_code == 200


def test_gateway_refuses_a_logged_out_token_within_a_second(keel):
    reg = user_token(keel)
    tok = reg["access_token"]
    assert requests.get(keel.url("gateway") + "/v1/registry/modules", headers=bearer(tok), timeout=10).ok
    assert requests.post(keel.url("gateway") + "/v1/auth/logout", headers=bearer(tok), timeout=10).status_code == 204
    start = time.time()
    assert wait_until(lambda: requests.get(keel.url("gateway") + "/v1/registry/modules", headers=bearer(tok),
                                           timeout=10).status_code == 401, timeout=3)
    assert time.time() - start < 2  # the contract's second, with room for a loaded machine


def test_split_deployment_over_one_database(keel_factory, database_url, tmp_path):
    data = str(tmp_path / "shared")
    (tmp_path / "shared").mkdir()
    auth_only = keel_factory(data_dir=data, services="auth").start()
    rest = keel_factory(data_dir=data, services="gateway,registry,memory,billing,events").start()
    # The gateway process has no auth module: it finds the auth process through the registry and proxies.
    r = wait_until(lambda: (lambda resp: resp if resp.status_code == 201 else None)(
        requests.post(rest.url("gateway") + "/v1/auth/register",
                      json={"email": "split@example.com", "password": "correct horse battery"}, timeout=30)),
        timeout=5)
    assert r is not None
    tok = r.json()["access_token"]
    me = requests.get(rest.url("gateway") + "/v1/auth/me", headers=bearer(tok), timeout=10)
    assert me.status_code == 200 and me.json()["email"] == "split@example.com"
    assert requests.get(rest.url("registry") + "/v1/registry/modules", headers=bearer(tok), timeout=10).ok
    # Stopping the auth process deregisters it: the gateway answers 503, not a hang.
    assert auth_only.stop() == 0
    r = wait_until(lambda: (lambda resp: resp if resp.status_code == 503 else None)(
        requests.post(rest.url("gateway") + "/v1/auth/login",
                      json={"email": "split@example.com", "password": "correct horse battery"}, timeout=10)),
        timeout=2)
    assert r is not None


def test_third_parties_get_identity_not_the_token_and_cannot_claim_broad_prefixes(keel, upstream_factory):
    a = upstream_factory("a")
    ext = service_token(keel, "ext")
    for broad in ("/", "/v1"):
        assert put_instance(keel, ext, "ext", "a", url=a.url, routes=[broad]).status_code == 409
    assert put_instance(keel, ext, "ext", "a", url=a.url, routes=["/v1/ext"]).status_code == 200
    tok = user_token(keel)["access_token"]
    assert wait_until(lambda: requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok), timeout=10).ok)
    requests.get(keel.url("gateway") + "/v1/ext/x", headers={**bearer(tok), "X_Keel_User_Id": "forged",
                                                              "Expect": "100-continue"}, timeout=10)
    seen = a.seen[-1]
    assert "authorization" not in seen
    assert "x_keel_user_id" not in seen and seen["x-keel-user-id"] != "forged"
    assert put_instance(keel, ext, "ext", "b", url=a.url, metadata={"k": "a\u0000"}).status_code == 422
    assert put_instance(keel, ext, "ext", "b", url=a.url, tags=["x\u0000"]).status_code == 422


def test_instance_urls_may_not_point_at_metadata_link_local_or_keels_own_ports(keel_factory, upstream_factory,
                                                                                tmp_path):
    src, lib = tmp_path / "names.c", tmp_path / "names.so"
    src.write_text(SLOW_DNS)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src), "-ldl"], check=True)
    k = keel_factory(env={"LD_PRELOAD": str(lib), "KEEL_REGISTRY_DENY": "10.0.0.0/8, 192.0.2.0/24"}).start()
    ext = service_token(k, "ext")
    auth_port = int(k.url("auth").rsplit(":", 1)[1])
    refused = ["http://169.254.169.254/", "http://169.254.1.1:8080/", "http://[::ffff:169.254.169.254]/",
               "http://[fe80::1]:80/", "http://0.0.0.0:9000/", "http://224.0.0.1:80/", "http://10.1.2.3:9000/",
               "http://192.0.2.7/", f"http://127.0.0.1:{auth_port}/", f"http://localhost:{auth_port}/",
               f"http://[::1]:{auth_port}/"]
    for url in refused:
        r = put_instance(k, ext, "ext", "a", url=url, routes=["/v1/ext"])
        assert r.status_code == 422, (url, r.text)
        assert [e["field"] for e in r.json()["errors"]] == ["url"], r.text
    # Loopback on another port is a module on the same machine: allowed.
    u = upstream_factory("ext")
    assert put_instance(k, ext, "ext", "a", url=u.url, routes=["/v1/ext"]).status_code == 200
    # A name is judged on the addresses it resolves to, when the gateway connects: one resolving to keel's own
    # auth port on loopback is never connected to (auth would answer), and the answer is a fast 502.
    sneaky = service_token(k, "sneaky")
    assert put_instance(k, sneaky, "sneaky", "a", url=f"http://own.fast-dns.test:{auth_port}",
                        routes=["/v1/auth-lookalike"]).status_code == 200
    tok = user_token(k)["access_token"]
    assert wait_until(lambda: requests.get(k.url("gateway") + "/v1/auth-lookalike/x", headers=bearer(tok),
                                           timeout=10).status_code != 404, timeout=3)
    start = time.time()
    r = requests.get(k.url("gateway") + "/v1/auth-lookalike/x", headers=bearer(tok), timeout=10)
    assert r.status_code == 502 and time.time() - start < 1, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/problem+json")
    # A bad deny list is a configuration error.
    p = keel_factory(env={"KEEL_REGISTRY_DENY": "10.0.0.0/33"}).cli("serve", check=False)
    assert p.returncode == 2 and "registry.deny" in p.stderr


def test_none_of_keels_six_ports_is_a_third_partys_instance_url(keel):
    """Each of keel's own ports on this machine, from the gateway's to the events module's, is refused as an
    instance URL: a third party registered there would get requests (and tokens) meant for one of them."""
    ext = service_token(keel, "ext")
    for module in ("gateway", "auth", "memory", "registry", "billing", "events"):
        port = int(keel.url(module).rsplit(":", 1)[1])
        r = put_instance(keel, ext, "ext", "a", url=f"http://127.0.0.1:{port}/", routes=["/v1/ext"])
        assert r.status_code == 422, (module, r.status_code, r.text)
        assert [e["field"] for e in r.json()["errors"]] == ["url"], (module, r.text)
    assert instances(keel, ext, "ext").json()["items"] == []


def identity_lines(request):
    """The header lines of a request a proxy received whose names read as X-Keel-* however spelled."""
    return [(k.lower().replace("_", "-"), v) for k, v in request["fields"]
            if k.lower().replace("_", "-").startswith("x-keel-")]


def test_the_gateway_sends_third_parties_exactly_one_identity_whatever_the_client_claims(keel):
    up = RecordingUpstream()
    try:
        assert put_instance(keel, service_token(keel, "ext"), "ext", "a", url=up.url,
                            routes=["/v1/ext"]).status_code == 200
        reg = user_token(keel)
        tok, uid = reg["access_token"], reg["user"]["id"]
        assert wait_until(lambda: requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok),
                                               timeout=10).status_code == 200, timeout=2)
        spoofs = [{"X-Keel-User-Id": "forged", "X-Keel-Roles": "admin"},
                  {"X_Keel_User_Id": "forged", "X_Keel_Roles": "admin"},
                  {"x-keel-user-id": "forged", "x-keel-roles": "admin"},
                  {"X-KEEL-USER-ID": "forged", "X-KEEL-ROLES": "admin"},
                  {"x_Keel-user_ID": "forged", "X-keel_ROLES": "admin"},
                  {"X-Keel-User-Id": uid, "X-Keel-Roles": "user,admin", "X-Keel-Service": "billing"}]
        for spoof in spoofs:
            before = len(up.requests)
            r = requests.get(keel.url("gateway") + "/v1/ext/who", headers={**bearer(tok), **spoof}, timeout=10)
            assert r.status_code == 200, (spoof, r.text)
            assert len(up.requests) == before + 1
            got = up.requests[-1]
            assert sorted(identity_lines(got)) == [("x-keel-roles", "user"), ("x-keel-user-id", uid)], (spoof, got)
            assert up.field_lines(got, "X-Keel-User-Id") == [uid]
    finally:
        up.close()


def test_without_edge_auth_anonymous_requests_reach_third_parties_with_no_identity(keel_factory):
    """With edge_auth off a third party's routes are public: the gateway checks no token and vouches for
    nobody, so whatever X-Keel-* headers a client sends, the upstream gets none."""
    k = keel_factory(env={"KEEL_GATEWAY_EDGE_AUTH": "false"}).start()
    up = RecordingUpstream()
    try:
        assert put_instance(k, service_token(k, "ext"), "ext", "a", url=up.url, routes=["/v1/ext"]).status_code == 200
        assert wait_until(lambda: requests.get(k.url("gateway") + "/v1/ext/x", timeout=10).status_code == 200,
                          timeout=2)
        for spoof in ({"X-Keel-User-Id": "forged", "X-Keel-Roles": "admin"},
                      {"X_Keel_User_Id": "forged", "x_keel_roles": "admin"},
                      {"x-KEEL-user-ID": "forged", "X-Keel_Roles": "admin"}):
            r = requests.get(k.url("gateway") + "/v1/ext/who", headers=spoof, timeout=10)
            assert r.status_code == 200, (spoof, r.text)
            assert identity_lines(up.requests[-1]) == [], (spoof, up.requests[-1])
    finally:
        up.close()


def route_ext_to(keel, up):
    """Registers `up` as module "ext" on /v1/ext and waits until the gateway routes there; a user's token."""
    assert put_instance(keel, service_token(keel, "ext"), "ext", "a", url=up.url,
                        routes=["/v1/ext"]).status_code == 200
    tok = user_token(keel)["access_token"]
    assert wait_until(lambda: requests.get(keel.url("gateway") + "/v1/ext/x", headers=bearer(tok),
                                           timeout=10).status_code == 200, timeout=2)
    return tok


def test_every_method_reaches_a_third_party_as_sent(keel):
    up = RecordingUpstream()
    try:
        tok = route_ext_to(keel, up)
        for method in ("PUT", "PATCH", "DELETE", "OPTIONS", "POST", "GET"):
            target = f"/v1/ext/items/{method.lower()}?q=1&r=a%20b"
            body = b"" if method == "GET" else f'{{"method": "{method}"}}'.encode()
            before = len(up.requests)
            r = requests.request(method, keel.url("gateway") + target, data=body or None, timeout=10,
                                 headers={**bearer(tok), "Content-Type": "application/json"})
            assert r.status_code == 200, (method, r.status_code, r.text)
            assert r.json() == {"method": method, "target": target}
            assert len(up.requests) == before + 1, method  # once, not retried
            got = up.requests[-1]
            assert (got["method"], got["target"], got["body"]) == (method, target, body)
            if body:
                assert up.field_lines(got, "Content-Type") == ["application/json"]
    finally:
        up.close()


def test_an_instance_urls_path_is_the_base_of_every_request_it_gets(keel):
    """An instance URL may carry a path, with or without a trailing slash: a request for /v1/ext/items?q=1 reaches
    http://host:port/ as /v1/ext/items?q=1 and http://host:port/base/ as /base/v1/ext/items?q=1, never with a
    doubled slash."""
    up = RecordingUpstream()
    try:
        ext = service_token(keel, "ext")
        tok = user_token(keel)["access_token"]
        for url, expected in ((up.url + "/", "/v1/ext/items?q=1"), (up.url + "/base/", "/base/v1/ext/items?q=1"),
                              (up.url + "/base", "/base/v1/ext/items?q=1"), (up.url, "/v1/ext/items?q=1")):
            assert put_instance(keel, ext, "ext", "a", url=url, routes=["/v1/ext"]).status_code == 200

            def reached():
                r = requests.get(keel.url("gateway") + "/v1/ext/items?q=1", headers=bearer(tok), timeout=10)
                return r.status_code == 200 and up.requests[-1]["target"] == expected

            # The gateway follows the registration within a second.
            assert wait_until(reached, timeout=2), (url, up.requests[-1]["target"] if up.requests else None)
    finally:
        up.close()


def test_a_post_an_upstream_dropped_is_not_sent_to_another_instance(keel):
    """A request that is not idempotent goes to one instance once: when that instance takes it and drops the
    connection without answering (it may have done the write), the answer is 502, and no other instance gets it."""
    dropped = []

    def drop_posts(conn, head):
        if head.startswith("POST "):
            dropped.append(head.split(" ", 2)[1])
            return False  # closes without a word
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        return False  # no keep-alive: every request reaches it on a new connection

    dropper, recorder = ScriptedUpstream(drop_posts), RecordingUpstream()
    try:
        ext = service_token(keel, "ext")
        for name, u in (("a", dropper), ("b", recorder)):
            assert put_instance(keel, ext, "ext", name, url=u.url, routes=["/v1/ext"]).status_code == 200
        s = requests.Session()
        s.headers.update(bearer(user_token(keel)["access_token"]))
        gateway = keel.url("gateway")
        # Both instances are in the gateway's table: GETs reach each of them.
        assert wait_until(lambda: s.get(gateway + "/v1/ext/warm", timeout=10).ok and dropper.connections > 0
                          and len(recorder.requests) > 0, timeout=3)
        for i in range(10):  # one connection, one I/O thread: the instances take turns
            before = len(recorder.requests)
            r = s.post(gateway + f"/v1/ext/orders/{i}", json={"n": i}, timeout=10)
            if dropped:
                assert dropped == [f"/v1/ext/orders/{i}"], dropped  # sent once
                assert r.status_code == 502 and r.headers["Content-Type"].startswith("application/problem+json"), \
                    (r.status_code, r.text)
                assert len(recorder.requests) == before, "the dropped POST was sent again to another instance"
                break
            assert r.status_code == 200 and len(recorder.requests) == before + 1, (r.status_code, r.text)
        else:
            pytest.fail("no POST reached the instance that drops them")
    finally:
        dropper.close()
        recorder.close()


def test_hop_by_hop_fields_and_proxy_credentials_stay_at_the_gateway(keel):
    """Fields meant for the next hop alone (RFC 9110 7.6.1), Proxy-Authorization among them (credentials for a
    proxy, not for whoever is behind it), are not passed on to a third party; end-to-end fields are."""
    up = RecordingUpstream()
    try:
        tok = route_ext_to(keel, up)
        hop = {"Proxy-Authorization": "Basic cHJveHk6c2VjcmV0", "Keep-Alive": "timeout=5", "TE": "trailers",
               "Trailer": "X-Checksum", "Connection": "keep-alive"}
        r = requests.get(keel.url("gateway") + "/v1/ext/hop", headers={**bearer(tok), **hop, "X-Custom": "kept",
                         "Accept-Language": "fr"}, timeout=10)
        assert r.status_code == 200, r.text
        got = up.requests[-1]
        names = {k.lower() for k, _ in got["fields"]}
        assert not names & {"proxy-authorization", "keep-alive", "te", "trailer"}, got["fields"]
        assert up.field_lines(got, "X-Custom") == ["kept"] and up.field_lines(got, "Accept-Language") == ["fr"]
    finally:
        up.close()


def test_a_third_partys_public_routes_need_no_token_at_the_gateway(keel):
    """A module may name routes the gateway lets through without a token (a webhook, a status page): those
    methods and paths exactly, below its own prefixes; they reach it with no identity, and everything else
    of it still needs a token."""
    up = RecordingUpstream()
    try:
        tok = service_token(keel, "hooks")
        for bad in (["/v1/hooks/in"], ["FETCH /v1/hooks/in"], ["POST /v1/other/in"], ["POST /v1/hooks/../x"],
                    ["GET /v1/hooks/{id"], ["POST /v1/hooks/a{id}"], ["POST /v1/hooks/in/"], "POST /v1/hooks/in",
                    [f"POST /v1/hooks/{i}" for i in range(65)]):
            r = put_instance(keel, tok, "hooks", "a", url=up.url, routes=["/v1/hooks"], public_routes=bad)
            assert r.status_code == 422 and r.headers["Content-Type"].startswith("application/problem+json"), bad
            assert [e["field"] for e in r.json()["errors"]] == ["public_routes"], (bad, r.text)
        public = ["POST /v1/hooks/incoming", "GET /v1/hooks/status/{id}"]
        r = put_instance(keel, tok, "hooks", "a", url=up.url, routes=["/v1/hooks"], public_routes=public)
        assert r.status_code == 200 and r.json()["public_routes"] == public, r.text
        listed = instances(keel, tok, "hooks").json()["items"]
        assert [i["public_routes"] for i in listed] == [public]
        gw = keel.url("gateway")
        assert wait_until(lambda: requests.post(gw + "/v1/hooks/incoming", json={"event": "push"},
                                                timeout=10).status_code == 200, timeout=3)
        got = up.requests[-1]
        assert (got["method"], got["target"], got["body"]) == ("POST", "/v1/hooks/incoming", b'{"event": "push"}')
        assert not [k for k, _ in got["fields"] if k.lower().startswith("x-keel-")], got["fields"]
        # A client that sends its keel token anyway (SDKs attach it to everything) does not hand it over.
        user = user_token(keel)["access_token"]
        r = requests.post(gw + "/v1/hooks/incoming", json={}, headers=bearer(user), timeout=10)
        assert r.status_code == 200 and up.field_lines(up.requests[-1], "Authorization") == []
        r = requests.get(gw + "/v1/hooks/status/42", timeout=10)
        assert r.status_code == 200 and r.json() == {"method": "GET", "target": "/v1/hooks/status/42"}
        # Everything else needs a token: other paths, other methods on a public path, deeper paths.
        before = len(up.requests)
        for method, path in (("GET", "/v1/hooks/private"), ("GET", "/v1/hooks/incoming"),
                             ("DELETE", "/v1/hooks/status/42"), ("GET", "/v1/hooks/status/42/more"),
                             ("GET", "/v1/hooks/status")):
            r = requests.request(method, gw + path, timeout=10)
            assert r.status_code == 401, (method, path, r.status_code)
        assert len(up.requests) == before
        # Registering again without them takes them back.
        assert put_instance(keel, tok, "hooks", "a", url=up.url, routes=["/v1/hooks"]).status_code == 200
        assert wait_until(lambda: requests.post(gw + "/v1/hooks/incoming", json={}, timeout=10).status_code == 401,
                          timeout=3)
    finally:
        up.close()


def test_keels_modules_register_their_public_routes(keel):
    """keel's processes register each module's public routes with it, so a gateway of another process (or
    another keel version) lets them through."""
    tok = user_token(keel)["access_token"]
    auth = instances(keel, tok, "auth").json()["items"]
    assert auth and set(auth[0]["public_routes"]) == {
        "POST /v1/auth/register", "POST /v1/auth/login", "POST /v1/auth/refresh", "GET /.well-known/jwks.json",
        "GET /.well-known/openid-configuration", "GET /v1/auth/setup"}
    memory = instances(keel, tok, "memory").json()["items"]
    assert memory and memory[0]["public_routes"] == []


def test_paths_below_the_gateways_own_routes_are_404_not_routed_to_itself(keel):
    """The gateway registers /openapi.json as its own; a path below it is served by no route: 404 at once
    (it once went round the gateway's own router, to a 429 or a stack overflow)."""
    tok = user_token(keel)["access_token"]
    for headers in ({}, bearer(tok)):
        for method in ("GET", "POST", "DELETE"):
            r = requests.request(method, keel.url("gateway") + "/openapi.json/x", headers=headers, timeout=10)
            assert r.status_code in (401, 404) and r.headers["Content-Type"].startswith("application/problem+json"), \
                (method, headers, r.status_code)
    assert requests.get(keel.url("gateway") + "/openapi.json/x", headers=bearer(tok), timeout=10).status_code == 404
    assert requests.get(keel.url("gateway") + "/health/live", timeout=10).status_code == 200
