"""Converting one Hypersim frame into every per-frame file of the reference converter's
output layout, and reporting the frame's facts.

Outputs (paths from ``layout``): rgb, depth, normal, semantic_40 and instance PNGs;
extrinsics, boxes_3d and orientations JSON; the scene class text; and the trajectory's
rgb/depth intrinsics JSON (rewritten only when their content differs). Pixels and JSON
numbers equal the reference's; JSON is written with ``indent=4`` like the reference.

Every file is written atomically (temp file in the same folder, then ``os.replace``).
After all of a frame's files, a done-marker ``<dataset>/.conversion/<scene>/<cam>/<NNNN>.json``
records the converter version, the settings, the size of each output and the size and
modification time of each input. With ``skip_existing``, a frame is skipped (and its facts
taken from the marker) when the marker matches the current version and settings, every
output exists with its recorded size, and no input that is present has changed; inputs
that are absent (raw files deleted after conversion) do not force a re-run.

Why past 400 lines: this is the one place where a frame's whole path (read, convert,
encode, skip, write, facts) is put together, and its parts share the frame's records
(``FrameFacts``, ``ConvertedFrame``); the steps themselves live in their own modules.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hypersim_assets.common.atomic_files import write_bytes_atomic
from hypersim_assets.common.frame_facts import STATUS_CONVERTED, STATUS_FAILED, STATUS_INPUT_MISSING
from hypersim_assets.common.layout import frame_output_paths, intrinsics_output_paths, split_dir_name
from hypersim_assets.convert import depth as depth_mod
from hypersim_assets.convert import labels, normals, poses, reprojection, tonemapping
from hypersim_assets.convert.float16_tables import FLOAT16_INF_MAGNITUDE, float16_magnitude
from hypersim_assets.convert.hdf5_frames import (
    FrameInputCorrupt,
    FrameInputMissing,
    input_files,
    read_bounding_boxes,
    read_camera_pose,
    read_frame_images,
    read_meters_per_asset_unit,
)
from hypersim_assets.convert.png_writer import PngCompression, encode_png

# Bump on any change that changes output bytes or facts; Dagster uses it as the code version.
CONVERTER_VERSION = "2"

STATE_DIR = ".conversion"  # below the dataset folder: per-frame done-markers

# Exceptions that mean "this frame's input is bad" (the frame becomes ``failed`` with the
# reason, its scene stays incomplete); anything else fails the whole scene.
BAD_INPUT_ERRORS: tuple[type[Exception], ...] = (FrameInputCorrupt, labels.LabelError)


@dataclass(frozen=True)
class ConversionSettings:
    """How frames are converted.

    ``tilt_shift``: reproject onto a pinhole camera (the reference's default); False gives the
    reference's older ``--no-tilt-shift-conversion`` output. ``png_compression``: see
    ``PngCompression``. ``skip_existing``: skip frames whose done-marker matches (module doc).
    ``fsync``: flush each file to disk before renaming it into place (power-loss safety).
    """

    tilt_shift: bool = True
    png_compression: PngCompression | str = PngCompression.DEFAULT
    skip_existing: bool = True
    fsync: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "png_compression", PngCompression.parse(self.png_compression))

    def output_key(self) -> dict[str, Any]:
        """The settings that change output bytes."""
        return {
            "tilt_shift": bool(self.tilt_shift),
            "png_compression": PngCompression.parse(self.png_compression).value,
        }


@dataclass
class FrameFacts:
    """One frame's facts: the columns of ``frame_facts.FACTS_SCHEMA`` plus ``split`` and ``skipped``."""

    scene: str
    camera: str
    frame_id: int
    status: str
    reason: str | None = None
    rotation_valid: bool | None = None
    nan_pixels: int | None = None
    depth_inf_pixels: int | None = None
    depth_negative_pixels: int | None = None
    void_fraction: float | None = None
    depth_min_mm: int | None = None
    depth_max_mm: int | None = None
    depth_mean_mm: float | None = None
    instance_count: int | None = None
    classes_present: list[int] | None = None
    output_bytes: int | None = None
    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None
    x: float | None = None
    y: float | None = None
    z: float | None = None
    quat_x: float | None = None
    quat_y: float | None = None
    quat_z: float | None = None
    quat_w: float | None = None
    converter_version: str = CONVERTER_VERSION
    tilt_shift: bool | None = None  # the settings its files were written with (None: not converted)
    png_compression: str | None = None
    split: str | None = None
    skipped: bool = False


@dataclass
class ConvertedFrame:
    """A frame converted in memory: the images as written and the JSON documents."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth_mm: np.ndarray  # (H, W) uint16
    normal: np.ndarray  # (H, W, 3) uint8
    semantic: np.ndarray  # (H, W) uint8
    instance: np.ndarray  # (H, W, 3) uint8
    extrinsics: dict[str, float]
    intrinsics: dict[str, float]  # depth intrinsics (with a, b)
    boxes: dict[int, dict[str, list]]
    orientations: dict[int, float]
    rotation_valid: bool
    nan_pixels: int
    depth_inf_pixels: int = 0  # upstream distance +inf or -inf (the reference writes 0 mm or a wrapped value)
    depth_negative_pixels: int = 0  # upstream distance finite and < 0 (the reference's uint16 cast wraps it)
    timings: dict[str, float] = field(default_factory=dict)  # per stage, CPU seconds of this process
    instance_ids_present: np.ndarray | None = None  # distinct instance ids of ``instance`` (0 = none), ascending


_RAY_CACHE: dict[tuple, np.ndarray] = {}


def _unit_rays(M: np.ndarray, h: int, w: int) -> np.ndarray:
    key = (M.tobytes(), h, w)
    rays = _RAY_CACHE.get(key)
    if rays is None:
        if len(_RAY_CACHE) >= 4:
            _RAY_CACHE.pop(next(iter(_RAY_CACHE)))
        rays = _RAY_CACHE[key] = reprojection.flipped_ray_columns(reprojection.unit_rays(M, h, w))
    return rays


def _isnan(a: np.ndarray) -> np.ndarray:
    return depth_mod.float16_nan_mask(a) if a.dtype == np.float16 else np.isnan(a)


def _nan_pixels(distance_m: np.ndarray, normal: np.ndarray) -> int:
    """Pixels whose distance or any normal component is NaN."""
    if distance_m.dtype == np.float16 and normal.dtype == np.float16:
        # A float16 is NaN iff its magnitude bits exceed inf's, so a pixel holds a NaN iff the
        # largest magnitude of its four values does: one mask instead of four, and no bool ORs.
        magnitude = float16_magnitude(normal)
        worst = np.maximum(magnitude[..., 0], magnitude[..., 1])
        np.maximum(worst, magnitude[..., 2], out=worst)
        np.maximum(worst, float16_magnitude(distance_m), out=worst)
        return int(np.count_nonzero(worst > FLOAT16_INF_MAGNITUDE))
    n = _isnan(normal)
    return int(np.count_nonzero(_isnan(distance_m) | n[..., 0] | n[..., 1] | n[..., 2]))


def _depth_anomalies(distance_m: np.ndarray) -> tuple[int, int]:
    """(pixels whose distance is +-inf, pixels whose distance is finite and negative).

    Counted only: the pixels are written exactly as the reference writes them.
    """
    if distance_m.dtype == np.float16:
        bits = np.ascontiguousarray(distance_m).view(np.uint16)
        inf = int(np.count_nonzero(float16_magnitude(distance_m) == FLOAT16_INF_MAGNITUDE))
        # Finite and negative (not -0): sign set and magnitude in (0, 0x7C00), i.e. bits in
        # [0x8001, 0xFBFF]; shifted down by 0x8001 with uint16 wrap-around, below 0x7BFF.
        negative = int(np.count_nonzero(np.subtract(bits, np.uint16(0x8001)) < 0x7BFF))
        return inf, negative
    inf = int(np.count_nonzero(np.isinf(distance_m)))
    return inf, int(np.count_nonzero(np.isfinite(distance_m) & (distance_m < 0)))


def convert_arrays(
    scene_dir: Path, scene: str, camera: str, frame_id: int, camera_params: Mapping[str, float], tilt_shift: bool
) -> ConvertedFrame:
    """Read one frame's inputs and convert them in memory (no output written).

    Raises FrameInputMissing / FrameInputCorrupt for unusable input, LabelError where the
    reference would fail on the labels (all in :data:`BAD_INPUT_ERRORS`).
    """
    t: dict[str, float] = {}
    t0 = time.process_time()
    # Per-frame images first: a frame without rendered files (upstream issue 7) is "missing".
    img = read_frame_images(scene_dir, scene, camera, frame_id)
    mpau = read_meters_per_asset_unit(scene_dir, scene, camera, frame_id)
    position, orientation = read_camera_pose(scene_dir, scene, camera, frame_id)
    box_files = read_bounding_boxes(scene_dir, scene, camera, frame_id)
    t1 = time.process_time()
    t["read"] = t1 - t0

    extr = poses.extrinsics(position, orientation, mpau)
    rotation_valid = poses.is_valid_rotation(orientation)
    if np.any(img.render_entity_id == 0):
        raise labels.LabelError("render_entity_id holds 0, which upstream never uses")
    rgb = tonemapping.tonemap(img.color, img.render_entity_id)
    t2 = time.process_time()
    t["tonemap"] = t2 - t1
    normal = normals.encode_normals(img.normal_bump_cam)
    semantic = labels.semantic_labels(img.semantic)
    ids = labels.instance_ids(img.semantic_instance)
    distance, _ = depth_mod.distance_without_nan(img.depth_meters)
    nan_pixels = _nan_pixels(img.depth_meters, img.normal_bump_cam)
    depth_inf, depth_negative = _depth_anomalies(img.depth_meters)
    t3 = time.process_time()
    t["labels_normals"] = t3 - t2

    h, w = semantic.shape
    if tilt_shift:
        ph, pw = reprojection.image_size(camera_params)
        if (ph, pw) != (h, w):
            raise FrameInputCorrupt(
                scene, camera, frame_id, f"{scene}/images", f"images are {h}x{w} but camera parameters say {ph}x{pw}"
            )
        M = reprojection.m_cam_from_uv(camera_params)
        intr = reprojection.pinhole_intrinsics(M)
        rep, depth_mm = reprojection.pinhole_reprojection(
            _unit_rays(M, h, w), distance, intr, depth_mod.depth_mm_from_z
        )
        # The ids, not the instance image, are resampled: a pixel map commutes with building the
        # image per pixel (a zero pixel's image is zero), and the ids are needed for the boxes.
        rgb, depth_mm, normal, semantic, ids = (rep.apply(a) for a in (rgb, depth_mm, normal, semantic, ids))
    else:
        intr = reprojection.legacy_intrinsics()
        depth_mm = depth_mod.legacy_depth_mm(img.depth_meters)
    t4 = time.process_time()
    t["geometry"] = t4 - t3

    instance = labels.instance_image(semantic, ids)
    ids_present = labels.values_present(ids)
    try:
        boxes = poses.boxes_3d(ids_present, box_files.extents, box_files.orientations, box_files.positions, mpau)
    except IndexError as exc:  # an instance id without a box row: the input, not our code, is wrong
        raise FrameInputCorrupt(scene, camera, frame_id, f"{scene}/_detail/mesh", str(exc)) from exc
    orient = poses.box_orientations(boxes, [extr[k] for k in ("quat_x", "quat_y", "quat_z", "quat_w")])
    t["boxes"] = time.process_time() - t4
    return ConvertedFrame(
        rgb,
        depth_mm,
        normal,
        semantic,
        instance,
        extr,
        intr,
        boxes,
        orient,
        rotation_valid,
        nan_pixels,
        depth_inf,
        depth_negative,
        t,
        ids_present,
    )


def json_text(obj: Any) -> str:
    """JSON as the reference writes it: ``json.dump(obj, f, indent=4)`` (no trailing newline)."""
    return json.dumps(obj, indent=4)


def encode_outputs(frame: ConvertedFrame, scene_class: str, compression: PngCompression | str) -> dict[str, bytes]:
    """Every per-frame file's bytes, keyed by modality (``layout.frame_output_paths`` keys)."""
    return {
        "rgb": encode_png(frame.rgb, compression, "photo"),
        "depth": encode_png(frame.depth_mm, compression, "depth"),
        "normal": encode_png(frame.normal, compression, "normal"),
        "semantic_40": encode_png(frame.semantic, compression, "label"),
        "instance": encode_png(frame.instance, compression, "label_rgb"),
        "extrinsics": json_text(frame.extrinsics).encode(),
        "boxes_3d": json_text(frame.boxes).encode(),
        "orientations": json_text(frame.orientations).encode(),
        "scene_class": (scene_class + "\n").encode(),
    }


def marker_path(dataset_root: Path, scene: str, camera: str, frame_id: int) -> Path:
    """The frame's done-marker."""
    return Path(dataset_root) / STATE_DIR / scene / camera / f"{frame_id:04d}.json"


def _input_stamps(scene_dir: Path, scene: str, camera: str, frame_id: int) -> dict[str, list[int] | None]:
    out: dict[str, list[int] | None] = {}
    for p in input_files(scene_dir, scene, camera, frame_id):
        try:
            st = os.stat(p)
            out[str(p.relative_to(scene_dir))] = [st.st_size, st.st_mtime_ns]
        except FileNotFoundError:
            out[str(p.relative_to(scene_dir))] = None
    return out


def _skip_facts(
    dataset_root: Path,
    scene_dir: Path,
    scene: str,
    camera: str,
    frame_id: int,
    split: str,
    settings: ConversionSettings,
) -> FrameFacts | None:
    path = marker_path(dataset_root, scene, camera, frame_id)
    try:
        marker = json.loads(path.read_text())
    except (FileNotFoundError, ValueError, OSError):
        return None
    if (
        marker.get("converter_version") != CONVERTER_VERSION
        or marker.get("settings") != settings.output_key()
        or marker.get("split") != split
    ):
        return None
    for rel, size in marker.get("outputs", {}).items():
        try:
            if os.stat(Path(dataset_root) / rel).st_size != size:
                return None
        except FileNotFoundError:
            return None
    now = _input_stamps(scene_dir, scene, camera, frame_id)
    for rel, stamp in marker.get("inputs", {}).items():
        if now.get(rel) is not None and now.get(rel) != stamp:
            return None
    try:
        facts = FrameFacts(**marker["facts"])
    except (KeyError, TypeError):
        return None
    facts.skipped = True
    _record_settings(facts, settings)  # markers written before the facts carried them
    return facts


def _record_settings(facts: FrameFacts, settings: ConversionSettings) -> None:
    """Put the settings that shaped the frame's files (``output_key``) into its facts."""
    key = settings.output_key()
    facts.tilt_shift, facts.png_compression = key["tilt_shift"], key["png_compression"]


def _write_if_changed(data: bytes, path: Path, fsync: bool) -> None:
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    write_bytes_atomic(data, path, fsync=fsync)


def frame_facts_of(frame: ConvertedFrame, base: FrameFacts, output_bytes: int) -> FrameFacts:
    """Fill ``base`` with the facts of a converted frame."""
    # Counting and reducing passes instead of sorts and masked copies, with the same numbers: the
    # depth mean is the exact integer sum over the count, as numpy's float64 sum of uint16 values
    # is (exact below 2**53 / 65535 pixels), then divided the same correctly rounded way; the
    # smallest non-zero depth is the minimum of depth - 1 with 0 wrapped round to 65535, plus 1.
    ids = frame.instance_ids_present
    if ids is None:
        ids = labels.values_present(labels.instance_ids_of_image(frame.instance))
    class_counts = np.bincount(frame.semantic.ravel(), minlength=1)
    depth = frame.depth_mm.ravel()
    valid = int(np.count_nonzero(depth))
    base.status = STATUS_CONVERTED
    base.rotation_valid = frame.rotation_valid
    base.nan_pixels = frame.nan_pixels
    base.depth_inf_pixels = frame.depth_inf_pixels
    base.depth_negative_pixels = frame.depth_negative_pixels
    base.void_fraction = float(int(class_counts[0]) / frame.semantic.size)
    base.depth_min_mm = int(np.subtract(depth, np.uint16(1)).min()) + 1 if valid else None
    base.depth_max_mm = int(depth.max()) if valid else None
    base.depth_mean_mm = int(depth.sum(dtype=np.uint64)) / valid if valid else None
    base.instance_count = int(np.count_nonzero(ids))
    base.classes_present = [int(c) for c in np.flatnonzero(class_counts) if c != 0]
    base.output_bytes = int(output_bytes)
    for k in ("fx", "fy", "cx", "cy"):
        setattr(base, k, float(frame.intrinsics[k]))
    for k in poses.EXTRINSICS_KEYS:
        setattr(base, k, float(frame.extrinsics[k]))
    return base


def convert_frame(
    scene_dir: Path,
    scene: str,
    camera: str,
    frame_id: int,
    split: str,
    scene_class: str,
    camera_params: Mapping[str, float],
    dataset_root: Path,
    settings: ConversionSettings = ConversionSettings(),
    on_converted: Callable[[ConvertedFrame], None] | None = None,
) -> FrameFacts:
    """Convert one frame and write its files under ``dataset_root``; returns its facts.

    ``split`` is the upstream partition name (``train``/``val``/``test``). Missing input gives
    status ``input_missing``, unreadable or unusable input (:data:`BAD_INPUT_ERRORS`) ``failed``;
    in both cases nothing is written and nothing already there is removed. Every other
    exception propagates. ``on_converted`` is called with the frame's arrays (as written)
    after its files and done-marker are in place; not for a skipped or unconverted frame.
    """
    scene_dir, dataset_root = Path(scene_dir), Path(dataset_root)
    frame_id = int(frame_id)
    facts = FrameFacts(scene=scene, camera=camera, frame_id=frame_id, status=STATUS_FAILED, split=split)
    split_dir = split_dir_name(split)
    if settings.skip_existing:
        skipped = _skip_facts(dataset_root, scene_dir, scene, camera, frame_id, split, settings)
        if skipped is not None:
            return skipped
    try:
        frame = convert_arrays(scene_dir, scene, camera, frame_id, camera_params, settings.tilt_shift)
        files = encode_outputs(frame, scene_class, settings.png_compression)
    except FrameInputMissing as exc:
        facts.status, facts.reason = STATUS_INPUT_MISSING, str(exc)
        return facts
    except BAD_INPUT_ERRORS as exc:
        # One unusable frame must not stop its scene; the reason lands in the facts and the
        # scene stays incomplete (retried next run). Any other exception is our bug or the
        # machine's (MemoryError, a full disk) and propagates with its traceback.
        facts.reason = f"{type(exc).__name__}: {exc}"
        return facts

    rels = frame_output_paths(split_dir, scene, camera, frame_id)
    total = 0
    for modality, data in files.items():
        total += write_bytes_atomic(data, dataset_root / rels[modality], fsync=settings.fsync)
    intr_rels = intrinsics_output_paths(split_dir, scene, camera)
    _write_if_changed(
        json_text(reprojection.rgb_intrinsics(frame.intrinsics)).encode(),
        dataset_root / intr_rels["rgb_intrinsics"],
        settings.fsync,
    )
    _write_if_changed(
        json_text(frame.intrinsics).encode(), dataset_root / intr_rels["depth_intrinsics"], settings.fsync
    )

    frame_facts_of(frame, facts, total)
    _record_settings(facts, settings)
    marker = {
        "converter_version": CONVERTER_VERSION,
        "settings": settings.output_key(),
        "split": split,
        "outputs": {rels[m]: len(d) for m, d in files.items()},
        "inputs": _input_stamps(scene_dir, scene, camera, frame_id),
        "facts": dataclasses.asdict(facts),
    }
    write_bytes_atomic(
        json.dumps(marker).encode(), marker_path(dataset_root, scene, camera, frame_id), fsync=settings.fsync
    )
    if on_converted is not None:
        on_converted(frame)
    return facts
