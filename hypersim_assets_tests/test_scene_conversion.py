"""Scene conversion: pool and pluggable executors give the same files as a serial run; a
run killed mid-scene (SIGKILL to the process and its pool workers) and re-run leaves
byte-identical output and no temp files."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hypersim_assets.convert.frame_conversion import STATE_DIR, ConversionSettings
from hypersim_assets.convert.scene_conversion import convert_scene, remove_stale_temp_files
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
    # A writer killed mid-file leaves a temp file beside the target; plant one for certain.
    stray = crashed / "train/rgb" / SCENE / "cam_01" / ".0003.png.x1y2z3.tmp"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"half a png")
    facts = convert_scene(scene_dir, SCENE, _frames(), camera_params(H, W), crashed, ConversionSettings())
    assert [f.status for f in facts] == ["converted"] * FRAMES
    assert not list(crashed.rglob("*.tmp"))
    assert _tree(crashed) == _tree(clean)


def test_remove_stale_temp_files_only_touches_this_scene(tmp_path):
    mine = tmp_path / "valid/depth" / SCENE / "cam_00" / ".0001.png.abc.tmp"
    other = tmp_path / "valid/depth/ai_001_001/cam_00/.0001.png.abc.tmp"
    for p in (mine, other):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
    assert remove_stale_temp_files(tmp_path, SCENE) == 1
    assert not mine.exists() and other.exists()
