"""Semantic and instance labels in the reference's encodings.

Semantic: upstream NYU40 ids (int16, -1 = void) to uint8 with void 0.
Instance: a 3-channel uint8 image whose PNG channels are R = semantic class (void 0),
G = instance id >> 8, B = instance id & 0xFF, with upstream's -1 (no instance) as id 0.
(The reference builds these channels in this order and swaps to BGR only so that OpenCV
swaps back when writing: the file holds them as R, G, B.)
"""

from __future__ import annotations

import numpy as np


class LabelError(ValueError):
    """Labels the reference would reject (a 0 where upstream never has one)."""


def semantic_labels(semantic: np.ndarray) -> np.ndarray:
    """(H, W) upstream NYU40 ids to uint8, -1 -> 0; raises LabelError if 0 occurs in the input.

    Other values keep their low byte, as the reference's cast (via int32) to uint8 does.
    """
    if np.any(semantic == 0):
        raise LabelError("semantic image holds 0, which upstream never uses")
    if semantic.dtype.kind in "iu" and semantic.dtype.itemsize <= 4:
        # An integer's cast to uint8 keeps its low byte whatever its width: no int32 copy.
        out = semantic.astype(np.uint8)
        out[semantic == -1] = 0
        return out
    s = semantic.astype(np.int32)
    s[s == -1] = 0
    return s.astype(np.uint8)


def instance_ids(semantic_instance: np.ndarray) -> np.ndarray:
    """(H, W) upstream instance ids to uint16, -1 -> 0; raises LabelError if 0 occurs in the input."""
    if np.any(semantic_instance == 0):
        raise LabelError("semantic_instance image holds 0, which upstream never uses")
    ids = semantic_instance.astype(np.uint16)  # a copy; -1 becomes 65535 here, then 0
    ids[semantic_instance == -1] = 0
    return ids


def instance_image(semantic_u8: np.ndarray, ids_u16: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: semantic class, instance id high byte, instance id low byte."""
    out = np.empty((*ids_u16.shape, 3), dtype=np.uint8)
    out[:, :, 0] = semantic_u8
    # The id's two bytes straight from its little-endian bytes: no shifted or narrowed copies.
    id_bytes = np.ascontiguousarray(ids_u16, dtype="<u2").view(np.uint8).reshape(*ids_u16.shape, 2)
    out[:, :, 1] = id_bytes[:, :, 1]
    out[:, :, 2] = id_bytes[:, :, 0]
    return out


def instance_ids_of_image(instance_rgb: np.ndarray) -> np.ndarray:
    """The uint16 instance ids back from an instance image (G << 8 | B)."""
    return (instance_rgb[:, :, 1].astype(np.uint16) << 8) + instance_rgb[:, :, 2].astype(np.uint16)


def values_present(image: np.ndarray) -> np.ndarray:
    """The distinct values of a uint8 or uint16 image, ascending, as int64: ``np.unique``'s values in
    one counting pass instead of a sort."""
    return np.flatnonzero(np.bincount(image.ravel(), minlength=1))
