"""What the disk says about a converted scene, compared with its facts
(``facts/<scene>.parquet``): frames that failed, and converted frames whose output files
are missing or whose sizes no longer add up to the bytes the conversion wrote.

Cheap by design (one ``os.stat`` per output file, no reading of file contents), so the
schedule can run it over every converted scene on each tick. It sees deleted, truncated
and re-sized files; an in-place change that keeps a file's size is not seen (that would
need reading every byte). A re-run repairs what it finds: the conversion re-writes any
frame whose files are missing or differ in size from its done-marker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hypersim_assets.common.frame_facts import STATUS_CONVERTED, STATUS_FAILED, facts_path
from hypersim_assets.common.layout import SPLIT_DIR_NAMES, dataset_dir, frame_output_paths

MAX_LISTED = 20  # problems named per scene; the rest are counted


@dataclass
class SceneDiskState:
    """One scene's facts against the disk: ``failed_frames`` (bad input), ``damaged_frames``
    (converted frames with missing or re-sized files) and up to MAX_LISTED ``problems``."""

    scene: str
    facts_found: bool = True
    failed_frames: int = 0
    damaged_frames: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def outputs_missing(self) -> bool:
        """The outputs the facts promise are not all on disk (or there are no facts at all)."""
        return not self.facts_found or self.damaged_frames > 0

    def note(self, problem: str) -> None:
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)


def _frame_bytes(dataset_root: str, rels: Mapping[str, str]) -> tuple[int, str | None]:
    """(total size of the frame's files, the first missing one or None)."""
    total = 0
    for rel in rels.values():
        try:
            total += os.stat(os.path.join(dataset_root, rel)).st_size
        except FileNotFoundError:
            return total, rel
    return total, None


def scene_disk_state(data_root: Path, scene: str, split_dirs: Mapping[tuple[str, int], str]) -> SceneDiskState:
    """Compare ``scene``'s facts with its files under ``data_root``.

    ``split_dirs`` maps (camera, frame_id) of the scene's included frames to their split
    folder (``train``/``valid``/``test``), from the metadata. A converted frame the
    metadata does not know is reported as a problem but not as damaged.
    """
    state = SceneDiskState(scene)
    path = facts_path(data_root, scene)
    try:
        table = pq.read_table(path, columns=["camera", "frame_id", "status", "output_bytes"])
    except FileNotFoundError:
        state.facts_found = False
        state.note(f"{path}: facts missing")
        return state
    except (pa.ArrowInvalid, OSError) as exc:
        state.facts_found = False
        state.note(f"{path}: unreadable facts: {exc}")
        return state
    root = str(dataset_dir(data_root))
    columns = table.to_pydict()
    for camera, frame_id, status, output_bytes in zip(
        columns["camera"], columns["frame_id"], columns["status"], columns["output_bytes"]
    ):
        frame = f"{camera}/{int(frame_id):04d}"
        if status == STATUS_FAILED:
            state.failed_frames += 1
            continue
        if status != STATUS_CONVERTED:
            continue
        split_dir = split_dirs.get((camera, int(frame_id)))
        if split_dir is None:
            state.note(f"{frame}: converted, but not an included frame of the metadata")
            continue
        total, missing = _frame_bytes(root, frame_output_paths(split_dir, scene, camera, int(frame_id)))
        if missing is not None:
            state.damaged_frames += 1
            state.note(f"{missing}: missing")
        elif output_bytes is not None and total != output_bytes:
            state.damaged_frames += 1
            state.note(f"{frame}: files hold {total} bytes, the conversion wrote {output_bytes}")
    return state


def split_dirs_by_scene(splits: pd.DataFrame) -> dict[str, dict[tuple[str, int], str]]:
    """(camera, frame_id) -> split folder of every included frame, per scene, from the split table."""
    rows = splits[splits["included_in_public_release"]]
    out: dict[str, dict[tuple[str, int], str]] = {}
    for scene, camera, frame_id, split in zip(
        rows["scene_name"], rows["camera_name"], rows["frame_id"], rows["split_partition_name"]
    ):
        out.setdefault(scene, {})[(camera, int(frame_id))] = SPLIT_DIR_NAMES[split]
    return out


def disk_states(data_root: Path, scenes: Iterable[str], splits: pd.DataFrame) -> dict[str, SceneDiskState]:
    """:func:`scene_disk_state` of each of ``scenes``."""
    by_scene = split_dirs_by_scene(splits)
    return {scene: scene_disk_state(data_root, scene, by_scene.get(scene, {})) for scene in scenes}
