"""Names of things on disk: the upstream Hypersim scene layout, which members a
conversion reads, and where our raw and converted files live under the data root.

Every path here is relative and uses forward slashes, as zip member names do.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The three metadata files every source holds at its top level.
SPLIT_CSV = "metadata_images_split_scene_v1.csv"
TRAJECTORIES_CSV = "metadata_camera_trajectories.csv"
CAMERA_PARAMETERS_CSV = "metadata_camera_parameters.csv"
METADATA_FILES: tuple[str, ...] = (SPLIT_CSV, TRAJECTORIES_CSV, CAMERA_PARAMETERS_CSV)

# Per-frame HDF5 kinds, exactly as upstream names them.
FINAL_KINDS: tuple[str, ...] = ("color", "diffuse_illumination", "diffuse_reflectance", "residual")
GEOMETRY_KINDS: tuple[str, ...] = (
    "depth_meters",
    "position",
    "normal_cam",
    "normal_world",
    "normal_bump_cam",
    "normal_bump_world",
    "tex_coord",
    "render_entity_id",
    "semantic",
    "semantic_instance",
)
# What a conversion reads per frame: (image group, kind).
CONVERTED_FRAME_KINDS: tuple[tuple[str, str], ...] = (
    ("final", "color"),
    ("geometry", "depth_meters"),
    ("geometry", "normal_bump_cam"),
    ("geometry", "render_entity_id"),
    ("geometry", "semantic"),
    ("geometry", "semantic_instance"),
)

BOUNDING_BOX_KINDS: tuple[str, ...] = ("extents", "orientations", "positions")

SCENE_NAME_RE = re.compile(r"^ai_\d{3}_\d{3}$", re.ASCII)
CAMERA_NAME_RE = re.compile(r"^cam_\d{2}$")


def frame_member(scene: str, camera: str, frame_id: int, group: str, kind: str) -> str:
    """Zip member (and raw-file) path of one frame's HDF5 file.

    ``group`` is ``"final"`` or ``"geometry"``; ``kind`` one of FINAL_KINDS or
    GEOMETRY_KINDS, e.g. ``ai_001_001/images/scene_cam_00_geometry_hdf5/frame.0007.depth_meters.hdf5``.
    """
    if group not in ("final", "geometry"):
        raise ValueError(f"unknown image group {group!r}")
    return f"{scene}/images/scene_{camera}_{group}_hdf5/frame.{frame_id:04d}.{kind}.hdf5"


_FRAME_MEMBER_RE = re.compile(r"^images/scene_(cam_\d{2})_[a-z0-9_]+/frame\.(\d{4})\.", re.ASCII)


def member_frame(scene: str, member: str) -> tuple[str, int] | None:
    """(camera, frame_id) of a per-frame member of ``scene`` (any image group, HDF5 or preview),
    or None for a scene-wide one (``_detail`` files, which every frame of a trajectory may read)."""
    prefix = scene + "/"
    match = _FRAME_MEMBER_RE.match(member[len(prefix) :]) if member.startswith(prefix) else None
    return (match.group(1), int(match.group(2))) if match else None


def scene_metadata_member(scene: str) -> str:
    """The scene's ``metadata_scene.csv`` (holds ``meters_per_asset_unit``)."""
    return f"{scene}/_detail/metadata_scene.csv"


def camera_keyframe_member(scene: str, camera: str, what: str) -> str:
    """``camera_keyframe_{positions,orientations,...}.hdf5`` of one trajectory."""
    return f"{scene}/_detail/{camera}/camera_keyframe_{what}.hdf5"


def bounding_box_member(scene: str, kind: str) -> str:
    """Object-aligned 3D box file (``extents``/``orientations``/``positions``), in asset units."""
    return f"{scene}/_detail/mesh/metadata_semantic_instance_bounding_box_object_aligned_2d_{kind}.hdf5"


# Members a conversion reads, as globs over zip member names (scene prefix excluded).
_CONVERSION_GLOBS: tuple[str, ...] = (
    tuple(f"images/scene_cam_??_{group}_hdf5/frame.????.{kind}.hdf5" for group, kind in CONVERTED_FRAME_KINDS)
    + (
        "_detail/metadata_scene.csv",
        "_detail/metadata_cameras.csv",
        "_detail/cam_??/camera_keyframe_positions.hdf5",
        "_detail/cam_??/camera_keyframe_orientations.hdf5",
        "_detail/cam_??/camera_keyframe_frame_indices.hdf5",
        "_detail/cam_??/metadata_camera.csv",
    )
    + tuple(
        f"_detail/mesh/metadata_semantic_instance_bounding_box_object_aligned_2d_{k}.hdf5" for k in BOUNDING_BOX_KINDS
    )
)


