"""Signals and leftovers: SIGINT/SIGTERM during a retry wait or a long download propagate at
once (worker threads stop at their next chunk or wait, keeping resumable ``.part`` files), and
a killed metadata fetch's temp files are removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hypersim_assets.common.layout import MemberSelection
from hypersim_assets.download.file_fetch import fetch_file, remove_stale_temp_files
from hypersim_assets.download.http_client import RetryConfig
from hypersim_assets.download.report import FetchProgress
from hypersim_assets.download.scene_fetch import fetch_scene_members
from hypersim_assets.download.source import Location
from hypersim_assets.synthetic.mirror_server import Faults, MirrorServer
from hypersim_assets_tests.scene_zips import SCENE, part_sizes, scene_members, write_mirror

CONVERSION = MemberSelection()
# Long waits on purpose: an interrupt that had to sit them out would take a minute.
PATIENT = RetryConfig(max_attempts=8, base_delay_s=30.0, max_delay_s=60.0, timeout_s=30.0)
BOUND_S = 20.0  # far below the waits and downloads being interrupted; not a timing test


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    return write_mirror(root, {SCENE: scene_members(frames=3, frame_bytes=300_000, seed=5)})


def member_gets(server: MirrorServer, status: int | None = None) -> list:
    return [
        r
        for r in server.requests
        if r.range_header and not r.range_header.startswith("bytes=-") and (status is None or r.status == status)
    ]


def signal_main_thread_when(condition: Callable[[], bool], signum: int) -> threading.Thread:
    """Send ``signum`` to this process's main thread once ``condition()`` holds (polled)."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # let the workers settle into their waits or reads
        signal.pthread_kill(threading.main_thread().ident, signum)  # type: ignore[arg-type]

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.fixture()
def signal_handlers() -> None:
    """SIGINT raises KeyboardInterrupt (Python's default; imported libraries such as dask_jobqueue
    replace it) and SIGTERM raises SystemExit, as Dagster and most CLIs turn it into an exception."""
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: sys.exit(143)),
    }
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)])
def test_signal_during_retry_waits_of_worker_threads(
    signum: int, raised: type[BaseException], mirror: Path, tmp_path: Path, signal_handlers: None
) -> None:
    with MirrorServer(mirror) as server:

        def break_after_first(p: FetchProgress) -> None:  # members from now on get 503: workers back off
            if p.members_done == 1:
                server.faults = Faults(fail_status=503, fail_times=-1)

        watcher = signal_main_thread_when(lambda: len(member_gets(server, 503)) >= 4, signum)
        started = time.monotonic()
        with pytest.raises(raised):
            fetch_scene_members(
                Location(url=f"{server.url}/scenes/{SCENE}.zip"),
                SCENE,
                tmp_path,
                CONVERSION,
                workers=2,
                retry=PATIENT,
                progress=break_after_first,
            )
        elapsed = time.monotonic() - started
        watcher.join(5)
    assert elapsed < BOUND_S, f"{signal.Signals(signum).name} took {elapsed:.1f} s to stop the fetch"


def test_sigint_during_long_download_stops_and_resumes(mirror: Path, tmp_path: Path, signal_handlers: None) -> None:
    with MirrorServer(mirror, faults=Faults(delay_s=0.3)) as server:  # 0.3 s per 64 KiB: a slow link
        watcher = signal_main_thread_when(lambda: bool(list(part_sizes(tmp_path))), signal.SIGINT)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            fetch_scene_members(
                Location(url=f"{server.url}/scenes/{SCENE}.zip"), SCENE, tmp_path, CONVERSION, workers=2, retry=PATIENT
            )
        elapsed = time.monotonic() - started
        watcher.join(5)
        parts = list(part_sizes(tmp_path))
        assert elapsed < BOUND_S and parts, (elapsed, parts)
        assert not list(tmp_path.rglob("*.inflating"))
        server.faults = Faults()
        report = fetch_scene_members(
            Location(url=f"{server.url}/scenes/{SCENE}.zip"), SCENE, tmp_path, CONVERSION, retry=PATIENT
        )
    assert report.resumed_members >= 1 and report.resumed_bytes > 0


def test_signal_during_retry_wait_of_the_main_thread(mirror: Path, tmp_path: Path, signal_handlers: None) -> None:
    """The metadata fetch runs in the calling thread: SIGINT ends its backoff sleep at once."""
    with MirrorServer(mirror, faults=Faults(fail_status=503, fail_times=-1)) as server:
        watcher = signal_main_thread_when(lambda: len(server.requests) >= 2, signal.SIGINT)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            fetch_file(Location(url=f"{server.url}/metadata_camera_parameters.csv"), tmp_path / "m.csv", retry=PATIENT)
        watcher.join(5)
    assert time.monotonic() - started < BOUND_S
    assert list(tmp_path.iterdir()) == []  # its temp file went with it


def test_stale_metadata_temp_files_are_removed_by_the_next_run(mirror: Path, tmp_path: Path) -> None:
    name = "metadata_camera_parameters.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    from hypersim_assets.download.file_fetch import _HOST

    legacy = tmp_path / f".{name}.k3j_x9a1.part"  # mkstemp-style name of earlier versions
    killed = tmp_path / f".{name}.{_HOST}.{dead_pid}.0badc0de.part"
    live = tmp_path / f".{name}.{_HOST}.{os.getpid()}.0123abcd.part"  # a writer that still runs (this process)
    other_host = tmp_path / f".{name}.elsewhere.{dead_pid}.0123abcd.part"  # cannot tell from here: kept
    unrelated = tmp_path / ".metadata_camera_trajectories.csv.k3j_x9a1.part"
    for path in (legacy, killed, live, other_host, unrelated):
        path.write_bytes(b"partial")
    with MirrorServer(mirror) as server:
        size = fetch_file(Location(url=f"{server.url}/{name}"), tmp_path / name)
    assert (tmp_path / name).stat().st_size == size == (mirror / name).stat().st_size
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([name, live.name, other_host.name, unrelated.name])
    assert remove_stale_temp_files(tmp_path / name) == []
