"""Per-pixel functions of float16 images as 65536-entry tables indexed by the bit patterns:
every possible value computed once through the exact formula, then a look-up per pixel."""

from __future__ import annotations

import numpy as np

# Every float16 bit pattern's value as float32 (exact: float32 holds every float16).
FLOAT16_AS_FLOAT32 = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)

# A float16's bits without the sign: +-inf is exactly this, NaN anything above it.
FLOAT16_INF_MAGNITUDE = 0x7C00


def float16_magnitude(values_f16: np.ndarray) -> np.ndarray:
    """The uint16 bit patterns of a float16 array with the sign bit cleared (a new array): compare
    with :data:`FLOAT16_INF_MAGNITUDE` for inf (equal) and NaN (greater), cheaper than
    ``np.isnan``/``np.isinf`` on float16."""
    return np.ascontiguousarray(values_f16).view(np.uint16) & 0x7FFF


_ROWS_PER_BLOCK = 128  # 128 rows of a 1024-wide RGB image: the look-up's index temporary stays in cache


def lookup(table: np.ndarray, values_f16: np.ndarray) -> np.ndarray:
    """``table[bits]`` for every element of the float16 array ``values_f16`` (its uint16 bit
    patterns index ``table``), in ``table``'s dtype and ``values_f16``'s shape.

    Done in blocks of rows: numpy widens the indices to intp first, and a whole frame's worth
    (19 MB for a 768x1024 RGB image) costs more in fresh pages than the look-up itself.
    """
    bits = np.asarray(values_f16).view(np.uint16)  # any strides: same item size
    if bits.ndim == 0:
        return table[bits]
    out = np.empty(bits.shape, dtype=table.dtype)
    for r in range(0, bits.shape[0], _ROWS_PER_BLOCK):
        out[r : r + _ROWS_PER_BLOCK] = np.take(table, bits[r : r + _ROWS_PER_BLOCK])
    return out
