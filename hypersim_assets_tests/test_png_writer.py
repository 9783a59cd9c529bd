"""PNG writer: Pillow reads every kind, filter and compression back to the same pixels."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hypersim_assets.convert.png_writer import IMAGE_KINDS, PngCompression, encode_png, write_png


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
