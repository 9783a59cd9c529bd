"""Scene conversion: pool and pluggable executors give the same files as a serial run; a
run killed mid-scene (SIGKILL to the process and its pool workers) and re-run leaves
byte-identical output and no temp files; pool workers end with their owner; two
conversions of one scene at once take turns and agree byte for byte."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hypersim_assets.common.file_lock import LockTimeout, exclusive_lock, pid_alive
from hypersim_assets.convert.frame_conversion import STATE_DIR, ConversionSettings
from hypersim_assets.convert.scene_conversion import (
    conversion_lock_path,
    convert_scene,
    remove_stale_temp_files,
)
from hypersim_assets_tests.frame_scene import camera_params, write_scene

REPO = Path(__file__).resolve().parents[1]
SCENE = "ai_037_002"
H, W = 96, 128
FRAMES = 8


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return write_scene(
        tmp_path_factory.mktemp("raw"), cameras=("cam_00", "cam_01"), frames=FRAMES // 2, height=H, width=W
    )


def _frames():
    return [(cam, f, "train", "Kitchen") for cam in ("cam_00", "cam_01") for f in range(FRAMES // 2)]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_executors_and_progress_give_the_same_files(scene_dir, tmp_path):
    serial = convert_scene(scene_dir, SCENE, _frames(), camera_params(H, W), tmp_path / "a")
    seen = []
    with cf.ThreadPoolExecutor(2) as ex:
        threaded = convert_scene(
            scene_dir,
            SCENE,
            _frames(),
            camera_params(H, W),
            tmp_path / "b",
            executor=ex,
            progress=lambda done, total, facts: seen.append((done, total)),
        )
    assert [f.status for f in serial] == ["converted"] * FRAMES
    assert [(f.camera, f.frame_id) for f in threaded] == [(c, f) for c, f, _, _ in _frames()]
    assert sorted(seen) == [(i, FRAMES) for i in range(1, FRAMES + 1)]
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    again = convert_scene(scene_dir, SCENE, _frames(), camera_params(H, W), tmp_path / "a")
    assert all(f.skipped for f in again)


_CHILD = """
import sys
from pathlib import Path
from hypersim_assets.convert.frame_conversion import ConversionSettings
from hypersim_assets.convert.scene_conversion import convert_scene
from hypersim_assets_tests.frame_scene import camera_params
frames = [(cam, f, "train", "Kitchen") for _ in range(50) for cam in ("cam_00", "cam_01") for f in range({half})]
convert_scene(Path(sys.argv[1]), "{scene}", frames, camera_params({h}, {w}), Path(sys.argv[2]),
              ConversionSettings(skip_existing=False), workers=2)
