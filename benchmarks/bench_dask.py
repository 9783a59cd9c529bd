"""Frames per second of one scene's conversion: in this process, on a pool of local worker
processes, and on a Dask cluster (a ``LocalCluster`` of single-threaded worker processes,
or ``--scheduler tcp://...``). Same frames, same settings, fresh output folder each time;
the outputs of every mode are compared byte for byte. Each mode runs ``--repeat``
times; a pool is started per run (as ``convert_scene`` does), the Dask cluster once.

    python benchmarks/bench_dask.py --work /tmp/bench_dask --frames 12 --height 768 --width 1024

The synthetic scene is written once under ``--work`` and reused by later calls.
"""

from __future__ import annotations

import argparse
import shutil
import time
import zipfile
from pathlib import Path

from hypersim_assets.catalog import metadata as md
from hypersim_assets.common.frame_facts import STATUS_CONVERTED
from hypersim_assets.common.layout import METADATA_FILES
from hypersim_assets.convert.dask_execution import DaskConfig, dask_executor
from hypersim_assets.convert.frame_conversion import ConversionSettings
from hypersim_assets.convert.scene_conversion import convert_scene
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror


def prepare(work: Path, frames: int, height: int, width: int) -> tuple[Path, str]:
    """A one-scene synthetic mirror unpacked into ``work/raw``; returns (raw root, scene)."""
    raw = work / f"raw_{frames}_{height}x{width}"
    done = raw / ".ready"
    if done.exists():
        return raw, done.read_text().strip()
    mirror = work / f"mirror_{frames}_{height}x{width}"
    summary = write_synthetic_mirror(mirror, MirrorSpec(scenes=1, cameras=1, frames=frames, height=height, width=width))
    scene = summary.scenes[0]
    with zipfile.ZipFile(mirror / "scenes" / f"{scene}.zip") as zf:
        zf.extractall(raw)
    for name in METADATA_FILES:
        shutil.copy(mirror / name, raw / name)
    done.write_text(scene)
    return raw, scene


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument(
        "--frames", type=int, default=12, help="frames of the synthetic trajectory (one is planted missing)"
    )
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2, help="processes of the local pool and of the Dask cluster")
    parser.add_argument("--scheduler", default=None, help="use this Dask scheduler instead of a LocalCluster")
    parser.add_argument("--png-compression", default="default")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode (best and median reported)")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    raw, scene = prepare(args.work, args.frames, args.height, args.width)
    print(f"scene {scene} ready in {time.monotonic() - started:.1f} s ({args.height}x{args.width})")
    tables = md.read_metadata(raw)
    frames = md.scene_frames(tables, scene)
    params = md.camera_parameters_row(tables, scene)
    settings = ConversionSettings(skip_existing=False, png_compression=args.png_compression)

    def run(label: str, **kwargs) -> Path:
        out = args.work / "out" / label
        times = []
        for _ in range(args.repeat):
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.monotonic()
            facts = convert_scene(raw / scene, scene, frames, params, out, settings, **kwargs)
            times.append(time.monotonic() - t0)
        converted = sum(f.status == STATUS_CONVERTED for f in facts)
        best, median = min(times), sorted(times)[len(times) // 2]
        print(
            f"{label:<28} {converted:3d} frames: best {best:6.2f} s = {converted / best:5.2f} frames/s, "
            f"median {median:6.2f} s = {converted / median:5.2f} frames/s ({args.repeat} runs)"
        )
        return out

    outputs = [run("1 process", workers=1), run(f"{args.workers} local processes", workers=args.workers)]
    config = DaskConfig(
        scheduler_address=args.scheduler,
        local_cluster_workers=0 if args.scheduler else args.workers,
        connect_timeout_s=60,
    )
    t0 = time.monotonic()
    with dask_executor(config) as executor:
        where = args.scheduler or f"LocalCluster({args.workers} workers x 1 thread)"
        print(f"dask client ready in {time.monotonic() - t0:.1f} s ({where}; not counted below)")
        outputs.append(run(f"{args.workers} Dask workers", executor=executor))
    reference = _tree(outputs[0])
    same = all(_tree(o) == reference for o in outputs[1:])
    print(f"outputs byte-identical across modes: {same} ({len(reference)} files)")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
