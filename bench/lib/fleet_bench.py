"""Parts 1-4 of bench/fleet.sh: the fleet issue's failure and limit bars, measured on the network-namespace fleet
of the fleet tests (tests/fleet/fleetlib.py: a router, PostgreSQL, gateway hosts h1 h2, module hosts h3 h4 and
a client namespace). The scenarios are the tests' own (fleetlib.measure_sigkill, measure_partition,
quota_scenario); this prints their figures next to the bars instead of asserting them.

Run as root: /usr/bin/python3 bench/lib/fleet_bench.py. Every request originates in the client namespace (the
harness moves this process there with setns before it starts any thread); the namespaces, processes and
files are removed at the end, also on Ctrl-C or SIGTERM. Exit status 0 when every part was measured (whether
or not it met its bar), 1 when a part could not be measured, 2 when the fleet could not be built.
"""
import os
import pathlib
import signal
import sys
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.fleet import fleetlib  # noqa: E402


def verdict(ok):
    return "ok" if ok else "MISSED"


def fmt(v, digits=2):
    return "none" if v is None else f"{v:.{digits}f}"


def part_sigkill(fleet):
    res = fleetlib.measure_sigkill(fleet)
    load = res["load"]
    out = res["out_of_routing"]
    idem, other = load.failures(True), load.failures(False)
    n_idem = sum(1 for r in load.records if r[4])
    print(f"1. SIGKILL of h3 (auth,memory,billing) under load through h1 and h2: no more routing to it after "
          f"{fmt(out)} s   (bar <= 3 s: {verdict(out is not None and out <= 3.0)})", flush=True)
    print(f"2. failed requests while h3 was killed and restarted ({len(load.records)} requests, 4 clients x 8/s, "
          f"from before the kill until 1 s after h3 took traffic again):", flush=True)
    print(f"   idempotent (GET)          {len(idem)} of {n_idem}   (bar 0: {verdict(not idem)})", flush=True)
    print(f"   non-idempotent (POST)     {len(other)} of {len(load.records) - n_idem}   (reported, no bar)",
          flush=True)
    if idem or other:
        print(f"   failures by kind: {fleetlib.failure_breakdown(idem + other)}", flush=True)
    print(f"   (restarted h3 took traffic after {fmt(res['joined'], 1)} s; harness errors "
          f"{load.harness_errors})", flush=True)


def part_partition(fleet):
    res = fleetlib.measure_partition(fleet)
    slowest, rec = res["slowest"], res["recovered_s"]
    silent = res["silent"]
    print(f"3. h1 (gateway) cut off from the database for {fleetlib.PARTITION_CUT_S:.0f} s (silent drops: "
          f"h1->db {silent.get('h1->db')}, db->h1 {silent.get('db->h1')}), 3 clients polling events, registry "
          f"and auth/me through h1:", flush=True)
    print(f"   slowest answer            {slowest:.2f} s   (bar <= 6 s: {verdict(slowest <= 6.0)}; "
          f"{len(res['answers'])} answers, {len(res['hangs'])} timed out at "
          f"{fleetlib.PARTITION_CLIENT_TIMEOUT_S:.0f} s, {len(res['bad'])} neither 2xx nor 503 problem+json)",
          flush=True)
    print(f"   recovered after healing   {fmt(rec)} s   (bar <= 2 s: {verdict(rec is not None and rec <= 2.0)}; "
          f"per endpoint {({k: round(v, 2) for k, v in res['recovered'].items()})})", flush=True)
    print(f"   answers during the cut: {res['by_status']}", flush=True)


def part_quota(fleet):
    limit = fleetlib.QUOTA_PER_MINUTE
    most, _ = fleetlib.quota_bounds(limit)
    print(f"4. plan quota L = {limit} requests/minute, one user, across h1 and h2 (60 requests half to each, "
          f"then one every 0.1 s until 1.6 s after the quota ran out):", flush=True)
    for mode in ("alternating", "burst"):
        fleet.ensure_ready()
        res = fleetlib.quota_scenario(fleet, mode)
        total = res["ok"] + res["refused"] + len(res["other"])
        note = "" if res["same_minute"] else "; the measurement straddled a minute boundary"
        print(f"   {mode:<11} allowed {res['ok']:>3} of {total}   (bar <= L + 2% + 2 = {most}: "
              f"{verdict(res['ok'] <= most)}; 429s {res['refused']}, other {len(res['other'])}, last admit "
              f"after the quota ran out: h1 {res['lag']['h1']:.2f} s, h2 {res['lag']['h2']:.2f} s{note})",
              flush=True)


def main():
    reason = fleetlib.netns_unavailable_reason()
    if reason:
        print(f"parts 1-4 skipped: {reason}", flush=True)
        return 0
    try:
        fleet = fleetlib.start_fleet()
    except BaseException as e:  # start_fleet removed what it had built
        print(f"parts 1-4: the fleet could not be built: {e}", flush=True)
        return 2
    failed = 0
    try:
        print(f"fleet: {fleet.prefix}, {fleet.version}, PostgreSQL in {fleet.ns('db')}, gateways+registry+events "
              f"on h1 h2, auth+memory+billing on h3 h4, clients in {fleet.ns('cli')}", flush=True)
        for part in (part_sigkill, part_partition, part_quota):
            try:
                fleet.ensure_ready()
                part(fleet)
            except Exception as e:
                failed += 1
                print(f"{part.__name__}: not measured: {type(e).__name__}: {e}", flush=True)
                if os.environ.get("KEEL_BENCH_DEBUG") == "1":
                    traceback.print_exc()
    finally:
        # A signal now (Ctrl-C, fleet.sh's timeout) would interrupt the tear-down half-way and leave namespaces
        # behind: it is ignored until the fleet is gone (bounded: SIGKILL after 5 s, PostgreSQL's stop 30 s).
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        fleetlib.stop_fleet(fleet)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