@dataclass(frozen=True)
class MemberSelection:
    """Which zip members of a scene to fetch.

    ``mode`` is ``"conversion"`` (only what the converter reads), ``"all"``, or
    ``"globs"`` (members whose path below ``<scene>/`` matches any of ``globs``).
    """

    mode: str = "conversion"
    globs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ("conversion", "all", "globs"):
            raise ValueError(f"member selection mode must be conversion, all or globs, not {self.mode!r}")
        if self.mode == "globs" and not self.globs:
            raise ValueError("member selection mode 'globs' needs at least one glob")

    def matches(self, scene: str, member: str) -> bool:
        """True if ``member`` (a full zip member name) is to be fetched for ``scene``."""
        if member.endswith("/"):
            return False  # directory entries carry no data
        prefix = scene + "/"
        if not member.startswith(prefix):
            return False
        if self.mode == "all":
            return True
        rel = member[len(prefix) :]
        return _globs_pattern(_CONVERSION_GLOBS if self.mode == "conversion" else self.globs).match(rel) is not None

    def select(self, scene: str, members: Iterable[str]) -> list[str]:
        """The matching members, in the given order."""
        return [m for m in members if self.matches(scene, m)]


@functools.lru_cache(maxsize=16)
def _globs_pattern(globs: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled pattern matching what any of ``globs`` matches (``fnmatch.fnmatchcase`` rules):
    a scene's central directory has thousands of members, and one match per member instead of one
    per member and glob took the selection of 2,015 members from 39 ms to 9 ms."""
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))


# Our layout under the data root.
RAW_DIR = "raw"  # <root>/raw/<metadata csv>, <root>/raw/<scene>/... (the reference's input layout)
DATASET_DIR = "dataset"  # <root>/dataset/<split>/<modality>/... (the reference's output layout)


def raw_dir(data_root: Path) -> Path:
    """Folder that holds the metadata CSVs and unpacked scenes, laid out as the reference expects its input."""
    return Path(data_root) / RAW_DIR


def dataset_dir(data_root: Path) -> Path:
    """Folder of the converted dataset, laid out as the reference writes its output."""
    return Path(data_root) / DATASET_DIR


# Reference output conventions.
SPLIT_DIR_NAMES: dict[str, str] = {"train": "train", "val": "valid", "test": "test"}
PNG_MODALITIES: tuple[str, ...] = ("rgb", "depth", "normal", "semantic_40", "instance")
JSON_MODALITIES: tuple[str, ...] = ("extrinsics", "boxes_3d", "orientations")
INTRINSICS_MODALITIES: tuple[str, ...] = ("rgb_intrinsics", "depth_intrinsics")
SCENE_CLASS_MODALITY = "scene_class"


def split_dir_name(split_partition_name: str) -> str:
    """Upstream split name (``train``/``val``/``test``) to the reference's folder name (``val`` -> ``valid``)."""
    try:
        return SPLIT_DIR_NAMES[split_partition_name]
    except KeyError:
        raise ValueError(f"unknown split {split_partition_name!r}") from None


def frame_stem(scene: str, camera: str, frame_id: int) -> str:
    """``<scene>/<cam>/<NNNN>``: the frame's path below a modality folder, without extension."""
    return f"{scene}/{camera}/{frame_id:04d}"


def frame_output_paths(split_dir: str, scene: str, camera: str, frame_id: int) -> dict[str, str]:
    """Every per-frame output file of the reference layout, relative to the dataset folder, keyed by modality."""
    stem = frame_stem(scene, camera, frame_id)
    paths = {m: f"{split_dir}/{m}/{stem}.png" for m in PNG_MODALITIES}
    paths.update({m: f"{split_dir}/{m}/{stem}.json" for m in JSON_MODALITIES})
    paths[SCENE_CLASS_MODALITY] = f"{split_dir}/{SCENE_CLASS_MODALITY}/{stem}.txt"
    return paths


def intrinsics_output_paths(split_dir: str, scene: str, camera: str) -> dict[str, str]:
    """Per-trajectory intrinsics JSON files, relative to the dataset folder."""
    return {m: f"{split_dir}/{m}/{scene}/{camera}.json" for m in INTRINSICS_MODALITIES}
