"""Materialise the asset graph from the command line against a real Dagster
instance: the metadata first (it registers the scene partitions), then each
named scene partition, then the frame index and views (in the last scene's run,
or a run of their own when no scene is named or the last scene failed).

Each run executes in a worker thread while the main thread keeps the signals: SIGINT
or SIGTERM marks the current run canceled, frees its pool slots and ends the command
within seconds (Dagster's own handlers would otherwise hold the signal until the step,
or its retry wait, ends). Before each run, runs of the instance whose process is gone
are marked failed and their pool slots freed (:mod:`hypersim_assets.stale_runs`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES
from dagster._core.utils import make_new_run_id

from hypersim_assets.convert.warm_pool import prestart_pool
from hypersim_assets.defs.dask_resource import DaskResource
from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME
from hypersim_assets.defs.resources import ConversionResource, HypersimResource
from hypersim_assets.run_config import RunConfigError, resource_field, resource_value_problems, source_config_value
from hypersim_assets.run_failures import Problem, run_problems, run_retries
from hypersim_assets.sqlite_durability import creating_unsynced
from hypersim_assets.stale_runs import PROCESS_TAG, process_tag_value, release_dead_runs

# How often a waiting command looks for dead runs that block it, and for retries to report (seconds).
SWEEP_INTERVAL_S = 10.0
RETRY_POLL_S = 1.0
# Dagster's console logger prints each failure with its stack trace; the command prints
# the underlying errors itself, so by default only critical log lines pass.
CONSOLE_LOG_LEVEL = "CRITICAL"
METADATA_KEY = dg.AssetKey("hypersim_metadata")
DATA_VERSION_TAG = "dagster/data_version"
INDEX_STEPS = ("frame_index", "subsample_views")
INDEX_LABEL = "frame index and subsample views"


@dataclass
class MaterializeSummary:
    """What one ``materialize`` call did."""

    scenes: list[str] = field(default_factory=list)
    failed_scenes: dict[str, str] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    asset_metadata: dict[str, dict] = field(default_factory=dict)


class MaterializeError(RuntimeError):
    """A run failed; the message names each failed step or check and its underlying error."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class RunInterrupted(BaseException):
    """SIGINT or SIGTERM reached the command; the current run (if any) was marked canceled and its slots freed.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int, run_id: str | None) -> None:
        self.signum = signum
        self.run_id = run_id
        name = signal.Signals(signum).name
        where = f"run {run_id} marked canceled, its pool slots freed" if run_id else "no run was in progress"
        super().__init__(f"{name} received: {where}; re-run the same command to resume")


class _Signalled(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def resource_run_config(source: str | None, data_root: Path | None, log_level: str = "WARNING") -> dict:
    """Run config that sets the ``hypersim`` resource's source and data root (others keep their defaults)
    and the console log level (our own progress lines are printed separately)."""
    config: dict = {}
    if source is not None:
        config["source"] = source_config_value(source)
    if data_root is not None:
        config["data_root"] = str(Path(data_root).resolve())
    run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if config:
        run_config["resources"] = {"hypersim": {"config": config}}
    return run_config


def _hypersim_resource(run_config: Mapping[str, Any]) -> HypersimResource:
    """The ``hypersim`` resource as runs of ``run_config`` see it (``{env: NAME}`` values resolved)."""
    return HypersimResource(
        source=resource_field(run_config, "hypersim", "source"),
        data_root=resource_field(run_config, "hypersim", "data_root"),
    )


def local_pool_workers(run_config: Mapping[str, Any]) -> int | None:
    """Worker processes of the scene steps' local conversion pool as runs of ``run_config`` see
    them; None when they convert on Dask instead."""
    dask = DaskResource(
        scheduler_address=resource_field(run_config, "dask", "scheduler_address"),
        local_cluster_workers=resource_field(run_config, "dask", "local_cluster_workers") or 0,
    )
    if dask.dask_config().enabled:
        return None
    return ConversionResource(workers=resource_field(run_config, "conversion", "workers") or 0).worker_count()


def metadata_still_valid(instance: dg.DagsterInstance, run_config: Mapping[str, Any]) -> tuple[str, dict] | None:
    """(run id, metadata) of the latest ``hypersim_metadata`` materialisation when a new one would change
    nothing: its run succeeded (the blocking consistency check passed), it came from the same source into
    the same folder, and the three CSVs there still have the bytes it recorded (its data version). Else None.
    """
    from hypersim_assets.catalog import metadata as md

    event = instance.get_latest_materialization_event(METADATA_KEY)
    if event is None or event.asset_materialization is None:
        return None
    run = instance.get_run_by_id(event.run_id)
    if run is None or run.status != dg.DagsterRunStatus.SUCCESS:
        return None
    materialization = event.asset_materialization
    metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    try:
        hypersim = _hypersim_resource(run_config)
        raw_root, source = hypersim.raw_root(), str(hypersim.parsed_source())
    except Exception:  # a source or root the run rejects: the metadata run reports it, naming what is wrong
        return None
    if metadata.get("source") != source or metadata.get("path") != str(raw_root):
        return None
    try:
        fingerprint = md.metadata_fingerprint(raw_root)
    except (OSError, md.MetadataError):
        return None
    if materialization.tags.get(DATA_VERSION_TAG) != fingerprint:
        return None
    return event.run_id, metadata


def _is_index_problem(problem: Problem) -> bool:
    """Whether a problem of a run is the index's or the views' (a step of theirs or one of their checks)."""
    return any(problem.where == step or problem.where.startswith(f"check {step}.") for step in INDEX_STEPS)


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


@contextmanager
def _signals_raise() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise ``_Signalled`` in the main thread (elsewhere: unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        if received:
            return  # already stopping: let the cleanup of the first signal finish
        received.append(signum)
        raise _Signalled(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _stop_child_processes(timeout_s: float = 2.0) -> None:
    """Terminate the worker processes this process started (conversion pools), so none outlive it."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout_s
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))


