"""Numeric bounds of the resources' fields: what is in and out of range, and the messages
that name the field (the same text before a command's first run and in a failed step)."""

from __future__ import annotations

import dagster as dg
import pytest

from hypersim_assets.defs.config_values import Bound, bound_problems, require_in_bounds
from hypersim_assets.defs.dask_resource import DaskResource
from hypersim_assets.defs.resources import ConversionResource, DownloadResource


@pytest.mark.parametrize(
    ("bound", "inside", "outside"),
    [
        (Bound(0), [0, 1, 10**9], [-1]),
        (Bound(1, 64), [1, 64], [0, 65]),
        (Bound(0, above=True), [0.001, 60.0], [0.0, -5.0]),
        (Bound(-1), [-1, 0], [-2]),
    ],
)
def test_bound_edges(bound, inside, outside):
    assert [bound.problem(v) for v in inside] == [None] * len(inside)
    assert all(bound.problem(v) for v in outside)


def test_problems_name_each_field_and_value_and_skip_unset_ones():
    bounds = DownloadResource.BOUNDS
    problems = bound_problems("download", {"workers": 0, "max_attempts": 0, "timeout_s": None}, bounds)
    assert problems == [
        "resources.download.config.workers: must be at least 1 (got 0)",
        "resources.download.config.max_attempts: must be at least 1 (got 0)",
    ]
    assert bound_problems("download", {"workers": 65}, bounds) == [
        "resources.download.config.workers: must be at most 64 (got 65)"
    ]
    assert bound_problems("download", {"timeout_s": 0}, bounds) == [
        "resources.download.config.timeout_s: must be greater than 0 (got 0)"
    ]


def test_every_default_is_in_range():
    for name, resource in (
        ("download", DownloadResource()),
        ("conversion", ConversionResource()),
        ("dask", DaskResource()),
    ):
        values = {field: getattr(resource, field) for field in type(resource).BOUNDS}
        assert bound_problems(name, values, type(resource).BOUNDS) == [], name


def test_a_resource_with_a_value_out_of_range_builds_but_fails_where_used_without_retry():
    conversion = ConversionResource(workers=-1)  # builds: a run's resources start
    with pytest.raises(dg.Failure) as failed:
        conversion.worker_count()
    assert failed.value.description == "resources.conversion.config.workers: must be at least 0 (got -1)"
    assert failed.value.allow_retries is False
    with pytest.raises(dg.Failure, match="resources.download.config.max_attempts: must be at least 1"):
        DownloadResource(max_attempts=0).checked()
    with pytest.raises(dg.Failure, match="resources.dask.config.connect_timeout_s: must be greater than 0"):
        DaskResource(connect_timeout_s=0).dask_config()
    require_in_bounds("conversion", {"workers": 0}, ConversionResource.BOUNDS)  # in range: no failure
