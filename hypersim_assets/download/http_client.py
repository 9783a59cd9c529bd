"""A small HTTP client on the standard library for downloading from a Hypersim
source: HEAD, ranged GETs streamed into a sink, retries with exponential backoff
and full jitter, and ETag tracking so a file that changes between requests is
noticed instead of silently mixed.

Behaviour worth knowing:

* Transient failures (connection reset or refused, timeouts, a body shorter than
  its ``Content-Length``, ``5xx``) are retried up to ``RetryConfig.max_attempts``
  attempts in all. A retry continues a range from the byte where the broken
  response stopped, so bytes already handed to the sink are never fetched twice.
* ``404`` raises :class:`SourceNotFound`; other ``4xx`` (except 408 and 429,
  which are retried like ``5xx``) raise :class:`HttpStatusError` at once.
  ``Retry-After`` is not read; the backoff decides.
* With an expected ETag, ranged requests carry ``If-Range``; a server whose file
  changed answers ``200`` with a different ETag, which raises :class:`RemoteChanged`.
* A server that ignores ``Range`` (answers ``200`` with the same ETag): when the
  wanted range ends within the first ``ignore_range_fallback_limit`` bytes the
  body is streamed and bytes before the wanted offset are discarded (so small
  files and zip heads still work); beyond that :class:`RangeNotSupported` is
  raised rather than pulling gigabytes per request.
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from hypersim_assets.download.errors import (
    HttpStatusError,
    RangeNotSupported,
    RemoteChanged,
    SourceNotFound,
    TransferFailed,
)

_RETRY_4XX = frozenset({408, 429})  # request timeout, too many requests: worth another try
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_READ_CHUNK = 256 * 1024
_USER_AGENT = "hypersim-assets"


class Sink(Protocol):
    """Anything with ``write(bytes)``: a binary file or an in-memory buffer."""

    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class RetryConfig:
    """How hard to try. Delays are in seconds; attempt ``n`` (0-based retry) sleeps
    ``uniform(0, min(max_delay_s, base_delay_s * 2**n))`` (full jitter)."""

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    timeout_s: float = 60.0  # per socket operation (connect, each read), not per request
    ignore_range_fallback_limit: int = 64 * 1024 * 1024  # bytes

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.timeout_s <= 0:
            raise ValueError("delays must be non-negative and the timeout positive")

    def backoff_s(self, retry_index: int) -> float:
        """Seconds to sleep before retry number ``retry_index`` (0 for the first retry)."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** min(retry_index, 60)))
        return random.uniform(0.0, cap)


@dataclass
class TransferStats:
    """Counters shared by every request of one client; safe to read at any time."""

    bytes_received: int = 0  # body bytes off the wire, including discarded ones and broken responses
    retries: int = 0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, received: int = 0, retries: int = 0, requests: int = 0) -> None:
        with self._lock:
            self.bytes_received += received
            self.retries += retries
            self.requests += requests


@dataclass(frozen=True)
class RemoteInfo:
    """What a HEAD (or the first ranged GET) told us about a file."""

    url: str
    size: int | None
    etag: str | None
    accepts_ranges: bool


class _Transient(Exception):
    """Internal: a failure worth retrying."""


class _ShortBody(_Transient):
    pass


_TRANSIENT_ERRORS = (
    ConnectionError,  # reset, refused, aborted, broken pipe
    TimeoutError,  # socket.timeout is an alias
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    http.client.CannotSendRequest,
    http.client.ResponseNotReady,
    socket.gaierror,
    _Transient,
)


def _strong_etag(value: str | None) -> str | None:
    """The ETag if it is strong (weak ETags cannot be used with If-Range)."""
    if value is None or value.startswith("W/"):
        return None
    return value


