"""The loopback mirror server, spoken to over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hypersim_assets.synthetic.mirror_server import CHUNK_BYTES, Faults, MirrorServer

SCENE = "ai_001_001"
ZIP_SIZE = 300_000  # several 64 KiB chunks, not a multiple of one


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("mirror")
    (base / "scenes").mkdir()
    (base / "scenes" / f"{SCENE}.zip").write_bytes(os.urandom(ZIP_SIZE))
    (base / "metadata_camera_parameters.csv").write_text("scene_name,fov\nai_001_001,1.0\n")
    (base / "notes.bin").write_bytes(b"\x00\x01")
    (base.parent / "secret.txt").write_text("outside root")
    return base


@pytest.fixture()
def server(root: Path):
    with MirrorServer(root) as srv:
        yield srv


def zip_bytes(root: Path) -> bytes:
    return (root / "scenes" / f"{SCENE}.zip").read_bytes()


def request(
    srv: MirrorServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; returns status, headers (lower-case names) and the body."""
    host, port = srv.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def test_head_reports_file_headers_without_body(server: MirrorServer, root: Path) -> None:
    status, headers, body = request(server, f"/scenes/{SCENE}.zip", "HEAD")
    assert status == 200 and body == b""
    assert headers["content-length"] == str(ZIP_SIZE)
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-type"] == "application/zip"
    assert headers["etag"].startswith('"') and headers["etag"].endswith('"')
    assert "GMT" in headers["last-modified"]
    _, csv_headers, _ = request(server, "/metadata_camera_parameters.csv", "HEAD")
    assert csv_headers["content-type"] == "text/csv"
    _, bin_headers, _ = request(server, "/notes.bin", "HEAD")
    assert bin_headers["content-type"] == "application/octet-stream"
    assert server.requests[0].method == "HEAD" and server.requests[0].body_bytes == 0


def test_full_get_with_urllib(server: MirrorServer, root: Path) -> None:
    with urllib.request.urlopen(f"{server.url}/scenes/{SCENE}.zip", timeout=10) as resp:
        assert resp.status == 200
        assert resp.read() == zip_bytes(root)
    record = server.requests[-1]
    assert (record.method, record.path, record.status, record.body_bytes) == (
        "GET",
        f"/scenes/{SCENE}.zip",
        200,
        ZIP_SIZE,
    )


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=70000-", 70000, ZIP_SIZE - 1),
        ("bytes=-500", ZIP_SIZE - 500, ZIP_SIZE - 1),
        ("bytes=-999999999", 0, ZIP_SIZE - 1),  # suffix longer than the file: the whole file
        (f"bytes={ZIP_SIZE - 10}-{ZIP_SIZE + 1000}", ZIP_SIZE - 10, ZIP_SIZE - 1),  # end clamped
    ],
)
def test_single_ranges_answer_206(server: MirrorServer, root: Path, range_header: str, first: int, last: int) -> None:
    status, headers, body = request(server, f"/scenes/{SCENE}.zip", headers={"Range": range_header})
    assert status == 206
    assert headers["content-range"] == f"bytes {first}-{last}/{ZIP_SIZE}"
    assert body == zip_bytes(root)[first : last + 1]
    assert server.requests[-1].range_header == range_header


@pytest.mark.parametrize("range_header", [f"bytes={ZIP_SIZE}-", f"bytes={ZIP_SIZE + 5}-{ZIP_SIZE + 9}", "bytes=-0"])
def test_unsatisfiable_range_is_416(server: MirrorServer, range_header: str) -> None:
    status, headers, _ = request(server, f"/scenes/{SCENE}.zip", headers={"Range": range_header})
    assert status == 416
    assert headers["content-range"] == f"bytes */{ZIP_SIZE}"


@pytest.mark.parametrize("range_header", ["bytes=0-9,20-29", "items=0-9", "bytes=9-2"])
def test_multi_or_malformed_range_answers_whole_file(server: MirrorServer, root: Path, range_header: str) -> None:
    status, headers, body = request(server, f"/scenes/{SCENE}.zip", headers={"Range": range_header})
    assert status == 200 and "content-range" not in headers
    assert body == zip_bytes(root)


