"""Benchmark (and parity check) of our frame conversion against the reference converter.

Makes a synthetic mirror (or uses ``--raw`` with unpacked scenes and metadata CSVs), pins
itself to one CPU (``--cpu``; the reference's subprocess inherits it), converts every
included frame with ours, and, given ``--reference`` (a checkout of
TUI-NICR/nicr-scene-analysis-datasets outside this repo) and ``--reference-python`` (a
Python with opencv-python-headless, scipy, h5py, pandas, tqdm, pillow), runs the
reference's ``process_one_sample`` on the same frames in a subprocess. Prints per-stage
times, frames per second, the time and output-size ratios, and compares decoded pixels (must
be identical) and JSON numbers (max abs difference). Times are CPU time of the process
(``time.process_time``), so a machine loaded by other work slows the run but skews little.

    python benchmarks/bench_conversion.py --work /tmp/bench --frames 3 --scenes 2 \\
        --reference /work/refcheckout --reference-python /work/refvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from hypersim_assets.catalog import metadata as md
from hypersim_assets.common.layout import PNG_MODALITIES, frame_output_paths, intrinsics_output_paths, split_dir_name
from hypersim_assets.convert.frame_conversion import (
    ConversionSettings,
    FrameFacts,
    convert_arrays,
    convert_frame,
    encode_outputs,
    frame_facts_of,
)

# Runs inside the reference's Python: times process_one_sample and its stages per frame.
_REFERENCE_RUNNER = r"""
import json, sys, time, types
src, raw, out, frames_json, tilt = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1"
pkg = types.ModuleType("nicr_scene_analysis_datasets")
pkg.__path__ = [src + "/nicr_scene_analysis_datasets"]  # skip the package __init__ (imports every dataset)
sys.modules["nicr_scene_analysis_datasets"] = pkg
import pandas as pd
import nicr_scene_analysis_datasets.datasets.hypersim.prepare_dataset as p
stages = {}
def timed(name, fn):
    def wrapper(*a, **k):
        t = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            stages[name] = stages.get(name, 0.0) + time.process_time() - t
    return wrapper
for name in ("load_extrinsics", "tonemap_image", "load_normal", "load_semantic", "load_instance",
             "compute_point_cloud", "load_depth_old", "load_box_3d", "_write_image"):
    setattr(p, name, timed(name, getattr(p, name)))
import numpy as np_mod
real_unique = np_mod.unique
shim = types.SimpleNamespace(**{k: getattr(np_mod, k) for k in dir(np_mod) if not k.startswith("__")})
shim.unique = timed("np.unique", real_unique)
p.np = shim
cams = pd.read_csv(raw + "/metadata_camera_parameters.csv", index_col="scene_name")
results = []
for scene, cam, fid, split, scene_class in json.loads(frames_json):
    entry = pd.Series({"scene_name": scene, "camera_name": cam, "frame_id": fid,
                       "split_partition_name": {"val": "valid"}.get(split, split),
                       "path": f"{scene}/{cam}/{fid:04d}.png", "scene_class": scene_class})
    stages.clear()
    t = time.process_time()
    err = None
    try:
        p.process_one_sample((0, entry), out, raw, cams, apply_tilt_shift_conversion=tilt)
    except Exception as e:
        err = f"{type(e).__name__}: {e}"
    results.append({"frame": [scene, cam, fid], "seconds": time.process_time() - t, "stages": dict(stages), "error": err})
