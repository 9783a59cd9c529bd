"""``converted_scene`` materialised on its own (the UI's asset selection, "materialise stale")
when the scene's raw files are not on disk: the run fails, saying to materialise
``raw_scene`` too, instead of recording every frame as lacking upstream input and so
dropping converted frames from the index and the text lists."""

from __future__ import annotations

import shutil

import dagster as dg
import pyarrow.parquet as pq

from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.conftest import materialize_metadata
from hypersim_assets_tests.conftest import resource_config as _config
from hypersim_assets_tests.conftest import run_job as _run

CONVERTED = [dg.AssetKey("converted_scene")]


def test_converting_alone_without_raw_files_fails_and_keeps_the_facts(small_mirror, tmp_path):
    mirror, summary = small_mirror
    scene = summary.scenes[1]
    data = tmp_path / "data"
    with dg.instance_for_test() as instance, MirrorServer(mirror) as server:
        config = _config(server.url, data)
        materialize_metadata(instance, config)
        assert _run("hypersim_scene_job", config, instance, partition_key=scene).success
        facts_file = data / "facts" / f"{scene}.parquet"
        before = pq.read_table(facts_file).select(["camera", "frame_id", "status"]).to_pylist()
        assert any(r["status"] == "converted" for r in before)
        shutil.rmtree(data / "raw" / scene)  # e.g. delete_raw_after_conversion, or freed by hand

        force = _config(server.url, data, conversion={"workers": 1, "force": True})
        result = _run("hypersim_scene_job", force, instance, partition_key=scene, asset_selection=CONVERTED)
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
        text = (failure.user_failure_data.description if failure.user_failure_data else "") or failure.error.message
        assert scene in text and "raw_scene" in text, text
        assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        after = pq.read_table(facts_file).select(["camera", "frame_id", "status"]).to_pylist()
        assert after == before  # no converted frame turned into input_missing

        # One member deleted by hand is caught the same way.
        assert _run("hypersim_scene_job", config, instance, partition_key=scene).success
        member = next((data / "raw" / scene / "images").rglob("*.color.hdf5"))
        member.unlink()
        result = _run("hypersim_scene_job", force, instance, partition_key=scene, asset_selection=CONVERTED)
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
        text = (failure.user_failure_data.description if failure.user_failure_data else "") or failure.error.message
        assert member.name in text and "raw_scene" in text, text
        assert pq.read_table(facts_file).select(["camera", "frame_id", "status"]).to_pylist() == before

        # Materialising both assets fetches the raw files again and converts.
        assert _run("hypersim_scene_job", force, instance, partition_key=scene).success
        assert pq.read_table(facts_file).select(["camera", "frame_id", "status"]).to_pylist() == before
