"""A small keel fleet built out of Linux network namespaces, for the fleet tests (run as root).

Topology (every name starts with a per-run prefix `kf` + 4 hex digits, e.g. `kf3a9c`):

    <p>-rt   router: ip_forward=1, one veth to each namespace below, 10.77.N.1/24 on its side
    <p>-db   PostgreSQL 15 on 10.77.1.2:5432
    <p>-h1   keel serve --services gateway,registry,events on 10.77.2.2 (ports 8000-8005)
    <p>-h2   the same on 10.77.3.2
    <p>-h3   keel serve --services auth,memory,billing on 10.77.4.2
    <p>-h4   the same on 10.77.5.2
    <p>-cli  clients, 10.77.6.2: this pytest process moves itself in here, so every request and every
             subprocess it starts afterwards originates inside it

Nothing is created in the host's (root) namespace: veths are created inside the router namespace with their
peer placed straight into the other namespace. Partitions are policy rules of type blackhole in the router
namespace (silent drops in both directions: no RST, no ICMP).

Everything is removed at the end (pytest fixture finalizer and atexit; SIGTERM/SIGHUP to pytest become
KeyboardInterrupt so the same path runs), and namespaces left by an earlier run that crashed are removed at
start (a run records its pid in /run/keel-fleet/<prefix>.json; a prefix whose owner is gone is stale).

The scenarios at the end (measure_sigkill, measure_partition, quota_scenario) are measured the same way for
test_fleet.py, which asserts their bars, and for bench/fleet.sh, which prints them next to the bars.
"""
import atexit
import base64
import ctypes
import datetime
import glob
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEEL_BIN = os.environ.get("KEEL_BIN", str(ROOT / "build" / "keel"))
NS_RE = re.compile(r"^(kf[0-9a-f]{4})-(rt|db|h[1-4]|cli)$")
STATE_DIR = pathlib.Path("/run/keel-fleet")
CLONE_NEWNET = 0x40000000
SUBNETS = {"db": 1, "h1": 2, "h2": 3, "h3": 4, "h4": 5, "cli": 6}
HOST_SERVICES = {"h1": "gateway,registry,events", "h2": "gateway,registry,events",
                 "h3": "auth,memory,billing", "h4": "auth,memory,billing"}
GATEWAY_HOSTS = ("h1", "h2")
MODULE_OFFSET = {"gateway": 0, "auth": 1, "memory": 2, "registry": 3, "billing": 4, "events": 5}
PG_PORT = 5432
QUOTA_PER_MINUTE = 30            # KEEL_BILLING_FREE_REQUESTS_PER_MINUTE on every process
USER_BUDGET_PER_MINUTE = 25      # what the load generator lets one user spend per wall-clock minute
PASSWORD = "correct horse battery staple"
SERVICE_NAME = "fleetprobe"      # service token name (keel's own module names are refused)

FIGURES = []                     # every FLEET line, repeated in the terminal summary


def report(line):
    print(line, flush=True)
    FIGURES.append(line)


def run(cmd, check=True, timeout=60, input=None, env=None, quiet_output=False):
    if quiet_output:  # for commands that leave daemons holding their output (pg_ctl start)
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout, env=env)
        p.stdout = p.stderr = ""
    else:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input, env=env)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode}: {p.stderr.strip()}")
    return p


def ip_of(name):
    return f"10.77.{SUBNETS[name]}.2"


def new_session():
    s = requests.Session()
    s.trust_env = False  # no proxy from the environment: 10.77.x is reached through the router, never a proxy
    return s


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def netns_unavailable_reason():
    if not shutil.which("ip"):
        return "iproute2's `ip` is not installed (scripts/setup.sh installs it)"
    p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if p.returncode != 0:
        return f"`ip netns` is unavailable: {p.stderr.strip()}"
    return None


# --- processes and namespaces ---------------------------------------------------------------------------

