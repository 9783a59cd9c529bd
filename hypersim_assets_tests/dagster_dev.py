"""Test helper: a real ``dagster dev`` (webserver + daemon) on 127.0.0.1 serving
this repo's code location against a tiny synthetic mirror, and small GraphQL
calls (standard-library ``urllib``) to drive and observe it.

``dagster dev`` started in the background of a non-interactive shell ignores
SIGTERM, so it is started in its own session (process group) and stopped by
signalling that group: SIGINT, then SIGTERM, then SIGKILL, each bounded.
Every wait here is bounded and fails with the webserver's log tail.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # PyYAML, a dependency of dagster

from hypersim_assets.synthetic.mirror import MirrorSpec, MirrorSummary, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import MirrorServer

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCATION_NAME = "hypersim_assets"  # workspace.yaml's location_name and [tool.dg.project] code_location_name
REPOSITORY_NAME = "__repository__"  # Dagster's name for a Definitions object's repository
TINY_MIRROR = MirrorSpec(scenes=2, cameras=1, frames=2, height=24, width=32)

# Run states as GraphQL names them (RunStatus enum).
RUN_DONE = {"SUCCESS", "FAILURE", "CANCELED"}
# Backfill states (BulkActionStatus enum) after which no more runs start.
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


class DagsterDevError(RuntimeError):
    """dagster dev did not start, a GraphQL call failed, or a bounded wait ran out."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dagster_executable(name: str = "dagster") -> Path:
    """The ``dagster`` (or ``dg``) entry point of the running interpreter's environment (the venv's bin dir)."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise DagsterDevError(f"no {name} executable next to {sys.executable}")
    return path


def dev_command(cli: str, port: int) -> list[str]:
    """The command that starts the UI and daemon on 127.0.0.1:``port`` from the repository root.

    ``dg``: ``dg dev`` on the ``[tool.dg]`` project (what the README shows);
    ``dagster``: ``dagster dev -w workspace.yaml`` (still supported).
    """
    if cli == "dg":
        return [str(dagster_executable("dg")), "dev", "--host", "127.0.0.1", "--port", str(port)]
    if cli == "dagster":
        return [str(dagster_executable()), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    raise ValueError(f"cli must be 'dg' or 'dagster', not {cli!r}")


@dataclass
class DagsterDev:
    """A running ``dagster dev``: its base URL, instance home, data root, mirror and log file."""

    url: str
    home: Path
    data_root: Path
    mirror: MirrorSummary
    log_path: Path
    proc: subprocess.Popen

    def log_tail(self, chars: int = 4000) -> str:
        """The last ``chars`` characters of dagster dev's combined stdout/stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no log: {exc})"

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout_s: float = 30.0) -> dict:
        """POST one GraphQL operation; the ``data`` member, or ``DagsterDevError`` on transport or GraphQL errors."""
        return graphql(self.url, query, variables, timeout_s)

    def fail(self, message: str) -> DagsterDevError:
        return DagsterDevError(f"{message}\n--- dagster dev log tail ---\n{self.log_tail()}")


def graphql(url: str, query: str, variables: dict[str, Any] | None = None, timeout_s: float = 30.0) -> dict:
    """POST ``query`` to ``<url>/graphql`` and return its ``data``; raise on HTTP or GraphQL errors."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise DagsterDevError(f"GraphQL HTTP {exc.code}: {exc.read()[:2000]!r}") from exc
    if payload.get("errors"):
        raise DagsterDevError(f"GraphQL errors: {json.dumps(payload['errors'])[:2000]}")
    return payload["data"]


def wait_for(
    what: str, check: Callable[[], Any], timeout_s: float, interval_s: float = 1.0, dev: DagsterDev | None = None
) -> Any:
    """Call ``check`` until it returns something other than ``None`` or ``False`` (returned), or ``timeout_s``
    passes (``DagsterDevError``)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        last = check()
        if last is not None and last is not False:
            return last
        if time.monotonic() > deadline:
            message = f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})"
            raise dev.fail(message) if dev else DagsterDevError(message)
        if dev is not None and dev.proc.poll() is not None:
            raise dev.fail(f"dagster dev exited ({dev.proc.returncode}) while waiting for {what}")
        time.sleep(interval_s)


