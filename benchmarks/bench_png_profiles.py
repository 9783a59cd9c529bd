"""Side-by-side benchmark of PNG encoder settings per image kind, on real-shaped frames.

Converts frames in memory (``--raw``: unpacked scenes + metadata CSVs, as for
bench_conversion.py) and, where present, the real upstream depth frame in
``--real`` (../shared/hypersim-reference: ai_037_002 cam_00 frame 0, tilt-shift and legacy
depth). Encodes every image with the module's profile (``--compression``) and with each
``--candidate`` (``KIND=FILTERS:LIBRARY:LEVEL``, e.g. ``depth=1,2:zlib-ng:6``), one after the
other in one process, and prints per kind the CPU ms per image, the bytes relative to
the reference's OpenCV level-9 PNGs of the same pixels (encoded by ``--reference-python``,
which needs opencv) and the candidate/profile ratios. ``--grid KIND`` prints the Pareto
front (ms, bytes) of every filter set x library x level for that kind instead.

    python benchmarks/bench_png_profiles.py --raw /tmp/bench/raw --frames 5 \\
        --reference-python /work/refvenv/bin/python --candidate depth=1,2:zlib-ng:6
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from hypersim_assets.catalog import metadata as md
from hypersim_assets.convert import depth as depth_mod
from hypersim_assets.convert import png_writer as pw
from hypersim_assets.convert import reprojection as rp
from hypersim_assets.convert.frame_conversion import convert_arrays

MODALITY_KINDS = {"rgb": "photo", "depth": "depth", "normal": "normal", "semantic_40": "label", "instance": "label_rgb"}

# Runs inside the reference's Python: OpenCV level-9 PNG sizes of .npy images (RGB swapped to
# BGR first, as the reference does before cv2.imwrite, so the file holds the same pixels), and
# whether OpenCV decodes our PNG of each image (same path, .png) to the same pixels.
_OPENCV_SIZES = r"""
import json, sys, cv2, numpy as np
sizes, same = {}, {}
for path in sys.argv[1:]:
    a = np.load(path)
    ours = cv2.imread(path[:-4] + ".png", cv2.IMREAD_UNCHANGED)
    if a.ndim == 3:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", a, (cv2.IMWRITE_PNG_COMPRESSION, 9))
    sizes[path] = int(len(buf))
    same[path] = bool(ours is not None and ours.dtype == a.dtype and np.array_equal(ours, a))
print("SIZES " + json.dumps([sizes, same]))
"""


def synthetic_images(raw: Path, frames: int) -> dict[str, list[np.ndarray]]:
    """Up to ``frames`` converted frames of ``raw`` (tilt-shift), as images per modality."""
    tables = md.read_metadata(raw)
    out: dict[str, list[np.ndarray]] = {m: [] for m in MODALITY_KINDS}
    for scene in md.public_scenes(tables):
        params = dict(md.camera_parameters_row(tables, scene))
        for t in md.scene_frames(tables, scene):
            if len(out["rgb"]) >= frames:
                return out
            try:
                f = convert_arrays(raw / scene, scene, t.camera, t.frame_id, params, True)
            except Exception:  # frames without inputs: the conversion benchmark reports them
                continue
            for m, img in zip(MODALITY_KINDS, (f.rgb, f.depth_mm, f.normal, f.semantic, f.instance)):
                out[m].append(img)
    return out


def real_depth_images(real: Path) -> dict[str, np.ndarray]:
    """The real ai_037_002 cam_00 frame 0 depth as our converter writes it (tilt-shift and legacy)."""
    path = real / "ai_037_002/images/scene_cam_00_geometry_hdf5/frame.0000.depth_meters.hdf5"
    with h5py.File(path, "r") as f:
        distance_m = f["dataset"][:]
    params = dict(md.camera_parameters_row(md.read_metadata(real / "metadata"), "ai_037_002"))
    h, w = distance_m.shape
    M = rp.m_cam_from_uv(params)
    points = rp.camera_points(
        rp.flipped_ray_columns(rp.unit_rays(M, h, w)), depth_mod.distance_without_nan(distance_m)[0]
    )
    depth_mm = depth_mod.depth_mm_from_z(points[2].reshape(h, w))
    tilt = rp.reprojection(points, rp.pinhole_intrinsics(M), h, w).apply(depth_mm)
    return {"real_depth_tilt_shift": tilt, "real_depth_legacy": depth_mod.legacy_depth_mm(distance_m)}


def opencv_sizes(images: list[np.ndarray], settings: pw.PngSettings, python: str) -> tuple[list[int], int]:
    """(OpenCV level-9 PNG sizes of ``images`` (the reference's writer), how many of our PNGs
    with ``settings`` OpenCV decodes to the same pixels), computed in ``python``."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, img in enumerate(images):
            paths.append(str(Path(tmp) / f"{i}.npy"))
            np.save(paths[-1], img)
            Path(tmp, f"{i}.png").write_bytes(pw.encode_with(img, settings))
        proc = subprocess.run([python, "-c", _OPENCV_SIZES, *paths], capture_output=True, text=True, check=True)
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("SIZES "))
        sizes, same = json.loads(line[len("SIZES ") :])
        return [sizes[p] for p in paths], sum(same.values())