"""


def test_killed_run_resumes_to_identical_output(scene_dir, tmp_path):
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    convert_scene(scene_dir, SCENE, _frames(), camera_params(H, W), clean)
    code = _CHILD.format(half=FRAMES // 2, scene=SCENE, h=H, w=W)
    # The child converts the frames over and over (no skipping) on a 2-process pool, so
    # that a kill lands while files are being written.
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(scene_dir), str(crashed)], cwd=REPO, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            markers = list((crashed / STATE_DIR).rglob("*.json")) if (crashed / STATE_DIR).is_dir() else []
            if len(markers) >= 3:
                break
            time.sleep(0.02)
        else:
            pytest.fail("child never finished a frame")
        time.sleep(0.3)
        assert proc.poll() is None, "child ended before it was killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and its pool workers (same process group)
        proc.wait()
    # A writer killed mid-file leaves a temp file (its pid in the name) beside the target;
    # plant one of the killed child for certain.
    stray = crashed / "train/rgb" / SCENE / "cam_01" / f".0003.png.{proc.pid}.x1y2z3.tmp"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"half a png")
    facts = convert_scene(scene_dir, SCENE, _frames(), camera_params(H, W), crashed, ConversionSettings())
    assert [f.status for f in facts] == ["converted"] * FRAMES
    assert not list(crashed.rglob("*.tmp"))
    assert _tree(crashed) == _tree(clean)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_stale_temp_files_only_touches_this_scene_and_gone_writers(tmp_path):
    folder = tmp_path / "valid/depth" / SCENE / "cam_00"
    folder.mkdir(parents=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = folder / f".0001.png.{_dead_pid()}.abcd1234.tmp"
        legacy = folder / ".0002.png.abc.tmp"  # no pid: written by an older version
        writing = folder / f".0003.png.{live.pid}.abcd1234.tmp"  # its writer still runs
        other = tmp_path / f"valid/depth/ai_001_001/cam_00/.0001.png.{_dead_pid()}.abcd1234.tmp"
        other.parent.mkdir(parents=True)
        for p in (dead, legacy, writing, other):
            p.write_bytes(b"x")
        assert remove_stale_temp_files(tmp_path, SCENE) == 2
        assert not dead.exists() and not legacy.exists()
        assert writing.exists() and other.exists()
    finally:
        live.kill()
        live.wait()


def test_conversion_waits_for_the_scene_lock_then_names_the_holder(scene_dir, tmp_path):
    with exclusive_lock(conversion_lock_path(tmp_path, SCENE), None, label="run 1234abcd"):
        started = time.monotonic()
        with pytest.raises(LockTimeout) as info:
            convert_scene(scene_dir, SCENE, _frames(), camera_params(H, W), tmp_path, lock_timeout_s=0.3)
        assert time.monotonic() - started >= 0.3
    message = str(info.value)
    assert f"scene {SCENE}" in message and f"pid {os.getpid()}" in message and "run 1234abcd" in message
    assert not (tmp_path / "train").exists()  # nothing written while another writer held the scene
    assert conversion_lock_path(tmp_path, SCENE).read_bytes() == b""  # released: no holder recorded
    facts = convert_scene(scene_dir, SCENE, _frames(), camera_params(H, W), tmp_path, lock_timeout_s=0.3)
    assert [f.status for f in facts] == ["converted"] * FRAMES


_WRITER = """
import sys
from pathlib import Path
from hypersim_assets.convert.frame_conversion import ConversionSettings
from hypersim_assets.convert.scene_conversion import convert_scene
from hypersim_assets_tests.frame_scene import camera_params
frames = [(cam, f, "train", "Kitchen") for _ in range(5) for cam in ("cam_00", "cam_01") for f in range({half})]
facts = convert_scene(Path(sys.argv[1]), "{scene}", frames, camera_params({h}, {w}), Path(sys.argv[2]),
                      ConversionSettings(skip_existing=False), workers=2, holder=sys.argv[3])
assert all(f.status == "converted" for f in facts), facts
"""


@pytest.mark.e2e
def test_two_conversions_of_one_scene_at_once_both_succeed_identically(scene_dir, tmp_path):
    clean, shared = tmp_path / "clean", tmp_path / "shared"
    convert_scene(scene_dir, SCENE, _frames(), camera_params(H, W), clean)
    code = _WRITER.format(half=FRAMES // 2, scene=SCENE, h=H, w=W)
    # Both rewrite every frame (no skipping), so without the lock the second's temp-file
    # cleanup would pull files from under the first's os.replace.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(scene_dir), str(shared), f"writer {i}"],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for i in range(2)
    ]
    try:
        errors = [p.communicate(timeout=300)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], errors
    assert not list(shared.rglob("*.tmp"))
    assert _tree(shared) == _tree(clean)


_OWNER = """
import sys
from pathlib import Path
from hypersim_assets.convert.frame_conversion import ConversionSettings
from hypersim_assets.convert.scene_conversion import convert_scene
from hypersim_assets_tests.frame_scene import camera_params
frames = [(cam, f, "train", "Kitchen") for _ in range(500) for cam in ("cam_00", "cam_01") for f in range({half})]
convert_scene(Path(sys.argv[1]), "{scene}", frames, camera_params({h}, {w}), Path(sys.argv[2]),
              ConversionSettings(skip_existing=False), workers=2)
"""


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rpartition(b")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_exit_when_their_owner_is_killed(scene_dir, tmp_path):
    out = tmp_path / "out"
    code = _OWNER.format(half=FRAMES // 2, scene=SCENE, h=H, w=W)
    proc = subprocess.Popen([sys.executable, "-c", code, str(scene_dir), str(out)], cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (out / STATE_DIR).is_dir() and len(list((out / STATE_DIR).rglob("*.json"))) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("owner never finished a frame")
        below = _descendants(proc.pid)
        assert len(below) >= 3, below  # forkserver, resource tracker, two workers (at least)
        proc.kill()  # SIGKILL the owner only, as the OOM killer would
        proc.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(pid_alive(p) for p in below):
            time.sleep(0.1)
        assert not [p for p in below if pid_alive(p)], "processes outlived the conversion that started them"
    finally:
        for p in [proc.pid, *_descendants(proc.pid)]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
