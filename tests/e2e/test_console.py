"""The admin console's pages as the gateway serves them (the browser suite drives them): from the binary, with
a Content-Security-Policy that allows no inline script and no framing, and no inline script in the pages."""
import re

import requests


def test_the_console_is_served_from_the_binary_with_a_strict_policy(keel):
    base = keel.url("gateway")
    assert requests.get(base + "/admin", timeout=10).text == requests.get(base + "/admin/", timeout=10).text
    page = requests.get(base + "/admin/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'" and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "'none'" and directives["default-src"] == "'none'"
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    html = page.text
    # Every script is a file of the console's own: no inline script, no event handler attributes.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/admin/' in attrs and body.strip() == "" for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html)
    for path in re.findall(r'(?:src|href)="(/admin/[^"]+)"', html):
        asset = requests.get(base + path, timeout=10)
        assert asset.status_code == 200, path
        assert asset.headers["Content-Security-Policy"] == csp
    js = requests.get(base + "/admin/console.js", timeout=10)
    assert js.headers["Content-Type"].startswith("text/javascript")
    assert "localStorage" not in js.text  # the token stays in the page's memory
    missing = requests.get(base + "/admin/nope.js", timeout=10)
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("application/problem+json")


def test_creating_an_admin_says_where_the_console_is(keel):
    out = keel.cli("user", "create", "--email", "console-admin@example.com", "--password-stdin", "--admin",
                   input="admin password\n")
    assert "/admin/" in out.stderr and out.stdout.strip().startswith("{")