def _server_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _location_loaded(url: str) -> bool:
    """The code location finished loading without error."""
    try:
        data = graphql(
            url,
            """{ workspaceOrError { __typename ... on Workspace {
            locationEntries { name loadStatus locationOrLoadError { __typename } } } } }""",
            timeout_s=10,
        )
    except (DagsterDevError, OSError):
        return False
    entries = data["workspaceOrError"].get("locationEntries", [])
    for entry in entries:
        if entry["name"] == LOCATION_NAME and entry["loadStatus"] == "LOADED":
            if entry["locationOrLoadError"]["__typename"] != "RepositoryLocation":
                raise DagsterDevError(f"code location {LOCATION_NAME} failed to load: {entry}")
            return True
    return False


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop dagster dev and its children by process group: SIGINT, then SIGTERM, then SIGKILL (bounded)."""
    if proc.poll() is None:
        for sig, grace_s in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=grace_s)
                break
            except subprocess.TimeoutExpired:
                continue
    # The group may outlive its leader (a run worker, the daemon): make sure it is gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_dagster_dev(
    workdir: Path, spec: MirrorSpec = TINY_MIRROR, startup_timeout_s: float = 120.0, cli: str = "dagster"
) -> Iterator[DagsterDev]:
    """Write a synthetic mirror under ``workdir``, serve it on loopback, and run the UI on it.

    The instance lives in ``workdir/dagster_home`` (the repo's ``dagster.yaml``, telemetry off), the
    outputs in ``workdir/data``; ``cli`` picks ``dagster dev -w workspace.yaml`` or ``dg dev`` (see
    :func:`dev_command`); both name the code location ``hypersim_assets``. Yields once the webserver
    answers and the code location is loaded; stops the whole process group on exit.
    """
    workdir = Path(workdir)
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text()) or {}
    config["telemetry"] = {"enabled": False}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    data_root = workdir / "data"
    data_root.mkdir(exist_ok=True)
    mirror = write_synthetic_mirror(workdir / "mirror", spec)
    log_path = workdir / "dagster_dev.log"

    with MirrorServer(workdir / "mirror") as server:
        env = dict(os.environ)
        env.update(
            {
                "DAGSTER_HOME": str(home),
                "HYPERSIM_SOURCE": server.url,
                "HYPERSIM_DATA_ROOT": str(data_root),
                "PYTHONUNBUFFERED": "1",
            }
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                dev_command(cli, port),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        dev = DagsterDev(url=url, home=home, data_root=data_root, mirror=mirror, log_path=log_path, proc=proc)
        try:
            wait_for(
                "the webserver to answer /server_info",
                lambda: _server_answers(url),
                startup_timeout_s,
                interval_s=0.5,
                dev=dev,
            )
            wait_for(
                f"code location {LOCATION_NAME} to load",
                lambda: _location_loaded(url),
                startup_timeout_s,
                interval_s=0.5,
                dev=dev,
            )
            yield dev
        finally:
            _stop_group(proc)


# --- GraphQL operations used by the tests -----------------------------------------------------------


def _asset_key(name: str) -> dict:
    return {"path": [name]}


def launch_asset_run(dev: DagsterDev, job: str, assets: list[str]) -> str:
    """Launch ``job`` for the unpartitioned ``assets`` with default config (as the asset page's Materialize
    button does); the run id."""
    data = dev.graphql(
        """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
            __typename ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message } ... on RunConfigValidationInvalid { errors { message } }
            ... on InvalidSubsetError { message } } }""",
        {
            "p": {
                "selector": {
                    "repositoryLocationName": LOCATION_NAME,
                    "repositoryName": REPOSITORY_NAME,
                    "jobName": job,
                    "assetSelection": [_asset_key(a) for a in assets],
                },
                "runConfigData": {},
                "mode": "default",
            }
        },
    )["launchPipelineExecution"]
    if data["__typename"] != "LaunchRunSuccess":
        raise dev.fail(f"launching {job} {assets} failed: {data}")
    return data["run"]["runId"]


def run_status(dev: DagsterDev, run_id: str) -> str:
    """The run's status (``QUEUED``, ``STARTED``, ``SUCCESS``, ``FAILURE``, ...)."""
    data = dev.graphql(
        "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }", {"id": run_id}
    )["runOrError"]
    if data["__typename"] != "Run":
        raise dev.fail(f"run {run_id}: {data}")
    return data["status"]


