"""The scene step: one op that materialises ``raw_scene`` and ``converted_scene`` of a scene
partition, converting each frame as soon as its members are verified while later members
are still arriving (download and conversion overlap), or either asset alone."""

import time
from collections.abc import Iterator

import dagster as dg

from hypersim_assets.defs.assets.conversion import (
    CONVERTED_SCENE_KEY,
    converted_result,
    converted_scene_spec,
    open_conversion,
    plan_scene,
)
from hypersim_assets.defs.assets.raw import (
    RAW_SCENE_KEY,
    check_public_scene,
    download_scene,
    raw_scene_spec,
    require_raw_scene,
)
from hypersim_assets.defs.dask_resource import DaskResource
from hypersim_assets.defs.partitions import scene_partitions
from hypersim_assets.defs.policies import DOWNLOAD_POOL, TRANSIENT_RETRY
from hypersim_assets.defs.resources import ConversionResource, DownloadResource, HypersimResource


@dg.multi_asset(
    name="scene_step",
    specs=[raw_scene_spec(), converted_scene_spec()],
    partitions_def=scene_partitions,
    can_subset=True,
    pool=DOWNLOAD_POOL,
    retry_policy=TRANSIENT_RETRY,
)
def scene_step(
    context: dg.AssetExecutionContext,
    hypersim: HypersimResource,
    download: DownloadResource,
    conversion: ConversionResource,
    dask: DaskResource,
) -> Iterator[dg.MaterializeResult]:
    """Download one scene's members and convert its frames, overlapping the two when both are selected."""
    selected = context.selected_asset_keys
    scene = context.partition_key
    if RAW_SCENE_KEY in selected:
        # Before any pool starts or byte moves: an unknown scene fails at once, permanently.
        check_public_scene(scene, hypersim.raw_root())
    if CONVERTED_SCENE_KEY not in selected:
        yield download_scene(context, hypersim, download)
        return
    plan = plan_scene(scene, hypersim)
    if RAW_SCENE_KEY not in selected:
        require_raw_scene(scene, hypersim.raw_root())
    with open_conversion(context, plan, hypersim, conversion, dask) as stream:
        download_end = None
        restarted = False
        if RAW_SCENE_KEY in selected:
            # Every member is CRC-verified before member_ready hears of it, so a frame is only
            # converted from verified inputs: the members_verified gate holds inside this step.
            raw = download_scene(context, hypersim, download, on_member_ready=stream.member_ready)
            restarted = bool(raw.metadata and raw.metadata.get("restarts_after_remote_change"))
            yield raw
            download_end = time.monotonic()
        facts = stream.finish()
        if restarted:
            # The archive changed mid-scene: frames converted from a member fetched again are redone.
            facts = stream.recheck(facts)
        finished = time.monotonic()
    yield converted_result(context, plan, facts, stream, finished, hypersim, download, download_end)
