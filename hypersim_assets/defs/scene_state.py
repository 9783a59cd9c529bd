"""What the Dagster instance knows about each scene partition, read the way the UI reads
it: the partition status of ``raw_scene`` and ``converted_scene``, and for a failed
partition the reason its latest run gave. The frame index and the schedule both ask here,
so they agree with what the UI shows."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from hypersim_assets.defs.partitions import scene_partitions
from hypersim_assets.run_failures import run_problems

RAW_KEY = dg.AssetKey("raw_scene")
CONVERTED_KEY = dg.AssetKey("converted_scene")
MAX_REASON_CHARS = 500


def partition_status(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: Sequence[str]
) -> dict[str, str | None]:
    """Partition -> ``MATERIALIZED``/``FAILED``/``IN_PROGRESS`` or None (never run), as the UI shows it."""
    raw = instance.get_status_by_partition(key, list(partitions), scene_partitions) or {}
    return {p: (s.value if s is not None else None) for p, s in raw.items()}


def _run_failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    """The failed run's first underlying error (a failed step, else a resource that could not
    start, else the run's own failure), never Dagster's wrappers ("Exceeded max_retries of 3",
    "An exception was thrown during execution"): see :func:`hypersim_assets.run_failures.run_problems`."""
    problems = run_problems(instance, run_id)
    # A failed check explains less than the failed step it follows.
    steps = [p for p in problems if not p.where.startswith("check ")] or problems
    text = str(steps[0]) if steps else f"run {run_id} failed"
    return f"{text[:MAX_REASON_CHARS]} (run {run_id})"


def _latest_failed_run(instance: dg.DagsterInstance, partition: str) -> str | None:
    runs = instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/partition": partition}, statuses=[dg.DagsterRunStatus.FAILURE]), limit=1
    )
    return runs[0].dagster_run.run_id if runs else None


def _no_partition_can_be_failed(instance: dg.DagsterInstance, keys: Sequence[dg.AssetKey]) -> bool:
    """True when no partition of ``keys`` can show FAILED, known from two cheap reads.

    Dagster marks a partition FAILED when its latest unfinished materialisation attempt
    belongs to a run whose status is FAILURE, and carries failed partitions forward in the
    asset's stored status cache. So with no FAILURE run in the instance and no failed
    partition in either stored cache, none is FAILED. The full status query updates the
    caches (two dozen SQLite round trips per key, 0.1-0.2 s here); this costs two queries.
    Anything unexpected in a cache answers False (ask in full).
    """
    if instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=1):
        return False
    for record in instance.get_asset_records(list(keys)):
        cached = record.asset_entry.cached_status
        if cached is None or not cached.serialized_failed_partition_subset:
            continue
        try:
            if not cached.deserialize_failed_partition_subsets(scene_partitions).is_empty:
                return False
        except Exception:  # a cache of another partitions definition or Dagster version: ask in full
            return False
    return True


def scene_failures(instance: dg.DagsterInstance, partitions: Sequence[str]) -> dict[str, str]:
    """Scene -> reason, for scenes whose latest ``raw_scene`` or ``converted_scene`` attempt failed.

    The reason is the failing step's message from that run (``raw_scene: scene ...: not
    found at ...``), with the run id.
    """
    partitions = list(partitions)
    if not partitions or _no_partition_can_be_failed(instance, (RAW_KEY, CONVERTED_KEY)):
        return {}
    failed = set()
    for key in (RAW_KEY, CONVERTED_KEY):
        failed |= {p for p, s in partition_status(instance, key, partitions).items() if s == "FAILED"}
    out = {}
    for partition in sorted(failed):
        run_id = _latest_failed_run(instance, partition)
        out[partition] = _run_failure_reason(instance, run_id) if run_id else "failed (no run record)"
    return out
