"""Fleet tests: several keel processes over one PostgreSQL, each in its own network namespace behind a router
(see fleetlib.py for the topology). Every test prints its figures as a `FLEET <name>: ...` line, repeated in
the "fleet figures" section of the summary, and then asserts the bars an operator would check.

Run as root:  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/fleet
(KEEL_BIN picks the binary, default build/keel; KEEL_FLEET_KEEP_LOGS=1 keeps the keel logs.)
"""
import base64
import os
import random
import secrets
import signal
import time

import pytest

from . import fleetlib
from .fleetlib import KeelProcess, bearer, new_session, register, report

if os.geteuid() != 0:
    pytest.skip("fleet tests build network namespaces and run PostgreSQL as another user: run them as root",
                allow_module_level=True)
_netns_reason = fleetlib.netns_unavailable_reason()
if _netns_reason:
    pytest.skip(f"fleet tests need network namespaces: {_netns_reason}", allow_module_level=True)


def check_bars(bars):
    """bars: (description, ok) pairs; fails naming every bar missed."""
    missed = [d for d, ok in bars if not ok]
    assert not missed, "bars missed: " + "; ".join(missed)


def word():
    return "".join(random.choice("bcdfghjklmnpqrstvwxz") for _ in range(10))


# --- 1 --------------------------------------------------------------------------------------------------

def test_sunny_day(fleet):
    s = new_session()
    g1, g2 = fleet.gateway("h1"), fleet.gateway("h2")
    email = f"sunny-{fleet.prefix}-{secrets.token_hex(3)}@fleet.test"
    r = s.post(g1 + "/v1/auth/register", json={"email": email, "password": fleetlib.PASSWORD}, timeout=15)
    assert r.status_code == 201, r.text
    user_id = r.json()["user"]["id"]
    r = s.post(g1 + "/v1/auth/login", json={"email": email, "password": fleetlib.PASSWORD}, timeout=15)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]

    t0 = time.monotonic()
    me = s.get(g2 + "/v1/auth/me", headers=bearer(token), timeout=5)
    me_ms = (time.monotonic() - t0) * 1000
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user_id and me.json()["email"] == email

    w = word()
    r = s.post(g1 + "/v1/memories", headers=bearer(token), timeout=5,
               json={"content": f"the fleet remembers {w} by the window", "tags": ["fleet"]})
    assert r.status_code == 201, r.text
    memory_id = r.json()["id"]
    t_written = time.monotonic()
    found_after = None
    last = None
    while time.monotonic() < t_written + 5:
        last = s.post(g2 + "/v1/memories/search", headers=bearer(token), json={"query": w}, timeout=5)
        if last.status_code == 200 and memory_id in [i["memory"]["id"] for i in last.json()["items"]]:
            found_after = time.monotonic() - t_written
            break
        time.sleep(0.1)
    report(f"FLEET sunny: register+login via h1 ok, me via h2 {me_ms:.0f} ms, memory written via h1 found by "
           f"full-text search via h2 after {found_after if found_after is None else round(found_after, 2)} s")
    assert found_after is not None, f"search through h2 never found the memory: {last.status_code} {last.text[:300]}"


# --- 2 --------------------------------------------------------------------------------------------------

def test_sigkill_host_under_load(fleet):
    res = fleetlib.measure_sigkill(fleet)  # the scenario and how it is timed: fleetlib.measure_sigkill
    load, h3 = res["load"], res["h3"]
    out_of_routing, last_view, joined = res["out_of_routing"], res["last_view"], res["joined"]
    served_by_others = res["served_by_others"]

    records = load.records
    failed_idem = load.failures(True)
    failed_other = load.failures(False)
    breakdown = fleetlib.failure_breakdown
    fmt = lambda v: "none" if v is None else f"{v:.1f}"
    report(f"FLEET sigkill: out_of_routing_s={fmt(out_of_routing)} (bar <= 3) "
           f"failed_idempotent={len(failed_idem)} (bar 0) failed_other={len(failed_other)} "
           f"rejoin_s={fmt(joined)} (bar <= 5) requests={len(records)} ok_after_kill_before_restart="
           f"{served_by_others} harness_errors={load.harness_errors}")
    if failed_idem or failed_other:
        report(f"FLEET sigkill: failures by kind {breakdown(failed_idem + failed_other)}")
    check_bars([
        (f"h3 still routable {fmt(out_of_routing)} s after SIGKILL (bar 3 s; last view {last_view})",
         out_of_routing is not None and out_of_routing <= 3.0),
        (f"{len(failed_idem)} idempotent requests failed (bar 0): {breakdown(failed_idem)}", not failed_idem),
        (f"restarted h3 took no traffic within 5 s (took {fmt(joined)} s; alive={h3.alive()}; "
         f"log: {h3.log_tail(5)})", joined is not None and joined <= 5.0),
        (f"load harness errors {load.harness_errors}", load.harness_errors == 0),
    ])


