"""The backfill schedule requests exactly the missing, failed, stale, incomplete and
damaged scene partitions, never one in flight, with run keys that do not repeat work;
and what the UI shows for each planted fault agrees with it and with the index."""

from __future__ import annotations

import io
import zipfile

import dagster as dg
import pandas as pd
import pytest

from hypersim_assets.catalog.scene_outputs import SceneDiskState
from hypersim_assets.definitions import defs
from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME
from hypersim_assets.defs.resources import HypersimResource
from hypersim_assets.defs.schedules import partitions_needing_work, scene_backfill_schedule
from hypersim_assets.materialize import resource_run_config
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import MirrorServer


def test_partitions_needing_work_rules():
    parts = ["a", "b", "c", "d", "e", "f"]
    status = {"a": "MATERIALIZED", "b": "FAILED", "c": None, "d": "MATERIALIZED", "e": "IN_PROGRESS", "f": None}
    versions = {"a": "7", "d": "6"}
    work = partitions_needing_work(
        parts, status, versions, "7", in_flight={"f"}, last_run_id={"b": "run-b", "d": "run-d"}
    )
    assert [(w.partition, w.reason) for w in work] == [("b", "failed"), ("c", "missing"), ("d", "stale")]
    markers = {w.partition: w.marker for w in work}
    assert markers["b"] == "run-b" and markers["c"] == "none" and markers["d"].startswith("run-d")
    # Converted and current: the disk decides.
    disk = {
        "a": SceneDiskState("a", failed_frames=2),
        "g": SceneDiskState("g", damaged_frames=1, failed_frames=1),
        "h": SceneDiskState("h", facts_found=False),
        "i": SceneDiskState("i"),
    }
    status.update(g="MATERIALIZED", h="MATERIALIZED", i="MATERIALIZED")
    work = partitions_needing_work(
        [*parts, "g", "h", "i"], status, versions, "7", in_flight={"f"}, last_run_id={}, disk=disk
    )
    reasons = {w.partition: w.reason for w in work}
    assert reasons["a"] == "incomplete" and reasons["g"] == "outputs_missing" and reasons["h"] == "outputs_missing"
    assert "i" not in reasons


def _tick(instance, data_root=None):
    context = dg.build_schedule_context(
        instance=instance,
        repository_def=defs.get_repository_def(),
        resources={"hypersim": HypersimResource(data_root=str(data_root) if data_root else None)},
    )
    result = scene_backfill_schedule.evaluate_tick(context)
    return result.run_requests or [], result.skip_message


def test_schedule_requests_only_missing_partitions_with_stable_run_keys(tmp_path):
    summary = write_synthetic_mirror(
        tmp_path / "mirror", MirrorSpec(scenes=2, cameras=1, frames=2, height=16, width=24)
    )
    with dg.instance_for_test() as instance, MirrorServer(tmp_path / "mirror") as server:
        requests, skip = _tick(instance, tmp_path / "data")
        assert not requests and "hypersim_metadata" in skip
        config = resource_run_config(server.url, tmp_path / "data")
        catalog = defs.resolve_job_def("hypersim_catalog_job")
        assert catalog.execute_in_process(
            run_config=config, instance=instance, asset_selection=[dg.AssetKey("hypersim_metadata")]
        ).success
        scenes = sorted(instance.get_dynamic_partitions(SCENES_PARTITIONS_NAME))
        assert scenes == sorted(summary.scenes)

        requests, _ = _tick(instance, tmp_path / "data")
        assert sorted(r.partition_key for r in requests) == scenes
        assert all(r.tags["hypersim/reason"] == "missing" for r in requests)
        again, _ = _tick(instance, tmp_path / "data")
        assert [r.run_key for r in again] == [r.run_key for r in requests]  # same state, same keys: Dagster dedupes

        job = defs.resolve_job_def("hypersim_scene_job")
        assert job.execute_in_process(run_config=config, instance=instance, partition_key=scenes[0]).success
        requests, _ = _tick(instance, tmp_path / "data")
        assert [r.partition_key for r in requests] == scenes[1:]
        missing_key = requests[0].run_key

        # A failed run of the other scene: requested again as "failed", under a new run key.
        (tmp_path / "mirror" / "scenes" / f"{scenes[1]}.zip").unlink()
        failed = job.execute_in_process(
            run_config=config, instance=instance, partition_key=scenes[1], raise_on_error=False
        )
        assert not failed.success
        requests, _ = _tick(instance, tmp_path / "data")
        assert [(r.partition_key, r.tags["hypersim/reason"]) for r in requests] == [(scenes[1], "failed")]
        assert requests[0].run_key != missing_key and failed.run_id in requests[0].run_key


