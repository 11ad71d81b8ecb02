"""Request framing (RFC 9112, CONTRACT.md "Safety rules"): a Transfer-Encoding other than exactly `chunked`
is 501 (an unknown coding) or 400 and the connection closes, so no body is ever read as another request."""
import socket

import pytest

from conftest import MODULES


def exchange(port, raw):
    """Sends raw bytes and reads until the server closes (or 3 s pass); returns what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(raw)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    return out


SMUGGLED = b"GET /v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("coding,status", [
    (b"chunked, identity", 501), (b"identity", 501), (b"gzip", 501), (b"xchunked", 501),
    (b"gzip, chunked", 501), (b"chunked\r\n , identity", 501), (b"", 400), (b"chunked,", 400),
])
def test_a_transfer_coding_other_than_chunked_is_refused_and_the_connection_closed(keel, coding, status):
    for module in ("gateway", "memory"):
        port = keel.port_base + ["gateway", "auth", "memory", "registry", "billing", "events"].index(module)
        out = exchange(port, b"POST /v1/memories HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Transfer-Encoding: " + coding + b"\r\n\r\n" + SMUGGLED)
        assert out.startswith(f"HTTP/1.1 {status} ".encode()), (module, coding, out[:200])
        assert out.count(b"HTTP/1.1 ") == 1, f"the body was read as another request: {out[:400]}"
        assert b"application/problem+json" in out


def test_chunked_alone_in_any_case_is_read_as_chunked(keel):
    body = b'{"email":"x","password":"y"}'
    chunked = hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    out = exchange(keel.port_base + 1, b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                       b"Content-Type: application/json\r\nTransfer-Encoding: Chunked\r\n\r\n" + chunked)
    assert out.startswith(b"HTTP/1.1 401 "), out[:200]  # the body was read: the credentials were checked


def test_transfer_encoding_with_content_length_is_400(keel):
    out = exchange(keel.port_base + 2, b"POST /v1/memories HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                       b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]


def head_then_body(port, head, body):
    """Sends a request head that asks for 100 Continue, waits for it (the server has read the head and now reads
    the body), sends `body`, and reads until the server closes (or 3 s pass): (what came first, the rest)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(head)
        first = b""
        while b"\r\n\r\n" not in first:
            chunk = s.recv(4096)
            if not chunk:
                break
            first += chunk
        out = b""
        try:
            s.sendall(body)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            pass
    return first, out


CHUNKED_HEAD = (b"POST /v1/memories HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")


def test_a_chunked_body_past_the_limit_is_413_once_the_head_was_taken(keel):
    # The head is fine, so the server asks for the body; a chunk that would take it past 1 MiB ends it.
    for module in ("gateway", "memory"):
        first, out = head_then_body(keel.port_base + MODULES.index(module), CHUNKED_HEAD,
                                    b"200000\r\n" + b"x" * 1024)
        assert first.startswith(b"HTTP/1.1 100 Continue"), (module, first)
        assert out.startswith(b"HTTP/1.1 413 "), (module, out[:200])
        assert b"application/problem+json" in out and b"the request body exceeds 1048576 bytes" in out


def test_a_malformed_chunked_body_is_400_and_the_connection_closed(keel):
    for body in (b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n", b"-1\r\n{}\r\n0\r\n\r\n"):
        first, out = head_then_body(keel.port_base + MODULES.index("memory"), CHUNKED_HEAD, body + SMUGGLED)
        assert first.startswith(b"HTTP/1.1 100 Continue"), first
        assert out.startswith(b"HTTP/1.1 400 "), (body, out[:200])
        assert b"malformed HTTP request body" in out
        assert out.count(b"HTTP/1.1 ") == 1, f"the rest was read as another request: {out[:400]}"


def test_request_headers_past_16_kib_are_431(keel):
    for module in ("gateway", "memory"):
        out = exchange(keel.port_base + MODULES.index(module),
                       b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (17 * 1024) + b"\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 431 "), (module, out[:200])
        assert b"application/problem+json" in out and b"the request headers are too large" in out
    # Just under the limit is served.
    out = exchange(keel.port_base, b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " +
                   b"a" * (15 * 1024) + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 "), out[:200]