# --- 3 --------------------------------------------------------------------------------------------------

def test_partition_gateway_host_from_db(fleet):
    res = fleetlib.measure_partition(fleet)  # the scenario and how it is timed: fleetlib.measure_partition
    TIMEOUT_S = fleetlib.PARTITION_CLIENT_TIMEOUT_S
    answers, silent, recovered, recovered_s = res["answers"], res["silent"], res["recovered"], res["recovered_s"]
    slowest, hangs, bad, by_status = res["slowest"], res["hangs"], res["bad"], res["by_status"]
    h1, pid_before = res["h1"], res["pid_before"]
    report(f"FLEET partition: silent h1->db={silent.get('h1->db')} db->h1={silent.get('db->h1')} "
           f"answers={len(answers)} slowest_s={slowest:.2f} (bar <= 6) hangs={len(hangs)} "
           f"bad_answers={len(bad)} (bar 0) recovered_s="
           f"{'none' if recovered_s is None else f'{recovered_s:.2f}'} (bar <= 2) by_status={by_status}")
    check_bars([
        (f"the cut was not silent: {silent}", silent.get("h1->db") == "timeout" and silent.get("db->h1") == "timeout"),
        (f"an answer took {slowest:.2f} s (bar 6 s; client timeout {TIMEOUT_S} s)", slowest <= 6.0),
        (f"answers neither 2xx nor 503 problem+json: {bad[:5]}", not bad),
        (f"not recovered within 2 s of healing: {recovered}", recovered_s is not None and recovered_s <= 2.0),
        ("h1's keel was restarted or died", h1.alive() and h1.popen.pid == pid_before),
    ])


# --- 4 --------------------------------------------------------------------------------------------------

def test_logout_propagates(fleet):
    s = new_session()
    u = register(fleet, f"logout-{fleet.prefix}-{secrets.token_hex(3)}@fleet.test", "h1")
    g1, g2 = fleet.gateway("h1"), fleet.gateway("h2")
    assert s.get(g2 + "/v1/auth/me", headers=bearer(u.token), timeout=5).status_code == 200
    r = s.post(g1 + "/v1/auth/logout", headers=bearer(u.token), timeout=5)
    assert r.status_code == 204, r.text
    t_logout = time.monotonic()
    refused = {}
    paths = ["/v1/auth/me", "/v1/memories?limit=1"]
    seen = {}
    i = 0
    # At most ~30 polls (the user's plan allows 30 requests a minute; a refused token is checked before quota).
    while len(refused) < len(paths) and time.monotonic() < t_logout + 3:
        path = paths[i % len(paths)]
        i += 1
        if path in refused:
            continue
        r = s.get(g2 + path, headers=bearer(u.token), timeout=5)
        seen[path] = r.status_code
        if r.status_code == 401:
            refused[path] = (time.monotonic() - t_logout, r.headers.get("WWW-Authenticate", ""))
        else:
            time.sleep(0.1)
    worst = max((v[0] for v in refused.values()), default=None)
    report("FLEET logout: refused at h2 after "
           + ", ".join(f"{p.split('?')[0]}={v[0]:.2f}s" for p, v in refused.items())
           + f" (bar <= 1) last statuses={seen}")
    check_bars([
        (f"token still accepted at h2 3 s after logout: {seen}", len(refused) == len(paths)),
        (f"refused only after {worst:.2f} s (bar 1 s)" if worst is not None else "never refused",
         worst is not None and worst <= 1.0),
        ("401 without WWW-Authenticate: Bearer error=\"invalid_token\"",
         all('invalid_token' in v[1] for v in refused.values())),
    ])


# --- 5 --------------------------------------------------------------------------------------------------

