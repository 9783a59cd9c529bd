"""A fast PNG encoder for the images the conversion writes: 8-bit gray, 8-bit RGB
and 16-bit gray (big-endian samples, as PNG requires), no interlace.

Row filtering is done with numpy; deflate with zlib-ng or libdeflate (the ``deflate``
package), both several times faster than zlib at the same ratio; which one, with which
filters and level, is set per image kind in ``PROFILES``. ``PngCompression`` trades speed
for size; any standard decoder reads our files to the same pixels as the reference's
OpenCV PNGs.
"""

from __future__ import annotations

import enum
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import deflate
import numpy as np
from zlib_ng import zlib_ng

from hypersim_assets.common.atomic_files import write_bytes_atomic

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# PNG filter type bytes (PNG spec, section 9).
FILTER_NONE, FILTER_SUB, FILTER_UP, FILTER_AVERAGE, FILTER_PAETH = range(5)


class PngCompression(str, enum.Enum):
    """Speed/size trade-off of the PNG writer (settings per image kind: ``PROFILES``).

    Measured on 768x1024 frames, one core, against the reference's OpenCV level-9 files of
    the same pixels (benchmarks/bench_png_profiles.py, bench_conversion.py; 2026-11-29):
    ``default`` writes a frame's five PNGs in about 160-220 ms of CPU (the reference: 4-5 s)
    at 0.98x the reference's bytes on the synthetic scene the time-to-dataset benchmark
    converts (ai_047_013) and 1.09x on another synthetic scene (ai_027_011; the real
    upstream depth frame: 0.97-0.99x); ``fast`` takes about 0.45x default's time for
    1.27-1.29x the reference's bytes; ``small`` about 4.5x default's time for 1.01-1.02x.
    """

    FAST = "fast"
    DEFAULT = "default"
    SMALL = "small"

    @classmethod
    def parse(cls, value: PngCompression | str) -> PngCompression:
        """Accept an enum member or its name (case-insensitive); raise ValueError otherwise."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise ValueError(f"PNG compression must be one of fast, default, small; got {value!r}") from None


# What an image holds decides its best filter: photos and normals vary smoothly, depth
# (16-bit) changes slowly along rows, label images are flat regions.
IMAGE_KINDS: tuple[str, ...] = ("photo", "depth", "normal", "label", "label_rgb")

# Deflate implementations by name: (compress(data, level) -> zlib stream, valid levels).
# zlib-ng's level 1 is a much weaker strategy than its 4-9; libdeflate's 10-12 are its
# near-optimal parser (several times slower than 9).
LIBRARIES = {
    "zlib-ng": (zlib_ng.compress, range(0, 10)),
    "libdeflate": (deflate.zlib_compress, range(1, 13)),
}


class PngSettings(NamedTuple):
    """How one image is encoded: row filters, deflate library (a ``LIBRARIES`` key) and its level.

    One filter: every row uses it. Several: each row takes the one whose output bytes, read
    as signed, have the smallest absolute sum (libpng's heuristic; ties go to the earlier one).
    """

    filters: tuple[int, ...]
    library: str
    level: int


def _zng(filters: tuple[int, ...], level: int) -> PngSettings:
    return PngSettings(filters, "zlib-ng", level)


# Settings per compression and image kind, chosen by measuring 768x1024 frames (synthetic
# mirror and the real depth frame in ../shared/hypersim-reference) against the reference's
# OpenCV level-9 sizes: benchmarks/bench_png_profiles.py (per kind, side by side; --grid
# prints the Pareto front) and benchmarks/bench_conversion.py (whole frames). Each default
# setting is on that front: no filter set, library and level is smaller at its time, and
# 1.05x the reference's bytes on the synthetic frames costs about twice default's encode
# time (the depth and photo gap is deflate's parse, not the filters: zlib-ng 8-9 or
# libdeflate 10+ close it). libdeflate is faster than zlib-ng at levels 3-6 but larger at
# equal time for every kind except the fast photo. Real depth prefers Sub alone; the
# synthetic depth prefers Paeth mixes, which would be larger on the real frame.
# Label images (re-measured 2026-11-29 on the two synthetic scenes of the docstring): the
# best filter depends on the labels. On ai_047_013, None alone at zlib-ng 8 encodes the
# instance image in half the default's time at 0.98x its bytes and the semantic one in
# 0.92x at 0.95x; on ai_027_011 it is 1.6-2.2x their bytes. No label setting in the grid
# (nor zlib-ng's filtered or RLE strategy) is faster at no more bytes on both, and none
# of photo, normal or depth either, so the defaults below stay.
PROFILES: dict[PngCompression, dict[str, PngSettings]] = {
    PngCompression.FAST: {
        "photo": PngSettings((FILTER_SUB, FILTER_UP), "libdeflate", 3),
        "depth": _zng((FILTER_SUB,), 4),
        "normal": _zng((FILTER_UP,), 4),
        "label": _zng((FILTER_NONE, FILTER_UP), 6),
        "label_rgb": _zng((FILTER_UP,), 6),
    },
    PngCompression.DEFAULT: {
        "photo": _zng((FILTER_NONE, FILTER_SUB, FILTER_UP), 6),
        "depth": _zng((FILTER_SUB,), 6),
        "normal": _zng((FILTER_NONE,), 6),
        "label": _zng((FILTER_NONE, FILTER_UP), 9),
        "label_rgb": _zng((FILTER_UP,), 9),
    },
    PngCompression.SMALL: {
        "photo": _zng((FILTER_SUB, FILTER_UP), 8),
        "depth": _zng((FILTER_SUB,), 8),
        "normal": _zng((FILTER_NONE,), 8),
        "label": _zng((FILTER_NONE, FILTER_UP), 9),
        "label_rgb": _zng((FILTER_NONE, FILTER_UP), 9),
    },
}


def _filtered(raw: np.ndarray, bpp: int, filters: tuple[int, ...]) -> np.ndarray:
    """Rows filtered with ``filters[0]``, or per row with the best of several (see PROFILES; ties go to
    the earlier filter)."""
    if len(filters) == 1:
        return _filter_rows(raw, bpp, filters[0])
    outs = [_filter_rows(raw, bpp, f) for f in filters]
    # One scratch array and in-place selection: every fresh image-sized temporary costs page
    # faults, which took longer than the arithmetic (an RGB frame: 25 ms instead of 7 ms).
    scratch = np.empty_like(raw)
    cost = np.empty((len(outs), raw.shape[0]), dtype=np.uint32)
    for k, o in enumerate(outs):
        _signed_abs_row_sums(o[:, 1:], scratch, cost[k])
    best = cost.argmin(axis=0)
    out = outs[0]
    for k in range(1, len(outs)):
        rows = np.flatnonzero(best == k)
        out[rows] = outs[k][rows]  # whole rows: faster than a per-byte masked copy
    return out


def _signed_abs_row_sums(body: np.ndarray, scratch: np.ndarray, out: np.ndarray) -> None:
    """Per row, the sum of |b| of ``body``'s bytes read as signed int8 (libpng's filter heuristic),
    into ``out``; ``scratch`` is a work array of ``body``'s shape.

    ``min(b, 256 - b)`` in uint8 arithmetic is that magnitude (128 for -128), computed without
    widening every byte, which costs ten times as much.
    """
    np.negative(body, out=scratch)
    np.minimum(body, scratch, out=scratch)
    np.add.reduce(scratch, axis=1, dtype=np.uint32, out=out)


def default_kind(image: np.ndarray) -> str:
    """The image kind assumed when none is given: uint16 gray depth, uint8 gray label, RGB photo."""
    if image.ndim == 2:
        return "depth" if image.dtype == np.uint16 else "label"
    return "photo"


def _filter_rows(raw: np.ndarray, bpp: int, kind: int) -> np.ndarray:
    """Apply one PNG filter to every row of ``raw`` ((H, row_bytes) uint8); returns (H, 1 + row_bytes)."""
    h, n = raw.shape
    out = np.empty((h, n + 1), dtype=np.uint8)
    out[:, 0] = kind
    body = out[:, 1:]
    if kind == FILTER_NONE:
        body[:] = raw
    elif kind == FILTER_SUB:
        body[:, :bpp] = raw[:, :bpp]
        np.subtract(raw[:, bpp:], raw[:, :-bpp], out=body[:, bpp:])
    elif kind == FILTER_UP:
        body[:1] = raw[:1]
        np.subtract(raw[1:], raw[:-1], out=body[1:])
    elif kind == FILTER_AVERAGE:
        left = np.zeros((h, n), dtype=np.uint16)
        left[:, bpp:] = raw[:, :-bpp]
        up = np.zeros((h, n), dtype=np.uint16)
        up[1:] = raw[:-1]
        np.subtract(raw, ((left + up) >> 1).astype(np.uint8), out=body)
    elif kind == FILTER_PAETH:
        a = np.zeros((h, n), dtype=np.int16)
        a[:, bpp:] = raw[:, :-bpp]
        b = np.zeros((h, n), dtype=np.int16)
        b[1:] = raw[:-1]
        c = np.zeros((h, n), dtype=np.int16)
        c[1:, bpp:] = raw[:-1, :-bpp]
        pa = np.abs(b - c)
        pb = np.abs(a - c)
        pc = np.abs(a + b - 2 * c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)
        np.subtract(raw, pred, out=body)
    else:
        raise ValueError(f"unknown PNG filter {kind}")
    return out


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)) & 0xFFFFFFFF)


def _raw_rows(image: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """(rows as (H, row_bytes) uint8, bytes per pixel, bit depth, colour type) of a supported image."""
    if image.ndim == 2 and image.dtype == np.uint8:
        return np.ascontiguousarray(image), 1, 8, 0
    if image.ndim == 2 and image.dtype == np.uint16:
        be = np.ascontiguousarray(image, dtype=">u2")
        return be.view(np.uint8).reshape(image.shape[0], image.shape[1] * 2), 2, 16, 0
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        h, w, _ = image.shape
        return np.ascontiguousarray(image).reshape(h, w * 3), 3, 8, 2
    raise ValueError(
        f"unsupported image for PNG: dtype {image.dtype}, shape {image.shape} (need uint8 HxW, uint16 HxW or uint8 HxWx3)"
    )


def encode_png(
    image: np.ndarray,
    compression: PngCompression | str = PngCompression.DEFAULT,
    kind: str | None = None,
    filter_type: int | None = None,
    level: int | None = None,
) -> bytes:
    """Encode ``image`` (uint8 HxW gray, uint16 HxW gray, or uint8 HxWx3 RGB in R, G, B order) as PNG bytes.

    ``kind`` (one of IMAGE_KINDS) picks the settings of ``compression`` from ``PROFILES``;
    ``filter_type`` and ``level`` override its filters and level.
    """
    comp = PngCompression.parse(compression)
    kind = kind or default_kind(image)
    if kind not in IMAGE_KINDS:
        raise ValueError(f"unknown image kind {kind!r}; expected one of {IMAGE_KINDS}")
    settings = PROFILES[comp][kind]
    if filter_type is not None:
        settings = settings._replace(filters=(filter_type,))
    if level is not None:
        settings = settings._replace(level=level)
    return encode_with(image, settings)


def encode_with(image: np.ndarray, settings: PngSettings) -> bytes:
    """Encode ``image`` (as for ``encode_png``) with explicit ``settings``."""
    raw, bpp, depth, colour = _raw_rows(image)
    h, w = image.shape[:2]
    if h < 1 or w < 1:
        raise ValueError(f"cannot encode an empty image of shape {image.shape}")
    if settings.library not in LIBRARIES:
        raise ValueError(f"unknown deflate library {settings.library!r}; expected one of {tuple(LIBRARIES)}")
    compress, levels = LIBRARIES[settings.library]
    if settings.level not in levels:
        raise ValueError(f"{settings.library} level must be in {levels.start}..{levels.stop - 1}; got {settings.level}")
    idat = compress(_filtered(raw, bpp, settings.filters), settings.level)  # buffer protocol: no copy
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return b"".join((PNG_SIGNATURE, _chunk(b"IHDR", ihdr), _chunk(b"IDAT", idat), _chunk(b"IEND", b"")))


def write_png(
    image: np.ndarray,
    path: Path,
    compression: PngCompression | str = PngCompression.DEFAULT,
    kind: str | None = None,
    fsync: bool = False,
) -> int:
    """Encode ``image`` and write it atomically to ``path``; returns the file size in bytes."""
    return write_bytes_atomic(encode_png(image, compression, kind), path, fsync=fsync)
