"""The foundation: health on every port, problem+json errors, request ids, clean shutdown, config and
data-directory resolution, persistence across restarts."""
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import KEEL_BIN, MODULES, Keel, wait_until


def assert_problem(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    return body


def test_health_on_all_six_ports(keel, backend):
    for i, module in enumerate(MODULES):
        r = requests.get(f"http://127.0.0.1:{keel.port_base + i}/health", timeout=5)
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ok"
        assert body["service"] == module
        assert body["version"]
        db = body["checks"]["database"]
        assert db["status"] == "ok"
        assert isinstance(db["latency_ms"], (int, float)) and db["latency_ms"] >= 0
        assert body["checks"]["writes"] == {"status": "ok"}
        assert requests.get(keel.url(module) + "/health/live", timeout=5).status_code == 200


def test_metrics_count_requests_by_route_and_status(keel):
    for _ in range(3):
        requests.get(keel.url("memory") + "/health", timeout=5)
    requests.get(keel.url("memory") + "/nope", timeout=5)
    r = requests.get(keel.url("memory") + "/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    assert 'keel_http_requests_total{module="memory",route="/health",method="GET",status="200"} 3' in text
    assert 'keel_http_requests_total{module="memory",route="unmatched",method="GET",status="404"} 1' in text
    assert 'keel_http_request_duration_seconds_bucket{module="memory",route="/health",method="GET",le="+Inf"} 3' in text
    assert "process_resident_memory_bytes " in text


def test_unknown_route_is_404_problem(keel):
    assert_problem(requests.get(keel.url("auth") + "/no/such/route", timeout=5), 404)


def test_wrong_method_is_405_with_allow(keel):
    r = requests.delete(keel.url("registry") + "/health", timeout=5)
    assert_problem(r, 405)
    assert "GET" in r.headers["Allow"]


def test_body_over_limit_is_413(keel):
    r = requests.post(keel.url("memory") + "/health", data=b"x" * (1024 * 1024 + 1),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert_problem(r, 413)
    # The process is unharmed.
    assert requests.get(keel.url("memory") + "/health", timeout=5).status_code == 200


def test_request_ids(keel):
    r = requests.get(keel.url("billing") + "/health", headers={"X-Request-Id": "req-123.abc"}, timeout=5)
    assert r.headers["X-Request-Id"] == "req-123.abc"
    r = requests.get(keel.url("billing") + "/health", headers={"X-Request-Id": "bad id\u00e9"}, timeout=5)
    assert r.headers["X-Request-Id"] != "bad id\u00e9" and len(r.headers["X-Request-Id"]) >= 16
    a = requests.get(keel.url("billing") + "/nope", timeout=5).headers["X-Request-Id"]
    b = requests.get(keel.url("billing") + "/nope", timeout=5).headers["X-Request-Id"]
    assert a != b
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = requests.get(keel.url("events") + "/health", headers={"traceparent": tp}, timeout=5)
    assert r.headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    # The access log has one JSON line for that request, carrying its id and trace.
    assert wait_until(lambda: "req-123.abc" in keel.log())  # written once the request was answered
    lines = [json.loads(l) for l in keel.log().splitlines() if l.startswith("{")]
    req_lines = [l for l in lines if l.get("msg") == "request" and l.get("request_id") == "req-123.abc"]
    assert len(req_lines) == 1 and req_lines[0]["status"] == 200 and req_lines[0]["module"] == "billing"


def test_the_start_up_line_says_whether_the_io_fast_paths_are_on(keel):
    """src/keel/http/fast: on in a normal build on Debian 12's Boost; off, with the reason, in the plain-I/O
    builds (the sanitizers') or on another Asio."""
    start = [json.loads(l) for l in keel.log().splitlines() if l.startswith("{") and '"keel serving"' in l]
    assert len(start) == 1, keel.log()
    state = start[0]["fast_paths"]
    if os.environ.get("KEEL_E2E_PLAIN_IO") == "1":
        assert state.startswith("off ("), state
    else:
        assert state == "on", state


def test_sigterm_exits_zero(keel):
    assert keel.stop(signal.SIGTERM) == 0
    assert '"keel stopped"' in keel.log()


def test_only_the_named_services_start(keel_factory):
    k = keel_factory(services="auth,memory").start()
    assert requests.get(k.url("auth") + "/health", timeout=5).json()["service"] == "auth"
    assert requests.get(k.url("memory") + "/health", timeout=5).json()["service"] == "memory"
    for m in ("gateway", "registry", "billing", "events"):
        try:
            requests.get(k.url(m) + "/health", timeout=1)
            raise AssertionError(f"{m} should not be listening")
        except requests.ConnectionError:
            pass


def test_a_process_without_billing_registers_users_with_their_billing_accounts(keel_factory):
    # Billing joins auth's "user created" hook in every process, not only where billing serves: the account
    # commits with the user, so billing elsewhere (or started later) finds it.
    k = keel_factory(services="auth").start()
    r = requests.post(k.url("auth") + "/v1/auth/register",
                      json={"email": f"hook-{os.urandom(4).hex()}@example.com", "password": "correct horse battery"},
                      timeout=10)
    assert r.status_code == 201, r.text
    user_id = r.json()["user"]["id"]
    rows = k.query("SELECT plan, balance FROM billing_accounts WHERE user_id = $1", user_id)
    assert [(row[0], int(row[1])) for row in rows] == [("free", 0)]
    types = [row[0] for row in k.query("SELECT type FROM observability_events WHERE subject = $1", user_id)]
    assert "keel.billing.account.created" in types and "keel.auth.user.registered" in types


def test_bad_options_are_one_line_errors_with_exit_2(tmp_path):
    cases = [
        ["serve", "--port-base", "abc"],
        ["serve", "--services", "auth,nonsense"],
        ["serve", "--no-such-flag"],
        ["serve", "--database", "mysql://x"],
    ]
    for args in cases:
        p = subprocess.run([KEEL_BIN] + args, capture_output=True, text=True, timeout=10, cwd=tmp_path)
        assert p.returncode == 2, (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    p = subprocess.run([KEEL_BIN, "serve", "--port-base", "abc"], capture_output=True, text=True, cwd=tmp_path)
    assert "port_base" in p.stderr
    p = subprocess.run([KEEL_BIN, "serve", "--services", "auth,nonsense"], capture_output=True, text=True, cwd=tmp_path)
    assert "nonsense" in p.stderr
    cfg = tmp_path / "bad.toml"
    cfg.write_text("port_base = \"high\"\n")
    p = subprocess.run([KEEL_BIN, "serve", "--config", str(cfg)], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2 and "port_base" in p.stderr


def test_version_and_help():
    p = subprocess.run([KEEL_BIN, "version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("keel ")
    p = subprocess.run([KEEL_BIN, "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "serve" in p.stdout and "migrate" in p.stdout


def test_port_conflict_is_reported(keel_factory):
    a = keel_factory().start()
    b = keel_factory()
    b.port_base = a.port_base
    b.start(wait=False)
    assert b.proc.wait(timeout=10) != 0
    assert "cannot listen" in b.log()
    assert requests.get(a.url() + "/health", timeout=5).status_code == 200


def _opened_location(keel):
    for line in keel.log().splitlines():
        if line.startswith("{") and json.loads(line).get("msg") == "database opened":
            return json.loads(line)["location"]
    raise AssertionError("no 'database opened' log line:\n" + keel.log())


def test_one_config_one_database_from_any_working_directory(tmp_path):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "keel.toml").write_text('data_dir = "state"\n')
    elsewhere_a = tmp_path / "a"
    elsewhere_b = tmp_path / "b" / "deeper"
    elsewhere_a.mkdir()
    elsewhere_b.mkdir(parents=True)

    k1 = Keel(config=conf_dir / "keel.toml", cwd=elsewhere_a).start()
    loc1 = _opened_location(k1)
    assert k1.stop() == 0
    k2 = Keel(config=conf_dir / "keel.toml", cwd=elsewhere_b).start()
    loc2 = _opened_location(k2)
    assert k2.stop() == 0

    assert loc1 == loc2 == str(conf_dir / "state" / "keel.db")
    assert (conf_dir / "state" / "keel.db").exists()
    assert not (elsewhere_a / "state").exists() and not (elsewhere_b / "state").exists()
    # The second start found the schema the first one created.
    assert "migrations applied" in k1.log() and "migrations applied" not in k2.log()


def test_migrate_command_is_idempotent(tmp_path, database_url):
    args = [KEEL_BIN, "migrate", "--data-dir", str(tmp_path)]
    if database_url:
        args += ["--database", database_url]
    first = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_init" in first.stdout
    second = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert second.returncode == 0 and "applied" not in second.stdout.replace("schema version", "")


def test_health_turns_503_when_the_disk_fills_and_back_when_it_has_room(keel_factory, backend):
    """A data directory on a small tmpfs this test mounts: filling it turns /health to 503 "disk full" on every
    module within about a second while reads go on; freeing it brings 200 back within about a second, and
    writes succeed again without a restart."""
    import os
    if backend != "sqlite":
        pytest.skip("the data directory holds the database on SQLite")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tempfile.mkdtemp(prefix="keel-tmpfs-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt], capture_output=True, text=True)
    if mounted.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    k = None
    try:
        os.makedirs(mnt + "/data")
        k = keel_factory(data_dir=mnt + "/data")
        k.start()
        reg = requests.post(k.url("auth") + "/v1/auth/register", timeout=30,
                            json={"email": "full@example.com", "password": "correct horse battery"}).json()
        auth = {"Authorization": "Bearer " + reg["access_token"]}
        assert requests.post(k.url("memory") + "/v1/memories", json={"content": "before"}, headers=auth,
                             timeout=10).status_code == 201
        filler = pathlib.Path(mnt) / "filler"
        with open(filler, "wb") as f:  # every byte the file system has left
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        full_at = time.time()
        failed_after = None
        while time.time() - full_at < 5:
            statuses = [requests.get(k.url(m) + "/health", timeout=5) for m in MODULES]
            if all(r.status_code == 503 for r in statuses):
                failed_after = time.time() - full_at
                break
            time.sleep(0.05)
        assert failed_after is not None, [r.text for r in statuses]
        body = statuses[0].json()
        assert body["status"] == "fail" and body["checks"]["writes"] == {"status": "fail", "reason": "disk full"}
        assert body["checks"]["database"]["status"] == "ok"  # reads go on
        r = requests.post(k.url("memory") + "/v1/memories", json={"content": "x" * 60000}, headers=auth, timeout=10)
        assert r.status_code == 503 and r.headers["Content-Type"].startswith("application/problem+json")
        assert requests.get(k.url("memory") + "/v1/memories", headers=auth, timeout=10).status_code == 200
        filler.unlink()
        freed_at = time.time()
        ok_after = None
        while time.time() - freed_at < 5:
            if all(requests.get(k.url(m) + "/health", timeout=5).status_code == 200 for m in MODULES):
                ok_after = time.time() - freed_at
                break
            time.sleep(0.05)
        assert ok_after is not None
        print(f"health: 503 {failed_after:.2f} s after the disk filled, 200 {ok_after:.2f} s after it had room")
        assert failed_after < 1.5 and ok_after < 1.5
        assert requests.post(k.url("memory") + "/v1/memories", json={"content": "after"}, headers=auth,
                             timeout=10).status_code == 201
    finally:
        if k:
            k.stop()
        subprocess.run(["umount", "-l", mnt], check=False)
        os.rmdir(mnt)


@pytest.mark.parametrize("where", ["file", "environment"])
def test_an_unknown_or_bad_module_setting_is_a_one_line_error_before_anything_opens(tmp_path, where):
    """Every module's settings are checked against their declarations at start, whichever modules run: a
    misspelt key or a bad value is exit 2 and one line naming it, and nothing is created."""
    cases = [("memory", "hnsw_mm", "32", "[memory] hnsw_mm: no such setting"),
             ("gateway", "user_rate", "-1", "[gateway] user_rate: expected a number from 0 to"),
             ("registry", "self_ttl_seconds", "1", "[registry] self_ttl_seconds: expected a whole number from 2")]
    for table, key, value, message in cases:
        data = tmp_path / f"{table}-{key}"
        args, env = [KEEL_BIN, "serve", "--services", "events", "--data-dir", str(data)], {}
        if where == "file":
            config = tmp_path / "keel.toml"
            config.write_text(f"[{table}]\n{key} = {value}\n")
            args += ["--config", str(config)]
        else:
            env[f"KEEL_{table.upper()}_{key.upper()}"] = value
        p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and p.stdout == "", (table, key, p.returncode, p.stdout)
        assert p.stderr.startswith("keel: " + message) and len(p.stderr.splitlines()) == 1, p.stderr
        assert not data.exists(), "the data directory was created before the settings were checked"


def test_keel_config_prints_the_effective_configuration_without_secrets(tmp_path):
    key = "c2VjcmV0LWtleS1zZWNyZXQta2V5LXNlY3JldC1rZXk="
    config = tmp_path / "keel.toml"
    config.write_text("[memory]\nhnsw_m = 32\n[gateway]\nuser_rate = 50\n")
    p = subprocess.run([KEEL_BIN, "config", "--config", str(config), "--data-dir", str(tmp_path / "d")],
                       env={"KEEL_AUTH_MASTER_KEY": key, "KEEL_DATABASE": "postgresql://keel:hunter2@db.example/keel"},
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert key not in out and "hunter2" not in out
    assert 'master_key = "REDACTED"' in out and "postgresql://keel:***@db.example/keel" in out
    for line in ("[memory]", "hnsw_m = 32", "hnsw_ef_search = 96  # default", "[gateway]", "user_rate = 50",
                 "[database]", "[registry]", "[billing]", "[events]", "[auth]", "access_ttl_seconds = 900  # default"):
        assert line in out.splitlines(), line
