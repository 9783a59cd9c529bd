"""Our byte-range logic over :class:`~hypersim_assets.download.transport.Transport` (urllib3):
ranged GETs streamed into a sink, resuming a broken body from the byte where it stopped,
and ETag pinning so a file that changes between requests is noticed instead of silently mixed.

* A retry continues a range from the byte where the broken response stopped (one Retry
  budget for the whole range, shared with urllib3's own retries).
* With an expected ETag, ranged requests carry ``If-Range``; a server whose file changed
  answers ``200`` with a different ETag, which raises :class:`RemoteChanged`.
* A ``206`` without or with a wrong ``Content-Range`` raises :class:`RangeProtocolError`.
* A server that ignores ``Range`` (``200`` with the same ETag): when the wanted range
  ends within ``ignore_range_fallback_limit`` bytes the body is streamed and bytes before
  the wanted offset discarded; beyond that :class:`RangeNotSupported`.
* :meth:`HttpClient.cancel` makes every request of the client stop at the next chunk or
  retry wait (a Ctrl-C in the main thread is not held up by worker threads' retries).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import ProtocolError

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
from hypersim_assets.download.sinks import MemorySink
from hypersim_assets.download.source import redact_url
from hypersim_assets.download.transport import Budget, Cancelled, RetryConfig, Sink, TransferStats, Transport

__all__ = [
    "Cancelled",
    "HttpClient",
    "HttpError",
    "HttpStatusError",
    "ProxyRefused",
    "RangeNotSupported",
    "RangeProtocolError",
    "RemoteChanged",
    "RemoteInfo",
    "RetryConfig",
    "Sink",
    "SourceNotFound",
    "TransferFailed",
    "TransferStats",
]

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_READ_CHUNK = 256 * 1024


@dataclass(frozen=True)
class RemoteInfo:
    """What a HEAD (or the first ranged GET) told us about a file."""

    url: str
    size: int | None
    etag: str | None
    accepts_ranges: bool


class _ShortBody(ProtocolError):
    """A body that ended before the bytes its headers promised: a read error, retried."""


class HttpClient(Transport):
    """HEAD, tails and byte ranges of a URL, thread-safe; see the module docstring.

    ``on_retry(url, error, retry_index)`` is called after each failed attempt that will be
    retried; ``proxies`` maps a scheme to a proxy URL (None: from the environment).
    """

    # -- public API ----------------------------------------------------------

    def head(self, url: str) -> RemoteInfo:
        """Size, ETag and range support of ``url`` from a HEAD request."""
        resp = self.send("HEAD", url, {}, Budget(self.new_retry()))
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

        def attempt(budget: Budget) -> tuple[bytes, RemoteInfo]:
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
            buf = MemorySink()
            self._stream(resp, shown, skip, expect, buf, lambda _n: None)
            return buf.getvalue(), RemoteInfo(shown, size, got_etag, resp.status == 206)

        return self.with_body_retries(url, attempt)  # type: ignore[return-value]

    def _send_tail(self, url: str, n: int, budget: Budget) -> urllib3.BaseHTTPResponse:
        try:
            return self.send("GET", url, {"Range": f"bytes=-{n}"}, budget)
        except HttpStatusError as exc:
            if exc.status != 416:
                raise
        # 416 for a suffix range means an empty file; ask again without Range to read its headers.
        return self.send("GET", url, {}, budget)

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

        def attempt(budget: Budget) -> None:
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
        self.with_body_retries(url, attempt)
        return info[-1] if info else RemoteInfo(redact_url(url), None, etag, True)

    def _one_range(
        self,
        url: str,
        first: int,
        length: int | None,
        sink: Sink,
        pin: list[str | None],
        on_bytes: Callable[[int], None],
        budget: Budget,
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
        resp = self.send("GET", url, headers, budget)
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
