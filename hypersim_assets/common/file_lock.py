"""An exclusive lock on a file (``flock``) that says who holds it: the holder writes its pid,
host, start time and a label into the lock file, so a process that waits in vain can name
the holder in its error. The kernel drops the lock when the holder dies, however it dies.

Also the one place that tells whether a process on this host is still alive
(:func:`pid_alive`), which decides whether a temp file's writer is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from hypersim_assets.common.errors import PermanentError


class LockTimeout(PermanentError):
    """Another process held the lock for longer than we were willing to wait; the message names it."""


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists on this host and is not a zombie (a dead process not yet reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
        return state not in (b"Z", b"X")
    except (FileNotFoundError, IndexError):
        return os.path.exists(f"/proc/{pid}") or not os.path.isdir("/proc")
    except OSError:
        return True


def describe_holder(path: Path) -> str:
    """Who holds the lock at ``path``, from what the holder wrote into it."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return "an unknown process"
    if not info:
        return "an unknown process"
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info.get("since", 0)))
    label = f" ({info['label']})" if info.get("label") else ""
    return f"pid {info.get('pid')} on {info.get('host')}{label} since {since}"


def flock_until(fd: int, deadline: float | None) -> bool:
    """Take an exclusive ``flock`` on ``fd``, polling every 50 ms until ``deadline``
    (``time.monotonic()`` seconds; None: forever). True once held, False at the deadline."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


@contextlib.contextmanager
def exclusive_lock(path: Path, timeout_s: float | None, label: str = "", what: str = "") -> Iterator[None]:
    """Hold ``path`` exclusively (``flock``), waiting at most ``timeout_s`` seconds (None: forever).

    While held, the file records this process (pid, host, start, ``label``); it is emptied
    on release (a holder killed with SIGKILL leaves its record, which then names the last holder). On timeout
    :class:`LockTimeout` says ``what`` is locked and by whom. The file stays in place
    (removing it would let a waiter lock an unlinked inode).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # 0666 & ~umask, like every file we write
    try:
        if not flock_until(fd, deadline):
            raise LockTimeout(
                f"{what or path} is locked by {describe_holder(path)}; waited {timeout_s:g} s (lock file {path})"
            )
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "label": label}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released: nobody holds it (and an idle lock file is always the same empty file)
    finally:
        os.close(fd)  # also releases the lock
