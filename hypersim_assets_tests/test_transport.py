"""The transport on the real internet's terms, on loopback: a forward proxy the run cannot do
without, redirects of every scene zip, each transient error kind, and a refusing proxy."""

from __future__ import annotations

import errno
import io
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from urllib3.exceptions import NewConnectionError

from hypersim_assets.common.errors import is_permanent
from hypersim_assets.common.layout import MemberSelection
from hypersim_assets.download.errors import ProxyRefused, TooManyRedirects, TransferFailed
from hypersim_assets.download.http_client import HttpClient, RetryConfig
from hypersim_assets.download.scene_fetch import fetch_scene_members
from hypersim_assets.download.source import Location
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.http_test_servers import DroppingListener, ForwardProxy, RedirectServer
from hypersim_assets_tests.scene_zips import SCENE, extract_all, scene_members, write_mirror

FAST = RetryConfig(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05, timeout_s=5.0)
CONVERSION = MemberSelection()
FAKE_HOST = "hypersim-mirror.invalid"  # .invalid never resolves (RFC 2606): only the proxy knows it
PROXY_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mirror(tmp_path_factory.mktemp("mirror"), {SCENE: scene_members(frames=2, frame_bytes=30_000)})


@pytest.fixture()
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def wanted(mirror: Path) -> dict[str, bytes]:
    members = extract_all(mirror / "scenes" / f"{SCENE}.zip")
    return {n: b for n, b in members.items() if CONVERSION.matches(SCENE, n)}


def fetched(raw_root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(raw_root).as_posix(): p.read_bytes()
        for p in raw_root.rglob("*")
        if p.is_file() and not p.name.startswith(".hypersim-")
    }


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy"])
def test_scene_fetch_goes_through_the_proxy(
    var: str, mirror: Path, tmp_path: Path, no_proxy_env: pytest.MonkeyPatch
) -> None:
    with MirrorServer(mirror) as server, ForwardProxy({FAKE_HOST: "127.0.0.1"}) as proxy:
        port = urlsplit(server.url).port
        url = f"http://{FAKE_HOST}:{port}/scenes/{SCENE}.zip"
        no_proxy_env.setenv(var, proxy.url)
        no_proxy_env.setenv("NO_PROXY" if var.isupper() else "no_proxy", "localhost,example.org")
        report = fetch_scene_members(Location(url=url), SCENE, tmp_path / "raw", CONVERSION, retry=FAST)
        assert fetched(tmp_path / "raw") == wanted(mirror)
        assert report.members_fetched == len(wanted(mirror))
        # Every request the mirror saw came through the proxy, in absolute form for the made-up host.
        assert len(proxy.requests) == len(server.requests) > 0
        assert all(r.target.startswith(f"http://{FAKE_HOST}:{port}/scenes/") for r in proxy.requests)
        # NO_PROXY naming the host sends it direct, where the name does not resolve: no way without the proxy.
        no_proxy_env.setenv("NO_PROXY" if var.isupper() else "no_proxy", FAKE_HOST)
        before = len(proxy.requests)
        with pytest.raises(TransferFailed, match=rf"{FAKE_HOST}.*giving up after 3 attempts") as err:
            fetch_scene_members(Location(url=url), SCENE, tmp_path / "direct", CONVERSION, retry=FAST)
        assert not is_permanent(err.value)
        assert len(proxy.requests) == before


@pytest.mark.parametrize("status", [302, 307])
def test_every_scene_zip_redirected(status: int, mirror: Path, tmp_path: Path, no_proxy_env: object) -> None:
    with MirrorServer(mirror) as server, RedirectServer(lambda p: f"{server.url}/{p.lstrip('/')}", status) as front:
        etag = server_etag(server)
        server.reset_log()
        report = fetch_scene_members(
            Location(url=f"{front.url}/scenes/{SCENE}.zip"), SCENE, tmp_path, CONVERSION, retry=FAST
        )
        assert fetched(tmp_path) == wanted(mirror)
        assert report.members_fetched == len(wanted(mirror)) and report.retries == 0
        # Range and If-Range (the ETag pinned from the first answer) reached the redirect's target unchanged.
        assert len(front.seen) == len(server.requests)
        ranged = [s for s in front.seen if s[2] is not None and not s[2].startswith("bytes=-")]
        assert ranged and all(s[3] == etag for s in ranged)
        assert sorted(str(r.range_header) for r in server.requests) == sorted(str(s[2]) for s in front.seen)


def server_etag(server: MirrorServer) -> str:
    with HttpClient(FAST) as client:
        return client.head(f"{server.url}/scenes/{SCENE}.zip").etag  # type: ignore[return-value]


def test_redirect_loop_is_bounded_and_permanent(tmp_path: Path, no_proxy_env: object) -> None:
    with RedirectServer(lambda p: p, 302) as loop:
        cfg = RetryConfig(max_attempts=2, base_delay_s=0.0, max_redirects=4)
        with HttpClient(cfg) as client, pytest.raises(TooManyRedirects, match="more than 4 redirects") as err:
            client.get_range(f"{loop.url}/scenes/{SCENE}.zip", 0, 10, io.BytesIO())
        assert is_permanent(err.value)
        assert len(loop.seen) == 5  # the first request and four redirects, then stop