def _corrupt_member(zip_path, member_suffix: str) -> str:
    """Rewrite ``zip_path`` with one member's bytes replaced by garbage (a valid zip, as upstream would ship it)."""
    with zipfile.ZipFile(zip_path) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    out = io.BytesIO()
    target = next(info.filename for info, _ in entries if info.filename.endswith(member_suffix))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in entries:
            dst.writestr(info, b"\x89HDF\r\n\x1a\n" + b"\x00" * 200 if info.filename == target else data)
    zip_path.write_bytes(out.getvalue())
    return target


def _scene_ui_state(instance, scene: str) -> dict:
    """What the UI shows for a scene partition: status, materialisation metadata, check evaluation."""
    key = dg.AssetKey("converted_scene")
    pdef = dg.DynamicPartitionsDefinition(name=SCENES_PARTITIONS_NAME)
    status = instance.get_status_by_partition(key, [scene], pdef)[scene]
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=[scene]), limit=1)
    meta = {k: v.value for k, v in records.records[0].asset_materialization.metadata.items()} if records.records else {}
    check = None
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(key, "frames_converted"), limit=100
    )
    for record in history:  # newest first; checks name their scene in the metadata
        data = record.event.dagster_event.event_specific_data if record.event else None
        if isinstance(data, dg.AssetCheckEvaluation) and data.metadata["scene"].value == scene:
            check = (data.passed, data.severity.value)
            break
    return {"status": status.value if status else None, "meta": meta, "check": check}


