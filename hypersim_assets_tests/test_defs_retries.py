"""Retries as the shipped instance settings make them, counted in a real Dagster
instance: a permanent failure is one run (no step retry, no run retry), a transient
fault is recovered inside the run, and only a lost run worker earns a new run.

Run retries are the daemon's: it retries exactly the failed runs that
``filter_runs_to_should_retry`` yields (the run's ``dagster/will_retry`` tag,
set when the run failed). The tests ask that same function.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._daemon.auto_run_reexecution.auto_run_reexecution import filter_runs_to_should_retry

from hypersim_assets.definitions import defs
from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME
from hypersim_assets.synthetic.mirror_server import Faults, MirrorServer
from hypersim_assets_tests.conftest import REPO_ROOT, resource_config, shipped_instance_settings

SHIPPED_INSTANCE_CONFIGS = ("dagster.yaml", "deploy/postgres/dagster.yaml", "deploy/kubernetes/dagster.yaml")
UNKNOWN_SCENE = "ai_999_999"  # well-formed, but in no metadata


def _run(job: str, config: dict, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        run_config=config, instance=instance, raise_on_error=False, **kwargs
    )


def _metadata(instance: dg.DagsterInstance, config: dict) -> None:
    assert _run("hypersim_catalog_job", config, instance, asset_selection=[dg.AssetKey("hypersim_metadata")]).success


def _step_retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")


def _runs_the_daemon_would_launch(instance: dg.DagsterInstance) -> list[str]:
    failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    return [run.run_id for run in filter_runs_to_should_retry(failed, instance)]


@pytest.mark.parametrize("path", SHIPPED_INSTANCE_CONFIGS)
def test_every_shipped_instance_retries_runs_only_for_lost_workers_and_monitors_runs(path):
    settings = shipped_instance_settings(REPO_ROOT / path)
    # Resuming a run in a new worker needs a launcher that can (K8s); the test instance's cannot.
    resume_attempts = settings["run_monitoring"].pop("max_resume_run_attempts", 0)
    assert resume_attempts == (2 if "kubernetes" in path else 0)
    with dg.instance_for_test(overrides=settings) as instance:  # Dagster validates the sections here
        assert instance.run_retries_enabled and instance.run_retries_max_retries >= 1
        assert instance.run_retries_retry_on_asset_or_op_failure is False
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    # The Helm values render the Kubernetes dagster.yaml: the same policy there.
    if "kubernetes" in path:
        daemon = yaml.safe_load((REPO_ROOT / "deploy/kubernetes/values.yaml").read_text())["dagsterDaemon"]
        assert daemon["runRetries"]["retryOnAssetOrOpFailure"] is False
        assert daemon["runMonitoring"]["enabled"] and daemon["runMonitoring"]["freeSlotsAfterRunEndSeconds"] > 0


@pytest.fixture
def mirror_without_one_zip(small_mirror, tmp_path) -> tuple[Path, str]:
    """A copy of the small mirror whose first scene's zip is gone (a 404)."""
    root, summary = small_mirror
    copy = tmp_path / "mirror"
    shutil.copytree(root, copy)
    scene = summary.scenes[0]
    (copy / "scenes" / f"{scene}.zip").unlink()
    return copy, scene


@pytest.mark.parametrize("fault", ["unknown_scene", "zip_404"])
def test_a_permanent_failure_is_exactly_one_run(shipped_instance, mirror_without_one_zip, tmp_path, fault):
    mirror, missing_zip_scene = mirror_without_one_zip
    with MirrorServer(mirror) as server:
        config = resource_config(server.url, tmp_path / "data")
        _metadata(shipped_instance, config)
        if fault == "unknown_scene":
            # A partition key invented in the UI ("Add partition"): no frame of it in the metadata.
            shipped_instance.add_dynamic_partitions(SCENES_PARTITIONS_NAME, [UNKNOWN_SCENE])
            scene = UNKNOWN_SCENE
        else:
            scene = missing_zip_scene
        result = _run("hypersim_scene_job", config, shipped_instance, partition_key=scene)

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert scene in message
    if fault == "zip_404":
        assert f"{server.url}/scenes/{scene}.zip" in message
    assert _step_retries(result) == 0
    run = shipped_instance.get_run_by_id(result.run_id)
    assert run.tags["dagster/will_retry"] == "false"
    assert _runs_the_daemon_would_launch(shipped_instance) == []
    scene_runs = shipped_instance.get_runs(filters=dg.RunsFilter(job_name="hypersim_scene_job"))
    assert len(scene_runs) == 1


