"""Float16 table look-ups: the blocked look-up equals plain indexing by the bit patterns."""

from __future__ import annotations

import numpy as np

from hypersim_assets.convert.float16_tables import FLOAT16_AS_FLOAT32, lookup


def test_table_holds_every_float16_value():
    values = np.array([0.0, -0.0, 1.5, -65504.0, np.inf, 6e-8], np.float16)
    assert np.array_equal(FLOAT16_AS_FLOAT32[values.view(np.uint16)], values.astype(np.float32))


def test_lookup_equals_indexing_across_blocks_shapes_and_strides():
    rng = np.random.default_rng(3)
    table = rng.integers(0, 256, 65536).astype(np.uint8)
    image = rng.integers(0, 65536, (300, 40, 3)).astype(np.uint16).view(np.float16)  # taller than one block
    for values in (image, image[:, :, 1], image[::2, ::3], image[0, 0, 0]):
        got = lookup(table, values)
        expected = table[np.asarray(values).view(np.uint16)]
        assert got.shape == np.shape(values) and got.dtype == np.uint8
        assert np.array_equal(got, expected)
