"""The asset checks in a real Dagster instance, read back the way the UI reads them:
each scene's check result is its own partition (whatever the order of the runs),
and a check re-run on its own reads the disk as it is now, without a new
materialisation."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from hypersim_assets.definitions import defs
from hypersim_assets.defs.partitions import scene_partitions
from hypersim_assets_tests.conftest import resource_config


def _run(job: str, config: dict, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        run_config=config, instance=instance, raise_on_error=False, **kwargs
    )


def _metadata_then_scenes(instance: dg.DagsterInstance, config: dict, scenes: list[str]) -> None:
    assert _run("hypersim_catalog_job", config, instance, asset_selection=[dg.AssetKey("hypersim_metadata")]).success
    for scene in scenes:
        assert _run("hypersim_scene_job", config, instance, partition_key=scene).success, scene


def _run_checks_alone(instance: dg.DagsterInstance, config: dict, checks: list[tuple[str, str]], scene: str):
    """Execute only the named checks for one scene partition, as the UI's "Execute" on a check does."""
    keys = {dg.AssetCheckKey(dg.AssetKey(asset), name) for asset, name in checks}
    job = defs.resolve_job_def("hypersim_scene_job").get_subset(asset_selection=set(), asset_check_selection=keys)
    return job.execute_in_process(run_config=config, instance=instance, partition_key=scene, raise_on_error=False)


def _latest_per_partition(instance: dg.DagsterInstance, asset: str, check: str, scenes: list[str]) -> dict:
    """The latest evaluation of a check for each scene partition (the per-partition query of the UI's Checks tab)."""
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    latest = {}
    for scene in scenes:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [key], partition_filter=PartitionKeyFilter(key=scene)
        ).get(key)
        assert record is not None and record.partition == scene, (check, scene)
        latest[scene] = record
    return latest


def _partition_statuses(instance: dg.DagsterInstance, asset: str, check: str) -> dict[str, str]:
    """Each partition's latest check status, from the records the UI's partition status bar is built from."""
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    infos = instance.event_log_storage.get_asset_check_partition_info([key])
    return {info.partition_key: info.latest_execution_status.value for info in infos}


@pytest.mark.e2e
@pytest.mark.parametrize("missing_first", [True, False], ids=["missing-scene-first", "missing-scene-last"])
def test_each_scene_keeps_its_own_frames_converted_result(small_mirror, mirror_server, tmp_path, missing_first):
    _, mirror = small_mirror
    missing = mirror.edge_cases["missing_frame"]
    assert missing is not None
    bad = missing["scene"]
    good = next(s for s in mirror.scenes if s != bad)
    order = [bad, good] if missing_first else [good, bad]
    config = resource_config(mirror_server.url, tmp_path / "data")
    with dg.instance_for_test() as instance:
        _metadata_then_scenes(instance, config, order)

        latest = _latest_per_partition(instance, "converted_scene", "frames_converted", order)
        warned = latest[bad].event.dagster_event.event_specific_data
        assert warned.passed is False and warned.severity == dg.AssetCheckSeverity.WARN
        assert latest[bad].status == AssetCheckExecutionRecordStatus.FAILED
        frame = f"{missing['camera']}/{missing['frame_id']:04d}"
        assert [f["frame"] for f in warned.metadata["not_converted"].value] == [frame]
        assert warned.metadata["not_converted"].value[0]["status"] == "input_missing"
        assert latest[good].event.dagster_event.event_specific_data.passed
        assert _partition_statuses(instance, "converted_scene", "frames_converted") == {
            bad: "FAILED",
            good: "SUCCEEDED",
        }
        for asset, check in (("raw_scene", "members_verified"), ("converted_scene", "outputs_complete")):
            assert _partition_statuses(instance, asset, check) == {bad: "SUCCEEDED", good: "SUCCEEDED"}, check


@pytest.mark.e2e
def test_a_check_rerun_alone_reads_the_disk_and_touches_only_its_partition(small_mirror, mirror_server, tmp_path):
    _, mirror = small_mirror
    scenes = list(mirror.scenes)
    damaged, intact = scenes
    data = tmp_path / "data"
    config = resource_config(mirror_server.url, data)
    with dg.instance_for_test() as instance:
        _metadata_then_scenes(instance, config, scenes)
        materializations = len(instance.fetch_materializations(dg.AssetKey("converted_scene"), limit=100).records)

        png = sorted((data / "dataset").glob(f"*/depth/{damaged}/*/*.png"))[0]
        png.unlink()
        manifest = json.loads((data / "raw" / damaged / ".hypersim-manifest.json").read_text())
        member = sorted(manifest["members"])[0]
        (data / "raw" / member).unlink()

        result = _run_checks_alone(
            instance, config, [("converted_scene", "outputs_complete"), ("raw_scene", "members_verified")], damaged
        )
        assert not result.success  # blocking checks failed with ERROR severity
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert set(evaluations) == {"outputs_complete", "members_verified"}
        outputs = evaluations["outputs_complete"]
        assert not outputs.passed and outputs.partition == damaged
        assert str(png.relative_to(data / "dataset")) in outputs.metadata["incomplete"].value
        members = evaluations["members_verified"]
        assert not members.passed
        assert [e for e in members.metadata["details"].value["examples"] if e.startswith(f"{member}: missing")]

        # No new materialisation, and the intact scene's results are untouched.
        assert (
            len(instance.fetch_materializations(dg.AssetKey("converted_scene"), limit=100).records) == materializations
        )
        assert _partition_statuses(instance, "converted_scene", "outputs_complete") == {
            damaged: "FAILED",
            intact: "SUCCEEDED",
        }
        assert _partition_statuses(instance, "raw_scene", "members_verified") == {
            damaged: "FAILED",
            intact: "SUCCEEDED",
        }


def test_scene_checks_carry_the_scene_partitions_and_every_check_has_a_description():
    graph = defs.resolve_asset_graph()
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        assert spec.description, key
        partitioned = key.asset_key.to_user_string() in ("raw_scene", "converted_scene")
        assert (spec.partitions_def == scene_partitions) is partitioned, key
