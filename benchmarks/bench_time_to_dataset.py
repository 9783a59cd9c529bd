"""Benchmark: time to dataset over a modelled link, ours against the seed's procedure and the floor.

One scene of the synthetic mirror with every upstream member kind (frame HDF5 of every kind,
previews, ``_detail`` files; ``--cameras 3 --frames 30`` gives 2 cameras x 30 frames with
files, since the mirror plants its third camera as an excluded trajectory), served on loopback
through the mirror server's link model (``--rtt-ms``, ``--link-mbps``). In one run it measures:

* ours: ``hypersim-assets materialize --source URL --root EMPTY --scene S`` as a subprocess,
  with a fresh ``DAGSTER_HOME``; wall time until it exits (metadata, the scene, index, views);
  the scene step downloads and converts at once, so its breakdown shows the member fetches
  (from the server's log) and the conversion span and its overlap with the download (from
  ``converted_scene``'s metadata);
* the seed's procedure on the same link: the metadata CSVs and the whole zip, each in one
  stream, then unzip; with ``--reference`` then the reference converter (its own
  multiprocessing, one process per core) on the unzipped scene;
* the floor: two round trips (connect, first request) + max(bytes we fetched / bandwidth,
  conversion CPU / cores) + one frame's conversion (the last frame cannot overlap the download).

It prints the three, our ratio to the floor and the seed's ratio to ours, and where our time
went: CLI start-up, the Dagster runs (from the instance's event log), the scene's central
directory and member fetches (from the server's request log), time waiting on the link, and
conversion.

    python benchmarks/bench_time_to_dataset.py --work /tmp/ttd [--rtt-ms 50 --link-mbps 400] \\
        [--reference /work/ref/nicr --reference-python /work/ref/venv/bin/python]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

from hypersim_assets.common import layout
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import MirrorServer, RequestRecord

SCENE_STEP = "scene_step"  # the op that materialises raw_scene and converted_scene together

# Runs inside the reference's Python: its prepare_dataset main, without importing the package's
# __init__ (which imports every dataset and its dependencies).
_REFERENCE_MAIN = r"""
import sys, types
pkg = types.ModuleType("nicr_scene_analysis_datasets")
pkg.__path__ = [sys.argv[1] + "/nicr_scene_analysis_datasets"]
sys.modules["nicr_scene_analysis_datasets"] = pkg
import nicr_scene_analysis_datasets.datasets.hypersim.prepare_dataset as p
p.main(sys.argv[2:])
"""


def _mirror(work: Path, args: argparse.Namespace) -> tuple[Path, str]:
    mirror = work / "mirror"
    zips = sorted((mirror / "scenes").glob("*.zip")) if (mirror / "scenes").is_dir() else []
    if not zips or not (mirror / layout.SPLIT_CSV).exists():
        started = time.monotonic()
        spec = MirrorSpec(1, args.cameras, args.frames, args.height, args.width, args.seed)
        write_synthetic_mirror(mirror, spec)
        print(f"wrote the synthetic mirror in {time.monotonic() - started:.0f} s")
        zips = sorted((mirror / "scenes").glob("*.zip"))
    return mirror, zips[0].stem


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _run_events(home: Path) -> list[dict]:
    """Per run of the instance at ``home``: its job, partition, and event timestamps (epoch s) by type and step."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    out = []
    with dg.DagsterInstance.get() as instance:
        for run in instance.get_runs():
            events: dict[tuple[str, str | None], float] = {}
            materialized: dict[str, dict] = {}
            for entry in instance.all_logs(run.run_id):
                ev = entry.dagster_event
                if ev is None:
                    continue
                events.setdefault((ev.event_type_value, ev.step_key), entry.timestamp)
                events[("last:" + ev.event_type_value, ev.step_key)] = entry.timestamp
                if ev.is_step_materialization:
                    mat = ev.step_materialization_data.materialization
                    materialized[mat.asset_key.to_user_string()] = {
                        k: getattr(v, "value", v) for k, v in mat.metadata.items()
                    }
            times = [t for t in events.values()]
            out.append(
                {
                    "job": run.job_name,
                    "partition": run.tags.get("dagster/partition"),
                    "start": min(times),
                    "end": max(times),
                    "events": events,
                    "materialized": materialized,
                }
            )
    return sorted(out, key=lambda r: r["start"])


