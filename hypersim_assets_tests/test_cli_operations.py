"""Crash-only operation of ``hypersim-assets materialize``, each case a real subprocess
against a real instance (the shipped dagster.yaml: pool ``hypersim_download`` limited
to 2) and a real loopback mirror: SIGKILLed runs no longer block later ones, permanent
errors reach stderr at once with their cause, and SIGINT/SIGTERM stop a run within
seconds, leaving it canceled, its slots free and its files resumable."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from hypersim_assets.common.layout import CAMERA_PARAMETERS_CSV, SPLIT_CSV
from hypersim_assets.defs.policies import DOWNLOAD_POOL
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import Faults, MirrorServer
from hypersim_assets_tests.cli_runs import make_home, run_cli, start_cli
from hypersim_assets_tests.conftest import skip_unless_ci

SPEC = MirrorSpec(scenes=3, cameras=1, frames=3, height=48, width=64)
SLOW = Faults(delay_s=2.0, path_filter="/scenes/")  # seconds before each 64 KiB chunk of a scene zip
SIGNAL_EXIT_BOUND_S = 15.0  # from the signal to the command's exit, startup of nothing included


@pytest.fixture(scope="module")
def mirror_master(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    summary = write_synthetic_mirror(root, SPEC)
    return root, summary.scenes


@pytest.fixture
def mirror(mirror_master, tmp_path):
    """A private copy of the synthetic mirror (tests break theirs)."""
    root, scenes = mirror_master
    copy = tmp_path / "mirror"
    shutil.copytree(root, copy)
    return copy, scenes


def _wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _claimed(instance: dg.DagsterInstance) -> list:
    return list(instance.event_log_storage.get_concurrency_info(DOWNLOAD_POOL).claimed_slots)


def _held(instance: dg.DagsterInstance) -> int:
    info = instance.event_log_storage.get_concurrency_info(DOWNLOAD_POOL)
    return len(info.claimed_slots) + len(info.pending_steps)


def _scene_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Runs of a scene partition (the last scene's run also carries the index and views)."""
    return [r for r in instance.get_runs() if "dagster/partition" in r.tags]


def _logs(prefix: Path) -> str:
    return Path(f"{prefix}.out").read_text() + Path(f"{prefix}.err").read_text()


@pytest.mark.e2e
def test_sigkilled_runs_release_their_pool_slots_to_the_next_run(mirror, tmp_path):
    root, scenes = mirror
    home = make_home(tmp_path / "home")
    data = tmp_path / "data"
    with MirrorServer(root, faults=SLOW) as server, dg.DagsterInstance.from_config(str(home)) as instance:
        base = ["materialize", "--source", server.url, "--data-root", str(data)]
        procs = [
            start_cli([*base, "--scene", s], home, tmp_path, tmp_path / f"kill{i}") for i, s in enumerate(scenes[:2])
        ]
        try:
            _wait_for(lambda: len(_claimed(instance)) == 2, 180, "two runs holding the two download slots")
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
        killed = {slot.run_id for slot in _claimed(instance)}
        assert len(killed) == 2  # the trap: nothing freed them

        server.faults = Faults()
        started = time.monotonic()
        proc = run_cli([*base, "--scene", scenes[2]], home, tmp_path, timeout=300)
        seconds = time.monotonic() - started
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        for run_id in killed:
            assert f"run {run_id}" in proc.stderr and "has no live process" in proc.stderr
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert _held(instance) == 0
        print(f"third run after two SIGKILLs: {seconds:.1f} s; stderr:\n{proc.stderr}")


def _drop_camera_parameters_row(root: Path, scene: str) -> str:
    path = root / CAMERA_PARAMETERS_CSV
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.startswith(f"{scene},")))
    return f"{scene}: included frames but no row in {CAMERA_PARAMETERS_CSV}"


def _remove_scene_zip(root: Path, scene: str) -> str:
    (root / "scenes" / f"{scene}.zip").unlink()
    return f"scene {scene}: nothing at"


def _malformed_split_csv(root: Path, scene: str) -> str:
    """A value that is not True/False in the split CSV's inclusion column, on its third line."""
    path = root / SPLIT_CSV
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    cells = lines[2].rstrip("\n").split(",")
    cells[header.index("included_in_public_release")] = "maybe"
    lines[2] = ",".join(cells) + "\n"
    path.write_text("".join(lines))
    return "column included_in_public_release"


