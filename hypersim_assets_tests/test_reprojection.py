"""Tilt-shift reprojection: the bincount method keeps exactly the points np.unique keeps,
and a whole reprojection equals a straightforward per-point implementation."""

from __future__ import annotations

import numpy as np
import pytest

from hypersim_assets.convert import depth as D
from hypersim_assets.convert import reprojection as R
from hypersim_assets_tests.frame_scene import PLAIN_M, TILT_SHIFT_M, camera_params


def _unique_reference(uv: np.ndarray) -> np.ndarray:
    """The reference's way: np.unique over rows, keep count == 1, return their first indices (sorted)."""
    _, idx, counts = np.unique(uv, axis=0, return_index=True, return_counts=True)
    return np.sort(idx[counts == 1])


@pytest.mark.parametrize("seed", range(5))
def test_unique_hits_equals_np_unique_on_colliding_points(seed):
    rng = np.random.default_rng(seed)
    h, w = 13, 17
    n = int(rng.integers(50, 400))
    uv = np.stack([rng.integers(0, w, n), rng.integers(0, h, n)], axis=1).astype(np.int16)
    assert np.array_equal(R.unique_hits(uv, h, w), _unique_reference(uv))


def _straightforward(points_xyz: np.ndarray, images: list[np.ndarray], intr: dict, h: int, w: int) -> list[np.ndarray]:
    """Per point: project, truncate, clip; a pixel hit by more than one point stays 0."""
    hits: dict[tuple[int, int], list[int]] = {}
    for i, (x, y, z) in enumerate(points_xyz):
        if z == 0:
            continue
        u = int(np.int16(((x / z) * intr["fx"] + intr["cx"]) * (w - 0.5)))
        v = int(np.int16(((y / z) * intr["fy"] + intr["cy"]) * (h - 0.5)))
        hits.setdefault((min(max(v, 0), h - 1), min(max(u, 0), w - 1)), []).append(i)
    outs = []
    for img in images:
        flat = img.reshape(h * w, -1)
        out = np.zeros_like(flat)
        for (v, u), idx in hits.items():
            if len(idx) == 1:
                out[v * w + u] = flat[idx[0]]
        outs.append(out.reshape(img.shape))
    return outs


def test_tilt_shift_reprojection_matches_a_per_point_implementation():
    h, w = 24, 32
    cp = camera_params(h, w, tilt_shift=True)
    M = R.m_cam_from_uv(cp)
    rng = np.random.default_rng(7)
    distance = rng.uniform(1.0, 9.0, (h, w)).astype(np.float16)
    distance[0, :5] = 0  # no geometry
    # Independent rays: pixel centres in [-1, 1], v up, M @ [u, v, 1], unit length, flip y and z.
    pts = np.empty((h * w, 3))
    for r in range(h):
        for c in range(w):
            u = -1 + (2 * c + 1) / w
            v = 1 - (2 * r + 1) / h
            ray = M @ np.array([u, v, 1.0])
            ray = ray / np.sqrt(ray @ ray)
            pts[r * w + c] = ray * float(distance[r, c]) * np.array([1, -1, -1])
    ours = R.camera_points(R.flipped_ray_columns(R.unit_rays(M, h, w)), distance)
    np.testing.assert_allclose(ours.T, pts, rtol=1e-12, atol=1e-12)
    intr = R.pinhole_intrinsics(M)
    rgb = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    depth = rng.integers(1, 60000, (h, w)).astype(np.uint16)
    rep = R.reprojection(ours, intr, h, w)
    expected = _straightforward(ours.T, [rgb, depth], intr, h, w)
    assert np.array_equal(rep.apply(rgb), expected[0])
    assert np.array_equal(rep.apply(depth), expected[1])
    # Tilt-shift moves content: some target pixels are empty, most are filled.
    filled = np.count_nonzero(rep.apply(depth))
    assert 0.5 * h * w < filled < h * w


