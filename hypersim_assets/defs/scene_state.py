"""What the Dagster instance knows about each scene partition, read the way the UI reads
it: the partition status of ``raw_scene`` and ``converted_scene``, and for a failed
partition the reason its latest run gave. The frame index and the schedule both ask here,
so they agree with what the UI shows."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.events import DagsterEventType

from hypersim_assets.defs.partitions import scene_partitions

RAW_KEY = dg.AssetKey("raw_scene")
CONVERTED_KEY = dg.AssetKey("converted_scene")
MAX_REASON_CHARS = 500


def partition_status(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: Sequence[str]
) -> dict[str, str | None]:
    """Partition -> ``MATERIALIZED``/``FAILED``/``IN_PROGRESS`` or None (never run), as the UI shows it."""
    raw = instance.get_status_by_partition(key, list(partitions), scene_partitions) or {}
    return {p: (s.value if s is not None else None) for p, s in raw.items()}


def _failure_text(entry) -> str | None:
    event = entry.dagster_event
    if event is None:
        return None
    if event.event_type == DagsterEventType.STEP_FAILURE:
        data = event.step_failure_data
        user = data.user_failure_data
        text = (user.description if user is not None and user.description else None) or (
            data.error.message.strip() if data.error is not None else None
        )
        return f"{event.step_key}: {text}" if text else None
    return entry.message or None


def _run_failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(
        run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE}, ascending=True
    ).records
    texts = [t for t in (_failure_text(r.event_log_entry) for r in records) if t]
    text = texts[0] if texts else f"run {run_id} failed"
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
