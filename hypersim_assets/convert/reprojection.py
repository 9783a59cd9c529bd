"""Camera geometry of a Hypersim frame: per-pixel rays from ``M_cam_from_uv``, the
camera-space point cloud from ``depth_meters`` (distance along the ray), normalised
pinhole intrinsics, and the reprojection of a tilt-shift frame onto that pinhole camera;
plus the fixed intrinsics of the reference's older (no tilt-shift) variant.

Conventions (as the reference): ``u, v`` are pixel centres in [-1, 1] with ``v`` up;
camera points are flipped to x right, y down, z forward (``[1, -1, -1]``); intrinsics
are normalised by image width/height; depth PNG values are z in millimetres.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

DEPTH_SCALE_A = 1 / 1000.0  # metres per depth unit (mm), as the reference writes it
DEPTH_SCALE_B = -1


def m_cam_from_uv(camera_params: Mapping[str, float]) -> np.ndarray:
    """The 3x3 ``M_cam_from_uv`` (float64) from one row of ``metadata_camera_parameters.csv``."""
    try:
        return np.array(
            [[float(camera_params[f"M_cam_from_uv_{r}{c}"]) for c in range(3)] for r in range(3)], dtype=np.float64
        )
    except KeyError as exc:
        raise ValueError(f"camera parameters lack {exc.args[0]}") from None


def image_size(camera_params: Mapping[str, float]) -> tuple[int, int]:
    """(height, width) in pixels from ``settings_output_img_height/width``."""
    return int(float(camera_params["settings_output_img_height"])), int(
        float(camera_params["settings_output_img_width"])
    )


def pinhole_intrinsics(M_cam_from_uv: np.ndarray) -> dict[str, float]:
    """Normalised pinhole intrinsics (fx, fy, cx, cy in image widths/heights) plus the depth scale a, b."""
    M = M_cam_from_uv
    return {
        "fx": (1 / M[0, 0]) / 2,
        "fy": (1 / M[1, 1]) / 2,
        "cx": 0.5 - 0.5 * M[0, 2] / M[0, 0],
        "cy": 0.5 + 0.5 * M[1, 2] / M[1, 1],
        "a": DEPTH_SCALE_A,
        "b": DEPTH_SCALE_B,
    }


def legacy_intrinsics(width: int = 1024, height: int = 768) -> dict[str, float]:
    """The fixed intrinsics of the reference's no-tilt-shift variant: 60 degree horizontal field of view."""
    fov_x = np.pi / 3.0
    fov_y = fov_x * (height / width)
    f_x = (width / np.tan(fov_x / 2)) / 2
    f_y = (height / np.tan(fov_y / 2)) / 2
    return {"fx": f_x / width, "fy": f_y / height, "cx": 0.5, "cy": 0.5, "a": DEPTH_SCALE_A, "b": DEPTH_SCALE_B}


def rgb_intrinsics(intrinsics: Mapping[str, float]) -> dict[str, float]:
    """The intrinsics the RGB camera file holds: the depth ones without the depth scale a, b."""
    return {k: v for k, v in intrinsics.items() if k not in ("a", "b")}


