"""Helpers for tests that run the ``hypersim-assets`` command as a subprocess against a
real Dagster instance (a temporary ``DAGSTER_HOME`` holding the shipped dagster.yaml)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_home(path: Path, shipped: bool = True) -> Path:
    """A DAGSTER_HOME at ``path`` with the repository's dagster.yaml (or a minimal one)."""
    path.mkdir(parents=True, exist_ok=True)
    if shipped:
        shutil.copy(REPO / "dagster.yaml", path / "dagster.yaml")
    else:
        (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return path


def cli_env(home: Path) -> dict[str, str]:
    """The environment of a CLI subprocess: this one's, without the Hypersim variables, at ``home``."""
    env = dict(os.environ)
    for name in ("HYPERSIM_SOURCE", "HYPERSIM_DATA_ROOT", "HYPERSIM_SUBSAMPLES"):
        env.pop(name, None)
    env["DAGSTER_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(args: list[str], home: Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m hypersim_assets.cli ARGS`` to completion (a hang fails after ``timeout`` seconds)."""
    return subprocess.run(
        [sys.executable, "-m", "hypersim_assets.cli", *args],
        env=cli_env(home),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(args: list[str], home: Path, cwd: Path, logs: Path) -> subprocess.Popen:
    """Start ``python -m hypersim_assets.cli ARGS`` in its own session; stdout to ``<logs>.out``, stderr to ``<logs>.err``."""
    with open(f"{logs}.out", "w") as out, open(f"{logs}.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "hypersim_assets.cli", *args],
            env=cli_env(home),
            cwd=cwd,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
