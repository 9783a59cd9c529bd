"""The backfill schedule requests exactly the missing, failed and stale scene
partitions, never one in flight, with run keys that do not repeat work."""

from __future__ import annotations

import dagster as dg

from hypersim_assets.definitions import defs
from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME
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


def _tick(instance):
    context = dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def())
    result = scene_backfill_schedule.evaluate_tick(context)
    return result.run_requests or [], result.skip_message


def test_schedule_requests_only_missing_partitions_with_stable_run_keys(tmp_path):
    summary = write_synthetic_mirror(
        tmp_path / "mirror", MirrorSpec(scenes=2, cameras=1, frames=2, height=16, width=24)
    )
    with dg.instance_for_test() as instance, MirrorServer(tmp_path / "mirror") as server:
        requests, skip = _tick(instance)
        assert not requests and "hypersim_metadata" in skip
        config = resource_run_config(server.url, tmp_path / "data")
        catalog = defs.resolve_job_def("hypersim_catalog_job")
        assert catalog.execute_in_process(
            run_config=config, instance=instance, asset_selection=[dg.AssetKey("hypersim_metadata")]
        ).success
        scenes = sorted(instance.get_dynamic_partitions(SCENES_PARTITIONS_NAME))
        assert scenes == sorted(summary.scenes)

        requests, _ = _tick(instance)
        assert sorted(r.partition_key for r in requests) == scenes
        assert all(r.tags["hypersim/reason"] == "missing" for r in requests)
        again, _ = _tick(instance)
        assert [r.run_key for r in again] == [r.run_key for r in requests]  # same state, same keys: Dagster dedupes

        job = defs.resolve_job_def("hypersim_scene_job")
        assert job.execute_in_process(run_config=config, instance=instance, partition_key=scenes[0]).success
        requests, _ = _tick(instance)
        assert [r.partition_key for r in requests] == scenes[1:]
        missing_key = requests[0].run_key

        # A failed run of the other scene: requested again as "failed", under a new run key.
        (tmp_path / "mirror" / "scenes" / f"{scenes[1]}.zip").unlink()
        failed = job.execute_in_process(
            run_config=config, instance=instance, partition_key=scenes[1], raise_on_error=False
        )
        assert not failed.success
        requests, _ = _tick(instance)
        assert [(r.partition_key, r.tags["hypersim/reason"]) for r in requests] == [(scenes[1], "failed")]
        assert requests[0].run_key != missing_key and failed.run_id in requests[0].run_key
