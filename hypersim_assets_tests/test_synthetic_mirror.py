"""The synthetic Hypersim mirror: upstream member layout, file formats, label/NaN conventions,
geometric consistency, planted edge cases, metadata CSV columns and byte-for-byte determinism."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hypersim_assets.common import layout
from hypersim_assets.synthetic.metadata_csvs import (
    CAMERA_PARAMETER_COLUMNS,
    REAL_CAMERA_ROWS,
    SPLIT_COLUMNS,
    TRAJECTORY_COLUMNS,
)
from hypersim_assets.synthetic.mirror import MirrorSpec, MirrorSummary, write_synthetic_mirror
from hypersim_assets.synthetic.previews import FINAL_PREVIEWS, GEOMETRY_PREVIEWS_JPG, GEOMETRY_PREVIEWS_PNG
from hypersim_assets.synthetic.scene_zip import SceneZip

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "hypersim-reference"
SPEC = MirrorSpec(scenes=3, cameras=2, frames=4, height=24, width=32, seed=7)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> MirrorSummary:
    return write_synthetic_mirror(tmp_path_factory.mktemp("mirror"), SPEC)


def _zip(summary: MirrorSummary, scene: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(summary.root / "scenes" / f"{scene}.zip")


def _h5(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    with h5py.File(io.BytesIO(zf.read(name)), "r") as f:
        assert list(f.keys()) == ["dataset"], name
        return f["dataset"][()]


def _auto_chunks(shape: tuple[int, ...], dtype: type) -> tuple[int, ...]:
    """The chunk shape h5py picks by itself (what upstream's plain ``create_dataset(..., compression="gzip")`` got)."""
    with h5py.File(io.BytesIO(), "w") as f:
        return f.create_dataset("d", shape=shape, dtype=dtype, compression="gzip").chunks


def _split(summary: MirrorSummary) -> pd.DataFrame:
    return pd.read_csv(summary.root / layout.SPLIT_CSV)


def _camera_params(summary: MirrorSummary) -> pd.DataFrame:
    return pd.read_csv(summary.root / layout.CAMERA_PARAMETERS_CSV).set_index("scene_name")


def _present_frames(summary: MirrorSummary) -> list[tuple[str, str, int]]:
    """Included frames minus the planted missing one: the frames whose files are in the zips."""
    df = _split(summary)
    missing = summary.edge_cases["missing_frame"]
    out = []
    for r in df[df.included_in_public_release].itertuples():
        if missing and (r.scene_name, r.camera_name, r.frame_id) == (
            missing["scene"],
            missing["camera"],
            missing["frame_id"],
        ):
            continue
        out.append((r.scene_name, r.camera_name, int(r.frame_id)))
    return out


def _frame(zf: zipfile.ZipFile, scene: str, cam: str, fi: int) -> dict[str, np.ndarray]:
    out = {k: _h5(zf, layout.frame_member(scene, cam, fi, "final", k)) for k in layout.FINAL_KINDS}
    out.update({k: _h5(zf, layout.frame_member(scene, cam, fi, "geometry", k)) for k in layout.GEOMETRY_KINDS})
    return out


def _frame_members(scene: str, cam: str, fi: int) -> set[str]:
    names = {layout.frame_member(scene, cam, fi, "final", k) for k in layout.FINAL_KINDS}
    names |= {layout.frame_member(scene, cam, fi, "geometry", k) for k in layout.GEOMETRY_KINDS}
    base = f"{scene}/images/scene_{cam}_"
    names |= {f"{base}final_preview/frame.{fi:04d}.{k}.jpg" for k in FINAL_PREVIEWS}
    names |= {f"{base}geometry_preview/frame.{fi:04d}.{k}.jpg" for k in GEOMETRY_PREVIEWS_JPG}
    names |= {f"{base}geometry_preview/frame.{fi:04d}.{k}.png" for k in GEOMETRY_PREVIEWS_PNG}
    return names


def test_summary_counts_and_files(mirror: MirrorSummary) -> None:
    assert len(mirror.scenes) == 3 and all(layout.SCENE_NAME_RE.match(s) for s in mirror.scenes)
    assert mirror.frames_total == 24
    assert mirror.frames_included == int(_split(mirror).included_in_public_release.sum())
    assert mirror.zip_bytes == sum((mirror.root / "scenes" / f"{s}.zip").stat().st_size for s in mirror.scenes)
    for name in layout.METADATA_FILES:
        assert (mirror.root / name).is_file()
    # Atomic writes leave no temp files behind.
    assert sorted(p.name for p in (mirror.root / "scenes").iterdir()) == sorted(f"{s}.zip" for s in mirror.scenes)
    assert sorted(p.name for p in mirror.root.iterdir()) == sorted(list(layout.METADATA_FILES) + ["scenes"])


def test_zip_members_cover_every_upstream_kind(mirror: MirrorSummary) -> None:
    df = _split(mirror)
    present = set(_present_frames(mirror))
    for s in mirror.scenes:
        with _zip(mirror, s) as zf:
            names = set(zf.namelist())
        assert all(n.startswith(f"{s}/") for n in names)
        detail = {
            layout.scene_metadata_member(s),
            f"{s}/_detail/metadata_cameras.csv",
            f"{s}/_detail/metadata_nodes.csv",
            f"{s}/_detail/metadata_node_strings.csv",
            f"{s}/_detail/mesh/mesh_objects_si.hdf5",
            f"{s}/_detail/mesh/mesh_objects_sii.hdf5",
            f"{s}/_detail/mesh/metadata_objects.csv",
        } | {layout.bounding_box_member(s, k) for k in layout.BOUNDING_BOX_KINDS}
        for cam in ("cam_00", "cam_01"):
            detail |= {
                layout.camera_keyframe_member(s, cam, w)
                for w in ("positions", "orientations", "frame_indices", "look_at_positions")
            }
            detail.add(f"{s}/_detail/{cam}/metadata_camera.csv")
        assert detail <= names, detail - names
        for r in df[df.scene_name == s].itertuples():
            frame_names = _frame_members(s, r.camera_name, int(r.frame_id))
            if (s, r.camera_name, int(r.frame_id)) in present:
                assert frame_names <= names, frame_names - names
            else:  # excluded from the release, or the planted missing frame: nothing of it in the zip
                assert not frame_names & names
                assert not any(f"frame.{int(r.frame_id):04d}." in n and f"scene_{r.camera_name}_" in n for n in names)
        # Every member the conversion reads that exists for a present frame is selected by MemberSelection.
        selected = layout.MemberSelection().select(s, sorted(names))
        assert layout.scene_metadata_member(s) in selected
        assert not any(n.endswith((".jpg", ".png")) for n in selected)


def test_excluded_and_missing_frames_are_recorded(mirror: MirrorSummary) -> None:
    df = _split(mirror)
    excluded = df[~df.included_in_public_release]
    listed = {(e["scene"], e["camera"], e["frame_id"]) for e in mirror.edge_cases["excluded_frames"]}
    assert listed == set(zip(excluded.scene_name, excluded.camera_name, excluded.frame_id))
    assert set(excluded.exclude_reason) == {"CONTENT FLAGGED FOR REMOVAL", "OUTSIDE VIEWING AREA (BAD TRAJECTORY)"}
    assert excluded.split_partition_name.isna().all()
    assert df[df.included_in_public_release].exclude_reason.isna().all()
    bad = mirror.edge_cases["excluded_trajectory"]
    traj = pd.read_csv(mirror.root / layout.TRAJECTORIES_CSV).set_index("Animation")
    assert traj.loc[f"{bad['scene']}_{bad['camera']}", "Scene type"] == bad["exclude_reason"]
    missing = mirror.edge_cases["missing_frame"]
    row = df[
        (df.scene_name == missing["scene"])
        & (df.camera_name == missing["camera"])
        & (df.frame_id == missing["frame_id"])
    ]
    assert bool(row.included_in_public_release.iloc[0])  # included, yet its files are absent (upstream issue 7)


def test_hdf5_formats_match_upstream(mirror: MirrorSummary) -> None:
    s, cam, fi = _present_frames(mirror)[0]
    H, W = SPEC.height, SPEC.width
    expect = {k: (np.float16, (H, W, 3)) for k in layout.FINAL_KINDS}
    expect.update(
        {
            k: (np.float16, (H, W, 3))
            for k in ("position", "normal_cam", "normal_world", "normal_bump_cam", "normal_bump_world", "tex_coord")
        }
    )
    expect["depth_meters"] = (np.float16, (H, W))
    expect.update({k: (np.int16, (H, W)) for k in ("render_entity_id", "semantic", "semantic_instance")})
    with _zip(mirror, s) as zf:
        for kind, (dtype, shape) in expect.items():
            group = "final" if kind in layout.FINAL_KINDS else "geometry"
            name = layout.frame_member(s, cam, fi, group, kind)
            assert zf.getinfo(name).compress_type == zipfile.ZIP_STORED
            with h5py.File(io.BytesIO(zf.read(name)), "r") as f:
                ds = f["dataset"]
                assert (ds.dtype, ds.shape) == (np.dtype(dtype), shape), kind
                assert (ds.compression, ds.compression_opts, ds.shuffle) == ("gzip", 9, False), kind
                assert ds.chunks == _auto_chunks(shape, dtype), kind
        n_frames = SPEC.frames
        for cam_ in ("cam_00", "cam_01"):
            pos = _h5(zf, layout.camera_keyframe_member(s, cam_, "positions"))
            ori = _h5(zf, layout.camera_keyframe_member(s, cam_, "orientations"))
            idx = _h5(zf, layout.camera_keyframe_member(s, cam_, "frame_indices"))
            look = _h5(zf, layout.camera_keyframe_member(s, cam_, "look_at_positions"))
            assert (pos.dtype, pos.shape, ori.dtype, ori.shape) == (
                np.float64,
                (n_frames, 3),
                np.float64,
                (n_frames, 3, 3),
            )
            assert look.shape == (n_frames, 3) and idx.dtype == np.int64 and list(idx) == list(range(n_frames))
        si = _h5(zf, f"{s}/_detail/mesh/mesh_objects_si.hdf5")
        sii = _h5(zf, f"{s}/_detail/mesh/mesh_objects_sii.hdf5")
        objects = pd.read_csv(io.BytesIO(zf.read(f"{s}/_detail/mesh/metadata_objects.csv")))
        assert list(objects.columns) == ["object_name"]
        assert si.dtype == sii.dtype == np.int64 and si.shape == sii.shape == (len(objects), 1)
        bb = {k: _h5(zf, layout.bounding_box_member(s, k)) for k in layout.BOUNDING_BOX_KINDS}
        n_inst = int(sii.max()) + 1
        assert bb["positions"].shape == bb["extents"].shape == (n_inst, 3) and bb["orientations"].shape == (
            n_inst,
            3,
            3,
        )
        assert all(a.dtype == np.float64 for a in bb.values())
        for name in zf.namelist():
            if name.endswith(".csv"):
                assert zf.getinfo(name).compress_type == zipfile.ZIP_DEFLATED
            if "_hdf5/" in name or name.endswith((".jpg", ".png")):
                assert zf.getinfo(name).compress_type == zipfile.ZIP_STORED
            assert zf.getinfo(name).date_time == (2020, 6, 1, 0, 0, 0)
        scene_csv = pd.read_csv(io.BytesIO(zf.read(layout.scene_metadata_member(s))))
        assert list(scene_csv.columns) == ["parameter_name", "parameter_value"]
        assert scene_csv.parameter_name.tolist() == ["meters_per_asset_unit"]
        nodes = pd.read_csv(io.BytesIO(zf.read(f"{s}/_detail/metadata_nodes.csv")))
        assert list(nodes.columns) == ["node_id", "node_name", "object_id", "object_name"]
        assert nodes.node_id.tolist() == list(range(1, len(nodes) + 1))  # upstream asserts ids 1..N
        strings = pd.read_csv(io.BytesIO(zf.read(f"{s}/_detail/metadata_node_strings.csv")))
        assert list(strings.columns) == ["node_id", "path", "string"]
        cams = pd.read_csv(io.BytesIO(zf.read(f"{s}/_detail/metadata_cameras.csv")))
        assert cams.camera_name.tolist() == ["cam_00", "cam_01"]


def test_no_geometry_and_label_conventions(mirror: MirrorSummary) -> None:
    nan_case = mirror.edge_cases["nan_depth_at_valid_pixels"]
    saw_void = saw_class_without_instance = saw_unlabelled_geometry = False
    for s, cam, fi in _present_frames(mirror):
        with _zip(mirror, s) as zf:
            f = _frame(zf, s, cam, fi)
        rid, sem, inst = f["render_entity_id"], f["semantic"], f["semantic_instance"]
        void = rid == -1
        assert not (rid == 0).any() and not (sem == 0).any() and not (inst == 0).any()
        assert (sem[void] == -1).all() and (inst[void] == -1).all()
        assert (sem[~void] <= 40).all()
        for k in ("depth_meters", "position", "normal_cam", "normal_world", "normal_bump_cam", "normal_bump_world"):
            assert np.isnan(f[k][void]).all(), k
        planted = np.zeros_like(void)
        if nan_case and (s, cam, fi) == (nan_case["scene"], nan_case["camera"], nan_case["frame_id"]):
            for r, c in nan_case["pixels"]:
                planted[r, c] = True
        assert np.isfinite(f["depth_meters"][~void & ~planted]).all()
        assert np.isfinite(f["normal_bump_cam"][~void]).all()
        assert (f["depth_meters"][~void & ~planted] > 0).all()
        for k in layout.FINAL_KINDS:
            assert np.isfinite(f[k]).all() and (f[k] >= 0).all(), k
        saw_void |= bool(void.any())
        saw_class_without_instance |= bool(((sem != -1) & (inst == -1)).any())
        saw_unlabelled_geometry |= bool(((rid != -1) & (sem == -1)).any())
    # What holds: no geometry => -1 labels and NaN geometry; the converse does not: walls have a class but
    # no instance, and unlabelled objects have a render_entity_id but semantic -1 (both as upstream).
    assert saw_void and saw_class_without_instance and saw_unlabelled_geometry


def _ray_directions(params: pd.Series, R: np.ndarray, H: int, W: int) -> np.ndarray:
    """World-space unit ray per pixel: R @ M_cam_from_uv @ [u, v, 1], u/v pixel centres, v up (our own derivation)."""
    M = np.array([[params[f"M_cam_from_uv_{r}{c}"] for c in range(3)] for r in range(3)])
    u = (np.arange(W) + 0.5) / W * 2 - 1
    v = 1 - (np.arange(H) + 0.5) / H * 2
    uu, vv = np.meshgrid(u, v)
    cam = np.stack([uu, vv, np.ones_like(uu)], -1) @ M.T
    world = cam @ R.T
    return world / np.linalg.norm(world, axis=-1, keepdims=True), cam / np.linalg.norm(cam, axis=-1, keepdims=True)


def test_geometry_is_consistent(mirror: MirrorSummary) -> None:
    params = _camera_params(mirror)
    bad = mirror.edge_cases["invalid_rotation_frame_0"]
    for s, cam, fi in _present_frames(mirror):
        with _zip(mirror, s) as zf:
            f = _frame(zf, s, cam, fi)
            mpau = float(pd.read_csv(io.BytesIO(zf.read(layout.scene_metadata_member(s)))).parameter_value[0])
            pos = _h5(zf, layout.camera_keyframe_member(s, cam, "positions"))[fi]
            R = _h5(zf, layout.camera_keyframe_member(s, cam, "orientations"))[fi]
        assert mpau == params.loc[s, "settings_units_info_meters_scale"]
        d_world, d_cam = _ray_directions(params.loc[s], R, SPEC.height, SPEC.width)
        depth = f["depth_meters"].astype(np.float64)
        ok = np.isfinite(depth)
        position = f["position"].astype(np.float64)
        # World: position == camera position + distance along the ray (asset units).
        expected = pos + (depth / mpau)[..., None] * d_world
        tol = 2e-3 * np.nanmax(np.abs(position)) + 4e-3 * np.nanmax(depth) / mpau
        assert np.abs(expected[ok] - position[ok]).max() < tol, (s, cam, fi)
        # Normals: unit length, normal_cam = R^T normal_world (as upstream), facing the camera.
        nw, nc = f["normal_world"].astype(np.float64), f["normal_cam"].astype(np.float64)
        assert np.allclose(np.linalg.norm(nw[ok], axis=-1), 1, atol=2e-3)
        assert np.allclose(nc[ok], nw[ok] @ R, atol=1e-2)
        assert ((nw[ok] * d_world[ok]).sum(-1) < 1e-3).all()
        if bad and (s, cam, fi) == (bad["scene"], bad["camera"], bad["frame_id"]):
            continue
        # Camera frame (valid rotation): depth * unit camera ray == R^T (position - camera) in metres.
        local_m = (position - pos) @ R * mpau
        assert (
            np.abs(local_m[ok] - depth[ok][:, None] * d_cam[ok]).max()
            < 2e-3 * np.nanmax(depth) + 4e-3 * np.nanmax(np.abs(position)) * mpau
        )


def test_labels_follow_the_mesh_annotation(mirror: MirrorSummary) -> None:
    """semantic/semantic_instance = mesh_objects_si/sii[object_id[render_entity_id]], as upstream derives them."""
    for s, cam, fi in _present_frames(mirror)[:6]:
        with _zip(mirror, s) as zf:
            f = _frame(zf, s, cam, fi)
            nodes = pd.read_csv(io.BytesIO(zf.read(f"{s}/_detail/metadata_nodes.csv")))
            si = _h5(zf, f"{s}/_detail/mesh/mesh_objects_si.hdf5")[:, 0]
            sii = _h5(zf, f"{s}/_detail/mesh/mesh_objects_sii.hdf5")[:, 0]
        obj_of_node = np.r_[-1, nodes.object_id.to_numpy()]
        rid = f["render_entity_id"].astype(np.int64)
        obj = np.where(rid > 0, obj_of_node[np.maximum(rid, 0)], -1)
        assert (np.where(obj >= 0, si[obj], -1) == f["semantic"]).all()
        assert (np.where(obj >= 0, sii[obj], -1) == f["semantic_instance"]).all()


def test_bounding_boxes_enclose_their_instances(mirror: MirrorSummary) -> None:
    s = mirror.scenes[0]
    with _zip(mirror, s) as zf:
        bb = {k: _h5(zf, layout.bounding_box_member(s, k)) for k in layout.BOUNDING_BOX_KINDS}
        sii = _h5(zf, f"{s}/_detail/mesh/mesh_objects_sii.hdf5")[:, 0]
        nodes = pd.read_csv(io.BytesIO(zf.read(f"{s}/_detail/metadata_nodes.csv")))
        frames = [_frame(zf, s_, c, fi) for s_, c, fi in _present_frames(mirror) if s_ == s]
    rendered_objects = nodes.object_id[nodes.object_id >= 0].to_numpy()
    with_geometry = {int(i) for i in sii[rendered_objects] if i != -1}
    assert {int(i) for i in sii if i != -1} - with_geometry  # an annotated instance that no node renders
    for i in range(len(bb["positions"])):
        if i not in with_geometry:  # no geometry: inf rows, as in the real files (upstream issue 66)
            assert (
                np.isinf(bb["positions"][i]).all()
                and np.isinf(bb["extents"][i]).all()
                and np.isinf(bb["orientations"][i]).all()
            )
            continue
        R = bb["orientations"][i]
        assert np.isfinite(bb["positions"][i]).all()
        assert np.allclose(R.T @ R, np.eye(3), atol=1e-9) and np.allclose(R[:, 2], [0, 0, 1])
        assert (bb["extents"][i] >= 0).all()
    for f in frames:
        for inst in np.unique(f["semantic_instance"]):
            if inst == -1:
                continue
            pts = f["position"][f["semantic_instance"] == inst].astype(np.float64)
            pts = pts[np.isfinite(pts).all(-1)]
            local = (pts - bb["positions"][inst]) @ bb["orientations"][inst]
            slack = 2e-3 * np.abs(bb["positions"][inst]).max() + 1e-6
            assert (np.abs(local) <= bb["extents"][inst] / 2 + slack).all(), inst


def test_shading_is_image_like(mirror: MirrorSummary) -> None:
    s, cam, fi = _present_frames(mirror)[0]
    with _zip(mirror, s) as zf:
        f = _frame(zf, s, cam, fi)
    c = f["color"].astype(np.float32)
    recon = f["diffuse_reflectance"].astype(np.float32) * f["diffuse_illumination"].astype(np.float32) + f[
        "residual"
    ].astype(np.float32)
    assert np.allclose(c, recon, rtol=4e-3, atol=1e-3)
    lum = c.mean(-1)
    # Smooth, not noise: neighbouring pixels differ far less than pixels in general.
    assert np.median(np.abs(np.diff(lum, axis=1))) < 0.25 * np.std(lum)
    assert len(np.unique(f["render_entity_id"])) >= 3


def test_previews_look_like_upstream(mirror: MirrorSummary) -> None:
    """Preview PNGs are real images at a quarter size; preview JPEGs are stand-in bytes (nothing
    converts them) with JPEG start and end markers, distinct per member, of plausible size."""
    s, cam, fi = _present_frames(mirror)[0]
    jpegs: dict[str, bytes] = {}
    with _zip(mirror, s) as zf:
        for name in sorted(_frame_members(s, cam, fi)):
            if name.endswith(".png"):
                im = Image.open(io.BytesIO(zf.read(name)))
                im.load()
                assert im.format == "PNG", name
                assert im.size == (-(-SPEC.width // 4), -(-SPEC.height // 4)), name
            elif name.endswith(".jpg"):
                jpegs[name] = zf.read(name)
    pixels = -(-SPEC.width // 4) * -(-SPEC.height // 4)
    assert len(jpegs) == len(FINAL_PREVIEWS) + len(GEOMETRY_PREVIEWS_JPG)
    for name, data in jpegs.items():
        assert data[:4] == b"\xff\xd8\xff\xe0" and data[-2:] == b"\xff\xd9", name
        assert 0.05 * pixels <= len(data) - 22 <= 0.15 * pixels, name
    assert len(set(jpegs.values())) == len(jpegs)


def test_edge_cases_are_planted(mirror: MirrorSummary) -> None:
    ec = mirror.edge_cases
    params = _camera_params(mirror)
    tilt = (params.M_cam_from_uv_02 != 0) | (params.M_cam_from_uv_12 != 0)
    assert sorted(params.index[tilt]) == sorted(ec["tilt_shift_scenes"]) and 2 * tilt.sum() > len(params)
    bad = ec["invalid_rotation_frame_0"]
    with _zip(mirror, bad["scene"]) as zf:
        R = _h5(zf, layout.camera_keyframe_member(bad["scene"], bad["camera"], "orientations"))
    assert bad["frame_id"] == 0
    assert np.abs(R[0].T @ R[0] - np.eye(3)).max() > 1e-3
    assert np.allclose(R[1:].transpose(0, 2, 1) @ R[1:], np.eye(3), atol=1e-9)
    nan_case = ec["nan_depth_at_valid_pixels"]
    with _zip(mirror, nan_case["scene"]) as zf:
        depth = _h5(
            zf,
            layout.frame_member(
                nan_case["scene"], nan_case["camera"], nan_case["frame_id"], "geometry", "depth_meters"
            ),
        )
        rid = _h5(
            zf,
            layout.frame_member(
                nan_case["scene"], nan_case["camera"], nan_case["frame_id"], "geometry", "render_entity_id"
            ),
        )
    assert nan_case["pixels"] and all(np.isnan(depth[r, c]) and rid[r, c] != -1 for r, c in nan_case["pixels"])
    seen_above_255 = False
    for s, cam, fi in _present_frames(mirror):
        with _zip(mirror, s) as zf:
            inst = _h5(zf, layout.frame_member(s, cam, fi, "geometry", "semantic_instance"))
        seen_above_255 |= bool((inst > 255).any())
    assert seen_above_255 and all(ids for ids in ec["instance_ids_above_255"].values())
    assert all(v == [1] for v in ec["semantic_without_instance"].values())  # walls: class, no instance
    assert ec["void_frames"] and all(v["void_pixels"] > 0 for v in ec["void_frames"])


def test_metadata_csvs(mirror: MirrorSummary) -> None:
    split = _split(mirror)
    assert tuple(split.columns) == SPLIT_COLUMNS
    per_scene = split[split.included_in_public_release].groupby("scene_name").split_partition_name.unique()
    assert sorted(v[0] for v in per_scene) == ["test", "train", "val"]
    assert len(split) == 24 and split.frame_id.tolist()[:4] == [0, 1, 2, 3]
    traj = pd.read_csv(mirror.root / layout.TRAJECTORIES_CSV)
    assert tuple(traj.columns) == TRAJECTORY_COLUMNS
    assert sorted(traj.Animation) == sorted(f"{s}_{c}" for s in mirror.scenes for c in ("cam_00", "cam_01"))
    params = _camera_params(mirror)
    assert tuple(["scene_name"] + list(params.columns)) == CAMERA_PARAMETER_COLUMNS
    assert sorted(params.index) == mirror.scenes
    assert (params.settings_output_img_width == SPEC.width).all() and (
        params.settings_output_img_height == SPEC.height
    ).all()


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="real Hypersim reference files not present")
def test_columns_and_camera_rows_match_the_real_files(mirror: MirrorSummary) -> None:
    for name, cols in (
        (layout.SPLIT_CSV, SPLIT_COLUMNS),
        (layout.TRAJECTORIES_CSV, TRAJECTORY_COLUMNS),
        (layout.CAMERA_PARAMETERS_CSV, CAMERA_PARAMETER_COLUMNS),
    ):
        with open(REFERENCE / "metadata" / name, newline="") as f:
            real = tuple(next(csv.reader(f)))
        with open(mirror.root / name, newline="") as f:
            ours = tuple(next(csv.reader(f)))
        assert real == cols == ours, name
    with open(REFERENCE / "metadata" / layout.CAMERA_PARAMETERS_CSV, newline="") as f:
        real_rows = {line.split(",", 1)[0]: line.rstrip("\r\n") for line in f}
    for scene, row in REAL_CAMERA_ROWS.items():
        assert real_rows[scene] == row, scene
    real_types = set(pd.read_csv(REFERENCE / "metadata" / layout.TRAJECTORIES_CSV)["Scene type"])
    assert set(pd.read_csv(mirror.root / layout.TRAJECTORIES_CSV)["Scene type"]) <= real_types
    real_reasons = set(pd.read_csv(REFERENCE / "metadata" / layout.SPLIT_CSV).exclude_reason.dropna())
    assert set(_split(mirror).exclude_reason.dropna()) <= real_reasons


def test_deterministic_per_seed(tmp_path: Path) -> None:
    spec = MirrorSpec(scenes=2, cameras=1, frames=2, height=16, width=24, seed=3)
    a = write_synthetic_mirror(tmp_path / "a", spec)
    b = write_synthetic_mirror(tmp_path / "b", spec, workers=2)
    c = write_synthetic_mirror(tmp_path / "c", MirrorSpec(scenes=2, cameras=1, frames=2, height=16, width=24, seed=4))
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    for rel in files:
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel
    assert a.edge_cases == b.edge_cases
    assert (a.root / layout.SPLIT_CSV).read_bytes() != (c.root / layout.SPLIT_CSV).read_bytes() or a.scenes != c.scenes
    za = (a.root / "scenes" / f"{a.scenes[0]}.zip").read_bytes()
    zc = (c.root / "scenes" / f"{c.scenes[0]}.zip").read_bytes()
    assert za != zc


def test_small_specs_skip_edge_cases_that_do_not_fit(tmp_path: Path) -> None:
    s = write_synthetic_mirror(tmp_path, MirrorSpec(scenes=1, cameras=1, frames=1, height=8, width=8))
    assert (
        s.frames_included == 1 and s.edge_cases["missing_frame"] is None and s.edge_cases["excluded_trajectory"] is None
    )
    with zipfile.ZipFile(s.root / "scenes" / f"{s.scenes[0]}.zip") as zf:
        assert layout.frame_member(s.scenes[0], "cam_00", 0, "geometry", "depth_meters") in zf.namelist()
    with pytest.raises(ValueError, match="frames"):
        MirrorSpec(frames=0)


def test_full_size_frame_matches_the_real_file_format(tmp_path: Path) -> None:
    s = write_synthetic_mirror(tmp_path, MirrorSpec(scenes=1, cameras=1, frames=1, height=768, width=1024, seed=1))
    with zipfile.ZipFile(s.root / "scenes" / f"{s.scenes[0]}.zip") as zf:
        data = zf.read(layout.frame_member(s.scenes[0], "cam_00", 0, "geometry", "depth_meters"))
    with h5py.File(io.BytesIO(data), "r") as f:
        ds = f["dataset"]
        ours = (ds.dtype, ds.shape, ds.chunks, ds.compression, ds.compression_opts, ds.shuffle, ds.fletcher32)
        depth = ds[()].astype(np.float32)
    assert ours[:3] == (np.dtype(np.float16), (768, 1024), (96, 128))
    real = REFERENCE / "ai_037_002" / "images" / "scene_cam_00_geometry_hdf5" / "frame.0000.depth_meters.hdf5"
    if real.is_file():
        with h5py.File(real, "r") as f:
            ds = f["dataset"]
            assert ours == (
                ds.dtype,
                ds.shape,
                ds.chunks,
                ds.compression,
                ds.compression_opts,
                ds.shuffle,
                ds.fletcher32,
            )
    assert 0.3 < np.nanmin(depth) and np.nanmax(depth) < 15.0  # a room, in metres


def test_a_failed_scene_leaves_no_half_zip(tmp_path: Path) -> None:
    target = tmp_path / "ai_001_001.zip"
    with pytest.raises(RuntimeError, match="render failed"), SceneZip(target) as zf:
        zf.add("ai_001_001/_detail/metadata_scene.csv", b"parameter_name,parameter_value\n", True)
        raise RuntimeError("render failed")
    assert list(tmp_path.iterdir()) == []
    with SceneZip(target) as zf:
        zf.add("ai_001_001/_detail/metadata_scene.csv", b"x\n", True)
    with zipfile.ZipFile(target) as z:
        assert z.namelist() == ["ai_001_001/", "ai_001_001/_detail/", "ai_001_001/_detail/metadata_scene.csv"]
        assert z.testzip() is None
    assert [p.name for p in tmp_path.iterdir()] == ["ai_001_001.zip"]
