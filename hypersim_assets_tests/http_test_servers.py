"""Loopback servers for download tests (test-only): a forward HTTP proxy that resolves made-up
host names itself, a server that redirects every request elsewhere, one that demands basic
auth in front of a mirror, and a TCP listener that drops every connection at once."""

from __future__ import annotations

import base64
import http.client
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_PASS_HEADERS = ("Range", "If-Range", "Authorization", "User-Agent", "Accept-Encoding")
_CHUNK = 64 * 1024


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1:0 in a background thread; a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


def _relay(handler: BaseHTTPRequestHandler, host: str, port: int, path: str, extra: dict[str, str]) -> int:
    """Send the handler's request to ``host:port`` and stream the answer back; returns the status."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {k: v for k in _PASS_HEADERS if (v := handler.headers.get(k)) is not None}
    headers.update(extra)
    conn.request(handler.command, path, headers=headers)
    resp = conn.getresponse()
    handler.send_response(resp.status, resp.reason)
    for key, value in resp.getheaders():
        if key.lower() not in ("connection", "keep-alive", "transfer-encoding"):
            handler.send_header(key, value)
    handler.end_headers()
    if handler.command != "HEAD":
        while chunk := resp.read(_CHUNK):
            handler.wfile.write(chunk)
    conn.close()
    return resp.status


@dataclass
class ProxyRecord:
    method: str
    target: str  # the absolute URL the client asked the proxy for
    status: int


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _handle(self) -> None:
        proxy: ForwardProxy = self.server.owner  # type: ignore[attr-defined]
        # Each request is recorded before its answer goes out: a client that has its answer
        # must find the request in the log (recording afterwards races with the client).
        if proxy.refuse_status is not None:
            proxy.record(ProxyRecord(self.command, self.path, proxy.refuse_status))
            self.send_response(proxy.refuse_status, "Refused by test proxy")
            if proxy.refuse_status == 407:
                self.send_header("Proxy-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = urlsplit(self.path)  # absolute-form request target: what makes this a forward proxy
        if target.scheme != "http" or target.hostname not in proxy.hosts:
            proxy.record(ProxyRecord(self.command, self.path, 502))
            self.send_error(502, f"test proxy cannot resolve {target.hostname!r}")
            return
        real_host = proxy.hosts[target.hostname]
        path = target.path + (f"?{target.query}" if target.query else "")
        rec = ProxyRecord(self.command, self.path, 0)  # status filled in once the relay answered
        proxy.record(rec)
        rec.status = _relay(self, real_host, target.port or 80, path, {"Host": target.netloc.rpartition("@")[2]})

    do_GET = _handle
    do_HEAD = _handle


class ForwardProxy(_Server):
    """A forward HTTP proxy: requests for a host in ``hosts`` (made-up names) go to the mapped address.

    With ``refuse_status`` every request gets that status (e.g. 407, proxy authentication required).
    """

    def __init__(self, hosts: dict[str, str], refuse_status: int | None = None) -> None:
        super().__init__(_ProxyHandler)
        self.hosts = hosts
        self.refuse_status = refuse_status
        self.requests: list[ProxyRecord] = []
        self._lock = threading.Lock()

    def record(self, rec: ProxyRecord) -> None:
        with self._lock:
            self.requests.append(rec)


class _RedirectHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _handle(self) -> None:
        server: RedirectServer = self.server.owner  # type: ignore[attr-defined]
        location = server.location(self.path)
        server.seen.append((self.command, self.path, self.headers.get("Range"), self.headers.get("If-Range")))
        self.send_response(server.status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = _handle
    do_HEAD = _handle


class RedirectServer(_Server):
    """Answers every request with ``status`` (302, 307, ...) and ``Location: location(path)``."""

    def __init__(self, location: Callable[[str], str], status: int = 302) -> None:
        super().__init__(_RedirectHandler)
        self.location = location
        self.status = status
        self.seen: list[tuple[str, str, str | None, str | None]] = []


class _AuthHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _handle(self) -> None:
        server: BasicAuthGate = self.server.owner  # type: ignore[attr-defined]
        want = "Basic " + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
        if self.headers.get("Authorization") != want:
            server.denied += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="hypersim"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        server.allowed += 1
        _relay(self, "127.0.0.1", server.upstream_port, self.path, {})

    do_GET = _handle
    do_HEAD = _handle


class BasicAuthGate(_Server):
    """Demands HTTP basic auth ``user:password``, then relays to the server on ``upstream_port``."""

    def __init__(self, upstream_port: int, user: str, password: str) -> None:
        super().__init__(_AuthHandler)
        self.upstream_port = upstream_port
        self.user, self.password = user, password
        self.denied = 0
        self.allowed = 0


@dataclass
class DroppingListener:
    """A TCP listener on loopback that accepts each connection and closes it at once: with
    ``reset`` by a TCP reset (``SO_LINGER`` 0; the client sees a connection reset), else by a
    plain close (a TLS client sees an EOF in the handshake). ``accepted`` counts connections."""

    reset: bool = True
    accepted: int = 0
    sock: socket.socket = field(default_factory=socket.socket)

    def __post_init__(self) -> None:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def __enter__(self) -> DroppingListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
