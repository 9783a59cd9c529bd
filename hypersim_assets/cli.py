"""The ``hypersim-assets`` command: build a synthetic mirror, serve one on
loopback, run the demo, or materialise the asset graph against an instance.

Past 400 lines because it holds the four subcommands' parsers and handlers together (their
options' help is most of it); option value parsing lives in :mod:`hypersim_assets.common.option_values`."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from hypersim_assets.common.option_values import float_in_range, int_at_least, int_in_range, nonempty
from hypersim_assets.convert.warm_pool import kept_pools, shutdown_warm_pool
from hypersim_assets.download.source import ENV_DATA_ROOT, ENV_SOURCE

if TYPE_CHECKING:  # the heavy imports (Dagster) wait until a command needs them
    from hypersim_assets.materialize import RunInterrupted
    from hypersim_assets.run_config import RunOptions

DEMO_SPEC = {"scenes": 3, "cameras": 2, "frames": 4, "height": 768, "width": 1024, "seed": 0}


def _add_spec_args(p: argparse.ArgumentParser, defaults: dict) -> None:
    positive = int_at_least(1)
    p.add_argument("--scenes", type=positive, default=defaults["scenes"], help="number of scenes")
    p.add_argument("--cameras", type=positive, default=defaults["cameras"], help="camera trajectories per scene")
    p.add_argument("--frames", type=positive, default=defaults["frames"], help="frames per trajectory")
    p.add_argument("--height", type=positive, default=defaults["height"], help="image height in pixels")
    p.add_argument("--width", type=positive, default=defaults["width"], help="image width in pixels")
    p.add_argument("--seed", type=int_at_least(0), default=defaults["seed"], help="random seed (same seed, same bytes)")


def _spec(args: argparse.Namespace):
    from hypersim_assets.synthetic.mirror import MirrorSpec

    return MirrorSpec(
        scenes=args.scenes,
        cameras=args.cameras,
        frames=args.frames,
        height=args.height,
        width=args.width,
        seed=args.seed,
    )


def _write_mirror(root: Path, spec, workers: int, command: str):
    """The synthetic mirror's summary, or None after saying on stderr which path could not be written and why."""
    from hypersim_assets.synthetic.mirror import write_synthetic_mirror

    try:
        return write_synthetic_mirror(root, spec, workers=workers)
    except OSError as exc:  # a path that is a file, unwritable, on a full disk
        print(f"[hypersim] {command} failed: {exc.filename or root}: {exc.strerror or exc}", file=sys.stderr)
        return None


