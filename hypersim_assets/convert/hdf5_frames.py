"""Reading one frame's upstream inputs from an unpacked scene folder: the six per-frame
HDF5 images the conversion uses, the camera pose of the frame, and the per-scene
``_detail`` files (``meters_per_asset_unit``, object-aligned 3D boxes).

A missing file raises ``FrameInputMissing``, an unreadable one ``FrameInputCorrupt``;
both name the scene, camera, frame and file. Per-scene files are cached per process
(keyed by path, size and modification time), so a worker reads them once per scene.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import deflate
import h5py
import numpy as np
import pandas as pd
from zlib_ng import zlib_ng

from hypersim_assets.common import layout


class FrameInputError(Exception):
    """A frame's input cannot be used; ``path`` is the file, relative to the scene's parent folder."""

    def __init__(self, scene: str, camera: str, frame_id: int, path: str, why: str) -> None:
        self.scene, self.camera, self.frame_id, self.path, self.why = scene, camera, frame_id, path, why
        super().__init__(f"{scene}/{camera}/{frame_id:04d}: {path}: {why}")


class FrameInputMissing(FrameInputError):
    """A file the frame needs does not exist."""


class FrameInputCorrupt(FrameInputError):
    """A file exists but is not readable HDF5/CSV, lacks its ``dataset``, or has the wrong shape."""


@dataclass(frozen=True)
class FrameImages:
    """One frame's upstream images, as stored (float16 colour/depth/normals, int16 ids)."""

    color: np.ndarray  # (H, W, 3) linear HDR
    render_entity_id: np.ndarray  # (H, W), -1 = no geometry
    depth_meters: np.ndarray  # (H, W) distance along the ray in metres, NaN = no geometry
    normal_bump_cam: np.ndarray  # (H, W, 3)
    semantic: np.ndarray  # (H, W) NYU40, -1 = void
    semantic_instance: np.ndarray  # (H, W), -1 = none


@dataclass(frozen=True)
class BoundingBoxes:
    """Object-aligned boxes per semantic instance id (row = id), asset units; NaN rows for ids without geometry."""

    extents: np.ndarray  # (N, 3)
    orientations: np.ndarray  # (N, 3, 3)
    positions: np.ndarray  # (N, 3)


def _path(scene_dir: Path, scene: str, member: str) -> Path:
    # Member names start with "<scene>/"; the scene folder stands for that part.
    prefix = scene + "/"
    if not member.startswith(prefix):
        raise ValueError(f"member {member!r} is not inside scene {scene}")
    return Path(scene_dir) / member[len(prefix) :]


def input_members(scene: str, camera: str, frame_id: int) -> list[str]:
    """Every zip member one frame's conversion reads (the readers below read exactly these)."""
    members = [layout.frame_member(scene, camera, frame_id, g, k) for g, k in layout.CONVERTED_FRAME_KINDS]
    members += [layout.scene_metadata_member(scene)]
    members += [layout.camera_keyframe_member(scene, camera, w) for w in ("positions", "orientations")]
    members += [layout.bounding_box_member(scene, k) for k in layout.BOUNDING_BOX_KINDS]
    return members


def input_files(scene_dir: Path, scene: str, camera: str, frame_id: int) -> list[Path]:
    """Every file one frame's conversion reads (absolute paths): :func:`input_members` below ``scene_dir``."""
    return [_path(scene_dir, scene, m) for m in input_members(scene, camera, frame_id)]


def _read_dataset(path: Path, scene: str, camera: str, frame_id: int) -> np.ndarray:
    """The whole array named ``dataset`` in ``path``. h5py's low-level ids, not its File and
    Dataset objects: their Python-side set-up costs about 0.3 ms per file, 2 ms of a frame."""
    rel = _rel(path, scene)
    if not path.is_file():
        raise FrameInputMissing(scene, camera, frame_id, rel, "file does not exist")
    try:
        fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY)
        try:
            try:
                dsid = h5py.h5d.open(fid, b"dataset")
            except KeyError:
                raise FrameInputCorrupt(scene, camera, frame_id, rel, "HDF5 file has no 'dataset'") from None
            try:
                return _read_whole(dsid, path)
            finally:
                dsid.close()
        finally:
            fid.close()
    except FrameInputError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise FrameInputCorrupt(scene, camera, frame_id, rel, f"unreadable HDF5: {exc}") from exc


