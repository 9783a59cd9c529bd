"""A loopback HTTP mirror of a Hypersim source directory (metadata CSVs and
``scenes/<scene>.zip``) with byte ranges and switchable faults, so downloads
can be tested against a real server that misbehaves on purpose.

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

Fault counters (failures answered, responses dropped, requests seen for the
ETag fault) belong to the server and only count requests the faults apply to
(existing files whose path contains ``path_filter``). Assigning a new
``Faults`` to ``MirrorServer.faults`` resets the counters; mutating the current
one in place keeps them.
"""

from __future__ import annotations

import argparse
import dataclasses
import email.utils
import os
import re
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

CHUNK_BYTES = 64 * 1024
_CONTENT_TYPES = {".zip": "application/zip", ".csv": "text/csv"}
_SINGLE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass
class Faults:
    """Misbehaviour to switch on. Counts are per server; ``-1`` in a ``*_times`` field means always."""

    drop_after_bytes: int | None = None  # close the connection after this many body bytes of a response
    drop_times: int = 1  # how many responses get dropped (then normal again); -1 = always
    fail_status: int | None = None  # answer this status (e.g. 500, 503) ...
    fail_times: int = 0  # ... this many times, then normal; -1 = always
    ignore_range: bool = False  # answer 200 with the whole file even when Range was asked
    etag_change_after: int | None = None  # after this many requests every file's ETag changes
    delay_s: float = 0.0  # sleep this long (seconds) before each body chunk of CHUNK_BYTES
    path_filter: str | None = None  # faults apply only to request paths containing this substring


@dataclass
class RequestRecord:
    """One request, logged on arrival. ``status`` is 0 until the status line is chosen; both it and
    ``body_bytes`` are filled in before the bytes go out, so once a client has read a response its
    record is final. ``body_bytes`` counts body bytes written (fewer than promised when dropped)."""

    method: str
    path: str
    range_header: str | None
    status: int
    body_bytes: int


@dataclass
class _Counters:
    seen: int = 0  # requests the faults applied to (drives etag_change_after)
    failed: int = 0
    dropped: int = 0


def _content_type(path: Path) -> str:
    return _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def _etag(st: os.stat_result, generation: int) -> str:
    suffix = f"-g{generation}" if generation else ""
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}{suffix}"'


def parse_single_range(header: str, size: int) -> tuple[int, int] | None | str:
    """Parse a ``Range`` header against a file of ``size`` bytes.

    Returns ``(first, last)`` inclusive byte offsets for one satisfiable range,
    ``None`` when the header should be ignored (malformed, not ``bytes``, or
    several ranges) and ``"unsatisfiable"`` for a valid single range outside the file.
    """
    match = _SINGLE_RANGE.match(header)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # suffix range: the last n bytes
        n = int(last_text)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # invalid syntax: ignore the header
    if first >= size:
        return "unsatisfiable"
    return first, min(last, size - 1)


def _if_range_matches(value: str, etag: str, st: os.stat_result) -> bool:
    value = value.strip()
    if value.startswith("W/"):
        return False  # weak validators never satisfy If-Range
    if value.startswith('"'):
        return value == etag
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return int(when.timestamp()) == int(st.st_mtime)


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
        self.server.mirror._track(self.connection, add=True)

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
        self._log = RequestRecord(self.command, self.path, range_header, 0, 0)
        mirror._record(self._log)
        try:
            self._respond(send_body, range_header)
        except _Dropped:
            self.close_connection = True
        except OSError:  # client hung up, or the server is stopping
            self.close_connection = True

    def _respond(self, send_body: bool, range_header: str | None) -> None:
        mirror = self.server.mirror
        file_path = self._resolve(self.path)
        if file_path is None:
            self._simple(404, f"not found: {urlsplit(self.path).path}", send_body=send_body)
            return

        faults, applies, generation, fail = mirror._admit(self.path)
        if fail is not None:
            self._simple(fail, f"injected failure {fail}", {"Retry-After": "0"}, send_body=send_body)
            return

        with open(file_path, "rb") as f:
            st = os.fstat(f.fileno())
            size = st.st_size
            etag = _etag(st, generation)
            headers = {
                "Accept-Ranges": "bytes",
                "ETag": etag,
                "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
                "Content-Type": _content_type(file_path),
            }
            first, last, status = 0, size - 1, 200
            use_range = self.command == "GET" and range_header is not None and not (applies and faults.ignore_range)
            if_range = self.headers.get("If-Range")
            if use_range and if_range is not None and not _if_range_matches(if_range, etag, st):
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
            dropping = mirror._claim_drop()
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
    ) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"mirror root {self.root} is not a directory")
        self.host = host
        self.port = port
        self.verbose = verbose
        self.requests: list[RequestRecord] = []
        self.url = ""
        self._lock = threading.Lock()
        self._faults = faults if faults is not None else Faults()
        self._counters = _Counters()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- faults and log ------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        with self._lock:
            self._faults = value
            self._counters = _Counters()

    def reset_log(self) -> None:
        """Forget the recorded requests (fault counters are kept)."""
        with self._lock:
            del self.requests[:]

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _admit(self, path: str) -> tuple[Faults, bool, int, int | None]:
        """Count a request for an existing file: (faults snapshot, whether they apply, ETag generation, status to fail with)."""
        with self._lock:
            faults = dataclasses.replace(self._faults)
            applies = faults.path_filter is None or faults.path_filter in path
            if not applies:
                return faults, False, 0, None
            c = self._counters
            c.seen += 1
            generation = int(faults.etag_change_after is not None and c.seen > faults.etag_change_after)
            fail = None
            if faults.fail_status is not None and (faults.fail_times < 0 or c.failed < faults.fail_times):
                c.failed += 1
                fail = faults.fail_status
            return faults, True, generation, fail

    def _claim_drop(self) -> bool:
        with self._lock:
            times = self._faults.drop_times
            if times >= 0 and self._counters.dropped >= times:
                return False
            self._counters.dropped += 1
            return True

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


def serve_forever(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    faults: Faults | None = None,
    verbose: bool = False,
) -> None:
    """Serve ``root`` until interrupted (Ctrl-C returns normally). Prints nothing; the caller announces the URL."""
    _run_until_interrupted(MirrorServer(root, host=host, port=port, faults=faults, verbose=verbose))


def _run_until_interrupted(server: MirrorServer, announce: bool = False) -> None:
    server.start()
    if announce:
        print(f"serving {server.root} at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server._stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m hypersim_assets.synthetic.mirror_server ROOT [--host H] [--port P] [-v]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder holding the metadata CSVs and scenes/<scene>.zip")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)
    _run_until_interrupted(MirrorServer(args.root, host=args.host, port=args.port, verbose=args.verbose), announce=True)


if __name__ == "__main__":
    main()
