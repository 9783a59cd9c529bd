"""A failed file check, as the UI's check history lists it: its description says what is
missing and what to materialise to mend it (the metadata holds the full lists)."""

from __future__ import annotations

import json

import dagster as dg

from hypersim_assets.definitions import defs
from hypersim_assets_tests.conftest import materialize_metadata, resource_config
from hypersim_assets_tests.conftest import run_job as _run


def _checks_alone(job_name: str, checks: list[tuple[str, str]], config: dict, instance, **kwargs):
    keys = {dg.AssetCheckKey(dg.AssetKey(asset), name) for asset, name in checks}
    job = defs.resolve_job_def(job_name).get_subset(asset_selection=set(), asset_check_selection=keys)
    result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False, **kwargs)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_failed_file_checks_describe_what_is_missing_and_what_to_rerun(small_mirror, mirror_server, tmp_path):
    _, mirror = small_mirror
    scene = mirror.scenes[0]
    data = tmp_path / "data"
    config = resource_config(mirror_server.url, data)
    with dg.instance_for_test() as instance:
        materialize_metadata(instance, config)
        assert _run("hypersim_scene_job", config, instance, partition_key=scene).success
        assert _run("hypersim_catalog_job", config, instance, asset_selection=[dg.AssetKey("frame_index")]).success
        png = sorted((data / "dataset").glob(f"*/depth/{scene}/*/*.png"))[0]
        png.unlink()
        member = sorted(json.loads((data / "raw" / scene / ".hypersim-manifest.json").read_text())["members"])[0]
        (data / "raw" / member).unlink()

        scene_checks = _checks_alone(
            "hypersim_scene_job",
            [("converted_scene", "outputs_complete"), ("raw_scene", "members_verified")],
            config,
            instance,
            partition_key=scene,
        )
        index_checks = _checks_alone(
            "hypersim_catalog_job", [("frame_index", "converted_files_exist")], config, instance
        )
    rel = str(png.relative_to(data / "dataset"))
    outputs = scene_checks["outputs_complete"]
    assert not outputs.passed and rel in outputs.description and "converted_scene" in outputs.description
    members = scene_checks["members_verified"]
    assert not members.passed and member in members.description and "raw_scene" in members.description
    files = index_checks["converted_files_exist"]
    assert not files.passed and rel in files.description and scene in files.description, files.description
