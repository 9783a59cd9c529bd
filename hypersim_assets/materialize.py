"""Materialise the asset graph from the command line against a real Dagster
instance: the metadata first (it registers the scene partitions), then each
named scene partition, then the frame index and views."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME


@dataclass
class MaterializeSummary:
    """What one ``materialize`` call did."""

    scenes: list[str] = field(default_factory=list)
    failed_scenes: dict[str, str] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    asset_metadata: dict[str, dict] = field(default_factory=dict)


class MaterializeError(RuntimeError):
    """A run failed; the message names the step and the reason."""


def resource_run_config(source: str | None, data_root: Path | None, log_level: str = "WARNING") -> dict:
    """Run config that sets the ``hypersim`` resource's source and data root (others keep their defaults)
    and the console log level (our own progress lines are printed separately)."""
    config: dict = {}
    if source is not None:
        config["source"] = source
    if data_root is not None:
        config["data_root"] = str(Path(data_root).resolve())
    run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if config:
        run_config["resources"] = {"hypersim": {"config": config}}
    return run_config


def _metadata_of(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for event in result.all_events:
        if not event.is_step_materialization:
            continue
        mat = event.step_materialization_data.materialization
        key = mat.asset_key.to_user_string()
        if mat.partition:
            key = f"{key}[{mat.partition}]"
        out[key] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return out


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    messages = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            err = event.step_failure_data.error
            messages.append(f"{event.step_key}: {err.message.strip() if err else 'failed'}")
    return "; ".join(messages) or "run failed"


def materialize(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    *,
    source: str | None,
    data_root: Path | None,
    scenes: Sequence[str] = (),
    all_scenes: bool = False,
    echo: Callable[[str], None] = print,
    keep_going: bool = False,
    log_level: str = "WARNING",
) -> MaterializeSummary:
    """Materialise metadata, the named scenes (or all) and then the index and views.

    Raises ``MaterializeError`` naming the failed step; with ``keep_going`` a
    failed scene is recorded and the rest still run (the index then shows it).
    """
    started = time.monotonic()
    summary = MaterializeSummary()
    run_config = resource_run_config(source, data_root, log_level)
    catalog_job = defs.resolve_job_def("hypersim_catalog_job")
    scene_job = defs.resolve_job_def("hypersim_scene_job")

    def run(job: dg.JobDefinition, label: str, **kwargs) -> dg.ExecuteInProcessResult:
        step_started = time.monotonic()
        echo(f"[hypersim] {label} ...")
        result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False, **kwargs)
        summary.run_ids.append(result.run_id)
        if not result.success:
            raise MaterializeError(f"{label} failed (run {result.run_id}): {_failure_message(result)}")
        summary.asset_metadata.update(_metadata_of(result))
        echo(f"[hypersim] {label} done in {time.monotonic() - step_started:.1f} s")
        return result

    run(catalog_job, "metadata", asset_selection=[dg.AssetKey("hypersim_metadata")])
    known = instance.get_dynamic_partitions(SCENES_PARTITIONS_NAME)
    if all_scenes:
        wanted = sorted(known)
    else:
        unknown = [s for s in scenes if s not in known]
        if unknown:
            raise MaterializeError(
                f"unknown scene(s) {', '.join(unknown)}: not in the public release of this source's metadata "
                f"({len(known)} scenes known, e.g. {', '.join(sorted(known)[:3])})"
            )
        wanted = list(scenes)
    for i, scene in enumerate(wanted, 1):
        try:
            run(scene_job, f"scene {scene} ({i}/{len(wanted)}): download and convert", partition_key=scene)
            summary.scenes.append(scene)
        except MaterializeError as exc:
            if not keep_going:
                raise
            summary.failed_scenes[scene] = str(exc)
            echo(f"[hypersim] {exc}")
    run(
        catalog_job,
        "frame index and subsample views",
        asset_selection=[dg.AssetKey("frame_index"), dg.AssetKey("subsample_views")],
    )
    summary.seconds = time.monotonic() - started
    return summary


def instance_from_env_or(default_home: Path) -> dg.DagsterInstance:
    """The persistent instance at ``DAGSTER_HOME``; when unset, one at ``default_home`` (created)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(Path(default_home).resolve())
        Path(home).mkdir(parents=True, exist_ok=True)
        config = Path(home) / "dagster.yaml"
        if not config.exists():
            config.write_text("telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = home
        print(f"[hypersim] DAGSTER_HOME not set; using {home}", file=sys.stderr)
    return dg.DagsterInstance.get()
