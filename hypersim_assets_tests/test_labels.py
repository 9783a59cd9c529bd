"""Semantic and instance encodings, including instance ids above 255."""

from __future__ import annotations

import numpy as np
import pytest

from hypersim_assets.convert.labels import (
    LabelError,
    instance_ids,
    instance_ids_of_image,
    instance_image,
    semantic_labels,
)


def test_semantic_void_becomes_zero_uint8():
    s = semantic_labels(np.array([[-1, 1, 40]], np.int16))
    assert s.dtype == np.uint8 and s.tolist() == [[0, 1, 40]]
    with pytest.raises(LabelError):
        semantic_labels(np.array([[0, 1]], np.int16))


def test_instance_bytes_above_255():
    sem = semantic_labels(np.array([[5, 2, -1, 7]], np.int16))
    ids = instance_ids(np.array([[300, 4166, -1, 255]], np.int16))
    img = instance_image(sem, ids)
    # R = semantic, G = id >> 8, B = id & 255 (300 = 1 * 256 + 44; 4166 = 16 * 256 + 70)
    assert img.tolist() == [[[5, 1, 44], [2, 16, 70], [0, 0, 0], [7, 0, 255]]]
    assert instance_ids_of_image(img).tolist() == [[300, 4166, 0, 255]]
    with pytest.raises(LabelError):
        instance_ids(np.array([[0]], np.int16))


def test_label_casts_equal_the_plain_int32_formulas_for_any_int16():
    """Every int16 but 0: semantic keeps the low byte (-1 -> 0), ids wrap to uint16 (-1 -> 0);
    the instance image's bytes are id >> 8 and id & 255, also from a strided ids view."""
    values = np.arange(-32768, 32768, dtype=np.int32)
    values = values[values != 0].astype(np.int16).reshape(-1, 255)
    s32 = values.astype(np.int32)
    s32[s32 == -1] = 0
    assert np.array_equal(semantic_labels(values), s32.astype(np.uint8))
    assert np.array_equal(instance_ids(values), s32.astype(np.uint16))
    ids = instance_ids(values)[:, ::2]
    sem = semantic_labels(values)[:, ::2]
    img = instance_image(sem, ids)
    assert np.array_equal(img[:, :, 0], sem)
    assert np.array_equal(img[:, :, 1], (ids >> 8).astype(np.uint8))
    assert np.array_equal(img[:, :, 2], (ids & 255).astype(np.uint8))