class HttpClient:
    """A thread-safe client; each thread keeps its own keep-alive connection per host.

    ``on_retry(url, error, retry_index)`` is called before each backoff sleep
    (for logging; tests use it to switch faults off).
    """

    def __init__(
        self,
        retry: RetryConfig | None = None,
        stats: TransferStats | None = None,
        on_retry: Callable[[str, BaseException, int], None] | None = None,
    ) -> None:
        self.retry = retry or RetryConfig()
        self.stats = stats or TransferStats()
        self.on_retry = on_retry
        self._local = threading.local()
        self._all_connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    # -- connections ---------------------------------------------------------

    def _connection(self, url: str) -> tuple[http.client.HTTPConnection, str]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        key = (parts.scheme, parts.hostname, parts.port)
        pool: dict = getattr(self._local, "pool", None) or {}
        self._local.pool = pool
        conn = pool.get(key)
        if conn is None:
            cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            conn = cls(parts.hostname, parts.port, timeout=self.retry.timeout_s)
            pool[key] = conn
            with self._lock:
                self._all_connections.append(conn)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return conn, target

    def _drop_connection(self, url: str) -> None:
        parts = urlsplit(url)
        pool: dict = getattr(self._local, "pool", None) or {}
        conn = pool.pop((parts.scheme, parts.hostname, parts.port), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close every connection any thread opened."""
        with self._lock:
            conns, self._all_connections = self._all_connections, []
        for conn in conns:
            conn.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- retry loop ----------------------------------------------------------

    def _with_retries(self, url: str, attempt: Callable[[], object]) -> object:
        last: BaseException | None = None
        for index in range(self.retry.max_attempts):
            if index:
                self.stats.add(retries=1)
                if self.on_retry is not None:
                    self.on_retry(url, last, index - 1)  # type: ignore[arg-type]
                time.sleep(self.retry.backoff_s(index - 1))
            try:
                return attempt()
            except _TRANSIENT_ERRORS as exc:
                self._drop_connection(url)
                last = exc
            except HttpStatusError as exc:
                self._drop_connection(url)
                if exc.status < 500 and exc.status not in _RETRY_4XX:
                    raise
                last = exc
            except BaseException:
                self._drop_connection(url)
                raise
        raise TransferFailed(
            f"{url}: giving up after {self.retry.max_attempts} attempts; last error: {last!r}", url
        ) from last

    def _send(self, method: str, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        conn, target = self._connection(url)
        self.stats.add(requests=1)
        conn.request(method, target, headers={"User-Agent": _USER_AGENT, **headers})
        resp = conn.getresponse()
        status = resp.status
        if status in (200, 206):
            return resp
        body = resp.read(4096)  # small error bodies; keeps the connection usable when they are complete
        self.stats.add(received=len(body))
        if status == 404:
            raise SourceNotFound(f"not found (HTTP 404): {url}", url)
        raise HttpStatusError(f"HTTP {status} {resp.reason} for {url}", url, status)

    # -- public API ----------------------------------------------------------

    def head(self, url: str) -> RemoteInfo:
        """Size, ETag and range support of ``url`` from a HEAD request."""

        def attempt() -> RemoteInfo:
            resp = self._send("HEAD", url, {})
            resp.read()
            length = resp.getheader("Content-Length")
            return RemoteInfo(
                url=url,
                size=int(length) if length is not None else None,
                etag=resp.getheader("ETag"),
                accepts_ranges=(resp.getheader("Accept-Ranges") or "").lower() == "bytes",
            )

        return self._with_retries(url, attempt)  # type: ignore[return-value]

    def get_tail(self, url: str, n: int) -> tuple[bytes, RemoteInfo]:
        """The last ``n`` bytes of ``url`` (fewer if the file is smaller) and the file's size and ETag.

        One suffix-range request (``Range: bytes=-n``) instead of HEAD plus GET.
        Meant for small tails (held in memory); a broken response is retried whole.
        """
        if n <= 0:
            raise ValueError(f"tail length must be positive, not {n}")

        def attempt() -> tuple[bytes, RemoteInfo]:
            resp = self._send_tail(url, n)
            got_etag = resp.getheader("ETag")
            if resp.status == 206:
                match = _CONTENT_RANGE.match(resp.getheader("Content-Range") or "")
                if match is None or match.group(3) == "*":
                    self._drop_connection(url)
                    raise HttpStatusError(
                        f"{url}: unusable Content-Range {resp.getheader('Content-Range')!r}", url, 206
                    )
                first, size = int(match.group(1)), int(match.group(3))
                skip, expect = 0, size - first
            else:
                length = resp.getheader("Content-Length")
                if length is None:
                    self._drop_connection(url)
                    raise HttpStatusError(f"{url}: the server did not say how large the file is", url, resp.status)
                size = int(length)
                if size > self.retry.ignore_range_fallback_limit:
                    self._drop_connection(url)
                    raise RangeNotSupported(
                        f"{url} ignored a Range request for its last {n} bytes; streaming {size} bytes to reach them is "
                        f"refused (more than ignore_range_fallback_limit={self.retry.ignore_range_fallback_limit})",
                        url,
                    )
                skip, expect = max(0, size - n), min(n, size)
            buf = bytearray()

            class _Into:
                def write(self, data: bytes) -> None:
                    buf.extend(data)

            self._stream(resp, url, skip, expect, _Into(), lambda _n: None)
            return bytes(buf), RemoteInfo(url, size, got_etag, resp.status == 206)

        return self._with_retries(url, attempt)  # type: ignore[return-value]

    def _send_tail(self, url: str, n: int) -> http.client.HTTPResponse:
        try:
            return self._send("GET", url, {"Range": f"bytes=-{n}"})
        except HttpStatusError as exc:
            if exc.status != 416:
                raise
        # 416 for a suffix range means an empty file; ask again without Range to read its headers.
        return self._send("GET", url, {})

    def get_range(
        self,
        url: str,
        start: int,
        length: int | None,
        sink: Sink,
        etag: str | None = None,
    ) -> RemoteInfo:
        """Stream bytes ``[start, start + length)`` of ``url`` into ``sink`` (``length=None``: to the end).

        With ``etag``, requests carry ``If-Range`` and a response with another ETag
        raises :class:`RemoteChanged`. Retries resume at the first byte not yet
        written. Returns what the (last) response said about the file.
        """
        if start < 0 or (length is not None and length < 0):
            raise ValueError(f"bad range start={start} length={length} for {url}")
        written = 0
        info: list[RemoteInfo] = []
        pin = [etag]  # without an expected ETag, the first response's is pinned, so a resumed retry cannot mix versions

        def attempt() -> None:
            # A server may answer a range with fewer bytes than asked (its Content-Range says so): ask on.
            while length is None or written < length:
                before = written
                rest = None if length is None else length - written
                info.append(self._one_range(url, start + written, rest, sink, pin, on_bytes))
                size = info[-1].size
                if length is None and (size is None or start + written >= size):
                    return
                if written == before:
                    raise _ShortBody(f"{url}: a response for bytes from {start + written} carried none")

        def on_bytes(n: int) -> None:
            nonlocal written
            written += n

        if length == 0:
            return RemoteInfo(url, None, etag, True)
        self._with_retries(url, attempt)
        return info[-1] if info else RemoteInfo(url, None, etag, True)

    def _one_range(
        self,
        url: str,
        first: int,
        length: int | None,
        sink: Sink,
        pin: list[str | None],
        on_bytes: Callable[[int], None],
    ) -> RemoteInfo:
        """One request for bytes from ``first`` (``length`` of them or to the end); raises on a short body.

        ``pin[0]`` is the ETag the bytes must come from; when None it is set from this response.
        """
        etag = pin[0]
        headers: dict[str, str] = {}
        ranged = first > 0 or length is not None
        if ranged:
            last = "" if length is None else str(first + length - 1)
            headers["Range"] = f"bytes={first}-{last}"
            if etag is not None and _strong_etag(etag):
                headers["If-Range"] = etag
        resp = self._send("GET", url, headers)
        got_etag = resp.getheader("ETag")
        if etag is not None and got_etag != etag:
            self._drop_connection(url)
            raise RemoteChanged(url, etag, got_etag)
        if etag is None:
            pin[0] = _strong_etag(got_etag)
        body_length = resp.getheader("Content-Length")
        skip = 0
        total_size: int | None = None
        if resp.status == 206:
            match = _CONTENT_RANGE.match(resp.getheader("Content-Range") or "")
            if match is None or int(match.group(1)) != first:
                self._drop_connection(url)
                raise HttpStatusError(
                    f"{url}: asked for bytes from {first}, got Content-Range {resp.getheader('Content-Range')!r}",
                    url,
                    206,
                )
            if match.group(3) != "*":
                total_size = int(match.group(3))
            expect = int(match.group(2)) - first + 1
        else:  # 200: the whole file
            total_size = int(body_length) if body_length is not None else None
            if ranged:
                end = first + (length if length is not None else (total_size or 0) - first)
                limit = self.retry.ignore_range_fallback_limit
                if end > limit:
                    self._drop_connection(url)
                    raise RangeNotSupported(
                        f"{url} ignored a Range request for bytes {first}-{end - 1}; streaming past the first "
                        f"{limit} bytes to reach them is refused (raise ignore_range_fallback_limit or use a mirror "
                        "that supports Range)",
                        url,
                    )
                skip = first
            expect = (total_size - first) if total_size is not None else None
            if length is not None:
                expect = length if expect is None else min(expect, length)
        if length is not None and expect is not None and expect > length:
            expect = length
        self._stream(resp, url, skip, expect, sink, on_bytes)
        return RemoteInfo(url, total_size, got_etag, resp.status == 206 or resp.getheader("Accept-Ranges") == "bytes")

    def _stream(
        self,
        resp: http.client.HTTPResponse,
        url: str,
        skip: int,
        expect: int | None,
        sink: Sink,
        on_bytes: Callable[[int], None],
    ) -> None:
        """Discard ``skip`` bytes, then copy ``expect`` bytes (or to the end) into ``sink``."""
        copied = 0
        while skip:
            chunk = resp.read(min(_READ_CHUNK, skip))
            if not chunk:
                raise _ShortBody(f"{url}: body ended while skipping to the wanted offset")
            self.stats.add(received=len(chunk))
            skip -= len(chunk)
        while expect is None or copied < expect:
            want = _READ_CHUNK if expect is None else min(_READ_CHUNK, expect - copied)
            chunk = resp.read(want)
            if not chunk:
                break
            self.stats.add(received=len(chunk))
            sink.write(chunk)
            copied += len(chunk)
            on_bytes(len(chunk))
        if expect is not None and copied < expect:
            raise _ShortBody(f"{url}: body ended after {copied} of {expect} bytes")
        if not resp.isclosed():
            # We stopped before the end of the body (ignored Range): the connection cannot be reused.
            self._drop_connection(url)
