"""Tonemapping of a linear HDR Hypersim colour image to 8-bit RGB, bit-identical to the
reference converter.

The rule (upstream's CGIntrinsics-style tonemapper as the reference applies it):
brightness = 0.3 R + 0.59 G + 0.11 B in float32 over pixels with ``render_entity_id != -1``;
its 90th percentile p (linear interpolation at index 0.9 (n - 1) of the sorted values,
in float64) is scaled to 0.8 after gamma: ``scale = 0.8 ** 2.2 / p`` (float64),
``scale = 0`` if p < 1e-4 and ``scale = 1`` if no pixel is valid. Output:
``uint8(clip((max(float32(scale) * rgb_f32, 0)) ** (1/2.2) computed in float64, 0, 1) * 255)``.
"""

from __future__ import annotations

import numpy as np

from hypersim_assets.convert.float16_tables import FLOAT16_AS_FLOAT32, lookup

GAMMA = 1.0 / 2.2
PERCENTILE = 90
BRIGHTNESS_AT_PERCENTILE = 0.8
EPS = 0.0001


# Every float16 value as float32, and times each brightness weight in float32: a float16
# image's brightness is then three table look-ups, the very products the formula computes.
_WEIGHTS = (np.float32(0.3), np.float32(0.59), np.float32(0.11))
with np.errstate(invalid="ignore"):  # the table holds every NaN pattern, signalling ones too
    _WEIGHTED_FLOAT16 = tuple(w * FLOAT16_AS_FLOAT32 for w in _WEIGHTS)


def brightness(color: np.ndarray) -> np.ndarray:
    """(H, W) float32 ``0.3 R + 0.59 G`` then ``+ 0.11 B``, each product and sum in float32, of a
    float16 or float32 (H, W, 3) image."""
    if color.dtype == np.float16:
        bits = np.ascontiguousarray(color).view(np.uint16)
        out = np.take(_WEIGHTED_FLOAT16[0], bits[:, :, 0])
        out += np.take(_WEIGHTED_FLOAT16[1], bits[:, :, 1])
        out += np.take(_WEIGHTED_FLOAT16[2], bits[:, :, 2])
        return out
    c = color.astype(np.float32, copy=False)
    out = _WEIGHTS[0] * c[:, :, 0] + _WEIGHTS[1] * c[:, :, 1]
    out += _WEIGHTS[2] * c[:, :, 2]
    return out


def brightness_percentile(color: np.ndarray, valid: np.ndarray) -> float | None:
    """The 90th percentile of float32 brightness over ``valid`` pixels of a float16 or float32
    image, or None if none is valid.

    Equals linear interpolation in a fully sorted array (``np.interp`` over the indices): a
    partial sort places the lower order statistic exactly where a full sort would, the next one
    is the smallest of the values after it, and ``np.interp`` over just those two does the same
    arithmetic.
    """
    b = brightness(color)
    values = b.ravel() if valid.all() else b[valid]  # either way an array of our own, sorted in place
    n = values.size
    if n == 0:
        return None
    idx = (PERCENTILE / 100) * (n - 1)
    lo = int(np.floor(idx))
    hi = min(lo + 1, n - 1)
    values.partition(lo)
    if hi == lo:
        return float(np.interp(idx, [float(lo)], values[lo : lo + 1].astype(np.float64)))
    # The next order statistic is the smallest value after ``lo``, NaN counting as largest as
    # in the partition (fmin skips NaN unless all are): one vectorised pass instead of a second
    # selection. Only a zero's sign may differ from a two-index partition's, and any value
    # below EPS gives the same scale.
    upper = np.fmin.reduce(values[lo + 1 :])
    return float(np.interp(idx, [float(lo), float(hi)], np.array([values[lo], upper], dtype=np.float64)))


def tonemap_scale(percentile_value: float | None) -> float:
    """The float64 scale that maps the brightness percentile to 0.8 after gamma (1.0 without valid pixels)."""
    if percentile_value is None:
        return 1.0
    if percentile_value < EPS:
        return 0.0
    return float(np.power(BRIGHTNESS_AT_PERCENTILE, 1.0 / GAMMA) / np.float64(percentile_value))


def _apply_scale(values_f32: np.ndarray, scale: float) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf inputs map as in the reference
        return _apply_scale_unchecked(values_f32, scale)


def _apply_scale_unchecked(values_f32: np.ndarray, scale: float) -> np.ndarray:
    scaled = np.maximum(np.float32(scale) * values_f32, np.float32(0))
    mapped = np.power(scaled, GAMMA, dtype=np.float64)
    return (np.clip(mapped, 0, 1) * 255).astype(np.uint8)


def tonemap(color: np.ndarray, render_entity_id: np.ndarray) -> np.ndarray:
    """Linear HDR ``color`` (H, W, 3; float16 as upstream stores it, or any float) to uint8 RGB.

    ``render_entity_id`` (H, W) marks pixels without geometry with -1; they are left out of
    the percentile. For float16 input every one of the 65536 possible values is mapped once
    through the exact per-pixel formula and the image is a table look-up: same result, far
    less float64 ``pow``.
    """
    if color.ndim != 3 or color.shape[2] != 3 or color.shape[:2] != render_entity_id.shape:
        raise ValueError(f"color {color.shape} and render_entity_id {render_entity_id.shape} do not match")
    scale = tonemap_scale(brightness_percentile(color, render_entity_id != -1))
    if color.dtype == np.float16:
        return lookup(_apply_scale(FLOAT16_AS_FLOAT32, scale), color)
    return _apply_scale(color.astype(np.float32), scale)
