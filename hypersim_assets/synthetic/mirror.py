"""A synthetic Hypersim *source*: the three metadata CSVs and one upstream-shaped zip per
scene, rendered from procedural rooms, for tests and demos without the 1.9 TB download.

This module owns the mirror's spec, its summary and the top-level writer: scene names,
camera rows, splits and seeds drawn from the spec's seed, scenes written (in parallel
processes if asked), then the metadata CSVs. The parts: ``metadata_csvs`` (CSV columns and
rows), ``scene_writer`` (one scene's zip), ``hdf5_files``, ``scene_zip``, ``previews``,
``edge_cases`` (what is planted where), ``room`` and ``render`` (geometry and shading).

Upstream facts mirrored: every HDF5 file holds one dataset ``dataset``; frame images use
upstream's settings (deflate level 9, h5py's automatic chunk shape, which gives the real
(96, 128) chunks at 768x1024, no shuffle); ``_detail`` HDF5 files are uncompressed, contiguous.
Zip members: already-compressed files (frame HDF5, JPEG, PNG) are STORED, the rest (CSV, logs,
small uncompressed HDF5) DEFLATED, so a reader must handle both methods.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hypersim_assets.common import layout
from hypersim_assets.common.atomic_files import write_bytes_atomic
from hypersim_assets.synthetic.edge_cases import edge_case_summary, plan_edge_cases
from hypersim_assets.synthetic.metadata_csvs import (
    CAMERA_PARAMETER_COLUMNS,
    REAL_CAMERA_ROWS,
    SCENE_TYPES,
    SPLIT_COLUMNS,
    TRAJECTORY_COLUMNS,
    camera_parameter_rows,
    camera_row_fields,
    csv_bytes,
    is_tilt_shift,
    m_cam_from_uv,
    split_rows,
    trajectory_rows,
)
from hypersim_assets.synthetic.scene_writer import ScenePlan, write_scene

_SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class MirrorSpec:
    """Size of a synthetic mirror: scenes x cameras x frames, image height/width in pixels, and the seed."""

    scenes: int = 3
    cameras: int = 2
    frames: int = 4
    height: int = 768
    width: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("scenes", "cameras", "frames", "height", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"MirrorSpec.{name} must be at least 1, got {getattr(self, name)}")
        if self.scenes > 999 or self.cameras > 100 or self.frames > 10000:
            raise ValueError("MirrorSpec: at most 999 scenes, 100 cameras and 10000 frames (upstream name widths)")


@dataclass
class MirrorSummary:
    """What ``write_synthetic_mirror`` wrote.

    ``frames_included`` counts split rows with ``included_in_public_release`` (the planted missing
    frame among them). ``edge_cases`` keys: ``tilt_shift_scenes``, ``camera_parameter_source_rows``
    (real row each scene's camera came from), ``excluded_frames`` and ``excluded_trajectory`` (files
    absent), ``missing_frame`` (included, files absent), ``nan_depth_at_valid_pixels`` (with
    ``pixels`` as [row, col]), ``invalid_rotation_frame_0``, ``instance_ids_above_255``,
    ``semantic_without_instance`` (NYU40 classes), ``unlabelled_objects`` (rendered, semantic -1),
    ``void_frames`` (frames with "no geometry" pixels). A case is ``None`` when the spec is too
    small to hold it.
    """

    root: Path
    scenes: list[str]
    frames_total: int
    frames_included: int
    zip_bytes: int
    edge_cases: dict[str, object]


def _scene_names(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct names ``ai_VVV_NNN``, sorted."""
    names: set[str] = set()
    while len(names) < count:
        names.add(f"ai_{int(rng.integers(1, 56)):03d}_{int(rng.integers(1, 21)):03d}")
    return sorted(names)


def write_synthetic_mirror(root: Path, spec: MirrorSpec = MirrorSpec(), workers: int = 1) -> MirrorSummary:
    """Write a synthetic Hypersim source under ``root`` and return what it holds.

    Layout: ``root/<the three metadata CSVs>`` and ``root/scenes/<scene>.zip``. Every file is
    written atomically. The bytes depend only on ``spec`` (not on ``workers``); ``workers``
    processes render scenes in parallel.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    root = Path(root)
    (root / "scenes").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    names = _scene_names(spec.scenes, rng)
    cameras = tuple(f"cam_{i:02d}" for i in range(spec.cameras))
    F = spec.frames

    tilt_rows = [k for k, v in REAL_CAMERA_ROWS.items() if is_tilt_shift(camera_row_fields(v))]
    plain_rows = [k for k, v in REAL_CAMERA_ROWS.items() if not is_tilt_shift(camera_row_fields(v))]
    offset = int(rng.integers(0, len(tilt_rows)))
    row_of: dict[str, str] = {}
    for i, s in enumerate(names):
        # Most scenes tilt-shift; every third one (the second of three) a plain pinhole camera.
        src = plain_rows[0] if i % 3 == 1 else tilt_rows[(offset + i) % len(tilt_rows)]
        row_of[s] = src
    split_of = {s: _SPLITS[i % 3] for i, s in enumerate(names)}
    type_of = {s: SCENE_TYPES[int(rng.integers(0, len(SCENE_TYPES)))] for s in names}
    room_seed = {s: int(rng.integers(0, 2**31)) for s in names}

    edge = plan_edge_cases(names, cameras, F)
    plans = []
    for s in names:
        fields = camera_row_fields(REAL_CAMERA_ROWS[row_of[s]])
        bad_rotation, nan_frame = edge.bad_rotation, edge.nan_frame
        plans.append(
            ScenePlan(
                name=s,
                meters_per_asset_unit=float(fields["settings_units_info_meters_scale"]),
                M_cam_from_uv=tuple(tuple(r) for r in m_cam_from_uv(fields).tolist()),
                cameras=cameras,
                frames=F,
                height=spec.height,
                width=spec.width,
                room_seed=room_seed[s],
                absent=edge.absent(s),
                bad_rotation_camera=bad_rotation[1] if bad_rotation and bad_rotation[0] == s else None,
                nan_frame=(nan_frame[1], nan_frame[2]) if nan_frame and nan_frame[0] == s else None,
                zip_path=str(root / "scenes" / f"{s}.zip"),
            )
        )
    if workers == 1 or len(plans) == 1:
        results = [write_scene(p) for p in plans]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(plans))) as pool:
            results = list(pool.map(write_scene, plans))

    csvs = {
        layout.SPLIT_CSV: csv_bytes(SPLIT_COLUMNS, split_rows(names, cameras, F, edge.excluded, split_of)),
        layout.TRAJECTORIES_CSV: csv_bytes(
            TRAJECTORY_COLUMNS, trajectory_rows(names, cameras, type_of, edge.bad_trajectory)
        ),
        layout.CAMERA_PARAMETERS_CSV: csv_bytes(
            CAMERA_PARAMETER_COLUMNS, camera_parameter_rows(row_of, spec.height, spec.width)
        ),
    }
    for name, data in csvs.items():
        write_bytes_atomic(data, root / name)

    tilt_shift_scenes = [s for s in names if is_tilt_shift(camera_row_fields(REAL_CAMERA_ROWS[row_of[s]]))]
    return MirrorSummary(
        root=root,
        scenes=names,
        frames_total=spec.scenes * spec.cameras * F,
        frames_included=len(edge.included),
        zip_bytes=sum(int(r["zip_bytes"]) for r in results),
        edge_cases=edge_case_summary(edge, names, tilt_shift_scenes, row_of, {r["scene"]: r for r in results}),
    )
