"""The ``hypersim-assets`` command: build a synthetic mirror, serve one on
loopback, run the demo, or materialise the asset graph against an instance."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from hypersim_assets.download.source import ENV_DATA_ROOT, ENV_SOURCE, data_root_from_env

DEMO_SPEC = {"scenes": 3, "cameras": 2, "frames": 4, "height": 768, "width": 1024, "seed": 0}


def _add_spec_args(p: argparse.ArgumentParser, defaults: dict) -> None:
    p.add_argument("--scenes", type=int, default=defaults["scenes"], help="number of scenes")
    p.add_argument("--cameras", type=int, default=defaults["cameras"], help="camera trajectories per scene")
    p.add_argument("--frames", type=int, default=defaults["frames"], help="frames per trajectory")
    p.add_argument("--height", type=int, default=defaults["height"], help="image height in pixels")
    p.add_argument("--width", type=int, default=defaults["width"], help="image width in pixels")
    p.add_argument("--seed", type=int, default=defaults["seed"], help="random seed (same seed, same bytes)")


def _spec(args: argparse.Namespace):
    from hypersim_assets.synthetic.mirror import MirrorSpec

    for name in ("scenes", "cameras", "frames", "height", "width"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be at least 1")
    return MirrorSpec(
        scenes=args.scenes,
        cameras=args.cameras,
        frames=args.frames,
        height=args.height,
        width=args.width,
        seed=args.seed,
    )


def cmd_synth_mirror(args: argparse.Namespace) -> int:
    from hypersim_assets.synthetic.mirror import write_synthetic_mirror

    started = time.monotonic()
    summary = write_synthetic_mirror(Path(args.dir), _spec(args), workers=args.workers)
    print(
        f"synthetic mirror at {summary.root}: {len(summary.scenes)} scenes, {summary.frames_total} frames "
        f"({summary.frames_included} in the public release), {summary.zip_bytes / 2**20:.1f} MiB of zips, "
        f"{time.monotonic() - started:.1f} s"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from hypersim_assets.synthetic.mirror_server import MirrorServer

    if args.rtt_ms < 0 or (args.link_mbps is not None and args.link_mbps <= 0):
        raise SystemExit("--rtt-ms must be at least 0 and --link-mbps positive")
    with MirrorServer(
        Path(args.dir), host=args.host, port=args.port, rtt_ms=args.rtt_ms, link_mbps=args.link_mbps
    ) as server:
        print(f"serving {args.dir} at {server.url} ({server.link.describe()}; Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def _dir_bytes(path: Path) -> tuple[int, int]:
    files = total = 0
    for p in path.rglob("*"):
        if p.is_file():
            files += 1
            total += p.stat().st_size
    return files, total


def _print_summary(summary, data_root: Path) -> None:
    import pandas as pd

    from hypersim_assets.catalog.frame_index import INDEX_FILE
    from hypersim_assets.common.layout import dataset_dir

    dataset = dataset_dir(data_root)
    index = pd.read_parquet(dataset / INDEX_FILE)
    status = index["status"].value_counts().to_dict()
    files, size = _dir_bytes(dataset)
    raw_files, raw_size = _dir_bytes(data_root / "raw")
    print()
    print(f"dataset:  {dataset}")
    print(
        f"index:    {dataset / INDEX_FILE}  ({len(index)} rows: "
        + ", ".join(f"{k} {v}" for k, v in sorted(status.items()))
        + ")"
    )
    print(
        f"scenes:   {len(summary.scenes)} converted"
        + (f", {len(summary.failed_scenes)} failed" if summary.failed_scenes else "")
    )
    print(f"frames:   {int(status.get('converted', 0))} converted")
    print(f"bytes:    {size / 2**20:.1f} MiB in {files} files (raw: {raw_size / 2**20:.1f} MiB in {raw_files} files)")
    print(f"seconds:  {summary.seconds:.1f}")


def cmd_demo(args: argparse.Namespace) -> int:
    from hypersim_assets.definitions import defs
    from hypersim_assets.materialize import MaterializeError, instance_from_env_or, materialize
    from hypersim_assets.synthetic.mirror import write_synthetic_mirror
    from hypersim_assets.synthetic.mirror_server import MirrorServer

    started = time.monotonic()
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="hypersim-demo-"))
    root = root.resolve()
    mirror = root / "mirror"
    data_root = root / "data"
    print(f"[hypersim] demo in {root}")
    spec = _spec(args)
    print(
        f"[hypersim] writing a synthetic mirror ({spec.scenes} scenes x {spec.cameras} cameras x {spec.frames} frames, {spec.width}x{spec.height}) ..."
    )
    write_synthetic_mirror(mirror, spec, workers=os.cpu_count() or 1)
    instance_home = Path(os.environ.get("DAGSTER_HOME") or tempfile.mkdtemp(prefix="hypersim-dagster-home-"))
    try:
        with MirrorServer(mirror) as server:
            print(f"[hypersim] serving the mirror at {server.url}")
            with instance_from_env_or(instance_home) as instance:
                summary = materialize(defs, instance, source=server.url, data_root=data_root, all_scenes=True)
    except MaterializeError as exc:
        print(f"[hypersim] demo failed: {exc}", file=sys.stderr)
        return 1
    summary.seconds = time.monotonic() - started
    _print_summary(summary, data_root)
    print(
        f"DAGSTER_HOME: {os.environ.get('DAGSTER_HOME')}   (open the UI: DAGSTER_HOME=... dagster dev -w workspace.yaml)"
    )
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    from hypersim_assets.definitions import defs
    from hypersim_assets.materialize import MaterializeError, instance_from_env_or, materialize

    data_root = Path(args.root) if args.root else data_root_from_env()
    source = args.source or os.environ.get(ENV_SOURCE) or "upstream"
    try:
        with instance_from_env_or(data_root / ".dagster_home") as instance:
            summary = materialize(
                defs,
                instance,
                source=source,
                data_root=data_root,
                scenes=args.scene or (),
                all_scenes=args.all_scenes,
                keep_going=args.keep_going,
            )
    except MaterializeError as exc:
        print(f"[hypersim] materialize failed: {exc}", file=sys.stderr)
        return 1
    _print_summary(summary, data_root.resolve())
    return 1 if summary.failed_scenes else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hypersim-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth-mirror", help="write a synthetic Hypersim source (metadata CSVs + scenes/*.zip)")
    p.add_argument("dir", help="output directory")
    _add_spec_args(p, DEMO_SPEC)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes writing scenes")
    p.set_defaults(func=cmd_synth_mirror)

    p = sub.add_parser("serve", help="serve a source directory on loopback with HTTP Range support")
    p.add_argument("dir")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--rtt-ms", type=float, default=0.0, help="round-trip latency added to every request (ms)")
    p.add_argument("--link-mbps", type=float, help="bandwidth cap shared by all connections (Mbit/s; default none)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="build a synthetic mirror, serve it, and materialise every asset through Dagster")
    p.add_argument("--root", help="demo folder (default: a new temporary folder)")
    _add_spec_args(p, DEMO_SPEC)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("materialize", help="materialise metadata, scenes, index and views against DAGSTER_HOME")
    p.add_argument("--source", help=f"Hypersim source (default: env {ENV_SOURCE}, else upstream)")
    p.add_argument("--root", help=f"data root (default: env {ENV_DATA_ROOT}, else ./hypersim-data)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scene", action="append", help="scene partition to materialise (repeatable)")
    g.add_argument("--all-scenes", action="store_true", help="every scene partition")
    p.add_argument("--keep-going", action="store_true", help="continue with other scenes after one fails")
    p.set_defaults(func=cmd_materialize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
