"""The three Hypersim metadata CSVs as typed pandas frames: the per-frame split
table, the scene class of each camera trajectory, and the per-scene camera
parameters; plus the questions asked of them (public scenes, a scene's frames,
summaries, consistency).

Conventions: ``split_partition_name`` keeps the upstream values (``train``,
``val``, ``test``; null for frames outside the public release);
:func:`hypersim_assets.common.layout.split_dir_name` maps them to the reference's
``train``/``valid``/``test``. Row order is the split file's order ("metadata
order"), which the reference's subsampling follows.

Parsed files are kept per process, keyed by path and content digest (:func:`_cached_parse`):
the steps of one run (conversion, frame index, checks) read the same files, and parsing the
real split file takes about 0.3 s against about 3 ms to read and hash it.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hypersim_assets.common.errors import PermanentError
from hypersim_assets.common.layout import (
    CAMERA_NAME_RE,
    CAMERA_PARAMETERS_CSV,
    SCENE_NAME_RE,
    SPLIT_CSV,
    SPLIT_DIR_NAMES,
    TRAJECTORIES_CSV,
    split_dir_name,
)

SPLIT_COLUMNS: tuple[str, ...] = (
    "scene_name",
    "camera_name",
    "frame_id",
    "included_in_public_release",
    "exclude_reason",
    "split_partition_name",
)
TRAJECTORY_COLUMNS: tuple[str, ...] = ("Animation", "Scene type")
CAMERA_PARAMETER_COLUMNS: tuple[str, ...] = (
    "scene_name",
    "settings_output_img_width",
    "settings_output_img_height",
    "settings_units_info_meters_scale",
) + tuple(f"M_cam_from_uv_{r}{c}" for r in range(3) for c in range(3))

UPSTREAM_SPLITS: tuple[str, ...] = tuple(SPLIT_DIR_NAMES)  # train, val, test
MAX_FRAME_ID = 9999  # upstream names frames frame.NNNN
_ANIMATION_RE = re.compile(r"^(ai_\d{3}_\d{3})_(cam_\d{2})$")
_BOOL_TEXT = {"True": True, "False": False, "true": True, "false": False}


class MetadataError(PermanentError, ValueError):
    """A metadata file is missing, lacks a column, or holds a value we cannot use."""


@dataclass(frozen=True)
class MetadataTables:
    """The three metadata files, parsed.

    ``splits``: one row per frame, columns SPLIT_COLUMNS, metadata order;
    ``frame_id`` int16, ``included_in_public_release`` bool, strings nullable.
    ``scene_classes``: one row per trajectory: ``scene_name``, ``camera_name``, ``scene_class``.
    ``camera_params``: one row per scene, indexed by ``scene_name`` (None if not read).
    """

    splits: pd.DataFrame
    scene_classes: pd.DataFrame
    camera_params: pd.DataFrame | None = None


@dataclass(frozen=True)
class FrameTask:
    """One included frame to convert.

    ``split`` is the upstream partition (``train``/``val``/``test``); ``split_dir``
    the reference's folder name (``train``/``valid``/``test``). ``scene_class`` is the
    trajectory's ``Scene type`` verbatim (e.g. ``Living room``).
    """

    scene: str
    camera: str
    frame_id: int
    split: str
    scene_class: str

    @property
    def split_dir(self) -> str:
        return split_dir_name(self.split)


def _read_csv(path: Path, data: bytes, required: tuple[str, ...], **kwargs) -> pd.DataFrame:
    """``data`` (the bytes of ``path``) parsed as CSV; errors name ``path``."""
    try:
        df = pd.read_csv(io.BytesIO(data), **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MetadataError(f"metadata file {path} is not a readable CSV: {exc}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise MetadataError(f"metadata file {path} lacks column(s) {', '.join(missing)}")
    return df


# (parser, absolute path) -> (SHA-256 of the bytes parsed, the parsed frame), oldest first.
_PARSED: dict[tuple[str, str], tuple[bytes, pd.DataFrame]] = {}
_PARSED_LOCK = threading.Lock()
# Files kept (the real three take about 5 MB parsed): a long-lived process (code server,
# test session) that reads many data roots keeps only the latest few.
MAX_CACHED_FILES = 9


def _cached_parse(path: Path, parse: Callable[[Path, bytes], pd.DataFrame]) -> pd.DataFrame:
    """``parse(path, bytes of path)``, or the frame parsed from the same bytes earlier in this process.

    Keyed by content, not by (size, mtime): file timestamps tick at the kernel's coarse clock
    (milliseconds), so a same-size rewrite can keep both. The file is read once, and the frame
    parsed from exactly the bytes that were hashed. Each caller gets a copy (``deep``: pandas 2,
    which Python 3.10 gets, has no copy-on-write by default), so changing it never changes the
    cached frame; under pandas 3 the copy is lazy (0.13 ms for the real split table). Failed
    parses are not kept.
    """
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"metadata file {path} does not exist")
    data = path.read_bytes()
    digest = hashlib.sha256(data).digest()
    slot = (parse.__name__, os.path.abspath(path))
    with _PARSED_LOCK:
        hit = _PARSED.get(slot)
    if hit is not None and hit[0] == digest:
        return hit[1].copy(deep=True)
    df = parse(path, data)
    with _PARSED_LOCK:
        _PARSED.pop(slot, None)
        _PARSED[slot] = (digest, df)
        while len(_PARSED) > MAX_CACHED_FILES:
            del _PARSED[next(iter(_PARSED))]
    return df.copy(deep=True)


def _bad_rows(path: Path, column: str, mask: pd.Series, df: pd.DataFrame, why: str) -> MetadataError:
    rows = list(mask[mask].index[:5])
    values = [df.at[i, column] for i in rows]
    # +2: the header is line 1 and pandas counts rows from 0
    where = ", ".join(f"line {i + 2}: {v!r}" for i, v in zip(rows, values))
    return MetadataError(f"metadata file {path}, column {column}: {int(mask.sum())} value(s) {why} ({where})")


def read_split_table(path: Path) -> pd.DataFrame:
    """The per-frame split table (``metadata_images_split_scene_v1.csv``) in file order.

    Raises MetadataError naming the file, column and first bad lines for anything
    a conversion could not use (bad scene/camera names, frame ids, flags, splits,
    duplicate frames).
    """
    return _cached_parse(path, _parse_split_table)


def _parse_split_table(path: Path, data: bytes) -> pd.DataFrame:
    df = _read_csv(path, data, SPLIT_COLUMNS, dtype=str, keep_default_na=False)
    df = df[list(SPLIT_COLUMNS)].copy()
    for column, pattern in (("scene_name", SCENE_NAME_RE), ("camera_name", CAMERA_NAME_RE)):
        bad = ~df[column].str.fullmatch(pattern.pattern)
        if bad.any():
            raise _bad_rows(path, column, bad, df, f"do not look like {pattern.pattern}")
    frame_id = pd.to_numeric(df["frame_id"], errors="coerce")
    bad = frame_id.isna() | (frame_id < 0) | (frame_id > MAX_FRAME_ID) | (frame_id != frame_id.round())
    if bad.any():
        raise _bad_rows(path, "frame_id", bad, df, f"are not integers in 0..{MAX_FRAME_ID}")
    included = df["included_in_public_release"].map(_BOOL_TEXT)
    bad = included.isna()
    if bad.any():
        raise _bad_rows(path, "included_in_public_release", bad, df, "are not True/False")
    split = df["split_partition_name"].where(df["split_partition_name"] != "")
    bad = included.astype(bool) & ~split.isin(UPSTREAM_SPLITS)
    if bad.any():
        raise _bad_rows(path, "split_partition_name", bad, df, f"of included frames are not one of {UPSTREAM_SPLITS}")
    out = pd.DataFrame(
        {
            "scene_name": df["scene_name"],
            "camera_name": df["camera_name"],
            "frame_id": frame_id.astype("int16"),
            "included_in_public_release": included.astype(bool),
            "exclude_reason": df["exclude_reason"].where(df["exclude_reason"] != ""),
            "split_partition_name": split,
        }
    )
    dup = out.duplicated(["scene_name", "camera_name", "frame_id"], keep="first")
    if dup.any():
        raise _bad_rows(path, "frame_id", dup, df, "repeat a frame listed before")
    return out.reset_index(drop=True)


def read_scene_classes(path: Path) -> pd.DataFrame:
    """Scene class per trajectory from ``metadata_camera_trajectories.csv``.

    ``Animation`` (``<scene>_<cam>``) is split into ``scene_name`` and
    ``camera_name``; ``Scene type`` becomes ``scene_class`` (verbatim; null if empty).
    """
    return _cached_parse(path, _parse_scene_classes)


def _parse_scene_classes(path: Path, data: bytes) -> pd.DataFrame:
    df = _read_csv(path, data, TRAJECTORY_COLUMNS, dtype=str, keep_default_na=False)
    parts = df["Animation"].str.extract(_ANIMATION_RE)
    bad = parts[0].isna()
    if bad.any():
        raise _bad_rows(path, "Animation", bad, df, "are not <scene>_<cam> (e.g. ai_001_001_cam_00)")
    out = pd.DataFrame(
        {
            "scene_name": parts[0],
            "camera_name": parts[1],
            "scene_class": df["Scene type"].where(df["Scene type"] != ""),
        }
    )
    dup = out.duplicated(["scene_name", "camera_name"])
    if dup.any():
        raise _bad_rows(path, "Animation", dup, df, "repeat a trajectory listed before")
    return out.reset_index(drop=True)


def read_camera_parameters(path: Path) -> pd.DataFrame:
    """Per-scene camera parameters (``metadata_camera_parameters.csv``), indexed by ``scene_name``.

    ``M_cam_from_uv_RC`` map normalised image coordinates to camera rays (tilt-shift cameras);
    ``settings_output_img_width/height`` are pixels; ``settings_units_info_meters_scale`` is metres per asset unit.
    """
    return _cached_parse(path, _parse_camera_parameters)


def _parse_camera_parameters(path: Path, data: bytes) -> pd.DataFrame:
    df = _read_csv(path, data, CAMERA_PARAMETER_COLUMNS, low_memory=False)
    df["scene_name"] = df["scene_name"].astype(str)
    dup = df["scene_name"].duplicated()
    if dup.any():
        raise _bad_rows(path, "scene_name", dup, df, "repeat a scene listed before")
    numeric = [c for c in CAMERA_PARAMETER_COLUMNS if c != "scene_name"]
    for column in numeric:
        values = pd.to_numeric(df[column], errors="coerce")
        bad = values.isna() & df[column].notna()
        if bad.any():
            raise _bad_rows(path, column, bad, df, "are not numbers")
        df[column] = values.astype("float64")
    return df.set_index("scene_name")


def read_metadata(raw_root: Path, *, camera_parameters: bool = True) -> MetadataTables:
    """Read the three metadata CSVs from ``raw_root`` (the folder holding them)."""
    raw_root = Path(raw_root)
    return MetadataTables(
        splits=read_split_table(raw_root / SPLIT_CSV),
        scene_classes=read_scene_classes(raw_root / TRAJECTORIES_CSV),
        camera_params=read_camera_parameters(raw_root / CAMERA_PARAMETERS_CSV) if camera_parameters else None,
    )


def metadata_fingerprint(raw_root: Path) -> str:
    """SHA-256 (first 24 hex digits) over the three metadata files' names and bytes."""
    digest = hashlib.sha256()
    for name in (SPLIT_CSV, TRAJECTORIES_CSV, CAMERA_PARAMETERS_CSV):
        path = Path(raw_root) / name
        if not path.is_file():
            raise MetadataError(f"metadata file {path} does not exist")
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def _splits_of(tables_or_splits: MetadataTables | pd.DataFrame) -> pd.DataFrame:
    return tables_or_splits.splits if isinstance(tables_or_splits, MetadataTables) else tables_or_splits