def _step_seconds(run: dict, step: str) -> float:
    ev = run["events"]
    start = ev.get(("STEP_START", step))
    end = ev.get(("last:STEP_SUCCESS", step)) or ev.get(("last:STEP_FAILURE", step))
    return (end - start) if start is not None and end is not None else 0.0


def _zip_phases(requests: list[RequestRecord], zip_path: str, cd_offset: int) -> dict[str, float]:
    """Central-directory and member phases of the scene zip's requests (monotonic times)."""
    cd, members = [], []
    for r in requests:
        if r.path != zip_path or r.method != "GET":
            continue
        rng = (r.range_header or "").removeprefix("bytes=")
        first = rng.split("-")[0]
        (cd if (not first or int(first) >= cd_offset) else members).append(r)
    out = {"cd_requests": len(cd), "member_requests": len(members)}
    if cd:
        out["cd_s"] = max(r.done_s for r in cd) - min(r.arrived_s for r in cd)
    if members:
        out["members_s"] = max(r.done_s for r in members) - min(r.arrived_s for r in members)
        out["member_bytes"] = sum(r.body_bytes for r in members)
        out["cd_to_first_member_s"] = min(r.arrived_s for r in members) - max((r.done_s for r in cd), default=0)
    return out


def run_ours(server: MirrorServer, work: Path, scene: str, zip_file: Path, tag: str) -> dict:
    root, home = _fresh(work / f"ours_{tag}"), _fresh(work / f"ours_{tag}_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    server.reset_log()
    link0 = (server.link.stats.body_bytes, server.link.stats.throttled_s)
    exe = Path(sys.executable).with_name("hypersim-assets")
    cmd = [str(exe), "materialize", "--source", server.url, "--root", str(root), "--scene", scene]
    t_epoch, t0 = time.time(), time.monotonic()
    proc = subprocess.run(cmd, env={**os.environ, "DAGSTER_HOME": str(home)}, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ours failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    requests = server.requests
    with zipfile.ZipFile(zip_file) as zf:
        cd_offset = zf.start_dir
    frame_s = frame_seconds(root / "raw", scene)
    runs = _run_events(home)
    scene_run = next(r for r in runs if r["partition"] == scene)
    # One scene step (download and conversion overlapping); older versions had two steps.
    pipelined = ("STEP_START", SCENE_STEP) in scene_run["events"]
    download_s = 0.0 if pipelined else _step_seconds(scene_run, "raw_scene")
    convert_s = 0.0 if pipelined else _step_seconds(scene_run, "converted_scene")
    conv_meta = scene_run["materialized"].get("converted_scene", {})
    steps_s = sum(
        _step_seconds(scene_run, step) for (kind, step) in scene_run["events"] if kind == "STEP_START" and step
    )
    others = [r for r in runs if r is not scene_run]
    return {
        "wall_s": wall,
        "convert_pool_s": float(conv_meta.get("seconds", 0.0)),
        "startup_s": runs[0]["start"] - t_epoch,
        "exit_s": (t_epoch + wall) - runs[-1]["end"],
        "catalog_runs_s": sum(r["end"] - r["start"] for r in others),
        "between_runs_s": sum(b["start"] - a["end"] for a, b in zip(runs, runs[1:])),
        "scene_run_s": scene_run["end"] - scene_run["start"],
        "scene_run_overhead_s": (scene_run["end"] - scene_run["start"]) - steps_s,
        "scene_step_s": _step_seconds(scene_run, SCENE_STEP) if pipelined else download_s + convert_s,
        "download_step_s": download_s,
        "convert_step_s": convert_s,
        "conversion_span_s": float(conv_meta.get("conversion_seconds", 0.0)),
        "overlap_s": float(conv_meta.get("overlap_seconds", 0.0)),
        "pool_start_s": float(conv_meta.get("pool_start_seconds", 0.0)),
        "first_frame_sent_s": float(conv_meta.get("first_frame_sent_seconds", 0.0)),
        "frames_converted": int(conv_meta.get("frames_converted", 0)),
        "frame_s": frame_s,
        "bytes_fetched": server.link.stats.body_bytes - link0[0],
        "throttled_s": server.link.stats.throttled_s - link0[1],
        "requests": len(requests),
        **_zip_phases(requests, f"/scenes/{scene}.zip", cd_offset),
    }


def _fetch(url: str, dest: Path) -> int:
    """One GET, streamed to ``dest``; returns the byte count."""
    n = 0
    with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as f:
        while chunk := resp.read(1 << 20):
            f.write(chunk)
            n += len(chunk)
    return n


def run_seed(server: MirrorServer, work: Path, scene: str, args: argparse.Namespace, tag: str) -> dict:
    """Apple's procedure: each file whole in one stream, unzip, then (optionally) the reference converter."""
    raw, out = _fresh(work / f"seed_{tag}_raw"), work / f"seed_{tag}_out"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.monotonic()
    nbytes = 0
    for name in (layout.SPLIT_CSV, layout.TRAJECTORIES_CSV, layout.CAMERA_PARAMETERS_CSV):
        nbytes += _fetch(f"{server.url}/{name}", raw / name)
    zip_dest = raw / f"{scene}.zip"
    nbytes += _fetch(f"{server.url}/scenes/{scene}.zip", zip_dest)
    t_download = time.monotonic() - t0
    t1 = time.monotonic()
    with zipfile.ZipFile(zip_dest) as zf:
        zf.extractall(raw)
    zip_dest.unlink()
    t_unzip = time.monotonic() - t1
    result = {"download_s": t_download, "unzip_s": t_unzip, "bytes": nbytes}
    if args.reference:
        _drop_frames_without_files(raw)
        # The reference reads the camera parameters under this doubled suffix (else downloads them).
        shutil.copy(raw / layout.CAMERA_PARAMETERS_CSV, raw / (layout.CAMERA_PARAMETERS_CSV + ".csv"))
        t2 = time.monotonic()
        cmd = [args.reference_python, "-c", _REFERENCE_MAIN, str(args.reference / "src"), str(out), str(raw)]
        cmd += ["--n-processes", str(args.reference_processes)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"reference failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        result["reference_s"] = time.monotonic() - t2
    result["wall_s"] = time.monotonic() - t0
    return result


def _drop_frames_without_files(raw: Path) -> int:
    """Remove split rows whose frame files are absent (the mirror plants one, as upstream has some):
    the reference stops at the first such frame, so it gets the frames it can convert."""
    path = raw / layout.SPLIT_CSV
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    col = {c: i for i, c in enumerate(header)}
    keep = [header]
    for row in body:
        scene, cam, fid = row[col["scene_name"]], row[col["camera_name"]], int(row[col["frame_id"]])
        member = layout.frame_member(scene, cam, fid, "final", "color")
        if row[col["included_in_public_release"]] != "True" or (raw / member).exists():
            keep.append(row)
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(keep)
    return len(rows) - len(keep)


def frame_seconds(raw_root: Path, scene: str, sample: int = 3) -> float:
    """Seconds to convert one frame on one core, in this process (read, convert, encode; no writes),
    the median over ``sample`` frames of the scene ours downloaded."""
    from hypersim_assets.catalog import metadata as md
    from hypersim_assets.convert.frame_conversion import convert_arrays, encode_outputs

    tables = md.read_metadata(raw_root)
    params = dict(md.camera_parameters_row(tables, scene))
    times = []
    for t in md.scene_frames(tables, scene):
        if len(times) == sample:
            break
        started = time.perf_counter()
        try:
            frame = convert_arrays(raw_root / scene, scene, t.camera, t.frame_id, params, True)
        except Exception:  # the planted missing frame
            continue
        encode_outputs(frame, t.scene_class, "default")
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def floor_seconds(ours: dict, rtt_s: float, link_bytes_per_s: float, cores: int) -> dict:
    """The floor and its parts (see the module docstring)."""
    frames = max(ours["frames_converted"], 1)
    per_frame = ours["frame_s"]
    conv_cpu = per_frame * frames
    link = ours["bytes_fetched"] / link_bytes_per_s
    total = 2 * rtt_s + max(link, conv_cpu / cores) + per_frame
    return {"floor_s": total, "link_s": link, "conversion_cpu_s": conv_cpu, "frame_s": per_frame}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="scratch folder (the mirror is kept for reuse)")
    ap.add_argument("--rtt-ms", type=float, default=50.0)
    ap.add_argument("--link-mbps", type=float, default=400.0)
    ap.add_argument("--cameras", type=int, default=3, help="the last is planted as an excluded trajectory")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--height", type=int, default=768)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", type=Path, help="checkout of nicr-scene-analysis-datasets (outside this repo)")
    ap.add_argument("--reference-python", default=sys.executable)
    ap.add_argument("--reference-processes", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-seed", action="store_true", help="measure ours only")
    args = ap.parse_args(argv)

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    mirror, scene = _mirror(work, args)
    zip_file = mirror / "scenes" / f"{scene}.zip"
    cores = os.cpu_count() or 1
    tag = f"{args.rtt_ms:g}ms_{args.link_mbps:g}mbps"
    with MirrorServer(mirror, rtt_ms=args.rtt_ms, link_mbps=args.link_mbps) as server:
        print(f"scene {scene}: {zip_file.stat().st_size / 1e6:.1f} MB zip; link: {server.link.describe()}")
        ours = run_ours(server, work, scene, zip_file, tag)
        seed = None if args.skip_seed else run_seed(server, work, scene, args, tag)
    rate = args.link_mbps * 1e6 / 8
    floor = floor_seconds(ours, args.rtt_ms / 1000, rate, cores)

    print(f"\n| {tag} | seconds |\n| --- | --- |")
    print(f"| ours (materialize, empty root, fresh instance) | {ours['wall_s']:.1f} |")
    if seed:
        what = "download + unzip + reference" if "reference_s" in seed else "download + unzip only"
        print(f"| seed's procedure ({what}) | {seed['wall_s']:.1f} |")
        print(f"| seed's download + unzip | {seed['download_s'] + seed['unzip_s']:.1f} |")
    print(f"| floor | {floor['floor_s']:.1f} |")
    print(f"\nours / floor: {ours['wall_s'] / floor['floor_s']:.2f}x")
    if seed:
        print(f"seed / ours: {seed['wall_s'] / ours['wall_s']:.2f}x")
        print(f"seed download+unzip / ours: {(seed['download_s'] + seed['unzip_s']) / ours['wall_s']:.2f}x")

    z = zip_file.stat().st_size
    print(f"\nwhere our {ours['wall_s']:.1f} s went:")
    rows = [
        ("CLI start-up (imports, definitions, instance) before the first run", ours["startup_s"]),
        ("catalog runs (metadata; frame index and views)", ours["catalog_runs_s"]),
        ("between runs (materialize's own work)", ours["between_runs_s"]),
        ("scene run: Dagster overhead outside its steps", ours["scene_run_overhead_s"]),
        ("scene run: scene step (download and conversion, overlapping)", ours["scene_step_s"]),
        ("  of which raw_scene step (download; versions with two steps)", ours["download_step_s"]),
        ("  of which converted_scene step (versions with two steps)", ours["convert_step_s"]),
        ("  of which central directory (first to last CD request)", ours.get("cd_s", 0.0)),
        ("  of which CD done to first member request", ours.get("cd_to_first_member_s", 0.0)),
        ("  of which member fetches (first to last member request)", ours.get("members_s", 0.0)),
        ("  of which worker pool start (until every worker imported the code)", ours["pool_start_s"]),
        ("  of which conversion start to the first frame sent", ours["first_frame_sent_s"]),
        ("  of which conversion span (first frame sent to last frame done)", ours["conversion_span_s"]),
        ("    of that, before the download ended (overlap)", ours["overlap_s"]),
        (
            f"  conversion CPU: {ours['frames_converted']} frames on {cores} cores",
            floor["conversion_cpu_s"] / cores,
        ),
        ("after the last run until exit", ours["exit_s"]),
    ]
    for label, s in rows:
        print(f"  {label:<72} {s:7.2f} s")
    print(
        f"  bytes fetched {ours['bytes_fetched'] / 1e6:.1f} MB ({ours['bytes_fetched'] / z:.0%} of the zip) in"
        f" {ours['requests']} requests ({ours.get('member_requests', 0)} member, {ours.get('cd_requests', 0)} CD):"
        f" {floor['link_s']:.2f} s of link time at {args.link_mbps:g} Mbit/s;"
        f" responses waited {ours['throttled_s']:.2f} s on the cap (summed over connections)"
    )
    print(
        f"  conversion: {ours['frames_converted']} frames, {floor['conversion_cpu_s']:.1f} core-s"
        f" ({1000 * floor['frame_s']:.0f} ms per frame on one core, measured in this process);"
        f" the conversion took {ours['convert_pool_s']:.1f} s from its start (pool start; in the scene step, with the download)"
    )

    if seed:
        print(
            f"seed: download {seed['download_s']:.1f} s ({seed['bytes'] / 1e6:.1f} MB), unzip {seed['unzip_s']:.1f} s"
            + (f", reference {seed['reference_s']:.1f} s" if "reference_s" in seed else "")
        )
    print("RESULT " + json.dumps({"tag": tag, "ours": ours, "seed": seed, "floor": floor}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