print("RESULTS " + json.dumps(results))
"""


def _frames(raw: Path) -> list[tuple[str, str, int, str, str]]:
    tables = md.read_metadata(raw)
    out = []
    for scene in md.public_scenes(tables):
        for t in md.scene_frames(tables, scene):
            out.append((scene, t.camera, t.frame_id, t.split, t.scene_class))
    return out


def _json_max_diff(a, b) -> float:
    """Max abs difference between two JSON documents of equal structure (inf if structures differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return math.inf
        return max((_json_max_diff(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return math.inf
        return max((_json_max_diff(x, y) for x, y in zip(a, b)), default=0.0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return 0.0
        return abs(a - b)
    return 0.0 if a == b else math.inf


def run_ours(raw: Path, out: Path, frames, settings: ConversionSettings, camera_params) -> dict:
    """Convert each frame twice: once split into stages (in memory; the facts too) for timing, once end to end
    (writing files)."""
    stage_totals: dict[str, float] = defaultdict(float)
    end_to_end = []
    for scene, cam, fid, split, scene_class in frames:
        try:
            frame = convert_arrays(raw / scene, scene, cam, fid, camera_params[scene], settings.tilt_shift)
            t1 = time.process_time()
            encode_outputs(frame, scene_class, settings.png_compression)
            t2 = time.process_time()
            frame_facts_of(frame, FrameFacts(scene, cam, fid, "converted"), 0)
            t3 = time.process_time()
            for k, v in frame.timings.items():
                stage_totals[k] += v
            stage_totals["encode"] += t2 - t1
            stage_totals["facts"] += t3 - t2
        except Exception:
            pass
        t = time.process_time()
        facts = convert_frame(raw / scene, scene, cam, fid, split, scene_class, camera_params[scene], out, settings)
        end_to_end.append({"frame": [scene, cam, fid], "seconds": time.process_time() - t, "status": facts.status})
    return {"stages": dict(stage_totals), "frames": end_to_end}


def compare_outputs(ours: Path, ref: Path, frames) -> dict:
    """Decoded-pixel identity per modality, JSON max abs diff, text equality, and byte totals."""
    report = {
        "pixels_identical": defaultdict(lambda: [0, 0]),
        "json_max_abs_diff": 0.0,
        "json_text_identical": [0, 0],
        "bytes_ours": defaultdict(int),
        "bytes_ref": defaultdict(int),
        "other_identical": [0, 0],
    }
    for scene, cam, fid, split, _ in frames:
        sd = split_dir_name(split)
        rels = frame_output_paths(sd, scene, cam, fid)
        if not (ref / rels["rgb"]).exists():
            continue
        for modality, rel in rels.items():
            a, b = ours / rel, ref / rel
            report["bytes_ours"][modality] += a.stat().st_size
            report["bytes_ref"][modality] += b.stat().st_size
            if modality in PNG_MODALITIES:
                ia, ib = Image.open(a), Image.open(b)
                same = ia.mode == ib.mode and np.array_equal(np.asarray(ia), np.asarray(ib))
                report["pixels_identical"][modality][0] += int(same)
                report["pixels_identical"][modality][1] += 1
            elif rel.endswith(".json"):
                ta, tb = a.read_text(), b.read_text()
                d = _json_max_diff(json.loads(ta), json.loads(tb))
                report["json_max_abs_diff"] = max(report["json_max_abs_diff"], d)
                report["json_text_identical"][0] += int(ta == tb)
                report["json_text_identical"][1] += 1
            else:
                report["other_identical"][0] += int(a.read_bytes() == b.read_bytes())
                report["other_identical"][1] += 1
        for rel in intrinsics_output_paths(sd, scene, cam).values():
            ta, tb = (ours / rel).read_text(), (ref / rel).read_text()
            report["json_max_abs_diff"] = max(
                report["json_max_abs_diff"], _json_max_diff(json.loads(ta), json.loads(tb))
            )
            report["json_text_identical"][0] += int(ta == tb)
            report["json_text_identical"][1] += 1
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="scratch folder (mirror, raw, outputs)")
    ap.add_argument("--raw", type=Path, help="unpacked scenes + metadata CSVs (default: make a synthetic mirror)")
    ap.add_argument("--scenes", type=int, default=2)
    ap.add_argument("--cameras", type=int, default=1)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--height", type=int, default=768)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-tilt-shift", action="store_true")
    ap.add_argument("--png-compression", default="default")
    ap.add_argument("--workers", type=int, default=1, help="only 1 (single core) is supported")
    ap.add_argument(
        "--cpu", type=int, default=-1, help="pin ours and the reference to this CPU (default: the last one allowed)"
    )
    ap.add_argument("--reference", type=Path, help="checkout of nicr-scene-analysis-datasets")
    ap.add_argument("--reference-python", default=sys.executable)
    ap.add_argument(
        "--reference-output", type=Path, help="compare with this earlier reference output instead of running it"
    )
    args = ap.parse_args(argv)
    if args.workers != 1:
        ap.error("the benchmark runs on one core: --workers 1")
    cpu = args.cpu if args.cpu >= 0 else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # the reference's subprocess inherits it: both on one core
    print(f"pinned to CPU {cpu}")

    work = args.work
    raw = args.raw
    if raw is None:
        from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror

        raw = work / "raw"
        if not (raw / "metadata_images_split_scene_v1.csv").exists():
            mirror = work / "mirror"
            write_synthetic_mirror(
                mirror, MirrorSpec(args.scenes, args.cameras, args.frames, args.height, args.width, args.seed)
            )
            raw.mkdir(parents=True, exist_ok=True)
            for z in sorted((mirror / "scenes").glob("*.zip")):
                with zipfile.ZipFile(z) as zf:
                    zf.extractall(raw)
            for csv in mirror.glob("*.csv"):
                (raw / csv.name).write_bytes(csv.read_bytes())
    frames = _frames(raw)
    tables = md.read_metadata(raw)
    camera_params = {s: dict(md.camera_parameters_row(tables, s)) for s in {f[0] for f in frames}}
    variant = "no_tilt_shift" if args.no_tilt_shift else "tilt_shift"
    ours_dir, ref_dir = work / f"ours_{variant}_{args.png_compression}", work / f"ref_{variant}"
    settings = ConversionSettings(
        tilt_shift=not args.no_tilt_shift, png_compression=args.png_compression, skip_existing=False
    )

    ours = run_ours(raw, ours_dir, frames, settings, camera_params)
    ok = [f for f in ours["frames"] if f["status"] == "converted"]
    n = len(ok)
    ours_s = sum(f["seconds"] for f in ok) / max(n, 1)
    print(f"frames: {len(frames)} included, {n} converted ({variant}, png {settings.png_compression.value})")
    print(
        "ours, per-stage CPU ms/frame: "
        + ", ".join(f"{k} {1000 * v / max(n, 1):.1f}" for k, v in ours["stages"].items())
    )
    print(f"ours: {1000 * ours_s:.1f} CPU ms/frame end to end ({1 / ours_s:.2f} frames per CPU second)")

    if args.reference:
        cmd = [
            args.reference_python,
            "-c",
            _REFERENCE_RUNNER,
            str(args.reference / "src"),
            str(raw),
            str(ref_dir),
            json.dumps([list(f) for f in frames]),
            "0" if args.no_tilt_shift else "1",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS ")), None)
        if line is None:
            print(proc.stdout[-2000:], proc.stderr[-4000:])
            return 1
        ref = json.loads(line[len("RESULTS ") :])
        ref_ok = [r for r in ref if r["error"] is None]
        ref_s = sum(r["seconds"] for r in ref_ok) / max(len(ref_ok), 1)
        stages: dict[str, float] = defaultdict(float)
        for r in ref_ok:
            for k, v in r["stages"].items():
                stages[k] += v
        print(
            "reference, per-stage CPU ms/frame: "
            + ", ".join(f"{k} {1000 * v / max(len(ref_ok), 1):.1f}" for k, v in stages.items())
        )
        print(
            f"reference: {1000 * ref_s:.1f} CPU ms/frame ({1 / ref_s:.2f} frames per CPU second); failed frames: "
            + "; ".join(f"{'/'.join(map(str, r['frame']))}: {r['error'][:80]}" for r in ref if r["error"])
        )
        print(f"speed-up (reference time / ours per frame): {ref_s / ours_s:.1f}x")
    if args.reference or args.reference_output:
        cmp = compare_outputs(ours_dir, args.reference_output or ref_dir, frames)
        tot_o, tot_r = sum(cmp["bytes_ours"].values()), sum(cmp["bytes_ref"].values())
        print(
            "decoded pixels identical: " + ", ".join(f"{m} {v[0]}/{v[1]}" for m, v in cmp["pixels_identical"].items())
        )
        print(
            f"JSON max abs diff: {cmp['json_max_abs_diff']:.3g}; JSON text identical {cmp['json_text_identical'][0]}/{cmp['json_text_identical'][1]};"
            f" scene_class identical {cmp['other_identical'][0]}/{cmp['other_identical'][1]}"
        )
        print(
            "bytes ours/ref per modality: "
            + ", ".join(f"{m} {cmp['bytes_ours'][m] / max(cmp['bytes_ref'][m], 1):.3f}" for m in cmp["bytes_ref"])
        )
        print(f"output bytes ratio (ours / reference): {tot_o / max(tot_r, 1):.3f} ({tot_o} / {tot_r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
