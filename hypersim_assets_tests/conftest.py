"""Shared test fixtures and policies: where the repository and the shared reference
data live, small synthetic mirrors served over loopback, a Dagster instance with the
shipped ``dagster.yaml`` settings, and the rule that tests needing ``../shared/``
skip locally but fail under ``CI=true``.

The ``e2e`` marker (registered in pyproject.toml) tags the slow end-to-end tests:
``pytest -m "not e2e"`` is the quick loop, plain ``pytest`` (and CI) runs all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml  # PyYAML, a dependency of dagster

from hypersim_assets.synthetic.mirror import MirrorSpec, MirrorSummary, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import MirrorServer

REPO_ROOT = Path(__file__).resolve().parents[1]
# The real Hypersim files some tests compare against; HYPERSIM_REFERENCE points elsewhere
# (e.g. from a git worktree, whose ../shared is not the main checkout's).
SHARED_REFERENCE = Path(
    os.environ.get("HYPERSIM_REFERENCE") or REPO_ROOT.parent / "shared" / "hypersim-reference"
).resolve()
# Instance settings copied from the shipped dagster.yaml into test instances (storage stays temporary).
INSTANCE_SECTIONS = ("concurrency", "run_retries", "run_monitoring")
# Skip reasons that mean "the shared reference data is absent", whoever wrote the skip.
_SHARED_SKIP = re.compile(r"shared|hypersim-reference|reference files", re.IGNORECASE)


def on_ci() -> bool:
    """True under CI (env ``CI`` set to anything but empty, ``0`` or ``false``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def skip_unless_ci(reason: str) -> None:
    """Skip the test locally; under CI, which provides everything the suite needs, fail it."""
    if on_ci():
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


def require_shared(*parts: str) -> Path:
    """``SHARED_REFERENCE / parts``; skips the test when absent, fails it under CI."""
    path = SHARED_REFERENCE.joinpath(*parts)
    if not path.exists():
        skip_unless_ci(f"shared reference data {path} is absent")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI, a skip because the shared reference data is absent is a failure.

    Catches the ``skipif`` markers and ``pytest.skip`` calls that test modules write
    themselves, so no test that needs ``../shared/`` passes CI by skipping.
    """
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and on_ci()) or getattr(report, "wasxfail", None) is not None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if _SHARED_SKIP.search(reason):
        report.outcome = "failed"
        report.longrepr = f"required under CI, but skipped: {reason}"


def shipped_instance_settings(config_path: Path = REPO_ROOT / "dagster.yaml") -> dict:
    """The concurrency, run-retry and run-monitoring sections of a shipped ``dagster.yaml``."""
    config = yaml.safe_load(config_path.read_text()) or {}
    return {key: config[key] for key in INSTANCE_SECTIONS if key in config}


@pytest.fixture
def shipped_instance() -> Iterator[dg.DagsterInstance]:
    """A temporary Dagster instance with the repository dagster.yaml's run retries, monitoring and pools."""
    with dg.instance_for_test(overrides=shipped_instance_settings()) as instance:
        yield instance


def write_mirror(root: Path, spec: MirrorSpec) -> tuple[Path, MirrorSummary]:
    """A synthetic mirror written under ``root``; returns its folder and summary."""
    summary = write_synthetic_mirror(root, spec)
    return root, summary


@pytest.fixture(scope="module")
def small_mirror(tmp_path_factory) -> tuple[Path, MirrorSummary]:
    """A mirror of 2 scenes x 2 cameras x 2 frames at 24 x 32 px, written once per module."""
    return write_mirror(
        tmp_path_factory.mktemp("mirror"), MirrorSpec(scenes=2, cameras=2, frames=2, height=24, width=32)
    )


@pytest.fixture
def mirror_server(small_mirror) -> Iterator[MirrorServer]:
    """``small_mirror`` served over HTTP on 127.0.0.1 (a fresh server, with fresh fault counters, per test)."""
    with MirrorServer(small_mirror[0]) as server:
        yield server


def resource_config(source: str, data_root: Path, **resources: dict) -> dict:
    """Run config for the ``hypersim`` resource (source, data root) plus other resources' config blocks.

    Frames convert in the run's own process (``conversion.workers: 1``) unless a test says
    otherwise: for a few tiny frames, starting a process pool costs more than the frames.
    The pool path is covered by the whole-graph tests (test_defs_pipeline, e2e).
    """
    config = {
        "hypersim": {"config": {"source": source, "data_root": str(data_root)}},
        "conversion": {"config": {"workers": 1}},
    }
    config.update({name: {"config": block} for name, block in resources.items()})
    return {"resources": config}


def run_job(job_name: str, config: dict, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    """One in-process run of a job of the code location in ``instance``; a failed run is returned, not raised."""
    from hypersim_assets.definitions import defs

    return defs.resolve_job_def(job_name).execute_in_process(
        run_config=config, instance=instance, raise_on_error=False, **kwargs
    )


def materialize_metadata(instance: dg.DagsterInstance, config: dict) -> None:
    """Materialise ``hypersim_metadata`` (it registers the scene partitions); the run must succeed."""
    assert run_job("hypersim_catalog_job", config, instance, asset_selection=[dg.AssetKey("hypersim_metadata")]).success