def public_scenes(splits: MetadataTables | pd.DataFrame) -> list[str]:
    """Sorted names of the scenes with at least one frame in the public release."""
    df = _splits_of(splits)
    return sorted(df.loc[df["included_in_public_release"], "scene_name"].unique().tolist())


def scene_frames(tables: MetadataTables, scene: str) -> list[FrameTask]:
    """The included frames of ``scene`` in metadata order, with split and scene class.

    Raises MetadataError if an included trajectory of the scene has no scene class.
    """
    df = tables.splits
    rows = df[(df["scene_name"] == scene) & df["included_in_public_release"]]
    classes = tables.scene_classes[tables.scene_classes["scene_name"] == scene]
    class_of = dict(zip(classes["camera_name"], classes["scene_class"]))
    tasks = []
    for camera, frame_id, split in zip(rows["camera_name"], rows["frame_id"], rows["split_partition_name"]):
        scene_class = class_of.get(camera)
        if not isinstance(scene_class, str):
            raise MetadataError(f"trajectory {scene}/{camera} has no scene type in {TRAJECTORIES_CSV}")
        tasks.append(FrameTask(scene, camera, int(frame_id), split, scene_class))
    return tasks


def camera_parameters_row(tables: MetadataTables, scene: str) -> pd.Series:
    """The camera parameters of ``scene`` (one row of the camera-parameters file)."""
    if tables.camera_params is None:
        raise MetadataError(f"camera parameters were not read; {scene} needs them")
    try:
        return tables.camera_params.loc[scene]
    except KeyError:
        raise MetadataError(f"scene {scene} has no row in {CAMERA_PARAMETERS_CSV}") from None