def timed_bytes(images: list[np.ndarray], settings: pw.PngSettings, repeat: int) -> tuple[float, int]:
    """(best-of-``repeat`` CPU ms per image, total bytes) of encoding ``images`` with ``settings``."""
    best, size = float("inf"), 0
    for _ in range(repeat):
        t = time.process_time()
        size = sum(len(pw.encode_with(img, settings)) for img in images)
        best = min(best, (time.process_time() - t) / len(images))
    return 1000 * best, size


def parse_candidate(text: str) -> tuple[str, pw.PngSettings]:
    """``KIND=FILTERS:LIBRARY:LEVEL`` -> (kind, settings); filters as comma-separated numbers."""
    kind, _, spec = text.partition("=")
    filters, library, level = spec.split(":")
    return kind, pw.PngSettings(tuple(int(x) for x in filters.split(",")), library, int(level))


GRID_FILTERS = [(0,), (1,), (2,), (4,), (0, 2), (1, 2), (0, 1, 2), (1, 2, 4), (0, 1, 2, 4)]
GRID_LEVELS = {"zlib-ng": range(4, 10), "libdeflate": range(3, 10)}


def print_grid(name: str, images: list[np.ndarray], ref_bytes: int) -> None:
    rows = []
    for filters in GRID_FILTERS:
        for library, levels in GRID_LEVELS.items():
            for level in levels:
                s = pw.PngSettings(filters, library, level)
                ms, size = timed_bytes(images, s, 1)
                rows.append((ms, size / ref_bytes, s))
    best = float("inf")
    print(f"== {name}: Pareto front (CPU ms per image, bytes / OpenCV level 9)")
    for ms, ratio, s in sorted(rows, key=lambda r: r[0]):
        if ratio < best:
            best = ratio
            print(f"  {ms:7.1f} ms  {ratio:.3f}  filters {s.filters} {s.library} {s.level}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", type=Path, required=True, help="unpacked scenes + metadata CSVs")
    ap.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared/hypersim-reference")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--compression", default="default")
    ap.add_argument("--candidate", action="append", default=[], help="KIND=FILTERS:LIBRARY:LEVEL (repeatable)")
    ap.add_argument("--grid", action="append", default=[], help="print the Pareto front for this kind")
    ap.add_argument("--repeat", type=int, default=3, help="best of N timings")
    ap.add_argument("--reference-python", required=True, help="a Python with opencv (the reference's)")
    args = ap.parse_args(argv)
    comp = pw.PngCompression.parse(args.compression)
    images = synthetic_images(args.raw, args.frames)
    sets = {m: (MODALITY_KINDS[m], imgs) for m, imgs in images.items()}
    if (args.real / "ai_037_002").is_dir():
        for name, img in real_depth_images(args.real).items():
            sets[name] = ("depth", [img])
    else:
        print(f"no real frames at {args.real}")
    candidates = dict(parse_candidate(c) for c in args.candidate)
    print(f"{len(images['rgb'])} synthetic frames; profile {comp.value}; candidates {candidates}")
    totals = [
        0.0,
        0,
        0.0,
        0,
        0,
    ]  # synthetic frames: profile ms, profile bytes, candidate ms, candidate bytes, ref bytes
    for name, (kind, imgs) in sets.items():
        base = pw.PROFILES[comp][kind]
        ref_sizes, decoded_same = opencv_sizes(imgs, base, args.reference_python)
        ref_bytes = sum(ref_sizes)
        if decoded_same != len(imgs):
            print(f"{name}: OpenCV decodes only {decoded_same}/{len(imgs)} of our PNGs to the same pixels")
        if kind in args.grid:
            print_grid(name, imgs, ref_bytes)
            continue
        ms0, b0 = timed_bytes(imgs, base, args.repeat)
        ms1, b1 = timed_bytes(imgs, candidates[kind], args.repeat) if kind in candidates else (ms0, b0)
        if name in MODALITY_KINDS:
            for i, v in enumerate((ms0, b0, ms1, b1, ref_bytes)):
                totals[i] += v
        line = (
            f"{name:22s} {kind:9s} profile {ms0:6.1f} ms {b0 / ref_bytes:.3f}x ref ({ref_bytes / len(imgs) / 1024:.1f} KiB,"
            f" OpenCV decodes {decoded_same}/{len(imgs)})"
        )
        if kind in candidates:
            line += (
                f" | candidate {ms1:6.1f} ms {b1 / ref_bytes:.3f}x ref | time x{ms1 / ms0:.2f}, bytes x{b1 / b0:.3f}"
            )
        print(line)
    if totals[4]:
        ms0, b0, ms1, b1, ref = totals
        print(
            f"synthetic frame, all five PNGs: profile {ms0:.1f} ms {b0 / ref:.3f}x ref"
            f" | with candidates {ms1:.1f} ms {b1 / ref:.3f}x ref | time x{ms1 / ms0:.2f}, bytes x{b1 / b0:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
