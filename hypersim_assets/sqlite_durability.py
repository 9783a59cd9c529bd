"""How hard the command line's SQLite connections wait for the disk: ``PRAGMA synchronous`` on
every SQLite connection the ``materialize`` (and ``demo``) process opens to its Dagster instance.

Only that process: the webserver, the daemon and ``dg dev`` keep SQLite's default (``FULL``).
The setting is per connection (SQLite stores nothing of it in the file), so whatever opens the
same instance later is unaffected. ``journal_mode`` is left alone: it is stored in the database
file (Dagster switches each database to WAL after creating it).

The choice, and why. Dagster creates each SQLite database (runs, event-log index, schedules, and
one event log per run) in rollback-journal mode, then switches it to WAL; every later use opens
and closes a connection (``NullPool``), and closing the last connection checkpoints the WAL.
Counted with ``strace`` over one ``materialize --scene`` of the time-to-dataset benchmark's scene
(two runs), ``fdatasync`` calls at SQLite's default: 305 while the fresh instance is created (in
the command's only thread, before the first run) and 925 during the runs; each one waits for
the disk, on ext4 also for other dirty data (a download writing hundreds of MB), measured
0.4 ms on an idle disk and 2-3 ms while the benchmark runs (creating a fresh instance: 1.5-2.7 s
of wall time for 1.3-1.5 s of CPU at ``FULL``, wall equal to CPU at ``OFF``). Hence:

* ``OFF`` (:data:`CREATING`) only for databases the command creates while it opens a fresh
  instance (:func:`creating_unsynced`; the first 305 calls, all of them gone). A power loss or
  OS crash in that second can leave such a database corrupt; it holds no history yet, and the
  remedy is deleting the new ``DAGSTER_HOME`` folder. A database that existed is never unsynced.
* ``NORMAL`` (:data:`SYNCHRONOUS`) for every other connection (925 calls down to 730). In WAL
  mode, per SQLite's documentation, ``NORMAL`` cannot corrupt the database; a power loss may
  roll back the last transactions (a run may then look unfinished, which ``materialize``
  already repairs: a run without its process is marked failed, and re-running resumes from the
  files on disk, the record this package trusts; its converted files are not fsynced either,
  ``ConversionSettings.fsync``). While a run's own event log is being created (rollback-journal
  mode) SQLite's documentation gives ``NORMAL`` a very small chance of corruption after a power
  loss on older file systems; ``OFF`` there too would save about 130 more calls but could
  corrupt the event log of a run a later command must read (to find runs whose process is
  gone), so it is not done.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

SYNCHRONOUS = "NORMAL"
CREATING = "OFF"  # for the databases a fresh instance creates, while it creates them
_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")


class _Creating:
    """The window in which databases created get ``CREATING``: the paths seen new in it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = False
        self.paths: set[str] = set()

    def level_for(self, connection: sqlite3.Connection, level: str) -> str:
        with self.lock:
            if not self.open:
                return level
        path = connection.execute("PRAGMA database_list").fetchone()[2]
        if not path:
            return level  # in memory: nothing to sync
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with self.lock:
            if not self.open:
                return level
            if new:
                self.paths.add(path)
            return CREATING if path in self.paths else level


_creating = _Creating()


def use_sqlite_synchronous(level: str = SYNCHRONOUS) -> Callable[[], None]:
    """Set ``PRAGMA synchronous=level`` on every SQLite connection any SQLAlchemy engine of this
    process opens from now on (``CREATING`` instead for a database created inside
    :func:`creating_unsynced`); returns a function that stops it. Other databases are untouched.

    Dagster's SQLite storages open a new connection for each use (``NullPool``), so every one of
    them gets the setting.
    """
    if level not in _LEVELS:
        raise ValueError(f"PRAGMA synchronous must be one of {', '.join(_LEVELS)}, got {level!r}")

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute(f"PRAGMA synchronous={_creating.level_for(dbapi_connection, level)}")

    event.listen(Engine, "connect", on_connect)
    return lambda: event.remove(Engine, "connect", on_connect)


@contextlib.contextmanager
def sqlite_synchronous(level: str = SYNCHRONOUS) -> Iterator[None]:
    """:func:`use_sqlite_synchronous` for the duration of the block (the commands' whole run)."""
    stop = use_sqlite_synchronous(level)
    try:
        yield
    finally:
        stop()


@contextlib.contextmanager
def creating_unsynced() -> Iterator[None]:
    """Within the block, a SQLite database whose file is absent or empty when first connected to
    (one being created: it holds no history) gets ``PRAGMA synchronous=OFF`` on every connection
    made to it in the block; databases that existed keep the installed level. Needs
    :func:`use_sqlite_synchronous` installed."""
    with _creating.lock:
        _creating.open, _creating.paths = True, set()
    try:
        yield
    finally:
        with _creating.lock:
            _creating.open, _creating.paths = False, set()


def sqlite_synchronous_of(connection: Any) -> str:
    """The ``PRAGMA synchronous`` level of a SQLAlchemy connection to SQLite (tests, diagnostics)."""
    from sqlalchemy import text

    value = int(connection.execute(text("PRAGMA synchronous")).scalar())
    return _LEVELS[value]
