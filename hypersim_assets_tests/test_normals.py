"""Normal encoding: (n + 1) * 127 truncated, NaN -> 0, float16 table equals the float32 rule."""

from __future__ import annotations

import numpy as np

from hypersim_assets.convert.normals import encode_normals, nan_normal_pixels


def test_encoding_and_nan():
    n = np.array([[[0.0, 1.0, -1.0], [np.nan, 0.5, -0.25]]], np.float16)
    out = encode_normals(n)
    assert out.dtype == np.uint8
    assert out.tolist() == [[[127, 254, 0], [0, int(1.5 * 127), int(0.75 * 127)]]]
    assert nan_normal_pixels(n) == 1


def test_table_equals_direct_path_for_every_float16_value():
    values = np.arange(65536, dtype=np.uint16).view(np.float16)
    grid = np.stack([values, values, values], axis=-1).reshape(256, 256, 3)
    direct = encode_normals(grid.astype(np.float32))
    assert np.array_equal(encode_normals(grid), direct)
