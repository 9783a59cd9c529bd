"""Cost of the schedule's disk check (``catalog.scene_outputs``: one ``os.stat`` per output
file of every converted frame, sizes summed against the facts) beside a names-only check
(one ``os.listdir`` per output folder, which sees deletions but not changed sizes), on the
same synthetic dataset in one run; prints both, the ratio, and the stat check extrapolated
to the 74,619 included frames of the public release. Warm page cache (no root to drop it).

Usage: python benchmarks/bench_disk_sensing.py [--work DIR] [--scenes 50] [--cameras 2] [--frames 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from hypersim_assets.catalog.scene_facts import write_scene_facts
from hypersim_assets.catalog.scene_outputs import disk_states
from hypersim_assets.common.frame_facts import STATUS_CONVERTED
from hypersim_assets.common.layout import dataset_dir, frame_output_paths

PUBLIC_INCLUDED_FRAMES = 74_619


def build(root: Path, scenes: int, cameras: int, frames: int) -> pd.DataFrame:
    """Write tiny output files and facts for every frame; returns the split table."""
    rows = []
    data = dataset_dir(root)
    for s in range(scenes):
        scene = f"ai_{s + 1:03d}_001"
        facts = []
        for c in range(cameras):
            camera = f"cam_{c:02d}"
            for f in range(frames):
                total = 0
                for i, rel in enumerate(frame_output_paths("train", scene, camera, f).values()):
                    path = data / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    payload = b"x" * (16 + i)
                    path.write_bytes(payload)
                    total += len(payload)
                facts.append(
                    {"scene": scene, "camera": camera, "frame_id": f, "status": STATUS_CONVERTED, "output_bytes": total}
                )
                rows.append((scene, camera, f, True, "train"))
        write_scene_facts(root, scene, facts)
    return pd.DataFrame(
        rows, columns=["scene_name", "camera_name", "frame_id", "included_in_public_release", "split_partition_name"]
    )


def names_only(root: Path, splits: pd.DataFrame) -> int:
    """Count frames whose files are all listed in their folders (the cheaper, blinder check)."""
    data = str(dataset_dir(root))
    listed: dict[str, frozenset[str]] = {}
    ok = 0
    for scene, camera, frame_id in zip(splits["scene_name"], splits["camera_name"], splits["frame_id"]):
        good = True
        for rel in frame_output_paths("train", scene, camera, int(frame_id)).values():
            folder, _, name = rel.rpartition("/")
            if folder not in listed:
                listed[folder] = frozenset(os.listdir(os.path.join(data, folder)))
            good &= name in listed[folder]
        ok += good
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        root = Path(tmp)
        splits = build(root, args.scenes, args.cameras, args.frames)
        scenes = sorted(splits["scene_name"].unique())
        n = len(splits)
        stat_s, list_s = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            states = disk_states(root, scenes, splits)
            stat_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            complete = names_only(root, splits)
            list_s.append(time.perf_counter() - t0)
        assert not any(s.outputs_missing for s in states.values()) and complete == n
        stat, listing = min(stat_s), min(list_s)
        files = n * len(frame_output_paths("train", "a", "c", 0))
        print(f"{n} frames, {files} files in {len(scenes)} scenes (best of {args.repeat}, warm cache)")
        print(f"stat check (sizes vs facts): {stat:.3f} s = {1e6 * stat / n:.1f} us/frame")
        print(f"names-only check (listdir):  {listing:.3f} s = {1e6 * listing / n:.1f} us/frame")
        print(f"ratio stat/names-only: {stat / listing:.2f}")
        print(f"stat check extrapolated to {PUBLIC_INCLUDED_FRAMES} frames: {stat / n * PUBLIC_INCLUDED_FRAMES:.1f} s")


if __name__ == "__main__":
    main()