def test_connection_reset_is_retried_then_transient(no_proxy_env: object) -> None:
    with DroppingListener(reset=True) as listener, HttpClient(FAST) as client:
        with pytest.raises(TransferFailed, match=r"giving up after 3 attempts") as err:
            client.get_range(f"http://127.0.0.1:{listener.port}/x.zip", 0, 10, io.BytesIO())
        assert listener.accepted == 3 and client.stats.retries == 2
        assert not is_permanent(err.value)


def test_tls_eof_is_retried_then_transient(no_proxy_env: object) -> None:
    with DroppingListener(reset=False) as listener, HttpClient(FAST) as client:
        with pytest.raises(TransferFailed, match=r"(EOF|reset|closed)") as err:
            client.get_range(f"https://127.0.0.1:{listener.port}/x.zip", 0, 10, io.BytesIO())
        assert listener.accepted == 3 and client.stats.retries == 2
        assert not is_permanent(err.value)


def test_connection_refused_is_retried_then_transient(no_proxy_env: object) -> None:
    listener = DroppingListener()
    port = listener.port
    listener.sock.close()  # nothing listens there now
    with HttpClient(FAST) as client, pytest.raises(TransferFailed, match="giving up after 3 attempts") as err:
        client.get_range(f"http://127.0.0.1:{port}/x.zip", 0, 10, io.BytesIO())
    assert client.stats.retries == 2 and not is_permanent(err.value)


def test_unreachable_network_is_retried_then_transient(no_proxy_env: object) -> None:
    # The kernel refuses a TCP connect to the broadcast address with ENETUNREACH before any packet is sent.
    with HttpClient(FAST) as client, pytest.raises(TransferFailed, match=r"[Nn]etwork is unreachable") as err:
        client.get_range("http://255.255.255.255:9/x.zip", 0, 10, io.BytesIO())
    assert client.stats.retries == 2 and not is_permanent(err.value)


def test_unreachable_host_counts_as_a_connect_error() -> None:
    # EHOSTUNREACH needs a router's ICMP answer, which loopback cannot give: check the classification
    # urllib3 applies to the connect error it would wrap (a retry is granted, like for ENETUNREACH, which the test above produces for real).
    client = HttpClient(FAST)
    retry = client.new_retry()
    for code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        error = NewConnectionError(None, f"Failed to establish a new connection: [Errno {code}]")  # type: ignore[arg-type]
        error.__cause__ = OSError(code, "unreachable")
        assert retry._is_connection_error(error)  # a connect failure: retried even for non-idempotent methods
        after = retry.increment("GET", "/x.zip", error=error)
        assert after.total == retry.total - 1 and after.history[-1].error is error


def test_read_timeout_is_retried_then_transient(mirror: Path, no_proxy_env: object) -> None:
    from hypersim_assets.synthetic.mirror_server import Faults

    cfg = RetryConfig(max_attempts=2, base_delay_s=0.0, timeout_s=0.2)
    with MirrorServer(mirror, faults=Faults(delay_s=0.5)) as server, HttpClient(cfg) as client:
        started = time.monotonic()
        with pytest.raises(TransferFailed, match=r"[Tt]imed out") as err:
            client.get_range(f"{server.url}/scenes/{SCENE}.zip", 0, 100_000, io.BytesIO())
        assert time.monotonic() - started < 5 and not is_permanent(err.value)


def test_refusing_proxy_is_named(mirror: Path, tmp_path: Path, no_proxy_env: pytest.MonkeyPatch) -> None:
    with ForwardProxy({FAKE_HOST: "127.0.0.1"}, refuse_status=407) as proxy:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)
        with pytest.raises(ProxyRefused, match=rf"proxy {proxy.url} refused http://{FAKE_HOST}/.*407") as err:
            fetch_scene_members(
                Location(url=f"http://{FAKE_HOST}/scenes/{SCENE}.zip"), SCENE, tmp_path, CONVERSION, retry=FAST
            )
        assert is_permanent(err.value) and len(proxy.requests) == 1
    # A proxy that is not there at all: transient, and the message names it.
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    with HttpClient(FAST) as client, pytest.raises(TransferFailed, match=rf"cannot reach proxy {proxy.url}"):
        client.get_range(f"http://{FAKE_HOST}/x.zip", 0, 10, io.BytesIO())
    assert not list(tmp_path.rglob("*.part"))


def test_zipfile_reads_what_we_fetch(mirror: Path) -> None:
    """Sanity: the mirror's zip is a valid zip for the standard library (the fixtures are real)."""
    with zipfile.ZipFile(mirror / "scenes" / f"{SCENE}.zip") as zf:
        assert zf.testzip() is None