def test_intrinsics_from_a_real_tilt_shift_row_and_the_legacy_camera():
    M = np.array(TILT_SHIFT_M).reshape(3, 3)
    intr = R.pinhole_intrinsics(M)
    assert intr["fx"] == pytest.approx(1 / (2 * 0.579607251426182))
    assert intr["fy"] == pytest.approx(1 / (2 * 0.4346865334657201))
    assert intr["cx"] == pytest.approx(0.5 + 0.5 * 0.06955286861651404 / 0.579607251426182)
    assert intr["cy"] == pytest.approx(0.5 + 0.5 * 0.09273312506660672 / 0.4346865334657201)
    assert (intr["a"], intr["b"]) == (0.001, -1)
    plain = R.pinhole_intrinsics(np.array(PLAIN_M).reshape(3, 3))
    assert (plain["cx"], plain["cy"]) == (0.5, 0.5)
    legacy = R.legacy_intrinsics()
    f = 1024 / np.tan(np.pi / 6) / 2
    assert legacy["fx"] == pytest.approx(f / 1024)
    assert legacy["fy"] == pytest.approx((768 / np.tan(np.pi / 6 * 0.75) / 2) / 768)
    assert R.rgb_intrinsics(legacy) == {"fx": legacy["fx"], "fy": legacy["fy"], "cx": 0.5, "cy": 0.5}


@pytest.mark.parametrize("block_pixels", [100, 768, 32768])
def test_blocked_pinhole_reprojection_equals_the_whole_array_steps(block_pixels):
    """The blocked path gives the very bits of camera_points + depth_mm_from_z + reprojection,
    also for distances the reference maps oddly (0, negative, too far, float16's largest)."""
    h, w = 24, 32
    M = R.m_cam_from_uv(camera_params(h, w, tilt_shift=True))
    intr = R.pinhole_intrinsics(M)
    rng = np.random.default_rng(11)
    distance = rng.uniform(0.5, 80.0, (h, w)).astype(np.float16)
    distance.flat[rng.integers(0, h * w, 40)] = 0
    distance.flat[rng.integers(0, h * w, 20)] = -2.5
    distance.flat[rng.integers(0, h * w, 5)] = 65504
    rays = R.flipped_ray_columns(R.unit_rays(M, h, w))
    points = R.camera_points(rays, distance)
    expected_depth = D.depth_mm_from_z(points[2].reshape(h, w))
    expected = R.reprojection(points, intr, h, w)
    rep, depth = R.pinhole_reprojection(rays, distance, intr, D.depth_mm_from_z, block_pixels=block_pixels)
    assert depth.dtype == np.uint16 and np.array_equal(depth, expected_depth)
    assert np.array_equal(rep.gather, expected.gather)
    assert 0 < np.count_nonzero(rep.gather == h * w) < h * w  # some target pixels stay empty


def test_apply_gives_the_same_images_in_any_order_of_sizes_and_dtypes():
    """apply reuses one padded buffer across calls: growing, shrinking and changing dtype."""
    h, w = 12, 16
    M = R.m_cam_from_uv(camera_params(h, w, tilt_shift=True))
    rng = np.random.default_rng(13)
    distance = rng.uniform(1.0, 9.0, (h, w)).astype(np.float16)
    images = [
        rng.integers(1, 255, (h, w), dtype=np.uint8),
        rng.integers(1, 255, (h, w, 3), dtype=np.uint8),
        rng.integers(1, 65535, (h, w), dtype=np.uint16),
        rng.integers(1, 255, (h, w), dtype=np.uint8),
    ]
    rep, _ = R.pinhole_reprojection(
        R.flipped_ray_columns(R.unit_rays(M, h, w)), distance, R.pinhole_intrinsics(M), np.copy
    )
    once = [R.Reprojection(rep.gather, h, w).apply(img) for img in images]  # each on a fresh instance
    assert all(np.array_equal(rep.apply(img), o) and rep.apply(img).dtype == img.dtype for img, o in zip(images, once))
    holes = rep.gather == h * w
    assert holes.any() and all((o.reshape(h * w, -1)[holes] == 0).all() for o in once)
