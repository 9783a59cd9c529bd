"""Runs whose process is gone: how the command line recognises them and releases what
they hold (their run status and their pool slots), since without the daemon's run
monitoring nothing else would.

A run launched by this command carries :data:`PROCESS_TAG`, ``<host>:<pid>:<start>``
(``<start>`` is the process's start time in clock ticks since boot, from
``/proc/<pid>/stat``, so a recycled pid is not mistaken for the run's process). A run
without the tag (launched by ``dagster dev`` or a daemon) is judged by the pid Dagster
records on its RUN_START event (the run worker's), but only where the instance launches
run workers on this machine (the default run launcher over SQLite storage); elsewhere,
or before it started, it is left alone.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.storage.dagster_run import FINISHED_STATUSES, RunsFilter

PROCESS_TAG = "hypersim/process"
# Statuses of a run whose process should be alive (a SUSPENDED run has no process by design).
LIVE_PROCESS_STATUSES = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)


def process_start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (``None`` when there is no such process or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 of stat(5); fields[0] is field 3


def process_tag_value(pid: int | None = None) -> str:
    """``<host>:<pid>:<start ticks>`` of ``pid`` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{process_start_ticks(pid) or ''}"


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def tagged_process_alive(value: str) -> bool | None:
    """Whether the process named by a :data:`PROCESS_TAG` value still runs; ``None`` if it ran on another host."""
    parts = value.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    host, pid_text, start_text = parts
    if host != socket.gethostname():
        return None
    pid = int(pid_text)
    if not _pid_exists(pid):
        return False
    if start_text.isdigit():
        return process_start_ticks(pid) == int(start_text)
    return True


def _launches_locally(instance: dg.DagsterInstance) -> bool:
    from dagster._core.storage.runs import SqliteRunStorage

    return isinstance(instance.run_launcher, DefaultRunLauncher) and isinstance(instance.run_storage, SqliteRunStorage)


def _event_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid on the run's RUN_START event: the run worker's (later events may come from
    short-lived step processes of a multiprocess executor, whose end says nothing)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    event = records[0].event_log_entry.dagster_event if records else None
    return event.pid if event is not None else None


def run_process_alive(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool | None:
    """Whether the process executing ``run`` still runs: True, False, or None when it cannot be told from here."""
    value = run.tags.get(PROCESS_TAG)
    if value:
        return tagged_process_alive(value)
    if not _launches_locally(instance):
        return None
    pid = _event_pid(instance, run.run_id)
    if pid is None:
        return None
    return _pid_exists(pid)


@dataclass(frozen=True)
class ReleasedRun:
    """A run found without its process: its id, job, status before, and the pool slots it held."""

    run_id: str
    job_name: str
    status: str
    slots: tuple[str, ...]  # "<pool>:<step key>"


def _slots_by_run(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    storage = instance.event_log_storage
    held: dict[str, list[str]] = {}
    if not storage.supports_global_concurrency_limits:
        return held
    for key in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(key)
        for slot in info.claimed_slots:
            held.setdefault(slot.run_id, []).append(f"{key}:{slot.step_key}")
        for step in info.pending_steps:
            held.setdefault(step.run_id, [])
    return held


def release_dead_runs(instance: dg.DagsterInstance, echo: Callable[[str], None] = print) -> list[ReleasedRun]:
    """Mark failed every unfinished run of ``instance`` whose process is gone, and free the pool
    slots (claimed or queued) of every run whose process is gone; say so through ``echo``.

    Runs whose process still runs, or cannot be judged from this machine, are left alone.
    """
    held = _slots_by_run(instance)
    in_progress = instance.get_runs(filters=RunsFilter(statuses=list(LIVE_PROCESS_STATUSES)))
    candidates = {run.run_id: run for run in in_progress}
    for run_id in held:
        if run_id not in candidates:
            run = instance.get_run_by_id(run_id)
            if run is not None:
                candidates[run_id] = run
    released = []
    for run_id, run in candidates.items():
        finished = run.status in FINISHED_STATUSES
        if not finished and (run.status not in LIVE_PROCESS_STATUSES or run_process_alive(instance, run) is not False):
            continue
        slots = tuple(held.get(run_id, ()))
        if finished and run_id not in held:
            continue
        if not finished:
            instance.report_run_failed(
                run,
                message=f"Marked failed by hypersim-assets: the run's process ({run.tags.get(PROCESS_TAG) or 'pid'}) is gone.",
            )
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        released.append(ReleasedRun(run_id, run.job_name, run.status.value, slots))
        what = f"freed {len(slots)} pool slot(s) ({', '.join(slots)})" if slots else "it held no pool slot"
        echo(
            f"[hypersim] run {run_id} ({run.job_name}, {run.status.value}) has no live process: "
            + ("marked failed; " if not finished else "")
            + what
        )
    return released