def _per_split(values: pd.Series) -> dict[str, int]:
    counts = values.value_counts()
    return {s: int(counts.get(s, 0)) for s in UPSTREAM_SPLITS}


def metadata_summary(tables: MetadataTables) -> dict:
    """Counts over the metadata: rows, included frames, scenes and trajectories with included
    frames (``all_*``: with any frame),
    frames per split (every row with a split) and included frames per split (upstream split names)."""
    df = tables.splits
    included = df[df["included_in_public_release"]]
    return {
        "rows": len(df),
        "included_frames": len(included),
        "scenes": int(included["scene_name"].nunique()),
        "all_scenes": int(df["scene_name"].nunique()),
        "trajectories": int(included.groupby(["scene_name", "camera_name"]).ngroups),
        "all_trajectories": int(df.groupby(["scene_name", "camera_name"]).ngroups),
        "frames_per_split": _per_split(df["split_partition_name"]),
        "included_frames_per_split": _per_split(included["split_partition_name"]),
        "camera_parameter_scenes": None if tables.camera_params is None else len(tables.camera_params),
    }


def consistency_problems(tables: MetadataTables) -> list[str]:
    """Cross-file problems a conversion would trip over; empty when consistent.

    Checks: every included trajectory has a scene class; every public scene has
    camera parameters (when read); a trajectory's frames share one split.
    """
    problems: list[str] = []
    df = tables.splits
    included = df[df["included_in_public_release"]]
    trajectories = included[["scene_name", "camera_name"]].drop_duplicates()
    merged = trajectories.merge(tables.scene_classes, on=["scene_name", "camera_name"], how="left")
    for scene, camera in merged.loc[merged["scene_class"].isna(), ["scene_name", "camera_name"]].itertuples(
        index=False
    ):
        problems.append(f"{scene}/{camera}: included frames but no scene type in {TRAJECTORIES_CSV}")
    if tables.camera_params is not None:
        for scene in sorted(set(included["scene_name"]) - set(tables.camera_params.index)):
            problems.append(f"{scene}: included frames but no row in {CAMERA_PARAMETERS_CSV}")
    splits_per_trajectory = included.groupby(["scene_name", "camera_name"])["split_partition_name"].nunique()
    for (scene, camera), n in splits_per_trajectory[splits_per_trajectory > 1].items():
        problems.append(f"{scene}/{camera}: included frames in {n} different splits")
    return problems