def cmd_synth_mirror(args: argparse.Namespace) -> int:
    started = time.monotonic()
    summary = _write_mirror(Path(args.dir), _spec(args), args.workers, "synth-mirror")
    if summary is None:
        return 1
    print(
        f"synthetic mirror at {summary.root}: {len(summary.scenes)} scenes, {summary.frames_total} frames "
        f"({summary.frames_included} in the public release), {summary.zip_bytes / 2**20:.1f} MiB of zips, "
        f"{time.monotonic() - started:.1f} s"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from hypersim_assets.synthetic.mirror_server import MirrorServer

    if not Path(args.dir).is_dir():
        print(f"[hypersim] serve: {args.dir} is not a directory (a mirror: metadata CSVs and scenes/)", file=sys.stderr)
        return 2
    server = MirrorServer(Path(args.dir), host=args.host, port=args.port, rtt_ms=args.rtt_ms, link_mbps=args.link_mbps)
    try:
        server.start()
    except OSError as exc:  # port taken, host unknown or not this machine's
        print(f"[hypersim] serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        print(f"serving {args.dir} at {server.url} ({server.link.describe()}; Ctrl-C stops)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT  # stopped by the user, as any command ended by a signal
    finally:
        server.stop()


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
    """The README's first command: a synthetic mirror, served on loopback, materialised in full.
    Its scenes share one conversion pool, as those of one ``materialize`` do."""
    from hypersim_assets.sqlite_durability import sqlite_synchronous

    # Before any instance is opened (see the module for why); removed when the command returns.
    with kept_pools(), sqlite_synchronous():
        return _demo(args)


def _demo(args: argparse.Namespace) -> int:
    from hypersim_assets.definitions import defs
    from hypersim_assets.materialize import MaterializeError, RunInterrupted, instance_from_env_or, materialize
    from hypersim_assets.run_config import RunConfigError
    from hypersim_assets.synthetic.mirror_server import MirrorServer

    started = time.monotonic()
    workdir = _deprecated_alias(args, "workdir", "root", "demo")
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="hypersim-demo-"))
    root = root.resolve()
    mirror = root / "mirror"
    data_root = root / "data"
    print(f"[hypersim] demo in {root}")
    spec = _spec(args)
    print(
        f"[hypersim] writing a synthetic mirror ({spec.scenes} scenes x {spec.cameras} cameras x {spec.frames} frames, {spec.width}x{spec.height}) ..."
    )
    if _write_mirror(mirror, spec, os.cpu_count() or 1, "demo") is None:
        return 1
    instance_home = Path(os.environ.get("DAGSTER_HOME") or tempfile.mkdtemp(prefix="hypersim-dagster-home-"))
    try:
        with MirrorServer(mirror) as server:
            print(f"[hypersim] serving the mirror at {server.url}")
            with instance_from_env_or(instance_home) as instance:
                summary = materialize(defs, instance, source=server.url, data_root=data_root, all_scenes=True)
    except MaterializeError as exc:
        print(f"[hypersim] demo failed: {exc}", file=sys.stderr)
        return 1
    except RunConfigError as exc:  # no instance to run in
        print(f"[hypersim] {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as exc:
        _exit_interrupted(exc)
    summary.seconds = time.monotonic() - started
    _print_summary(summary, data_root)
    print(
        f"DAGSTER_HOME: {os.environ.get('DAGSTER_HOME')}   (open the UI: DAGSTER_HOME=... dg dev, from this repository)"
    )
    return 0


def _deprecated_alias(args: argparse.Namespace, name: str, old: str, command: str) -> str | None:
    """The value of ``--name``, or of its deprecated spelling ``--old`` (with a warning on stderr)."""
    value = getattr(args, name)
    old_value = getattr(args, f"deprecated_{old}", None)
    if old_value is not None:
        print(
            f"[hypersim] warning: `{command} --{old}` is deprecated; use `{command} --{name.replace('_', '-')}`",
            file=sys.stderr,
        )
        if value is None:
            value = old_value
    return value


def _exit_interrupted(exc: RunInterrupted) -> NoReturn:
    """End the command at once after a signal: the run was already marked and its slots freed.

    ``os._exit`` because download and conversion threads of the abandoned run would
    otherwise hold the interpreter until they finish; their partial files are resumable.
    """
    print(f"[hypersim] {exc}", file=sys.stderr)
    shutdown_warm_pool()  # os._exit skips atexit; an idle pool ends at once (a lent one was stopped)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + exc.signum)


def run_options(args: argparse.Namespace) -> RunOptions:
    """The ``materialize`` options as :class:`~hypersim_assets.run_config.RunOptions` (None = not given)."""
    from hypersim_assets.run_config import RunOptions

    subsamples = args.additional_subsamples
    return RunOptions(
        source=args.source,
        data_root=_deprecated_alias(args, "data_root", "root", "materialize"),
        additional_subsamples=tuple(subsamples) if subsamples is not None else None,
        workers=0 if args.multiprocessing else args.n_processes,
        tilt_shift=False if args.no_tilt_shift_conversion else None,
        png_compression=args.png_compression,
        members=args.members,
    )


# The jobs a materialize run may use: the run config must suit each of them.
MATERIALIZE_JOBS = ("hypersim_catalog_job", "hypersim_scene_job", "hypersim_scene_and_index_job")


def cmd_materialize(args: argparse.Namespace) -> int:
    """Materialise. The scene steps of this command share one conversion pool, one step at a time
    (:mod:`~hypersim_assets.convert.warm_pool`); it ends with the command.

    ``materialize`` starts the pool when its first run begins, once Dagster has loaded: started
    while Dagster loads, it measured slower (see the README).
    """
    from hypersim_assets.sqlite_durability import sqlite_synchronous

    # Before the instance is opened (see the module for why); removed when the command returns,
    # so a caller of main() in its own process keeps SQLite's default afterwards.
    with kept_pools(), sqlite_synchronous():
        return _materialize(args)


def _materialize(args: argparse.Namespace) -> int:
    from hypersim_assets.definitions import defs
    from hypersim_assets.materialize import MaterializeError, RunInterrupted, instance_from_env_or, materialize
    from hypersim_assets.run_config import (
        RunConfigError,
        build_run_config,
        data_root_of,
        describe_settings,
        load_run_config_file,
        validate_run_config,
    )

    jobs = [defs.resolve_job_def(name) for name in MATERIALIZE_JOBS]
    try:
        file_config = load_run_config_file(Path(args.config)) if args.config else {}
        validate_run_config(file_config, jobs)  # the file's own keys first, so errors name what the user wrote
        run_config = build_run_config(file_config, run_options(args))
        validate_run_config(run_config, jobs)
    except RunConfigError as exc:
        print(f"[hypersim] {exc}", file=sys.stderr)
        return 2
    data_root = data_root_of(run_config)
    if "execution" in file_config:
        print(f"[hypersim] note: the execution section of {args.config} is ignored (steps run in this process)")
    print(f"[hypersim] run config: {describe_settings(run_config)}")
    try:
        with instance_from_env_or(data_root / ".dagster_home") as instance:
            summary = materialize(
                defs,
                instance,
                scenes=args.scene or (),
                all_scenes=args.all_scenes,
                keep_going=args.keep_going,
                run_config=run_config,
            )
    except MaterializeError as exc:
        print(f"[hypersim] materialize failed: {exc}", file=sys.stderr)
        return 1
    except RunConfigError as exc:  # no instance to run in
        print(f"[hypersim] {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as exc:
        _exit_interrupted(exc)
    _print_summary(summary, data_root)
    if summary.failed_scenes:
        print(f"[hypersim] failed scenes: {', '.join(summary.failed_scenes)}", file=sys.stderr)
    return 1 if summary.failed_scenes else 0


def _add_materialize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        type=nonempty,
        help=f"Hypersim source: upstream, http(s)://, file:// or a directory (default: env {ENV_SOURCE}, else upstream)",
    )
    p.add_argument(
        "--data-root",
        type=nonempty,
        metavar="DIR",
        help=f"data root holding raw/, dataset/ and facts/ (default: env {ENV_DATA_ROOT}, else ./hypersim-data)",
    )
    p.add_argument("--root", dest="deprecated_root", type=nonempty, metavar="DIR", help=argparse.SUPPRESS)
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--scene", action="append", type=nonempty, metavar="NAME", help="scene partition to materialise (repeatable)"
    )
    g.add_argument("--all-scenes", action="store_true", help="every scene partition")
    p.add_argument("--keep-going", action="store_true", help="continue with other scenes after one fails")
    p.add_argument(
        "--config",
        type=nonempty,
        metavar="FILE",
        help="Dagster run config YAML (the launchpad's format) applied to every run; the options below override it",
    )

    ref = p.add_argument_group("the reference converter's options (prepare_dataset.py), same meaning")
    ref.add_argument(
        "--additional-subsamples",
        type=int_in_range(1, 2**31 - 1),  # subsample_views.MAX_SUBSAMPLE (not imported: it loads pandas)
        nargs="*",
        metavar="N",
        help="also write every-N-th views and <split>_every_<N>th.txt lists (the full lists always); "
        "default: 10, as the reference (or env HYPERSIM_SUBSAMPLES, or the --config file)",
    )
    workers = ref.add_mutually_exclusive_group()
    workers.add_argument(
        "--n-processes",
        type=int_at_least(0),
        metavar="N",
        help="conversion worker processes per scene (default: one per core; the reference's default is 1)",
    )
    workers.add_argument(
        "--multiprocessing", action="store_true", help="one conversion worker process per core (= --n-processes 0)"
    )
    ref.add_argument(
        "--no-tilt-shift-conversion",
        action="store_true",
        help="keep the tilt-shift cameras' images as rendered (datasets compatible with the reference before 0.5)",
    )

    ours = p.add_argument_group("our options")
    ours.add_argument(
        "--png-compression",
        choices=("fast", "default", "small"),
        help="PNG speed/size trade-off (default: default, within about 3%% of the reference's bytes)",
    )
    ours.add_argument(
        "--members",
        choices=("conversion", "all"),
        help="zip members to fetch: only what the conversion reads, or every member (default: conversion)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hypersim-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth-mirror", help="write a synthetic Hypersim source (metadata CSVs + scenes/*.zip)")
    p.add_argument("dir", type=nonempty, help="output directory")
    _add_spec_args(p, DEMO_SPEC)
    p.add_argument("--workers", type=int_at_least(1), default=os.cpu_count() or 1, help="processes writing scenes")
    p.set_defaults(func=cmd_synth_mirror)

    p = sub.add_parser("serve", help="serve a source directory on loopback with HTTP Range support")
    p.add_argument("dir", type=nonempty)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int_in_range(0, 65535), default=8765, help="TCP port (0: any free one)")
    p.add_argument(
        "--rtt-ms",
        type=float_in_range(0.0, 60_000.0),
        default=0.0,
        help="round-trip latency added to every request (ms)",
    )
    p.add_argument(
        "--link-mbps",
        type=float_in_range(1e-3, 1e6),
        help="bandwidth cap shared by all connections (Mbit/s; default none)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="build a synthetic mirror, serve it, and materialise every asset through Dagster")
    p.add_argument(
        "--workdir",
        type=nonempty,
        metavar="DIR",
        help="demo folder: mirror/ and data/ (default: a new temporary folder)",
    )
    p.add_argument("--root", dest="deprecated_root", type=nonempty, metavar="DIR", help=argparse.SUPPRESS)
    _add_spec_args(p, DEMO_SPEC)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "materialize",
        help="materialise metadata, scenes, index and views against DAGSTER_HOME",
        description="Materialise the metadata (skipped while the metadata on disk is the one materialised "
        "before), the named scenes (download and convert; one run each) and then the frame index and subsample "
        "views (in the last scene's run), as runs of the Dagster instance at DAGSTER_HOME (default: "
        "<data root>/.dagster_home). Options become the runs' config (shown on each run's page) and are recorded "
        "in dataset/creation_meta.json.",
    )
    _add_materialize_args(p)
    p.set_defaults(func=cmd_materialize)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command's entry point: run the subcommand, then let the interpreter exit quickly."""
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C outside a run (loading, reading the config, writing a mirror)
        print("[hypersim] interrupted (SIGINT)", file=sys.stderr)
        return 128 + signal.SIGINT
    # The interpreter's shutdown garbage-collects every object still alive (Dagster, pandas and
    # their modules), about a second of CPU here that frees nothing the OS would not. Frozen
    # objects are skipped by those passes; atexit handlers, non-daemon thread joins and the
    # flush of stdout/stderr still run, and every file and database write is closed by now.
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
