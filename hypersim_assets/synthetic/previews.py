"""The mirror's preview images (upstream's ``*_preview`` folders), subsampled by ``PREVIEW_STEP``.

Nothing converts previews: they are there so that member listings, sizes and selective
downloads look like upstream's. The PNGs are real images (8-bit, Sub filter) drawn from the
frame; the JPEGs are stand-in bytes (a JFIF header, seeded pseudo-random bytes, an end
marker) of about the size a baseline JPEG of that image has, since writing a JPEG would
need a codec the package does not otherwise depend on.
"""

from __future__ import annotations

import zlib

import numpy as np

from hypersim_assets.convert import png_writer

PREVIEW_STEP = 4  # previews are subsampled by this step in both axes (upstream writes them full size)
FINAL_PREVIEWS: tuple[str, ...] = (
    "color",
    "gamma",
    "diffuse_reflectance",
    "diffuse_illumination",
    "residual",
    "lambertian",
    "non_lambertian",
    "diff",
    "tonemap",
)
GEOMETRY_PREVIEWS_JPG: tuple[str, ...] = ("color", "gamma")
GEOMETRY_PREVIEWS_PNG: tuple[str, ...] = (
    "render_entity_id",
    "depth_meters",
    "normal_world",
    "normal_cam",
    "normal_bump_world",
    "normal_bump_cam",
    "tex_coord",
    "semantic",
    "semantic_instance",
)

# Bytes per preview pixel of a stand-in JPEG: a baseline quality-90 encoder wrote about 5 KB for a
# 192x256 preview of these smooth renders.
_JPEG_BYTES_PER_PIXEL = 0.1
_JFIF_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
_JPEG_END = b"\xff\xd9"


def stand_in_jpeg(name: str, height: int, width: int, seed: int) -> bytes:
    """Bytes standing in for a preview JPEG of ``height`` x ``width`` pixels, a function of ``(name, seed)``.

    Starts with a JFIF header and ends with the end-of-image marker; the bytes between are
    pseudo-random (incompressible, as entropy-coded data is), about ``_JPEG_BYTES_PER_PIXEL``
    per pixel, +-20%.
    """
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    size = int(height * width * _JPEG_BYTES_PER_PIXEL * rng.uniform(0.8, 1.2))
    return _JFIF_HEADER + rng.bytes(size) + _JPEG_END


def _png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image, (H, W) gray or (H, W, 3) RGB; rows use the Sub filter, deflate level 6."""
    return png_writer.encode_png(
        np.ascontiguousarray(image, dtype=np.uint8), filter_type=png_writer.FILTER_SUB, level=6
    )


def _to_u8(a: np.ndarray) -> np.ndarray:
    return (np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def palette(ids: np.ndarray, salt: int) -> np.ndarray:
    """Stable pseudo-random RGB per integer id; black for -1."""
    k = (ids.astype(np.int64) + 7) * (2654435761 + salt) & 0xFFFFFF
    rgb = np.stack([(k >> 16) & 255, (k >> 8) & 255, k & 255], axis=-1).astype(np.uint8)
    rgb[ids < 0] = 0
    return rgb


def preview_members(prefix: str, frame: dict[str, np.ndarray], seed: int) -> dict[str, bytes]:
    """The frame's preview members (upstream names) from its images; ``prefix`` holds ``{group}``.

    ``seed`` (the scene's) makes the stand-in JPEG bytes differ between mirrors.
    """
    s = PREVIEW_STEP
    img = {k: v[::s, ::s] for k, v in frame.items()}
    height, width = img["render_entity_id"].shape
    out: dict[str, bytes] = {}
    fp, gp = prefix.format(group="final_preview"), prefix.format(group="geometry_preview")
    for k in FINAL_PREVIEWS:
        name = f"{fp}.{k}.jpg"
        out[name] = stand_in_jpeg(name, height, width, seed)
    for k in GEOMETRY_PREVIEWS_JPG:
        name = f"{gp}.{k}.jpg"
        out[name] = stand_in_jpeg(name, height, width, seed)
    depth = img["depth_meters"].astype(np.float32)
    dmax = float(np.nanmax(depth)) if np.isfinite(depth).any() else 1.0
    dn = np.nan_to_num(depth / max(dmax, 1e-6), nan=0.0)
    depth_rgb = np.stack([dn, 1.0 - np.abs(2 * dn - 1), 1.0 - dn], axis=-1)  # blue near, red far
    pngs = {
        "render_entity_id": palette(img["render_entity_id"], 1),
        "depth_meters": _to_u8(depth_rgb),
        "tex_coord": _to_u8(img["tex_coord"].astype(np.float32)),
        "semantic": palette(img["semantic"], 2),
        "semantic_instance": palette(img["semantic_instance"], 3),
    }
    for k in ("normal_world", "normal_cam", "normal_bump_world", "normal_bump_cam"):
        pngs[k] = _to_u8((img[k].astype(np.float32) + 1.0) / 2.0)
    for k in GEOMETRY_PREVIEWS_PNG:
        out[f"{gp}.{k}.png"] = _png(pngs[k])
    return out