def unit_rays(M_cam_from_uv: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unit-length ray directions (H*W, 3) float64, Hypersim camera frame (y up, z backwards), row-major pixels.

    As the reference: ``[u, v, 1]`` per pixel times ``M^T`` (one matrix product), divided by
    ``np.linalg.norm`` along the last axis. The ``[u, v, 1]`` array is filled in place and the
    division done in place: the same values, without the meshgrid and stacking temporaries.
    """
    half_du = 0.5 * 2.0 / width
    half_dv = 0.5 * 2.0 / height
    uv1 = np.empty((height, width, 3))
    uv1[:, :, 0] = np.linspace(-1.0 + half_du, 1.0 - half_du, width)
    uv1[:, :, 1] = np.linspace(-1.0 + half_dv, 1.0 - half_dv, height)[::-1, None]
    uv1[:, :, 2] = 1.0
    rays = np.dot(uv1.reshape(-1, 3), M_cam_from_uv.T)
    rays /= np.linalg.norm(rays, ord=2, axis=-1, keepdims=True)
    return rays


def flipped_ray_columns(unit_rays_: np.ndarray) -> np.ndarray:
    """(3, H*W) contiguous rows x, -y, -z of the unit rays: the camera frame with y down, z forward.

    Negation is exact and commutes with rounding, so ``flipped * d`` equals the reference's
    ``(ray * d) * [1, -1, -1]`` bit for bit.
    """
    cols = np.ascontiguousarray(unit_rays_.T)
    cols[1:] *= -1
    return cols


def camera_points(ray_columns: np.ndarray, distance_m: np.ndarray) -> np.ndarray:
    """Camera-space points as (3, H*W) float64 rows x, y, z in metres: x right, y down, z forward.

    ``ray_columns`` from ``flipped_ray_columns``; ``distance_m`` is the (H, W) distance along
    each ray (NaN already replaced by 0).
    """
    d = distance_m.reshape(-1).astype(np.float64)
    return ray_columns * d


def _pixel_axis(a: np.ndarray, z: np.ndarray, f: float, c: float, size: int) -> np.ndarray:
    """One pixel coordinate as the reference computes it: ``((a / z) * f + c) * (size - 0.5)``,
    each step a separate float64 operation, truncated by an int16 cast, clipped into the image."""
    p = np.empty(a.shape, dtype=np.int16)
    _pixel_axis_into(np.array(a, dtype=np.float64), z, f, c, size, p)  # a copy: it is overwritten
    return p


def project_to_pixels(
    points: np.ndarray, intrinsics: Mapping[str, float], height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``points`` (3, N): pixel columns u and v (int16, contiguous, clipped into the image) of
    every point, and the mask of the points with z != 0, the only ones that land anywhere
    (u and v of the others are meaningless).

    As the reference: ``((x / z) * fx + cx) * (width - 0.5)`` (and likewise for y), each
    step a separate float64 operation, truncated toward zero by an int16 cast (which wraps
    modulo 2**16 for far-off points, the same for every element), then clipped. Every point
    is computed, rather than gathering those with z != 0 first: element-wise, the same numbers
    for those, and three gathers cheaper.
    """
    x, y, z = points[0], points[1], points[2]
    with np.errstate(divide="ignore", invalid="ignore"):  # z == 0: inf or NaN, masked out
        u = _pixel_axis(x, z, intrinsics["fx"], intrinsics["cx"], width)
        v = _pixel_axis(y, z, intrinsics["fy"], intrinsics["cy"], height)
    return u, v, z != 0


def _lone_hits(linear: np.ndarray, pixels: int) -> np.ndarray:
    """Indices (ascending) into ``linear`` (flat pixel indices; ``pixels`` marks an entry that
    lands nowhere) of the entries alone on their pixel."""
    counts = np.bincount(linear, minlength=pixels + 1)
    counts[pixels] = 0
    return np.flatnonzero(counts[linear] == 1)


def unique_hits(uv: np.ndarray, height: int, width: int) -> np.ndarray:
    """Indices (ascending) into ``uv`` ((N, 2) pixel u, v) of the points that are the only point landing on their pixel.

    Exactly the points the reference keeps with ``np.unique(axis=0, return_counts=True)``
    and ``counts == 1``: pixels hit by two or more points stay empty, so no tie-breaking is
    involved. A bincount over linear pixel indices finds them in O(n).
    """
    return _lone_hits(uv[:, 1].astype(np.intp) * width + uv[:, 0], height * width)


@dataclass(frozen=True)
class Reprojection:
    """Per target pixel (flat index), its source pixel, or H*W (a zero pixel appended to the
    source) where no point lands alone."""

    gather: np.ndarray  # (H*W,) intp
    height: int
    width: int

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The image resampled onto the pinhole camera; pixels nothing maps to are 0."""
        n = self.height * self.width
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"image {image.shape} does not match the reprojection's {self.height}x{self.width}")
        flat = image.reshape(n, -1)
        size = (n + 1) * flat.shape[1] * image.dtype.itemsize
        if self._scratch[0].size < size:
            self._scratch[0] = np.empty(size, dtype=np.uint8)
        padded = self._scratch[0][:size].view(image.dtype).reshape(n + 1, flat.shape[1])
        padded[:n] = flat
        padded[n] = 0
        return np.take(padded, self.gather, axis=0).reshape(image.shape)

    @cached_property
    def _scratch(self) -> list[np.ndarray]:
        """Bytes for the padded copy of the image being resampled, reused by the frame's images
        (fewer fresh pages per frame; so one Reprojection is not for concurrent use)."""
        return [np.empty(0, dtype=np.uint8)]


def _from_linear(linear: np.ndarray, height: int, width: int) -> Reprojection:
    """The reprojection from each source pixel's flat target index (H*W where it lands nowhere):
    a target pixel takes its source where exactly one lands on it (:func:`unique_hits`)."""
    pixels = height * width
    counts = np.bincount(linear, minlength=pixels + 1)
    last = np.empty(pixels + 1, dtype=np.intp)  # read only where exactly one source wrote it
    last[linear] = _indices(linear.size)
    gather = last[:pixels]
    gather[counts[:pixels] != 1] = pixels
    return Reprojection(gather=gather, height=height, width=width)


@lru_cache(maxsize=2)
def _indices(n: int) -> np.ndarray:
    """``arange(n)`` as intp, read-only, kept for the next frame of the same size."""
    out = np.arange(n, dtype=np.intp)
    out.setflags(write=False)
    return out


def reprojection(points: np.ndarray, intrinsics: Mapping[str, float], height: int, width: int) -> Reprojection:
    """The pinhole resampling of a frame whose camera points (3, H*W) are ``points``: the points
    alone on their pixel (:func:`unique_hits`, on flat pixel indices computed once)."""
    u, v, lands = project_to_pixels(points, intrinsics, height, width)
    linear = v.astype(np.intp)
    linear *= width
    linear += u
    linear[~lands] = height * width
    return _from_linear(linear, height, width)


# Pixels per step of pinhole_reprojection: of 8192 to 786432 (whole frame), 131072 was fastest in
# the benchmark's flow (a 1 MB float64 temporary; smaller blocks cost more in calls per block).
_BLOCK = 131072


def pinhole_reprojection(
    ray_columns: np.ndarray,
    distance_m: np.ndarray,
    intrinsics: Mapping[str, float],
    z_map: Callable[[np.ndarray], np.ndarray],
    block_pixels: int = _BLOCK,
) -> tuple[Reprojection, np.ndarray]:
    """:func:`reprojection` of the :func:`camera_points` of ``distance_m`` (H, W; NaN already
    replaced by 0), and ``z_map`` (an element-wise function, such as the depth encoding) of the
    points' z as an (H, W) array.

    The same float64 operations in the same order per point as those functions, done a block
    of pixels at a time into reused buffers: the (3, H*W) points and the full-size temporaries
    of the projection are never made. ``block_pixels``: pixels per step.
    """
    height, width = distance_m.shape
    n = height * width
    d16 = distance_m.reshape(-1)
    linear = np.empty(n, dtype=np.intp)
    mapped: np.ndarray | None = None
    fx, cx, fy, cy = intrinsics["fx"], intrinsics["cx"], intrinsics["fy"], intrinsics["cy"]
    d_buf, z_buf, a_buf = (np.empty(min(block_pixels, n)) for _ in range(3))
    p_buf = np.empty(min(block_pixels, n), dtype=np.int16)
    with np.errstate(divide="ignore", invalid="ignore"):  # z == 0: inf or NaN, masked out
        for s in range(0, n, block_pixels):
            e = min(s + block_pixels, n)
            d, z, a, p, lin = d_buf[: e - s], z_buf[: e - s], a_buf[: e - s], p_buf[: e - s], linear[s:e]
            np.copyto(d, d16[s:e])
            np.multiply(ray_columns[2, s:e], d, out=z)
            zm = z_map(z)
            if mapped is None:
                mapped = np.empty(n, dtype=zm.dtype)
            mapped[s:e] = zm
            np.multiply(ray_columns[1, s:e], d, out=a)
            _pixel_axis_into(a, z, fy, cy, height, p)
            np.copyto(lin, p)  # widened before the multiply, as in reprojection()
            lin *= width
            np.multiply(ray_columns[0, s:e], d, out=a)
            _pixel_axis_into(a, z, fx, cx, width, p)
            lin += p
            lin[z == 0] = n
    assert mapped is not None
    return _from_linear(linear, height, width), mapped.reshape(height, width)


def _pixel_axis_into(a: np.ndarray, z: np.ndarray, f: float, c: float, size: int, out: np.ndarray) -> None:
    """:func:`_pixel_axis` into the int16 ``out``, overwriting ``a``."""
    np.divide(a, z, out=a)
    a *= f
    a += c
    a *= size - 0.5
    np.copyto(out, a, casting="unsafe")
    np.clip(out, 0, size - 1, out=out)
