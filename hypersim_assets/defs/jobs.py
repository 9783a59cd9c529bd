"""Jobs: the per-scene job that backfills and schedules run, the catalogue job, and the
one-scene-then-catalogue job that ends a command-line ``materialize``."""

from __future__ import annotations

import dagster as dg

SCENE_ASSETS = dg.AssetSelection.assets("raw_scene", "converted_scene")
CATALOG_ASSETS = dg.AssetSelection.assets("hypersim_metadata", "frame_index", "subsample_views")
INDEX_ASSETS = dg.AssetSelection.assets("frame_index", "subsample_views")

# A lost run worker (machine reboot, OOM kill) is retried as a whole run; the
# assets skip what is already verified, so a retried run redoes little. A failed
# asset or check is not: transient errors were already retried inside the run by
# the asset's RetryPolicy, and a permanent one fails the same way again. The tag
# says so even on an instance whose dagster.yaml does not.
RUN_RETRY_TAGS = {
    "dagster/max_retries": "2",
    "dagster/retry_strategy": "FROM_FAILURE",
    "dagster/retry_on_asset_or_op_failure": "false",
}

scene_job = dg.define_asset_job(
    "hypersim_scene_job",
    selection=SCENE_ASSETS,
    tags=RUN_RETRY_TAGS,
    description="Download and convert one scene partition.",
)

catalog_job = dg.define_asset_job(
    "hypersim_catalog_job",
    selection=CATALOG_ASSETS,
    tags=RUN_RETRY_TAGS,
    description="Fetch the metadata (registering scene partitions), then rebuild the frame index and views.",
)

# One run instead of two for the last scene of a command-line ``materialize``: the scene
# partition, then the (unpartitioned) index and views rebuilt over every scene. Each run
# costs the command its own event-log database and run bookkeeping (about a second here).
scene_and_index_job = dg.define_asset_job(
    "hypersim_scene_and_index_job",
    selection=SCENE_ASSETS | INDEX_ASSETS,
    tags=RUN_RETRY_TAGS,
    description="Download and convert one scene partition, then rebuild the frame index and views.",
)
