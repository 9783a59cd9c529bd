"""PNG writer: Pillow reads every kind, filter and compression back to the same pixels."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from hypersim_assets.convert.depth import legacy_depth_mm
from hypersim_assets.convert.png_writer import (
    IMAGE_KINDS,
    LIBRARIES,
    PROFILES,
    PngCompression,
    PngSettings,
    encode_png,
    encode_with,
    write_png,
)


def _images(rng):
    yy, xx = np.mgrid[0:37, 0:53]
    return {
        "gray8": (xx * 3 + yy).astype(np.uint8),
        "gray16": (xx * 1000 + yy * 7 + rng.integers(0, 3, xx.shape)).astype(np.uint16),
        "rgb": rng.integers(0, 256, (37, 53, 3)).astype(np.uint8),
    }


@pytest.mark.parametrize("filter_type", [0, 1, 2, 3, 4])
def test_every_filter_decodes_to_the_same_pixels(tmp_path, filter_type):
    for name, img in _images(np.random.default_rng(filter_type)).items():
        path = tmp_path / f"{name}.png"
        path.write_bytes(encode_png(img, filter_type=filter_type))
        with Image.open(path) as im:
            im.load()
            back = np.asarray(im)
            assert back.shape == img.shape and back.dtype == img.dtype, name
            assert np.array_equal(back, img), name
            assert im.mode == {"gray8": "L", "gray16": "I;16", "rgb": "RGB"}[name]


@pytest.mark.parametrize("compression", list(PngCompression))
@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_every_profile_round_trips(tmp_path, compression, kind):
    img = _images(np.random.default_rng(1))["gray16" if kind == "depth" else "gray8" if kind == "label" else "rgb"]
    size = write_png(img, tmp_path / "x.png", compression, kind)
    assert size == (tmp_path / "x.png").stat().st_size
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), img)
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_chunks_have_valid_crcs_and_16_bit_samples_are_big_endian():
    img = np.array([[0x0102, 0xFFFE]], dtype=np.uint16)
    data = encode_png(img, filter_type=0)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body), tag
        chunks[tag] = body
        pos += 12 + length
    assert struct.unpack(">IIBBBBB", chunks[b"IHDR"]) == (2, 1, 16, 0, 0, 0, 0)
    assert zlib.decompress(chunks[b"IDAT"]) == b"\x00\x01\x02\xff\xfe"
    assert chunks[b"IEND"] == b""


def test_rejects_unsupported_images_and_names():
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError):
        PngCompression.parse("tiny")
    assert PngCompression.parse("FAST") is PngCompression.FAST


def test_smaller_setting_is_not_larger():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:120, 0:160]
    img = (2000 + 30 * xx + 11 * yy + rng.integers(0, 40, xx.shape)).astype(np.uint16)
    sizes = [len(encode_png(img, c, "depth")) for c in ("fast", "default", "small")]
    assert sizes[0] >= sizes[1] >= sizes[2]


def _idat_rows(data: bytes, row_bytes: int) -> np.ndarray:
    """The decompressed IDAT of a single-IDAT PNG as (H, 1 + row_bytes) uint8 (filter byte first)."""
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(-1, 1 + row_bytes)


def test_profile_table_names_known_libraries_levels_and_filters():
    for comp in PngCompression:
        assert set(PROFILES[comp]) == set(IMAGE_KINDS), comp
        for kind, s in PROFILES[comp].items():
            assert s.library in LIBRARIES, (comp, kind)
            assert s.level in LIBRARIES[s.library][1], (comp, kind)
            assert s.filters and len(set(s.filters)) == len(s.filters), (comp, kind)
            assert set(s.filters) <= {0, 1, 2, 3, 4}, (comp, kind)


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_every_library_and_level_decodes_to_the_same_pixels(tmp_path, library):
    levels = LIBRARIES[library][1]
    for name, img in _images(np.random.default_rng(7)).items():
        for level in (levels[0], levels[len(levels) // 2], levels[-1]):
            path = tmp_path / f"{name}_{level}.png"
            path.write_bytes(encode_with(img, PngSettings((0, 1, 2, 3, 4), library, level)))
            with Image.open(path) as im:
                assert np.array_equal(np.asarray(im), img), (name, library, level)


def test_unknown_library_or_level_is_refused():
    img = np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError, match="library"):
        encode_with(img, PngSettings((0,), "zlib", 6))
    with pytest.raises(ValueError, match="level"):
        encode_with(img, PngSettings((0,), "zlib-ng", 10))
    with pytest.raises(ValueError, match="level"):
        encode_with(img, PngSettings((0,), "libdeflate", 0))


def test_each_row_takes_the_filter_with_the_smallest_signed_sum():
    # Top half: each row a horizontal ramp (Sub leaves 1s); bottom half: the row above again
    # plus noise only in the ramp's start (Up leaves zeros but for a few bytes).
    rng = np.random.default_rng(5)
    img = np.empty((40, 64), np.uint8)
    img[:20] = rng.integers(0, 50, (20, 1)) + np.arange(64)
    img[20:] = (rng.integers(0, 256, 64)).astype(np.uint8)
    rows = _idat_rows(encode_with(img, PngSettings((0, 1, 2), "zlib-ng", 6)), 64)
    assert list(rows[1:20, 0]) == [1] * 19
    assert list(rows[21:, 0]) == [2] * 19
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(encode_with(img, PngSettings((0, 1, 2), "zlib-ng", 6))))), img
    )


def test_row_heuristic_is_smaller_than_its_first_filter_alone():
    # Bands of 32 rows: ramps with a random slope per row (Sub suits them) and one random row
    # repeated (Up suits them), both with a little noise: no single filter suits every row.
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:192, 0:256]
    noise = rng.integers(0, 2, (192, 256))
    ramps = xx * rng.integers(1, 6, (192, 1)) + noise
    copies = rng.integers(0, 250, 256) + noise
    img = np.where((yy // 32) % 2 == 0, ramps, copies).astype(np.uint8)
    img = np.repeat(img[..., None], 3, axis=2)
    for comp in PngCompression:
        s = PROFILES[comp]["photo"]
        assert len(s.filters) > 1, comp
        for single in s.filters:
            assert len(encode_with(img, s)) < len(encode_with(img, s._replace(filters=(single,)))), (comp, single)


# Not "normal": its fast profile filters with Up and its default with None (None wins on the
# flat-faced normals of rendered rooms, Up on smooth fields), so their order depends on the image.
@pytest.mark.parametrize("kind", ["photo", "depth", "label", "label_rgb"])
def test_smaller_profiles_are_not_larger_for_every_kind(kind):
    rng = np.random.default_rng(13)
    yy, xx = np.mgrid[0:384, 0:512]
    smooth = 40 + xx // 2 + yy // 2 + rng.integers(0, 3, xx.shape)
    # Label regions like a rendered room's: the nearest of 40 random seeds.
    seeds = rng.integers(0, 512, (40, 2))
    region = np.argmin((xx[..., None] - seeds[:, 0]) ** 2 + (yy[..., None] - seeds[:, 1]) ** 2, axis=2)
    img = {
        "photo": np.stack([smooth, smooth // 2, 255 - smooth], axis=2).astype(np.uint8),
        "depth": (3000 + 17 * xx + 5 * yy + rng.integers(0, 4, xx.shape)).astype(np.uint16),
        "label": (region * 3 + 1).astype(np.uint8),
        "label_rgb": np.stack([region % 5 + 1, region // 5, 0 * region], axis=2).astype(np.uint8),
    }[kind]
    sizes = [len(encode_png(img, c, kind)) for c in ("fast", "default", "small")]
    assert sizes[0] >= sizes[1] >= sizes[2], sizes


REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "hypersim-reference"  # beside the repo
REAL_DEPTH = REFERENCE / "ai_037_002/images/scene_cam_00_geometry_hdf5/frame.0000.depth_meters.hdf5"


@pytest.mark.skipif(
    not REAL_DEPTH.exists() and os.environ.get("CI") != "true", reason="shared hypersim-reference absent"
)
def test_real_depth_frame_round_trips_with_every_profile():
    with h5py.File(REAL_DEPTH, "r") as f:
        depth_mm = legacy_depth_mm(f["dataset"][:])
    for comp in PngCompression:
        with Image.open(io.BytesIO(encode_png(depth_mm, comp, "depth"))) as im:
            assert np.array_equal(np.asarray(im), depth_mm), comp
