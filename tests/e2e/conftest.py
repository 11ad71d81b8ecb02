"""Black-box harness: starts the real keel binary on free ports, on SQLite or on the PostgreSQL cluster
that scripts/test.sh started (KEEL_TEST_PG_URL), and talks HTTP to it."""
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEEL_BIN = os.environ.get("KEEL_BIN", str(ROOT / "build" / "keel"))
MODULES = ["gateway", "auth", "memory", "registry", "billing", "events"]
PG_URL = os.environ.get("KEEL_TEST_PG_URL", "")
# KEEL_E2E_GRACEFUL_STOP=1 (scripts/error-coverage.sh): the fixtures stop each keel still running at a test's end
# with SIGTERM instead of SIGKILL, since a coverage build writes its counters only when it exits; SIGKILL still
# follows if it has not exited within 30 s. A keel that does not then exit 0 is noted, with the test and the end
# of its log, in the file KEEL_E2E_STOP_LOG names (when it is set).
GRACEFUL_STOP = os.environ.get("KEEL_E2E_GRACEFUL_STOP") == "1"
STOP_LOG = os.environ.get("KEEL_E2E_STOP_LOG", "")

# Port bases stay below the kernel's ephemeral range (ip_local_port_range: 32768 and up here), where the
# client side of every connection the tests open gets its port: a base chosen there could be taken by one
# between the check below and keel's bind (a run under load once failed on "Address already in use").
def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_LOW, _PORT_HIGH = 10000, min(_ephemeral_low(), 65536) - 10
_next_base = [_PORT_LOW + (os.getpid() % 400) * 50]


def _ports_free(base, count=6):
    for p in range(base, base + count):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


def free_port_base():
    while True:
        base = _next_base[0]
        _next_base[0] += 10
        if _next_base[0] > _PORT_HIGH:
            _next_base[0] = _PORT_LOW
        if _ports_free(base):
            return base


