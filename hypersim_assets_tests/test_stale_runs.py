"""Recognising runs whose process is gone and releasing their status and pool slots, on a
real Dagster instance with real (live, dead and recycled) processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType

from hypersim_assets.defs.policies import DOWNLOAD_POOL
from hypersim_assets.stale_runs import (
    PROCESS_TAG,
    process_start_ticks,
    process_tag_value,
    release_dead_runs,
    tagged_process_alive,
)


@dg.op
def _noop() -> None:
    pass


@dg.job
def _job() -> None:
    _noop()


@pytest.fixture
def dead_process_tag() -> str:
    """The tag value of a process that ran and exited."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    value = process_tag_value(proc.pid)
    proc.communicate(b"")
    return value


def _started_run(instance: dg.DagsterInstance, tag: str, slot: bool) -> dg.DagsterRun:
    run = instance.create_run_for_job(_job, tags={PROCESS_TAG: tag})
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=_job.name), run_id=run.run_id
    )
    if slot:
        status = instance.event_log_storage.claim_concurrency_slot(DOWNLOAD_POOL, run.run_id, "raw_scene")
        assert status.is_claimed
    return instance.get_run_by_id(run.run_id)


def test_process_tag_tells_live_dead_recycled_and_foreign_processes(dead_process_tag):
    assert tagged_process_alive(process_tag_value()) is True
    assert tagged_process_alive(dead_process_tag) is False
    ticks = process_start_ticks(os.getpid())
    assert ticks is not None
    # Same pid, another start time: the pid was recycled, the run's process is gone.
    assert tagged_process_alive(f"{socket.gethostname()}:{os.getpid()}:{ticks + 1}") is False
    assert tagged_process_alive(f"not-{socket.gethostname()}:{os.getpid()}:{ticks}") is None
    assert tagged_process_alive("garbage") is None


def test_dead_run_is_failed_and_its_slot_freed_live_and_foreign_runs_are_left(dead_process_tag):
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots(DOWNLOAD_POOL, 2)
        dead = _started_run(instance, dead_process_tag, slot=True)
        live = _started_run(instance, process_tag_value(), slot=True)
        foreign = _started_run(instance, f"elsewhere-{socket.gethostname()}:1:1", slot=False)
        assert dead.status == dg.DagsterRunStatus.STARTED
        info = instance.event_log_storage.get_concurrency_info(DOWNLOAD_POOL)
        assert {s.run_id for s in info.claimed_slots} == {dead.run_id, live.run_id}

        lines: list[str] = []
        released = release_dead_runs(instance, echo=lines.append)

        assert [r.run_id for r in released] == [dead.run_id]
        assert released[0].slots == (f"{DOWNLOAD_POOL}:raw_scene",)
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
        assert instance.get_run_by_id(foreign.run_id).status == dg.DagsterRunStatus.STARTED
        info = instance.event_log_storage.get_concurrency_info(DOWNLOAD_POOL)
        assert {s.run_id for s in info.claimed_slots} == {live.run_id}
        assert len(lines) == 1 and dead.run_id in lines[0] and "marked failed" in lines[0]
        assert release_dead_runs(instance, echo=lines.append) == []  # nothing left to release


def test_finished_run_still_holding_a_slot_gets_it_freed(dead_process_tag):
    """The issue's case: marking a dead run failed did not free its slot."""
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots(DOWNLOAD_POOL, 2)
        run = _started_run(instance, dead_process_tag, slot=True)
        instance.report_run_failed(run)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info(DOWNLOAD_POOL).claimed_slots

        released = release_dead_runs(instance, echo=lambda _: None)

        assert [r.run_id for r in released] == [run.run_id]
        assert not instance.event_log_storage.get_concurrency_info(DOWNLOAD_POOL).claimed_slots


def test_untagged_run_is_judged_by_the_pid_on_its_events_on_a_local_instance(tmp_path):
    """Runs launched by `dagster dev` carry no tag: the pid Dagster records on their events decides."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:  # default run launcher, SQLite storage
        instance.event_log_storage.set_concurrency_slots(DOWNLOAD_POOL, 2)
        runs = {}
        for name, pid in (("dead", proc.pid), ("live", os.getpid())):
            run = instance.create_run_for_job(_job)
            event = DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=_job.name, pid=pid)
            instance.report_dagster_event(event, run_id=run.run_id)
            assert instance.event_log_storage.claim_concurrency_slot(DOWNLOAD_POOL, run.run_id, "raw_scene").is_claimed
            runs[name] = run.run_id

        released = release_dead_runs(instance, echo=lambda _: None)

        assert [r.run_id for r in released] == [runs["dead"]]
        assert instance.get_run_by_id(runs["dead"]).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(runs["live"]).status == dg.DagsterRunStatus.STARTED
