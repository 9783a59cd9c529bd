"""The urllib3-based HTTP client against the loopback mirror server and its faults."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from hypersim_assets.download.errors import (
    HttpStatusError,
    RangeNotSupported,
    RemoteChanged,
    SourceNotFound,
    TransferFailed,
)
from hypersim_assets.download.http_client import HttpClient, RetryConfig
from hypersim_assets.synthetic.mirror_server import Faults, MirrorServer

SIZE = 400_000
FAST = RetryConfig(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05, timeout_s=5.0)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("mirror")
    (base / "blob.bin").write_bytes(os.urandom(SIZE))
    return base


@pytest.fixture()
def server(root: Path):
    with MirrorServer(root) as srv:
        yield srv


def blob(root: Path) -> bytes:
    return (root / "blob.bin").read_bytes()


def test_head_and_ranges(server: MirrorServer, root: Path) -> None:
    with HttpClient(FAST) as client:
        info = client.head(f"{server.url}/blob.bin")
        assert info.size == SIZE and info.etag and info.accepts_ranges
        out = io.BytesIO()
        client.get_range(f"{server.url}/blob.bin", 1000, 70_000, out, etag=info.etag)
        assert out.getvalue() == blob(root)[1000:71_000]
        whole = io.BytesIO()
        client.get_range(f"{server.url}/blob.bin", 0, None, whole)
        assert whole.getvalue() == blob(root)
        assert client.stats.bytes_received == 70_000 + SIZE and client.stats.retries == 0
    assert server.requests[1].range_header == "bytes=1000-70999"
    assert server.requests[2].range_header is None


def test_404_and_other_4xx_are_not_retried(server: MirrorServer) -> None:
    with HttpClient(FAST) as client:
        with pytest.raises(SourceNotFound, match=r"404.*/nope\.zip"):
            client.head(f"{server.url}/nope.zip")
        server.faults = Faults(fail_status=403, fail_times=-1)
        with pytest.raises(HttpStatusError, match=r"403.*blob\.bin") as err:
            client.get_range(f"{server.url}/blob.bin", 0, 10, io.BytesIO())
        assert err.value.status == 403
        assert client.stats.retries == 0
    assert len(server.requests) == 2


def test_5xx_retried_then_succeeds_or_gives_up(server: MirrorServer, root: Path) -> None:
    server.faults = Faults(fail_status=503, fail_times=2)
    with HttpClient(FAST) as client:
        out = io.BytesIO()
        client.get_range(f"{server.url}/blob.bin", 5, 100, out)
        assert out.getvalue() == blob(root)[5:105]
        assert client.stats.retries == 2
        server.faults = Faults(fail_status=500, fail_times=-1)
        with pytest.raises(TransferFailed, match=r"blob\.bin: giving up after 4 attempts.*500"):
            client.get_range(f"{server.url}/blob.bin", 0, 100, io.BytesIO())
        assert client.stats.retries == 2 + 3


def test_dropped_connection_resumes_at_the_break(server: MirrorServer, root: Path) -> None:
    server.faults = Faults(drop_after_bytes=150_000, drop_times=1)
    with HttpClient(FAST) as client:
        out = io.BytesIO()
        client.get_range(
            f"{server.url}/blob.bin", 10_000, 300_000, out, etag=client.head(f"{server.url}/blob.bin").etag
        )
        assert out.getvalue() == blob(root)[10_000:310_000]
        assert client.stats.retries == 1
        assert client.stats.bytes_received == 300_000  # the dropped response's bytes were kept, not fetched twice
    gets = [r for r in server.requests if r.method == "GET"]
    assert [g.range_header for g in gets] == ["bytes=10000-309999", "bytes=160000-309999"]
    assert gets[0].body_bytes == 150_000


def test_unranged_download_resumes_with_pinned_etag(server: MirrorServer, root: Path) -> None:
    server.faults = Faults(drop_after_bytes=100_000, drop_times=1)
    with HttpClient(FAST) as client:
        out = io.BytesIO()
        client.get_range(f"{server.url}/blob.bin", 0, None, out)
        assert out.getvalue() == blob(root)
    second = server.requests[-1]
    assert second.range_header == "bytes=100000-" and second.status == 206


def test_ignored_range_within_limit_streams_and_discards(server: MirrorServer, root: Path) -> None:
    server.faults = Faults(ignore_range=True)
    cfg = RetryConfig(max_attempts=2, base_delay_s=0.0, ignore_range_fallback_limit=200_000)
    with HttpClient(cfg) as client:
        out = io.BytesIO()
        client.get_range(f"{server.url}/blob.bin", 100_000, 50_000, out)
        assert out.getvalue() == blob(root)[100_000:150_000]
        # The fallback reads (and counts) the skipped bytes and stops once it has the wanted ones.
        assert client.stats.bytes_received == 150_000
        with pytest.raises(RangeNotSupported, match=r"blob\.bin ignored a Range request for bytes 190000-209999"):
            client.get_range(f"{server.url}/blob.bin", 190_000, 20_000, io.BytesIO())
        assert client.stats.retries == 0  # a refusal, not a transient failure
    assert [r.status for r in server.requests] == [200, 200]


def test_changed_etag_is_detected(server: MirrorServer) -> None:
    with HttpClient(FAST) as client:
        etag = client.head(f"{server.url}/blob.bin").etag
        server.faults = Faults(etag_change_after=0)
        with pytest.raises(RemoteChanged, match=r"blob\.bin changed on the server") as err:
            client.get_range(f"{server.url}/blob.bin", 0, 100, io.BytesIO(), etag=etag)
        assert err.value.expected == etag and err.value.actual != etag
    assert server.requests[-1].range_header == "bytes=0-99"


def test_slow_server_times_out_and_retries(server: MirrorServer, root: Path) -> None:
    cfg = RetryConfig(max_attempts=3, base_delay_s=0.0, timeout_s=0.2)
    server.faults = Faults(delay_s=0.6)
    switched: list[str] = []

    def heal(url: str, error: BaseException, index: int) -> None:
        switched.append(type(error).__name__)
        server.faults = Faults()

    with HttpClient(cfg, on_retry=heal) as client:
        out = io.BytesIO()
        client.get_range(f"{server.url}/blob.bin", 0, 1000, out)
        assert out.getvalue() == blob(root)[:1000]
        assert client.stats.retries == 1
    assert switched == ["ReadTimeoutError"]
    server.faults = Faults(delay_s=0.6)
    started = time.monotonic()
    with HttpClient(cfg) as client, pytest.raises(TransferFailed, match=r"after 3 attempts.*[Tt]imed out"):
        client.get_range(f"{server.url}/blob.bin", 0, 1000, io.BytesIO())
    assert time.monotonic() - started < 3.0


def test_backoff_grows_with_jitter_within_cap() -> None:
    """urllib3's Retry does the backoff: exponential in the retry count, jittered, capped."""
    client = HttpClient(RetryConfig(max_attempts=7, base_delay_s=0.5, max_delay_s=4.0))
    retry = client.new_retry()
    waits: list[list[float]] = []
    for _ in range(6):
        retry = retry.increment("GET", "/x", error=ConnectionResetError())
        waits.append([retry.get_backoff_time() for _ in range(100)])
    assert max(waits[0]) == 0.0  # the first retry is immediate
    for i, samples in enumerate(waits[1:], 1):
        base = min(4.0, 0.5 * 2**i)
        assert all(base <= s <= min(4.0, base + 0.5) for s in samples)
    assert len({round(s, 6) for s in waits[1]}) > 10  # jittered, not a fixed delay
