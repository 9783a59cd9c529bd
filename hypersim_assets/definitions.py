"""The Dagster code location: everything under ``hypersim_assets.defs``, found by
``dg.load_from_defs_folder`` (the ``[tool.dg]`` project in pyproject.toml).

``definitions`` is what ``dg dev`` / ``dagster dev -w workspace.yaml`` load.
``defs`` (the loaded ``Definitions``, built once on first access) is for code that
drives the graph itself: the command line, ``materialize`` and the tests. It is a
lazy module attribute so that importing this module never builds the graph twice
and the loader sees only the one ``@dg.definitions`` function.
"""

from __future__ import annotations

import functools
from pathlib import Path

import dagster as dg

# load_from_defs_folder finds the project's pyproject.toml ([tool.dg]) above this folder.
PACKAGE_DIR = Path(__file__).resolve().parent


@dg.definitions
def definitions() -> dg.Definitions:
    """Assets, checks, jobs, schedules, sensors and resources of the ``defs`` folder."""
    return dg.load_from_defs_folder(path_within_project=PACKAGE_DIR)


@functools.cache
def _loaded() -> dg.Definitions:
    return definitions()


def __getattr__(name: str) -> dg.Definitions:
    if name == "defs":
        return _loaded()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