def _proc_start_time(pid):
    """The process's start time (clock ticks since boot), or None when it is gone or a zombie."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]
    except (OSError, IndexError):
        return None


def _ns_pids(ns):
    p = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(x) for x in p.stdout.split() if x.isdigit() and int(x) != os.getpid()]


def _kill_ns_pids(ns):
    """Every process inside one of our namespaces is one we started (keel, postgres, probes)."""
    for _ in range(20):
        pids = _ns_pids(ns)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def _netns_names():
    p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def remove_stale_runs():
    """Namespaces (and their processes, and temporary directories) of earlier runs whose pytest is gone."""
    by_prefix = {}
    for name in _netns_names():
        m = NS_RE.match(name)
        if m:
            by_prefix.setdefault(m.group(1), []).append(name)
    states = {p.stem: p for p in STATE_DIR.glob("kf*.json")} if STATE_DIR.exists() else {}
    removed = []
    for prefix in sorted(set(by_prefix) | set(states)):
        info = {}
        if prefix in states:
            try:
                info = json.loads(states[prefix].read_text())
            except (OSError, ValueError):
                info = {}
        owner = info.get("pid")
        if owner and owner != os.getpid() and _proc_start_time(owner) == info.get("start"):
            continue  # another run, still going
        for ns in by_prefix.get(prefix, []):
            _kill_ns_pids(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if info.get("tmp") and pathlib.Path(info["tmp"]).name.startswith("keel-fleet-"):
            shutil.rmtree(info["tmp"], ignore_errors=True)
        if prefix in states:
            states[prefix].unlink(missing_ok=True)
        removed.append(prefix)
    return removed


def _setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def wait_for_binary(path, timeout=300):
    """The binary is rebuilt from time to time: wait until it exists and has stopped changing."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            st = os.stat(path)
            sig = (st.st_size, st.st_mtime_ns)
            if sig == last and os.access(path, os.X_OK):
                return
            last = sig
        except FileNotFoundError:
            last = None
        time.sleep(1)
    raise RuntimeError(f"{path} did not appear (or kept changing) for {timeout}s; set KEEL_BIN or build it")


class KeelProcess:
    """One `keel serve` inside a namespace."""

    def __init__(self, fleet, host, services, database, port_base=8000, data_dir=None, env=None, key="file",
                 tag=None):
        self.fleet = fleet
        self.host = host
        self.ip = ip_of(host)
        self.services = services
        self.database = database
        self.port_base = port_base
        self.tag = tag or host
        self.data_dir = pathlib.Path(data_dir or fleet.tmp / "data" / self.tag)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = fleet.keel_env(host, key=key, extra=env)
        self.log_path = fleet.tmp / "logs" / f"{self.tag}.log"
        self.popen = None

    def argv(self):
        return ["ip", "netns", "exec", self.fleet.ns(self.host), str(self.fleet.bin), "serve",
                "--services", self.services, "--database", self.database, "--data-dir", str(self.data_dir),
                "--port-base", str(self.port_base)]

    def start(self, argv=None):
        log = open(self.log_path, "ab")
        try:
            self.popen = subprocess.Popen(argv or self.argv(), env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        self.fleet.track(self)
        return self

    def modules(self):
        return self.services.split(",")

    def url(self, module):
        return f"http://{self.ip}:{self.port_base + MODULE_OFFSET[module]}"

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def healthy_now(self, session):
        for m in self.modules():
            for path in ("/health/live", "/health"):
                try:
                    if session.get(self.url(m) + path, timeout=1).status_code != 200:
                        return False
                except requests.RequestException:
                    return False
        return True

    def wait_healthy(self, deadline):
        """True once every module answers /health/live and /health with 200; False if it exits or the deadline
        (time.monotonic()) passes."""
        s = new_session()
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            if self.healthy_now(s):
                return True
            time.sleep(0.05)
        return False

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
                return "killed"
        return self.popen.returncode

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=15):
        return "\n".join(self.log().splitlines()[-lines:])


