"""SIGTERM under load loses nothing (CONTRACT.md, "Shutdown"): eight clients, half on keep-alive
connections and half opening a connection per request, write memories through the gateway while keel gets
SIGTERM; every request is answered or refused at connect, never cut off, and every acknowledged write is
there after a restart. Twenty rounds."""
import signal
import threading
import time
import uuid

import pytest
import requests
import urllib3

from conftest import wait_until


def _outcome(error):
    """'refused' when the connection was never made; 'lost' when a sent request got no answer."""
    cause = error.args[0] if error.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        cause = cause.reason
    if isinstance(cause, urllib3.exceptions.NewConnectionError) or "Connection refused" in str(error):
        return "refused"
    return "lost"


def test_sigterm_under_load_answers_every_request_it_took(keel_factory, backend):
    if backend != "sqlite":
        pytest.skip("the drain is the HTTP server's; one backend is enough")
    k = keel_factory()
    k.start()
    token = requests.post(k.url("auth") + "/v1/auth/register", timeout=30,
                          json={"email": f"d{uuid.uuid4().hex[:8]}@example.com",
                                "password": "correct horse battery"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    k.stop()
    acknowledged, lost, answered, refused = [], [], 0, 0
    started = time.time()
    for rnd in range(20):
        if time.time() - started > 150:
            break
        k.start()
        lock = threading.Lock()
        stop = threading.Event()
        counts = {"answered": 0, "refused": 0}

        def client(n, keep_alive):
            session = requests.Session() if keep_alive else None
            i = 0
            while not stop.is_set():
                i += 1
                body = {"content": f"round {rnd} client {n} write {i}"}
                headers = dict(auth) if keep_alive else dict(auth, Connection="close")
                try:
                    post = session.post if session else requests.post
                    r = post(k.url("gateway") + "/v1/memories", json=body, headers=headers, timeout=10)
                except requests.RequestException as e:
                    kind = _outcome(e)
                    with lock:
                        if kind == "refused":
                            counts["refused"] += 1
                        else:
                            lost.append(f"round {rnd} client {n}: {e}")
                    return  # the server is going away: this client is done
                with lock:
                    counts["answered"] += 1
                    if r.status_code == 201:
                        acknowledged.append(r.json()["id"])

        threads = [threading.Thread(target=client, args=(n, n % 2 == 0)) for n in range(8)]
        for t in threads:
            t.start()
        assert wait_until(lambda: counts["answered"] >= 40, timeout=10)  # the load is under way
        assert k.stop(signal.SIGTERM, timeout=15) == 0
        stop.set()
        for t in threads:
            t.join(timeout=15)
        answered += counts["answered"]
        refused += counts["refused"]
    k.start()
    stored = set()
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = requests.get(k.url("memory") + "/v1/memories", params=params, headers=auth, timeout=10).json()
        stored.update(m["id"] for m in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    print(f"drain: {rnd + 1} rounds, {answered} answered, {refused} refused at connect, {len(lost)} lost, "
          f"{len(acknowledged)} acknowledged writes")
    assert not lost, lost[:5]
    assert set(acknowledged) <= stored, f"{len(set(acknowledged) - stored)} acknowledged writes missing"
    assert answered > 100
