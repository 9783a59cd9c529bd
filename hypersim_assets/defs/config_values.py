"""Resource config values a run cannot use: numeric bounds of the resources' fields and the
failure that names where a bad value is set.

Bounds are checked where a step uses the value, not when the resource is built: a resource
that fails to start fails the run before any step, and the instance's run retries
(``run_retries`` in dagster.yaml) would launch the same doomed run again, twice per scene of
a backfill. A failed step raised with ``allow_retries=False`` ends after one run. The command
line checks the same bounds before its first run (:func:`hypersim_assets.run_config.resource_value_problems`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import dagster as dg


class Bound(NamedTuple):
    """Allowed range of a numeric field: ``minimum`` (inclusive, or exclusive with ``above``) and ``maximum``."""

    minimum: float | None = None
    maximum: float | None = None
    above: bool = False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range, or None."""
        if self.minimum is not None:
            if self.above and not value > self.minimum:
                return f"must be greater than {self.minimum:g}"
            if not self.above and not value >= self.minimum:
                return f"must be at least {self.minimum:g}"
        if self.maximum is not None and not value <= self.maximum:
            return f"must be at most {self.maximum:g}"
        return None


def config_path(resource: str, field: str, env: str | None = None) -> str:
    """Where a value is set, as the launchpad spells it (and the variable that can set it)."""
    return f"resources.{resource}.config.{field}" + (f" (or env {env})" if env else "")


def config_failure(resource: str, field: str, env: str | None, problem: str) -> dg.Failure:
    """A permanent step failure for a resource value the run cannot use, naming where it is set."""
    return dg.Failure(description=f"{config_path(resource, field, env)}: {problem}", allow_retries=False)


def bound_problems(resource: str, values: Mapping[str, Any], bounds: Mapping[str, Bound]) -> list[str]:
    """``resources.R.config.FIELD: why (got VALUE)`` for each value of ``values`` outside its bound."""
    out = []
    for field, bound in bounds.items():
        value = values.get(field)
        if value is None:
            continue
        why = bound.problem(value)
        if why:
            out.append(f"{config_path(resource, field)}: {why} (got {value!r})")
    return out


def require_in_bounds(resource: str, values: Mapping[str, Any], bounds: Mapping[str, Bound]) -> None:
    """Raise a permanent step failure naming every value of ``values`` outside its bound."""
    problems = bound_problems(resource, values, bounds)
    if problems:
        raise dg.Failure(description="; ".join(problems), allow_retries=False)


def require_fields_in_bounds(resource: str, config: Any) -> None:
    """:func:`require_in_bounds` for the fields of a resource whose class declares ``BOUNDS``."""
    bounds = type(config).BOUNDS
    require_in_bounds(resource, {field: getattr(config, field) for field in bounds}, bounds)
