"""Conversion pool workers that end when the process that started the pool is gone, so
a killed run (SIGKILL, OOM killer) leaves no orphaned workers holding memory.

Two mechanisms, because pool workers of a forkserver pool are children of the forkserver,
not of the process that owns the pool: on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``
ends a worker the moment its direct parent dies; and a watchdog thread polls the owner
(pid and start time, so a reused pid is not mistaken for it) once per ``interval_s``
seconds and ends the worker when the owner is gone. Temp files a killed worker leaves
carry its pid in their name; the next run removes them (``scene_conversion``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
DEFAULT_INTERVAL_S = 1.0


def process_start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (Linux ``/proc``), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return int(fields[19])  # field 22 of stat; fields after the command name start at field 3
    except (OSError, IndexError, ValueError):
        return None


def owner_alive(pid: int, start_ticks: int | None) -> bool:
    """True while ``pid`` runs and (where known) is still the process that started at ``start_ticks``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start_ticks is None:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return False
    return fields[0] not in (b"Z", b"X") and int(fields[19]) == start_ticks


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def _watch(pid: int, start_ticks: int | None, interval_s: float) -> None:
    while owner_alive(pid, start_ticks):
        time.sleep(interval_s)
    os._exit(1)  # the owner is gone: nobody will read this worker's results


def exit_with_owner(owner_pid: int, owner_start_ticks: int | None, interval_s: float = DEFAULT_INTERVAL_S) -> None:
    """Pool initializer: end this worker when ``owner_pid`` (the pool's owner) or this worker's parent dies."""
    set_parent_death_signal()
    if os.getppid() == 1:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(
        target=_watch, args=(owner_pid, owner_start_ticks, interval_s), name="owner-watch", daemon=True
    ).start()


def owner_initializer_args() -> tuple[int, int | None]:
    """``(pid, start ticks)`` of this process, for :func:`exit_with_owner` in its pool's workers."""
    pid = os.getpid()
    return pid, process_start_ticks(pid)
