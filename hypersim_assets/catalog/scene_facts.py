"""A scene's per-frame facts on disk (``<data root>/facts/<scene>.parquet``), the
summary a scene materialisation reports, and the rule that says whether a scene is
complete (:func:`completeness`).

The rule, one place for the UI (check), the index and the schedule: a frame whose input
upstream lacks (``input_missing``, e.g. ai_006_001 cam_00 frame 53) can never be
converted, so it is a *warning* and the scene counts as complete. A frame whose input
we could not use (``failed``: corrupt HDF5, labels the reference rejects) makes the
scene *incomplete*: its ``frames_converted`` check fails with severity ERROR, the
schedule requests the scene again (reason ``incomplete``) and the next run converts
only the frames that are not done. Any other error fails the whole partition.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hypersim_assets.common.atomic_files import write_parquet_atomic
from hypersim_assets.common.frame_facts import (
    FACTS_DIR,
    FACTS_SCHEMA,
    STATUS_CONVERTED,
    STATUS_FAILED,
    STATUS_INPUT_MISSING,
    facts_path,
)
from hypersim_assets.common.layout import frame_output_paths


def _as_dict(fact: Any) -> dict:
    if dataclasses.is_dataclass(fact):
        return dataclasses.asdict(fact)
    if isinstance(fact, Mapping):
        return dict(fact)
    raise TypeError(f"frame facts must be a dataclass or mapping, not {type(fact).__name__}")


def facts_table(facts: Iterable[Any]) -> pa.Table:
    """Per-frame facts as a table in FACTS_SCHEMA (extra keys are dropped), sorted by camera and frame."""
    rows = sorted((_as_dict(f) for f in facts), key=lambda r: (r["camera"], int(r["frame_id"])))
    columns = {name: [r.get(name) for r in rows] for name in FACTS_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=FACTS_SCHEMA)


def write_scene_facts(data_root: Path, scene: str, facts: Iterable[Any]) -> Path:
    """Write a scene's facts atomically (temp file renamed into place); returns the path."""
    return write_parquet_atomic(facts_table(facts), facts_path(data_root, scene))


def facts_fingerprint(table: pa.Table) -> str:
    """A hash of the facts that describe outputs (not timings), used as the scene's data version."""
    digest = hashlib.sha256()
    for name in table.column_names:
        digest.update(name.encode())
        digest.update(repr(table.column(name).to_pylist()).encode())
    return digest.hexdigest()[:24]


def summarize_scene_facts(facts: Iterable[Any], frames: Iterable[Any], dataset_root: Path) -> dict[str, Any]:
    """Counts, bytes, void fraction, warnings and output completeness of one scene's frames.

    ``frames`` are the scene's frame tasks (``camera``, ``frame_id``, ``split_dir``),
    which say where each converted frame's files must be.
    """
    rows = [_as_dict(f) for f in facts]
    split_dirs = {(f.camera, int(f.frame_id)): f.split_dir for f in frames}
    by_status = {
        s: [r for r in rows if r["status"] == s] for s in (STATUS_CONVERTED, STATUS_INPUT_MISSING, STATUS_FAILED)
    }
    converted = by_status[STATUS_CONVERTED]
    warnings: list[str] = []
    incomplete: list[str] = []
    for r in converted:
        frame = f"{r['camera']}/{int(r['frame_id']):04d}"
        if r.get("rotation_valid") is False:
            warnings.append(f"{frame}: camera orientation is not a valid rotation (patched as the reference does)")
        if r.get("nan_pixels"):
            warnings.append(f"{frame}: {r['nan_pixels']} NaN pixels replaced")
        split_dir = split_dirs.get((r["camera"], int(r["frame_id"])))
        if split_dir is None:
            incomplete.append(f"{frame}: not a frame of this scene's metadata")
            continue
        for rel in frame_output_paths(split_dir, r["scene"], r["camera"], int(r["frame_id"])).values():
            if not (dataset_root / rel).is_file():
                incomplete.append(rel)
    voids = [r["void_fraction"] for r in converted if r.get("void_fraction") is not None]
    not_converted = [
        {"frame": f"{r['camera']}/{int(r['frame_id']):04d}", "status": r["status"], "reason": r.get("reason")}
        for r in rows
        if r["status"] != STATUS_CONVERTED
    ]
    table = facts_table(rows)
    return {
        "converted": len(converted),
        "skipped": sum(1 for r in converted if r.get("skipped")),
        "input_missing": len(by_status[STATUS_INPUT_MISSING]),
        "failed": len(by_status[STATUS_FAILED]),
        "output_bytes": int(sum(int(r.get("output_bytes") or 0) for r in converted)),
        "mean_void_fraction": round(float(sum(voids) / len(voids)), 5) if voids else None,
        "warnings": warnings,
        "not_converted": not_converted,
        "incomplete_outputs": incomplete,
        "fingerprint": facts_fingerprint(table),
        "preview_markdown": counts_markdown(rows),
    }