def _read_whole(dsid: h5py.h5d.DatasetID, path: Path) -> np.ndarray:
    """The whole dataset ``dsid`` of the file ``path``; gzip-only chunked datasets (as upstream
    writes them: no shuffle, no other filter) are read as raw chunks and inflated with
    libdeflate (zlib-ng for the most compressible, see :func:`_inflate`), several times faster
    than HDF5's own zlib, to the same bytes. Anything else is left to h5py."""
    dcpl = dsid.get_create_plist()
    shape, dtype = dsid.shape, dsid.dtype
    if (
        dcpl.get_layout() != h5py.h5d.CHUNKED
        or dtype.hasobject
        or 0 in shape
        or [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())] != [h5py.h5z.FILTER_DEFLATE]
    ):
        return h5py.Dataset(dsid)[()]
    chunks = tuple(dcpl.get_chunk())
    infos = _chunk_infos(dsid)
    if any(info.filter_mask != 0 for info in infos):
        return h5py.Dataset(dsid)[()]
    grid = tuple(-(-size // c) for size, c in zip(shape, chunks))
    infos.sort(key=lambda info: tuple(info.chunk_offset))
    if [tuple(info.chunk_offset) for info in infos] != _chunk_offsets(grid, chunks):
        # Not exactly one stored chunk per grid cell (unallocated ones hold the fill value):
        # let HDF5 sort it out.
        return h5py.Dataset(dsid)[()]
    # The chunks' bytes are sliced from one read of the file at the offsets chunk_iter lists:
    # asking HDF5 for each chunk (read_direct_chunk) costs an index look-up per chunk, about
    # 4 ms of a frame's 640 chunks. Each row of chunks (all chunks sharing the first axis'
    # grid index) is inflated into one reused buffer, then put in place by one strided copy
    # per chunk column of the last axis: per-chunk numpy assignments cost more in call
    # overhead than in copying, and the small buffer stays in cache.
    with open(path, "rb") as fh:
        stored = fh.read()
    chunk_bytes = dtype.itemsize * int(np.prod(chunks))
    full = np.empty(tuple(g * c for g, c in zip(grid, chunks)), dtype=dtype)
    row = np.empty(grid[1:] + chunks, dtype=dtype)
    row_bytes = memoryview(row.reshape(-1).view(np.uint8))
    per_row = len(infos) // grid[0]
    for r in range(grid[0]):
        for j, info in enumerate(infos[r * per_row : (r + 1) * per_row]):
            data = _inflate(stored[info.byte_offset : info.byte_offset + info.size], chunk_bytes, info.chunk_offset)
            row_bytes[j * chunk_bytes : (j + 1) * chunk_bytes] = data
        _place_chunk_row(full[r * chunks[0] : (r + 1) * chunks[0]], row, grid, chunks)
    if full.shape == shape:
        return full
    return np.ascontiguousarray(full[tuple(slice(0, size) for size in shape)])


# Chunks that inflate to this many times their stored size or more (mostly runs of one
# value: label images, the sky's NaN) inflate several times faster with zlib-ng, whose copies
# of short-distance matches are vectorised; below it libdeflate is faster (measured on the
# synthetic mirror's 24 kB chunks: at ratio 512+ 5 us vs 40 us, at ratio 2-4 46 us vs 34 us).
_ZLIB_NG_MIN_RATIO = 32


def _inflate(raw: bytes, chunk_bytes: int, where: tuple[int, ...]) -> bytes:
    """One zlib-wrapped chunk inflated, which must give exactly ``chunk_bytes``; ValueError if not.

    Any correct inflater gives the same bytes; the faster one for the chunk's ratio is used.
    ``raw`` as bytes: inflates faster than a memoryview.
    """
    try:
        if len(raw) * _ZLIB_NG_MIN_RATIO <= chunk_bytes:
            # Unbounded output, but deflate expands at most 1032-fold: at most ~32 chunks' worth.
            data = zlib_ng.decompress(raw, bufsize=chunk_bytes)
        else:
            data = deflate.zlib_decompress(raw, chunk_bytes)  # raises if the output would exceed chunk_bytes
    except (deflate.DeflateError, zlib_ng.error) as exc:
        raise ValueError(f"chunk at {tuple(where)} does not inflate to {chunk_bytes} bytes: {exc}") from exc
    if len(data) != chunk_bytes:
        raise ValueError(f"chunk at {tuple(where)} inflates to {len(data)} bytes, expected {chunk_bytes}")
    return data


@lru_cache(maxsize=8)
def _chunk_offsets(grid: tuple[int, ...], chunks: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every chunk's offset (element coordinates of its first element) in row-major grid order
    (cached: a frame's files share a few layouts; callers must not modify the list)."""
    return [tuple(i * c for i, c in zip(cell, chunks)) for cell in np.ndindex(*grid)]


def _place_chunk_row(dst: np.ndarray, row: np.ndarray, grid: tuple[int, ...], chunks: tuple[int, ...]) -> None:
    """Copy one row of chunks, ``row`` (grid axes but the first, then chunk axes), into ``dst``
    (that row's slab of the whole array: ``chunks[0]`` by grid * chunk along each further axis).

    Both sides are viewed as (c0, g1, c1, g2, c2, ...). Where the last axis is split into
    several chunks (upstream's colour and normals: one chunk per channel), the copy is done per
    chunk column of that axis, so numpy's innermost loop runs along a chunk row rather than
    across the few channels of one pixel.
    """
    k = len(grid)
    dst = dst.reshape((chunks[0],) + tuple(x for gc in zip(grid[1:], chunks[1:]) for x in gc))
    src = row.transpose((k - 1,) + tuple(x for i in range(1, k) for x in (i - 1, k - 1 + i)))
    if k == 1 or grid[-1] == 1:
        np.copyto(dst, src)
        return
    for i in range(grid[-1]):
        np.copyto(dst[..., i, :], src[..., i, :])


def _chunk_infos(dsid: h5py.h5d.DatasetID) -> list:
    """The ``StoreInfo`` (chunk offset, filter mask, byte offset and size in the file) of each of
    a dataset's stored chunks (``chunk_iter`` where HDF5 has it)."""
    infos: list = []
    try:
        dsid.chunk_iter(infos.append)
    except (AttributeError, NotImplementedError):  # HDF5 before 1.12.3 / 1.10.10
        infos = [dsid.get_chunk_info(i) for i in range(dsid.get_num_chunks())]
    return infos


def _rel(path: Path, scene: str) -> str:
    parts = Path(path).parts
    if scene in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index(scene) :])
    return str(path)


def _check_shape(a: np.ndarray, shape: tuple[int, ...], scene: str, camera: str, frame_id: int, path: Path) -> None:
    if a.shape != shape:
        raise FrameInputCorrupt(scene, camera, frame_id, _rel(path, scene), f"shape {a.shape}, expected {shape}")


def read_frame_images(scene_dir: Path, scene: str, camera: str, frame_id: int) -> FrameImages:
    """The six per-frame images; all must exist and share one (H, W)."""
    arrays = {}
    for group, kind in layout.CONVERTED_FRAME_KINDS:
        path = _path(scene_dir, scene, layout.frame_member(scene, camera, frame_id, group, kind))
        arrays[kind] = (_read_dataset(path, scene, camera, frame_id), path)
    color, cpath = arrays["color"]
    if color.ndim != 3 or color.shape[2] != 3:
        raise FrameInputCorrupt(scene, camera, frame_id, _rel(cpath, scene), f"shape {color.shape}, expected (H, W, 3)")
    hw = color.shape[:2]
    for kind in ("render_entity_id", "depth_meters", "semantic", "semantic_instance"):
        _check_shape(arrays[kind][0], hw, scene, camera, frame_id, arrays[kind][1])
    _check_shape(arrays["normal_bump_cam"][0], (*hw, 3), scene, camera, frame_id, arrays["normal_bump_cam"][1])
    return FrameImages(**{k: v[0] for k, v in arrays.items()})


def _stamp(path: Path) -> tuple[str, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=8)
def _meters_per_asset_unit(stamp: tuple[str, int, int]) -> float:
    # pandas parses the value as the reference does (first row's parameter_value).
    return float(pd.read_csv(stamp[0])["parameter_value"][0])


def read_meters_per_asset_unit(scene_dir: Path, scene: str, camera: str = "-", frame_id: int = -1) -> float:
    """``meters_per_asset_unit`` from ``_detail/metadata_scene.csv`` (its first row's ``parameter_value``)."""
    path = _path(scene_dir, scene, layout.scene_metadata_member(scene))
    stamp = _stamp(path)
    if stamp is None:
        raise FrameInputMissing(scene, camera, frame_id, _rel(path, scene), "file does not exist")
    try:
        value = _meters_per_asset_unit(stamp)
    except (
        ValueError,
        KeyError,
        IndexError,
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
    ) as exc:
        raise FrameInputCorrupt(
            scene, camera, frame_id, _rel(path, scene), f"no usable meters_per_asset_unit: {exc}"
        ) from exc
    if not np.isfinite(value) or value <= 0:
        raise FrameInputCorrupt(scene, camera, frame_id, _rel(path, scene), f"meters_per_asset_unit is {value}")
    return value


def _cached_dataset(path: Path, scene: str, camera: str, frame_id: int) -> np.ndarray:
    """The whole per-scene or per-trajectory dataset in ``path``, read once per process while the
    file is unchanged; errors name the frame that needed it."""
    stamp = _stamp(path)
    if stamp is None:
        raise FrameInputMissing(scene, camera, frame_id, _rel(path, scene), "file does not exist")
    try:
        return _whole_dataset(stamp, scene)
    except FrameInputError as exc:
        raise type(exc)(scene, camera, frame_id, exc.path, exc.why) from exc


# The module's one cache idiom: lru_cache keyed by the file's (path, size, mtime_ns) stamp, so a
# changed file is read again; exceptions are never cached. Arrays are returned read-only.
@lru_cache(maxsize=16)
def _whole_dataset(stamp: tuple[str, int, int], scene: str) -> np.ndarray:
    data = _read_dataset(Path(stamp[0]), scene, "-", 0)
    data.setflags(write=False)
    return data


def _cached_rows(path: Path, scene: str, camera: str, frame_id: int, shape: tuple[int, ...]) -> np.ndarray:
    """The whole per-scene or per-trajectory dataset in ``path``, checked to be ``(N, *shape)``."""
    data = _cached_dataset(path, scene, camera, frame_id)
    if data.ndim != len(shape) + 1 or data.shape[1:] != shape:
        raise FrameInputCorrupt(
            scene,
            camera,
            frame_id,
            _rel(path, scene),
            f"shape {data.shape}, expected (N, {', '.join(map(str, shape))})",
        )
    return data


def read_camera_pose(scene_dir: Path, scene: str, camera: str, frame_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(position (3,) in asset units, orientation (3, 3) camera-to-world) of the frame: row ``frame_id`` of the keyframe files."""
    out = []
    for what, shape in (("positions", (3,)), ("orientations", (3, 3))):
        path = _path(scene_dir, scene, layout.camera_keyframe_member(scene, camera, what))
        data = _cached_rows(path, scene, camera, frame_id, shape)
        if not (0 <= frame_id < data.shape[0]):
            raise FrameInputCorrupt(
                scene, camera, frame_id, _rel(path, scene), f"has {data.shape[0]} rows, frame needs row {frame_id}"
            )
        out.append(np.array(data[frame_id], dtype=np.float64))
    return out[0], out[1]


def read_bounding_boxes(scene_dir: Path, scene: str, camera: str = "-", frame_id: int = -1) -> BoundingBoxes:
    """The scene's object-aligned boxes (asset units), rows indexed by semantic instance id."""
    arrays = {}
    for kind, shape in (("extents", (3,)), ("orientations", (3, 3)), ("positions", (3,))):
        path = _path(scene_dir, scene, layout.bounding_box_member(scene, kind))
        data = _cached_rows(path, scene, camera, frame_id, shape)
        arrays[kind] = data
    return BoundingBoxes(**arrays)