def abandon_run(instance: dg.DagsterInstance, run_id: str, reason: str) -> None:
    """Mark an unfinished run canceled (with ``reason``) and free every pool slot it holds or waits for."""
    run = instance.get_run_by_id(run_id)
    if run is not None and run.status not in FINISHED_STATUSES:
        instance.report_run_canceled(run, message=reason)
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def _execute(
    instance: dg.DagsterInstance,
    job: dg.JobDefinition,
    run_config: Mapping[str, Any],
    run_id: str,
    echo_err: Callable[[str], None],
    **kwargs: Any,
) -> dg.ExecuteInProcessResult:
    """Execute one run in a worker thread; the main thread waits, sweeps dead runs and takes signals."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = job.execute_in_process(
                run_config=dict(run_config),
                instance=instance,
                raise_on_error=False,
                run_id=run_id,
                tags={PROCESS_TAG: process_tag_value()},
                **kwargs,
            )
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"run-{run_id[:8]}", daemon=True)
    try:
        thread.start()
        next_sweep = time.monotonic() + SWEEP_INTERVAL_S
        reported: set[int] = set()
        poll_failed = False
        while thread.is_alive():
            thread.join(RETRY_POLL_S)
            try:
                for storage_id, retry in run_retries(instance, run_id):
                    if storage_id not in reported:
                        reported.add(storage_id)
                        echo_err(f"[hypersim] {retry}")
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + SWEEP_INTERVAL_S
                    release_dead_runs(instance, echo=echo_err)
            except Exception as exc:  # reporting must never abandon a running run
                if not poll_failed:
                    echo_err(f"[hypersim] warning: could not read the instance while waiting: {exc}")
                poll_failed = True
    except _Signalled as sig:
        name = signal.Signals(sig.signum).name
        abandon_run(instance, run_id, f"Canceled: hypersim-assets received {name}.")
        _stop_child_processes()
        raise RunInterrupted(sig.signum, run_id) from None
    if "error" in outcome:
        raise MaterializeError(f"run {run_id} could not run: {outcome['error']}") from outcome["error"]
    return outcome["result"]


def materialize(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    *,
    source: str | None = None,
    data_root: Path | None = None,
    scenes: Sequence[str] = (),
    all_scenes: bool = False,
    echo: Callable[[str], None] = print,
    echo_err: Callable[[str], None] | None = None,
    keep_going: bool = False,
    log_level: str = CONSOLE_LOG_LEVEL,
    run_config: Mapping[str, Any] | None = None,
) -> MaterializeSummary:
    """Materialise metadata, the named scenes (or all) and then the index and views.

    ``run_config`` (launchpad format) is applied to every run; without it, one is made
    from ``source``, ``data_root`` and ``log_level``. Raises ``MaterializeError`` naming
    each failed step or check and its underlying error; with ``keep_going`` a failed
    scene is recorded and the rest still run (the index then shows it). A scene whose
    run succeeded but converted no frame counts as failed. Raises ``RunInterrupted``
    on SIGINT/SIGTERM, after marking the current run canceled and freeing its slots.
    """
    echo_err = echo_err or (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.monotonic()
    # One run per scene, in the order first named: a repeated name ran (and was counted) twice,
    # and a bare string was read as one scene per character.
    scenes = list(dict.fromkeys([scenes] if isinstance(scenes, str) else scenes))
    summary = MaterializeSummary()
    if run_config is None:
        run_config = resource_run_config(source, data_root, log_level)
    catalog_job = defs.resolve_job_def("hypersim_catalog_job")
    scene_job = defs.resolve_job_def("hypersim_scene_job")
    scene_and_index_job = defs.resolve_job_def("hypersim_scene_and_index_job")

    def run(job: dg.JobDefinition, label: str, **kwargs: Any) -> dg.ExecuteInProcessResult:
        release_dead_runs(instance, echo=echo_err)
        step_started = time.monotonic()
        run_id = make_new_run_id()
        echo(f"[hypersim] {label} (run {run_id}) ...")
        result = _execute(instance, job, run_config, run_id, echo_err, **kwargs)
        summary.run_ids.append(result.run_id)
        if not result.success:
            problems = run_problems(instance, result.run_id)
            lines = "\n".join(f"  {p}" for p in problems) or "  (no failed step recorded)"
            raise MaterializeError(
                f"{label} failed after {time.monotonic() - step_started:.1f} s (run {result.run_id}):\n{lines}",
                problems,
            )
        summary.asset_metadata.update(_metadata_of(result))
        echo(f"[hypersim] {label} done in {time.monotonic() - step_started:.1f} s")
        return result

    rejected = resource_value_problems(run_config, [catalog_job, scene_job, scene_and_index_job])
    if rejected:  # each run would fail as its resources start; the command line checks this first too
        raise MaterializeError("run config rejected before any run started:\n  " + "\n  ".join(rejected))

    with _signals_raise():
        try:
            workers = local_pool_workers(run_config) if scenes or all_scenes else None
            if workers is not None and workers > 1:
                # Ready by the first frame: its workers start (about a second of the other core's
                # time) while the metadata run and the scene run's set-up occupy this process.
                prestart_pool(workers)
            known = instance.get_dynamic_partitions(SCENES_PARTITIONS_NAME)
            # A run of its own only when the metadata could change: each run costs about a second here.
            # Never for --all-scenes (it re-reads the release) nor when a named scene is not registered.
            valid = None
            if not all_scenes and known and all(s in known for s in scenes):
                valid = metadata_still_valid(instance, run_config)
            if valid is not None:
                metadata_run, metadata = valid
                summary.asset_metadata["hypersim_metadata"] = metadata
                echo(f"[hypersim] metadata: unchanged since run {metadata_run} (files verified); no run needed")
            else:
                run(catalog_job, "metadata", asset_selection=[METADATA_KEY])
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
            index_built = False
            for i, scene in enumerate(wanted, 1):
                # The last scene's run also rebuilds the index and views: one run fewer.
                last = i == len(wanted)
                label = f"scene {scene} ({i}/{len(wanted)}): download and convert"
                try:
                    if last:
                        result = run(scene_and_index_job, f"{label}, then the {INDEX_LABEL}", partition_key=scene)
                        index_built = True
                    else:
                        result = run(scene_job, label, partition_key=scene)
                    _require_a_converted_frame(instance, result, scene)
                    summary.scenes.append(scene)
                except MaterializeError as exc:
                    if exc.problems and all(_is_index_problem(p) for p in exc.problems):
                        raise  # the scene is done; the index or views failed, as a run of their own would
                    if not keep_going:
                        raise
                    summary.failed_scenes[scene] = str(exc)
                    echo_err(f"[hypersim] {exc}")
            if not index_built:  # no scene named, or the last one failed: the index must still show it
                run(catalog_job, INDEX_LABEL, asset_selection=[dg.AssetKey(step) for step in INDEX_STEPS])
        except _Signalled as sig:  # between runs
            raise RunInterrupted(sig.signum, None) from None
    summary.seconds = time.monotonic() - started
    return summary


def _require_a_converted_frame(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult, scene: str) -> None:
    """Raise MaterializeError when the scene's run converted no frame (every frame missing or failed)."""
    metadata = _metadata_of(result).get(f"converted_scene[{scene}]")
    if metadata is None or metadata.get("frames_converted", 1) > 0:
        return
    problems = [p for p in run_problems(instance, result.run_id) if "frames_converted" in p.where]
    lines = "\n".join(f"  {p}" for p in problems)
    raise MaterializeError(
        f"scene {scene}: no frame converted ({metadata.get('frames_input_missing', 0)} input missing, "
        f"{metadata.get('frames_failed', 0)} failed; run {result.run_id})" + (f":\n{lines}" if lines else ""),
        problems,
    )