def fresh_pg_database():
    """A new, empty database on the test cluster; returns its URL."""
    name = "keel_" + uuid.uuid4().hex[:12]
    host_port = PG_URL.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    subprocess.run(["psql", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-qc",
                    f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return PG_URL.rsplit("/", 1)[0] + "/" + name


PASSWORD = "correct horse battery"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def register(keel, prefix="u", password=PASSWORD):
    """A new user registered through the gateway: (email, the registration's answer with its tokens)."""
    email = f"{prefix}-{os.urandom(5).hex()}@example.com"
    r = requests.post(keel.url("gateway") + "/v1/auth/register", json={"email": email, "password": password},
                      timeout=10)
    assert r.status_code == 201, r.text
    return email, r.json()


def wait_until(fn, timeout=5.0, step=0.05):
    """Polls `fn` until it returns something true or `timeout` passes; returns its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(step)
    return fn()


class Keel:
    """One keel process."""

    def __init__(self, database=None, data_dir=None, cwd=None, config=None, services=None, extra_args=(),
                 env=None):
        self.port_base = free_port_base()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="keel-e2e-")
        self.database = database
        self.cwd = cwd or self.data_dir
        self.config = config
        self.services = services
        self.extra_args = list(extra_args)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.log_path = pathlib.Path(tempfile.mkstemp(prefix="keel-e2e-log-")[1])

    def args(self):
        a = [KEEL_BIN, "serve", "--port-base", str(self.port_base)]
        if self.config:
            a += ["--config", str(self.config)]
        else:
            a += ["--data-dir", str(self.data_dir)]
        if self.database:
            a += ["--database", self.database]
        if self.services:
            a += ["--services", self.services]
        return a + self.extra_args

    def start(self, wait=True):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), cwd=self.cwd, env=self.env, stdout=self.log_file,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_healthy()
        return self

    def url(self, module="gateway"):
        return f"http://127.0.0.1:{self.port_base + MODULES.index(module)}"

    def running_modules(self):
        if not self.services or self.services == "all":
            return MODULES
        return self.services.split(",")

    def wait_healthy(self, timeout=15):
        deadline = time.time() + timeout
        pending = set(self.running_modules())
        while pending and time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"keel exited with {self.proc.returncode}:\n{self.log()}")
            for m in list(pending):
                try:
                    if requests.get(self.url(m) + "/health/live", timeout=1).status_code == 200:
                        pending.discard(m)
                except requests.RequestException:
                    pass
            time.sleep(0.02)
        if pending:
            raise RuntimeError(f"modules {pending} not live after {timeout}s:\n{self.log()}")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log_file.close()

    def kill(self):
        return self.stop(signal.SIGKILL)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def cli(self, *args, input=None, check=True):
        """Runs another keel command against this keel's data directory and database."""
        a = [KEEL_BIN] + list(args)
        if self.config:
            a += ["--config", str(self.config)]
        else:
            a += ["--data-dir", str(self.data_dir)]
        if self.database:
            a += ["--database", self.database]
        p = subprocess.run(a, input=input, capture_output=True, text=True, timeout=60, cwd=self.cwd, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError(f"{args} exited {p.returncode}: {p.stderr}")
        return p

    def query(self, sql, *params):
        """Reads (or writes) keel's database directly (SQLite or PostgreSQL), for what the API does not show."""
        if self.database:
            import re
            text = sql
            for i, p in enumerate(params, 1):
                text = text.replace(f"${i}", "'" + str(p).replace("'", "''") + "'")
            m = re.match(r"postgresql://([^@]+)@([^:/]+):(\d+)/(\w+)", self.database)
            user, host, port, db = m.groups()
            out = subprocess.run(["psql", "-h", host, "-p", port, "-U", user, "-d", db, "-AtF", "\t", "-c", text],
                                 capture_output=True, text=True, check=True).stdout
            return [tuple(line.split("\t")) for line in out.splitlines() if line]
        import sqlite3
        con = sqlite3.connect(pathlib.Path(self.data_dir) / "keel.db")
        try:
            qmarks = sql
            for i in range(len(params), 0, -1):
                qmarks = qmarks.replace(f"${i}", f"?{i}")
            rows = [tuple("" if v is None else str(v) for v in row) for row in con.execute(qmarks, params)]
            con.commit()  # a write the test makes on purpose (data stored by an older keel)
            return rows
        finally:
            con.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    if request.param == "postgres" and not PG_URL:
        if os.environ.get("KEEL_REQUIRE_PG") == "1":
            pytest.fail("KEEL_TEST_PG_URL is not set")
        pytest.skip("KEEL_TEST_PG_URL is not set (scripts/test.sh starts a cluster)")
    return request.param


@pytest.fixture
def database_url(backend):
    """None for SQLite (keel's default under its data dir), a fresh database URL for PostgreSQL."""
    return fresh_pg_database() if backend == "postgres" else None


@pytest.fixture
def keel_factory(database_url, request):
    started = []

    def make(**kwargs):
        kwargs.setdefault("database", database_url)
        k = Keel(**kwargs)
        started.append(k)
        return k

    yield make
    for k in started:
        if GRACEFUL_STOP and k.proc and k.proc.poll() is None:
            try:
                rc = k.stop(signal.SIGTERM, timeout=30)
            except subprocess.TimeoutExpired:
                rc = "none within 30 s"
            if rc != 0 and STOP_LOG:
                tail = k.log()[-400:].replace("\n", "\n    ")
                with open(STOP_LOG, "a") as f:
                    f.write(f"{request.node.nodeid}: exit status {rc} after SIGTERM; its log ends:\n    {tail}\n")
        k.stop(signal.SIGKILL if k.proc and k.proc.poll() is None else signal.SIGTERM)


@pytest.fixture
def keel(keel_factory):
    return keel_factory().start()


class Upstream:
    """A third-party module for the gateway to route to: a small HTTP server in this test process that answers
    with its name and the headers it received."""

    def __init__(self, name, tls=None):
        """`tls`: (certificate file, key file) to serve https instead."""
        import http.server
        import threading

        self.name = name
        self.healthy = True
        self.hits = 0
        self.health_checks = 0
        self.seen = []
        self.connections = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                outer.connections.append(self.connection)

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.endswith("/health"):
                    outer.health_checks += 1
                    status = 200 if outer.healthy else 500
                    payload = b'{"ok":true}' if outer.healthy else b'{"ok":false}'
                else:
                    outer.hits += 1
                    outer.seen.append({k.lower(): v for k, v in self.headers.items()})
                    status = 200
                    payload = json.dumps({"upstream": outer.name, "path": self.path, "method": self.command,
                                          "body": body.decode(errors="replace")}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Upstream", outer.name)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        """Dies: stops listening and drops its keep-alive connections."""
        import socket as _socket
        self.server.shutdown()
        self.server.server_close()
        for c in self.connections:
            try:
                c.shutdown(_socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


class ScriptedUpstream:
    """An upstream whose every connection is handed to `script(conn, request_head)` after the request's head
    has arrived; `connections` counts the connections it accepted."""

    def __init__(self, script):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.url = f"http://127.0.0.1:{self.srv.getsockname()[1]}"
        self.script = script
        self.connections = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                try:
                    if not self.script(conn, head.decode()):
                        return
                except OSError:
                    return

    def close(self):
        self.srv.close()


class RecordingUpstream(ScriptedUpstream):
    """A third-party module that keeps every request exactly as it arrived: the request line, each header line
    in order (repeats and spellings kept, unlike a dict of headers) and the body. It answers 200 with a small
    JSON body and keeps the connection open."""

    def __init__(self):
        self.requests = []
        super().__init__(None)

    def handle(self, conn):
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                fields = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
                length = int(next((v for k, v in fields if k.lower() == "content-length"), "0"))
                while len(data) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                body, data = data[:length], data[length:]
                self.requests.append({"method": method, "target": target, "fields": fields, "body": body})
                payload = json.dumps({"method": method, "target": target}).encode()
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                                 str(len(payload)).encode() + b"\r\n\r\n" + payload)
                except OSError:
                    return

    def field_lines(self, request, name):
        """The values of every header line of `request` whose name is `name` (case-insensitively)."""
        return [v for k, v in request["fields"] if k.lower() == name.lower()]


import json  # noqa: E402  (used by Upstream)


def self_signed(directory, name):
    """A throwaway certificate for localhost and 127.0.0.1: (certificate file, key file)."""
    cert, key = pathlib.Path(directory) / f"{name}.crt", pathlib.Path(directory) / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture
def upstream_factory():
    made = []

    def make(name, tls=None):
        u = Upstream(name, tls)
        made.append(u)
        return u

    yield make
    for u in made:
        try:
            u.stop()
        except Exception:
            pass
