"""``deploy/postgres/dagster.yaml`` against a real PostgreSQL server on loopback: a backfill
of several scene partitions as concurrent runs, each in its own process (as run workers
or K8s run pods are), leaves exactly one materialisation of ``raw_scene`` and of
``converted_scene`` per partition, each pointing at the right parent data version, and no
storage error. Skips without PostgreSQL binaries or dagster-postgres, except under CI."""

from __future__ import annotations

import glob
import hashlib
import importlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hypersim_assets_tests.conftest import skip_unless_ci

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "deploy" / "postgres" / "dagster.yaml"
SCENES = 4
H, W = 24, 32
PG_USER, PG_PASSWORD, PG_DB = "dagster", "hypersim-test-password", "dagster_test"

pytestmark = pytest.mark.e2e  # a PostgreSQL server and concurrent run processes


def _skip_or_fail(why: str) -> None:
    skip_unless_ci(why)


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        which = shutil.which("initdb")
        if which is None:
            _skip_or_fail("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
        return Path(which).parent
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Postgres:
    """A throwaway PostgreSQL cluster in a temp folder, listening on 127.0.0.1 only.

    PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` user.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = _free_port()
        self.prefix: list[str] = []
        self.home = Path(tempfile.mkdtemp(prefix="hypersim-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                _skip_or_fail("running as root and there is no 'postgres' user to run the server as")
            self.prefix = ["runuser", "-u", "postgres", "--"]
            os.chown(self.home, owner.pw_uid, owner.pw_gid)
        self.data = self.home / "data"
        pwfile = self.home / "pw"
        pwfile.write_text(PG_PASSWORD + "\n")
        if self.prefix:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            PG_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.home / "server.log"),
            "-w",
            "-t",
            "30",
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.home} -c fsync=off -c max_connections=200",
            "start",
        )

    def _run(self, tool: str, *args: str) -> None:
        out = subprocess.run(
            [*self.prefix, str(self.bin / tool), *args], capture_output=True, text=True, timeout=60, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(f"{tool} failed ({out.returncode}): {out.stdout}\n{out.stderr}")

    def log(self) -> str:
        path = self.home / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    for module in ("dagster_postgres", "psycopg2"):
        try:
            importlib.import_module(module)
        except ImportError:
            _skip_or_fail(f"{module} is not installed (pip install dagster-postgres==0.29.27)")
    server = _Postgres(_pg_bin())
    try:
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=server.port, user=PG_USER, password=PG_PASSWORD, dbname="postgres"
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {PG_DB}")
        conn.close()
        yield server
    finally:
        server.stop()


_RUN_ONE_PARTITION = """
import sys
import dagster as dg
from hypersim_assets.definitions import defs
from hypersim_assets.materialize import resource_run_config
source, data_root, scene = sys.argv[1:4]
run_config = resource_run_config(source, data_root)
run_config["resources"]["conversion"] = {"config": {"workers": 1}}
with dg.DagsterInstance.get() as instance:
    result = defs.resolve_job_def("hypersim_scene_job").execute_in_process(
        run_config=run_config, instance=instance, partition_key=scene, raise_on_error=False)
sys.exit(0 if result.success else 3)
"""


def _tag(record, name: str) -> str | None:
    return record.asset_materialization.tags.get(name)


def _partitions_version(*parents) -> str:
    """The input data version Dagster gives a child of these parent partition records (sorted by partition)."""
    ordered = sorted(parents, key=lambda r: r.partition_key)
    return hashlib.sha256("".join(_tag(r, "dagster/data_version") for r in ordered).encode()).hexdigest()


def test_concurrent_partition_runs_keep_one_materialisation_each_with_lineage(postgres, tmp_path, monkeypatch):
    import dagster as dg

    from hypersim_assets.definitions import defs
    from hypersim_assets.defs.policies import DOWNLOAD_POOL
    from hypersim_assets.materialize import resource_run_config
    from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(RECIPE, home / "dagster.yaml")  # the recipe itself, credentials from the environment
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_DB": PG_DB,
        "DAGSTER_PG_USERNAME": PG_USER,
        "DAGSTER_PG_PASSWORD": PG_PASSWORD,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    mirror = write_synthetic_mirror(
        tmp_path / "mirror", MirrorSpec(scenes=SCENES, cameras=1, frames=2, height=H, width=W)
    )
    source, data = str(tmp_path / "mirror"), tmp_path / "data"

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        meta = defs.resolve_job_def("hypersim_catalog_job").execute_in_process(
            run_config=resource_run_config(source, data),
            instance=instance,
            asset_selection=[dg.AssetKey("hypersim_metadata")],
        )
        assert meta.success
        scenes = sorted(instance.get_dynamic_partitions("hypersim_scenes"))
        assert scenes == sorted(mirror.scenes)

        # The documented setup step (deploy/README.md): pin the download pool's limit before
        # runs race to create it (dagster-postgres 0.29.27 fails the losers, dagster issue #33552).
        subprocess.run(
            [str(Path(sys.executable).parent / "dagster"), "instance", "concurrency", "set", DOWNLOAD_POOL, "2"],
            env={**os.environ, **env},
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=60,
        )
        assert instance.event_log_storage.get_concurrency_info(DOWNLOAD_POOL).slot_count == 2

        # The backfill: one process per partition, all started at once.
        procs = {
            scene: subprocess.Popen(
                [sys.executable, "-c", _RUN_ONE_PARTITION, source, str(data), scene],
                cwd=tmp_path,
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            for scene in scenes
        }
        outputs = {}
        try:
            for scene, proc in procs.items():
                outputs[scene] = proc.communicate(timeout=120)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
        for scene, proc in procs.items():
            assert proc.returncode == 0, f"{scene}: {outputs[scene][1][-3000:]}\n{postgres.log()[-2000:]}"
            stderr = outputs[scene][1]
            for bad in ("Traceback", "psycopg2", "sqlalchemy.exc", "DagsterInstanceMigrationRequired"):
                assert bad not in stderr, f"{scene}: {stderr[-3000:]}"

        runs = instance.get_run_records(dg.RunsFilter(job_name="hypersim_scene_job"))
        assert sorted(r.dagster_run.tags["dagster/partition"] for r in runs) == scenes
        assert {r.dagster_run.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        # Real concurrency: some two runs were in progress at the same time.
        spans = sorted((r.start_time, r.end_time) for r in runs)
        assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans
        for r in runs:
            failures = instance.get_records_for_run(
                r.dagster_run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
            ).records
            assert not failures

        metadata_version = instance.get_latest_materialization_event(
            dg.AssetKey("hypersim_metadata")
        ).asset_materialization.tags["dagster/data_version"]
        for scene in scenes:
            raw = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_scene"), asset_partitions=[scene]), limit=10
            ).records
            converted = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("converted_scene"), asset_partitions=[scene]), limit=10
            ).records
            assert len(raw) == 1 and len(converted) == 1, (scene, len(raw), len(converted))
            raw, converted = raw[0], converted[0]
            assert raw.run_id == converted.run_id  # one run per partition did both
            assert _tag(raw, "dagster/input_data_version/hypersim_metadata") == metadata_version
            # For a partitioned parent Dagster records sha256 over the data versions of the mapped
            # parent partitions (here exactly one: this scene's raw_scene). Its input_event_pointer
            # tag is the parent asset's latest event over all partitions, so not checked here.
            assert _tag(converted, "dagster/input_data_version/raw_scene") == _partitions_version(raw)
            assert _tag(converted, "dagster/data_version")
            written = converted.asset_materialization.metadata["frames_converted"].value
            assert written > 0
            assert len(list((data / "dataset").glob(f"*/rgb/{scene}/*/*.png"))) == written
        # Versions differ between scenes: lineage points at each partition's own parent.
        assert (
            len(
                {
                    _tag(r, "dagster/data_version")
                    for r in instance.fetch_materializations(dg.AssetKey("raw_scene"), limit=100).records
                }
            )
            == SCENES
        )
