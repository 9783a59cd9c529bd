"""Small synthetic metadata, facts and converted files for the catalogue tests
(metadata, frame index, views, checks), plus the location of the real metadata."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from hypersim_assets.catalog.metadata import MetadataTables
from hypersim_assets.common.frame_facts import FACTS_SCHEMA, STATUS_CONVERTED
from hypersim_assets.common.layout import frame_output_paths, intrinsics_output_paths, split_dir_name

# ../shared/hypersim-reference beside the repository, or where HYPERSIM_REFERENCE points
# (a git worktree sits one folder deeper than the clone it came from).
REFERENCE = Path(
    os.environ.get("HYPERSIM_REFERENCE") or Path(__file__).resolve().parents[2] / "shared" / "hypersim-reference"
)
REAL_METADATA = REFERENCE / "metadata"


def real_metadata_dir() -> Path:
    """The real metadata folder, or skip the test when it is absent."""
    if not (REAL_METADATA / "metadata_images_split_scene_v1.csv").is_file():
        pytest.skip(f"real Hypersim metadata not found at {REAL_METADATA}")
    return REAL_METADATA


# (scene, camera, split, scene class, frames, excluded frame ids)
# ai_003_001/cam_00 and ai_013_001 (every camera) are on the reference's blacklist.
TRAJECTORIES = (
    ("ai_001_001", "cam_00", "train", "Bathroom", 12, {3}),
    ("ai_001_001", "cam_01", "train", "Bathroom", 12, set()),
    ("ai_003_001", "cam_00", "train", "Kitchen", 12, set()),
    ("ai_003_001", "cam_01", "train", "Kitchen", 12, {0, 1}),
    ("ai_013_001", "cam_00", "train", "Other", 6, set()),
    ("ai_002_001", "cam_00", "val", "Office", 12, {5, 6}),
    ("ai_002_002", "cam_00", "test", "Hall", 7, set()),
    ("ai_002_003", "cam_00", None, "OUTSIDE VIEWING AREA (BAD TRAJECTORY)", 4, {0, 1, 2, 3}),
)


def split_rows() -> list[dict]:
    rows = []
    for scene, camera, split, _, frames, excluded in sorted(TRAJECTORIES):
        for frame in range(frames):
            inc = frame not in excluded
            rows.append(
                {
                    "scene_name": scene,
                    "camera_name": camera,
                    "frame_id": frame,
                    "included_in_public_release": inc,
                    "exclude_reason": None if inc else "CONTENT FLAGGED FOR REMOVAL",
                    "split_partition_name": split if inc else None,
                }
            )
    return rows


def write_metadata_csvs(folder: Path) -> Path:
    """The three metadata CSVs of TRAJECTORIES, laid out as upstream writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["scene_name,camera_name,frame_id,included_in_public_release,exclude_reason,split_partition_name"]
    for r in split_rows():
        lines.append(
            f"{r['scene_name']},{r['camera_name']},{r['frame_id']},{r['included_in_public_release']},"
            f"{r['exclude_reason'] or ''},{r['split_partition_name'] or ''}"
        )
    (folder / "metadata_images_split_scene_v1.csv").write_text("\n".join(lines) + "\n")
    traj = ["Animation,Rendering job (geometry),Scene type,Notes"]
    for scene, camera, _, cls, _, _ in TRAJECTORIES:
        traj.append(f"{scene}_{camera},{scene}@scene_{camera}_geometry,{cls},")
    (folder / "metadata_camera_trajectories.csv").write_text("\n".join(traj) + "\n")
    m = [f"M_cam_from_uv_{r}{c}" for r in range(3) for c in range(3)]
    cam = [
        "scene_name,settings_output_img_height,settings_output_img_width,settings_units_info_meters_scale,"
        + ",".join(m)
    ]
    for scene in sorted({t[0] for t in TRAJECTORIES}):
        cam.append(f"{scene},768.0,1024.0,0.0254,0.577,0.0,0.0,0.0,0.433,0.0,0.0,0.0,-1.0")
    (folder / "metadata_camera_parameters.csv").write_text("\n".join(cam) + "\n")
    return folder


def synthetic_tables(tmp_path: Path) -> MetadataTables:
    from hypersim_assets.catalog.metadata import read_metadata

    return read_metadata(write_metadata_csvs(tmp_path / "raw"))


def facts_frame(frames: list[tuple[str, str, int]], status: str = STATUS_CONVERTED, **values) -> pd.DataFrame:
    """Facts rows in FACTS_SCHEMA for ``frames``; value columns filled with plausible numbers."""
    rows = []
    for scene, camera, frame in frames:
        row = {name: None for name in FACTS_SCHEMA.names}
        row.update(scene=scene, camera=camera, frame_id=frame, status=status)
        if status == STATUS_CONVERTED:
            row.update(
                rotation_valid=True,
                nan_pixels=0,
                depth_inf_pixels=0,
                depth_negative_pixels=0,
                void_fraction=0.25,
                depth_min_mm=500,
                depth_max_mm=9000,
                depth_mean_mm=2500.0,
                instance_count=12,
                classes_present=[1, 2, 5],
                output_bytes=1_500_000,
                fx=0.86,
                fy=1.15,
                cx=0.5,
                cy=0.5,
                x=1.0,
                y=2.0,
                z=1.5,
                quat_x=0.0,
                quat_y=0.0,
                quat_z=0.0,
                quat_w=1.0,
                converter_version="test-1",
            )
        else:
            row["reason"] = "missing member"
        row.update(values)
        rows.append(row)
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=FACTS_SCHEMA).to_pandas()


def write_converted_files(dataset_root: Path, frames: list[tuple[str, str, str, int]]) -> list[str]:
    """Create every output file (a few bytes each) of ``frames`` = (upstream split, scene, camera, frame)."""
    written = []
    for split, scene, camera, frame in frames:
        split_dir = split_dir_name(split)
        rels = list(frame_output_paths(split_dir, scene, camera, frame).values())
        rels += list(intrinsics_output_paths(split_dir, scene, camera).values())
        for rel in rels:
            path = dataset_root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
            written.append(rel)
    return written
