"""The Dagster code location: loads the assets, checks, jobs, schedules and
sensors of ``hypersim_assets.defs`` with their default resources."""

from __future__ import annotations

import dagster as dg

from hypersim_assets.defs.assets import catalog, conversion, raw
from hypersim_assets.defs.dask_resource import DaskResource
from hypersim_assets.defs.jobs import catalog_job, scene_job
from hypersim_assets.defs.resources import CatalogResource, ConversionResource, DownloadResource, HypersimResource
from hypersim_assets.defs.schedules import scene_backfill_schedule
from hypersim_assets.defs.sensors import automation_sensor


def build_definitions() -> dg.Definitions:
    """The code location's definitions with default resources (configured by env vars and the launchpad)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([raw, conversion, catalog]),
        jobs=[scene_job, catalog_job],
        schedules=[scene_backfill_schedule],
        sensors=[automation_sensor],
        resources={
            "hypersim": HypersimResource(),
            "download": DownloadResource(),
            "conversion": ConversionResource(),
            "catalog": CatalogResource(),
            "dask": DaskResource(),
        },
    )


defs = build_definitions()
