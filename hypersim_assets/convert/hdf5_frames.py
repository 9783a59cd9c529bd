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


def _read_dataset(path: Path, scene: str, camera: str, frame_id: int, row: int | None = None) -> np.ndarray:
    rel = _rel(path, scene)
    if not path.is_file():
        raise FrameInputMissing(scene, camera, frame_id, rel, "file does not exist")
    try:
        with h5py.File(path, "r") as f:
            if "dataset" not in f:
                raise FrameInputCorrupt(scene, camera, frame_id, rel, "HDF5 file has no 'dataset'")
            ds = f["dataset"]
            if row is None:
                return _read_whole(ds)
            if not (0 <= row < ds.shape[0]):
                raise FrameInputCorrupt(scene, camera, frame_id, rel, f"has {ds.shape[0]} rows, frame needs row {row}")
            return ds[row]
    except FrameInputError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise FrameInputCorrupt(scene, camera, frame_id, rel, f"unreadable HDF5: {exc}") from exc


def _read_whole(ds: h5py.Dataset) -> np.ndarray:
    """The whole dataset; gzip-only chunked datasets (as upstream writes them: no shuffle, no
    other filter) are read as raw chunks and inflated with libdeflate, several times faster than
    HDF5's own zlib, to the same bytes. Anything else is left to h5py."""
    chunks = ds.chunks
    if chunks is None or set(ds._filters) != {"gzip"} or ds.dtype.hasobject or ds.size == 0:
        return ds[()]
    dsid = ds.id
    n = dsid.get_num_chunks()
    expected = 1
    for size, c in zip(ds.shape, chunks):
        expected *= -(-size // c)
    if n != expected:  # unallocated chunks hold the fill value: let HDF5 handle that
        return ds[()]
    infos = _chunk_infos(dsid, n)
    if any(info.filter_mask != 0 for info in infos):
        return ds[()]
    grid = tuple(-(-size // c) for size, c in zip(ds.shape, chunks))
    # Inflate each chunk straight into its place in a buffer of whole chunks (edge chunks are
    # stored whole, so it may be larger than the image). The chunks' bytes are sliced from one
    # read of the file at the offsets chunk_iter lists: asking HDF5 for each chunk
    # (read_direct_chunk) costs an index look-up per chunk, about 4 ms of a frame's 640 chunks.
    with open(ds.file.filename, "rb") as fh:
        stored = fh.read()
    dtype = ds.dtype
    full = np.empty(tuple(g * c for g, c in zip(grid, chunks)), dtype=dtype)
    chunk_bytes = full.itemsize * int(np.prod(chunks))
    for info in infos:
        offset = tuple(info.chunk_offset)
        raw = stored[info.byte_offset : info.byte_offset + info.size]  # bytes: inflates faster than a memoryview
        try:
            data = deflate.zlib_decompress(raw, chunk_bytes)  # raises if the output would exceed chunk_bytes
        except deflate.DeflateError as exc:
            raise ValueError(f"chunk at {offset} does not inflate to {chunk_bytes} bytes: {exc}") from exc
        if len(data) != chunk_bytes:
            raise ValueError(f"chunk at {offset} inflates to {len(data)} bytes, expected {chunk_bytes}")
        full[tuple(slice(o, o + c) for o, c in zip(offset, chunks))] = np.frombuffer(data, dtype).reshape(chunks)
    if full.shape == ds.shape:
        return full
    return np.ascontiguousarray(full[tuple(slice(0, size) for size in ds.shape)])


def _chunk_infos(dsid: h5py.h5d.DatasetID, n: int) -> list:
    """The ``StoreInfo`` (chunk offset, filter mask, byte offset and size in the file) of a
    dataset's ``n`` stored chunks (``chunk_iter`` where HDF5 has it)."""
    infos: list = []
    try:
        dsid.chunk_iter(infos.append)
    except (AttributeError, NotImplementedError):  # HDF5 before 1.12.3 / 1.10.10
        infos = [dsid.get_chunk_info(i) for i in range(n)]
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
