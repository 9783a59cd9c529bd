"""Surface normals in the reference's encoding: camera-space unit normals (x, y, z as
upstream's ``normal_bump_cam`` stores them) to uint8 ``(n + 1) * 127`` per channel,
clipped to [0, 255] and truncated, computed in float32; NaN counts as -1 and so becomes 0.
The PNG holds x, y, z in its R, G, B channels.
"""

from __future__ import annotations

import numpy as np

from hypersim_assets.convert.float16_tables import FLOAT16_AS_FLOAT32, lookup


def _encode(values_f32: np.ndarray) -> np.ndarray:
    n = np.nan_to_num(values_f32, nan=-1.0)
    with np.errstate(over="ignore", invalid="ignore"):  # infinities clip as in the reference
        return ((n + 1) * 127).clip(0, 255).astype(np.uint8)


_FLOAT16_TABLE: np.ndarray | None = None


def encode_normals(normal: np.ndarray) -> np.ndarray:
    """(H, W, 3) normals (float16 as upstream, or any float) to (H, W, 3) uint8.

    float16 input goes through a 65536-entry table built with the very same float32
    formula, so the result is identical and much cheaper.
    """
    global _FLOAT16_TABLE
    if normal.ndim != 3 or normal.shape[2] != 3:
        raise ValueError(f"normals must be (H, W, 3), got {normal.shape}")
    if normal.dtype == np.float16:
        if _FLOAT16_TABLE is None:
            _FLOAT16_TABLE = _encode(FLOAT16_AS_FLOAT32)
        return lookup(_FLOAT16_TABLE, normal)
    return _encode(normal.astype(np.float32))


def nan_normal_pixels(normal: np.ndarray) -> int:
    """Pixels with at least one NaN component."""
    return int(np.count_nonzero(np.isnan(normal).any(axis=-1)))