class Fleet:
    def __init__(self):
        self.prefix = "kf" + secrets.token_hex(2)
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"keel-fleet-{self.prefix}-"))
        os.chmod(self.tmp, 0o755)  # postgres (the user) must reach its data directory below
        (self.tmp / "logs").mkdir()
        self.namespaces = []
        self.processes = []        # every KeelProcess started
        self.hosts = {}            # h1..h4 -> KeelProcess (the fleet's own)
        self.cuts = set()          # (a, b) blackholed pairs
        self.pg_started = False
        self.pgbin = None
        self.orig_netns_fd = None
        self.closed = False
        self.lock = threading.Lock()
        self.database = None
        self.service_token = None
        self.users = None
        self.state_file = STATE_DIR / f"{self.prefix}.json"

    def ns(self, name):
        return f"{self.prefix}-{name}"

    def track(self, proc):
        with self.lock:
            if proc not in self.processes:
                self.processes.append(proc)

    # --- set-up ---------------------------------------------------------------------------------------

    def build(self):
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"pid": os.getpid(), "start": _proc_start_time(os.getpid()),
                                               "tmp": str(self.tmp)}))
        wait_for_binary(KEEL_BIN)
        self._copy_binary()
        root_links_before = self._root_links()
        self._build_topology()
        assert self._root_links() == root_links_before, "the host namespace's interfaces changed"
        # From here on this process (and every thread and subprocess it starts) lives in <p>-cli.
        self.orig_netns_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        if threading.active_count() != 1:
            raise RuntimeError("setns must happen while the test process is single-threaded")
        _setns(f"/var/run/netns/{self.ns('cli')}")
        self._start_postgres()
        self.database = self.create_database("keel_fleet")
        self._write_master_key()
        for host, services in HOST_SERVICES.items():
            self.hosts[host] = KeelProcess(self, host, services, self.database)
        # One after another: starting together is what test_simultaneous_start measures, not the set-up's job.
        for name in ("h3", "h4", "h1", "h2"):
            host = self.hosts[name].start()
            if not host.wait_healthy(time.monotonic() + 60):
                raise RuntimeError(f"keel on {host.host} did not come up:\n{host.log_tail(30)}")
        self.wait_gateways_ready(time.monotonic() + 30)
        self.service_token = self.keel_cli("h3", "token", "create", "--service", SERVICE_NAME).stdout.strip()
        self.users = UserPool(register_users(self, 80, "load"))

    def _copy_binary(self):
        """One binary for the whole run, even while build/keel is being rebuilt."""
        for attempt in range(10):
            shutil.copy2(KEEL_BIN, self.tmp / "keel")
            p = subprocess.run([str(self.tmp / "keel"), "version"], capture_output=True, text=True)
            if p.returncode == 0:
                self.bin = self.tmp / "keel"
                self.version = p.stdout.strip()
                return
            time.sleep(2)
            wait_for_binary(KEEL_BIN)
        raise RuntimeError(f"{KEEL_BIN} version fails: {p.stderr}")

    @staticmethod
    def _root_links():
        return sorted(line.split(":")[1].strip().split("@")[0]
                      for line in run(["ip", "-o", "link", "show"]).stdout.splitlines())

    def _build_topology(self):
        rt = self.ns("rt")
        for name in ["rt", *SUBNETS]:
            run(["ip", "netns", "add", self.ns(name)])
            self.namespaces.append(self.ns(name))
            run(["ip", "-n", self.ns(name), "link", "set", "lo", "up"])
        run(["ip", "netns", "exec", rt, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for name, n in SUBNETS.items():
            router_side, host_side = f"{self.prefix}-R{name}", f"{self.prefix}-{name}"
            # Created inside the router's namespace, the peer straight into the other one: the host namespace
            # never holds either end.
            run(["ip", "-n", rt, "link", "add", router_side, "type", "veth", "peer", "name", host_side,
                 "netns", self.ns(name)])
            run(["ip", "-n", rt, "addr", "add", f"10.77.{n}.1/24", "dev", router_side])
            run(["ip", "-n", rt, "link", "set", router_side, "up"])
            run(["ip", "-n", self.ns(name), "addr", "add", f"10.77.{n}.2/24", "dev", host_side])
            run(["ip", "-n", self.ns(name), "link", "set", host_side, "up"])
            run(["ip", "-n", self.ns(name), "route", "add", "default", "via", f"10.77.{n}.1"])

    def _start_postgres(self):
        bins = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.access(f"{d}/initdb", os.X_OK)]
        if not bins:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql (scripts/setup.sh)")
        self.pgbin = sorted(bins, key=lambda d: int(re.sub(r"\D", "", d.split("/")[-2]) or 0))[-1]
        pgdir = self.tmp / "pg"
        pgdir.mkdir()
        shutil.chown(pgdir, "postgres", "postgres")
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        self.as_pg = [runuser, "-u", "postgres", "--"]
        run(self.as_pg + [f"{self.pgbin}/initdb", "-D", str(pgdir / "data"), "-U", "postgres", "--auth=trust",
                          "-E", "UTF8", "--locale=C.UTF-8"], timeout=120)
        with open(pgdir / "data" / "pg_hba.conf", "a") as f:
            f.write("host all all 10.77.0.0/16 trust\n")
        opts = (f"-c listen_addresses={ip_of('db')} -p {PG_PORT} -c unix_socket_directories={pgdir} "
                "-c fsync=off -c full_page_writes=off -c max_connections=300")
        self.pg_started = True  # from here on, tear-down stops it
        p = run(["ip", "netns", "exec", self.ns("db")] + self.as_pg +
                [f"{self.pgbin}/pg_ctl", "-D", str(pgdir / "data"), "-l", str(pgdir / "server.log"), "-w", "-t", "60",
                 "-o", opts, "start"], check=False, timeout=90, quiet_output=True)
        if p.returncode != 0:
            raise RuntimeError("PostgreSQL did not start:\n" + (pgdir / "server.log").read_text(errors="replace"))

    def create_database(self, name):
        run(["psql", "-h", ip_of("db"), "-p", str(PG_PORT), "-U", "postgres", "-d", "postgres", "-qc",
             f"CREATE DATABASE {name}"])
        return f"postgresql://postgres@{ip_of('db')}:{PG_PORT}/{name}"

    def psql(self, database, sql):
        return run(["psql", "-h", ip_of("db"), "-p", str(PG_PORT), "-U", "postgres", "-d", database, "-Atc", sql]).stdout

    def _write_master_key(self):
        raw = secrets.token_bytes(32)
        self.master_key_raw = raw
        self.master_key_b64 = base64.b64encode(raw).decode()  # what `base64` prints: KEEL_AUTH_MASTER_KEY
        self.key_file = self.tmp / "master.key"
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.urlsafe_b64encode(raw).decode().rstrip("=") + "\n")

    def keel_env(self, host, key="file", extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        env.update({
            "KEEL_LISTEN": ip_of(host),
            "KEEL_REGISTRY_ADVERTISE": ip_of(host),
            "KEEL_BILLING_FREE_REQUESTS_PER_MINUTE": str(QUOTA_PER_MINUTE),
        })
        if key == "file":
            env["KEEL_AUTH_MASTER_KEY_FILE"] = str(self.key_file)
        elif key == "env":
            env["KEEL_AUTH_MASTER_KEY"] = self.master_key_b64
        env.update(extra or {})
        return env

    def keel_cli(self, host, *args, database=None, timeout=60):
        """A keel command inside a host's namespace, against the fleet's database and master key."""
        data_dir = self.tmp / "data" / "cli"
        data_dir.mkdir(parents=True, exist_ok=True)
        return run(["ip", "netns", "exec", self.ns(host), str(self.bin), *args, "--database",
                    database or self.database, "--data-dir", str(data_dir)], env=self.keel_env(host), timeout=timeout)

    # --- steady state ---------------------------------------------------------------------------------

    def gateway(self, host):
        return f"http://{ip_of(host)}:8000"

    def wait_gateways_ready(self, deadline):
        """Both gateways see a passing instance of every module."""
        s = new_session()
        pending = set(GATEWAY_HOSTS)
        last = {}
        while pending and time.monotonic() < deadline:
            for h in list(pending):
                try:
                    r = s.get(self.gateway(h) + "/health", timeout=2)
                    last[h] = (r.status_code, r.text[:300])
                    mods = r.json().get("modules", {})
                    if r.status_code == 200 and all(mods.get(m) == "ok" for m in
                                                    ("auth", "memory", "billing", "registry", "events")):
                        pending.discard(h)
                except (requests.RequestException, ValueError) as e:
                    last[h] = repr(e)
            time.sleep(0.1)
        if pending:
            raise RuntimeError(f"gateways {sorted(pending)} not ready: {last}")

    def ensure_ready(self):
        """Called by every test: heals any cut, restarts a fleet host a previous test left dead, waits for health."""
        for a, b in list(self.cuts):
            self.heal(a, b)
        deadline = time.monotonic() + 30
        for host in self.hosts.values():
            if not host.alive():
                report(f"FLEET note: {host.host} was not running; restarting it")
                host.start()
        for host in self.hosts.values():
            if not host.wait_healthy(deadline):
                raise RuntimeError(f"fleet host {host.host} not healthy:\n{host.log_tail(30)}")
        self.wait_gateways_ready(time.monotonic() + 30)

    def restart_host(self, name):
        self.hosts[name] = KeelProcess(self, name, HOST_SERVICES[name], self.database)
        return self.hosts[name].start()

    # --- partitions -----------------------------------------------------------------------------------

    def _rules(self, a, b, op):
        for src, dst in ((ip_of(a), ip_of(b)), (ip_of(b), ip_of(a))):
            run(["ip", "-n", self.ns("rt"), "rule", op, "from", src, "to", dst, "blackhole"], check=(op == "add"))

    def cut(self, a, b):
        self.cuts.add((a, b))
        self._rules(a, b, "add")

    def heal(self, a, b):
        self._rules(a, b, "del")
        self.cuts.discard((a, b))

    def probe_connect(self, from_host, to_host, port, timeout=1.5):
        """A TCP connect from inside one namespace: 'connected', 'timeout' (a silent drop) or 'error <errno>'."""
        code = ("import socket,sys\ns=socket.socket();s.settimeout(float(sys.argv[3]))\n"
                "try:\n s.connect((sys.argv[1],int(sys.argv[2])));print('connected')\n"
                "except socket.timeout:\n print('timeout')\n"
                "except OSError as e:\n print('error', e.errno, e.strerror)\n")
        p = run(["ip", "netns", "exec", self.ns(from_host), "/usr/bin/python3", "-c", code, ip_of(to_host),
                 str(port), str(timeout)], timeout=timeout + 30)
        return p.stdout.strip()

    # --- tear-down ------------------------------------------------------------------------------------

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
            procs = list(self.processes)
        for p in procs:
            if p.alive():
                try:
                    p.popen.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in procs:
            if p.popen is None:
                continue
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.popen.kill()
                try:
                    p.popen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        if self.pg_started:
            try:
                run(["ip", "netns", "exec", self.ns("db")] + self.as_pg +
                    [f"{self.pgbin}/pg_ctl", "-D", str(self.tmp / "pg" / "data"), "-m", "immediate", "-w", "stop"],
                    check=False, timeout=30, quiet_output=True)
            except Exception:
                pass
        for ns in reversed(self.namespaces):
            _kill_ns_pids(ns)
        if self.orig_netns_fd is not None:
            try:
                _setns(f"/proc/self/fd/{self.orig_netns_fd}")
                os.close(self.orig_netns_fd)
            except OSError:
                pass
            self.orig_netns_fd = None
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if os.environ.get("KEEL_FLEET_KEEP_LOGS") == "1":
            keep = pathlib.Path(tempfile.gettempdir()) / f"keel-fleet-logs-{self.prefix}"
            shutil.copytree(self.tmp / "logs", keep, dirs_exist_ok=True)
            print(f"fleet logs kept in {keep}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)


_active = []


def _close_all():
    while _active:
        _active.pop().close()


def _to_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def start_fleet():
    removed = remove_stale_runs()
    if removed:
        report(f"FLEET note: removed stale runs {removed}")
    fleet = Fleet()
    _active.append(fleet)
    atexit.register(_close_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _to_interrupt)
    try:
        fleet.build()
    except BaseException:
        _close_all()
        raise
    return fleet


def stop_fleet(fleet):
    if fleet in _active:
        _active.remove(fleet)
    fleet.close()


# --- users and load ---------------------------------------------------------------------------------------

class User:
    def __init__(self, email, body):
        self.email = email
        self.password = PASSWORD
        self.token = body["access_token"]
        self.refresh = body["refresh_token"]
        self.id = body["user"]["id"]


def register(fleet, email, gateway_host="h1", session=None):
    s = session or new_session()
    for attempt in range(5):
        r = s.post(fleet.gateway(gateway_host) + "/v1/auth/register", json={"email": email, "password": PASSWORD},
                   timeout=15)
        if r.status_code == 201:
            return User(email, r.json())
        if r.status_code != 503:  # 503: the hash queue is full, try again
            break
        time.sleep(0.2)
    raise AssertionError(f"register {email} through {gateway_host}: {r.status_code} {r.text[:300]}")


def register_users(fleet, n, label):
    def one(i):
        return register(fleet, f"{label}{i}-{fleet.prefix}-{secrets.token_hex(3)}@fleet.test", GATEWAY_HOSTS[i % 2])

    with ThreadPoolExecutor(4) as ex:
        return list(ex.map(one, range(n)))


class UserPool:
    """Hands out users round-robin so that no user spends more than USER_BUDGET_PER_MINUTE requests in a
    wall-clock minute: load through the fleet never runs into the 30/minute plan quota."""

    def __init__(self, users, budget=USER_BUDGET_PER_MINUTE):
        self.users = users
        self.budget = budget
        self.used = {}
        self.next = 0
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            minute = int(time.time() // 60)
            for k in range(len(self.users)):
                i = (self.next + k) % len(self.users)
                if self.used.get((i, minute), 0) < self.budget:
                    self.used[(i, minute)] = self.used.get((i, minute), 0) + 1
                    self.next = i + 1
                    return self.users[i]
        raise RuntimeError("user pool exhausted for this minute (the load is heavier than the pool allows)")


class Load:
    """Mixed load through both gateways: GET /v1/auth/me, GET /v1/memories (idempotent) and POST /v1/memories
    (not idempotent), from `threads` threads at `rate` requests/s each."""

    OPS = (("GET", "/v1/auth/me", True), ("GET", "/v1/memories?limit=5", True), ("POST", "/v1/memories", False))

    def __init__(self, fleet, pool, threads=4, rate=5.0, timeout=5.0):
        self.fleet = fleet
        self.pool = pool
        self.n = threads
        self.rate = rate
        self.timeout = timeout
        self.records = []  # (t0, t1, gateway host, method path, idempotent, status or None, error or None)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self.harness_errors = 0  # requests not sent because the user pool ran dry (a test design error)

    def start(self):
        for k in range(self.n):
            t = threading.Thread(target=self._worker, args=(k,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=self.timeout + 5)

    def _worker(self, k):
        s = new_session()
        i = k
        next_at = time.monotonic()
        while not self.stopping.is_set():
            gw = GATEWAY_HOSTS[i % 2]
            method, path, idem = self.OPS[(i // 2) % 3]
            try:
                user = self.pool.take()
            except RuntimeError:
                with self.lock:
                    self.harness_errors += 1
                self.stopping.wait(0.5)
                continue
            body = {"content": f"load note {secrets.token_hex(4)}", "namespace": "load"} if method == "POST" else None
            t0 = time.monotonic()
            status = err = None
            try:
                r = s.request(method, self.fleet.gateway(gw) + path, headers=bearer(user.token), json=body,
                              timeout=self.timeout)
                status = r.status_code
            except requests.RequestException as e:
                err = type(e).__name__
            with self.lock:
                self.records.append((t0, time.monotonic(), gw, f"{method} {path.split('?')[0]}", idem, status, err))
            i += 1
            next_at += 1.0 / self.rate
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)
            else:
                next_at = time.monotonic()

    def served_since(self, t):
        with self.lock:
            return sum(1 for r in self.records if r[0] >= t and r[5] is not None and 200 <= r[5] < 300)

    def failures(self, idempotent, since=None, until=None):
        with self.lock:
            recs = list(self.records)
        return [r for r in recs if r[4] == idempotent and (since is None or r[0] >= since)
                and (until is None or r[0] < until) and (r[5] is None or not 200 <= r[5] < 300)]


def requests_served(session, url):
    """Requests a module has served other than health and metrics probes (from its /metrics)."""
    r = session.get(url + "/metrics", timeout=2)
    total = 0
    for line in r.text.splitlines():
        if not line.startswith("keel_http_requests_total{"):
            continue
        m = re.search(r'route="([^"]*)"', line)
        if m and m.group(1) in ("/health", "/health/live", "/metrics"):
            continue
        total += int(float(line.rsplit(" ", 1)[1]))
    return total


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- scenarios ----------------------------------------------------------------------------------------------
# Measured here, once, for two readers: tests/fleet/test_fleet.py reports the figures and asserts the bars;
# bench/fleet.sh (bench/lib/fleet_bench.py) prints the same figures next to the bars. An `assert` in here is a
# precondition of the measurement (the fleet was not in the state the scenario starts from), not a bar.

def h3_routable(fleet, session, gateway_host):
    """The modules whose h3 instance the registry (read through this gateway) still offers for routing:
    passing and not expired, as the gateway's route table takes them."""
    now = datetime.datetime.now(datetime.timezone.utc)
    out = []
    for m in ("auth", "memory", "billing"):
        r = session.get(fleet.gateway(gateway_host) + f"/v1/registry/modules/{m}/instances",
                        headers=bearer(fleet.service_token), timeout=2)
        r.raise_for_status()
        for inst in r.json()["items"]:
            if (inst["url"].startswith(f"http://{ip_of('h3')}:") and inst["status"] == "passing"
                    and parse_time(inst["expires_at"]) > now):
                out.append(m)
    return out


def h3_served(fleet, session):
    h3 = fleet.hosts["h3"]
    return sum(requests_served(session, h3.url(m)) for m in ("auth", "memory", "billing"))


def failure_breakdown(recs):
    """Load records counted by 'METHOD path->status or error'."""
    counts = {}
    for r in recs:
        key = f"{r[3]}->{r[5] if r[5] is not None else r[6]}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def measure_sigkill(fleet):
    """SIGKILL h3 (auth, memory, billing) under mixed load through both gateways, wait until neither gateway's
    registry view routes to it, let the load go on, then start h3 again and wait until it takes traffic.
    Returns out_of_routing (s after the kill, None if never within 25 s), last_view, served_by_others (2xx
    answers between the kill and the restart), joined (s from the restart to h3's first served request, or
    None), the stopped Load (its records and failures) and the restarted h3."""
    s = new_session()
    # Before anything: both gateways' registry views route to h3 (else "out of routing" would prove nothing).
    deadline = time.monotonic() + 10
    while True:
        try:
            views = {g: sorted(h3_routable(fleet, s, g)) for g in GATEWAY_HOSTS}
        except Exception as e:  # a failed poll is not a verdict; poll again
            views = repr(e)
        if isinstance(views, dict) and all(v == ["auth", "billing", "memory"] for v in views.values()):
            break
        assert time.monotonic() < deadline, f"h3 is not routable before the kill: {views}"
        time.sleep(0.1)
    load = Load(fleet, fleet.users, threads=4, rate=8.0).start()
    try:
        # The load reaches h3 before the kill (so the kill interrupts real traffic).
        deadline = time.monotonic() + 15
        while h3_served(fleet, s) < 10:
            assert time.monotonic() < deadline, "h3 never received the load before the kill"
            time.sleep(0.1)
        time.sleep(1.0)  # a second of steady load on all four hosts

        h3 = fleet.hosts["h3"]
        t_kill = time.monotonic()
        h3.popen.send_signal(signal.SIGKILL)
        h3.popen.wait(timeout=10)

        out_of_routing = None
        last_view = None
        while time.monotonic() < t_kill + 25:
            try:
                views = {g: h3_routable(fleet, s, g) for g in GATEWAY_HOSTS}
                last_view = views
                if not any(views.values()):
                    out_of_routing = time.monotonic() - t_kill
                    break
            except Exception as e:  # a failed poll is not a verdict; poll again
                last_view = repr(e)
            time.sleep(0.1)

        # The load goes on at least 4 s past the kill whenever routing converged: requests the gateways still
        # send towards h3 meanwhile are the ones that could fail.
        time.sleep(max(0.0, t_kill + 4.0 - time.monotonic()))
        served_by_others = load.served_since(t_kill)

        # A host joining: h3 starts again and the gateways send it traffic.
        t_restart = time.monotonic()
        h3 = fleet.restart_host("h3")
        joined = None
        while time.monotonic() < t_restart + 20:
            if not h3.alive():
                break
            try:
                if h3_served(fleet, s) > 0:
                    joined = time.monotonic() - t_restart
                    break
            except Exception:
                pass
            time.sleep(0.1)
        time.sleep(1.0)  # the load goes on a moment with h3 back
    finally:
        load.stop()
    return {"out_of_routing": out_of_routing, "last_view": last_view, "served_by_others": served_by_others,
            "joined": joined, "load": load, "h3": h3}


PARTITION_CUT_S = 5.0             # how long h1 is cut off from the database
PARTITION_CLIENT_TIMEOUT_S = 8.0  # the clients' timeout meanwhile (above the 6 s bar, so a slow answer shows)


def partition_answer_acceptable(rec):
    """During the cut an answer is 2xx or a 503 problem+json."""
    _, _, status, ctype, _ = rec
    return status is not None and (200 <= status < 300 or
                                   (status == 503 and ctype.startswith("application/problem+json")))


def measure_partition(fleet):
    """Cut h1 (a gateway host) off from the database for PARTITION_CUT_S (silent drops both ways) while three
    clients poll events, registry and auth/me through h1's gateway; heal, and time until each answers 2xx
    again. Returns the answers during the cut (name, seconds, status or None, content type or error, body
    start), their summary (slowest, hangs, bad, by_status), the silent-drop probes, recovered (per endpoint,
    s after healing) and recovered_s (the slowest of them, None unless all recovered within 20 s), h1 and its
    pid before the cut."""
    g1 = fleet.gateway("h1")
    h1 = fleet.hosts["h1"]
    pid_before = h1.popen.pid
    svc = lambda: fleet.service_token
    user = lambda: fleet.users.take().token
    endpoints = {"events": ("/v1/events?limit=1", svc), "registry": ("/v1/registry/modules", svc),
                 "me": ("/v1/auth/me", user)}
    s = new_session()
    for name, (path, tok) in endpoints.items():
        r = s.get(g1 + path, headers=bearer(tok()), timeout=5)
        assert r.status_code == 200, f"before the cut, {path} through h1: {r.status_code} {r.text[:200]}"
    assert fleet.probe_connect("h1", "db", PG_PORT) == "connected"

    CUT_S, TIMEOUT_S = PARTITION_CUT_S, PARTITION_CLIENT_TIMEOUT_S
    answers = []
    lock = threading.Lock()
    silent = {}

    def during(name, path, tok):
        ss = new_session()
        while time.monotonic() < t_heal_at:
            t0 = time.monotonic()
            try:
                r = ss.get(g1 + path, headers=bearer(tok()), timeout=TIMEOUT_S)
                rec = (name, time.monotonic() - t0, r.status_code, r.headers.get("Content-Type", ""), r.text[:160])
            except Exception as e:
                rec = (name, time.monotonic() - t0, None, type(e).__name__, "")
            with lock:
                answers.append(rec)
            time.sleep(0.1)

    def probe(label, a, b, port):
        silent[label] = fleet.probe_connect(a, b, port)

    fleet.cut("h1", "db")
    t_cut = time.monotonic()
    t_heal_at = t_cut + CUT_S
    threads = [threading.Thread(target=during, args=(n, p, t), daemon=True) for n, (p, t) in endpoints.items()]
    threads += [threading.Thread(target=probe, args=("h1->db", "h1", "db", PG_PORT), daemon=True),
                threading.Thread(target=probe, args=("db->h1", "db", "h1", 8000), daemon=True)]
    try:
        for t in threads:
            t.start()
        time.sleep(max(0.0, t_heal_at - time.monotonic()))  # the cut lasts 5 s by definition
    finally:
        fleet.heal("h1", "db")
    t_heal = time.monotonic()

    recovered = {}

    def recover(name, path, tok):
        ss = new_session()
        while time.monotonic() < t_heal + 20:
            try:
                r = ss.get(g1 + path, headers=bearer(tok()), timeout=3)
                if 200 <= r.status_code < 300:
                    recovered[name] = time.monotonic() - t_heal
                    return
            except Exception:
                pass
            time.sleep(0.1)

    rthreads = [threading.Thread(target=recover, args=(n, p, t), daemon=True) for n, (p, t) in endpoints.items()]
    for t in rthreads:
        t.start()
    for t in threads + rthreads:
        t.join(timeout=30)

    by_status = {}
    for a in answers:
        key = f"{a[0]}:{a[2] if a[2] is not None else a[3]}"
        by_status[key] = by_status.get(key, 0) + 1
    return {"answers": answers, "silent": silent, "recovered": recovered,
            "recovered_s": max(recovered.values()) if len(recovered) == len(endpoints) else None,
            "slowest": max((a[1] for a in answers), default=0.0),
            "hangs": [a for a in answers if a[2] is None],
            "bad": [a for a in answers if not partition_answer_acceptable(a)],
            "by_status": by_status, "h1": h1, "pid_before": pid_before}


def quota_bounds(limit):
    """(most, least) requests a plan quota of `limit` a minute may admit across the fleet: at most
    limit + 2% + 2, and the plan's own limit must be usable too, with the same tolerance."""
    most = int(limit + limit * 0.02 + 2)   # 30 + 2% + 2 = 32
    least = limit - (most - limit)         # the plan's 30 must be usable too (same tolerance, 28)
    return most, least


def wait_for_minute_room(seconds):
    """The quota is per wall-clock minute: start a measurement only with `seconds` of the minute left."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.25)


def quota_scenario(fleet, mode):
    """A fresh user (plan quota QUOTA_PER_MINUTE a minute) sends 60 GET /v1/auth/me, half through each gateway:
    one after another alternating h1 h2 ("alternating"), or all at once from 30 threads ("burst"); then one
    every 0.1 s until 1.6 s after the quota was used up. Everything within one wall-clock minute."""
    u = register(fleet, f"quota-{mode}-{fleet.prefix}-{secrets.token_hex(3)}@fleet.test", "h1")
    wait_for_minute_room(15)
    minute = int(time.time() // 60)
    records = []  # (gateway, t0, t1, status, retry_after)
    lock = threading.Lock()
    sessions = threading.local()

    def one(i):
        if not hasattr(sessions, "s"):
            sessions.s = new_session()
        g = GATEWAY_HOSTS[i % 2]
        t0 = time.monotonic()
        try:
            r = sessions.s.get(fleet.gateway(g) + "/v1/auth/me", headers=bearer(u.token), timeout=5)
            rec = (g, t0, time.monotonic(), r.status_code, r.headers.get("Retry-After"))
        except Exception as e:
            rec = (g, t0, time.monotonic(), type(e).__name__, None)
        with lock:
            records.append(rec)

    if mode == "alternating":
        for i in range(60):
            one(i)
    else:  # one burst: all 60 at once, half to each gateway
        with ThreadPoolExecutor(30) as ex:
            list(ex.map(one, range(60)))
    ok = sorted((r for r in records if isinstance(r[3], int) and 200 <= r[3] < 300), key=lambda r: r[2])
    # The quota is used up once 30 requests have succeeded; from a second later, both gateways must refuse.
    t_used_up = ok[QUOTA_PER_MINUTE - 1][2] if len(ok) >= QUOTA_PER_MINUTE else max(r[2] for r in records)
    i = 0
    while time.monotonic() < t_used_up + 1.6:
        one(i)
        i += 1
        time.sleep(0.1)
    same_minute = int(time.time() // 60) == minute
    ok = [r for r in records if isinstance(r[3], int) and 200 <= r[3] < 300]
    refused = [r for r in records if r[3] == 429]
    other = [r for r in records if r not in ok and r not in refused]
    lag = {}
    late_429 = {}
    for g in GATEWAY_HOSTS:
        admitted = [r[1] - t_used_up for r in ok if r[0] == g]
        lag[g] = max(0.0, max(admitted, default=0.0))
        late_429[g] = any(r[0] == g and r[1] >= t_used_up + 1.0 for r in refused)
    first60_ok = sum(1 for r in records[:60] if isinstance(r[3], int) and 200 <= r[3] < 300)
    return {"mode": mode, "ok": len(ok), "first60_ok": first60_ok, "refused": len(refused), "other": other,
            "lag": lag, "late_429": late_429, "same_minute": same_minute,
            "retry_after": all(r[4] for r in refused)}
