"""``hypersim-assets materialize`` with the reference converter's options and ``--config``:
each option reaches the runs' config (read back from the instance) and has its effect on
the output; a bad config file fails before any run starts, naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hypersim_assets.catalog import metadata as md
from hypersim_assets.common.layout import dataset_dir
from hypersim_assets.convert.frame_conversion import ConversionSettings
from hypersim_assets.convert.scene_conversion import convert_scene
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror
from hypersim_assets_tests.cli_runs import make_home, run_cli

SPEC = MirrorSpec(scenes=1, cameras=2, frames=6, height=48, width=64)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    summary = write_synthetic_mirror(root, SPEC)
    assert summary.edge_cases["tilt_shift_scenes"] == summary.scenes  # so --no-tilt-shift-conversion matters
    return root, summary


def _runs(home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs())


def _block(run: dg.DagsterRun, resource: str) -> dict:
    return run.run_config["resources"][resource]["config"]


@pytest.fixture(scope="module")
def reference_options_run(mirror, tmp_path_factory):
    root, summary = mirror
    work = tmp_path_factory.mktemp("options")
    home = make_home(work / "home")
    data = work / "data"
    args = ["materialize", "--source", str(root), "--data-root", str(data), "--all-scenes"]
    args += ["--additional-subsamples", "2", "3", "--n-processes", "1", "--no-tilt-shift-conversion"]
    args += ["--png-compression", "fast", "--members", "all"]
    proc = run_cli(args, home, cwd=work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home, data, summary.scenes[0]


@pytest.mark.e2e
def test_every_option_reaches_every_run_as_config(reference_options_run):
    home, data, _ = reference_options_run
    runs = _runs(home)
    # metadata, then the scene with the index and views in the same run
    assert sorted(run.job_name for run in runs) == ["hypersim_catalog_job", "hypersim_scene_and_index_job"]
    for run in runs:
        assert _block(run, "catalog")["subsamples"] == "1,2,3"
        assert _block(run, "conversion") == {"workers": 1, "tilt_shift": False, "png_compression": "fast"}
        assert _block(run, "download") == {"members": "all"}
        assert _block(run, "hypersim")["data_root"] == str(data.resolve())


@pytest.mark.e2e
def test_additional_subsamples_write_the_reference_lists(reference_options_run):
    _, data, _ = reference_options_run
    dataset = dataset_dir(data)
    for split in ("train", "valid", "test"):
        assert (dataset / f"{split}.txt").is_file()
        for n in (2, 3):
            assert (dataset / f"{split}_every_{n}th.txt").is_file()
        assert not (dataset / f"{split}_every_10th.txt").exists()  # the default 10 was replaced
    full = set((dataset / "train.txt").read_text().split())
    for n in (2, 3):
        view = pd.read_parquet(dataset / "views" / f"every_nth_split_N{n}.parquet")
        listed = (dataset / f"train_every_{n}th.txt").read_text().split()
        assert listed == list(view[(view["split"] == "train") & view["present"]]["stem"])
        assert set(listed) <= full
    assert not (dataset / "views" / "every_nth_split_N10.parquet").exists()


@pytest.mark.e2e
def test_members_all_fetches_more_than_the_conversion_reads(reference_options_run, mirror):
    _, data, scene = reference_options_run
    raw_scene = data / "raw" / scene
    previews = [p for p in raw_scene.rglob("*") if p.is_file() and "preview" in p.parent.name]
    assert previews, "members=all should fetch the preview images the conversion does not read"


@pytest.mark.e2e
def test_no_tilt_shift_output_equals_in_process_conversion(reference_options_run, tmp_path):
    _, data, scene = reference_options_run
    tables = md.read_metadata(data / "raw")
    frames = md.scene_frames(tables, scene)
    params = md.camera_parameters_row(tables, scene)
    expected_root = tmp_path / "flat"
    tilted_root = tmp_path / "tilted"
    # The run used --png-compression fast: the same here, so the files must be byte-identical.
    flat = ConversionSettings(tilt_shift=False, png_compression="fast")
    tilted = ConversionSettings(tilt_shift=True, png_compression="fast")
    convert_scene(data / "raw" / scene, scene, frames, params, expected_root, flat)
    convert_scene(data / "raw" / scene, scene, frames, params, tilted_root, tilted)
    cli_dataset = dataset_dir(data)
    outputs = sorted(
        p.relative_to(expected_root)
        for p in expected_root.rglob("*")
        if p.is_file() and not p.relative_to(expected_root).parts[0].startswith(".")
    )
    assert any(rel.suffix == ".png" for rel in outputs)
    for rel in outputs:
        assert (cli_dataset / rel).read_bytes() == (expected_root / rel).read_bytes(), rel
    differs_from_tilted = 0
    for rel in (r for r in outputs if r.suffix == ".png"):
        with Image.open(cli_dataset / rel) as got, Image.open(tilted_root / rel) as tilted_png:
            differs_from_tilted += not np.array_equal(np.asarray(got), np.asarray(tilted_png))
    assert differs_from_tilted > 0  # the switch changed the output


@pytest.mark.e2e
def test_creation_meta_records_the_options_as_the_reference_does(reference_options_run):
    _, data, _ = reference_options_run
    record = json.loads((dataset_dir(data) / "creation_meta.json").read_text())[-1]
    assert record["additional_meta"]["additional_subsamples"] == [2, 3]
    assert record["additional_meta"]["apply_tilt_shift_conversion"] is False
    assert record["settings"] == {
        "subsamples": [1, 2, 3],
        "tilt_shift": False,
        "png_compression": "fast",
        "n_processes": 1,
        "members": "all",
    }
    # The options are recorded as settings, not as the raw command line: argv may carry a
    # source URL with a password, so provenance keeps only the program's name.
    assert "--additional-subsamples" not in record["command"]


GOOD_CONFIG = """\
resources:
  conversion:
    config:
      workers: 1
      png_compression: small
  catalog:
    config:
      subsamples: "1,5"
