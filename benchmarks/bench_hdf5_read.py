"""Benchmark: reading one frame's six HDF5 images, h5py's own gzip path against ours (raw chunks
inflated with libdeflate, ``hdf5_frames._read_whole``), side by side in one run, interleaved, in
CPU seconds of this process (less sensitive to other load on the machine than wall time).
Checks that both give the same arrays.

    python benchmarks/bench_hdf5_read.py --scene-dir RAW/ai_xxx_yyy [--frames 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from hypersim_assets.common import layout
from hypersim_assets.convert import hdf5_frames


def _files(scene_dir: Path, frames: int) -> list[Path]:
    scene = scene_dir.name
    out = []
    for color in sorted(scene_dir.glob("images/scene_cam_*_final_hdf5/frame.*.color.hdf5"))[:frames]:
        cam = color.parent.name.split("_final")[0].removeprefix("scene_")
        fid = int(color.name.split(".")[1])
        for group, kind in layout.CONVERTED_FRAME_KINDS:
            out.append(scene_dir / layout.frame_member(scene, cam, fid, group, kind).split("/", 1)[1])
    return out


def _read_h5py(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["dataset"][()]


def _read_ours(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return hdf5_frames._read_whole(f["dataset"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene-dir", type=Path, required=True, help="an unpacked scene folder")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    files = _files(args.scene_dir, args.frames)
    if not files:
        ap.error(f"no frames under {args.scene_dir}")
    frames = len(files) // len(layout.CONVERTED_FRAME_KINDS)
    for path in files:
        if not np.array_equal(_read_h5py(path), _read_ours(path), equal_nan=True):
            print(f"MISMATCH: {path}")
            return 1
    best = {"h5py": float("inf"), "ours": float("inf")}
    for _ in range(args.repeats):
        for name, read in (("h5py", _read_h5py), ("ours", _read_ours)):
            t0 = time.process_time()
            for path in files:
                read(path)
            best[name] = min(best[name], time.process_time() - t0)
    for name, s in best.items():
        print(
            f"{name}: {1000 * s / frames:.1f} ms CPU per frame ({len(files)} files, {frames} frames, best of {args.repeats})"
        )
    print(f"h5py / ours: {best['h5py'] / best['ours']:.2f}x; arrays identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
