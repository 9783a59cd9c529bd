"""The reason a failed scene carries into the frame index (``reason`` column and the
``failed_scenes`` metadata): the error a user can act on, not Dagster's wrapper."""

from __future__ import annotations

import dagster as dg

from hypersim_assets.definitions import defs
from hypersim_assets.defs.scene_state import scene_failures
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.conftest import resource_config as _config


def _run(job_name: str, config: dict, instance, **kwargs):
    return defs.resolve_job_def(job_name).execute_in_process(
        run_config=config, instance=instance, raise_on_error=False, **kwargs
    )


def test_a_scene_whose_resource_could_not_start_names_the_field(small_mirror, tmp_path):
    mirror, summary = small_mirror
    scene = summary.scenes[0]
    with dg.instance_for_test() as instance, MirrorServer(mirror) as server:
        config = _config(server.url, tmp_path / "data")
        assert _run(
            "hypersim_catalog_job", config, instance, asset_selection=[dg.AssetKey("hypersim_metadata")]
        ).success
        bad = _config(server.url, tmp_path / "data", conversion={"workers": -1})
        assert not _run("hypersim_scene_job", bad, instance, partition_key=scene).success
        failures = scene_failures(instance, summary.scenes)
    assert set(failures) == {scene}
    # Was: 'Execution of run for "hypersim_scene_job" failed. An exception was thrown during execution.'
    assert "workers" in failures[scene] and "greater than or equal to 0" in failures[scene], failures
