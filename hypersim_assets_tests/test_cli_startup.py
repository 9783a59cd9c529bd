"""What ``materialize`` sets up around its runs, each case a real command in a subprocess against
a real instance and a real loopback mirror: the conversion pool the command starts ahead of its
runs is adopted by the first scene's step, handed back and adopted by the next, and ends with the command (also on SIGTERM: no process of the
command's session outlives it), and its instance's SQLite connections run at
``synchronous=NORMAL`` while a process that is not the command keeps SQLite's default."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from hypersim_assets.sqlite_durability import sqlite_synchronous_of
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import Faults, MirrorServer
from hypersim_assets_tests.cli_runs import cli_env, make_home, start_cli

pytestmark = pytest.mark.e2e  # whole command-line runs in subprocesses

SPEC = MirrorSpec(scenes=2, cameras=1, frames=2, height=48, width=64)

# Runs the command in this process, then reports what is left of it once main() returned.
_COMMAND_THEN_STATE = """
import json, multiprocessing, os, sys, time
import dagster as dg
from hypersim_assets import cli
from hypersim_assets import materialize as m
from hypersim_assets.convert.warm_pool import warm_pool_state
from hypersim_assets.sqlite_durability import sqlite_synchronous_of
during = []
real_materialize = m.materialize


def materialize_and_look(defs, instance, **kwargs):  # the level of the command's own connections
    with instance.run_storage.connect() as conn:
        during.append(sqlite_synchronous_of(conn))
    return real_materialize(defs, instance, **kwargs)


m.materialize = materialize_and_look
code = cli.main(sys.argv[1:])
with dg.DagsterInstance.get() as instance, instance.run_storage.connect() as conn:
    after = sqlite_synchronous_of(conn)


def forkservers():  # this process's child processes that are multiprocessing forkservers
    found = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            for pid in f.read().split():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as c:
                        if b"multiprocessing.forkserver" in c.read():
                            found.append(pid)
                except OSError:
                    pass
    return found


deadline = time.monotonic() + 10
while forkservers() and time.monotonic() < deadline:
    time.sleep(0.05)
state = {
    "code": code,
    "children": len(multiprocessing.active_children()),
    "pool": warm_pool_state(),
    "sync": during,
    "sync_after": after,
    "forkserver": bool(forkservers()),
}
print("STATE " + json.dumps(state))
"""


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    return root, write_synthetic_mirror(root, SPEC).scenes


def _session_processes(sid: int) -> list[int]:
    """Pids of live processes (not zombies) in session ``sid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != b"Z":  # fields[3] is field 6 of stat: the session id
            out.append(int(entry))
    return out


def test_two_scenes_share_one_pool_and_nothing_outlives_the_command(mirror, tmp_path):
    root, scenes = mirror
    home = make_home(tmp_path / "home")
    args = ["materialize", "--source", str(root), "--data-root", str(tmp_path / "data"), "--n-processes", "2"]
    args += [a for s in scenes for a in ("--scene", s)]
    proc = subprocess.run(
        [sys.executable, "-c", _COMMAND_THEN_STATE, *args],
        env=cli_env(home),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    state = json.loads(proc.stdout.rpartition("STATE ")[2])
    # The forkserver was stopped when the command ended, not at this process's exit.
    assert state == {
        "code": 0,
        "children": 0,
        "pool": "none",
        "sync": ["NORMAL"],  # the command's connections
        "sync_after": "FULL",  # SQLite's default again once main() returned
        "forkserver": False,
    }

    with dg.DagsterInstance.from_config(str(home)) as instance:
        with instance.run_storage.connect() as conn:
            assert sqlite_synchronous_of(conn) == "FULL"  # not the command: SQLite's default
        pool_start, adopted = {}, {}
        for scene in scenes:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(dg.AssetKey("converted_scene"), asset_partitions=[scene]), limit=1
            ).records
            metadata = records[0].asset_materialization.metadata
            assert metadata["frames_converted"].value > 0
            pool_start[scene] = metadata["pool_start_seconds"].value
            adopted[scene] = metadata["pool_adopted"].value
    # The first scene adopted the pool the command started ahead of its runs, the second the pool
    # the first handed back: ready when its conversion began.
    assert adopted == {scene: True for scene in scenes}, adopted
    assert pool_start[scenes[1]] == 0.0, pool_start


def test_sigterm_during_a_scene_leaves_no_process_behind(mirror, tmp_path):
    root, scenes = mirror
    home = make_home(tmp_path / "home")
    data = tmp_path / "data"
    slow = Faults(delay_s=2.0, path_filter="/scenes/")
    with MirrorServer(root, faults=slow) as server:
        args = ["materialize", "--source", server.url, "--data-root", str(data), "--scene", scenes[0]]
        logs = tmp_path / "cli"
        proc = start_cli([*args, "--n-processes", "2"], home, tmp_path, logs)  # its own session
        try:
            deadline = time.monotonic() + 180
            while "scene " not in Path(f"{logs}.out").read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # inside the scene step: the pool is lent, members arrive slowly
            assert len(_session_processes(proc.pid)) >= 3  # the command and its two pool workers at least
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(timeout=60) == 128 + signal.SIGTERM
            deadline = time.monotonic() + 10
            while _session_processes(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _session_processes(proc.pid) == []
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
