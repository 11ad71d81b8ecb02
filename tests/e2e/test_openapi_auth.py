"""Every route /openapi.json lists refuses an anonymous caller with 401 unless it is declared public (no
"security"), and keel documents every route it serves (it logs any it serves but does not list)."""
import re

import requests

PARAM = re.compile(r"\{[^}]+\}")
SAMPLE = "0190a6b4-0000-7000-8000-000000000001"  # a well-formed id that names nothing


def test_every_documented_route_refuses_anonymous_callers_unless_public(keel_factory):
    k = keel_factory().start()
    doc = requests.get(k.url("gateway") + "/openapi.json", timeout=10).json()
    checked, public = 0, []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            url = k.url("gateway") + PARAM.sub(SAMPLE, path)
            secured = op.get("security", doc.get("security", []))
            r = requests.request(method.upper(), url, json={} if method in ("post", "put", "patch") else None,
                                 timeout=10)
            if not secured:
                public.append(f"{method.upper()} {path}")
                assert r.status_code != 401, (method, path, r.status_code)
                continue
            assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
            assert r.headers["Content-Type"].startswith("application/problem+json"), (method, path)
            assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), (method, path)
            checked += 1
    assert checked >= 25, checked
    # The public ones are the ones a client needs before it has a token, and the documents about keel.
    allowed_public = {"POST /v1/auth/register", "POST /v1/auth/login", "POST /v1/auth/refresh",
                      "GET /.well-known/jwks.json", "GET /.well-known/openid-configuration", "GET /openapi.json",
                      "GET /health", "GET /health/live", "GET /metrics",
                      # the admin console's static pages: what they show comes from admin API calls
                      "GET /admin", "GET /admin/{file}",
                      # whether any admin exists, for the console's sign-in page
                      "GET /v1/auth/setup"}
    assert set(public) <= allowed_public, set(public) - allowed_public
    k.stop()
    assert "route missing from /openapi.json" not in k.log()
