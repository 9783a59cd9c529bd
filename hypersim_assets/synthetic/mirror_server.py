"""A loopback HTTP mirror of a Hypersim source directory (metadata CSVs and
``scenes/<scene>.zip``) with byte ranges, switchable faults (``faults``) and a link model
(``link_model``: round-trip latency and a shared bandwidth cap), so downloads can be tested and
benchmarked against a real server that misbehaves, or is far away, on purpose.

Standard library only: a ``ThreadingHTTPServer`` in a background thread.

Protocol choices:

* GET and HEAD only; HEAD ignores ``Range`` and answers the full-file headers.
* One byte range per request (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) gets
  ``206``. A request naming several ranges gets ``200`` with the whole file
  (a server may ignore ``Range``; RFC 9110 section 14.2), as does a ``Range``
  header we cannot parse. A syntactically valid but unsatisfiable single range
  gets ``416`` with ``Content-Range: bytes */<size>``.
* ``If-Range`` holding an ETag other than the current strong ETag, a weak ETag,
  or a date other than the file's ``Last-Modified`` makes the server ignore
  ``Range`` and answer ``200`` with the whole file.
* The ETag is strong and made from the file's size and ``mtime_ns``, so it
  changes when the file is replaced; the ``etag_change_after`` fault changes it
  without touching the file.
* HTTP/1.1 with keep-alive; every response carries ``Content-Length``.

The request log keeps the last ``max_log`` requests (a bounded buffer: a long-running
``serve`` does not grow without limit).
"""

from __future__ import annotations

import collections
import email.utils
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from hypersim_assets.synthetic.faults import Faults, FaultState
from hypersim_assets.synthetic.http_ranges import content_type, etag, if_range_matches, parse_single_range
from hypersim_assets.synthetic.link_model import LinkModel

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_MAX_LOG",
    "Faults",
    "LinkModel",
    "MirrorServer",
    "RequestRecord",
    "parse_single_range",
]

CHUNK_BYTES = 64 * 1024
DEFAULT_MAX_LOG = 10_000  # request records kept in memory


