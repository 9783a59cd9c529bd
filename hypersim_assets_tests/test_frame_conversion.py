"""One frame end to end: files in the reference layout read back with Pillow, JSON as the
reference writes it, facts, missing input, skipping of finished frames, both variants."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from hypersim_assets.common.layout import frame_output_paths, intrinsics_output_paths
from hypersim_assets.convert import depth as D
from hypersim_assets.convert import frame_conversion as fc
from hypersim_assets.convert import labels, normals, reprojection, tonemapping
from hypersim_assets.convert.frame_conversion import CONVERTER_VERSION, ConversionSettings, convert_frame, marker_path
from hypersim_assets.convert.hdf5_frames import read_frame_images
from hypersim_assets_tests.frame_scene import METERS_PER_ASSET_UNIT, camera_params, write_scene

H, W = 48, 64
SCENE = "ai_037_002"


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp("raw"), frames=2, height=H, width=W)


def _read(path):
    with Image.open(path) as im:
        im.load()
        return im.mode, np.asarray(im)


def test_converted_frame_files_and_facts(scene_dir, tmp_path):
    facts = convert_frame(scene_dir, SCENE, "cam_00", 1, "val", "Living room", camera_params(H, W), tmp_path)
    assert facts.status == "converted" and facts.reason is None and facts.converter_version == CONVERTER_VERSION
    rels = frame_output_paths("valid", SCENE, "cam_00", 1)
    modes = {m: _read(tmp_path / rels[m]) for m in ("rgb", "depth", "normal", "semantic_40", "instance")}
    assert {m: (mode, a.shape, a.dtype.name) for m, (mode, a) in modes.items()} == {
        "rgb": ("RGB", (H, W, 3), "uint8"),
        "depth": ("I;16", (H, W), "uint16"),
        "normal": ("RGB", (H, W, 3), "uint8"),
        "semantic_40": ("L", (H, W), "uint8"),
        "instance": ("RGB", (H, W, 3), "uint8"),
    }
    # Pixels: each modality recomputed from the raw inputs with the pure functions, then reprojected.
    img = read_frame_images(scene_dir, SCENE, "cam_00", 1)
    M = reprojection.m_cam_from_uv(camera_params(H, W))
    intr = reprojection.pinhole_intrinsics(M)
    dist, nan = D.distance_without_nan(img.depth_meters)
    pts = reprojection.camera_points(reprojection.flipped_ray_columns(reprojection.unit_rays(M, H, W)), dist)
    rep = reprojection.reprojection(pts, intr, H, W)
    sem = labels.semantic_labels(img.semantic)
    inst = labels.instance_image(sem, labels.instance_ids(img.semantic_instance))
    assert np.array_equal(modes["rgb"][1], rep.apply(tonemapping.tonemap(img.color, img.render_entity_id)))
    assert np.array_equal(modes["depth"][1], rep.apply(D.depth_mm_from_z(pts[2].reshape(H, W))))
    assert np.array_equal(modes["normal"][1], rep.apply(normals.encode_normals(img.normal_bump_cam)))
    assert np.array_equal(modes["semantic_40"][1], rep.apply(sem))
    assert np.array_equal(modes["instance"][1], rep.apply(inst))
    # Ids above 255 survive in G/B; R is the class.
    ids = labels.instance_ids_of_image(modes["instance"][1])
    assert 300 in ids and 260 in ids
    assert (modes["instance"][1][..., 0] == modes["semantic_40"][1]).all()
    depth = modes["depth"][1]
    assert facts.depth_min_mm == depth[depth > 0].min() and facts.depth_max_mm == depth.max()
    assert facts.nan_pixels == nan + 0 and facts.nan_pixels >= 1
    assert facts.void_fraction == pytest.approx(np.mean(modes["semantic_40"][1] == 0))
    assert facts.classes_present == [1, 2, 5]
    assert facts.instance_count == len(set(np.unique(ids)) - {0})
    assert facts.rotation_valid is True
    # JSON: the reference's json.dump(indent=4) text, keys and structure.
    extr_text = (tmp_path / rels["extrinsics"]).read_text()
    extr = json.loads(extr_text)
    assert list(extr) == ["x", "y", "z", "quat_x", "quat_y", "quat_z", "quat_w"]
    assert extr_text == json.dumps(extr, indent=4)
    assert (facts.x, facts.quat_w) == (extr["x"], extr["quat_w"])
    boxes = json.loads((tmp_path / rels["boxes_3d"]).read_text())
    assert list(boxes) == [str(i) for i in sorted(set(np.unique(ids)) - {0})]
    orient = json.loads((tmp_path / rels["orientations"]).read_text())
    assert list(orient) == list(boxes) and all(0 <= v < 2 * np.pi for v in orient.values())
    assert boxes["300"]["extents"][0] == pytest.approx(
        float(np.float32(boxes["300"]["extents"][0] / METERS_PER_ASSET_UNIT)) * METERS_PER_ASSET_UNIT
    )
    assert (tmp_path / rels["scene_class"]).read_text() == "Living room\n"
    intr_paths = intrinsics_output_paths("valid", SCENE, "cam_00")
    assert json.loads((tmp_path / intr_paths["depth_intrinsics"]).read_text()) == intr
    assert json.loads((tmp_path / intr_paths["rgb_intrinsics"]).read_text()) == {
        k: intr[k] for k in ("fx", "fy", "cx", "cy")
    }
    assert (facts.fx, facts.cy) == (intr["fx"], intr["cy"])
    assert facts.output_bytes == sum((tmp_path / r).stat().st_size for r in rels.values())
    assert not list(tmp_path.rglob("*.tmp"))


def test_invalid_rotation_is_reported_and_converted(scene_dir, tmp_path):
    facts = convert_frame(scene_dir, SCENE, "cam_00", 0, "train", "Office", camera_params(H, W), tmp_path)
    assert facts.status == "converted" and facts.rotation_valid is False
    assert np.isfinite([facts.quat_x, facts.quat_y, facts.quat_z, facts.quat_w]).all()


def test_missing_input_writes_nothing_and_reports(scene_dir, tmp_path):
    facts = convert_frame(scene_dir, SCENE, "cam_00", 9, "train", "Office", camera_params(H, W), tmp_path)
    assert facts.status == "input_missing" and "ai_037_002/cam_00/0009" in facts.reason
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    no_pose = write_scene(tmp_path / "raw", frames=1, height=8, width=8)
    (no_pose / "_detail/cam_00/camera_keyframe_positions.hdf5").unlink()
    other = convert_frame(no_pose, SCENE, "cam_00", 0, "train", "Office", camera_params(8, 8), tmp_path / "out")
    assert other.status == "input_missing" and "camera_keyframe_positions" in other.reason
    assert not (tmp_path / "out").exists()


def test_skip_existing_and_reconversion_on_changes(scene_dir, tmp_path):
    cp = camera_params(H, W)
    first = convert_frame(scene_dir, SCENE, "cam_00", 1, "train", "Office", cp, tmp_path)
    rgb = tmp_path / frame_output_paths("train", SCENE, "cam_00", 1)["rgb"]
    stamp = rgb.stat().st_mtime_ns
    again = convert_frame(scene_dir, SCENE, "cam_00", 1, "train", "Office", cp, tmp_path)
    assert again.skipped and again.depth_max_mm == first.depth_max_mm and rgb.stat().st_mtime_ns == stamp
    # A different compression changes output bytes: the frame is converted again.
    redo = convert_frame(
        scene_dir, SCENE, "cam_00", 1, "train", "Office", cp, tmp_path, ConversionSettings(png_compression="fast")
    )
    assert not redo.skipped
    # A removed output is noticed.
    rgb.unlink()
    assert not convert_frame(
        scene_dir, SCENE, "cam_00", 1, "train", "Office", cp, tmp_path, ConversionSettings(png_compression="fast")
    ).skipped
    assert rgb.is_file()
    # A changed input is noticed; a deleted input (raw removed after conversion) is not.
    src = scene_dir / "images/scene_cam_00_geometry_hdf5/frame.0001.semantic.hdf5"
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    assert not convert_frame(
        scene_dir, SCENE, "cam_00", 1, "train", "Office", cp, tmp_path, ConversionSettings(png_compression="fast")
    ).skipped
    assert marker_path(tmp_path, SCENE, "cam_00", 1).is_file()


def test_no_tilt_shift_variant(scene_dir, tmp_path):
    facts = convert_frame(
        scene_dir,
        SCENE,
        "cam_00",
        1,
        "test",
        "Office",
        camera_params(H, W),
        tmp_path,
        ConversionSettings(tilt_shift=False),
    )
    rels = frame_output_paths("test", SCENE, "cam_00", 1)
    img = read_frame_images(scene_dir, SCENE, "cam_00", 1)
    assert np.array_equal(_read(tmp_path / rels["depth"])[1], D.legacy_depth_mm(img.depth_meters))
    sem = _read(tmp_path / rels["semantic_40"])[1]
    assert np.array_equal(sem, labels.semantic_labels(img.semantic))  # not reprojected
    intr = json.loads((tmp_path / intrinsics_output_paths("test", SCENE, "cam_00")["depth_intrinsics"]).read_text())
    assert intr == reprojection.legacy_intrinsics() and intr["cx"] == 0.5
    assert facts.fx == intr["fx"]


def test_corrupt_or_rejected_input_fails_the_frame_and_writes_nothing(tmp_path):
    sd = write_scene(tmp_path / "raw", frames=2, height=8, width=8)
    (sd / "images/scene_cam_00_geometry_hdf5/frame.0000.depth_meters.hdf5").write_bytes(b"\x00" * 64)
    facts = convert_frame(sd, SCENE, "cam_00", 0, "train", "Office", camera_params(8, 8), tmp_path / "out")
    assert facts.status == "failed" and "FrameInputCorrupt" in facts.reason and "depth_meters.hdf5" in facts.reason
    import h5py

    with h5py.File(sd / "images/scene_cam_00_geometry_hdf5/frame.0001.semantic.hdf5", "w") as f:
        f.create_dataset("dataset", data=np.zeros((8, 8), np.int16))  # 0 never occurs upstream
    facts = convert_frame(sd, SCENE, "cam_00", 1, "train", "Office", camera_params(8, 8), tmp_path / "out")
    assert facts.status == "failed" and "LabelError" in facts.reason
    assert not (tmp_path / "out").exists()


def test_errors_that_are_not_bad_input_fail_loudly(tmp_path):
    """Only bad input becomes a ``failed`` frame; a metadata or machine problem raises."""
    sd = write_scene(tmp_path / "raw", frames=1, height=8, width=8)
    params = camera_params(8, 8)
    del params["M_cam_from_uv_00"]  # the camera-parameters row, not the frame, is wrong
    with pytest.raises(ValueError, match="M_cam_from_uv_00"):
        convert_frame(sd, SCENE, "cam_00", 0, "train", "Office", params, tmp_path / "out")
    blocked = tmp_path / "not_a_folder"
    blocked.write_bytes(b"")  # the dataset root cannot be created: an OS error, not the frame's fault
    with pytest.raises(OSError):
        convert_frame(sd, SCENE, "cam_00", 0, "train", "Office", camera_params(8, 8), blocked / "out")


def test_infinite_and_negative_depth_are_counted_and_written_as_the_reference_does(tmp_path):
    import h5py

    sd = write_scene(tmp_path / "raw", frames=1, height=H, width=W)
    depth_file = sd / "images/scene_cam_00_geometry_hdf5/frame.0000.depth_meters.hdf5"
    with h5py.File(depth_file, "r") as f:
        distance = f["dataset"][()]
    distance[5, 5:8] = np.inf
    distance[6, 5] = -np.inf
    distance[30, 40:44] = -2.5
    with h5py.File(depth_file, "w") as f:
        f.create_dataset("dataset", data=distance)
    facts = convert_frame(sd, SCENE, "cam_00", 0, "train", "Office", camera_params(H, W), tmp_path / "out")
    assert facts.status == "converted"
    assert (facts.depth_inf_pixels, facts.depth_negative_pixels) == (4, 4)
    # The pixels: the reference's nan_to_num (inf -> float16 max), then z * 1000 cast to uint16.
    M = reprojection.m_cam_from_uv(camera_params(H, W))
    ref_distance = np.nan_to_num(distance, nan=0.0)
    pts = reprojection.camera_points(reprojection.flipped_ray_columns(reprojection.unit_rays(M, H, W)), ref_distance)
    rep = reprojection.reprojection(pts, reprojection.pinhole_intrinsics(M), H, W)
    depth_png = _read(tmp_path / "out" / frame_output_paths("train", SCENE, "cam_00", 0)["depth"])[1]
    assert np.array_equal(depth_png, rep.apply(D.depth_mm_from_z(pts[2].reshape(H, W))))


def test_nan_pixel_count_from_float16_bits_equals_isnan():
    """Every NaN pattern (quiet, signalling, negative) counts, infinities do not, per pixel once."""
    rng = np.random.default_rng(9)
    depth = rng.uniform(0, 20, (40, 50)).astype(np.float16)
    normal = rng.uniform(-1, 1, (40, 50, 3)).astype(np.float16)
    for a, patterns in ((depth, (0x7E00, 0xFE00, 0x7C01, 0x7C00, 0xFC00)), (normal, (0x7FFF, 0xFC01, 0x7C00))):
        bits = a.view(np.uint16).reshape(-1)
        for p in patterns:
            bits[rng.integers(0, bits.size, 60)] = p
    expected = int(np.count_nonzero(np.isnan(depth) | np.isnan(normal).any(axis=-1)))
    assert expected > 0
    assert fc._nan_pixels(depth, normal) == expected
    assert fc._nan_pixels(depth.astype(np.float32), normal.astype(np.float32)) == expected


def test_depth_anomaly_counts_from_float16_bits_equal_float_tests():
    """+-inf count as infinite; negative means finite and below 0 (not -0, not NaN), edge patterns included."""
    rng = np.random.default_rng(10)
    depth = rng.uniform(-3, 20, (30, 40)).astype(np.float16)
    bits = depth.view(np.uint16).reshape(-1)
    for p in (0x8000, 0x8001, 0xFBFF, 0xFC00, 0x7C00, 0xFE00, 0x7E00, 0x0001, 0x7BFF):
        bits[rng.integers(0, bits.size, 25)] = p
    as32 = depth.astype(np.float32)
    expected = (int(np.isinf(as32).sum()), int((np.isfinite(as32) & (as32 < 0)).sum()))
    assert fc._depth_anomalies(depth) == expected == fc._depth_anomalies(as32)
    assert expected[0] > 0 and expected[1] > 0
    clean, nan = D.distance_without_nan(depth)
    assert nan == int(np.isnan(as32).sum()) and not np.isnan(clean).any()
    assert np.array_equal(clean, np.nan_to_num(depth, nan=0.0))


@pytest.mark.parametrize("case", ["mixed", "extremes", "empty"])
def test_depth_facts_equal_masked_numpy_statistics(case):
    rng = np.random.default_rng(12)
    depth = rng.integers(0, 65536, (48, 64)).astype(np.uint16)
    depth[rng.random((48, 64)) < 0.3] = 0
    if case == "extremes":
        depth[0, :3] = [1, 65535, 0]
    if case == "empty":
        depth[:] = 0
    sem = rng.integers(0, 41, (48, 64)).astype(np.uint8)
    ids = rng.integers(0, 5, (48, 64)).astype(np.uint16)
    frame = fc.ConvertedFrame(
        rgb=np.zeros((48, 64, 3), np.uint8),
        depth_mm=depth,
        normal=np.zeros((48, 64, 3), np.uint8),
        semantic=sem,
        instance=labels.instance_image(sem, ids),
        extrinsics={k: 0.0 for k in ("x", "y", "z", "quat_x", "quat_y", "quat_z", "quat_w")},
        intrinsics={"fx": 1.0, "fy": 1.0, "cx": 0.5, "cy": 0.5, "a": 0.001, "b": -1},
        boxes={},
        orientations={},
        rotation_valid=True,
        nan_pixels=0,
    )
    facts = fc.frame_facts_of(frame, fc.FrameFacts("ai_001_001", "cam_00", 0, "failed"), 0)
    valid = depth[depth > 0]
    if case == "empty":
        assert (facts.depth_min_mm, facts.depth_max_mm, facts.depth_mean_mm) == (None, None, None)
        return
    assert facts.depth_min_mm == int(valid.min()) and facts.depth_max_mm == int(valid.max())
    assert facts.depth_mean_mm == float(np.mean(valid.astype(np.float64)))
    assert facts.instance_count == 4 and facts.classes_present == sorted(set(sem.ravel().tolist()) - {0})


def test_facts_record_the_settings_the_files_were_written_with(scene_dir, tmp_path):
    cp = camera_params(H, W)
    fast = ConversionSettings(png_compression="fast", tilt_shift=False)
    first = convert_frame(scene_dir, SCENE, "cam_00", 1, "train", "Office", cp, tmp_path, fast)
    assert (first.tilt_shift, first.png_compression) == (False, "fast")
    # A done-marker written before facts carried the settings: a skipped frame takes them from the marker's key.
    path = marker_path(tmp_path, SCENE, "cam_00", 1)
    marker = json.loads(path.read_text())
    del marker["facts"]["tilt_shift"], marker["facts"]["png_compression"]
    path.write_text(json.dumps(marker))
    again = convert_frame(scene_dir, SCENE, "cam_00", 1, "train", "Office", cp, tmp_path, fast)
    assert again.skipped and (again.tilt_shift, again.png_compression) == (False, "fast")
    missing = convert_frame(scene_dir, SCENE, "cam_00", 9, "train", "Office", cp, tmp_path)
    assert missing.status == "input_missing" and missing.png_compression is None
