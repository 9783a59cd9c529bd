"""The nightly backfill schedule: requests scene-job runs for exactly the scene
partitions that need work, never for ones already queued or running:

- ``missing``: never materialised; ``failed``: the latest attempt failed;
- ``stale``: converted by other converter code;
- ``incomplete``: converted, but frames failed on bad input (the completeness rule in
  :mod:`hypersim_assets.catalog.scene_facts`); the run retries only those frames;
- ``outputs_missing``: converted, but the disk no longer holds what the facts promise
  (a deleted or re-sized output file, missing facts: :mod:`hypersim_assets.catalog.scene_outputs`).

Each tick stats every output file of the converted scenes (see the README for its cost).
Partition keys the metadata does not know (added by hand in the UI) are never requested.
"""

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.scene_outputs import SceneDiskState, disk_states
from hypersim_assets.convert.frame_conversion import CONVERTER_VERSION
from hypersim_assets.defs.jobs import scene_job
from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME
from hypersim_assets.defs.resources import HypersimResource
from hypersim_assets.defs.scene_state import CONVERTED_KEY, partition_status

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# At most this many run requests per tick, so a first tick over 457 scenes does
# not flood the queue; the next tick picks up the rest.
MAX_REQUESTS_PER_TICK = 100


@dataclass(frozen=True)
class PartitionWork:
    """One scene partition that needs a run, and why (module docstring)."""

    partition: str
    reason: str
    marker: str  # changes whenever the partition's state changes, so run keys never repeat work


def partitions_needing_work(
    partitions: Iterable[str],
    status: Mapping[str, str | None],
    materialized_code_version: Mapping[str, str | None],
    current_code_version: str,
    in_flight: set[str],
    last_run_id: Mapping[str, str],
    disk: Mapping[str, SceneDiskState] | None = None,
) -> list[PartitionWork]:
    """Which partitions to request, in partition order.

    ``status`` maps a partition to ``MATERIALIZED``/``FAILED``/``IN_PROGRESS``/None
    (never run); ``materialized_code_version`` to the code version its latest
    materialisation was made with; ``disk`` to what its facts and files on disk say
    (scenes absent from it are not checked). Partitions in flight are left alone.
    """
    disk = disk or {}
    work = []
    for p in partitions:
        if p in in_flight or status.get(p) == "IN_PROGRESS":
            continue
        marker = last_run_id.get(p, "none")
        state = status.get(p)
        if state is None:
            work.append(PartitionWork(p, "missing", marker))
        elif state == "FAILED":
            work.append(PartitionWork(p, "failed", marker))
        elif materialized_code_version.get(p) not in (None, current_code_version):
            work.append(PartitionWork(p, "stale", f"{marker}:{materialized_code_version.get(p)}"))
        elif p in disk and disk[p].outputs_missing:
            work.append(PartitionWork(p, "outputs_missing", marker))
        elif p in disk and disk[p].failed_frames:
            work.append(PartitionWork(p, "incomplete", marker))
    return work


def _latest_code_versions(instance: dg.DagsterInstance, partitions: set[str]) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    cursor = None
    while len(versions) < len(partitions):
        result = instance.fetch_materializations(CONVERTED_KEY, limit=1000, cursor=cursor)
        for record in result.records:
            mat = record.asset_materialization
            if mat is not None and mat.partition in partitions and mat.partition not in versions:
                versions[mat.partition] = (mat.tags or {}).get("dagster/code_version")
        if not result.has_more:
            break
        cursor = result.cursor
    return versions


def _runs_by_partition(instance: dg.DagsterInstance) -> tuple[set[str], dict[str, str]]:
    in_flight: set[str] = set()
    last_run: dict[str, str] = {}
    for record in instance.get_run_records(filters=dg.RunsFilter(job_name=scene_job.name), limit=5000):
        run = record.dagster_run
        partition = run.tags.get("dagster/partition")
        if not partition:
            continue
        last_run.setdefault(partition, run.run_id)  # newest first
        if run.status in IN_FLIGHT:
            in_flight.add(partition)
    return in_flight, last_run


def _read_splits(context: dg.ScheduleEvaluationContext, hypersim: HypersimResource) -> pd.DataFrame | None:
    try:
        return md.read_metadata(hypersim.raw_root(), camera_parameters=False).splits
    except (OSError, ValueError) as exc:  # metadata gone or unreadable: the metadata asset will say why
        context.log.warning(f"metadata unreadable at {hypersim.raw_root()}: {exc}")
        return None


@dg.schedule(
    job=scene_job,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Nightly: run the scene job for scene partitions that are missing, failed, stale, incomplete "
    "(frames failed on bad input) or whose outputs are no longer all on disk.",
)
def scene_backfill_schedule(context: dg.ScheduleEvaluationContext, hypersim: HypersimResource):
    instance = context.instance
    partitions = sorted(instance.get_dynamic_partitions(SCENES_PARTITIONS_NAME))
    if not partitions:
        return dg.SkipReason("no scene partitions yet: materialise hypersim_metadata first")
    splits = _read_splits(context, hypersim)
    if splits is not None:
        # A key the metadata does not know (added by hand) is never requested; materialising
        # hypersim_metadata removes it.
        known = set(md.public_scenes(splits))
        unknown = [p for p in partitions if p not in known]
        if unknown:
            context.log.warning(f"not requesting {len(unknown)} partition(s) unknown to the metadata: {unknown[:20]}")
        partitions = [p for p in partitions if p in known]
    status = partition_status(instance, CONVERTED_KEY, partitions)
    versions = _latest_code_versions(instance, {p for p, s in status.items() if s == "MATERIALIZED"})
    in_flight, last_run = _runs_by_partition(instance)
    current = [
        p
        for p in partitions
        if status.get(p) == "MATERIALIZED" and versions.get(p) in (None, CONVERTER_VERSION) and p not in in_flight
    ]
    disk: dict[str, SceneDiskState] = {}
    if splits is not None and current:
        started = time.monotonic()
        disk = disk_states(hypersim.root(), current, splits)
        context.log.info(
            f"checked the outputs of {len(current)} converted scenes in {time.monotonic() - started:.2f} s"
        )
    work = partitions_needing_work(partitions, status, versions, CONVERTER_VERSION, in_flight, last_run, disk)
    if not work:
        return dg.SkipReason(f"all {len(partitions)} scene partitions are converted, complete and on disk")
    return [
        dg.RunRequest(
            run_key=f"{w.partition}:{w.reason}:{w.marker}",
            partition_key=w.partition,
            tags={"hypersim/reason": w.reason, **_problem_tag(disk.get(w.partition))},
        )
        for w in work[:MAX_REQUESTS_PER_TICK]
    ]


def _problem_tag(state: SceneDiskState | None) -> dict[str, str]:
    """The first problem the disk check found, as a run tag the UI shows beside the reason."""
    if state is None or not state.problems:
        return {}
    return {"hypersim/problem": state.problems[0][:200]}