def test_quota_across_two_gateways(fleet):
    limit = fleetlib.QUOTA_PER_MINUTE
    most, least = fleetlib.quota_bounds(limit)  # 30 + 2% + 2 = 32; the plan's 30 usable too (28)
    bars = []
    for mode in ("alternating", "burst"):
        res = fleetlib.quota_scenario(fleet, mode)
        lag = max(res["lag"].values())
        report(f"FLEET quota {mode}: succeeded={res['ok']} of {res['ok'] + res['refused'] + len(res['other'])} "
               f"(first 60: {res['first60_ok']}; bar {least}..{most}) refused_429={res['refused']} "
               f"other={len(res['other'])} refuse_lag_s h1={res['lag']['h1']:.2f} h2={res['lag']['h2']:.2f} "
               f"(bar <= 1)")
        bars += [
            (f"{mode}: the measurement straddled a minute boundary", res["same_minute"]),
            (f"{mode}: {res['ok']} requests succeeded (bar at most {most})", res["ok"] <= most),
            (f"{mode}: only {res['ok']} requests succeeded (the plan allows {limit}; bar at least {least})",
             res["ok"] >= least),
            (f"{mode}: answers neither 2xx nor 429: {res['other'][:5]}", not res["other"]),
            (f"{mode}: a gateway still admitted requests {lag:.2f} s after the quota was used up (bar 1 s)",
             lag <= 1.0),
            (f"{mode}: not both gateways answered 429 a second after the quota was used up: {res['late_429']}",
             all(res["late_429"].values())),
            (f"{mode}: a 429 without Retry-After", res["retry_after"]),
        ]
    check_bars(bars)


# --- 6 --------------------------------------------------------------------------------------------------

START_AT = ("import os, sys, time\n"
            "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
            "os.execv(sys.argv[2], sys.argv[2:])\n")


def test_simultaneous_start(fleet):
    database = fleet.create_database(f"keel_sim_{fleet.prefix}")
    layout = [("h1", "gateway,registry,events"), ("h2", "gateway,registry,events"),
              ("h3", "auth,memory,billing"), ("h4", "auth,memory,billing")]
    failures, unclean, slowest, rounds_done = [], [], 0.0, 0
    t_test = time.monotonic()
    active_keys = None
    for rnd in range(1, 11):
        if time.monotonic() - t_test > 150:
            failures.append(f"round {rnd}: not run, the test's 150 s budget is spent")
            break
        procs = [KeelProcess(fleet, host, services, database, port_base=9000, tag=f"sim-r{rnd}-{host}")
                 for host, services in layout]
        start_at = time.time() + 0.5
        for p in procs:  # each sleeps until start_at, then becomes keel (same pid)
            argv = p.argv()
            p.start(argv[:4] + ["/usr/bin/python3", "-c", START_AT, f"{start_at:.6f}"] + argv[4:])
        t_start = time.monotonic() + max(0.0, start_at - time.time())
        deadline = t_start + 15
        healthy = {}
        sess = new_session()
        while len(healthy) < len(procs) and time.monotonic() < deadline:
            for p in procs:
                if p.tag in healthy or not p.alive():
                    continue
                if p.healthy_now(sess):
                    healthy[p.tag] = time.monotonic() - t_start
            if any(not p.alive() and p.tag not in healthy for p in procs):
                break
            time.sleep(0.05)
        for p in procs:
            if p.tag not in healthy:
                why = f"exited {p.popen.returncode}" if not p.alive() else "not healthy in 15 s"
                failures.append(f"round {rnd} {p.host}: {why}: {p.log_tail(3)}")
        slowest = max([slowest, *healthy.values()])
        if rnd == 1:
            active_keys = fleet.psql(f"keel_sim_{fleet.prefix}",
                                     "SELECT count(*) FROM signing_keys WHERE status = 'active'").strip()
        for p in procs:
            if p.alive():
                p.popen.send_signal(signal.SIGTERM)
        for p in procs:
            rc = p.stop(timeout=15)
            if p.tag in healthy and rc != 0:
                unclean.append(f"round {rnd} {p.host}: exit {rc}: {p.log_tail(4)}")
        rounds_done = rnd
    report(f"FLEET simultaneous_start: rounds={rounds_done} starts={rounds_done * 4} failed_starts={len(failures)} "
           f"(bar 0) slowest_healthy_s={slowest:.2f} active_signing_keys_after_round1={active_keys} "
           f"unclean_stops={len(unclean)}")
    for f in failures[:8] + unclean[:4]:
        report(f"FLEET simultaneous_start: {f}")
    # SIGTERM drains and exits 0 (CONTRACT.md, "Shutdown"), also right after a start.
    check_bars([(f"{len(failures)} failed starts: {failures[:3]}", not failures),
                (f"{len(unclean)} processes did not exit 0 on SIGTERM: {unclean[:2]}", not unclean)])


# --- 7 --------------------------------------------------------------------------------------------------

def _run_until_exit(p, timeout=15):
    p.start()
    try:
        return p.popen.wait(timeout=timeout)
    except Exception:
        p.stop(signal.SIGKILL)
        return None  # still running: it did not refuse to start


