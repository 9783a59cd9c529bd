"""Time the frame-index build on the real metadata (82,900 rows) with facts for
every included frame (as after a full conversion), against a naive per-row Python
build of the same table in the same run, and print the ratio.

Usage: python benchmarks/bench_frame_index.py [metadata folder] [--repeat N]
(default folder: ../shared/hypersim-reference/metadata beside the repo).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.blacklist import blacklist_reason
from hypersim_assets.catalog.frame_index import INDEX_SCHEMA, PATH_COLUMNS, build_frame_index, write_parquet_atomic
from hypersim_assets.common.frame_facts import FACTS_SCHEMA, STATUS_CONVERTED, STATUS_EXCLUDED, STATUS_PENDING
from hypersim_assets.common.layout import SPLIT_DIR_NAMES, frame_output_paths, frame_stem, intrinsics_output_paths

DEFAULT_METADATA = Path(__file__).resolve().parents[2] / "shared" / "hypersim-reference" / "metadata"


def synthetic_facts(splits: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Plausible converted facts for every included frame (values random, types as FACTS_SCHEMA)."""
    inc = splits[splits["included_in_public_release"]]
    n = len(inc)
    rng = np.random.default_rng(seed)
    classes = [
        np.sort(rng.choice(np.arange(1, 41, dtype=np.uint8), size=k, replace=False)) for k in rng.integers(1, 20, n)
    ]
    data = {
        "scene": inc["scene_name"].to_numpy(dtype=object),
        "camera": inc["camera_name"].to_numpy(dtype=object),
        "frame_id": inc["frame_id"].to_numpy(),
        "status": np.full(n, STATUS_CONVERTED, dtype=object),
        "reason": np.full(n, None, dtype=object),
        "rotation_valid": rng.random(n) > 0.01,
        "nan_pixels": rng.integers(0, 100, n, dtype=np.int32),
        "void_fraction": rng.random(n).astype(np.float32),
        "depth_min_mm": rng.integers(100, 1000, n).astype(np.uint16),
        "depth_max_mm": rng.integers(5000, 65535, n).astype(np.uint16),
        "depth_mean_mm": rng.uniform(1000, 9000, n).astype(np.float32),
        "instance_count": rng.integers(0, 4166, n, dtype=np.int32),
        "classes_present": classes,
        "output_bytes": rng.integers(500_000, 3_000_000, n, dtype=np.int64),
        "converter_version": np.full(n, "bench-1", dtype=object),
    }
    for name in ("fx", "fy", "cx", "cy", "x", "y", "z", "quat_x", "quat_y", "quat_z", "quat_w"):
        data[name] = rng.normal(size=n)
    return pa.Table.from_pydict(data, schema=FACTS_SCHEMA).to_pandas()


def naive_build(tables: md.MetadataTables, facts: pd.DataFrame) -> pa.Table:
    """The same index, built the obvious way: one Python dict per frame."""
    classes = {(s, c): k for s, c, k in tables.scene_classes.itertuples(index=False)}
    fact_rows = {(r["scene"], r["camera"], int(r["frame_id"])): r for r in facts.to_dict("records")}
    size = tables.camera_params if tables.camera_params is not None else None
    value_columns = [
        n
        for n in FACTS_SCHEMA.names
        if n in INDEX_SCHEMA.names and n not in ("scene", "camera", "frame_id", "status", "reason")
    ]
    rows = []
    for i, r in enumerate(tables.splits.to_dict("records")):
        scene, camera, frame = r["scene_name"], r["camera_name"], int(r["frame_id"])
        included = bool(r["included_in_public_release"])
        split = SPLIT_DIR_NAMES[r["split_partition_name"]] if included else None
        fact = fact_rows.get((scene, camera, frame)) if included else None
        exclude_reason = r["exclude_reason"] if isinstance(r["exclude_reason"], str) else None
        bl = blacklist_reason(scene, camera)
        row = {
            "metadata_row": i,
            "scene": scene,
            "camera": camera,
            "frame_id": frame,
            "split": split,
            "scene_class": classes.get((scene, camera)),
            "included_in_public_release": included,
            "exclude_reason": exclude_reason,
            "blacklisted": bl is not None,
            "blacklist_reason": bl,
            "status": STATUS_EXCLUDED if not included else (fact["status"] if fact else STATUS_PENDING),
            "reason": exclude_reason
            if not included
            else (fact["reason"] if fact and isinstance(fact["reason"], str) else None),
            "stem": frame_stem(scene, camera, frame),
        }
        paths = {}
        if split:
            paths = frame_output_paths(split, scene, camera, frame)
            paths.update(intrinsics_output_paths(split, scene, camera))
        for modality, column in PATH_COLUMNS.items():
            row[column] = paths.get(modality)
        if size is not None and scene in size.index:
            row["width_px"] = int(size.at[scene, "settings_output_img_width"])
            row["height_px"] = int(size.at[scene, "settings_output_img_height"])
        for name in value_columns:
            value = fact[name] if fact else None
            if isinstance(value, np.ndarray):
                value = value.tolist()
            row[name] = value
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


def _best(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metadata", nargs="?", default=str(DEFAULT_METADATA))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    read_s, tables = _best(lambda: md.read_metadata(Path(args.metadata)), 1)
    facts = synthetic_facts(tables.splits)
    print(f"metadata: {len(tables.splits)} rows, read in {read_s:.3f} s; facts: {len(facts)} converted frames")

    fast_s, fast = _best(lambda: build_frame_index(tables, facts), args.repeat)
    empty_s, _ = _best(lambda: build_frame_index(tables, None), args.repeat)
    naive_s, naive = _best(lambda: naive_build(tables, facts), 1)
    same = fast.to_pandas().astype(str).equals(naive.to_pandas().astype(str))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame_index.parquet"
        write_s, _ = _best(lambda: write_parquet_atomic(fast, path), 1)
        size = path.stat().st_size
    print(f"vectorised build, with facts:   {fast_s:.3f} s (best of {args.repeat})")
    print(f"vectorised build, no facts:     {empty_s:.3f} s (best of {args.repeat})")
    print(f"naive per-row build, with facts: {naive_s:.3f} s")
    print(f"ratio naive / vectorised:       {naive_s / fast_s:.1f}x")
    print(f"same table: {same}")
    print(f"parquet write: {write_s:.3f} s, {size / 2**20:.2f} MiB for {fast.num_rows} rows")


if __name__ == "__main__":
    main()
