"""The raw assets in a real Dagster instance: metadata registers the scene
partitions; raw_scene fetches selectively over real HTTP, skips on a re-run, and
fails clearly on a missing zip."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from hypersim_assets.common.layout import MemberSelection
from hypersim_assets.definitions import defs
from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.conftest import require_shared
from hypersim_assets_tests.conftest import resource_config as _config


def _run(job_name: str, config: dict, instance, **kwargs):
    return defs.resolve_job_def(job_name).execute_in_process(
        run_config=config, instance=instance, raise_on_error=False, **kwargs
    )


@pytest.fixture(scope="module")
def mirror(small_mirror):
    root, summary = small_mirror
    return root, summary.scenes


def test_metadata_registers_public_scenes_as_partitions(mirror, tmp_path):
    mirror, scenes = mirror
    with dg.instance_for_test() as instance, MirrorServer(mirror) as server:
        result = _run(
            "hypersim_catalog_job",
            _config(server.url, tmp_path),
            instance,
            asset_selection=[dg.AssetKey("hypersim_metadata")],
        )
        assert result.success
        assert sorted(instance.get_dynamic_partitions(SCENES_PARTITIONS_NAME)) == sorted(scenes)
        for name in (
            "metadata_images_split_scene_v1.csv",
            "metadata_camera_trajectories.csv",
            "metadata_camera_parameters.csv",
        ):
            assert (tmp_path / "raw" / name).read_bytes() == (mirror / name).read_bytes()
        mat = result.asset_materializations_for_node("hypersim_metadata")[0]
        assert mat.metadata["scenes"].value == 2
        checks = result.get_asset_check_evaluations()
        assert [c.check_name for c in checks] == ["metadata_consistent"] and checks[0].passed


def test_real_metadata_gives_457_scene_partitions(tmp_path):
    metadata = require_shared("metadata")
    with dg.instance_for_test() as instance:
        result = _run(
            "hypersim_catalog_job",
            _config(str(metadata), tmp_path),
            instance,
            asset_selection=[dg.AssetKey("hypersim_metadata")],
        )
        assert result.success
        assert len(instance.get_dynamic_partitions(SCENES_PARTITIONS_NAME)) == 457


@pytest.mark.e2e
def test_raw_scene_fetches_selected_members_then_skips(mirror, tmp_path):
    import zipfile

    mirror, scenes = mirror
    scene = scenes[0]

    with dg.instance_for_test() as instance, MirrorServer(mirror) as server:
        config = _config(server.url, tmp_path)
        assert _run(
            "hypersim_catalog_job", config, instance, asset_selection=[dg.AssetKey("hypersim_metadata")]
        ).success
        result = _run(
            "hypersim_scene_job", config, instance, partition_key=scene, asset_selection=[dg.AssetKey("raw_scene")]
        )
        assert result.success
        meta = result.asset_materializations_for_node("scene_step")[0].metadata
        with zipfile.ZipFile(mirror / "scenes" / f"{scene}.zip") as zf:
            wanted = MemberSelection().select(scene, zf.namelist())
            for name in wanted:
                assert (tmp_path / "raw" / name).read_bytes() == zf.read(name), name
        assert meta["members_selected"].value == len(wanted)
        assert meta["members_fetched"].value == len(wanted)
        assert 0 < meta["bytes_fetched"].value < meta["zip_bytes"].value
        first_version = instance.get_latest_materialization_event(dg.AssetKey("raw_scene")).asset_materialization.tags[
            "dagster/data_version"
        ]

        server.reset_log()
        again = _run(
            "hypersim_scene_job", config, instance, partition_key=scene, asset_selection=[dg.AssetKey("raw_scene")]
        )
        assert again.success
        meta2 = again.asset_materializations_for_node("scene_step")[0].metadata
        assert meta2["members_skipped"].value == len(wanted) and meta2["members_fetched"].value == 0
        # Only the central directory was read again, no member.
        assert len([r for r in server.requests if r.method == "GET"]) == 1
        # Unchanged bytes, unchanged data version: nothing ripples downstream.
        second_version = instance.get_latest_materialization_event(dg.AssetKey("raw_scene")).asset_materialization.tags[
            "dagster/data_version"
        ]
        assert first_version == second_version


def test_raw_scene_missing_zip_fails_naming_scene_and_url(mirror, tmp_path):
    mirror, scenes = mirror
    scene = scenes[1]
    broken = tmp_path / "broken"
    shutil.copytree(mirror, broken)
    (broken / "scenes" / f"{scene}.zip").unlink()
    with dg.instance_for_test() as instance, MirrorServer(broken) as server:
        config = _config(server.url, tmp_path / "data")
        assert _run(
            "hypersim_catalog_job", config, instance, asset_selection=[dg.AssetKey("hypersim_metadata")]
        ).success
        result = _run(
            "hypersim_scene_job", config, instance, partition_key=scene, asset_selection=[dg.AssetKey("raw_scene")]
        )
        assert not result.success
        failures = [e for e in result.all_events if e.is_step_failure]
        message = failures[0].step_failure_data.error.message
        assert scene in message and f"{server.url}/scenes/{scene}.zip" in message
        # A permanent error is not retried by the asset's RetryPolicy.
        assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_a_missing_metadata_file_fails_naming_it_and_the_others_arrive_whole(mirror, tmp_path):
    mirror, _ = mirror
    broken = tmp_path / "broken"
    shutil.copytree(mirror, broken)
    missing = "metadata_camera_trajectories.csv"  # the middle one of the three
    (broken / missing).unlink()
    with dg.instance_for_test() as instance, MirrorServer(broken) as server:
        result = _run(
            "hypersim_catalog_job",
            _config(server.url, tmp_path / "data"),
            instance,
            asset_selection=[dg.AssetKey("hypersim_metadata")],
        )
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        message = failure.step_failure_data.error.message
        assert f"metadata file {missing} from {server.url}/{missing}" in message and "404" in message
        assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    raw = tmp_path / "data" / "raw"
    # The two that exist were fetched at the same time, whole; nothing half-written stays behind.
    assert sorted(p.name for p in raw.iterdir()) == [
        "metadata_camera_parameters.csv",
        "metadata_images_split_scene_v1.csv",
    ]
    for path in raw.iterdir():
        assert path.read_bytes() == (mirror / path.name).read_bytes()
