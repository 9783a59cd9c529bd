"""Depth images in the reference's encoding: uint16 millimetres, 0 = invalid.

Tilt-shift variant: z of the camera-space point (metres) times 1000, values above 65535
become 0, the rest truncate toward zero. No-tilt-shift (older) variant: the distance along
the ray (NaN -> 0) corrected to planar depth with a fixed focal length of 886.81 px, in
float32, values of 65536 or more become 0. Upstream distances are NaN where there is no
geometry; ``distance_without_nan`` makes them 0 as the reference does.
"""

from __future__ import annotations

import numpy as np

from hypersim_assets.convert.float16_tables import FLOAT16_INF_MAGNITUDE, float16_magnitude


def float16_nan_mask(values: np.ndarray) -> np.ndarray:
    """NaN mask of a float16 array from its bit patterns (cheaper than ``np.isnan`` on float16)."""
    return float16_magnitude(values) > FLOAT16_INF_MAGNITUDE


def distance_without_nan(distance_m: np.ndarray) -> tuple[np.ndarray, int]:
    """``distance_m`` with NaN replaced by 0 (dtype kept), and how many pixels were NaN.

    As the reference's ``np.nan_to_num``, infinities become the dtype's largest finite values.
    """
    if distance_m.dtype == np.float16:
        magnitude = float16_magnitude(distance_m)
        nan = magnitude > FLOAT16_INF_MAGNITUDE
        finite = not (magnitude == FLOAT16_INF_MAGNITUDE).any()  # no infinity (NaN handled apart)
    else:
        nan = np.isnan(distance_m)
        finite = not np.isinf(distance_m).any()
    count = int(np.count_nonzero(nan))
    if finite:
        if count == 0:
            return distance_m, 0
        out = distance_m.copy()
        out[nan] = 0
        return out, count
    return np.nan_to_num(distance_m, nan=0.0), count


def depth_mm_from_z(z_m: np.ndarray) -> np.ndarray:
    """z in metres to uint16 millimetres: values above 65535 mm become 0 (invalid), fractions truncate."""
    depth = z_m * 1000
    depth[depth > np.iinfo(np.uint16).max] = 0
    return depth.astype(np.uint16)


def legacy_depth_mm(distance_m: np.ndarray, focal_px: float = 886.81) -> np.ndarray:
    """The no-tilt-shift variant's depth: distance (NaN -> 0) to planar depth with a fixed focal length, in mm.

    float32 throughout; values of 65536 mm or more become 0.
    """
    d = np.nan_to_num(distance_m.astype(np.float32), nan=0.0)
    h, w = d.shape
    d = d / _legacy_plane_norm(h, w, focal_px) * focal_px
    d = d * 1000
    d[d >= 2**16] = 0
    return d.astype(np.uint16)


_PLANE_NORMS: dict[tuple[int, int, float], np.ndarray] = {}


def _legacy_plane_norm(h: int, w: int, focal_px: float) -> np.ndarray:
    key = (h, w, focal_px)
    if key not in _PLANE_NORMS:
        x = np.linspace(-0.5 * w + 0.5, 0.5 * w - 0.5, w).reshape(1, w).repeat(h, 0).astype(np.float32)[:, :, None]
        y = np.linspace(-0.5 * h + 0.5, 0.5 * h - 0.5, h).reshape(h, 1).repeat(w, 1).astype(np.float32)[:, :, None]
        z = np.full((h, w, 1), focal_px, np.float32)
        _PLANE_NORMS[key] = np.linalg.norm(np.concatenate([x, y, z], 2), 2, 2)
    return _PLANE_NORMS[key]
