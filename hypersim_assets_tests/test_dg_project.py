"""``dg check defs`` and ``dg list defs`` succeed on a fresh copy of the repository
(the files git would clone, plus uncommitted ones), so the ``[tool.dg]`` project
works for a new contributor.

For a project, ``dg`` loads the code location in its own interpreter (it writes a
workspace entry without an executable path), so running ``dg`` with this test's
interpreter uses this environment: no venv is created and nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hypersim_assets_tests.conftest import REPO_ROOT

DG_MAIN = "import sys; from dagster_dg_cli.cli import main; sys.exit(main())"
TIMEOUT_S = 300


def _repository_files(root: Path) -> list[str]:
    """Paths git would clone (tracked) plus new files not ignored; without git, the package and pyproject."""
    if (root / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return [p for p in listed.split("\0") if p and (root / p).is_file()]
    package = [str(p.relative_to(root)) for p in (root / "hypersim_assets").rglob("*.py")]
    return ["pyproject.toml", *package]


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    clone = tmp_path_factory.mktemp("clone") / "hypersim-assets"
    for rel in _repository_files(REPO_ROOT):
        dest = clone / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, dest)
    return clone


def _dg(clone: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPERSIM_", "DAGSTER_HOME"))}
    env["PYTHONPATH"] = str(clone)  # the copy's package, not the one this environment has installed
    env["NO_COLOR"] = "1"
    return subprocess.Popen(
        [sys.executable, "-c", DG_MAIN, *args],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.e2e  # two whole `dg` command runs in subprocesses (~30 s)
def test_dg_check_and_list_defs_succeed_on_a_fresh_clone(fresh_clone):
    # Started together: each spends most of its time importing Dagster.
    check = _dg(fresh_clone, "check", "defs")
    listing = _dg(fresh_clone, "list", "defs", "--json")
    check_out, check_err = check.communicate(timeout=TIMEOUT_S)
    list_out, list_err = listing.communicate(timeout=TIMEOUT_S)

    assert check.returncode == 0, check_out[-3000:] + check_err[-3000:]
    assert "All definitions loaded successfully." in check_out

    assert listing.returncode == 0, list_err[-3000:]
    listed = json.loads(list_out)
    assets = {a["asset_key"] for a in listed["assets"]}
    assert assets == {"hypersim_metadata", "raw_scene", "converted_scene", "frame_index", "subsample_views"}
    checks = {c["key"] for c in listed["asset_checks"]}
    assert {"converted_scene:frames_converted", "raw_scene:members_verified"} <= checks and len(checks) == 8
    assert {j["name"] for j in listed["jobs"]} == {
        "hypersim_scene_job",
        "hypersim_catalog_job",
        "hypersim_scene_and_index_job",
    }
    assert {r["name"] for r in listed["resources"]} == {"hypersim", "download", "conversion", "catalog", "dask"}