def instance_from_env_or(default_home: Path) -> dg.DagsterInstance:
    """The persistent instance at ``DAGSTER_HOME``; when unset, one at ``default_home`` (created).
    Raises RunConfigError when ``DAGSTER_HOME`` is no absolute directory or ``default_home`` cannot be made.

    The SQLite databases a fresh instance creates here are created unsynced
    (:func:`~hypersim_assets.sqlite_durability.creating_unsynced`, where the command installed
    its SQLite setting): they hold no history yet.
    """
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(Path(default_home).resolve())
        try:
            Path(home).mkdir(parents=True, exist_ok=True)
            config = Path(home) / "dagster.yaml"
            if not config.exists():
                config.write_text("telemetry:\n  enabled: false\n")
        except OSError as exc:  # the data root is a file, unwritable, ...
            raise RunConfigError(f"cannot create the Dagster instance at {home}: {exc.strerror or exc}") from exc
        os.environ["DAGSTER_HOME"] = home
        print(f"[hypersim] DAGSTER_HOME not set; using {home}", file=sys.stderr)
    elif not (Path(home).is_absolute() and Path(home).is_dir()):  # Dagster's own error is a traceback
        raise RunConfigError(f"DAGSTER_HOME={home} must be the absolute path of an existing directory")
    with creating_unsynced():  # the instance creates its storages (and databases) as it is made
        return dg.DagsterInstance.get()