def _unpack_without_images(root: Path, scene: str) -> str:
    """An unpacked scene folder (as Apple's script leaves it) whose frame files are all gone."""
    zip_path = root / "scenes" / f"{scene}.zip"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root)
    zip_path.unlink()
    for hdf5 in (root / scene / "images").rglob("*.hdf5"):
        hdf5.unlink()
    return f"scene {scene}: no frame converted"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("breaker", "name_scene"),
    [
        (_remove_scene_zip, True),
        (_drop_camera_parameters_row, False),
        (_malformed_split_csv, False),
        (_unpack_without_images, True),
    ],
    ids=["scene-404", "metadata-check", "malformed-split-csv", "no-frame-converted"],
)
def test_permanent_errors_fail_at_once_with_their_cause_on_stderr(mirror, tmp_path, breaker, name_scene):
    root, scenes = mirror
    scene = scenes[0]
    expected = breaker(root, scene)
    home = make_home(tmp_path / "home")
    args = ["materialize", "--source", str(root), "--data-root", str(tmp_path / "data")]
    started = time.monotonic()
    proc = run_cli([*args, "--scene", scene] if name_scene else args, home, tmp_path, timeout=300)
    seconds = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert expected in proc.stderr, proc.stderr
    assert "Exceeded max_retries" not in proc.stderr
    # No asset retry (30 s at the least) happened: well under the first retry delay.
    assert seconds < 60, proc.stderr
    print(f"{expected}: exit after {seconds:.1f} s; stderr:\n{proc.stderr}")


def _retry_config(tmp_path: Path) -> Path:
    path = tmp_path / "one_attempt.yaml"
    path.write_text("resources:\n  download:\n    config:\n      max_attempts: 1\n")
    return path


@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("situation", ["long-download", "retry-wait"])
def test_signal_stops_the_run_within_seconds_and_leaves_it_resumable(mirror, tmp_path, signum, situation):
    root, scenes = mirror
    scene = scenes[0]
    home = make_home(tmp_path / "home")
    data = tmp_path / "data"
    faults = SLOW if situation == "long-download" else Faults(fail_status=503, fail_times=-1, path_filter="/scenes/")
    with MirrorServer(root, faults=faults) as server, dg.DagsterInstance.from_config(str(home)) as instance:
        args = ["materialize", "--source", server.url, "--data-root", str(data), "--scene", scene]
        extra = [] if situation == "long-download" else ["--config", str(_retry_config(tmp_path))]
        logs = tmp_path / "cli"
        proc = start_cli([*args, *extra], home, tmp_path, logs)
        try:
            if situation == "long-download":
                images = data / "raw" / scene / "images"
                _wait_for(
                    lambda: images.is_dir() and any(p.suffix == ".hdf5" for p in images.rglob("*")),
                    180,
                    "a first verified member",
                )
            else:
                # The command reports the retry with its cause as soon as the step waits for it.
                _wait_for(lambda: "retrying in" in Path(f"{logs}.err").read_text(), 180, "a reported retry wait")
            sent = time.monotonic()
            os.kill(proc.pid, signum)
            code = proc.wait(timeout=60)
            seconds = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        output = _logs(logs)
        assert seconds < SIGNAL_EXIT_BOUND_S, output
        assert code == 128 + signum, output
        assert f"{signal.Signals(signum).name} received" in output
        if situation == "retry-wait":
            assert "scene_step: " in output and "503" in output  # the retry's cause, not only that it waits
        (run,) = _scene_runs(instance)
        assert run.status == dg.DagsterRunStatus.CANCELED
        assert _held(instance) == 0
        print(f"{situation} {signal.Signals(signum).name}: exit {seconds:.1f} s after the signal; output:\n{output}")

        server.faults = Faults()
        proc = run_cli(args, home, tmp_path, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        if situation == "long-download":
            latest = instance.get_latest_materialization_event(dg.AssetKey("raw_scene"))  # only this scene ran
            assert latest.asset_materialization.metadata["members_skipped"].value > 0  # resumed, not refetched


@pytest.fixture
def tiny_disk(tmp_path):
    """A 128 KiB tmpfs (this machine's tests run as root): room for the metadata, not for a scene."""
    mount_point = tmp_path / "tiny_disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        skip_unless_ci(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.e2e
def test_a_full_disk_fails_at_once_naming_scene_and_file(mirror, tmp_path, tiny_disk):
    root, scenes = mirror
    scene = scenes[0]
    home = make_home(tmp_path / "home")
    args = ["materialize", "--source", str(root), "--data-root", str(tiny_disk / "data"), "--scene", scene]
    started = time.monotonic()
    proc = run_cli(args, home, tmp_path, timeout=300)
    seconds = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "disk full" in proc.stderr and f"scene {scene}" in proc.stderr, proc.stderr
    assert str(tiny_disk / "data") in proc.stderr  # the file being written is named
    assert "Exceeded max_retries" not in proc.stderr and "retrying in" not in proc.stderr
    assert seconds < 60, proc.stderr
    print(f"disk full: exit after {seconds:.1f} s; stderr:\n{proc.stderr}")
