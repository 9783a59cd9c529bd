"""Tonemapping parity with the reference rule, computed independently here."""

from __future__ import annotations

import numpy as np

from hypersim_assets.convert.tonemapping import brightness_percentile, tonemap, tonemap_scale


def _expected(color16: np.ndarray, render: np.ndarray) -> tuple[float, np.ndarray]:
    c = color16.astype(np.float32)
    b = (np.float32(0.3) * c[..., 0] + np.float32(0.59) * c[..., 1]) + np.float32(0.11) * c[..., 2]
    v = np.sort(b[render != -1].astype(np.float64))
    pos = 0.9 * (v.size - 1)
    lo = int(pos)
    p = v[lo] + (v[min(lo + 1, v.size - 1)] - v[lo]) * (pos - lo)
    scale = 0.0 if p < 1e-4 else 0.8**2.2 / p
    out = np.empty(c.shape, np.uint8)
    for idx in np.ndindex(c.shape):  # scalar, one pixel at a time
        x = max(float(np.float32(scale) * c[idx]), 0.0) ** (1 / 2.2)
        out[idx] = int(min(max(x, 0.0), 1.0) * 255)
    return scale, out


def test_percentile_scale_and_pixels_match_an_independent_computation():
    rng = np.random.default_rng(0)
    color = rng.gamma(1.5, 0.3, size=(17, 23, 3)).astype(np.float16)
    render = np.ones((17, 23), np.int16)
    render[:4, :5] = -1
    color[:4, :5] = 100.0  # invalid pixels must not move the percentile
    scale, expected = _expected(color, render)
    p = brightness_percentile(color.astype(np.float32), render != -1)
    assert abs(tonemap_scale(p) - scale) <= 1e-12 * scale
    assert np.array_equal(tonemap(color, render), expected)


def test_float16_table_equals_direct_float32_path_including_nan_and_inf():
    rng = np.random.default_rng(1)
    color = rng.uniform(0, 3, size=(9, 11, 3)).astype(np.float16)
    color[0, 0] = [np.nan, np.inf, -1.0]
    render = np.ones((9, 11), np.int16)
    assert np.array_equal(tonemap(color, render), tonemap(color.astype(np.float32), render))


def test_scale_rules_without_valid_pixels_and_for_dark_images():
    assert tonemap_scale(None) == 1.0
    assert tonemap_scale(5e-5) == 0.0
    color = np.full((4, 4, 3), 0.5, np.float16)
    out = tonemap(color, np.full((4, 4), -1, np.int16))  # scale 1: 0.5 ** (1/2.2) * 255
    assert (out == int(0.5 ** (1 / 2.2) * 255)).all()
    assert (tonemap(np.zeros((4, 4, 3), np.float16), np.ones((4, 4), np.int16)) == 0).all()


def test_percentile_equals_full_sort_interpolation_with_nan_and_ties():
    """NaN sorts last, as in np.sort; ties and NaN at and above the 90th percentile."""
    rng = np.random.default_rng(4)
    for nan_fraction, levels in ((0.0, 7), (0.05, 1000), (0.12, 3), (0.5, 50)):
        color = (rng.integers(0, levels, size=(31, 37, 3)) / levels).astype(np.float16)
        color.reshape(-1, 3)[rng.random(31 * 37) < nan_fraction, 1] = np.nan
        valid = rng.random((31, 37)) < 0.9
        c = color.astype(np.float32)
        b = (np.float32(0.3) * c[..., 0] + np.float32(0.59) * c[..., 1]) + np.float32(0.11) * c[..., 2]
        v = np.sort(b[valid]).astype(np.float64)
        pos = 0.9 * (v.size - 1)
        expected = np.interp(pos, np.arange(v.size, dtype=np.float64), v)
        got = brightness_percentile(color, valid)
        assert (np.isnan(got) and np.isnan(expected)) or got == expected
