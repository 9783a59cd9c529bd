"""How hard the command line's SQLite connections wait for the disk: ``PRAGMA synchronous`` on
every SQLite connection the ``materialize`` (and ``demo``) process opens to its Dagster instance.

Only that process: the webserver, the daemon and ``dg dev`` keep SQLite's default (``FULL``),
and the setting is per connection (SQLite stores nothing of it in the file), so whatever opens
the same instance later is unaffected. ``journal_mode`` is left alone: it is stored in the
database file (Dagster sets WAL after creating each database).

The choice: ``NORMAL``. Dagster creates each of its SQLite databases (the runs, the event-log
index, the schedules, and one event log per run) in rollback-journal mode and then switches it to
WAL; at the default ``FULL``, creating a fresh instance waits for about 300 ``fdatasync`` calls
(230 at ``NORMAL``, none at ``OFF``), and every event a run writes afterwards waits for one more,
each of which, on ext4, also waits for whatever other data the machine has not yet written (a
download writing hundreds of MB). What ``NORMAL`` gives up, per SQLite's documentation: in WAL
mode (every database once created) nothing but durability: after a power loss or an OS crash
(not a crash of this process) the last transactions may be rolled back, never corrupted; so a
run could show as unfinished after a power cut, which ``materialize`` already handles (a run
without its process is marked failed and re-running resumes from the files on disk, the truth
this package relies on: the converted files are not fsynced either, ``ConversionSettings.fsync``).
In rollback-journal mode (only while a database is being created), SQLite says a power loss at
the wrong moment has a very small chance of corrupting it on older file systems; a database then
being created holds no history. ``OFF`` would save a little more while a fresh instance is being
created, but there a power loss can corrupt the file, and a corrupt ``runs.db`` has to be found and
deleted by hand; measured in ``benchmarks/bench_time_to_dataset.py`` it did not pay for that
(see the README's section on the command line's instance).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

SYNCHRONOUS = "NORMAL"
_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")


def use_sqlite_synchronous(level: str = SYNCHRONOUS) -> Callable[[], None]:
    """Set ``PRAGMA synchronous=level`` on every SQLite connection any SQLAlchemy engine of this
    process opens from now on (other databases untouched); returns a function that stops it.

    Dagster's SQLite storages open a new connection for each use (``NullPool``), so every one of
    them gets the setting.
    """
    if level not in _LEVELS:
        raise ValueError(f"PRAGMA synchronous must be one of {', '.join(_LEVELS)}, got {level!r}")

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute(f"PRAGMA synchronous={level}")

    event.listen(Engine, "connect", on_connect)
    return lambda: event.remove(Engine, "connect", on_connect)


def sqlite_synchronous_of(connection: Any) -> str:
    """The ``PRAGMA synchronous`` level of a SQLAlchemy connection to SQLite (tests, diagnostics)."""
    from sqlalchemy import text

    value = int(connection.execute(text("PRAGMA synchronous")).scalar())
    return _LEVELS[value]
