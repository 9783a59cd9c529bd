"""Time the metadata reads of one scene-and-index run on the real metadata (82,900 split rows):
the per-process cache of parsed CSVs against parsing every time, in the same run, and print the ratio.

The pattern is what the run process asks for after the metadata asset: the scene step reads all
three files, then frames_converted, outputs_complete, frame_index (all three) and
rows_match_metadata read them again (``--reads``). Uncached means calling the parsers directly,
as every read did before the cache; cached means ``read_metadata`` (the first read parses, the
others hash the files and hand out the kept frames).

Usage: python benchmarks/bench_metadata_cache.py [metadata folder] [--reads N] [--repeat N]
(default folder: ../shared/hypersim-reference/metadata beside the repo).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from hypersim_assets.catalog import metadata as md
from hypersim_assets.common.layout import CAMERA_PARAMETERS_CSV, SPLIT_CSV, TRAJECTORIES_CSV

DEFAULT_METADATA = Path(__file__).resolve().parents[2] / "shared" / "hypersim-reference" / "metadata"


def parse_uncached(folder: Path) -> md.MetadataTables:
    """The three files parsed from their bytes, bypassing the cache (each read before the cache)."""
    return md.MetadataTables(
        splits=md._parse_split_table(folder / SPLIT_CSV, (folder / SPLIT_CSV).read_bytes()),
        scene_classes=md._parse_scene_classes(folder / TRAJECTORIES_CSV, (folder / TRAJECTORIES_CSV).read_bytes()),
        camera_params=md._parse_camera_parameters(
            folder / CAMERA_PARAMETERS_CSV, (folder / CAMERA_PARAMETERS_CSV).read_bytes()
        ),
    )


def _time(read, folder: Path, reads: int) -> float:
    started = time.perf_counter()
    for _ in range(reads):
        read(folder)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metadata", nargs="?", type=Path, default=DEFAULT_METADATA)
    parser.add_argument("--reads", type=int, default=6, help="metadata reads in one run process")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved; the best is kept")
    args = parser.parse_args()

    uncached, cached = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            # A fresh copy each time: a path the cache has never seen, as in a new run process.
            folder = Path(tmp) / f"copy{i}"
            shutil.copytree(args.metadata, folder)
            uncached.append(_time(parse_uncached, folder, args.reads))
            cached.append(_time(md.read_metadata, folder, args.reads))
        same = all(
            a.equals(b)
            for a, b in zip(
                (parse_uncached(folder).splits, parse_uncached(folder).camera_params),
                (md.read_metadata(folder).splits, md.read_metadata(folder).camera_params),
            )
        )
        rows = len(md.read_metadata(folder).splits)
    best_u, best_c = min(uncached), min(cached)
    print(f"metadata: {rows} split rows, {args.reads} reads per run, best of {args.repeat}")
    print(f"parse every read:  {best_u:.3f} s ({best_u / args.reads * 1000:.0f} ms per read)")
    print(f"per-process cache: {best_c:.3f} s (first read parses; later reads hash the files)")
    print(f"ratio uncached / cached: {best_u / best_c:.1f}x, saved {best_u - best_c:.3f} s per run process")
    print(f"same frames: {same}")


if __name__ == "__main__":
    main()
