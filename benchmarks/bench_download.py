"""Selective scene fetch versus a plain full-zip download, over loopback, in one run; and the
selective fetch under several (workers, coalescing gap) settings side by side.

Builds (or reuses) a synthetic upstream-shaped mirror, serves it with the
loopback ``MirrorServer`` (optionally through its link model: ``--rtt-ms``, ``--link-mbps``)
and prints, for one scene zip: bytes fetched by the selective fetch / zip bytes, and the wall
time and throughput of both ways; then, per ``--grid`` entry ``WORKERS:GAP_BYTES[:ORDER]`` (GAP -1 =
no coalescing; ORDER ``frames``, the default, or ``archive``: the order requests start in), the fetch's wall time, requests, bytes, and its ratio to the link floor
(bytes fetched / bandwidth) and to the first entry.

    python benchmarks/bench_download.py [--frames 12] [--cameras 2] [--workers 4] [--mirror DIR]
                                        [--server-nodelay] [--chunk-delay-ms MS]
                                        [--rtt-ms 50 --link-mbps 400] [--grid 16:0:archive,16:0:frames]
                                        [--skip-full]

``--server-nodelay`` sets TCP_NODELAY on the mirror server's sockets (as real
HTTP servers do); without it every small response can stall ~40 ms on
Nagle's algorithm meeting delayed ACKs over loopback, which punishes the
many-small-requests selective fetch rather than the client.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from hypersim_assets.common.layout import MemberSelection
from hypersim_assets.download.http_client import HttpClient
from hypersim_assets.download.scene_fetch import fetch_scene_members
from hypersim_assets.download.source import Location
from hypersim_assets.synthetic import mirror_server
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import Faults, MirrorServer

MB = 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--mirror", type=Path, help="reuse (or create) a synthetic mirror in this folder")
    parser.add_argument("--server-nodelay", action="store_true", help="TCP_NODELAY on the loopback server's sockets")
    parser.add_argument(
        "--chunk-delay-ms",
        type=float,
        default=0.0,
        help="server sleeps this long before each 64 KiB it sends: a per-connection bandwidth cap for both ways",
    )
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="link model: round trip per request")
    parser.add_argument("--link-mbps", type=float, default=None, help="link model: shared bandwidth cap")
    parser.add_argument("--grid", default="", help="comma-separated WORKERS:GAP_BYTES settings to compare")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the grid (interleaved); best is shown")
    parser.add_argument("--skip-full", action="store_true", help="skip the full-zip download and extraction")
    args = parser.parse_args()
    grid = [_grid_entry(item) for item in args.grid.split(",") if item]
    if args.server_nodelay:
        mirror_server._Handler.disable_nagle_algorithm = True  # what StreamRequestHandler offers for this

    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        root = args.mirror or Path(tmp) / "mirror"
        zips = sorted((root / "scenes").glob("*.zip")) if (root / "scenes").is_dir() else []
        if not zips:
            started = time.monotonic()
            write_synthetic_mirror(root, MirrorSpec(scenes=1, cameras=args.cameras, frames=args.frames))
            print(f"wrote synthetic mirror in {time.monotonic() - started:.1f} s")
            zips = sorted((root / "scenes").glob("*.zip"))
        zip_path = zips[0]
        scene = zip_path.stem
        faults = Faults(delay_s=args.chunk_delay_ms / 1000.0)
        with MirrorServer(root, faults=faults, rtt_ms=args.rtt_ms, link_mbps=args.link_mbps) as server:
            url = f"{server.url}/scenes/{zip_path.name}"
            if grid:
                print(f"scene {scene}; link: {server.link.describe()}")
                _grid(server, url, scene, Path(tmp), grid, args)
            if args.skip_full:
                return
            full_file = Path(tmp) / "full.zip"
            with HttpClient() as client, open(full_file, "wb") as f:
                started = time.monotonic()
                client.get_range(url, 0, None, f)
                f.flush()
                full_s = time.monotonic() - started
            full_bytes = full_file.stat().st_size
            # The end-to-end alternative: the full download, then zipfile extracts the selection.
            started = time.monotonic()
            with zipfile.ZipFile(full_file) as zf:
                for name in MemberSelection().select(scene, zf.namelist()):
                    zf.extract(name, Path(tmp) / "extracted")
            extract_s = time.monotonic() - started
            report = fetch_scene_members(
                Location(url=url), scene, Path(tmp) / "raw", MemberSelection(), workers=args.workers
            )

    if args.chunk_delay_ms:
        cap = 64 * 1024 / (args.chunk_delay_ms / 1000.0) / MB
        print(f"server capped at about {cap:.1f} MB/s per connection ({args.chunk_delay_ms} ms per 64 KiB)")
    print(
        f"scene {scene}: zip {report.zip_bytes / MB:.1f} MB, {report.members_selected} members selected "
        f"({report.bytes_selected / MB:.1f} MB compressed)"
    )
    print(
        f"bytes fetched / zip bytes: {report.bytes_fetched / report.zip_bytes:.3f} "
        f"({report.bytes_fetched / MB:.2f} MB of {report.zip_bytes / MB:.2f} MB)"
    )
    print(f"full download:   {full_s:7.3f} s  {full_bytes / full_s / MB:8.1f} MB/s")
    print(
        f"selective fetch: {report.seconds:7.3f} s  {report.throughput / MB:8.1f} MB/s (network bytes), "
        f"{report.bytes_selected / report.seconds / MB:.1f} MB/s of selected members, workers={args.workers}"
    )
    print(f"full + extract:  {full_s + extract_s:7.3f} s  (zipfile extraction of the selection took {extract_s:.3f} s)")
    print(
        f"selective/full: time {report.seconds / full_s:.2f}x, throughput {report.throughput * full_s / full_bytes:.2f}x; "
        f"selective/(full + extract): time {report.seconds / (full_s + extract_s):.2f}x"
    )


def _grid_entry(item: str) -> tuple[int, int, str]:
    """``WORKERS:GAP_BYTES[:ORDER]`` -> (workers, gap bytes, fetch order)."""
    parts = item.split(":")
    return int(parts[0]), int(parts[1]), parts[2] if len(parts) > 2 else "frames"


def _grid(server: MirrorServer, url: str, scene: str, tmp: Path, grid: list[tuple[int, int, str]], args) -> None:  # noqa: ANN001
    """Fetch the scene once per grid setting (``--repeat`` interleaved rounds) and print a table."""
    best: dict[tuple[int, int, str], tuple[float, int, int]] = {}
    for round_ in range(args.repeat):
        for setting in grid:
            workers, gap, order = setting
            dest = tmp / f"grid-{workers}-{gap}-{order}-{round_}"
            server.reset_log()
            report = fetch_scene_members(
                Location(url=url),
                scene,
                dest,
                MemberSelection(),
                workers=workers,
                coalesce_gap_bytes=gap,
                fetch_order=order,
            )
            requests = len(server.requests)
            shutil.rmtree(dest)
            if setting not in best or report.seconds < best[setting][0]:
                best[setting] = (report.seconds, requests, report.bytes_fetched)
    rate = (args.link_mbps or 0) * 1e6 / 8
    first = best[grid[0]][0]
    print("\n| workers | gap bytes | order | seconds | requests | MB fetched | / link floor | / first row |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for setting in grid:
        seconds, requests, nbytes = best[setting]
        floor = f"{seconds / (nbytes / rate):.2f}x" if rate else "-"
        print(
            f"| {setting[0]} | {setting[1]} | {setting[2]} | {seconds:.2f} | {requests} | {nbytes / MB:.1f} | {floor} |"
            f" {seconds / first:.2f}x |"
        )


if __name__ == "__main__":
    main()