@pytest.mark.e2e
def test_planted_faults_ui_schedule_and_index_agree(tmp_path):
    """Missing input frame, corrupt HDF5, deleted PNG, failed download, invented partition key:
    the UI's view of each scene (status, metadata, check), the schedule's next tick and the
    index agree with the completeness rule."""
    mirror = write_synthetic_mirror(tmp_path / "mirror", MirrorSpec(scenes=4, cameras=1, frames=3, height=16, width=24))
    missing = mirror.edge_cases["missing_frame"]
    scene_missing = missing["scene"]
    scene_corrupt, scene_clean, scene_gone = [s for s in mirror.scenes if s != scene_missing][:3]
    corrupt_member = _corrupt_member(
        tmp_path / "mirror" / "scenes" / f"{scene_corrupt}.zip", "frame.0001.depth_meters.hdf5"
    )
    (tmp_path / "mirror" / "scenes" / f"{scene_gone}.zip").unlink()  # the download will 404
    data = tmp_path / "data"
    with dg.instance_for_test() as instance, MirrorServer(tmp_path / "mirror") as server:
        config = resource_run_config(server.url, data)
        catalog = defs.resolve_job_def("hypersim_catalog_job")
        job = defs.resolve_job_def("hypersim_scene_job")
        metadata_only = [dg.AssetKey("hypersim_metadata")]
        assert catalog.execute_in_process(run_config=config, instance=instance, asset_selection=metadata_only).success
        instance.add_dynamic_partitions(SCENES_PARTITIONS_NAME, ["ai_999_999"])  # "Add partition" in the UI
        for scene in (scene_missing, scene_corrupt, scene_clean, scene_gone):
            job.execute_in_process(run_config=config, instance=instance, partition_key=scene, raise_on_error=False)

        ui = {s: _scene_ui_state(instance, s) for s in (scene_missing, scene_corrupt, scene_clean, scene_gone)}
        assert ui[scene_missing]["status"] == "MATERIALIZED" and ui[scene_missing]["check"] == (False, "WARN")
        assert ui[scene_missing]["meta"]["frames_input_missing"] == 1 and ui[scene_missing]["meta"]["complete"]
        assert ui[scene_corrupt]["status"] == "MATERIALIZED" and ui[scene_corrupt]["check"] == (False, "ERROR")
        assert ui[scene_corrupt]["meta"]["frames_failed"] == 1 and not ui[scene_corrupt]["meta"]["complete"]
        assert ui[scene_clean]["check"] == (True, "WARN") and ui[scene_clean]["meta"]["complete"]
        assert ui[scene_gone]["status"] == "FAILED"

        # A PNG of the clean scene is deleted after its conversion.
        png = next((data / "dataset").glob(f"*/rgb/{scene_clean}/cam_00/0000.png"))
        png.unlink()
        requests, _ = _tick(instance, data)
        reasons = {r.partition_key: r.tags["hypersim/reason"] for r in requests}
        assert reasons == {
            scene_corrupt: "incomplete",
            scene_clean: "outputs_missing",
            scene_gone: "failed",
        }  # never the invented key
        by_scene = {r.partition_key: r for r in requests}
        assert str(png.relative_to(data / "dataset")) in by_scene[scene_clean].tags["hypersim/problem"]

        # The metadata asset drops the invented key and says so; the schedule forgets it.
        result = catalog.execute_in_process(run_config=config, instance=instance, asset_selection=metadata_only)
        meta = result.asset_materializations_for_node("hypersim_metadata")[0].metadata
        assert meta["partitions_removed_not_in_metadata"].value == ["ai_999_999"]
        assert "ai_999_999" not in instance.get_dynamic_partitions(SCENES_PARTITIONS_NAME)
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks["metadata_consistent"]

        # The requested runs: the clean scene is repaired; the corrupt one retries only its failed frame.
        for scene in (scene_corrupt, scene_clean):
            assert job.execute_in_process(run_config=config, instance=instance, partition_key=scene).success
        assert png.is_file()
        corrupt_meta = _scene_ui_state(instance, scene_corrupt)["meta"]
        assert corrupt_meta["frames_skipped_unchanged"] == corrupt_meta["frames_converted"] > 0
        requests, _ = _tick(instance, data)
        assert {r.partition_key: r.tags["hypersim/reason"] for r in requests} == {
            scene_corrupt: "incomplete",  # the input is still bad: asked again, under a new run key
            scene_gone: "failed",
        }
        keys = {r.partition_key: r.run_key for r in requests}
        assert keys[scene_corrupt] != by_scene[scene_corrupt].run_key  # a new run since: a new key
        assert keys[scene_gone] == by_scene[scene_gone].run_key  # nothing happened since: Dagster dedupes

        # The index tells the same story, read as the README reads it.
        index_only = [dg.AssetKey("frame_index")]
        assert catalog.execute_in_process(run_config=config, instance=instance, asset_selection=index_only).success
        index = pd.read_parquet(data / "dataset" / "frame_index.parquet").set_index("stem")
        hole = index.loc[f"{scene_missing}/{missing['camera']}/{missing['frame_id']:04d}"]
        assert hole["status"] == "input_missing" and pd.isna(hole["path_rgb"])
        bad = index.loc[f"{scene_corrupt}/cam_00/0001"]
        assert bad["status"] == "failed" and "FrameInputCorrupt" in bad["reason"]
        assert corrupt_member.rsplit("/", 1)[-1] in bad["reason"]
        gone = index[index["scene"] == scene_gone]
        included = gone[gone["included_in_public_release"]]
        assert (included["status"] == "failed").all()
        assert included["reason"].str.contains("scene_step").all() and included["reason"].str.contains("run ").all()
        assert pd.api.types.is_integer_dtype(index["nan_pixels"]) and pd.api.types.is_bool_dtype(
            index["rotation_valid"]
        )
