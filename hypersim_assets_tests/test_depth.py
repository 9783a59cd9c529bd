"""Depth encodings: millimetre rules of both variants, NaN handling, a real upstream frame."""

from __future__ import annotations

import h5py
import numpy as np

from hypersim_assets.convert import depth as D
from hypersim_assets.convert import reprojection as R
from hypersim_assets_tests.conftest import require_shared


def test_z_to_mm_truncates_and_drops_values_above_65535():
    z = np.array([[0.0, 1.2345, 65.535, 65.5355, 70.0]])
    assert D.depth_mm_from_z(z).tolist() == [[0, 1234, 65535, 0, 0]]


def test_nan_distances_become_zero_and_are_counted():
    d = np.array([[1.0, np.nan], [np.nan, 2.5]], np.float16)
    out, n = D.distance_without_nan(d)
    assert n == 2 and out.dtype == np.float16 and out.tolist() == [[1.0, 0.0], [0.0, 2.5]]
    assert np.isnan(d).sum() == 2  # input untouched
    inf = np.array([np.inf, 1.0], np.float16)
    assert D.distance_without_nan(inf)[0].tolist() == [65504.0, 1.0]  # as np.nan_to_num


def test_legacy_depth_matches_an_independent_formula():
    h, w = 6, 8
    rng = np.random.default_rng(0)
    d = rng.uniform(0.5, 80, (h, w)).astype(np.float16)
    d[0, 0] = np.nan
    expected = np.zeros((h, w), np.uint16)
    for r in range(h):
        for c in range(w):
            x, y = c - w / 2 + 0.5, r - h / 2 + 0.5
            dist = 0.0 if np.isnan(d[r, c]) else float(d[r, c])
            mm = dist / np.sqrt(x * x + y * y + 886.81**2) * 886.81 * 1000
            expected[r, c] = 0 if mm >= 65536 else int(mm)
    got = D.legacy_depth_mm(d)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # float32 vs float64 rounding
    assert got[0, 0] == 0 and (got[d.astype(np.float32) > 66] == 0).all()


def test_real_frame_depth_ai_037_002():
    path = require_shared("ai_037_002/images/scene_cam_00_geometry_hdf5/frame.0000.depth_meters.hdf5")
    with h5py.File(path) as f:
        distance = f["dataset"][()]
    rows = {
        "M_cam_from_uv_00": 0.579607251426182,
        "M_cam_from_uv_01": 0.0,
        "M_cam_from_uv_02": -0.06955286861651404,
        "M_cam_from_uv_10": 0.0,
        "M_cam_from_uv_11": 0.4346865334657201,
        "M_cam_from_uv_12": 0.09273312506660672,
        "M_cam_from_uv_20": -0.0,
        "M_cam_from_uv_21": 0.004054126980668954,
        "M_cam_from_uv_22": -1.003909173803896,
    }
    h, w = distance.shape
    clean, nan_count = D.distance_without_nan(distance)
    M = R.m_cam_from_uv(rows)
    rays = R.flipped_ray_columns(R.unit_rays(M, h, w))
    points = R.camera_points(rays, clean)
    depth = D.depth_mm_from_z(points[2].reshape(h, w))
    # The blocked path the conversion takes gives the same depth and pixel map, bit for bit.
    rep, blocked_depth = R.pinhole_reprojection(rays, clean, R.pinhole_intrinsics(M), D.depth_mm_from_z)
    assert np.array_equal(blocked_depth, depth)
    assert np.array_equal(rep.gather, R.reprojection(points, R.pinhole_intrinsics(M), h, w).gather)
    assert depth.shape == (768, 1024) and depth.dtype == np.uint16
    # z never exceeds the distance along the ray, and is close to it near the image centre.
    valid = (clean > 0) & (clean.astype(np.float64) * 1000 < 65535)
    assert (depth[valid] <= np.ceil(clean[valid].astype(np.float64) * 1000)).all()
    centre = float(clean[384, 512]) * 1000
    assert abs(int(depth[384, 512]) - centre) < 0.01 * centre
    assert nan_count == int(np.isnan(distance).sum())
    assert (depth[np.isnan(distance)] == 0).all()