def _key_texts(raw):
    return [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")]


def _actionable_line(log, source, hints=("KEEL_AUTH_MASTER_KEY", "master_key_file")):
    """The one line that names where the key came from and how to share one."""
    for line in log.splitlines():
        if source in line and "master key" in line.lower() and any(h in line for h in hints):
            return line
    return None


def test_master_key_mismatch_is_actionable(fleet):
    raw = secrets.token_bytes(32)
    wrong = fleet.tmp / "wrong-master.key"
    fd = os.open(wrong, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_key_texts(raw)[1] + "\n")
    p = KeelProcess(fleet, "h4", "auth", fleet.database, port_base=9100, tag="mismatch-file",
                    env={"KEEL_AUTH_MASTER_KEY_FILE": str(wrong)})
    rc = _run_until_exit(p)
    log = p.log()
    line = _actionable_line(log, str(wrong))
    leaked = any(k in log for k in _key_texts(raw))

    q = KeelProcess(fleet, "h4", "auth", fleet.database, port_base=9100, tag="mismatch-nokey", key="none")
    rc_none = _run_until_exit(q)
    created = sorted(x.name for x in q.data_dir.glob("master.key*"))
    line_none = _actionable_line(q.log(), str(q.data_dir / "master.key"))

    first = lambda text: next((l for l in text.splitlines() if l.startswith("keel:")), text.strip()[-200:])
    report(f"FLEET master_key: wrong key file -> exit={rc} actionable={line is not None} "
           f"error='{first(log)[:240]}'")
    report(f"FLEET master_key: no key -> exit={rc_none} created={created or 'nothing'} "
           f"actionable={line_none is not None} error='{first(q.log())[:240]}'")
    check_bars([
        (f"a process with another master key did not exit non-zero (exit {rc})", rc not in (None, 0)),
        ("no one-line error names the key file and how to share the key (KEEL_AUTH_MASTER_KEY or "
         f"master_key_file): {first(log)}", line is not None),
        ("the log shows the master key", not leaked),
        (f"a process with no master key created {created} although the database holds sealed signing keys",
         not created),
        (f"a process with no master key did not exit non-zero (exit {rc_none})", rc_none not in (None, 0)),
        (f"no one-line error names {q.data_dir / 'master.key'} and how to share the key: {first(q.log())}",
         line_none is not None),
    ])


def test_master_key_from_env(fleet):
    """KEEL_AUTH_MASTER_KEY (base64, as `base64` prints it) instead of a key file."""
    p = KeelProcess(fleet, "h4", "auth", fleet.database, port_base=9100, tag="envkey", key="env")
    p.start()
    try:
        up = p.wait_healthy(time.monotonic() + 20)
        created = sorted(x.name for x in p.data_dir.glob("master.key*"))
        login = me = None
        if up:
            s = new_session()
            u = fleet.users.users[0]
            r = s.post(p.url("auth") + "/v1/auth/login", json={"email": u.email, "password": u.password}, timeout=15)
            login = r.status_code
            if r.status_code == 200:
                me = s.get(fleet.gateway("h1") + "/v1/auth/me", headers=bearer(r.json()["access_token"]),
                           timeout=5).status_code
    finally:
        rc = p.stop()
    leaked = any(k in p.log() for k in _key_texts(fleet.master_key_raw))

    raw = secrets.token_bytes(32)
    q = KeelProcess(fleet, "h4", "auth", fleet.database, port_base=9100, tag="envkey-wrong", key="none",
                    env={"KEEL_AUTH_MASTER_KEY": base64.b64encode(raw).decode()})
    rc_wrong = _run_until_exit(q)
    line = _actionable_line(q.log(), "KEEL_AUTH_MASTER_KEY", hints=("master_key_file", "master.key"))
    leaked_wrong = any(k in q.log() for k in _key_texts(raw))
    first = lambda text: next((l for l in text.splitlines() if l.startswith("keel:")), text.strip()[-200:])
    report(f"FLEET master_key_env: started={up} key_file_created={created or 'no'} login_on_it={login} "
           f"token_accepted_at_h1={me} stop_exit={rc}; wrong env key -> exit={rc_wrong} "
           f"actionable={line is not None} error='{first(q.log())[:200]}'")
    check_bars([
        (f"keel with KEEL_AUTH_MASTER_KEY did not come up: {p.log_tail(5)}", up),
        (f"it created a key file anyway: {created}", not created),
        (f"login on it: {login}, its token at h1's gateway: {me}", login == 200 and me == 200),
        ("the log shows the master key", not leaked and not leaked_wrong),
        (f"a wrong KEEL_AUTH_MASTER_KEY did not exit non-zero (exit {rc_wrong})", rc_wrong not in (None, 0)),
        (f"no one-line error names KEEL_AUTH_MASTER_KEY as the source and how to share: {first(q.log())}",
         line is not None),
    ])
