"""A model of a real network link for the loopback mirror server: a round-trip latency paid
by every request (and once more by every new connection, for the TCP handshake), and a
bandwidth cap shared by all connections, as a token bucket.

Guarantees (what tests and benchmarks may rely on): a response's first byte leaves at least
``rtt_s`` after its request arrived, the first response on a connection at least ``2 * rtt_s``
after the connection was accepted; and over any interval the body bytes of all responses
together exceed ``rate * interval`` by at most ``burst_bytes``. A slow machine only adds time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

DEFAULT_BURST_BYTES = 64 * 1024  # one server chunk: the bucket never lets more than this through at once


class TokenBucket:
    """Bytes may pass at ``rate_bytes_per_s`` on average, in bursts of at most ``burst_bytes``.

    Shared by every caller: ``take(n)`` returns once the ``n`` bytes fit under the cap. Callers
    that exceed the cap go into debt and sleep it off outside the lock, so concurrent callers
    queue fairly behind one another.
    """

    def __init__(self, rate_bytes_per_s: float, burst_bytes: int = DEFAULT_BURST_BYTES) -> None:
        if rate_bytes_per_s <= 0:
            raise ValueError(f"link rate must be positive, got {rate_bytes_per_s} bytes/s")
        if burst_bytes < 1:
            raise ValueError(f"burst must be at least one byte, got {burst_bytes}")
        self.rate = float(rate_bytes_per_s)
        self.burst = int(burst_bytes)
        self._tokens = float(burst_bytes)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int, stop: threading.Event | None = None) -> float:
        """Wait until ``n`` bytes may pass; returns the seconds waited. Returns early if ``stop`` is set."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
        return wait


def _wait_full(seconds: float, stop: threading.Event) -> None:
    """Wait ``seconds`` by ``time.monotonic()`` (or until ``stop`` is set): ``Event.wait`` may wake
    a few microseconds early, and a modelled round trip must never be shorter than asked."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if stop.wait(left):
            return


@dataclass
class LinkStats:
    """What crossed the modelled link: requests, new connections, body bytes, and seconds that
    responses spent waiting for the bandwidth cap (summed over connections, so it can exceed wall time)."""

    requests: int = 0
    connections: int = 0
    body_bytes: int = 0
    throttled_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, requests: int = 0, connections: int = 0, body_bytes: int = 0, throttled_s: float = 0.0) -> None:
        with self._lock:
            self.requests += requests
            self.connections += connections
            self.body_bytes += body_bytes
            self.throttled_s += throttled_s


class LinkModel:
    """Round-trip latency ``rtt_ms`` (milliseconds) and a shared cap of ``link_mbps`` (megabits per
    second, 10^6 bits); either may be 0 or None for none."""

    def __init__(
        self, rtt_ms: float = 0.0, link_mbps: float | None = None, burst_bytes: int = DEFAULT_BURST_BYTES
    ) -> None:
        if rtt_ms < 0:
            raise ValueError(f"rtt_ms must not be negative, got {rtt_ms}")
        if link_mbps is not None and link_mbps < 0:
            raise ValueError(f"link_mbps must not be negative, got {link_mbps}")
        self.rtt_s = rtt_ms / 1000.0
        self.link_mbps = link_mbps or None
        self.bucket = TokenBucket(link_mbps * 1e6 / 8, burst_bytes) if link_mbps else None
        self.stats = LinkStats()

    @property
    def active(self) -> bool:
        return self.rtt_s > 0 or self.bucket is not None

    def connection_opened(self, stop: threading.Event) -> None:
        """A new connection: the TCP handshake costs one round trip before its first request is read."""
        self.stats.add(connections=1)
        _wait_full(self.rtt_s, stop)

    def request_arrived(self, stop: threading.Event) -> None:
        """A request: its response starts one round trip after it was sent (half there, half back)."""
        self.stats.add(requests=1)
        _wait_full(self.rtt_s, stop)

    def send(self, n: int, stop: threading.Event) -> None:
        """Wait until ``n`` body bytes fit under the shared cap."""
        waited = self.bucket.take(n, stop) if self.bucket is not None else 0.0
        self.stats.add(body_bytes=n, throttled_s=waited)

    def describe(self) -> str:
        rate = f"{self.link_mbps:g} Mbit/s shared" if self.link_mbps else "no bandwidth cap"
        return f"{1000 * self.rtt_s:g} ms round trip, {rate}"