def wait_for_run(dev: DagsterDev, run_id: str, timeout_s: float) -> str:
    """Wait until the run finishes; raise unless it succeeded. Returns ``SUCCESS``."""
    status = wait_for(
        f"run {run_id} to finish", lambda: (s := run_status(dev, run_id)) in RUN_DONE and s, timeout_s, dev=dev
    )
    if status != "SUCCESS":
        raise dev.fail(f"run {run_id} ended {status}")
    return status


def runs(dev: DagsterDev, limit: int = 50) -> list[dict]:
    """The newest runs: id, job, status and tags (newest first)."""
    data = dev.graphql(
        """query($limit: Int) { runsOrError(limit: $limit) { __typename ... on Runs { results {
            runId jobName status assetSelection { path } tags { key value } } } } }""",
        {"limit": limit},
    )["runsOrError"]
    if data["__typename"] != "Runs":
        raise dev.fail(f"runs query: {data}")
    return data["results"]


def partition_statuses(dev: DagsterDev, asset: str) -> dict[str, list[str]]:
    """Partition keys of ``asset`` by state: materialized, failed, unmaterialized, materializing."""
    data = dev.graphql(
        """query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { __typename ... on AssetNode {
            assetPartitionStatuses { __typename ... on DefaultPartitionStatuses {
                materializedPartitions failedPartitions unmaterializedPartitions materializingPartitions } } } } }""",
        {"k": _asset_key(asset)},
    )["assetNodeOrError"]
    if data["__typename"] != "AssetNode":
        raise dev.fail(f"asset {asset}: {data}")
    statuses = data["assetPartitionStatuses"]
    return {
        "materialized": sorted(statuses["materializedPartitions"]),
        "failed": sorted(statuses["failedPartitions"]),
        "unmaterialized": sorted(statuses["unmaterializedPartitions"]),
        "materializing": sorted(statuses["materializingPartitions"]),
    }


def latest_materializations(dev: DagsterDev, asset: str, limit: int = 100) -> list[dict]:
    """The asset's newest materialisation events (timestamp in ms as a string, run id, partition), newest first."""
    data = dev.graphql(
        """query($k: AssetKeyInput!, $limit: Int) { assetOrError(assetKey: $k) { __typename ... on Asset {
            assetMaterializations(limit: $limit) { timestamp runId partition } } } }""",
        {"k": _asset_key(asset), "limit": limit},
    )["assetOrError"]
    if data["__typename"] == "AssetNotFoundError":
        return []
    if data["__typename"] != "Asset":
        raise dev.fail(f"asset {asset}: {data}")
    return data["assetMaterializations"]


def dynamic_partitions(dev: DagsterDev, asset: str) -> list[str]:
    """The partition keys the asset's partitions definition has now (dynamic ones included)."""
    data = dev.graphql(
        """query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { __typename ... on AssetNode {
            partitionKeys } } }""",
        {"k": _asset_key(asset)},
    )["assetNodeOrError"]
    if data["__typename"] != "AssetNode":
        raise dev.fail(f"asset {asset}: {data}")
    return sorted(data["partitionKeys"])


def launch_partition_backfill(
    dev: DagsterDev, assets: list[str], partitions: list[str] | None = None, title: str | None = None
) -> str:
    """Launch an asset backfill of ``assets`` over ``partitions`` (all partitions when ``None``), as the UI's
    launch dialog does; the backfill id."""
    params: dict[str, Any] = {"assetSelection": [_asset_key(a) for a in assets]}
    if partitions is None:
        params["allPartitions"] = True
    else:
        params["partitionNames"] = list(partitions)
    if title:
        params["title"] = title
    data = dev.graphql(
        """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
            __typename ... on LaunchBackfillSuccess { backfillId }
            ... on PythonError { message stack } ... on InvalidSubsetError { message }
            ... on PartitionSetNotFoundError { message } ... on UnauthorizedError { message } } }""",
        {"p": params},
    )["launchPartitionBackfill"]
    if data["__typename"] != "LaunchBackfillSuccess":
        raise dev.fail(f"launching backfill of {assets}: {data}")
    return data["backfillId"]


def backfill_state(dev: DagsterDev, backfill_id: str) -> dict:
    """The backfill's status and its runs' ids and statuses."""
    data = dev.graphql(
        """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill {
            status numPartitions runs { runId status } } } }""",
        {"id": backfill_id},
    )["partitionBackfillOrError"]
    if data["__typename"] != "PartitionBackfill":
        raise dev.fail(f"backfill {backfill_id}: {data}")
    return data
