"""Preview images for the UI: exact label colours, depth ordering, inline PNGs a
standard decoder reads; a scene's preview comes from a conversion that happens anyway."""

from __future__ import annotations

import base64
import concurrent.futures as cf
import contextlib
import io
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from hypersim_assets.common.layout import frame_output_paths
from hypersim_assets.convert import frame_conversion
from hypersim_assets.convert.previews import (
    colorize_depth,
    colorize_labels,
    downsample,
    frame_preview_markdown,
    preview_from_files,
)
from hypersim_assets.convert.scene_conversion import stream_scene_conversion
from hypersim_assets_tests.frame_scene import camera_params, write_scene

SCENE = "ai_037_002"
H, W = 48, 64


def test_downsample_keeps_exact_values_and_bounds_width():
    labels = np.arange(768 * 1024, dtype=np.uint32).reshape(768, 1024)
    small = downsample(labels, 192)
    assert small.shape[1] <= 192
    assert np.array_equal(small, labels[:: -(-1024 // 192), :: -(-1024 // 192)])


def test_depth_colours_invalid_black_and_near_differs_from_far():
    depth = np.zeros((4, 50), np.uint16)
    depth[:, 1:] = np.linspace(500, 9000, 49).astype(np.uint16)
    rgb = colorize_depth(depth)
    assert (rgb[:, 0] == 0).all()
    assert rgb[0, 1, 2] > rgb[0, 1, 0]  # near: blue
    assert rgb[0, -1, 0] > rgb[0, -1, 2]  # far: red


def test_label_colours_are_a_function_of_the_label():
    labels = np.array([[0, 1, 1], [40, 1, 0]], np.uint8)
    rgb = colorize_labels(labels)
    assert (rgb[labels == 0] == 0).all()
    assert (rgb[labels == 1] == rgb[0, 1]).all()
    assert not np.array_equal(rgb[0, 1], rgb[1, 0])


def test_markdown_holds_three_decodable_pngs():
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0] = np.arange(64, dtype=np.uint8)
    md = frame_preview_markdown("t", rgb, np.full((48, 64), 1000, np.uint16), np.ones((48, 64), np.uint8))
    uris = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", md)
    assert len(uris) == 3
    with Image.open(io.BytesIO(base64.b64decode(uris[0]))) as im:
        assert im.size == (64, 48) and np.array_equal(np.asarray(im), rgb)


def _png_arrays(root, split_dir, scene, camera, frame_id):
    rels = frame_output_paths(split_dir, scene, camera, frame_id)
    out = {}
    for modality in ("rgb", "depth", "semantic_40"):
        with Image.open(root / rels[modality]) as im:
            out[modality] = np.asarray(im)
    return out


def _markdown_of_written_frame(root, camera, frame_id):
    """The preview a reader of the written PNGs would build (decoded independently of the code under test)."""
    a = _png_arrays(root, "train", SCENE, camera, frame_id)
    return frame_preview_markdown(
        f"{SCENE} {camera} frame {frame_id:04d}", a["rgb"], a["depth"].astype(np.uint16), a["semantic_40"]
    )


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp("raw"), cameras=("cam_00", "cam_01"), frames=2, height=H, width=W)


def _frames():
    return [(cam, f, "train", "Kitchen") for cam in ("cam_00", "cam_01") for f in range(2)]


@pytest.fixture
def read_counter(monkeypatch):
    """Counts, per (camera, frame), how often a frame's rendered images are read: once per
    conversion of that frame (the real reader runs; only counted)."""
    counts: Counter = Counter()
    real = frame_conversion.read_frame_images

    def counted(scene_dir, scene, camera, frame_id):
        counts[(camera, int(frame_id))] += 1
        return real(scene_dir, scene, camera, frame_id)

    monkeypatch.setattr(frame_conversion, "read_frame_images", counted)
    return counts


def _convert(scene_dir, root, executor, frames=None):
    with stream_scene_conversion(
        scene_dir, SCENE, frames or _frames(), camera_params(H, W), root, executor=executor, preview=True
    ) as conversion:
        facts = conversion.finish()
    return facts, conversion.preview


@pytest.mark.parametrize("threads", [0, 2], ids=["in-process", "executor"])
def test_preview_is_made_by_the_conversion_of_the_first_frame_without_converting_it_again(
    scene_dir, tmp_path, read_counter, threads
):
    with contextlib.ExitStack() as stack:
        executor = stack.enter_context(cf.ThreadPoolExecutor(threads)) if threads else None
        facts, preview = _convert(scene_dir, tmp_path, executor)
    assert [f.status for f in facts] == ["converted"] * 4
    assert read_counter == {(cam, f): 1 for cam, f, _, _ in _frames()}, "a frame was converted twice"
    assert preview.count("data:image/png;base64,") == 3
    assert preview == _markdown_of_written_frame(tmp_path, "cam_00", 0)


def test_preview_of_a_done_scene_is_decoded_from_its_pngs_without_any_conversion(scene_dir, tmp_path, read_counter):
    first, first_preview = _convert(scene_dir, tmp_path, None)
    read_counter.clear()
    again, preview = _convert(scene_dir, tmp_path, None)
    assert all(f.skipped for f in again)
    assert not read_counter, "a done frame was converted again for its preview"
    assert preview == first_preview == _markdown_of_written_frame(tmp_path, "cam_00", 0)


def test_preview_falls_back_to_the_first_converted_frame_when_the_first_sent_has_no_input(
    scene_dir, tmp_path, read_counter
):
    missing = [("cam_00", 7, "train", "Kitchen"), *_frames()]  # frame 7 was never rendered
    with cf.ThreadPoolExecutor(2) as executor:
        facts, preview = _convert(scene_dir, tmp_path, executor, missing)
    assert [f.status for f in facts] == ["input_missing"] + ["converted"] * 4
    assert max(read_counter.values()) == 1
    assert preview == _markdown_of_written_frame(tmp_path, "cam_00", 0)


def test_preview_from_files_names_the_reason_instead_of_failing(tmp_path):
    text = preview_from_files(tmp_path, SCENE, "cam_00", 0, "train")
    assert text.startswith("no preview: FileNotFoundError")


def test_preview_from_a_process_pool_shows_the_first_frame(scene_dir, tmp_path):
    with stream_scene_conversion(
        scene_dir, SCENE, _frames(), camera_params(H, W), tmp_path, workers=2, preview=True
    ) as conversion:
        facts = conversion.finish()
    assert [f.status for f in facts] == ["converted"] * 4
    assert conversion.preview == _markdown_of_written_frame(tmp_path, "cam_00", 0)