@dataclass(frozen=True)
class Completeness:
    """Whether a scene is complete: ``passed`` unless frames ``failed``; ``severity`` is
    ``ERROR`` when frames failed, else ``WARN`` (``input_missing`` frames only warn)."""

    passed: bool
    severity: str  # "WARN" or "ERROR", as dg.AssetCheckSeverity names them
    description: str


def completeness(failed: int, input_missing: int) -> Completeness:
    """The completeness rule (module docstring) for a scene with these counts of frames."""
    if failed:
        return Completeness(
            False,
            "ERROR",
            f"{failed} frame(s) failed on bad input: the scene is incomplete and is requested again"
            + (f"; {input_missing} frame(s) lack upstream input" if input_missing else ""),
        )
    if input_missing:
        return Completeness(False, "WARN", f"{input_missing} frame(s) lack upstream input (a warning: never converted)")
    return Completeness(True, "WARN", "every included frame converted")


def counts_markdown(rows: list[dict]) -> str:
    """A per-camera count table of frame statuses, as markdown for the Dagster UI."""
    cameras = sorted({r["camera"] for r in rows})
    statuses = (STATUS_CONVERTED, STATUS_INPUT_MISSING, STATUS_FAILED)
    lines = ["| camera | " + " | ".join(statuses) + " |", "|---|" + "---|" * len(statuses)]
    for cam in cameras:
        counts = [sum(1 for r in rows if r["camera"] == cam and r["status"] == s) for s in statuses]
        lines.append(f"| {cam} | " + " | ".join(str(c) for c in counts) + " |")
    return "\n".join(lines)


# -- reading back -------------------------------------------------------------------------


def _conform_facts(table: pa.Table, source: str) -> pa.Table:
    """Cast to FACTS_SCHEMA; absent value columns become null, absent key columns are an error."""
    missing_keys = [c for c in ("scene", "camera", "frame_id", "status") if c not in table.column_names]
    if missing_keys:
        raise ValueError(f"facts {source} lack column(s) {', '.join(missing_keys)}")
    columns = []
    for field in FACTS_SCHEMA:
        if field.name in table.column_names:
            try:
                columns.append(table.column(field.name).cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(f"facts {source}, column {field.name}: cannot be read as {field.type}: {exc}") from exc
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=FACTS_SCHEMA)


def load_scene_facts(data_root: Path) -> pd.DataFrame:
    """Every scene's facts (``<data root>/facts/<scene>.parquet``) as one DataFrame in FACTS_SCHEMA.

    Empty (with the schema's columns) when the folder or files are absent. Hidden
    and temporary files are ignored. A file that cannot be read, or holds rows of
    another scene than its name says, raises ValueError naming it.
    """
    facts_dir = Path(data_root) / FACTS_DIR
    files = sorted(p for p in facts_dir.glob("*.parquet") if not p.name.startswith(".")) if facts_dir.is_dir() else []
    tables = []
    for path in files:
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValueError(f"facts file {path} is not readable Parquet: {exc}") from exc
        table = _conform_facts(table, str(path))
        scenes = set(table.column("scene").unique().to_pylist())
        if scenes - {path.stem}:
            raise ValueError(f"facts file {path} holds rows of scene(s) {sorted(scenes - {path.stem})}")
        tables.append(table)
    merged = pa.concat_tables(tables) if tables else FACTS_SCHEMA.empty_table()
    return merged.to_pandas()


def conform_facts_table(facts: pd.DataFrame | pa.Table | None) -> pa.Table:
    """``facts`` (a DataFrame, a table, or None for none) as a table in FACTS_SCHEMA."""
    if facts is None:
        return FACTS_SCHEMA.empty_table()
    if isinstance(facts, pd.DataFrame):
        if len(facts) == 0:
            return FACTS_SCHEMA.empty_table()
        facts = pa.Table.from_pandas(facts, preserve_index=False)
    return _conform_facts(facts, "table")
