"""HTTP for a Hypersim source on urllib3: pooling, proxies (``HTTPS_PROXY``, ``HTTP_PROXY``,
``NO_PROXY``, lower case too), redirects, retries with backoff, jitter and ``Retry-After``
come from urllib3; what stays ours is the byte-range logic: ranged GETs streamed into a
sink, resuming a broken body from the byte where it stopped, and ETag pinning so a file
that changes between requests is noticed instead of silently mixed.

Behaviour worth knowing:

* Transient failures (connection reset or refused, timeouts, TLS EOF, unreachable
  network or host, a body shorter than its ``Content-Length``, ``5xx``, ``408``,
  ``429``) are retried up to ``RetryConfig.max_attempts`` attempts in all, sleeping
  ``backoff_factor * 2**n`` plus jitter (capped), or what ``Retry-After`` asks. A retry
  continues a range from the byte where the broken response stopped.
* ``404`` raises :class:`SourceNotFound`; other ``4xx`` raise :class:`HttpStatusError` at once.
* Redirects (301, 302, 303, 307, 308) are followed for GET and ranged GET, at most
  ``max_redirects`` in a row; ``Range`` and ``If-Range`` go along, ``Authorization``
  only to the same host.
* With an expected ETag, ranged requests carry ``If-Range``; a server whose file changed
  answers ``200`` with a different ETag, which raises :class:`RemoteChanged`.
* A server that ignores ``Range`` (``200`` with the same ETag): when the wanted range
  ends within ``ignore_range_fallback_limit`` bytes the body is streamed and bytes before
  the wanted offset discarded; beyond that :class:`RangeNotSupported`.
* User info in a URL (``http://user:secret@host/...``) is sent as HTTP basic auth and
  never appears in a message: errors name :func:`~hypersim_assets.download.source.redact_url`.
* :meth:`HttpClient.cancel` makes every request of the client stop at the next chunk or
  retry wait (a Ctrl-C in the main thread is not held up by worker threads' retries).
"""

from __future__ import annotations