def test_if_range_honours_only_the_current_etag(server: MirrorServer, root: Path) -> None:
    _, head, _ = request(server, f"/scenes/{SCENE}.zip", "HEAD")
    path = f"/scenes/{SCENE}.zip"
    status, _, body = request(server, path, headers={"Range": "bytes=10-19", "If-Range": head["etag"]})
    assert status == 206 and body == zip_bytes(root)[10:20]
    status, _, body = request(server, path, headers={"Range": "bytes=10-19", "If-Range": '"stale"'})
    assert status == 200 and body == zip_bytes(root)
    status, _, _ = request(server, path, headers={"Range": "bytes=10-19", "If-Range": head["last-modified"]})
    assert status == 206
    status, _, _ = request(server, path, headers={"Range": "bytes=10-19", "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert status == 200


def test_etag_stable_then_changed_by_fault(root: Path) -> None:
    path = f"/scenes/{SCENE}.zip"
    with MirrorServer(root, faults=Faults(etag_change_after=2)) as srv:
        first = request(srv, path, "HEAD")[1]["etag"]
        second = request(srv, path, "HEAD")[1]["etag"]
        third = request(srv, path, "HEAD")[1]["etag"]
        fourth = request(srv, path, "HEAD")[1]["etag"]
        assert first == second
        assert third != first and third == fourth
        # a resume with the old validator now gets the whole file
        status, _, body = request(srv, path, headers={"Range": "bytes=0-9", "If-Range": first})
        assert status == 200 and len(body) == ZIP_SIZE


def test_etag_changes_when_file_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "x.zip"
    target.write_bytes(b"a" * 10)
    with MirrorServer(tmp_path) as srv:
        before = request(srv, "/x.zip", "HEAD")[1]["etag"]
        assert request(srv, "/x.zip", "HEAD")[1]["etag"] == before
        target.write_bytes(b"b" * 11)
        assert request(srv, "/x.zip", "HEAD")[1]["etag"] != before


def test_drop_after_bytes_then_recovery(root: Path) -> None:
    path = f"/scenes/{SCENE}.zip"
    with MirrorServer(root, faults=Faults(drop_after_bytes=100_000, drop_times=2)) as srv:
        for _ in range(2):
            with pytest.raises(http.client.IncompleteRead) as caught:
                request(srv, path)
            assert len(caught.value.partial) == 100_000
            assert caught.value.partial == zip_bytes(root)[:100_000]
        status, _, body = request(srv, path)
        assert status == 200 and body == zip_bytes(root)
        assert [r.body_bytes for r in srv.requests] == [100_000, 100_000, ZIP_SIZE]
        # a range shorter than the drop point is never cut
        srv.faults = Faults(drop_after_bytes=1000, drop_times=-1)
        assert request(srv, path, headers={"Range": "bytes=0-999"})[2] == zip_bytes(root)[:1000]
        for _ in range(3):  # -1 drops every time
            with pytest.raises(http.client.IncompleteRead):
                request(srv, path, headers={"Range": "bytes=0-1999"})


def test_drop_with_urllib_gives_short_read(root: Path) -> None:
    with MirrorServer(root, faults=Faults(drop_after_bytes=0)) as srv:
        with urllib.request.urlopen(f"{srv.url}/scenes/{SCENE}.zip", timeout=10) as resp:
            with pytest.raises(http.client.IncompleteRead):
                resp.read()


@pytest.mark.parametrize("code", [500, 503])
def test_fail_status_k_times_then_success(root: Path, code: int) -> None:
    with MirrorServer(root, faults=Faults(fail_status=code, fail_times=2)) as srv:
        for _ in range(2):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(f"{srv.url}/scenes/{SCENE}.zip", timeout=10)
            caught.value.close()
            assert caught.value.code == code
        # missing files do not use up the failures
        assert request(srv, "/scenes/missing.zip")[0] == 404
        with urllib.request.urlopen(f"{srv.url}/scenes/{SCENE}.zip", timeout=10) as resp:
            assert resp.status == 200 and resp.read() == zip_bytes(root)
        assert [r.status for r in srv.requests] == [code, code, 404, 200]


def test_ignore_range_answers_whole_file(root: Path) -> None:
    with MirrorServer(root, faults=Faults(ignore_range=True)) as srv:
        status, headers, body = request(srv, f"/scenes/{SCENE}.zip", headers={"Range": "bytes=5-9"})
        assert status == 200 and "content-range" not in headers
        assert body == zip_bytes(root)


def test_delay_slows_each_chunk(root: Path) -> None:
    path = f"/scenes/{SCENE}.zip"
    delay_s = 0.05
    n_chunks = -(-ZIP_SIZE // CHUNK_BYTES)
    with MirrorServer(root) as srv:
        t0 = time.perf_counter()
        request(srv, path)
        fast = time.perf_counter() - t0
        srv.faults = Faults(delay_s=delay_s)
        t0 = time.perf_counter()
        _, _, body = request(srv, path)
        slow = time.perf_counter() - t0
    assert body == zip_bytes(root)
    assert slow >= n_chunks * delay_s  # sleep is a lower bound
    assert slow > fast


def test_path_filter_limits_faults(root: Path) -> None:
    with MirrorServer(root, faults=Faults(fail_status=503, fail_times=-1, path_filter="/scenes/")) as srv:
        assert request(srv, "/metadata_camera_parameters.csv")[0] == 200
        assert request(srv, f"/scenes/{SCENE}.zip")[0] == 503
        assert request(srv, f"/scenes/{SCENE}.zip")[0] == 503
        srv.faults.fail_status = None  # mutate in place, as a test driving a download might
        assert request(srv, f"/scenes/{SCENE}.zip")[0] == 200


@pytest.mark.parametrize("path", ["/scenes/missing.zip", "/scenes/", "/", "/scenes"])
def test_missing_and_folders_are_404(server: MirrorServer, path: str) -> None:
    status, headers, body = request(server, path)
    assert status == 404
    assert headers["content-type"].startswith("text/plain") and len(body) < 200


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/scenes/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/scenes/%2E%2E/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
    ],
)
def test_path_traversal_is_refused(server: MirrorServer, path: str) -> None:
    status, _, body = request(server, path)
    assert status in (400, 404)
    assert b"outside root" not in body


def test_parallel_ranges_return_correct_bytes(server: MirrorServer, root: Path) -> None:
    data = zip_bytes(root)
    spans = [(i * 37_000, min(ZIP_SIZE, (i + 1) * 37_000) - 1) for i in range(-(-ZIP_SIZE // 37_000))]

    def fetch(span: tuple[int, int]) -> bytes:
        req = urllib.request.Request(
            f"{server.url}/scenes/{SCENE}.zip", headers={"Range": f"bytes={span[0]}-{span[1]}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 206
            return resp.read()

    with ThreadPoolExecutor(max_workers=6) as pool:
        parts = list(pool.map(fetch, spans))
    assert b"".join(parts) == data
    assert len(server.requests) == len(spans)


def test_keep_alive_connection_serves_several_requests(server: MirrorServer, root: Path) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for first in (0, 1000, 2000):
            conn.request("GET", f"/scenes/{SCENE}.zip", headers={"Range": f"bytes={first}-{first + 9}"})
            assert conn.getresponse().read() == zip_bytes(root)[first : first + 10]
    finally:
        conn.close()


def test_stop_frees_port_and_threads(root: Path) -> None:
    before = threading.active_count()
    for _ in range(5):
        srv = MirrorServer(root).start()
        url = srv.url
        # an idle keep-alive client must not keep the server alive
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("HEAD", "/notes.bin")
        conn.getresponse().read()
        t0 = time.perf_counter()
        srv.stop()
        assert time.perf_counter() - t0 < 2
        conn.close()
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{url}/notes.bin", timeout=2)
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


def test_reset_log(server: MirrorServer) -> None:
    request(server, "/notes.bin")
    assert len(server.requests) == 1
    server.reset_log()
    assert server.requests == []


def test_request_log_is_bounded(root: Path) -> None:
    with MirrorServer(root, max_log=3) as srv:
        for name in ("a", "b", "c", "d", "e"):
            request(srv, f"/missing-{name}")
        assert [r.path for r in srv.requests] == ["/missing-c", "/missing-d", "/missing-e"]
        assert all(r.status == 404 for r in srv.requests)
    with pytest.raises(ValueError, match="max_log"):
        MirrorServer(root, max_log=0)


# The link model's guarantees are lower bounds on time: a slow machine only adds to them, so
# these assertions hold anywhere; an upper bound would be a timed test of the machine.


def test_link_cap_bounds_a_transfer(root: Path) -> None:
    mbps = 8.0  # 1 MB/s: the 300 kB file needs at least (300 kB - one burst) / rate
    with MirrorServer(root, link_mbps=mbps) as srv:
        t0 = time.perf_counter()
        status, _, body = request(srv, f"/scenes/{SCENE}.zip")
        elapsed = time.perf_counter() - t0
        bucket = srv.link.bucket
        assert bucket is not None and bucket.rate == mbps * 1e6 / 8
        assert status == 200 and body == zip_bytes(root)
        assert elapsed >= (ZIP_SIZE - bucket.burst) / bucket.rate
        assert srv.link.stats.body_bytes == ZIP_SIZE and srv.link.stats.throttled_s > 0


def test_link_cap_is_shared_by_connections(root: Path) -> None:
    """Two parallel downloads on two connections together take what their sum needs, not what one needs."""
    with MirrorServer(root, link_mbps=8.0) as srv:
        bucket = srv.link.bucket
        assert bucket is not None
        t0 = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            bodies = list(pool.map(lambda _: request(srv, f"/scenes/{SCENE}.zip")[2], range(2)))
        elapsed = time.perf_counter() - t0
        assert bodies == [zip_bytes(root)] * 2
        assert elapsed >= (2 * ZIP_SIZE - bucket.burst) / bucket.rate
        assert srv.link.stats.connections == 2 and srv.link.stats.body_bytes == 2 * ZIP_SIZE


def test_round_trip_per_request_and_per_connection(root: Path) -> None:
    rtt_ms = 40.0
    with MirrorServer(root, rtt_ms=rtt_ms) as srv:
        host, port = srv.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        t0 = time.perf_counter()
        try:
            for first in (0, 1000, 2000):
                conn.request("GET", f"/scenes/{SCENE}.zip", headers={"Range": f"bytes={first}-{first + 9}"})
                resp = conn.getresponse()
                assert resp.status == 206 and resp.read() == zip_bytes(root)[first : first + 10]
        finally:
            conn.close()
        elapsed = time.perf_counter() - t0
        assert elapsed >= 4 * rtt_ms / 1000  # one handshake, three requests
        assert (srv.link.stats.connections, srv.link.stats.requests) == (1, 3)
        # Each response starts one round trip after its request arrived, and the client sends the next
        # request once it has read the response: arrivals are a round trip apart or more. (Not done_s:
        # the server stamps it after the last byte went out, so the client can be reading the records first.)
        arrived = [r.arrived_s for r in srv.requests]
        assert len(arrived) == 3 and all(b - a >= rtt_ms / 1000 for a, b in zip(arrived, arrived[1:]))
    with pytest.raises(ValueError, match="rtt_ms"):
        MirrorServer(root, rtt_ms=-1)


def test_cli_serve_applies_the_link_model(root: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypersim_assets.cli", "serve", str(root), "--port", "0", "--rtt-ms", "30"]
        + ["--link-mbps", "400"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "30 ms round trip, 400 Mbit/s shared" in line
        url = line.split(" at ")[1].split(" ")[0]
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/notes.bin", timeout=10) as resp:
            assert resp.read() == b"\x00\x01"
        assert time.perf_counter() - t0 >= 2 * 0.030  # a new connection: handshake and request
    finally:
        proc.terminate()
        proc.wait(timeout=10)
