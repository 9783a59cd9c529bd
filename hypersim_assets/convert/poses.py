"""Camera extrinsics, 3D boxes and box orientations as the reference writes them, with the
rotation math done in numpy (no scipy).

Conventions:
- Upstream camera orientations map camera to world with the camera looking along -z and
  y up; the reference turns them by 180 degrees about the camera x axis (z forward,
  y down) before converting to a quaternion.
- Quaternions are (x, y, z, w), normalised, and *not* made canonical (w may be < 0): the
  matrix-to-quaternion conversion is the classic largest-diagonal/trace choice without any
  orthogonalisation (what scipy did before 1.15.2 and does with ``assume_valid=True``), so
  an invalid rotation matrix (upstream issue 103) converts exactly as in the reference.
- Positions and box extents/positions are asset units times ``meters_per_asset_unit``.
- A box's orientation is the yaw (z component of the rotation vector) of the box minus
  the camera's yaw, minus 180 degrees, wrapped to [0, 360) degrees and given in radians.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

EXTRINSICS_KEYS: tuple[str, ...] = ("x", "y", "z", "quat_x", "quat_y", "quat_z", "quat_w")
BOX_KEYS: tuple[str, ...] = ("extents", "orientations", "positions")


def _x_axis_half_turn() -> np.ndarray:
    # The matrix of the unit quaternion (sin 90deg, 0, 0, cos 90deg) with cos computed in
    # floating point (6.1e-17, not 0), as the reference obtains it from Euler angles.
    w = math.cos(math.radians(180.0) / 2)
    return np.array([[1.0 + w * w, 0.0, 0.0], [0.0, -1.0 + w * w, -2.0 * w], [0.0, 2.0 * w, -1.0 + w * w]])


CAMERA_FLIP = _x_axis_half_turn()


def is_valid_rotation(matrix: np.ndarray) -> bool:
    """The reference's test: R R^T close to I (atol 1e-5) and det(R) close to 1 (atol 1e-6)."""
    m = np.asarray(matrix, dtype=np.float64)
    orthogonal = np.allclose(m @ m.T, np.eye(3), atol=1e-5)
    det_one = np.isclose(np.linalg.det(m), 1.0, atol=1e-6)
    return bool(orthogonal and det_one)


def quaternion_from_matrix(matrix: np.ndarray) -> np.ndarray:
    """(x, y, z, w) of a 3x3 matrix, normalised, without orthogonalising the matrix first.

    Picks the largest of the three diagonal entries and the trace (first on ties; NaN
    counts as largest) to build an unnormalised quaternion, then divides by its norm.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (3, 3):
        raise ValueError(f"expected a 3x3 matrix, got shape {m.shape}")
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    choice = int(np.argmax([m[0, 0], m[1, 1], m[2, 2], trace]))
    q = np.empty(4)
    if choice != 3:
        i = choice
        j = (i + 1) % 3
        k = (j + 1) % 3
        q[i] = 1 - trace + 2 * m[i, i]
        q[j] = m[j, i] + m[i, j]
        q[k] = m[k, i] + m[i, k]
        q[3] = m[k, j] - m[j, k]
    else:
        q[0] = m[2, 1] - m[1, 2]
        q[1] = m[0, 2] - m[2, 0]
        q[2] = m[1, 0] - m[0, 1]
        q[3] = 1 + trace
    return q / np.linalg.norm(q)


def rotvec_from_quaternion(quat: Iterable[float]) -> np.ndarray:
    """Rotation vector (axis times angle in radians, angle in [0, pi]) of an (x, y, z, w) quaternion.

    The quaternion is normalised first; near zero angle a series replaces angle / sin(angle / 2).
    """
    q = np.asarray(list(quat), dtype=np.float64)
    q = q / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    angle = 2 * math.atan2(math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]), q[3])
    if angle <= 1e-3:
        a2 = angle * angle
        scale = 2 + a2 / 12 + 7 * a2 * a2 / 2880
    else:
        scale = angle / math.sin(angle / 2)
    return scale * q[:3]


def extrinsics(position_asset: np.ndarray, orientation: np.ndarray, meters_per_asset_unit: float) -> dict[str, float]:
    """The reference's extrinsics dict: position in metres and the quaternion of ``orientation @ CAMERA_FLIP``."""
    position = np.asarray(position_asset, dtype=np.float64) * meters_per_asset_unit
    quat = quaternion_from_matrix(np.dot(np.asarray(orientation, dtype=np.float64), CAMERA_FLIP))
    values = [float(v) for v in position[:3]] + [float(v) for v in quat]
    return dict(zip(EXTRINSICS_KEYS, values))


def boxes_3d(
    instance_ids: Iterable[int],
    extents: np.ndarray,
    orientations: np.ndarray,
    positions: np.ndarray,
    meters_per_asset_unit: float,
) -> dict[int, dict[str, list]]:
    """The boxes of the given non-void instance ids, ascending, as the reference writes them.

    The box files' rows are indexed by instance id; values pass through float32 as in the
    reference, then extents and positions are scaled to metres (in float64).
    Raises IndexError for an id the box files have no row for.
    """
    ext = np.asarray(extents).astype(np.float32).astype(np.float64)
    ori = np.asarray(orientations).astype(np.float32).astype(np.float64)
    pos = np.asarray(positions).astype(np.float32).astype(np.float64)
    out: dict[int, dict[str, list]] = {}
    for i in sorted(int(i) for i in instance_ids):
        if i == 0:
            continue
        if i >= len(ext) or i >= len(ori) or i >= len(pos):
            raise IndexError(f"instance id {i} has no row in the bounding box files ({len(ext)} rows)")
        out[i] = {
            "extents": (ext[i] * meters_per_asset_unit).tolist(),
            "orientations": ori[i].tolist(),
            "positions": (pos[i] * meters_per_asset_unit).tolist(),
        }
    return out


def box_orientations(boxes: dict[int, dict[str, list]], camera_quat_xyzw: Iterable[float]) -> dict[int, float]:
    """Per box, its yaw relative to the camera in radians, in [0, 2 pi) (NaN for boxes without geometry)."""
    camera_yaw_deg = np.rad2deg(rotvec_from_quaternion(camera_quat_xyzw)[2])
    out: dict[int, float] = {}
    for key, box in boxes.items():
        box_yaw_deg = np.rad2deg(rotvec_from_quaternion(quaternion_from_matrix(np.asarray(box["orientations"])))[2])
        out[key] = float(np.deg2rad(((box_yaw_deg - camera_yaw_deg) - 180) % 360))
    return out
