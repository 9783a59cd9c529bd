"""The urllib3 side of our HTTP: one pool manager per proxy (``HTTPS_PROXY``, ``HTTP_PROXY``,
``NO_PROXY``, lower case too), redirects, retries with backoff, jitter and ``Retry-After``
(``urllib3.util.Retry``, observed so tests and logs see each retry and a cancel ends any
wait), basic auth from a URL's user info, and the mapping of what urllib3 raises to our
errors (:mod:`hypersim_assets.download.errors`). No Range logic here: see ``http_client``.

* Transient failures (connection reset or refused, timeouts, TLS EOF, unreachable
  network or host, ``5xx``, ``408``, ``429``) are retried up to ``RetryConfig.max_attempts``
  attempts in all, sleeping ``backoff_factor * 2**n`` plus jitter (capped), or what
  ``Retry-After`` asks (up to ``retry_after_max_s``).
* ``404`` raises :class:`SourceNotFound`; other ``4xx`` raise :class:`HttpStatusError` at once.
* Redirects (301, 302, 303, 307, 308) are followed for GET and ranged GET, at most
  ``max_redirects`` in a row; ``Range`` and ``If-Range`` go along, ``Authorization``
  only to the same host.
* User info in a URL (``http://user:secret@host/...``) is sent as HTTP basic auth and
  never appears in a message: errors name :func:`~hypersim_assets.download.source.redact_url`.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import MaxRetryError, ProtocolError, ProxyError, ReadTimeoutError, SSLError
from urllib3.util import Retry, Timeout, make_headers

from hypersim_assets.download.errors import (
    CertificateNotTrusted,
    HttpError,
    HttpStatusError,
    ProxyRefused,
    SourceNotFound,
    TooManyRedirects,
    TransferFailed,
)
from hypersim_assets.download.source import redact_url

_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
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


@dataclass
class Budget:
    """The Retry state of one logical request, carried across the requests that resume it."""

    retry: ObservedRetry


class ObservedRetry(Retry):
    """urllib3's Retry that reports each retry to its client and waits on the client's cancel event."""

    client: Transport | None = None

    def new(self, **kw: object) -> ObservedRetry:
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


class Transport:
    """Thread-safe requests over one urllib3 pool manager per proxy (proxies from the environment).

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

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ---------------------------------------------------------

    def new_retry(self) -> ObservedRetry:
        cfg = self.retry
        retry = ObservedRetry(
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

    def send(self, method: str, url: str, headers: dict[str, str], budget: Budget) -> urllib3.BaseHTTPResponse:
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
        if isinstance(resp.retries, ObservedRetry):
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
            return TooManyRedirects(f"{shown}: more than {self.retry.max_redirects} redirects", shown)
        if isinstance(reason, ProxyError):
            if "Tunnel connection failed" in str(reason):
                return ProxyRefused(f"proxy {redact_url(proxy or '')} refused {shown}: {reason}", shown)
            return TransferFailed(
                f"{shown}: cannot reach proxy {redact_url(proxy or '')} after {self.retry.max_attempts} attempts: "
                f"{reason}",
                shown,
            )
        if isinstance(reason, SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(reason):
            return CertificateNotTrusted(f"{shown}: TLS certificate not trusted ({reason})", shown)
        return TransferFailed(
            f"{shown}: giving up after {self.retry.max_attempts} attempts{via}; last error: {reason!r}", shown
        )

    def with_body_retries(self, url: str, attempt: Callable[[Budget], object]) -> object:
        """Run ``attempt`` and run it again after a failure while reading a body (urllib3 retries
        only up to the response headers), sharing one Retry budget and its backoff."""
        budget = Budget(self.new_retry())
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
