"""Extrinsics quaternion, invalid rotations, rotation vectors, boxes in metres, orientations."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from hypersim_assets.convert import poses

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "hypersim-reference"
FLIP = np.diag([1.0, -1.0, -1.0])


def _matrix(q):
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@pytest.mark.parametrize("seed", range(6))
def test_extrinsics_quaternion_of_valid_rotations(seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    orientation = _matrix(q) @ FLIP  # upstream camera-to-world, y up / z backwards
    e = poses.extrinsics(np.array([100.0, -20.0, 3.0]), orientation, 0.0254)
    got = np.array([e["quat_x"], e["quat_y"], e["quat_z"], e["quat_w"]])
    assert min(np.abs(got - q).max(), np.abs(got + q).max()) < 1e-12
    assert (e["x"], e["y"], e["z"]) == pytest.approx((2.54, -0.508, 0.0762), abs=1e-12)
    assert poses.is_valid_rotation(orientation)


def test_branch_choice_and_invalid_matrices_convert_without_orthogonalising():
    # Trace largest: (m21 - m12, m02 - m20, m10 - m01, 1 + trace) normalised; w stays positive.
    assert poses.quaternion_from_matrix(2 * np.eye(3)).tolist() == [0.0, 0.0, 0.0, 1.0]
    m = np.array([[0.9, -0.3, 0.0], [0.3, 0.9, 0.0], [0.0, 0.0, 1.0]])
    expected = np.array([0.0, 0.0, 0.6, 1 + 2.8])
    np.testing.assert_allclose(poses.quaternion_from_matrix(m), expected / np.linalg.norm(expected), rtol=0, atol=1e-15)
    # First diagonal entry largest: (1 - trace + 2 m00, m10 + m01, m20 + m02, m21 - m12).
    m = np.array([[3.0, 0.5, 0.1], [0.2, -1.0, 0.0], [0.3, 0.0, -1.0]])
    expected = np.array([1 - 1.0 + 6.0, 0.7, 0.4, 0.0])
    np.testing.assert_allclose(poses.quaternion_from_matrix(m), expected / np.linalg.norm(expected), atol=1e-15)
    scaled = 98.78 * (_matrix([0.1, 0.2, 0.3, math.sqrt(0.86)]) @ FLIP)  # like ai_008_003 cam_01 frame 0
    assert not poses.is_valid_rotation(scaled)
    assert not poses.is_valid_rotation(1.02 * np.eye(3))
    assert np.isfinite(list(poses.extrinsics(np.zeros(3), scaled, 1.0).values())).all()


def test_rotvec_matches_axis_angle():
    for theta in (0.0, 1e-4, 0.5, -2.0, 3.0):
        q = [0.0, 0.0, math.sin(theta / 2), math.cos(theta / 2)]
        assert poses.rotvec_from_quaternion(q)[2] == pytest.approx(theta, abs=1e-12)
        assert poses.rotvec_from_quaternion([-v for v in q])[2] == pytest.approx(theta, abs=1e-12)
    axis = np.array([1.0, 2.0, 2.0]) / 3
    q = [*(axis * math.sin(0.35)), math.cos(0.35)]
    np.testing.assert_allclose(poses.rotvec_from_quaternion(q), axis * 0.7, atol=1e-12)


def test_boxes_in_metres_and_orientations():
    n = 301
    ext = np.arange(n * 3, dtype=np.float64).reshape(n, 3) + 0.1
    pos = -ext
    ori = np.tile(np.eye(3), (n, 1, 1))
    a = 0.4
    ori[300] = [[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]]
    ori[7] = np.nan
    boxes = poses.boxes_3d([0, 300, 7], ext, ori, pos, 0.5)
    assert list(boxes) == [7, 300]
    assert list(boxes[300]) == ["extents", "orientations", "positions"]
    assert boxes[300]["extents"] == [float(np.float32(v)) * 0.5 for v in ext[300]]
    assert boxes[300]["positions"] == [float(np.float32(v)) * 0.5 for v in pos[300]]
    assert boxes[300]["orientations"] == np.float32(ori[300]).astype(float).tolist()
    c = 1.1  # camera yaw
    orient = poses.box_orientations(boxes, [0.0, 0.0, math.sin(c / 2), math.cos(c / 2)])
    expected = math.radians((math.degrees(a) - math.degrees(c) - 180) % 360)
    assert orient[300] == pytest.approx(expected, abs=1e-6)  # box orientation passes through float32
    assert math.isnan(orient[7])
    with pytest.raises(IndexError):
        poses.boxes_3d([n], ext, ori, pos, 1.0)


@pytest.mark.skipif(not (REFERENCE / "ai_037_002").is_dir(), reason="shared hypersim-reference data absent")
def test_real_pose_ai_037_002():
    with h5py.File(REFERENCE / "ai_037_002/_detail/cam_00/camera_keyframe_positions.hdf5") as f:
        position = f["dataset"][0]
    with h5py.File(REFERENCE / "ai_037_002/_detail/cam_00/camera_keyframe_orientations.hdf5") as f:
        orientation = f["dataset"][0]
    mpau = 0.009999999776482582  # settings_units_info_meters_scale of ai_037_002
    e = poses.extrinsics(position, orientation, mpau)
    np.testing.assert_allclose([e["x"], e["y"], e["z"]], position * mpau, rtol=1e-15)
    q = [e["quat_x"], e["quat_y"], e["quat_z"], e["quat_w"]]
    assert math.isclose(np.linalg.norm(q), 1.0, abs_tol=1e-12)
    np.testing.assert_allclose(_matrix(q), orientation @ FLIP, atol=1e-5)