def test_a_lost_run_worker_is_retried_as_a_new_run(shipped_instance, small_mirror, tmp_path):
    """What run monitoring reports for a run whose process died: the daemon retries that run."""
    _, summary = small_mirror
    job = defs.resolve_job_def("hypersim_scene_job")
    run = shipped_instance.create_run_for_job(
        job_def=job,
        run_config=resource_config("file:///nonexistent", tmp_path / "data"),
        tags={**job.tags, "dagster/partition": summary.scenes[0]},
        status=dg.DagsterRunStatus.STARTED,
    )
    shipped_instance.report_run_failed(run, "run worker lost (as run monitoring reports it)")
    assert shipped_instance.get_run_by_id(run.run_id).tags["dagster/will_retry"] == "true"
    assert _runs_the_daemon_would_launch(shipped_instance) == [run.run_id]


@pytest.mark.e2e
def test_transient_http_faults_are_absorbed_inside_the_run(shipped_instance, small_mirror, tmp_path):
    root, summary = small_mirror
    scene = summary.scenes[1]
    faults = Faults(fail_status=503, fail_times=2, drop_after_bytes=100, drop_times=1, path_filter="/scenes/")
    with MirrorServer(root, faults=faults) as server:
        config = resource_config(server.url, tmp_path / "data")
        _metadata(shipped_instance, config)
        result = _run("hypersim_scene_job", config, shipped_instance, partition_key=scene)
        answered = [r.status for r in server.requests if "/scenes/" in r.path]
    assert result.success
    assert answered.count(503) == 2
    assert _step_retries(result) == 0
    assert len(shipped_instance.get_runs(filters=dg.RunsFilter(job_name="hypersim_scene_job"))) == 1


@pytest.mark.e2e  # waits out the asset RetryPolicy's first delay (15-45 s)
def test_a_transient_fault_past_the_http_retries_is_retried_by_the_asset_within_the_run(
    shipped_instance, small_mirror, tmp_path
):
    root, summary = small_mirror
    scene = summary.scenes[1]
    with MirrorServer(root, faults=Faults(fail_status=503, fail_times=1, path_filter="/scenes/")) as server:
        # One HTTP attempt per request: the 503 reaches the asset, whose RetryPolicy tries again.
        config = resource_config(server.url, tmp_path / "data", download={"max_attempts": 1})
        _metadata(shipped_instance, config)
        result = _run("hypersim_scene_job", config, shipped_instance, partition_key=scene)
    assert result.success
    assert _step_retries(result) == 1
    assert len(shipped_instance.get_runs(filters=dg.RunsFilter(job_name="hypersim_scene_job"))) == 1
    assert _runs_the_daemon_would_launch(shipped_instance) == []


def test_a_failed_blocking_check_stops_its_downstream_in_the_run_and_is_one_run(
    shipped_instance, small_mirror, tmp_path
):
    """Metadata that loads but is inconsistent (a trajectory without a scene type): the blocking
    ``metadata_consistent`` check fails, so ``frame_index`` does not run, and nothing re-runs."""
    root, _ = small_mirror
    broken = tmp_path / "mirror"
    shutil.copytree(root, broken)
    trajectories = broken / "metadata_camera_trajectories.csv"
    header, first, *rest = trajectories.read_text().splitlines(keepends=True)
    column = header.rstrip("\r\n").split(",").index("Scene type")
    fields = first.rstrip("\r\n").split(",")
    fields[column] = ""
    trajectories.write_text(header + ",".join(fields) + "\n" + "".join(rest))

    with MirrorServer(broken) as server:
        result = _run("hypersim_catalog_job", resource_config(server.url, tmp_path / "data"), shipped_instance)
    assert not result.success
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "metadata_consistent"]
    assert not evaluation.passed
    assert any("scene" in p for p in evaluation.metadata["problems"].value)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"hypersim_metadata"}  # frame_index and subsample_views were held back
    assert not (tmp_path / "data" / "dataset" / "frame_index.parquet").exists()
    assert _step_retries(result) == 0
    assert shipped_instance.get_run_by_id(result.run_id).tags["dagster/will_retry"] == "false"
    assert _runs_the_daemon_would_launch(shipped_instance) == []
