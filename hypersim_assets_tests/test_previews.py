"""Preview images for the UI: exact label colours, depth ordering, inline PNGs a
standard decoder reads."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from hypersim_assets.convert.previews import colorize_depth, colorize_labels, downsample, frame_preview_markdown


def test_downsample_keeps_exact_values_and_bounds_width():
    labels = np.arange(768 * 1024, dtype=np.uint32).reshape(768, 1024)
    small = downsample(labels, 192)
    assert small.shape[1] <= 192
    assert np.array_equal(small, labels[:: -(-1024 // 192), :: -(-1024 // 192)])


def test_depth_colours_invalid_black_and_near_differs_from_far():
    depth = np.zeros((4, 50), np.uint16)
    depth[:, 1:] = np.linspace(500, 9000, 49).astype(np.uint16)
    rgb = colorize_depth(depth)
    assert (rgb[:, 0] == 0).all()
    assert rgb[0, 1, 2] > rgb[0, 1, 0]  # near: blue
    assert rgb[0, -1, 0] > rgb[0, -1, 2]  # far: red


def test_label_colours_are_a_function_of_the_label():
    labels = np.array([[0, 1, 1], [40, 1, 0]], np.uint8)
    rgb = colorize_labels(labels)
    assert (rgb[labels == 0] == 0).all()
    assert (rgb[labels == 1] == rgb[0, 1]).all()
    assert not np.array_equal(rgb[0, 1], rgb[1, 0])


def test_markdown_holds_three_decodable_pngs():
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0] = np.arange(64, dtype=np.uint8)
    md = frame_preview_markdown("t", rgb, np.full((48, 64), 1000, np.uint16), np.ones((48, 64), np.uint8))
    uris = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", md)
    assert len(uris) == 3
    with Image.open(io.BytesIO(base64.b64decode(uris[0]))) as im:
        assert im.size == (64, 48) and np.array_equal(np.asarray(im), rgb)
