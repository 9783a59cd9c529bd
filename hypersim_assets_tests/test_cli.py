"""The ``hypersim-assets`` command end to end: the demo at a small size against a
real persistent Dagster instance and a real loopback HTTP mirror, and
``materialize`` on an existing instance (metadata-only, one scene, bad scene)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hypersim_assets.common.layout import PNG_MODALITIES, dataset_dir

SMALL = ["--scenes", "3", "--cameras", "2", "--frames", "3", "--height", "48", "--width", "64"]

pytestmark = pytest.mark.e2e  # the whole command line (demo, materialize) in subprocesses


def _run(args: list[str], env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("HYPERSIM_SOURCE", None)
    env.pop("HYPERSIM_DATA_ROOT", None)
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "hypersim_assets.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    home = root / "dagster_home"
    home.mkdir()
    proc = _run(["demo", "--workdir", str(root), *SMALL], {"DAGSTER_HOME": str(home)}, cwd=root)
    return root, home, proc


def test_demo_succeeds_and_prints_summary(demo_run):
    root, _, proc = demo_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for word in ("dataset:", "scenes:", "frames:", "bytes:", "seconds:"):
        assert word in proc.stdout
    assert str(dataset_dir(root / "data")) in proc.stdout


def test_demo_materialised_every_asset_in_the_persistent_instance(demo_run):
    root, home, proc = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        scenes = sorted(instance.get_dynamic_partitions("hypersim_scenes"))
        assert len(scenes) == 3
        for key in ("raw_scene", "converted_scene"):
            assert instance.get_materialized_partitions(dg.AssetKey(key)) == set(scenes), key
        for key in ("hypersim_metadata", "frame_index", "subsample_views"):
            assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None, key
        if (os.cpu_count() or 1) > 1:  # one worker per core: a pool only with more than one
            # The demo's scenes share the pool it starts ahead of its runs, as materialize's do.
            for scene in scenes:
                (record,) = instance.fetch_materializations(
                    dg.AssetRecordsFilter(dg.AssetKey("converted_scene"), asset_partitions=[scene]), limit=1
                ).records
                assert record.asset_materialization.metadata["pool_adopted"].value is True, scene


def test_demo_output_is_readable(demo_run):
    root, _, proc = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    dataset = dataset_dir(root / "data")
    index = pd.read_parquet(dataset / "frame_index.parquet")
    converted = index[index["status"] == "converted"]
    assert len(converted) > 0
    # The mirror holds one included frame whose files are missing from its zip.
    assert (index["status"] == "input_missing").sum() == 1
    row = converted.iloc[0]
    for modality in PNG_MODALITIES:
        with Image.open(dataset / row[f"path_{modality}"]) as im:
            assert im.size == (64, 48)
            arr = np.asarray(im)
            assert arr.size > 0
    assert (dataset / "train.txt").is_file()


def test_materialize_without_scenes_builds_catalog_only(tmp_path):
    from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror

    mirror = tmp_path / "mirror"
    write_synthetic_mirror(mirror, MirrorSpec(scenes=2, cameras=1, frames=2, height=24, width=32))
    home = tmp_path / "home"
    home.mkdir()
    data = tmp_path / "data"
    proc = _run(
        ["materialize", "--source", str(mirror), "--data-root", str(data)], {"DAGSTER_HOME": str(home)}, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    index = pd.read_parquet(dataset_dir(data) / "frame_index.parquet")
    assert set(index["status"].astype(str)) <= {"pending", "excluded"}
    assert (index["status"] == "pending").sum() > 0
    assert not (data / "raw" / "ai_001_001").exists() or not any((data / "raw").glob("ai_*/images"))

    # A scene that is not in the metadata: clear error, non-zero exit.
    proc = _run(
        ["materialize", "--source", str(mirror), "--data-root", str(data), "--scene", "ai_999_999"],
        {"DAGSTER_HOME": str(home)},
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "ai_999_999" in proc.stderr and "unknown scene" in proc.stderr


def test_root_is_a_deprecated_alias_of_each_commands_own_name(capsys):
    from hypersim_assets.cli import _deprecated_alias, build_parser, run_options

    args = build_parser().parse_args(["materialize", "--root", "/data/hs"])
    assert run_options(args).data_root == "/data/hs"
    assert "`materialize --root` is deprecated; use `materialize --data-root`" in capsys.readouterr().err
    args = build_parser().parse_args(["materialize", "--root", "/old", "--data-root", "/new"])
    assert run_options(args).data_root == "/new"
    args = build_parser().parse_args(["demo", "--root", "/tmp/demo"])
    assert _deprecated_alias(args, "workdir", "root", "demo") == "/tmp/demo"
    assert "use `demo --workdir`" in capsys.readouterr().err


def test_reference_options_parse_to_run_options():
    from hypersim_assets.cli import build_parser, run_options

    parse = build_parser().parse_args
    opts = run_options(parse(["materialize", "--additional-subsamples", "2", "5", "--n-processes", "8"]))
    assert (opts.additional_subsamples, opts.workers, opts.tilt_shift) == ((2, 5), 8, None)
    opts = run_options(
        parse(["materialize", "--additional-subsamples", "--multiprocessing", "--no-tilt-shift-conversion"])
    )
    assert (opts.additional_subsamples, opts.workers, opts.tilt_shift) == ((), 0, False)
    opts = run_options(parse(["materialize"]))
    assert opts.additional_subsamples is None and opts.workers is None and opts.png_compression is None
    for bad in (["--n-processes", "2", "--multiprocessing"], ["--additional-subsamples", "0"], ["--members", "globs"]):
        with pytest.raises(SystemExit):
            parse(["materialize", *bad])
