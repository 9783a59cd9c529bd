"""Re-verifying a fetched scene on a re-run: CRC-32 of every member (``verify="crc"``, the
default) beside a size-only check (``verify="size"``), on one synthetic scene, in one run.

Prints seconds per scene for each mode (best of ``--repeat``, page cache warm after the
first read, as on a re-run shortly after a fetch) and the ratio crc / size.

    python benchmarks/bench_verify.py [--frames 12] [--cameras 2] [--members conversion|all] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hypersim_assets.common.layout import MemberSelection
from hypersim_assets.download.manifest import verify_scene_members
from hypersim_assets.download.scene_fetch import fetch_scene_members
from hypersim_assets.download.source import Location
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror


def best_of(repeat: int, run) -> float:  # noqa: ANN001 - a no-argument callable
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        problems = run()
        times.append(time.perf_counter() - started)
        assert problems == [], problems
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--members", default="conversion", choices=["conversion", "all"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        root = Path(tmp) / "mirror"
        write_synthetic_mirror(root, MirrorSpec(scenes=1, cameras=args.cameras, frames=args.frames))
        zip_path = sorted((root / "scenes").glob("*.zip"))[0]
        scene = zip_path.stem
        raw = Path(tmp) / "raw"
        report = fetch_scene_members(Location(path=zip_path), scene, raw, MemberSelection(mode=args.members))
        size_bytes = sum(p.stat().st_size for p in (raw / scene).rglob("*") if p.is_file())
        print(f"scene {scene}: {report.members_selected} members, {size_bytes / 1e6:.1f} MB on disk")
        size_s = best_of(args.repeat, lambda: verify_scene_members(raw, scene, "size"))
        crc_s = best_of(args.repeat, lambda: verify_scene_members(raw, scene, "crc"))
        print(f"verify=size: {size_s * 1e3:9.2f} ms per scene")
        print(f"verify=crc : {crc_s * 1e3:9.2f} ms per scene ({size_bytes / crc_s / 1e9:.2f} GB/s)")
        print(f"crc / size : x{crc_s / size_s:.0f}")


if __name__ == "__main__":
    main()