"""


@pytest.mark.e2e
def test_config_file_applies_to_every_run_and_flags_override_it(mirror, tmp_path):
    root, _ = mirror
    home = make_home(tmp_path / "home")
    config = tmp_path / "run.yaml"
    config.write_text(GOOD_CONFIG)
    data = tmp_path / "data"
    args = ["materialize", "--source", str(root), "--data-root", str(data), "--config", str(config)]
    proc = run_cli([*args, "--multiprocessing"], home, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = _runs(home)
    assert len(runs) == 2  # no scene named: metadata, then index and views
    for run in runs:
        # --multiprocessing (workers 0 = one per core) wins over the file's workers; the rest is the file's.
        assert _block(run, "conversion") == {"workers": 0, "png_compression": "small"}
        assert _block(run, "catalog") == {"subsamples": "1,5"}
    assert (dataset_dir(data) / "train_every_5th.txt").is_file()
    assert not (dataset_dir(data) / "train_every_10th.txt").exists()


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("resources:\n  conversion:\n    config:\n      workers: [1\n", ["not valid YAML", "line"]),
        ("- just\n- a list\n", ["not a mapping"]),
        (
            "resources:\n  catalog:\n    config:\n      subsampels: [1, 2]\n",
            ['"subsampels"', "resources:catalog:config"],
        ),
        ("resources:\n  no_such_resource:\n    config: {}\n", ['"no_such_resource"']),
        (
            "resources:\n  conversion:\n    config:\n      workers: -1\n"
            "  download:\n    config:\n      max_attempts: 0\n",
            [
                "resources.conversion.config.workers: must be at least 0 (got -1)",
                "resources.download.config.max_attempts: must be at least 1 (got 0)",
            ],
        ),
    ],
    ids=["malformed", "not-a-mapping", "unknown-field", "unknown-resource", "out-of-range"],
)
def test_bad_config_file_fails_before_any_run(mirror, tmp_path, text, expected):
    root, _ = mirror
    home = make_home(tmp_path / "home")
    config = tmp_path / "run.yaml"
    config.write_text(text)
    args = ["materialize", "--source", str(root), "--data-root", str(tmp_path / "data"), "--config", str(config)]
    proc = run_cli(args, home, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    for word in expected:
        assert word in proc.stderr, proc.stderr
    assert _runs(home) == []
    assert not (tmp_path / "data").exists()
