"""The reason a failed scene carries into the frame index (``reason`` column and the
``failed_scenes`` metadata): the error a user can act on, not Dagster's wrapper."""

from __future__ import annotations

import dagster as dg

from hypersim_assets.defs.scene_state import scene_failures
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.conftest import materialize_metadata
from hypersim_assets_tests.conftest import resource_config as _config
from hypersim_assets_tests.conftest import run_job as _run

# As dagster.yaml sets them: a lost run worker is retried, a failed step is not.
RUN_RETRIES = {"run_retries": {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}}


def test_a_value_out_of_range_fails_one_step_once_naming_the_field(small_mirror, tmp_path):
    """``conversion.workers: -1`` passes Dagster's schema. It must fail the scene step, not the
    resource's start: a run that fails before any step is retried by the instance's run retries
    (twice per scene of a backfill), and the frame index must show the field, not Dagster's wrapper."""
    mirror, summary = small_mirror
    scene = summary.scenes[0]
    with dg.instance_for_test(overrides=RUN_RETRIES) as instance, MirrorServer(mirror) as server:
        config = _config(server.url, tmp_path / "data")
        materialize_metadata(instance, config)
        bad = _config(server.url, tmp_path / "data", conversion={"workers": -1})
        result = _run("hypersim_scene_job", bad, instance, partition_key=scene)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        # A step failure, not retried within the run, so the daemon does not re-launch it either.
        assert run.tags.get("dagster/failure_reason") == "STEP_FAILURE", run.tags
        assert run.tags.get("dagster/will_retry") == "false", run.tags
        retries = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
        assert retries.records == []
        failures = scene_failures(instance, summary.scenes)
    assert set(failures) == {scene}
    # Was: 'Execution of run for "hypersim_scene_job" failed. An exception was thrown during execution.'
    assert "resources.conversion.config.workers: must be at least 0 (got -1)" in failures[scene], failures
