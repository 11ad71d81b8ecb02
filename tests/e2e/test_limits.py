"""Limits one client cannot get around: open connections per address, and waiting requests per token."""
import socket
import threading
import time

import requests


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def open_socket(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def served(s):
    """Whether a request on this connection is answered (False: the server closed it at once)."""
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:  # the whole answer, so the next one starts clean
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            body += s.recv(4096)
        return head.startswith(b"HTTP/1.1 200")
    except (ConnectionResetError, BrokenPipeError):
        return False


def test_one_address_holds_at_most_its_share_of_connections(keel_factory):
    k = keel_factory(env={"KEEL_MAX_CONNECTIONS_PER_IP": "20"}).start()
    port = int(k.url("gateway").rsplit(":", 1)[1])
    held = [open_socket(port) for _ in range(20)]
    assert all(served(s) for s in held)
    extra = open_socket(port)  # the kernel accepts it; keel closes it without reading
    assert not served(extra)
    extra.close()
    # The cap is the gateway's, the public entry point: a module's own port is where gateways (each from one
    # address) send their users' requests, and is not capped.
    other = open_socket(int(k.url("auth").rsplit(":", 1)[1]))
    assert served(other)
    other.close()
    for s in held[:5]:
        s.close()
    deadline = time.time() + 3
    while True:  # the places come back as keel sees the closes
        fresh = open_socket(port)
        ok = served(fresh)
        if ok or time.time() > deadline:
            break
        fresh.close()
    assert ok
    assert all(served(s) for s in held[5:])  # the ones held were never disturbed
    for s in held[5:] + [fresh]:
        s.close()


def test_a_token_holds_at_most_its_budget_of_waiting_requests(keel_factory):
    k = keel_factory(env={"KEEL_LONG_POLLS_PER_CALLER": "3"}).start()
    svc = k.cli("token", "create", "--service", "poller").stdout.strip()
    other = k.cli("token", "create", "--service", "other").stdout.strip()
    events = k.url("events") + "/v1/events"
    latest = requests.get(events, headers=bearer(svc), timeout=10).json()["next_after"]
    registry = k.url("registry") + "/v1/registry/modules/nothing/instances"
    index = int(requests.get(registry, headers=bearer(svc), timeout=10).headers["X-Keel-Index"])

    for url, params in ((events, {"type": "never.posted", "after": latest, "wait": "5s"}),
                        (registry, {"index": index + 1000, "wait": "5s"})):
        results = []
        waiting = [threading.Thread(target=lambda: results.append(
            requests.get(url, params=params, headers=bearer(svc), timeout=30).status_code)) for _ in range(3)]
        for t in waiting:
            t.start()
        time.sleep(1.5)  # the three are waiting now (each waits 5 s)
        start = time.time()
        r = requests.get(url, params=params, headers=bearer(svc), timeout=30)
        assert r.status_code == 429 and time.time() - start < 1, r.text
        assert r.headers["Retry-After"] == "1"
        assert r.headers["Content-Type"].startswith("application/problem+json")
        # Another token has its own budget; a request that does not wait is never counted.
        assert requests.get(url, params={**params, "wait": "200ms"}, headers=bearer(other), timeout=30).status_code == 200
        assert requests.get(url, headers=bearer(svc), timeout=30).status_code == 200
        for t in waiting:
            t.join()
        assert results == [200, 200, 200]
        # Their places came back.
        assert requests.get(url, params={**params, "wait": "100ms"}, headers=bearer(svc), timeout=30).status_code == 200