import re
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import (
    MaxRetryError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import Retry, Timeout, make_headers

from hypersim_assets.download.errors import (
    HttpError,
    HttpStatusError,
    ProxyRefused,
    RangeNotSupported,
    RangeProtocolError,
    RemoteChanged,
    SourceNotFound,
    TransferFailed,
)
from hypersim_assets.download.source import redact_url

__all__ = [
    "HttpClient",
    "HttpError",
    "HttpStatusError",
    "ProxyRefused",
    "RangeNotSupported",
    "RangeProtocolError",
    "RemoteChanged",
    "RemoteInfo",
    "RetryConfig",
    "SourceNotFound",
    "TransferFailed",
    "TransferStats",
]

_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_READ_CHUNK = 256 * 1024
_USER_AGENT = "hypersim-assets"


class Sink(Protocol):
    """Anything with ``write(bytes)``: a binary file or an in-memory buffer."""

    def write(self, data: bytes, /) -> object: ...


class Cancelled(Exception):
    """The client was cancelled (:meth:`HttpClient.cancel`) while a request was running."""


@dataclass(frozen=True)
class RetryConfig:
    """How hard to try. Seconds throughout; retry ``n`` (from the second on) sleeps
    ``min(max_delay_s, base_delay_s * 2**n + uniform(0, base_delay_s))`` unless the server
    sends ``Retry-After`` (honoured up to ``retry_after_max_s``)."""

    max_attempts: int = 6  # attempts in all per request, whatever failed (redirects do not count)
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    timeout_s: float = 60.0  # per socket operation (connect, each read), not per request
    ignore_range_fallback_limit: int = 64 * 1024 * 1024  # bytes
    max_redirects: int = 10
    retry_after_max_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.timeout_s <= 0:
            raise ValueError("delays must be non-negative and the timeout positive")


@dataclass
class TransferStats:
    """Counters shared by every request of one client; safe to read at any time."""

    bytes_received: int = 0  # body bytes off the wire, including discarded ones and broken responses
    retries: int = 0
    requests: int = 0  # requests whose response (or failure) was seen, redirects included
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


class _ShortBody(ProtocolError):
    """A body that ended before the bytes its headers promised: a read error, retried."""


@dataclass
class _Budget:
    """The Retry state of one logical request, carried across the requests that resume it."""

    retry: _ObservedRetry


class _ObservedRetry(Retry):
    """urllib3's Retry that reports each retry to its client and waits on the client's cancel event."""

    client: HttpClient | None = None

    def new(self, **kw: object) -> _ObservedRetry:
        fresh = super().new(**kw)
        fresh.client = self.client
        return fresh

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):  # noqa: ANN001, ANN201 - urllib3's signature
        client = self.client
        if client is not None:
            client.stats.add(requests=1)
            client.check_cancelled()
        if isinstance(error, SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(error):
            raise MaxRetryError(_pool, url, error) from error  # a wrong certificate stays wrong
        base: Retry = self
        if response is not None and response.get_redirect_location() and self.total is not None:
            base = self.new(total=self.total + 1)  # a redirect is not a failed attempt: only ``redirect`` bounds it
        fresh = Retry.increment(base, method, url, response, error, _pool, _stacktrace)
        if client is not None and not (response is not None and response.get_redirect_location()):
            client.stats.add(retries=1)
            if client.on_retry is not None:
                cause = error or HttpStatusError(f"HTTP {response.status}", redact_url(url or ""), response.status)
                client.on_retry(redact_url(url or ""), cause, len(fresh.history) - 1)
        return fresh

    def sleep_for_retry(self, response) -> bool:  # noqa: ANN001
        retry_after = self.get_retry_after(response)
        if retry_after:
            self._wait(retry_after)
            return True
        return False

    def _sleep_backoff(self) -> None:
        self._wait(self.get_backoff_time())

    def _wait(self, seconds: float) -> None:
        if self.client is None:
            threading.Event().wait(seconds)
            return
        if seconds > 0 and self.client._cancelled.wait(seconds):
            raise Cancelled("download cancelled during a retry wait")
        self.client.check_cancelled()


def _split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without user info, and the basic-auth header it carried (if any)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {redact_url(url)!r}")
    if parts.username is None and parts.password is None:
        return url, {}
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    auth = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return bare, make_headers(basic_auth=auth)


class HttpClient:
    """A thread-safe client over one urllib3 pool manager per proxy (proxies from the environment).

    ``on_retry(url, error, retry_index)`` is called after each failed attempt that will be
    retried (for logging; tests use it to switch faults off). ``proxies`` maps a scheme to
    a proxy URL; None reads ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` (either case).
    """

    def __init__(
        self,
        retry: RetryConfig | None = None,
        stats: TransferStats | None = None,
        on_retry: Callable[[str, BaseException, int], None] | None = None,
        proxies: dict[str, str] | None = None,
        pool_size: int = 16,
    ) -> None:
        self.retry = retry or RetryConfig()
        self.stats = stats or TransferStats()
        self.on_retry = on_retry
        self.proxies = urllib.request.getproxies_environment() if proxies is None else dict(proxies)
        self._pool_size = pool_size
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    # -- connections ---------------------------------------------------------

    def proxy_for(self, url: str) -> str | None:
        """The proxy URL that requests for ``url`` go through, or None (direct, or host in ``NO_PROXY``)."""
        parts = urlsplit(url)
        proxy = self.proxies.get(parts.scheme)
        if not proxy or urllib.request.proxy_bypass_environment(parts.hostname or "", self.proxies):
            return None
        return proxy if "://" in proxy else f"http://{proxy}"

    def _manager(self, proxy: str | None) -> urllib3.PoolManager:
        with self._lock:
            manager = self._managers.get(proxy)
            if manager is None:
                kw = {"num_pools": 16, "maxsize": self._pool_size, "timeout": Timeout(self.retry.timeout_s)}
                if proxy is None:
                    manager = urllib3.PoolManager(**kw)
                else:
                    bare, auth = _split_credentials(proxy)
                    headers = {"Proxy-Authorization": auth["authorization"]} if auth else None
                    manager = urllib3.ProxyManager(bare, proxy_headers=headers, **kw)
                self._managers[proxy] = manager
            return manager

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            managers, self._managers = list(self._managers.values()), {}
        for manager in managers:
            manager.clear()

    def cancel(self) -> None:
        """Make running and future requests of this client raise :class:`Cancelled` promptly."""
        self._cancelled.set()

    def check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled("download cancelled")

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ---------------------------------------------------------

    def _new_retry(self) -> _ObservedRetry:
        cfg = self.retry
        retry = _ObservedRetry(
            total=cfg.max_attempts - 1,
            redirect=cfg.max_redirects,
            allowed_methods=frozenset({"GET", "HEAD"}),
            status_forcelist=_RETRY_STATUS,
            backoff_factor=cfg.base_delay_s,
            backoff_max=cfg.max_delay_s,
            backoff_jitter=cfg.base_delay_s,
            retry_after_max=cfg.retry_after_max_s,
            respect_retry_after_header=True,
        )
        retry.client = self
        return retry

    def _send(self, method: str, url: str, headers: dict[str, str], budget: _Budget) -> urllib3.BaseHTTPResponse:
        """One request (urllib3 retries and redirects inside); raises on statuses other than 200/206."""
        self.check_cancelled()
        bare, auth = _split_credentials(url)
        proxy = self.proxy_for(bare)
        shown = redact_url(url)
        try:
            resp = self._manager(proxy).urlopen(
                method,
                bare,
                headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity", **auth, **headers},
                retries=budget.retry,
                redirect=True,
                preload_content=False,
                decode_content=False,
            )
        except MaxRetryError as exc:
            raise self._gave_up(shown, proxy, exc) from exc.reason
        except ProxyError as exc:
            raise ProxyRefused(f"proxy {redact_url(proxy or '')} refused {shown}: {exc}", shown) from exc
        self.stats.add(requests=1)
        if isinstance(resp.retries, _ObservedRetry):
            budget.retry = resp.retries  # what urllib3's own retries used up counts for the resumes too
        status = resp.status
        if status in (200, 206):
            return resp
        body = resp.read(4096)
        self.stats.add(received=len(body))
        resp.release_conn()
        via = f" (via proxy {redact_url(proxy)})" if proxy else ""
        if status == 404:
            raise SourceNotFound(f"not found (HTTP 404): {shown}{via}", shown)
        if status == 407:
            raise ProxyRefused(f"proxy {redact_url(proxy or '')} refused {shown}: HTTP 407 {resp.reason}", shown)
        raise HttpStatusError(f"HTTP {status} {resp.reason} for {shown}{via}", shown, status)

    def _gave_up(self, shown: str, proxy: str | None, exc: MaxRetryError) -> HttpError:
        reason = exc.reason
        via = f" via proxy {redact_url(proxy)}" if proxy else ""
        if "too many redirects" in str(reason):
            return HttpStatusError(f"{shown}: more than {self.retry.max_redirects} redirects", shown, 310)
        if isinstance(reason, ProxyError):
            if "Tunnel connection failed" in str(reason):
                return ProxyRefused(f"proxy {redact_url(proxy or '')} refused {shown}: {reason}", shown)
            return TransferFailed(
                f"{shown}: cannot reach proxy {redact_url(proxy or '')} after {self.retry.max_attempts} attempts: "
                f"{reason}",
                shown,
            )
        if isinstance(reason, SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(reason):
            return HttpStatusError(f"{shown}: TLS certificate not trusted ({reason})", shown, 495)
        return TransferFailed(
            f"{shown}: giving up after {self.retry.max_attempts} attempts{via}; last error: {reason!r}", shown
        )

    def _with_body_retries(self, url: str, attempt: Callable[[_Budget], object]) -> object:
        """Run ``attempt`` and run it again after a failure while reading a body (urllib3 retries
        only up to the response headers), sharing one Retry budget and its backoff."""
        budget = _Budget(self._new_retry())
        shown = redact_url(url)
        while True:
            try:
                return attempt(budget)
            except (ProtocolError, ReadTimeoutError, SSLError, TimeoutError, ConnectionError) as exc:
                try:
                    budget.retry = budget.retry.increment("GET", shown, error=exc)
                except MaxRetryError:
                    raise TransferFailed(
                        f"{shown}: giving up after {self.retry.max_attempts} attempts; last error: {exc!r}", shown
                    ) from exc
                budget.retry.sleep()

    # -- public API ----------------------------------------------------------

    def head(self, url: str) -> RemoteInfo:
        """Size, ETag and range support of ``url`` from a HEAD request."""
        resp = self._send("HEAD", url, {}, _Budget(self._new_retry()))
        resp.release_conn()
        length = resp.headers.get("Content-Length")
        return RemoteInfo(
            url=redact_url(url),
            size=int(length) if length is not None else None,
            etag=resp.headers.get("ETag"),
            accepts_ranges=(resp.headers.get("Accept-Ranges") or "").lower() == "bytes",
        )

    def get_tail(self, url: str, n: int) -> tuple[bytes, RemoteInfo]:
        """The last ``n`` bytes of ``url`` (fewer if the file is smaller) and the file's size and ETag.

        One suffix-range request (``Range: bytes=-n``) instead of HEAD plus GET.
        Meant for small tails (held in memory); a broken response is retried whole.
        """
        if n <= 0:
            raise ValueError(f"tail length must be positive, not {n}")
        shown = redact_url(url)

        def attempt(budget: _Budget) -> tuple[bytes, RemoteInfo]:
            resp = self._send_tail(url, n, budget)
            got_etag = resp.headers.get("ETag")
            if resp.status == 206:
                header = resp.headers.get("Content-Range")
                match = _CONTENT_RANGE.match(header or "")
                if match is None or match.group(3) == "*":
                    resp.close()
                    raise RangeProtocolError(f"{shown}: unusable Content-Range {header!r} in a 206 answer", shown)
                first, size = int(match.group(1)), int(match.group(3))
                skip, expect = 0, size - first
            else:
                length = resp.headers.get("Content-Length")
                if length is None:
                    resp.close()
                    raise RangeProtocolError(f"{shown}: the server did not say how large the file is", shown)
                size = int(length)
                if size > self.retry.ignore_range_fallback_limit:
                    resp.close()
                    raise RangeNotSupported(
                        f"{shown} ignored a Range request for its last {n} bytes; streaming {size} bytes to reach "
                        f"them is refused (more than ignore_range_fallback_limit="
                        f"{self.retry.ignore_range_fallback_limit})",
                        shown,
                    )
                skip, expect = max(0, size - n), min(n, size)
            buf = bytearray()
            self._stream(resp, shown, skip, expect, _Into(buf), lambda _n: None)
            return bytes(buf), RemoteInfo(shown, size, got_etag, resp.status == 206)

        return self._with_body_retries(url, attempt)  # type: ignore[return-value]

    def _send_tail(self, url: str, n: int, budget: _Budget) -> urllib3.BaseHTTPResponse:
        try:
            return self._send("GET", url, {"Range": f"bytes=-{n}"}, budget)
        except HttpStatusError as exc:
            if exc.status != 416:
                raise
        # 416 for a suffix range means an empty file; ask again without Range to read its headers.
        return self._send("GET", url, {}, budget)

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
            raise ValueError(f"bad range start={start} length={length} for {redact_url(url)}")
        written = 0
        info: list[RemoteInfo] = []
        pin = [etag]  # without an expected ETag, the first response's is pinned, so a resumed retry cannot mix versions

        def on_bytes(n: int) -> None:
            nonlocal written
            written += n

        def attempt(budget: _Budget) -> None:
            # A server may answer a range with fewer bytes than asked (its Content-Range says so): ask on.
            while length is None or written < length:
                before = written
                rest = None if length is None else length - written
                info.append(self._one_range(url, start + written, rest, sink, pin, on_bytes, budget))
                size = info[-1].size
                if length is None and (size is None or start + written >= size):
                    return
                if written == before:
                    raise _ShortBody(f"{redact_url(url)}: a response for bytes from {start + written} carried none")

        if length == 0:
            return RemoteInfo(redact_url(url), None, etag, True)
        self._with_body_retries(url, attempt)
        return info[-1] if info else RemoteInfo(redact_url(url), None, etag, True)

    def _one_range(
        self,
        url: str,
        first: int,
        length: int | None,
        sink: Sink,
        pin: list[str | None],
        on_bytes: Callable[[int], None],
        budget: _Budget,
    ) -> RemoteInfo:
        """One request for bytes from ``first`` (``length`` of them or to the end); raises on a short body.

        ``pin[0]`` is the ETag the bytes must come from; when None it is set from this response.
        """
        shown = redact_url(url)
        etag = pin[0]
        headers: dict[str, str] = {}
        ranged = first > 0 or length is not None
        if ranged:
            last = "" if length is None else str(first + length - 1)
            headers["Range"] = f"bytes={first}-{last}"
            if etag is not None and not etag.startswith("W/"):  # weak ETags cannot be used with If-Range
                headers["If-Range"] = etag
        resp = self._send("GET", url, headers, budget)
        got_etag = resp.headers.get("ETag")
        if etag is not None and got_etag != etag:
            resp.close()
            raise RemoteChanged(shown, etag, got_etag)
        if etag is None:
            pin[0] = got_etag if got_etag is not None and not got_etag.startswith("W/") else None
        body_length = resp.headers.get("Content-Length")
        skip = 0
        total_size: int | None = None
        if resp.status == 206:
            header = resp.headers.get("Content-Range")
            match = _CONTENT_RANGE.match(header or "")
            if match is None or int(match.group(1)) != first:
                resp.close()
                raise RangeProtocolError(
                    f"{shown}: asked for bytes from {first}, got a 206 with Content-Range {header!r}", shown
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
                    resp.close()
                    raise RangeNotSupported(
                        f"{shown} ignored a Range request for bytes {first}-{end - 1}; streaming past the first "
                        f"{limit} bytes to reach them is refused (raise ignore_range_fallback_limit or use a mirror "
                        "that supports Range)",
                        shown,
                    )
                skip = first
            expect = (total_size - first) if total_size is not None else None
            if length is not None:
                expect = length if expect is None else min(expect, length)
        if length is not None and expect is not None and expect > length:
            expect = length
        self._stream(resp, shown, skip, expect, sink, on_bytes)
        return RemoteInfo(
            shown, total_size, got_etag, resp.status == 206 or resp.headers.get("Accept-Ranges") == "bytes"
        )

    def _stream(
        self,
        resp: urllib3.BaseHTTPResponse,
        shown: str,
        skip: int,
        expect: int | None,
        sink: Sink,
        on_bytes: Callable[[int], None],
    ) -> None:
        """Discard ``skip`` bytes, then copy ``expect`` bytes (or to the end) into ``sink``."""
        copied = 0
        try:
            while skip:
                self.check_cancelled()
                chunk = resp.read(min(_READ_CHUNK, skip))
                if not chunk:
                    raise _ShortBody(f"{shown}: body ended while skipping to the wanted offset")
                self.stats.add(received=len(chunk))
                skip -= len(chunk)
            while expect is None or copied < expect:
                self.check_cancelled()
                want = _READ_CHUNK if expect is None else min(_READ_CHUNK, expect - copied)
                chunk = resp.read(want)
                if not chunk:
                    break
                self.stats.add(received=len(chunk))
                sink.write(chunk)
                copied += len(chunk)
                on_bytes(len(chunk))
            if expect is not None and copied < expect:
                raise _ShortBody(f"{shown}: body ended after {copied} of {expect} bytes")
        except BaseException:
            resp.close()  # a half-read body: the connection cannot be reused
            raise
        if resp.length_remaining:  # stopped before the end of the body (ignored Range)
            resp.close()
        else:
            resp.release_conn()


class _Into:
    def __init__(self, buf: bytearray) -> None:
        self.buf = buf

    def write(self, data: bytes) -> None:
        self.buf.extend(data)
