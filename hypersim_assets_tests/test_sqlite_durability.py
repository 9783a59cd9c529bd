"""The command line's SQLite setting: on while installed, on every kind of connection a Dagster
SQLite instance opens (runs, event-log index, a run's own event log, also one created meanwhile),
and gone once removed (``dg dev`` and the daemon never install it)."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from hypersim_assets.sqlite_durability import (
    SYNCHRONOUS,
    creating_unsynced,
    sqlite_synchronous_of,
    use_sqlite_synchronous,
)


@dg.asset
def _one() -> int:
    return 1


def _levels(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    levels = set()
    for connect in (
        instance.run_storage.connect,
        instance.event_log_storage.index_connection,
        lambda: instance.event_log_storage.run_connection(run_id),
    ):
        with connect() as conn:
            levels.add(sqlite_synchronous_of(conn))
    return levels


def test_set_on_every_connection_of_the_instance_while_installed(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run_id = dg.materialize([_one], instance=instance).run_id
        assert _levels(instance, run_id) == {"FULL"}  # SQLite's default, as dg dev and the daemon see it
        stop = use_sqlite_synchronous()
        try:
            assert _levels(instance, run_id) == {SYNCHRONOUS} == {"NORMAL"}
            # Also on a database created while installed (a new run's own event log).
            new_run = dg.materialize([_one], instance=instance).run_id
            assert _levels(instance, new_run) == {"NORMAL"}
        finally:
            stop()
        assert _levels(instance, run_id) == {"FULL"}


def test_any_sqlite_engine_of_the_process_and_only_valid_levels():
    stop = use_sqlite_synchronous("OFF")
    try:
        with sa.create_engine("sqlite://").connect() as conn:
            assert sqlite_synchronous_of(conn) == "OFF"
    finally:
        stop()
    with sa.create_engine("sqlite://").connect() as conn:
        assert sqlite_synchronous_of(conn) == "FULL"
    with pytest.raises(ValueError, match="synchronous"):
        use_sqlite_synchronous("FAST")


def test_databases_created_in_the_window_are_unsynced_and_only_those(tmp_path):
    old_home, new_home = tmp_path / "old", tmp_path / "new"
    old_home.mkdir()
    new_home.mkdir()
    with dg.DagsterInstance.from_config(str(old_home)) as old:  # an instance with history
        dg.materialize([_one], instance=old)
    stop = use_sqlite_synchronous()
    try:
        with creating_unsynced():
            fresh = dg.DagsterInstance.from_config(str(new_home))
            existing = dg.DagsterInstance.from_config(str(old_home))
            with fresh.run_storage.connect() as conn:
                assert sqlite_synchronous_of(conn) == "OFF"  # created in the window: no history to lose
            with fresh.event_log_storage.index_connection() as conn:
                assert sqlite_synchronous_of(conn) == "OFF"
            with existing.run_storage.connect() as conn:
                assert sqlite_synchronous_of(conn) == "NORMAL"  # it existed: never unsynced
        with fresh.run_storage.connect() as conn:
            assert sqlite_synchronous_of(conn) == "NORMAL"  # after the window
        fresh.dispose()
        existing.dispose()
    finally:
        stop()


def test_the_command_run_in_this_process_removes_its_setting_when_it_returns(tmp_path, monkeypatch):
    """``main()`` called in-process (tests, notebooks) must leave SQLite's default behind."""
    from hypersim_assets.cli import main

    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))  # restored afterwards, whatever main() sets
    missing = tmp_path / "no_such_mirror"
    # Fails on the source after the command installed its setting (before any run).
    assert main(["materialize", "--source", str(missing), "--data-root", str(tmp_path / "data")]) == 2
    with sa.create_engine("sqlite://").connect() as conn:
        assert sqlite_synchronous_of(conn) == "FULL"