@dataclass
class RequestRecord:
    """One request, logged on arrival. ``status`` is 0 until the status line is chosen; both it and
    ``body_bytes`` are filled in before the bytes go out, so once a client has read a response its
    record is final. ``body_bytes`` counts body bytes written (fewer than promised when dropped).
    ``arrived_s`` and ``done_s`` are ``time.monotonic()`` when the request was read and when its
    response was written (0 until then), for benchmarks that ask where the time went."""

    method: str
    path: str
    range_header: str | None
    status: int
    body_bytes: int
    arrived_s: float = 0.0
    done_s: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # Without TCP_NODELAY, Nagle's algorithm meets the client's delayed ACK and every
    # small response stalls about 40 ms on loopback.
    disable_nagle_algorithm = True
    timeout = 30  # seconds an idle keep-alive connection may hold a thread

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature from the base class
        if self.server.mirror.verbose:
            super().log_message(format, *args)

    def setup(self) -> None:
        super().setup()
        mirror = self.server.mirror
        mirror._track(self.connection, add=True)
        if mirror.link.active:
            mirror.link.connection_opened(mirror._stopping)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.mirror._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    # -- helpers -----------------------------------------------------------

    def _simple(self, status: int, text: str, extra: dict[str, str] | None = None, send_body: bool = True) -> None:
        """A short text/plain answer (errors, injected failures, 416)."""
        body = (text + "\n").encode()
        self._log.status = status
        self._log.body_bytes = len(body) if send_body else 0
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _resolve(self, url_path: str) -> Path | None:
        """The file under root that ``url_path`` names, or None (missing, a folder, or outside root)."""
        raw = unquote(urlsplit(url_path).path)
        if "\x00" in raw or "\\" in raw:
            return None
        parts = [p for p in raw.split("/") if p]
        if any(p in (".", "..") for p in parts) or not parts:
            return None
        root = self.server.mirror.root
        candidate = root.joinpath(*parts)
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(root) or not resolved.is_file():
            return None
        return resolved

    def _serve(self, send_body: bool) -> None:
        mirror = self.server.mirror
        range_header = self.headers.get("Range")
        # Logged on arrival and filled in before the bytes go out, so a client
        # that has read its response always finds the record complete.
        self._log = RequestRecord(self.command, self.path, range_header, 0, 0, arrived_s=time.monotonic())
        mirror._record(self._log)
        if mirror.link.active:
            mirror.link.request_arrived(mirror._stopping)
        try:
            self._respond(send_body, range_header)
        except _Dropped:
            self.close_connection = True
        except OSError:  # client hung up, or the server is stopping
            self.close_connection = True
        finally:
            self._log.done_s = time.monotonic()

    def _respond(self, send_body: bool, range_header: str | None) -> None:
        mirror = self.server.mirror
        file_path = self._resolve(self.path)
        if file_path is None:
            self._simple(404, f"not found: {urlsplit(self.path).path}", send_body=send_body)
            return

        admission = mirror._fault_state.admit(self.path)
        faults, applies, generation, fail = (
            admission.faults,
            admission.applies,
            admission.generation,
            admission.fail_status,
        )
        if fail is not None:
            self._simple(fail, f"injected failure {fail}", {"Retry-After": "0"}, send_body=send_body)
            return

        with open(file_path, "rb") as f:
            st = os.fstat(f.fileno())
            size = st.st_size
            current_etag = etag(st, generation)
            headers = {
                "Accept-Ranges": "bytes",
                "ETag": current_etag,
                "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
                "Content-Type": content_type(file_path),
            }
            first, last, status = 0, size - 1, 200
            use_range = self.command == "GET" and range_header is not None and not (applies and faults.ignore_range)
            if_range = self.headers.get("If-Range")
            if use_range and if_range is not None and not if_range_matches(if_range, current_etag, st):
                use_range = False
            if use_range:
                parsed = parse_single_range(range_header, size)
                if parsed == "unsatisfiable":
                    headers.pop("Content-Type")
                    self._simple(416, "range not satisfiable", {**headers, "Content-Range": f"bytes */{size}"})
                    return
                if parsed is not None:
                    first, last = parsed
                    status = 206
                    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
            length = last - first + 1
            self._log.status = status
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if send_body:
                f.seek(first)
                self._stream(f, length, faults if applies else None)

    def _stream(self, f: BinaryIO, length: int, faults: Faults | None) -> None:
        """Copy ``length`` bytes from ``f`` in chunks, applying delay and drop faults; logs the bytes written."""
        mirror = self.server.mirror
        stop_at = length
        dropping = False
        if faults is not None and faults.drop_after_bytes is not None and faults.drop_after_bytes < length:
            dropping = mirror._fault_state.claim_drop()
            if dropping:
                stop_at = max(0, faults.drop_after_bytes)
        delay = faults.delay_s if faults is not None else 0.0
        sent = 0
        while sent < stop_at:
            if delay > 0 and mirror._stopping.wait(delay):
                raise ConnectionAbortedError("server stopping")
            chunk = f.read(min(CHUNK_BYTES, stop_at - sent))
            if not chunk:
                raise OSError(f"{f.name} shrank while being served")
            if mirror.link.bucket is not None:
                mirror.link.send(len(chunk), mirror._stopping)
                if mirror._stopping.is_set():
                    raise ConnectionAbortedError("server stopping")
            self._log.body_bytes = sent + len(chunk)
            try:
                self.wfile.write(chunk)
            except OSError:
                self._log.body_bytes = sent
                raise
            sent += len(chunk)
        if dropping:
            self._abort()
            raise _Dropped(sent)

    def _abort(self) -> None:
        """Close the connection mid-body so the client sees a short read."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Dropped(Exception):
    """A response cut short on purpose by the drop fault."""

    def __init__(self, sent: int) -> None:
        super().__init__(f"dropped after {sent} body bytes")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    mirror: MirrorServer

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - signature from the base class
        # A client that hangs up mid-body (e.g. after an ignored Range) is normal here.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError)) and not self.mirror.verbose:
            return
        super().handle_error(request, client_address)


class MirrorServer:
    """Serves the files under ``root`` on ``host:port`` (0 picks a free port) from a background thread."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        verbose: bool = False,
        rtt_ms: float = 0.0,
        link_mbps: float | None = None,
        max_log: int = DEFAULT_MAX_LOG,
    ) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"mirror root {self.root} is not a directory")
        if max_log < 1:
            raise ValueError(f"max_log must be at least 1, got {max_log}")
        self.host = host
        self.port = port
        self.verbose = verbose
        self.link = LinkModel(rtt_ms=rtt_ms, link_mbps=link_mbps)
        self.url = ""
        self._lock = threading.Lock()
        self._log: collections.deque[RequestRecord] = collections.deque(maxlen=max_log)
        self._fault_state = FaultState(faults)
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- faults and log ------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._fault_state.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        """A new ``Faults`` resets the fault counters; mutating the current one keeps them."""
        self._fault_state.faults = value

    @property
    def requests(self) -> list[RequestRecord]:
        """The last ``max_log`` requests, oldest first (a copy; the records themselves are live)."""
        with self._lock:
            return list(self._log)

    def reset_log(self) -> None:
        """Forget the recorded requests (fault counters and link statistics are kept)."""
        with self._lock:
            self._log.clear()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> MirrorServer:
        """Bind and serve in a daemon thread; ``url`` is valid afterwards."""
        if self._httpd is not None:
            raise RuntimeError("mirror server already started")
        self._stopping.clear()
        httpd = _Server((self.host, self.port), _Handler)
        httpd.mirror = self
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self.port = port
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"mirror-server:{port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut open connections and close the listening socket."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
