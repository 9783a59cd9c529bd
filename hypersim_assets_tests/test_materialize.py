"""How many runs ``materialize`` launches and what each one carries, on a tiny synthetic
mirror in a real instance: the last scene's run also rebuilds the index and views, a
second materialize skips the metadata run while the metadata on disk is unchanged, and
a failed last scene still gets an index run that shows it."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import pandas as pd
import pytest

from hypersim_assets.catalog.frame_index import INDEX_FILE
from hypersim_assets.common.layout import SPLIT_CSV, dataset_dir, raw_dir
from hypersim_assets.definitions import defs
from hypersim_assets.materialize import MaterializeError, local_pool_workers, materialize, resource_run_config
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror

# Whole materialisations through a real instance: the slow end-to-end loop.
pytestmark = pytest.mark.e2e

SPEC = MirrorSpec(scenes=2, cameras=2, frames=2, height=24, width=32)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    summary = write_synthetic_mirror(root, SPEC)
    return root, summary.scenes


def _jobs(instance: dg.DagsterInstance, run_ids: list[str]) -> list[str]:
    return [instance.get_run_by_id(run_id).job_name for run_id in run_ids]


def _index(data) -> pd.DataFrame:
    return pd.read_parquet(dataset_dir(data) / INDEX_FILE)


def test_one_scene_is_two_runs_and_a_second_scene_skips_the_unchanged_metadata(mirror, tmp_path):
    root, scenes = mirror
    data = tmp_path / "data"
    lines: list[str] = []
    with dg.instance_for_test() as instance:
        first = materialize(defs, instance, source=str(root), data_root=data, scenes=[scenes[0]], echo=lines.append)
        assert _jobs(instance, first.run_ids) == ["hypersim_catalog_job", "hypersim_scene_and_index_job"]
        assert set(_index(data).query("status == 'converted'")["scene"]) == {scenes[0]}

        second = materialize(defs, instance, source=str(root), data_root=data, scenes=[scenes[1]], echo=lines.append)
        assert _jobs(instance, second.run_ids) == ["hypersim_scene_and_index_job"]
        assert f"unchanged since run {first.run_ids[0]}" in "\n".join(lines)
        assert second.asset_metadata["hypersim_metadata"]["scenes"] == len(scenes)
        assert set(_index(data).query("status == 'converted'")["scene"]) == set(scenes)

        # Metadata bytes on disk that differ from the recorded data version: fetched and verified again.
        split_csv = raw_dir(data) / SPLIT_CSV
        split_csv.write_bytes(split_csv.read_bytes() + b"\n")
        third = materialize(defs, instance, source=str(root), data_root=data, scenes=[scenes[1]], echo=lines.append)
        assert _jobs(instance, third.run_ids)[0] == "hypersim_catalog_job"
        assert split_csv.read_bytes() == (root / SPLIT_CSV).read_bytes()

        # Another source: its metadata is fetched, whatever is on disk.
        other = tmp_path / "other_mirror"
        shutil.copytree(root, other)
        fourth = materialize(defs, instance, source=str(other), data_root=data, scenes=[scenes[1]], echo=lines.append)
        assert _jobs(instance, fourth.run_ids)[0] == "hypersim_catalog_job"


def test_a_failed_last_scene_under_keep_going_still_gets_an_index_that_shows_it(mirror, tmp_path):
    root, scenes = mirror
    broken = tmp_path / "broken_mirror"
    shutil.copytree(root, broken)
    last = sorted(scenes)[-1]
    (broken / "scenes" / f"{last}.zip").unlink()
    data = tmp_path / "data"
    with dg.instance_for_test() as instance:
        summary = materialize(
            defs, instance, source=str(broken), data_root=data, all_scenes=True, keep_going=True, echo=lambda _: None
        )
        assert list(summary.failed_scenes) == [last]
        assert last in summary.failed_scenes[last]
        assert _jobs(instance, summary.run_ids) == [
            "hypersim_catalog_job",
            "hypersim_scene_job",
            "hypersim_scene_and_index_job",  # failed in its scene steps: the index and views never ran
            "hypersim_catalog_job",  # so they run on their own
        ]
    index = _index(data)
    rows = index[index["scene"] == last]
    assert len(rows) > 0 and (rows["status"] != "converted").all()
    # Its included frames name the failed step and run (excluded ones keep the metadata's reason).
    failed = rows[rows["reason"].str.contains(f"scene_step: scene {last}")]
    assert len(failed) > 0 and failed["reason"].str.contains(summary.run_ids[2]).all(), rows["reason"].tolist()


def test_the_pool_started_ahead_has_the_size_the_scene_steps_ask_for(monkeypatch):
    monkeypatch.delenv("HYPERSIM_DASK_SCHEDULER", raising=False)
    cores = os.cpu_count() or 1
    assert local_pool_workers({}) == cores  # workers 0: one per core, as ConversionResource says
    assert local_pool_workers({"resources": {"conversion": {"config": {"workers": 3}}}}) == 3
    assert local_pool_workers({"resources": {"conversion": {"config": {"workers": {"env": "N_WORKERS"}}}}}) == cores
    monkeypatch.setenv("N_WORKERS", "5")
    assert local_pool_workers({"resources": {"conversion": {"config": {"workers": {"env": "N_WORKERS"}}}}}) == 5
    # Frames convert on Dask: no local pool to start.
    assert local_pool_workers({"resources": {"dask": {"config": {"local_cluster_workers": 2}}}}) is None
    assert local_pool_workers({"resources": {"dask": {"config": {"scheduler_address": "tcp://h:8786"}}}}) is None
    monkeypatch.setenv("HYPERSIM_DASK_SCHEDULER", "tcp://h:8786")
    assert local_pool_workers({}) is None


def test_a_resource_value_the_runs_would_reject_fails_before_any_run(mirror, tmp_path):
    """Called as a library, with a value Dagster's schema accepts but the resource does not:
    a MaterializeError naming the field, no run, nothing written (not a pydantic traceback, nor
    a failed run that says no step failed)."""
    root, scenes = mirror
    data = tmp_path / "data"
    run_config = resource_run_config(str(root), data)
    run_config["resources"]["conversion"] = {"config": {"workers": -1}}
    with dg.instance_for_test() as instance:
        with pytest.raises(MaterializeError) as failed:
            materialize(defs, instance, scenes=[scenes[0]], run_config=run_config)
        assert "resources.conversion.config.workers: must be at least 0 (got -1)" in str(failed.value)
        assert instance.get_runs() == []
    assert not data.exists()
