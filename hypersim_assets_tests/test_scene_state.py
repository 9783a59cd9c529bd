"""Which scene partitions the frame index reports failed: the quick answer (no query of the
partition status when no partition can be FAILED) equals Dagster's full status query."""

from __future__ import annotations

import dagster as dg

from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME, scene_partitions
from hypersim_assets.defs.scene_state import (
    CONVERTED_KEY,
    RAW_KEY,
    _no_partition_can_be_failed,
    partition_status,
    scene_failures,
)

SCENES = ["ai_001_001", "ai_001_002", "ai_001_003"]


def _scene_assets(failing: set[str]) -> dg.AssetsDefinition:
    """Stand-ins for the scene step: both scene assets, failing for the partitions in ``failing``."""

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(RAW_KEY, partitions_def=scene_partitions),
            dg.AssetSpec(CONVERTED_KEY, partitions_def=scene_partitions),
        ],
        can_subset=True,
        name="scene_step",
    )
    def scene_step(context):  # untyped: the string annotation (future import) trips Dagster's context check
        if context.partition_key in failing:
            raise dg.Failure(f"scene {context.partition_key}: not found upstream")
        for key in context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=key)

    return scene_step


def _run(instance, scene: str, *, fail: bool, keys=(RAW_KEY, CONVERTED_KEY)) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [_scene_assets({scene} if fail else set())],
        instance=instance,
        partition_key=scene,
        selection=list(keys),
        raise_on_error=False,
    )


def _failed_by_status(instance) -> set[str]:
    """The definition: partitions whose raw_scene or converted_scene status is FAILED (the full query)."""
    return {
        p
        for key in (RAW_KEY, CONVERTED_KEY)
        for p, status in partition_status(instance, key, SCENES).items()
        if status == "FAILED"
    }


def test_failures_equal_the_full_status_query_through_a_scene_history():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SCENES_PARTITIONS_NAME, SCENES)
        assert scene_failures(instance, SCENES) == {} and _failed_by_status(instance) == set()

        assert _run(instance, SCENES[0], fail=False).success
        assert scene_failures(instance, SCENES) == {} and _failed_by_status(instance) == set()

        failed_run = _run(instance, SCENES[1], fail=True)
        assert not failed_run.success
        failures = scene_failures(instance, SCENES)
        assert set(failures) == {SCENES[1]} == _failed_by_status(instance)
        assert "not found upstream" in failures[SCENES[1]] and failed_run.run_id in failures[SCENES[1]]

        # Only raw_scene attempted, and failed: the scene is reported (converted_scene was never run).
        assert not _run(instance, SCENES[2], fail=True, keys=(RAW_KEY,)).success
        assert set(scene_failures(instance, SCENES)) == {SCENES[1], SCENES[2]} == _failed_by_status(instance)

        assert _run(instance, SCENES[1], fail=False).success
        assert _run(instance, SCENES[2], fail=False).success
        assert scene_failures(instance, SCENES) == {} and _failed_by_status(instance) == set()


def test_stored_failed_status_without_failed_run_asks_in_full():
    """No FAILURE run is left, but Dagster's stored status cache still names a failed partition:
    the quick answer defers to the full query (which then decides), never answers "none" itself."""
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SCENES_PARTITIONS_NAME, SCENES)
        assert _no_partition_can_be_failed(instance, (RAW_KEY, CONVERTED_KEY))
        failed_run = _run(instance, SCENES[0], fail=True)
        assert not _no_partition_can_be_failed(instance, (RAW_KEY, CONVERTED_KEY))  # a FAILURE run
        assert _failed_by_status(instance) == {SCENES[0]}  # the UI looked: FAILED is now in the stored cache
        instance.delete_run(failed_run.run_id)
        assert not instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        assert not _no_partition_can_be_failed(instance, (RAW_KEY, CONVERTED_KEY))  # the stored cache
        assert set(scene_failures(instance, SCENES)) == _failed_by_status(instance)
